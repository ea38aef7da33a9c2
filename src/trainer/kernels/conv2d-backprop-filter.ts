/**
 * Conv2DBackpropFilter for the wasm backend (tfjs-backend-wasm 4.22 has none: tfjs issue #8474).
 *
 * Math (NHWC, forward y = conv(x, w), stride s, dilation d, top/left padding pT/pL):
 *   dw[a,b,ci,co] = Σ_{n,i,j} x[n, i·sh + a·dh − pT, j·sw + b·dw − pL, ci] · dy[n,i,j,co]
 *
 * Route 1, used when the batch's patch matrix fits in memory in at most two pieces (see viaGemm and
 * filterGradTuning): a matrix product
 *   dw[(a,b,ci), co] = Σ_p Pᵀ[(a,b,ci), p] · dy[p, co],   p = (n,i,j)
 * on XNNPACK's fully-connected operator, with the patch matrix P built on the wasm heap (one SIMD-module
 * pass of memory.copy runs, ../simd; JS copies where that is unavailable) (measured 1.2–1.5× faster
 * than route 2 on the tutorial CNN at 64×64 with 2 threads). A 1×1 layer needs no patch matrix: our
 * SIMD module runs its product on x and dy in place (a matrix product on XNNPACK where SIMD is
 * unavailable; 20× faster than route 2). Route 2 has no patch matrix (transposes and one XNNPACK
 * convolution) and is kept for large images, where it measured 1.0–1.3× faster (180×180 layers).
 *
 * Route 2: the same sum is a convolution with the roles of batch and channels swapped:
 *   X' = transpose(x, [3,1,2,0])   : [Ci, H, W, N]    (batch Ci, channels N)
 *   F' = transpose(dy, [1,2,0,3])  : [Ho, Wo, N, Co]  (an Ho×Wo "filter" over N channels)
 *   dw' = conv2d(X', F', strides = (dh,dw), dilations = (sh,sw), pad = (pT, ·, pL, ·)) : [Ci, kh, kw, Co]
 *   dw  = transpose(dw', [1,2,0,3])
 * Note the swap: the forward stride becomes the dilation and the forward dilation the stride.
 * The bottom/right padding is whatever makes the output reach kh×kw; extra rows are cropped.
 *
 * Either runs ~600× faster than the cpu backend's loop for a typical layer.
 */
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '../tf';
import { simdKernels } from '../simd';
import { callKernel, checkChannelsLast, crop, heapOffset, explicitPad, pair, release, reshape, transpose, type ConvGradAttrs, type WasmBackendLike } from './util';

export const conv2DBackpropFilter: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as ConvGradAttrs & { filterShape: [number, number, number, number]; };
  checkChannelsLast('Conv2DBackpropFilter', a.dataFormat);
  const [dh, dw] = pair(a.dilations);
  const info = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, [dh, dw], a.pad, a.dimRoundingMode, false, 'channelsLast');
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inHeight: h, inWidth: w, outHeight: oh, outWidth: ow } = info;
  const { top, left } = info.padInfo;
  // Rows the inner convolution must see so that its output reaches kh (resp. kw).
  const bottom = Math.max(0, (kh - 1) * dh + (oh - 1) * sh + 1 - top - h);
  const right = Math.max(0, (kw - 1) * dw + (ow - 1) * sw + 1 - left - w);

  // The matrix route while the batch's patch matrix fits the budget in at most maxChunks pieces;
  // otherwise the convolution route below.
  const perChunk = Math.floor(filterGradTuning.patchBudget / (kh * kw * info.inChannels * oh * ow));
  // (1×1 layers build no patch matrix: always the matrix route.)
  if (pointwise(info) || (perChunk >= 1 && Math.ceil(info.batchSize / perChunk) <= filterGradTuning.maxChunks)) return viaGemm(backend, x, dy, info);
  const xt = transpose(backend, x, [3, 1, 2, 0]);
  const dyt = transpose(backend, dy, [1, 2, 0, 3]);
  const g = callKernel(backend, 'Conv2D', { x: xt, filter: dyt }, {
    strides: [dh, dw],
    dilations: [sh, sw],
    pad: explicitPad(top, bottom, left, right),
    dataFormat: 'NHWC',
  });
  release(backend, xt, dyt);
  const gc = crop(backend, g, 0, kh, 0, kw);
  release(backend, g);
  const out = transpose(backend, gc, [1, 2, 0, 3]);
  release(backend, gc);
  return out;
};

