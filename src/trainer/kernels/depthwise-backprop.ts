/**
 * DepthwiseConv2dNativeBackpropInput and DepthwiseConv2dNativeBackpropFilter for the wasm backend
 * (tfjs-backend-wasm 4.22 has neither: tfjs issue #8474), built on XNNPACK's depthwise convolution.
 *
 * Forward (NHWC, channel multiplier M, stride s, dilation d, top/left padding pT/pL):
 *   y[n,i,j,c·M+m] = Σ_{a,b} x[n, i·sh + a·dh − pT, j·sw + b·dw − pL, c] · w[a,b,c,m]
 *
 * Input gradient — with multiplier 1 (MobileNet's blocks) a direct SIMD loop (../simd) that visits
 * only the taps that exist (no zero insertion for strides). Otherwise, and without SIMD, a stride-1
 * depthwise convolution of the zero-inserted dy with the flipped filter (as for
 * Conv2DBackpropInput), done over all C·M channels with multiplier 1, then summed over m:
 *   dx[n,h,w,c] = Σ_m depthwise(dy↑, reverse(w,[0,1]) reshaped [kh,kw,C·M,1])[n,h,w,c·M+m]
 *
 * Filter gradient — batch folded into channels so one depthwise convolution does every (n,c) pair:
 *   X' = transpose(x,[1,2,0,3]) reshaped [1, H, W, N·C]           (channel n·C+c)
 *   F' = transpose(dy,[1,2,0,3]) reshaped [Ho, Wo, N·C, M]         (an Ho×Wo filter per channel)
 *   G  = depthwise(X', F', strides = (dh,dw), dilations = (sh,sw), pad (pT, ·, pL, ·))
 *        : [1, kh, kw, N·C·M]   (channel (n·C+c)·M+m, cropped to kh×kw)
 *   dw[a,b,c,m] = Σ_n G reshaped [kh·kw, N, C·M]
 * As for the dense case, the forward stride becomes the dilation and vice versa. That route hands
 * XNNPACK an Ho×Wo "filter" per channel, which it runs 7–25× slower than a depthwise forward; with
 * multiplier 1 (MobileNet's blocks) a direct SIMD loop (../simd) does the sum instead.
 */
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '../tf';
import { convTransposed } from './conv2d-backprop-input';
import { simdKernels } from '../simd';
import { callKernel, crop, heapOffset, explicitPad, pair, release, reshape, transpose, zeroInsert, type PadAttr, type WasmBackendLike } from './util';

interface DepthwiseGradAttrs {
  strides: number | [number, number];
  pad: PadAttr;
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export const depthwiseConv2dNativeBackpropInput: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = attrs as unknown as DepthwiseGradAttrs & { inputShape: [number, number, number, number] };
  const [kh, kw, c, m] = filter.shape as [number, number, number, number];
  const info = backend_util.computeConv2DInfo(a.inputShape, [kh, kw, c, m], a.strides, pair(a.dilations), a.pad, a.dimRoundingMode, true, 'channelsLast');
  const simd = m === 1 ? simdKernels(backend) : undefined;
  if (simd) {
    const [n, h, w] = a.inputShape;
    const dx = backend.makeOutput(a.inputShape, 'float32');
    const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
    simd.depthwiseInputGrad(heapOffset(backend, dy), heapOffset(backend, filter), heapOffset(backend, dx), n, h, w, c, oh, ow, kh, kw, sh, sw, dh, dw, info.padInfo.top, info.padInfo.left);
    return dx;
  }
  const wb = backend;
  const wr = callKernel(backend, 'Reverse', { x: filter }, { dims: [0, 1] });
  const wf = reshape(backend, wr, [kh, kw, c * m, 1]);
  release(backend, wr);
  const up = zeroInsert(wb, dy, info.strideHeight, info.strideWidth);
  const g = convTransposed(wb, up, wf, info, 'DepthwiseConv2dNative');
  release(backend, up, wf);
  if (m === 1) return g;
  const [n, h, w] = a.inputShape;
  const g5 = reshape(backend, g, [n, h, w, c, m]);
  release(backend, g);
  const dx = callKernel(backend, 'Sum', { x: g5 }, { axis: [4], keepDims: false });
  release(backend, g5);
  return dx;
};

export const depthwiseConv2dNativeBackpropFilter: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as DepthwiseGradAttrs & { filterShape: [number, number, number, number] };
  const [kh, kw, c, m] = a.filterShape;
  const [dh, dw] = pair(a.dilations);
  const info = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, [dh, dw], a.pad, a.dimRoundingMode, true, 'channelsLast');
  const { strideHeight: sh, strideWidth: sw, inHeight: h, inWidth: w, outHeight: oh, outWidth: ow, batchSize: n } = info;
  const { top, left } = info.padInfo;
  const simd = m === 1 ? simdKernels(backend) : undefined;
  if (simd) {
    const out = backend.makeOutput([kh, kw, c, m], 'float32');
    simd.depthwiseFilterGrad(heapOffset(backend, x), heapOffset(backend, dy), heapOffset(backend, out), n, h, w, c, oh, ow, kh, kw, sh, sw, dh, dw, top, left);
    return out;
  }
  const bottom = Math.max(0, (kh - 1) * dh + (oh - 1) * sh + 1 - top - h);
  const right = Math.max(0, (kw - 1) * dw + (ow - 1) * sw + 1 - left - w);

  const xt = transpose(backend, x, [1, 2, 0, 3]);
  const xr = reshape(backend, xt, [1, h, w, n * c]);
  const dyt = transpose(backend, dy, [1, 2, 0, 3]);
  const dyr = reshape(backend, dyt, [oh, ow, n * c, m]);
  release(backend, xt, dyt);
  const g = callKernel(backend, 'DepthwiseConv2dNative', { x: xr, filter: dyr }, {
    strides: [dh, dw],
    dilations: [sh, sw],
    pad: explicitPad(top, bottom, left, right),
  });
  release(backend, xr, dyr);
  const gc = crop(backend, g, 0, kh, 0, kw);
  release(backend, g);
  const g3 = reshape(backend, gc, [kh * kw, n, c * m]);
  release(backend, gc);
  const s = callKernel(backend, 'Sum', { x: g3 }, { axis: [1], keepDims: false });
  release(backend, g3);
  const out = reshape(backend, s, [kh, kw, c, m]);
  release(backend, s);
  return out;
};

export const depthwiseConv2dNativeBackpropInputConfig: KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropInput',
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dNativeBackpropInput,
};

export const depthwiseConv2dNativeBackpropFilterConfig: KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropFilter',
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dNativeBackpropFilter,
};
