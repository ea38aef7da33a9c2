import type { TrainerErrorKind } from '../core/shared/protocol';

/** An error the user caused (bad model file, bad dataset): reported as is, without a stack. */
export class BadInputError extends Error {
  override readonly name = 'BadInputError';
}

/** The loss became NaN or infinite: training diverged (see run.ts, nanPatience). */
export class DivergedError extends Error {
  override readonly name = 'DivergedError';
  constructor(
    message: string,
    readonly step: number,
  ) {
    super(message);
  }
}

/**
 * Out-of-memory as each backend reports it: TensorFlow (tfjs-node) as a plain Error
 * (RESOURCE_EXHAUSTED); V8 as a RangeError (ArrayBuffer allocation); the wasm backend, once its
 * 4 GiB heap cannot grow, as emscripten's `Aborted()` (a RuntimeError; without -sASSERTIONS it
 * carries no more detail, and a heap allocation failure is the only abort its kernels reach).
 */
const OOM_PATTERNS = [
  /OOM when allocating tensor/i,
  /RESOURCE_EXHAUSTED/,
  /Invalid TF_Status: 8/,
  /out of memory/i,
  /Array buffer allocation failed/i,
  /Cannot allocate Wasm memory/i,
  /Cannot enlarge memory/i,
  /WebAssembly\.Memory\(\): could not allocate/i,
  /memory access out of bounds/i,
  /^Aborted\(/,
  // A wasm allocation that failed and was used anyway (the heap is exhausted; the state is corrupt).
  /table index is out of bounds/i,
];

export function isOutOfMemory(e: unknown): boolean {
  const message = e instanceof Error ? e.message : String(e);
  return e instanceof RangeError || OOM_PATTERNS.some((p) => p.test(message));
}

/** True for emscripten's bare abort (the wasm module is unusable afterwards). */
export function isWasmAbort(e: unknown): boolean {
  return /^Aborted\(/.test(e instanceof Error ? e.message : String(e));
}

export function classifyError(e: unknown): { kind: TrainerErrorKind; message: string } {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof BadInputError) return { kind: 'bad-input', message };
  if (e instanceof DivergedError) return { kind: 'diverged', message };
  // A full disk or no file handles left (core/fs-errors.ts): a failure while working, said without a stack.
  if (e instanceof Error && e.name === 'FsResourceError') return { kind: 'internal', message };
  if (isOutOfMemory(e)) return { kind: 'oom', message };
  return { kind: 'internal', message: e instanceof Error && e.stack ? e.stack : message };
}
