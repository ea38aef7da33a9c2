/**
 * Peak memory of real training steps, as the probe reports it.
 *
 * `trackBuffers` wraps the active backend's write/move/disposeData (and wasm's makeOutput) so the
 * live and peak bytes of distinct data buffers can be read — what a device really holds (reshapes
 * and the tape's clones share a buffer). It works on the cpu and wasm backends. On tfjs-node, whose
 * kernel outputs bypass write(), `trackEngine` reads the engine's per-tensor count after every
 * kernel instead (it counts a shared buffer once per tensor, so it overstates a little).
 */
import { tf } from '../tf';

export interface PeakTracker {
  /** Starts a new peak from what is live now. */
  reset(): void;
  peak(): number;
  live(): number;
  /** Puts the backend/engine back as it was. */
  restore(): void;
}

function bytesPerElement(dtype: string): number {
  return dtype === 'bool' ? 1 : dtype === 'complex64' ? 8 : 4;
}

type Storage = { has(id: object): boolean };
interface PatchableBackend {
  data?: Storage; // cpu
  dataIdMap?: Storage; // wasm
  write(values: unknown, shape: number[], dtype: string): object;
  move(dataId: object, values: unknown, shape: number[], dtype: string, refCount: number): void;
  disposeData(dataId: object, force?: boolean): boolean;
  makeOutput?(shape: number[], dtype: string, memoryOffset?: number, values?: unknown): { dataId: object };
}

/** Distinct-buffer tracker (cpu, wasm); undefined when the backend keeps its buffers elsewhere. */
export function trackBuffers(): PeakTracker | undefined {
  const backend = tf.backend() as unknown as PatchableBackend;
  const storage = backend.data ?? backend.dataIdMap;
  if (!storage || typeof storage.has !== 'function') return undefined;
  const sizes = new WeakMap<object, number>();
  let live = 0;
  let peak = 0;
  const add = (id: object, shape: number[], dtype: string): void => {
    if (sizes.has(id)) return;
    const bytes = shape.reduce((a, b) => a * b, 1) * bytesPerElement(dtype);
    sizes.set(id, bytes);
    live += bytes;
    if (live > peak) peak = live;
  };
  const orig = { write: backend.write, move: backend.move, disposeData: backend.disposeData, makeOutput: backend.makeOutput };
  const write = backend.write.bind(backend);
  const move = backend.move.bind(backend);
  const disposeData = backend.disposeData.bind(backend);
  backend.write = (values, shape, dtype) => {
    const id = write(values, shape, dtype);
    add(id, shape, dtype);
    return id;
  };
  backend.move = (dataId, values, shape, dtype, refCount) => {
    move(dataId, values, shape, dtype, refCount);
    add(dataId, shape, dtype);
  };
  backend.disposeData = (dataId, force) => {
    const r = disposeData(dataId, force);
    const bytes = sizes.get(dataId);
    if (bytes !== undefined && !storage.has(dataId)) {
      live -= bytes;
      sizes.delete(dataId);
    }
    return r;
  };
  const makeOutput = backend.makeOutput?.bind(backend);
  if (makeOutput) {
    // wasm: outputs placed at a given heap offset bypass write().
    backend.makeOutput = (shape, dtype, memoryOffset, values) => {
      const info = makeOutput(shape, dtype, memoryOffset, values);
      add(info.dataId, shape, dtype);
      return info;
    };
  }
  return {
    reset: () => (peak = live),
    peak: () => peak,
    live: () => live,
    restore: () => {
      backend.write = orig.write;
      backend.move = orig.move;
      backend.disposeData = orig.disposeData;
      if (orig.makeOutput) backend.makeOutput = orig.makeOutput;
    },
  };
}

/** Engine-level tracker: tf.memory().numBytes read after every kernel. */
export function trackEngine(): PeakTracker {
  const engine = tf.engine() as unknown as { runKernelFunc: (p: unknown) => unknown; state: { numBytes: number } };
  const run = engine.runKernelFunc.bind(engine);
  let peak = engine.state.numBytes;
  engine.runKernelFunc = (p: unknown) => {
    const out = run(p);
    if (engine.state.numBytes > peak) peak = engine.state.numBytes;
    return out;
  };
  return {
    reset: () => (peak = engine.state.numBytes),
    peak: () => Math.max(peak, engine.state.numBytes),
    live: () => engine.state.numBytes,
    restore: () => {
      delete (engine as { runKernelFunc?: unknown }).runKernelFunc;
    },
  };
}

/** The wasm heap's current size (it only grows), or undefined off wasm. */
export function wasmHeapBytes(): number | undefined {
  return (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.length;
}
