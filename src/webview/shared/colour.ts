/** Colour strings for canvas charts (which cannot use CSS variables). Pure: shared by both panels. */

/** `#rgb`, `#rrggbb[aa]` or `rgb()/rgba()` with the alpha `a`; any other colour is returned as it is. */
export function withAlpha(color: string, a: number): string {
  const rgb = parseColour(color);
  return rgb ? `rgba(${rgb[0]}, ${rgb[1]}, ${rgb[2]}, ${a})` : color;
}

/** [r, g, b] 0–255 of `#rgb`, `#rrggbb[aa]`, `rgb()` or `rgba()`; undefined for anything else. */
export function parseColour(color: string): [number, number, number] | undefined {
  const c = color.trim();
  const short = /^#([0-9a-f])([0-9a-f])([0-9a-f])$/i.exec(c);
  if (short) return [parseInt(short[1]! + short[1]!, 16), parseInt(short[2]! + short[2]!, 16), parseInt(short[3]! + short[3]!, 16)];
  const hex = /^#([0-9a-f]{6})([0-9a-f]{2})?$/i.exec(c);
  if (hex) {
    const n = parseInt(hex[1]!, 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }
  const fn = /^rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)/i.exec(c);
  if (fn) return [Number(fn[1]), Number(fn[2]), Number(fn[3])];
  return undefined;
}

/** WCAG 2 contrast ratio of two opaque colours (1 … 21); undefined when either cannot be read. */
export function contrastRatio(a: string, b: string): number | undefined {
  const ca = parseColour(a);
  const cb = parseColour(b);
  if (!ca || !cb) return undefined;
  const lum = ([r, g, bl]: [number, number, number]): number => {
    const f = (v: number): number => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(bl);
  };
  const [hi, lo] = [lum(ca), lum(cb)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}
