/** Variants: [rows R, vectors V (4 columns each), order ('a': B loads first; 'b': A splats first), k block]. */
export function source(variants: readonly (readonly [number, number, string, number])[]): string;
export function compile(src: string, extra: readonly string[]): Promise<Uint8Array<ArrayBuffer>>;
