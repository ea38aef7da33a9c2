/**
 * Helpers shared by the training kernels we add to the tfjs wasm backend.
 *
 * Our kernels are compositions of kernels the wasm backend already has (Conv2D and
 * DepthwiseConv2dNative run on XNNPACK, Transpose, Reverse, Sum, Slice…). They call those
 * kernels' kernelFuncs directly with TensorInfos — below the engine, like the backends' own
 * composite kernels do — so no tensors are tracked, recorded on the tape or counted in
 * tf.memory(). Every intermediate TensorInfo must therefore be released with `release()`.
 */
import { backend_util, getKernel, util, type DataType, type KernelBackend, type NamedAttrMap, type TensorInfo } from '../tf';

/** The part of tfjs-backend-wasm's BackendWasm our kernels use. */
export interface WasmBackendLike extends KernelBackend {
  makeOutput(shape: number[], dtype: DataType, memoryOffset?: number): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): backend_util.TypedArray;
}

/**
 * Runs the wasm backend's own kernel `name` on TensorInfos — its original implementation where we
 * registered a replacement, so a replacement can hand the cases it leaves alone to the original.
 */
export function callKernel(backend: KernelBackend, name: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap = {}): TensorInfo {
  const k = originals.get(name) ?? getKernel(name, 'wasm');
  if (!k) throw new Error(`Kernel '${name}' not registered for backend 'wasm'`);
  const out = k.kernelFunc({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`kernel ${name} returned several outputs`);
  return out;
}

/** The wasm backend's own kernels that we replaced (saved by registerWasmTrainingKernels). */
export const originals = new Map<string, ReturnType<typeof getKernel> & object>();

/** Frees intermediate TensorInfos (reshape outputs share data and only drop a reference). */
export function release(backend: KernelBackend, ...infos: (TensorInfo | undefined)[]): void {
  for (const t of infos) if (t) backend.disposeData(t.dataId);
}

export function reshape(backend: KernelBackend, x: TensorInfo, shape: number[]): TensorInfo {
  return callKernel(backend, 'Reshape', { x }, { shape });
}

export function transpose(backend: KernelBackend, x: TensorInfo, perm: number[]): TensorInfo {
  return callKernel(backend, 'Transpose', { x }, { perm });
}

/** Explicit NHWC padding in the form tfjs kernels accept. */
export function explicitPad(top: number, bottom: number, left: number, right: number): backend_util.ExplicitPadding {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

export type PadAttr = 'valid' | 'same' | number | backend_util.ExplicitPadding;

/** The attributes tfjs gives both Conv2D gradient kernels (Conv2DBackpropFilter/Input). */
export interface ConvGradAttrs {
  strides: number | [number, number];
  pad: PadAttr;
  dataFormat?: string;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: number | [number, number];
}

export function pair(v: number | [number, number] | number[] | undefined, dflt = 1): [number, number] {
  if (v == null) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  return [v[0] ?? dflt, v[1] ?? v[0] ?? dflt];
}

export function checkChannelsLast(kernel: string, dataFormat: unknown): void {
  if (dataFormat != null && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`${kernel} on wasm supports dataFormat 'NHWC' only (got '${String(dataFormat)}')`);
  }
}

/**
 * Inserts (s-1) zeros between the rows and columns of a NHWC tensor: [N,H,W,C] →
 * [N,(H-1)·sh+1,(W-1)·sw+1,C]. The gradient of a strided convolution with respect to its input
 * is a stride-1 convolution of this "dilated" output gradient. Pure memory traffic: done in JS
 * on the wasm heap.
 */
export function zeroInsert(backend: WasmBackendLike, x: TensorInfo, sh: number, sw: number): TensorInfo {
  if (sh === 1 && sw === 1) {
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
  }
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const oh = (h - 1) * sh + 1;
  const ow = (w - 1) * sw + 1;
  const out = backend.makeOutput([n, oh, ow, c], 'float32');
  // Views are taken after the allocation: growing the wasm memory detaches older views.
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  dst.fill(0);
  // Both live in the wasm heap: runs of channels are copied with a memmove on a view of all of it.
  const heap = new Float32Array(dst.buffer);
  const srcBase = src.byteOffset >> 2;
  const dstBase = dst.byteOffset >> 2;
  const rowOut = ow * c;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h; i++) {
      const srcRow = (b * h + i) * w * c;
      const dstRow = (b * oh + i * sh) * rowOut;
      if (sw === 1) {
        heap.copyWithin(dstBase + dstRow, srcBase + srcRow, srcBase + srcRow + w * c);
        continue;
      }
      for (let j = 0; j < w; j++) {
        const s0 = srcRow + j * c;
        const d0 = dstRow + j * sw * c;
        if (c >= 8) heap.copyWithin(dstBase + d0, srcBase + s0, srcBase + s0 + c);
        else for (let k = 0; k < c; k++) dst[d0 + k] = src[s0 + k]!;
      }
    }
  }
  return out;
}

/** Crops rows [top, top+h) and columns [left, left+w) of a NHWC tensor (no copy when nothing is cut). */
export function crop(backend: KernelBackend, x: TensorInfo, top: number, h: number, left: number, w: number): TensorInfo {
  const [n, xh, xw, c] = x.shape as [number, number, number, number];
  if (top === 0 && left === 0 && xh === h && xw === w) {
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
  }
  return callKernel(backend, 'Slice', { x }, { begin: [0, top, left, 0], size: [n, h, w, c] });
}

export const sizeOf = (shape: number[]): number => util.sizeFromShape(shape);

/** A tensor's byte offset in the wasm heap (what our SIMD kernels take as a pointer). */
export function heapOffset(backend: WasmBackendLike, info: TensorInfo): number {
  return backend.typedArrayFromHeap(info).byteOffset;
}
