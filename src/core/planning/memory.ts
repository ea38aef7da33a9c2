/**
 * The memory model: bytes one training step needs, as a fixed part plus a part per image.
 *
 *   fixed     = weights + gradients + optimizer slots + runtime overhead
 *   perSample = activations kept for the backward pass + gradient tensors of the backward pass
 *               + the float32 input image and its one-hot label
 *   step(batch) = fixed + perSample × batch + max(0, update scratch − activations × batch)
 *
 * The last term: the optimizer update runs after the backward pass has freed the activations, and
 * tfjs's Adam keeps 11 temporaries per weight until the update ends, so for small batches of a model
 * with many weights the update, not the backward pass, is the peak.
 *
 * Activations per image depend on the backend:
 *
 *  - cpu / tensorflow(-gpu): the sum of per-layer factors. `optimizer.minimize` runs the forward
 *    and backward pass inside one `tidy` (tfjs-core 4.22's engine), so every forward tensor and
 *    every backward temporary stays alive until the backward pass ends, and the peak comes there:
 *    per layer all of its forward outputs (a Conv2D with a bias and a ReLU is three tensors while
 *    gradients are recorded: tfjs only fuses bias/activation when no gradient is taken) and all of
 *    its backward temporaries (the ReLU gradient is a Step, a Cast and a Multiply; BatchNorm's
 *    makes several full-size ones): `factor × output elements × 4 bytes`, a factor per layer
 *    class fitted on real steps (bench/memory-model.ts --probe). Reshapes and the tape's clones
 *    share their buffer and cost nothing.
 *  - wasm (with our kernels, src/trainer/kernels): the backward pass frees each layer's saved
 *    tensors and gradients as soon as it has passed it (kernels/backprop-memory.ts), so the peak
 *    is a backward sweep (./memory-sweep.ts): at layer i, the forward tensors of layers ≤ i, the
 *    gradient flowing into it, the one it makes for its input and its temporaries, plus what is
 *    never freed (Dropout masks) and shortcut gradients waiting at a residual Add; perSample is
 *    the largest of those stages per image. The conv gradients' scratch is added at its own
 *    stage, per conv, as the workspace term of bytesForBatch.
 */
import { DEFAULT_HEADROOM, memoryBudget } from '../shared/constants';
import type { LayerDescription, ModelDescription, OptimizerName } from '../shared/model';
import type { MemoryEstimate } from '../shared/report';
import { backwardSweep, elements, sweepWorkspaces, trainedLayers, unusedInputGradientElements, workspaceBytes, type Workspace } from './memory-sweep';

export { unusedInputGradientElements };

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
  SeparableConv2D: { base: 4, activationBias: 1 }, // depthwise output + pointwise output, each with its gradient
  Conv2DTranspose: { base: 2, activationBias: 1 },
  Dense: { base: 2, activationBias: 1 },
  BatchNormalization: 10, // moments (squared difference) + batchNorm forward, ~8 full-size gradient temporaries
  ReLU: 2, // plain ReLU; with maxValue (ReLU6) see layerFactor
  LeakyReLU: 2.25,
  ELU: 2,
  Softmax: 4,
  Activation: 0, // its activation's cost is added below
  Add: 2,
  Concatenate: 2.5,
  UpSampling2D: 2,
  Multiply: 3,
  MaxPooling2D: 2,
  AveragePooling2D: 2,
  GlobalAveragePooling2D: 2, // plus a tensor the size of its input in the backward pass (INPUT_FACTORS)
  GlobalMaxPooling2D: 2,
  Flatten: 0, // a reshape: shares its input's buffer (its gradient is a reshape too)
  Reshape: 0,
  Dropout: 5, // random mask, scaled mask, output, gradient
  ZeroPadding2D: 2,
};

/** Factor of an activation function applied by an Activation layer (bench/memory-model.ts --probe). */
export const ACTIVATION_EXTRA: Record<string, number> = { linear: 0, relu: 2, relu6: 4, softmax: 4, sigmoid: 3, tanh: 3, elu: 2, selu: 5.25, softplus: 2, swish: 6 };
/**
 * The same inside a Conv2D/Dense/… layer, where it follows the bias add and can reuse its output:
 * measured relu 2, tanh 1, elu 1 (+ `activationBias` with a bias). Others: as an Activation layer.
 */
export const IN_LAYER_ACTIVATION_EXTRA: Record<string, number> = { relu: 2, tanh: 1, elu: 1 };
export const DEFAULT_ACTIVATION_EXTRA = 6;

