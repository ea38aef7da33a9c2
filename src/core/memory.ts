/**
 * The memory model: bytes one training step needs, as a fixed part plus a part per image.
 *
 *   fixed     = weights + gradients + optimizer slots + update scratch + runtime overhead
 *   perSample = activations kept for the backward pass + gradient tensors of the backward pass
 *               + the float32 input image and its one-hot label
 *
 * Why activations are counted the way they are (tfjs, checked against tfjs-core 4.22's engine and
 * measured by bench/memory-model.ts): `optimizer.minimize` runs the forward pass and the backward
 * pass inside one `tidy`, so every tensor the forward pass creates stays alive until the backward
 * pass ends, and so does every gradient tensor the backward pass creates. The peak therefore comes
 * at the end of the backward pass and holds, per layer, all of its forward outputs (a Conv2D with a
 * bias and a ReLU is three separate tensors while gradients are recorded: tfjs only fuses
 * bias/activation when no gradient is being taken) and all of its backward temporaries (the ReLU
 * gradient is a Step, a Cast and a Multiply, each the size of the output; BatchNormalization's
 * gradient makes several full-size temporaries). Each layer's cost is therefore
 * `factor × its output elements × 4 bytes`, with a factor per layer class fitted on real steps.
 * Reshapes and the tape's clones share their buffer and cost nothing extra.
 */
import type { LayerDescription, ModelDescription, OptimizerName } from './model';
import type { MemoryEstimate } from './report';

/** Slots each optimizer keeps per trainable weight (tfjs-core 4.22 optimizers/). */
export const OPTIMIZER_SLOTS: Record<OptimizerName, number> = {
  sgd: 0,
  momentum: 1, // accumulation
  adam: 2, // first and second moments
  rmsprop: 2, // tfjs keeps accumulatedMeanSquares and accumulatedMoments even with momentum 0 (3 when centered)
};

/**
 * Float32 tensors a layer keeps alive per output element until the backward pass ends: its forward
 * outputs plus its backward temporaries (including the gradient with respect to its output).
 * A number, or for layers with a built-in activation: `base` (linear, bias fused) plus the
 * activation's cost (ACTIVATION_EXTRA) plus `activationBias` when there is a bias as well (tfjs runs
 * conv/matMul, bias add and activation as separate ops while recording gradients).
 * Measured with `node --import tsx bench/memory-model.ts --probe` (tfjs 4.22, exact on the cpu backend).
 */
export type ActivationFactor = number | { base: number; activationBias: number };

export const ACTIVATION_FACTORS: Record<string, ActivationFactor> = {
  InputLayer: 0,
  Rescaling: 2, // mul and add outputs; no gradient flows into the input
  Conv2D: { base: 2, activationBias: 1 },
  DepthwiseConv2D: { base: 2, activationBias: 1 },
  SeparableConv2D: { base: 3, activationBias: 1 },
  Conv2DTranspose: { base: 2, activationBias: 1 },
  Dense: { base: 2, activationBias: 1 },
  BatchNormalization: 10, // moments (squared difference) + batchNorm forward, ~8 full-size gradient temporaries
  ReLU: 2, // plain ReLU; with maxValue (ReLU6) see layerFactor
  Activation: 0, // its activation's cost is added below
  Add: 2,
  Concatenate: 2,
  Multiply: 3,
  MaxPooling2D: 2,
  AveragePooling2D: 2,
  GlobalAveragePooling2D: 2,
  GlobalMaxPooling2D: 2,
  Flatten: 0, // a reshape: shares its input's buffer (its gradient is a reshape too)
  Reshape: 0,
  Dropout: 5, // random mask, scaled mask, output, gradient
  ZeroPadding2D: 2,
};

/** Extra factor of an activation function applied inside a layer (or by an Activation layer). */
export const ACTIVATION_EXTRA: Record<string, number> = { linear: 0, relu: 2, relu6: 4, softmax: 4, sigmoid: 3, tanh: 3 };
export const DEFAULT_ACTIVATION_EXTRA = 3;

/** Factor for layer classes the table does not know. */
export const DEFAULT_ACTIVATION_FACTOR = 5;

/** Runtime constant (bytes): small tensors, scalars, kernel scratch. */
export const FIXED_OVERHEAD = 1 << 20;

/** Optimizer-update scratch, in multiples of the largest trainable weight (new value, temporaries). */
export const UPDATE_SCRATCH: Record<OptimizerName, number> = { sgd: 2, momentum: 3, adam: 6, rmsprop: 6 };

const F32 = 4;

