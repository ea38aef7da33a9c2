/**
 * Identity, and Cast to the dtype the tensor already has, for the wasm backend. The backend's own
 * kernels copy the tensor; a copy is never needed because no tfjs kernel writes into its inputs —
 * the cpu backend returns the same data with one more reference, and so do we. (The optimizers
 * and the gradient tape call Identity dozens of times a step, on every weight; every ReLU
 * gradient casts its float32 mask to float32.)
 */
import { type KernelConfig, type KernelFunc, type TensorInfo } from '../tf';
import { callKernel, type WasmBackendLike } from './util';

function share(backend: WasmBackendLike, x: TensorInfo): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
}

export const identity: KernelFunc = ({ inputs, backend: anyBackend }) => {
  const backend = anyBackend as WasmBackendLike;
  const { x } = inputs as { x: TensorInfo };
  if (x.dtype === 'string') return callKernel(backend, 'Identity', { x });
  return share(backend, x);
};

export const cast: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { x } = inputs as { x: TensorInfo };
  const { dtype } = attrs as { dtype: string };
  if (dtype === x.dtype && dtype !== 'string' && dtype !== 'complex64') return share(backend, x);
  return callKernel(backend, 'Cast', { x }, attrs);
};

export const identityConfig: KernelConfig = { kernelName: 'Identity', backendName: 'wasm', kernelFunc: identity };
export const castConfig: KernelConfig = { kernelName: 'Cast', backendName: 'wasm', kernelFunc: cast };