/**
 * Float32 tensors per INPUT element a layer keeps for its backward pass, on top of its output
 * factor: GlobalAveragePooling2D's gradient broadcasts back to a tensor the size of its input.
 */
export const INPUT_FACTORS: Record<string, number> = { GlobalAveragePooling2D: 1 };

/** Factor for layer classes the table does not know (conservative: above every measured plain layer). */
export const DEFAULT_ACTIVATION_FACTOR = 6;

/** Runtime constant (bytes): small tensors, scalars, kernel scratch. */
export const FIXED_OVERHEAD = 1 << 20;

/**
 * Temporaries of the optimizer update (tfjs-core 4.22 optimizers/*.js), in float32 elements. Each
 * `assign` frees the variable's old buffer, so a variable's temporaries peak just before its
 * assigns:
 *  - sgd, momentum, rmsprop update one variable per `tidy`, so only the largest weight's temporaries
 *    are alive at once: sgd 2 (c·g and the new value, while the old weight is still alive; measured
 *    23% under-predicted on a 29M-parameter MLP with 1), momentum 4 (m·acc, + g, c·acc', + value),
 *    rmsprop 14 (it computes the new mean square twice: 8, then g·lr, + ε, √, ÷, m·moments, +);
 *  - adam runs the whole update in one `tidy`: 14 temporaries a variable of which 3 replace its
 *    freed moments and value, so 11 of every trainable weight plus 1 of the largest one.
 * Measured on wasm with a 2 MiB Dense kernel (bench/probe.ts separable-blocks, whose update is its
 * peak at small batches): sgd 2.0, momentum 4.0, rmsprop 14.0, adam 11 + 1.0.
 * They are alive after the activations of the backward pass are freed, so they only matter when
 * they are larger than those (small batches, models with a big Dense layer).
 */
export const UPDATE_SCRATCH: Record<OptimizerName, { perLargest: number; perTrainable: number }> = {
  sgd: { perLargest: 2, perTrainable: 0 }, // the old weight, c·g and the new weight are alive together
  momentum: { perLargest: 4, perTrainable: 0 },
  rmsprop: { perLargest: 14, perTrainable: 0 },
  adam: { perLargest: 1, perTrainable: 11 },
};

/**
 * On wasm our kernels run Adam's update as one kernel per variable (src/trainer/kernels/adam.ts):
 * its new value and moments are alive with the old ones, then replace them, one variable at a
 * time: 3 of the largest weight (measured 3.00 with a 2 MiB weight). tfjs's own update (UPDATE_SCRATCH
 * above) still runs with BATCH_ADVISOR_SIMD=0, a debugging switch the plan does not know about;
 * the probe's real steps would show the difference.
 */
export const WASM_UPDATE_SCRATCH: Partial<Record<OptimizerName, { perLargest: number; perTrainable: number }>> = {
  adam: { perLargest: 3, perTrainable: 0 },
};

/** tfjs-backend-wasm 4.22's heap limit (emscripten getHeapMax(): 65536 pages less one 64 KiB page). */
export const WASM_HEAP_MAX = 4294901760;
/**
 * wasm heap per byte of live tensors: the heap grows in steps and never shrinks, and its allocator
 * fragments. Observed 1.05–1.42× the live peak depending on the layer mix (bench/memory-model.ts
 * --wasm; a VGG-style net at 96×96 failed well below a 1.2× allowance): the worst case is used, and
 * the probe measures the real heap.
 */
export const WASM_HEAP_SLACK = 1.42;

const F32 = 4;

export interface MemoryOptions {
  optimizer: OptimizerName;
  /** Memory the plan may use (free × (1 − headroom)). */
  budgetBytes: number;
  /** Recorded in the estimate. */
  headroom: number;
  /**
   * Backend the step will run on: 'tensorflow-gpu' adds the CUDA runtime's own memory; 'wasm' caps
   * the budget at the wasm heap's 4 GiB and leaves room for its allocator's slack.
   */
  backend?: 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
  /** Micro-batches per optimizer step; above 1 the summed gradients are a second gradient-sized buffer. */
  accumulationSteps?: number;
}

/**
 * CUDA context + cuDNN/cuBLAS handles that TensorFlow allocates on the card before any tensor.
 * An assumption (a few hundred MiB on current cards), not measured here: this machine has no GPU.
 */
export const GPU_RUNTIME_OVERHEAD = 300 * 2 ** 20;