export interface MemoryOptions {
  optimizer: OptimizerName;
  /** Memory the plan may use (free × (1 − headroom)). */
  budgetBytes: number;
  /** Recorded in the estimate. */
  headroom: number;
  /** Backend the step will run on; 'tensorflow-gpu' adds the CUDA runtime's own memory. */
  backend?: 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
}

/** CUDA context + cuDNN/cuBLAS handles that TensorFlow allocates on the card before any tensor. */
export const GPU_RUNTIME_OVERHEAD = 300 * 2 ** 20;

export function layerFactor(layer: LayerDescription): number {
  const f = ACTIVATION_FACTORS[layer.className] ?? DEFAULT_ACTIVATION_FACTOR;
  const activation = layer.activation ?? 'linear';
  const extra = ACTIVATION_EXTRA[activation] ?? DEFAULT_ACTIVATION_EXTRA;
  if (layer.className === 'ReLU') return layer.activation === 'relu6' ? 4 : 2;
  if (typeof f === 'number') return f + (layer.className === 'Activation' ? extra : 0);
  return f.base + extra + (extra > 0 && layer.useBias ? f.activationBias : 0);
}

function elements(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Bytes per image kept for the backward pass (activations and their gradients). */
export function activationBytesPerSample(desc: ModelDescription): number {
  return desc.layers.reduce((n, l) => n + layerFactor(l) * elements(l.outputShape) * F32, 0);
}

/** Memory budget: free memory less the headroom fraction. */
export function budgetFromFree(freeBytes: number, headroom = 0.1): number {
  return Math.max(0, Math.floor(freeBytes * (1 - headroom)));
}

/** Predicted bytes of one training step at `batch`. */
export function bytesForBatch(est: Pick<MemoryEstimate, 'fixedBytes' | 'perSampleBytes'>, batch: number): number {
  return est.fixedBytes + est.perSampleBytes * batch;
}

/** Largest batch whose predicted bytes fit the budget; 0 when not even 1 fits. */
export function maxBatchSize(est: Pick<MemoryEstimate, 'fixedBytes' | 'perSampleBytes' | 'budgetBytes'>): number {
  const room = est.budgetBytes - est.fixedBytes;
  if (room < est.perSampleBytes || est.perSampleBytes <= 0) return room >= 0 && est.perSampleBytes <= 0 ? Number.MAX_SAFE_INTEGER : 0;
  return Math.floor(room / est.perSampleBytes);
}

export function estimateMemory(desc: ModelDescription, opts: MemoryOptions): MemoryEstimate {
  const [h, w, c] = desc.inputShape;
  const weightsBytes = desc.totalParams * F32;
  const gradientsBytes = desc.trainableParams * F32;
  const optimizerBytes = OPTIMIZER_SLOTS[opts.optimizer] * desc.trainableParams * F32;
  const largest = desc.layers.reduce((m, l) => Math.max(m, l.trainableParams), 0);
  const overheadBytes = FIXED_OVERHEAD + UPDATE_SCRATCH[opts.optimizer] * largest * F32 + (opts.backend === 'tensorflow-gpu' ? GPU_RUNTIME_OVERHEAD : 0);
  const activationBytes = activationBytesPerSample(desc);
  // The image batch and its one-hot labels (float32).
  const inputBytes = (h * w * c + desc.numClasses) * F32;
  const fixedBytes = weightsBytes + gradientsBytes + optimizerBytes + overheadBytes;
  const perSampleBytes = activationBytes + inputBytes;
  const est = {
    budgetBytes: opts.budgetBytes,
    headroom: opts.headroom,
    perSampleBytes,
    fixedBytes,
    breakdown: { weightsBytes, gradientsBytes, optimizerBytes, activationBytesPerSample: activationBytes, inputBytesPerSample: inputBytes, overheadBytes },
    table: [] as MemoryEstimate['table'],
  };
  est.table = batchTable(est);
  return est;
}

/** Powers of two from 1 up to the first one past the maximum (at least up to 1, at most 2^16). */
export function batchTable(est: Pick<MemoryEstimate, 'fixedBytes' | 'perSampleBytes' | 'budgetBytes'>): MemoryEstimate['table'] {
  const max = maxBatchSize(est);
  const rows: MemoryEstimate['table'] = [];
  for (let b = 1; b <= 65536; b *= 2) {
    const bytes = bytesForBatch(est, b);
    rows.push({ batchSize: b, bytes, fits: bytes <= est.budgetBytes });
    if (b > max) break;
  }
  return rows;
}