/** Row length from which one native copyWithin beats a JS loop (measured: already at 16). */
const LONG_RUN = 8;

/**
 * patchBudget: floats of the patch matrix built at a time (the batch is split to stay under it).
 * maxChunks: past this many pieces the convolution route is faster (measured, 2 threads, batch 32:
 * 1 chunk — 64×64 and 32×32 layers — matrix route 1.2–1.5× faster; 2 chunks — batch 128 at 64×64×3 —
 * 1.2×; 4–5 chunks — 180×180 and 90×90 layers — convolution route 1.0–1.3× faster). Tests change both.
 * fmaGemm: the matrix route's product on our SIMD module's gemm where it is the relaxed-SIMD build
 * (fused multiply-add; see viaGemm), else XNNPACK's BatchMatMul.
 */
export const filterGradTuning = { patchBudget: 1 << 23, maxChunks: 2, fmaGemm: true };

/** A 1×1, stride-1, unpadded convolution: a plain matrix product over the channels. */
export function pointwise(info: backend_util.Conv2DInfo): boolean {
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inHeight: h, inWidth: w, outHeight: oh, outWidth: ow } = info;
  return kh === 1 && kw === 1 && sh === 1 && sw === 1 && info.padInfo.top === 0 && info.padInfo.left === 0 && oh === h && ow === w;
}

/**
 * dw as one matrix product per batch chunk: dw[(a,b,ci), co] = Σ_p Pᵀ[(a,b,ci), p] · dy[p, co]
 * over output positions p = (n,i,j), with the patch matrix Pᵀ[(a,b,ci), (n,i,j)] =
 * x[n, i·sh + a·dh − pT, j·sw + b·dw − pL, ci] (0 in the padding) built in JS from a channel-major
 * copy of x. XNNPACK's fully-connected operator then packs dy in its natural [p, co] layout,
 * where the convolution route has to transpose an Ho·Wo·N×Co "filter" first.
 */
function viaGemm(backend: WasmBackendLike, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const simd = simdKernels(backend);
  if (pointwise(info) && simd) {
    // x and dy read in place: in a training step (cold caches) this beat the transpose of x plus
    // XNNPACK's packed copy of dy: MobileNetV2 96×96 b16's 1×1 filter gradients 85 → 64 ms.
    const out = backend.makeOutput([1, 1, ci, co], 'float32');
    simd.pointwiseFilterGrad(heapOffset(backend, x), heapOffset(backend, dy), heapOffset(backend, out), n * h * w, ci, co);
    return out;
  }
  const rows = kh * kw * ci;
  const perImage = oh * ow;
  const nb = Math.max(1, Math.min(n, Math.floor(filterGradTuning.patchBudget / (rows * perImage))));
  const xc = ci === 1 ? reshape(backend, x, [1, n, h, w]) : transpose(backend, x, [3, 0, 1, 2]);
  if (simd && simd.fma && filterGradTuning.fmaGemm && co % 4 === 0 && !pointwise(info)) {
    // Our fused multiply-add product (relaxed SIMD), one thread, accumulating each chunk into dw:
    // dy's rows of a chunk's images are contiguous, so it is read in place.
    const out = backend.makeOutput([kh, kw, ci, co], 'float32');
    (backend.typedArrayFromHeap(out) as Float32Array).fill(0);
    for (let n0 = 0; n0 < n; n0 += nb) {
      const cnt = Math.min(nb, n - n0);
      const patches = backend.makeOutput([1, rows, cnt * perImage], 'float32');
      simd.patchMatrix(heapOffset(backend, xc), heapOffset(backend, patches), n, h, w, ci, n0, cnt, oh, ow, kh, kw, sh, sw, dh, dw, top, left);
      simd.gemm(heapOffset(backend, patches), heapOffset(backend, dy) + n0 * perImage * co * 4, heapOffset(backend, out), rows, cnt * perImage, co);
      release(backend, patches);
    }
    release(backend, xc);
    return out;
  }
  if (pointwise(info)) {
    // 1×1 convolution (MobileNet's pointwise layers, ResNet's projections): Pᵀ is xᵀ itself.
    const a3 = reshape(backend, xc, [1, ci, n * h * w]);
    const b3 = reshape(backend, dy, [1, n * h * w, co]);
    const g = callKernel(backend, 'BatchMatMul', { a: a3, b: b3 }, { transposeA: false, transposeB: false });
    release(backend, xc, a3, b3);
    const out = reshape(backend, g, [1, 1, ci, co]);
    release(backend, g);
    return out;
  }
  let acc: TensorInfo | undefined;
  for (let n0 = 0; n0 < n; n0 += nb) {
    const cnt = Math.min(nb, n - n0);
    const k = cnt * perImage;
    const patches = backend.makeOutput([1, rows, k], 'float32');
    let dyc: TensorInfo;
    if (cnt === n) {
      dyc = reshape(backend, dy, [1, k, co]);
    } else {
      dyc = backend.makeOutput([1, k, co], 'float32');
    }
    if (cnt !== n) {
      const dyAll = backend.typedArrayFromHeap(dy) as Float32Array;
      (backend.typedArrayFromHeap(dyc) as Float32Array).set(dyAll.subarray(n0 * perImage * co, (n0 + cnt) * perImage * co));
    }
    if (simd) simd.patchMatrix(heapOffset(backend, xc), heapOffset(backend, patches), n, h, w, ci, n0, cnt, oh, ow, kh, kw, sh, sw, dh, dw, top, left);
    else jsPatchMatrix(backend, xc, patches, info, n0, cnt);
    const part = callKernel(backend, 'BatchMatMul', { a: patches, b: dyc }, { transposeA: false, transposeB: false });
    release(backend, patches, dyc);
    if (acc) {
      const sum = callKernel(backend, 'Add', { a: acc, b: part });
      release(backend, acc, part);
      acc = sum;
    } else {
      acc = part;
    }
  }
  release(backend, xc);
  const out = reshape(backend, acc!, [kh, kw, ci, co]);
  release(backend, acc);
  return out;
}

