import type { TrainerErrorKind } from '../core/shared/protocol';

/** An error the user caused (bad model file, bad dataset): reported as is, without a stack. */
export class BadInputError extends Error {
  override readonly name = 'BadInputError';
}

/** TensorFlow (tfjs-node) reports GPU OOM as a plain Error with this text (RESOURCE_EXHAUSTED). */
const OOM_PATTERNS = [/OOM when allocating tensor/i, /RESOURCE_EXHAUSTED/, /Invalid TF_Status: 8/, /out of memory/i, /Array buffer allocation failed/i, /Cannot allocate Wasm memory/i, /memory access out of bounds/i];

export function isOutOfMemory(e: unknown): boolean {
  const message = e instanceof Error ? e.message : String(e);
  return e instanceof RangeError || OOM_PATTERNS.some((p) => p.test(message));
}

export function classifyError(e: unknown): { kind: TrainerErrorKind; message: string } {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof BadInputError) return { kind: 'bad-input', message };
  if (isOutOfMemory(e)) return { kind: 'oom', message };
  return { kind: 'internal', message: e instanceof Error && e.stack ? e.stack : message };
}
