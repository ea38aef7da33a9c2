/**
 * Training kernels for the tfjs wasm backend. tfjs-backend-wasm 4.22 cannot train convolutional
 * networks: it has no Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropFilter or
 * DepthwiseConv2dNativeBackpropInput (tfjs issue #8474), and its Conv2DBackpropInput is a plain
 * loop ~10× slower than the forward convolution. Each replacement is a composition of XNNPACK
 * kernels the backend already has, or, for the work XNNPACK has no kernel for (BatchNorm, masks,
 * the depthwise filter gradient, pool gradients, patch matrices), a pass of our own WebAssembly
 * SIMD module on the backend's heap (../simd; a JS pass where SIMD is unavailable); see the
 * comment at the top of each file for the math.
 *
 * Added (missing on wasm): Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropInput,
 * DepthwiseConv2dNativeBackpropFilter.
 * Replaced (slow on wasm, measured on training steps of the zoo models): Conv2DBackpropInput
 * (~10×), MaxPoolGrad (~3–5×), BatchMatMul with a transposed operand (Dense gradients, ~5–20×),
 * Sum and Mean over leading axes (bias gradients, BatchNorm moments, ~5×), Tile (BatchNorm
 * gradient, the largest cost of a MobileNetV2 step), Identity and same-dtype Cast (needless copies).
 * Fused: the gradients of Relu, Relu6 and ClipByValue, one pass instead of 2–5 kernels (./mask-grad);
 * BatchNormalization in training, one kernel forward and one backward instead of ~30 (./batch-norm);
 * the ReLU layer with maxValue 6 as one Relu6 op instead of Relu + ClipByValue (./relu6-layer);
 * Adam's update, one kernel per variable instead of ~12 (./adam).
 * Memory: activations and gradients are freed during the backward pass, not after it (./backprop-memory).
 *
 * Call `registerWasmTrainingKernels()` before `tf.setBackend('wasm')`.
 */
// The wasm backend registers its own kernels when imported: import it first so ours replace them.
import '@tensorflow/tfjs-backend-wasm';
import { getKernel, registerKernel, unregisterKernel, type KernelConfig } from '../tf';
import { adamConfig, registerFusedAdam } from './adam';
import { installBackpropMemory } from './backprop-memory';
import { batchNormTrainConfig, batchNormTrainGradConfig, registerFusedBatchNorm } from './batch-norm';
import { conv2DBackpropFilterConfig } from './conv2d-backprop-filter';
import { conv2DBackpropInputConfig } from './conv2d-backprop-input';
import { depthwiseConv2dNativeBackpropFilterConfig, depthwiseConv2dNativeBackpropInputConfig } from './depthwise-backprop';
import { castConfig, identityConfig } from './identity';
import { batchMatMulConfig } from './matmul';
import { maskGradConfig, registerMaskGradients } from './mask-grad';
import { registerRelu6Layer } from './relu6-layer';
import { maxPoolGradConfig } from './max-pool-grad';
import { meanConfig, sumConfig } from './reduce';
import { tileConfig } from './tile';
import { originals } from './util';

export const WASM_TRAINING_KERNELS: readonly KernelConfig[] = [
  conv2DBackpropFilterConfig,
  conv2DBackpropInputConfig,
  depthwiseConv2dNativeBackpropFilterConfig,
  depthwiseConv2dNativeBackpropInputConfig,
  batchMatMulConfig,
  maxPoolGradConfig,
  identityConfig,
  castConfig,
  sumConfig,
  meanConfig,
  tileConfig,
  maskGradConfig,
  batchNormTrainConfig,
  batchNormTrainGradConfig,
  adamConfig,
];

let registered = false;

/** Registers (once) our wasm training kernels, replacing the backend's own where it has one. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  for (const k of WASM_TRAINING_KERNELS) {
    const existing = getKernel(k.kernelName, 'wasm');
    if (existing) {
      if (existing.kernelFunc === k.kernelFunc) continue;
      originals.set(k.kernelName, existing);
      unregisterKernel(k.kernelName, 'wasm');
      // The original still needs its setup (binding its C++ function) when the backend starts.
      registerKernel(existing.setupFunc ? { ...k, setupFunc: existing.setupFunc } : k);
      continue;
    }
    registerKernel(k);
  }
  registerMaskGradients();
  registerFusedBatchNorm();
  registerRelu6Layer();
  registerFusedAdam();
  installBackpropMemory();
  registered = true;
}