/** The patch matrix of images [n0, n0 + cnt) in JS (where the SIMD kernel is unavailable); see viaGemm. */
function jsPatchMatrix(backend: WasmBackendLike, xc: TensorInfo, patches: TensorInfo, info: backend_util.Conv2DInfo, n0: number, cnt: number): void {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const k = cnt * oh * ow;
  // Views after every allocation: growing the wasm memory detaches older views.
  const src = backend.typedArrayFromHeap(xc) as Float32Array;
  const dst = backend.typedArrayFromHeap(patches) as Float32Array;
  // Both live in the wasm heap: long runs are copied with one memmove on a view of all of it.
  const heap = new Float32Array(dst.buffer);
  const srcBase = src.byteOffset >> 2;
  const dstBase = dst.byteOffset >> 2;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const c0 = b * dw - left;
      // Output columns j whose input column j·sw + c0 lies inside the image.
      const jLo = Math.min(ow, Math.max(0, Math.ceil(-c0 / sw)));
      const jHi = Math.max(jLo, Math.min(ow, Math.floor((w - 1 - c0) / sw) + 1));
      for (let c = 0; c < ci; c++) {
        let o = ((a * kw + b) * ci + c) * k;
        for (let img = n0; img < n0 + cnt; img++) {
          const plane = (c * n + img) * h;
          for (let i = 0; i < oh; i++, o += ow) {
            const r = i * sh + a * dh - top;
            if (r < 0 || r >= h) {
              dst.fill(0, o, o + ow);
              continue;
            }
            const srcRow = (plane + r) * w + c0;
            // Plain loops: a subarray per row would allocate ~10⁵ objects a step.
            for (let j = 0; j < jLo; j++) dst[o + j] = 0;
            if (sw === 1 && jHi - jLo >= LONG_RUN) {
              heap.copyWithin(dstBase + o + jLo, srcBase + srcRow + jLo, srcBase + srcRow + jHi);
            } else if (sw === 1) {
              for (let j = jLo; j < jHi; j++) dst[o + j] = src[srcRow + j]!;
            } else {
              for (let j = jLo; j < jHi; j++) dst[o + j] = src[srcRow + j * sw]!;
            }
            for (let j = jHi; j < ow; j++) dst[o + j] = 0;
          }
        }
      }
    }
  }
}

export const conv2DBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter,
};
