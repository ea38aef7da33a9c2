/**
 * Identity for the wasm backend. The backend's own kernel copies the tensor; a copy is never needed because no tfjs kernel writes
 * into its inputs — the cpu backend returns the same data with one more reference, and so do we.
 * (The optimizers and the gradient tape call Identity dozens of times a step, on every weight.)
 */
import { type KernelConfig, type KernelFunc, type TensorInfo } from '../tf';
import { callKernel, type WasmBackendLike } from './util';

export const identity: KernelFunc = ({ inputs, backend: anyBackend }) => {
  const backend = anyBackend as WasmBackendLike;
  const { x } = inputs as { x: TensorInfo };
  if (x.dtype === 'string') return callKernel(backend, 'Identity', { x });
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
};

export const identityConfig: KernelConfig = { kernelName: 'Identity', backendName: 'wasm', kernelFunc: identity };