/** A layer's factor (cpu/tensorflow backends; wasm uses ./memory-sweep). */
export function layerFactor(layer: LayerDescription): number {
  const f = ACTIVATION_FACTORS[layer.className] ?? DEFAULT_ACTIVATION_FACTOR;
  const activation = layer.activation ?? 'linear';
  const extra = ACTIVATION_EXTRA[activation] ?? DEFAULT_ACTIVATION_EXTRA;
  if (layer.className === 'ReLU') return layer.activation === 'relu6' ? 4 : 2;
  if (typeof f === 'number') return f + (layer.className === 'Activation' ? extra : 0);
  const inLayer = IN_LAYER_ACTIVATION_EXTRA[activation] ?? extra;
  return f.base + inLayer + (inLayer > 0 && layer.useBias ? f.activationBias : 0);
}

/** Layer classes the memory model has no measured factor for (counted with the conservative default). */
export function unknownLayerClasses(desc: ModelDescription): string[] {
  return [...new Set(desc.layers.map((l) => l.className).filter((c) => !(c in ACTIVATION_FACTORS)))].sort();
}

/** Bytes per image kept for the backward pass (activations and their gradients), cpu/tensorflow. */
export function activationBytesPerSample(desc: ModelDescription): number {
  const layers = desc.layers.reduce((n, l) => n + (layerFactor(l) * elements(l.outputShape) + (INPUT_FACTORS[l.className] ?? 0) * (l.inputElements ?? 0)) * F32, 0);
  return layers + unusedInputGradientElements(desc) * F32;
}

/** Memory budget: free memory less the headroom fraction. */
export function budgetFromFree(freeBytes: number, headroom = DEFAULT_HEADROOM): number {
  return memoryBudget(freeBytes, headroom);
}

type Sizes = Pick<MemoryEstimate, 'fixedBytes' | 'perSampleBytes'> & {
  breakdown?: Pick<MemoryEstimate['breakdown'], 'activationBytesPerSample' | 'updateScratchBytes' | 'workspaceBytesPerSample' | 'workspaceRestBytesPerSample' | 'workspaceCapBytes' | 'workspaces'>;
};

/**
 * The wasm backend's Conv2D filter gradient (src/trainer/kernels/conv2d-backprop-filter.ts) builds
 * a patch matrix (out H × out W × kh·kw·Cin floats per image) while the backward pass runs; the
 * batch is split so the matrix stays under 2^23 floats.
 */
export const WASM_PATCH_CAP_BYTES = (1 << 23) * 4;

/**
 * Predicted bytes of one training step at `batch`: the larger of the backward pass's peak
 * (activations alive) and the optimizer update's (activations freed, update temporaries alive).
 */
export function bytesForBatch(est: Sizes, batch: number): number {
  const scratch = est.breakdown?.updateScratchBytes ?? 0;
  const activations = est.breakdown?.activationBytesPerSample ?? 0;
  const b = est.breakdown;
  const cap = b?.workspaceCapBytes ?? Infinity;
  const workspace = b?.workspaces
    ? workspaceBytes(b.workspaces, batch, cap)
    : Math.min((b?.workspaceBytesPerSample ?? 0) * batch, cap) + (b?.workspaceRestBytesPerSample ?? 0) * batch;
  return est.fixedBytes + est.perSampleBytes * batch + Math.max(workspace, scratch - activations * batch, 0);
}

