/**
 * Out of memory, as every backend says it: the one list, for the trainer (a run's OOM advice), the
 * probe (a trial that does not fit; any other failure is a failure of the trial itself, retried
 * once) and the host (a trainer that died with this in its error output).
 *
 *  - tfjs-node / tfjs-node-gpu: "OOM when allocating tensor …" (RESOURCE_EXHAUSTED, "Invalid TF_Status: 8"),
 *    CUDA's CUDA_ERROR_OUT_OF_MEMORY;
 *  - wasm: the heap's abort ("Aborted()", when it cannot grow past 4 GiB) and "memory access out of
 *    bounds" (an allocation that failed and was used anyway); "Cannot allocate Wasm memory";
 *  - JavaScript: a RangeError for an allocation ("Array buffer allocation failed", "Invalid typed
 *    array length", "Invalid array buffer length"), V8's "JavaScript heap out of memory" (and its
 *    "Allocation failed" when the process dies of it).
 */
const OOM_TEXT = [
  /OOM when allocating tensor/i,
  /RESOURCE_EXHAUSTED/,
  /Invalid TF_Status: 8/,
  /CUDA_ERROR_OUT_OF_MEMORY/,
  /\bout of memory\b/i,
  /Aborted\(/,
  /memory access out of bounds/i,
  /table index is out of bounds/i,
  /Cannot allocate Wasm memory/i,
  /WebAssembly\.Memory\(\): could not allocate/i,
  /Array buffer allocation failed/i,
  /Invalid typed array length/i,
  /Invalid array buffer length/i,
  /Allocation failed/i,
];

/** True when an error (or a process's error output) says memory ran out. */
export function isOutOfMemoryText(text: string): boolean {
  return OOM_TEXT.some((p) => p.test(text));
}

export function isOutOfMemoryError(e: unknown): boolean {
  if (e instanceof Error) return isOutOfMemoryText(`${e.name}: ${e.message}`);
  return isOutOfMemoryText(String(e));
}

/** The first line of an error, for a trial's `error`. */
export function firstLine(e: unknown): string {
  const text = e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}` : String(e);
  return (text.split('\n').find((l) => l.trim()) ?? text).trim().slice(0, 500);
}
