/**
 * Conv2DBackpropInput for the wasm backend, replacing tfjs-backend-wasm's own C++ loop (measured
 * ~9× slower than the forward convolution) with an XNNPACK convolution.
 *
 * Math (NHWC, forward y = conv(x, w), stride s, dilation d, top/left padding pT/pL):
 *   dx[n,h,w,ci] = Σ_{i,a : i·sh + a·dh − pT = h} Σ_{j,b : …} Σ_co dy[n,i,j,co] · w[a,b,ci,co]
 * is a stride-1 convolution of the zero-inserted output gradient with the flipped, transposed filter:
 *   dy↑ = dy with (s−1) zeros between rows/columns        : [N, (Ho−1)·sh+1, (Wo−1)·sw+1, Co]
 *   w'  = transpose(reverse(w, [0,1]), [0,1,3,2])          : [kh, kw, Co, Ci]
 *   dx  = conv2d(dy↑, w', stride 1, dilation d, pad top = (kh−1)·dh − pT, bottom = rest)
 * Negative paddings (explicit paddings wider than the kernel) become crops of the result.
 */
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '../tf';
import { pointwise } from './conv2d-backprop-filter';
import { batchMatMul } from './matmul';
import { callKernel, checkChannelsLast, crop, explicitPad, pair, release, reshape, transpose, zeroInsert, type ConvGradAttrs, type WasmBackendLike } from './util';

export const conv2DBackpropInput: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = attrs as unknown as ConvGradAttrs & { inputShape: [number, number, number, number]; };
  checkChannelsLast('Conv2DBackpropInput', a.dataFormat);
  const [dh, dw] = pair(a.dilations);
  const info = backend_util.computeConv2DInfo(a.inputShape, filter.shape as [number, number, number, number], a.strides, [dh, dw], a.pad, a.dimRoundingMode, false, 'channelsLast');
  if (pointwise(info)) return pointwiseInput(backend, dy, filter, info);
  const wb = backend;
  const wr = callKernel(backend, 'Reverse', { x: filter }, { dims: [0, 1] });
  const wt = transpose(backend, wr, [0, 1, 3, 2]);
  release(backend, wr);
  const up = zeroInsert(wb, dy, info.strideHeight, info.strideWidth);
  const dx = convTransposed(wb, up, wt, info, 'Conv2D');
  release(backend, up, wt);
  return dx;
};

/**
 * dx = dy·Wᵀ for a 1×1, stride-1 convolution: one matrix product, dx[p, ci] = Σ_co dy[p, co]·w[ci, co]
 * over positions p = (n,h,w). Our BatchMatMul picks the cheaper of C = dy·Wᵀ and Cᵀ = W·dyᵀ; the
 * convolution route instead reversed and transposed the whole filter and had XNNPACK pack a new
 * operator for it on every call — for MobileNetV2's late 1×1 layers (3×3 pixels, up to 320×1280
 * weights) that was 5–6× the forward convolution.
 */
function pointwiseInput(backend: WasmBackendLike, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co } = info;
  const a = reshape(backend, dy, [1, n * h * w, co]);
  const b = reshape(backend, filter, [1, ci, co]);
  const c = batchMatMul({ inputs: { a, b }, backend, attrs: { transposeA: false, transposeB: true } }) as TensorInfo;
  release(backend, a, b);
  const out = reshape(backend, c, [n, h, w, ci]);
  release(backend, c);
  return out;
}

/**
 * Stride-1 convolution of an already zero-inserted gradient `up` with a flipped filter, padded
 * and cropped so the result has the forward input's spatial size. Shared with the depthwise case.
 */
export function convTransposed(b: WasmBackendLike, up: TensorInfo, flipped: TensorInfo, info: backend_util.Conv2DInfo, kernel: 'Conv2D' | 'DepthwiseConv2dNative'): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, dilationHeight: dh, dilationWidth: dw, inHeight: h, inWidth: w } = info;
  const [, uh, uw] = up.shape as [number, number, number, number];
  const extH = (kh - 1) * dh + 1;
  const extW = (kw - 1) * dw + 1;
  const top = extH - 1 - info.padInfo.top;
  const left = extW - 1 - info.padInfo.left;
  const bottom = h + extH - 1 - uh - top;
  const right = w + extW - 1 - uw - left;
  const attrs = {
    strides: [1, 1],
    dilations: [dh, dw],
    pad: explicitPad(Math.max(0, top), Math.max(0, bottom), Math.max(0, left), Math.max(0, right)),
    dataFormat: 'NHWC',
  };
  const out = callKernel(b, kernel, { x: up, filter: flipped }, attrs);
  const res = crop(b, out, Math.max(0, -top), h, Math.max(0, -left), w);
  release(b, out);
  return res;
}

export const conv2DBackpropInputConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInput,
};