/** Largest batch whose predicted bytes fit the budget; 0 when not even 1 fits. */
export function maxBatchSize(est: Sizes & Pick<MemoryEstimate, 'budgetBytes'>): number {
  if (bytesForBatch(est, 1) > est.budgetBytes) return 0;
  if (est.perSampleBytes <= 0) return Number.MAX_SAFE_INTEGER;
  // bytesForBatch grows with the batch: double, then bisect.
  let lo = 1;
  let hi = 2;
  while (hi < Number.MAX_SAFE_INTEGER / 2 && bytesForBatch(est, hi) <= est.budgetBytes) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (bytesForBatch(est, mid) <= est.budgetBytes) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Elements of the largest single trainable weight. Descriptions give per-layer counts only, so a
 * layer's largest weight is taken as its trainable count less a bias of its output channels.
 */
function largestWeight(desc: ModelDescription): number {
  let max = 0;
  for (const l of desc.layers) {
    const channels = l.outputShape[l.outputShape.length - 1] ?? 0;
    const n = l.useBias && l.trainableParams > channels ? l.trainableParams - channels : l.trainableParams;
    max = Math.max(max, n);
  }
  return max;
}

export function estimateMemory(described: ModelDescription, opts: MemoryOptions): MemoryEstimate {
  // The layers as the step runs them: a softmax/sigmoid head is trained from its logits.
  const desc = { ...described, layers: trainedLayers(described) };
  const [h, w, c] = desc.inputShape;
  const weightsBytes = desc.totalParams * F32;
  // With accumulation the running sum is alive while the next micro-batch's gradients are made.
  const gradientsBytes = desc.trainableParams * F32 * ((opts.accumulationSteps ?? 1) > 1 ? 2 : 1);
  const optimizerBytes = OPTIMIZER_SLOTS[opts.optimizer] * desc.trainableParams * F32;
  const scratch = (opts.backend === 'wasm' ? WASM_UPDATE_SCRATCH[opts.optimizer] : undefined) ?? UPDATE_SCRATCH[opts.optimizer];
  const updateScratchBytes = (scratch.perLargest * largestWeight(desc) + scratch.perTrainable * desc.trainableParams) * F32;
  const overheadBytes = FIXED_OVERHEAD + (opts.backend === 'tensorflow-gpu' ? GPU_RUNTIME_OVERHEAD : 0);
  // wasm frees activations during the backward pass: its peak is the sweep's (./memory-sweep).
  const sweep = opts.backend === 'wasm' ? backwardSweep(desc, new Set(unknownLayerClasses(desc))) : undefined;
  const activationBytes = sweep ? sweep.peakBytesPerSample : activationBytesPerSample(desc);
  // The image batch and its labels (float32): one-hot for a softmax loss, one per image for a binary one.
  const inputBytes = (h * w * c + (desc.head?.loss === 'binary' ? 1 : desc.numClasses)) * F32;
  const fixedBytes = weightsBytes + gradientsBytes + optimizerBytes + overheadBytes;
  const perSampleBytes = activationBytes + inputBytes;
  let budgetBytes = opts.budgetBytes;
  let budgetNote: string | undefined;
  if (opts.backend === 'wasm') {
    // Tensors live in one wasm heap: at most 4 GiB, and it needs ~20% more than the live tensors.
    const heapCap = WASM_HEAP_MAX * (1 - opts.headroom);
    budgetBytes = Math.floor(Math.min(opts.budgetBytes, heapCap) / WASM_HEAP_SLACK);
    budgetNote =
      opts.budgetBytes > heapCap
        ? `the wasm backend's 4 GiB heap less ${Math.round(opts.headroom * 100)}% headroom, ÷ ${WASM_HEAP_SLACK} for its allocator's slack`
        : `${Math.round((1 - opts.headroom) * 100)}% of free memory ÷ ${WASM_HEAP_SLACK} for the wasm heap's allocator slack`;
  }
  const unknown = unknownLayerClasses(desc);
  // wasm: the conv filter gradient's patch matrix, alive while its kernel runs.
  const workspaces = sweep ? sweepWorkspaces(desc, sweep) : [];
  const perImage = (w: Workspace): number => w.cappedBytesPerSample + w.restBytesPerSample;
  const workspace = workspaces.reduce<Workspace | undefined>((best, w) => (!best || perImage(w) > perImage(best) ? w : best), undefined);
  const est = {
    budgetBytes,
    ...(budgetNote ? { budgetNote } : {}),
    ...(unknown.length ? { unknownLayers: unknown } : {}),
    headroom: opts.headroom,
    perSampleBytes,
    fixedBytes,
    breakdown: {
      weightsBytes,
      gradientsBytes,
      optimizerBytes,
      activationBytesPerSample: activationBytes,
      inputBytesPerSample: inputBytes,
      overheadBytes,
      updateScratchBytes,
      ...(workspace
        ? { workspaceBytesPerSample: workspace.cappedBytesPerSample, workspaceRestBytesPerSample: workspace.restBytesPerSample, workspaceCapBytes: WASM_PATCH_CAP_BYTES, workspaces }
        : {}),
    },
    table: [] as MemoryEstimate['table'],
    ...(desc.head ? { loss: desc.head.description } : {}),
  };
  est.table = batchTable(est);
  return est;
}

/** Powers of two from 1 up to the first one past the maximum (at least up to 1, at most 2^16). */
export function batchTable(est: Sizes & Pick<MemoryEstimate, 'budgetBytes'>): MemoryEstimate['table'] {
  const max = maxBatchSize(est);
  const rows: MemoryEstimate['table'] = [];
  for (let b = 1; b <= 65536; b *= 2) {
    const bytes = bytesForBatch(est, b);
    rows.push({ batchSize: b, bytes, fits: bytes <= est.budgetBytes });
    if (b > max) break;
  }
  return rows;
}
