/**
 * MaxPoolGrad for the wasm backend, replacing the backend's C++ kernel (which loops over every
 * input position and every window covering it: ~15× the forward pool's time here).
 *
 * Math: the gradient of y[n,i,j,c] = max over its window of x routes dy[n,i,j,c] to the first
 * position (row-major scan, as tfjs's cpu backend does) holding that maximum:
 *   dx[n, argmax_{(r,s) ∈ window(i,j)} x[n,r,s,c], c] += dy[n,i,j,c]
 * One pass over the windows, vectorised over channels (NHWC keeps them contiguous), on the wasm
 * heap: the common 2×2 stride-2 pool as one SIMD pass (../simd), other pools and runtimes without
 * SIMD in JS.
 */
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '../tf';
import { simdKernels } from '../simd';
import { heapOffset, type WasmBackendLike } from './util';

export const maxPoolGrad: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: 'valid' | 'same' | number;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  const info = backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;

  const out = backend.makeOutput(input.shape, 'float32');
  const twoByTwo = fh === 2 && fw === 2 && sh === 2 && sw === 2 && dh === 1 && dw === 1 && h % 2 === 0 && w % 2 === 0 && oh === h / 2 && ow === w / 2 && top === 0 && left === 0;
  const simd = twoByTwo ? simdKernels(backend) : undefined;
  if (simd) {
    simd.maxPool2x2Grad(heapOffset(backend, input), heapOffset(backend, dy), heapOffset(backend, out), n, h, w, c);
    return out;
  }
  // Views after the allocation (growing wasm memory detaches older views).
  const x = backend.typedArrayFromHeap(input) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  if (twoByTwo) {
    pool2x2(x, g, dx, n, h, w, c);
    return out;
  }
  const best = new Float32Array(c);
  const at = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    const xb = b * h * w * c;
    for (let i = 0; i < oh; i++) {
      const r0 = i * sh - top;
      let rMin = r0;
      while (rMin < 0) rMin += dh;
      const rMax = Math.min(h, r0 + fh);
      for (let j = 0; j < ow; j++) {
        const s0 = j * sw - left;
        let sMin = s0;
        while (sMin < 0) sMin += dw;
        const sMax = Math.min(w, s0 + fw);
        best.fill(Number.NEGATIVE_INFINITY);
        at.fill(-1);
        for (let r = rMin; r < rMax; r += dh) {
          for (let s = sMin; s < sMax; s += dw) {
            const p = xb + (r * w + s) * c;
            for (let k = 0; k < c; k++) {
              const v = x[p + k]!;
              if (v > best[k]!) {
                best[k] = v;
                at[k] = p + k;
              }
            }
          }
        }
        const q = ((b * oh + i) * ow + j) * c;
        for (let k = 0; k < c; k++) {
          const p = at[k]!;
          if (p >= 0) dx[p] = dx[p]! + g[q + k]!;
        }
      }
    }
  }
  return out;
};

/**
 * The common 2×2 / stride 2 pool over even sizes without padding, unrolled and branch-free: on
 * real activations "which of the four is largest" is unpredictable, and a JS loop with branches
 * pays a mispredicted branch per comparison (measured ~1.6× slower). Comparisons come from the
 * sign bit of a difference (+0 added so −0 − +0 counts as a tie), ties go to the earlier position
 * as in tfjs's cpu backend:
 *   i01 = [a1 > a0],  j23 = [a3 > a2],  m01 = a0 + i01·(a1 − a0),  m23 = a2 + j23·(a3 − a2)
 *   k   = m23 > m01 ? 2 + j23 : i01,    dx[window position k] = dy
 * (Windows holding ±Infinity would make m·· NaN: not a case training survives anyway.)
 */
function pool2x2(x: Float32Array, g: Float32Array, dx: Float32Array, n: number, h: number, w: number, c: number): void {
  const oh = h / 2;
  const ow = w / 2;
  const row = w * c;
  const off = new Int32Array([0, c, row, row + c]);
  const f = new Float64Array(1);
  const hi = new Uint32Array(f.buffer, 4, 1); // little-endian: the high word holds the sign
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const p0 = ((b * h + 2 * i) * w + 2 * j) * c;
        const q = ((b * oh + i) * ow + j) * c;
        for (let k = 0; k < c; k++) {
          const p = p0 + k;
          const a0 = x[p]!;
          const a1 = x[p + c]!;
          const a2 = x[p + row]!;
          const a3 = x[p + row + c]!;
          f[0] = a0 - a1 + 0;
          const i01 = hi[0]! >>> 31;
          f[0] = a2 - a3 + 0;
          const j23 = hi[0]! >>> 31;
          const m01 = a0 + i01 * (a1 - a0);
          const m23 = a2 + j23 * (a3 - a2);
          f[0] = m01 - m23 + 0;
          const pick = hi[0]! >>> 31;
          dx[p + off[i01 + pick * (2 + j23 - i01)]!] = g[q + k]!;
        }
      }
    }
  }
}

export const maxPoolGradConfig: KernelConfig = {
  kernelName: 'MaxPoolGrad',
  backendName: 'wasm',
  kernelFunc: maxPoolGrad,
};
