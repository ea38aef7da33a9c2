/**
 * BatchMatMul for the wasm backend, wrapping the backend's own kernel.
 *
 * tfjs-backend-wasm 4.22 sends a matrix product to XNNPACK's fully-connected operator only when
 * neither operand is transposed (and the batch is 1); anything else runs a scalar blocked loop,
 * ~10–30× slower. Training a Dense layer needs exactly those transposed products:
 *   dW = xᵀ·dy  (transposeA)    dx = dy·Wᵀ  (transposeB)
 * So for batch-1 products we materialise transposed operands (memory-bound Transposes) and call
 * the original kernel without transposes, either as C = op(A)·op(B) or as Cᵀ = op(B)ᵀ·op(A)ᵀ
 * followed by a transpose of C — whichever moves fewer floats, counting XNNPACK's packing of the
 * right operand (e.g. dx = dy·Wᵀ of a 4096→128 layer: 2 ms instead of 7–15 ms, and 25+ ms on the
 * original loop). Batched products (batch > 1) keep the original path.
 */
import { util, type KernelConfig, type KernelFunc, type TensorInfo } from '../tf';
import { callKernel, release, reshape, transpose, type WasmBackendLike } from './util';

export const batchMatMul: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
  const batchA = util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = util.sizeFromShape(b.shape.slice(0, -2));
  if ((!transposeA && !transposeB) || batchA !== 1 || batchB !== 1 || a.dtype !== 'float32' || b.dtype !== 'float32') {
    return callKernel(backend, 'BatchMatMul', { a, b }, attrs);
  }
  const r = (t: TensorInfo): [number, number] => [t.shape[t.shape.length - 2]!, t.shape[t.shape.length - 1]!];
  const [ar, ac] = r(a);
  const [br, bc] = r(b);
  const [m, k] = transposeA ? [ac, ar] : [ar, ac];
  const n = transposeB ? br : bc;
  const mat = (t: TensorInfo, tr: boolean): TensorInfo => {
    const t2 = reshape(backend, t, r(t));
    if (!tr) return t2;
    const out = transpose(backend, t2, [1, 0]);
    release(backend, t2);
    return out;
  };
  // XNNPACK packs the right operand ("weights") on every call with a new tensor, so count it.
  //   direct:  C  = op(A)·op(B)              transposes as requested, packs K×N
  //   swapped: Cᵀ = op(B)ᵀ·op(A)ᵀ, then Cᵀᵀ  transposes the operands not requested, packs K×M
  const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0) + k * n;
  const swapped = (transposeA ? 0 : m * k) + (transposeB ? 0 : k * n) + m * n + k * m;
  let c: TensorInfo;
  if (direct <= swapped) {
    const a2 = mat(a, transposeA);
    const b2 = mat(b, transposeB);
    c = callKernel(backend, 'BatchMatMul', { a: a2, b: b2 }, { transposeA: false, transposeB: false });
    release(backend, a2, b2);
  } else {
    const bt = mat(b, !transposeB);
    const at = mat(a, !transposeA);
    const ct = callKernel(backend, 'BatchMatMul', { a: bt, b: at }, { transposeA: false, transposeB: false });
    release(backend, bt, at);
    const ct2 = reshape(backend, ct, [n, m]);
    release(backend, ct);
    c = transpose(backend, ct2, [1, 0]);
    release(backend, ct2);
  }
  const rank = Math.max(a.shape.length, b.shape.length);
  const res = reshape(backend, c, [...new Array<number>(rank - 2).fill(1), m, n]);
  release(backend, c);
  return res;
};

export const batchMatMulConfig: KernelConfig = {
  kernelName: 'BatchMatMul',
  backendName: 'wasm',
  kernelFunc: batchMatMul,
};
