/**
 * Conv2DBackpropFilter for the wasm backend (tfjs-backend-wasm 4.22 has none: tfjs issue #8474).
 *
 * Math (NHWC, forward y = conv(x, w), stride s, dilation d, top/left padding pT/pL):
 *   dw[a,b,ci,co] = Σ_{n,i,j} x[n, i·sh + a·dh − pT, j·sw + b·dw − pL, ci] · dy[n,i,j,co]
 * which is itself a convolution — with the roles of batch and channels swapped:
 *   X' = transpose(x, [3,1,2,0])   : [Ci, H, W, N]    (batch Ci, channels N)
 *   F' = transpose(dy, [1,2,0,3])  : [Ho, Wo, N, Co]  (an Ho×Wo "filter" over N channels)
 *   dw' = conv2d(X', F', strides = (dh,dw), dilations = (sh,sw), pad = (pT, ·, pL, ·)) : [Ci, kh, kw, Co]
 *   dw  = transpose(dw', [1,2,0,3])
 * Note the swap: the forward stride becomes the dilation and the forward dilation the stride.
 * The bottom/right padding is whatever makes the output reach kh×kw; extra rows are cropped.
 * This runs on XNNPACK's convolution (~600× faster than the cpu backend's loop for a typical layer).
 */
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '../tf';
import { callKernel, checkChannelsLast, crop, explicitPad, pair, release, transpose, type PadAttr, type WasmBackendLike } from './util';

export const conv2DBackpropFilter: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as {
    strides: number | [number, number];
    pad: PadAttr;
    dataFormat?: string;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
    dilations?: number | [number, number];
  };
  checkChannelsLast('Conv2DBackpropFilter', a.dataFormat);
  const [dh, dw] = pair(a.dilations);
  const info = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, [dh, dw], a.pad, a.dimRoundingMode, false, 'channelsLast');
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inHeight: h, inWidth: w, outHeight: oh, outWidth: ow } = info;
  const { top, left } = info.padInfo;
  // Rows the inner convolution must see so that its output reaches kh (resp. kw).
  const bottom = Math.max(0, (kh - 1) * dh + (oh - 1) * sh + 1 - top - h);
  const right = Math.max(0, (kw - 1) * dw + (ow - 1) * sw + 1 - left - w);

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

export const conv2DBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter,
};
