/**
 * Tile for the wasm backend. BatchNorm's gradient tiles a [1,1,1,C] vector up to the full
 * [N,H,W,C] activation size; the backend's generic C++ loop (an index computation per element)
 * took most of a MobileNetV2 training step. Here the output is built by block copies
 * (memmove-speed `copyWithin`), one axis at a time from the innermost:
 *   after expanding axis i, every block [outer index] of size Bᵢ = sᵢ·(inner, already tiled)
 *   is repeated rᵢ times: out[o, k·Bᵢ + t] = cur[o, t] for k < rᵢ,
 * working from the last block backwards so the expansion happens in place in the output.
 */
import { util, type KernelConfig, type KernelFunc, type TensorInfo } from '../tf';
import { callKernel, type WasmBackendLike } from './util';

export const tile: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { x } = inputs as { x: TensorInfo };
  const { reps } = attrs as { reps: number[] };
  if (x.dtype === 'string' || x.dtype === 'complex64' || reps.length !== x.shape.length) return callKernel(backend, 'Tile', { x }, attrs);
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  const out = backend.makeOutput(outShape, x.dtype);
  if (util.sizeFromShape(outShape) === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  dst.set(src);
  let inner = 1; // size of one (already tiled) element of the current axis' trailing dims
  for (let i = x.shape.length - 1; i >= 0; i--) {
    const s = x.shape[i]!;
    const r = reps[i]!;
    const block = s * inner;
    if (r > 1) {
      const outer = util.sizeFromShape(x.shape.slice(0, i));
      for (let o = outer - 1; o >= 0; o--) {
        const from = o * block;
        const to = o * block * r;
        if (to !== from) dst.copyWithin(to, from, from + block);
        // Double the filled span until the r copies are there.
        let filled = block;
        while (filled < block * r) {
          const n = Math.min(filled, block * r - filled);
          dst.copyWithin(to + filled, to, to + n);
          filled += n;
        }
      }
    }
    inner = block * r;
  }
  return out;
};

export const tileConfig: KernelConfig = { kernelName: 'Tile', backendName: 'wasm', kernelFunc: tile };
