/**
 * The wasm backend's activation memory as a backward sweep.
 *
 * With our wasm kernels (src/trainer/kernels/backprop-memory.ts) the backward pass frees each tape
 * node's saved tensors and the gradients it received as soon as it moves past that node, walking
 * the layers last to first. So when it reaches layer i, alive per image are
 *
 *   stage(i) = Σ_{j < i} forward(j)      what the forward pass saved for the layers not yet visited
 *            + output(i)                 its own output (its later ops' saved tensors are freed by
 *                                        the time its first op runs)
 *            + dy(i) + dx(i)             the gradient flowing into it (its output's size) and the
 *                                        one it makes for its input (none before the first layer
 *                                        with weights; the model input's, unused, for a fused first
 *                                        Conv2D/Dense)
 *            + persistent                forward tensors off the gradient's path, never freed
 *                                        (Dropout's mask: 3 per element)
 *            + held(i)                   a residual Add's shortcut gradient, waiting for the branch
 *
 * and the activations' peak per image is the largest stage. Layers before the first one with
 * weights are never visited: their forward tensors stay for the whole step. The wasm conv
 * gradients' scratch (patch matrix, input copy, zero-inserted output gradient) exists only inside
 * layer i's backward and is added to stage(i) (sweepWorkspaces).
 *
 * Forward factors: `node --import tsx bench/memory-model.ts --probe --wasm` ("forward" column; the
 * fused BatchNormalization and the one-op ReLU6 keep 1 per element, a Conv2D with bias and relu 3).
 * The rest was fitted on real steps of bench/probe.ts's models (bench/probe.ts reports the error).
 */
import type { LayerDescription, ModelDescription } from '../shared/model';

const F32 = 4;

/** Forward tensors per output element kept until the layer's backward (wasm; default 1). */
export const SWEEP_FORWARD: Record<string, number> = { InputLayer: 0, Flatten: 0, Reshape: 0, Rescaling: 2, Dropout: 1 };

/**
 * Forward tensors per output element that are off the gradient's path, so the backward pass never
 * frees them: they stay for the whole step (Dropout's random mask and its scaled copy, …).
 */
export const SWEEP_PERSISTENT: Record<string, number> = { Dropout: 3 };

/**
 * Layer classes the model has no measured factor for: forward and backward temporaries of 3 per
 * output element each (the conservative side: above every measured layer on wasm).
 */
export const SWEEP_UNKNOWN_FACTOR = 3;

/**
 * The layers as a training step runs them. With a softmax/sigmoid head the loss takes the logits
 * (src/trainer/models/head.ts): the last layer runs without its activation, or a final
 * Activation/Softmax layer passes its input through — its tensors are not made.
 */
export function trainedLayers(desc: ModelDescription): LayerDescription[] {
  const head = desc.head;
  if (!head || head.logits === 'output') return desc.layers;
  let i = -1;
  desc.layers.forEach((l, j) => {
    if (l.name === head.layerName || l.name.endsWith(`/${head.layerName}`)) i = j;
  });
  if (i < 0) return desc.layers;
  if (head.logits === 'activation-layer') return desc.layers.filter((_, j) => j !== i);
  return desc.layers.map((l, j) => (j === i ? { ...l, activation: 'linear' } : l));
}

/** Elements of a tensor shape. */
export function elements(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Layers with a built-in activation: conv/matMul output, the separate bias add and the activation. */
const WITH_ACTIVATION = new Set(['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Conv2DTranspose', 'Dense']);

export function sweepForwardFactor(layer: LayerDescription): number {
  const act = layer.activation ?? 'linear';
  if (WITH_ACTIVATION.has(layer.className)) {
    const base = layer.className === 'SeparableConv2D' ? 2 : 1;
    return base + (act !== 'linear' ? 1 : 0) + (act === 'relu' && layer.useBias ? 1 : 0);
  }
  if (layer.className === 'Activation' && act === 'swish') return 2;
  return SWEEP_FORWARD[layer.className] ?? 1;
}

/** Bytes per image: the gradient into the layer, the one it makes for its input, its temporaries. */
export function sweepBackwardBytes(layer: LayerDescription, inputGradient: boolean, unknown = false): number {
  const out = elements(layer.outputShape);
  if (['Flatten', 'Reshape', 'InputLayer'].includes(layer.className)) return 0;
  const dx = inputGradient ? (layer.inputElements ?? out) : 0;
  return ((unknown ? 1 + SWEEP_UNKNOWN_FACTOR : 1) * out + dx) * F32;
}

/**
 * tfjs runs a Conv2D or Dense whose activation it does not fuse while recording gradients (linear,
 * tanh, sigmoid, …; not relu or elu) as one fused op with its own gradient function, which computes
 * the gradient for its input even when nothing needs it. For the first layer with weights that is a
 * tensor the size of the model's input, alive until the backward pass ends (measured on a stride-2
 * 'valid' Conv2D stem with a bias: bench/probe.ts mixed-functional). Elements per image.
 */
export function unusedInputGradientElements(desc: ModelDescription): number {
  const first = desc.layers.find((l) => l.trainableParams > 0);
  if (!first || !['Conv2D', 'Dense'].includes(first.className)) return 0;
  return ['relu', 'elu'].includes(first.activation ?? 'linear') ? 0 : (first.inputElements ?? 0);
}

export interface Sweep {
  /** stage(i) in bytes per image, one per layer (0 for layers the backward pass does not visit). */
  stages: number[];
  /** Bytes per image alive at the sweep's peak. */
  peakBytesPerSample: number;
}

/**
 * The backward sweep over a model's layers (in the description's order, which is topological).
 * `unknown`: classes without measured factors (counted with SWEEP_UNKNOWN_FACTOR).
 */
export function backwardSweep(desc: ModelDescription, unknown: ReadonlySet<string> = new Set()): Sweep {
  const persistent = desc.layers.reduce((n, l) => n + (SWEEP_PERSISTENT[l.className] ?? 0) * elements(l.outputShape) * F32, 0);
  const held = heldGradients(desc);
  let kept = 0;
  let trainableBefore = false;
  const stages: number[] = [];
  for (const [i, l] of desc.layers.entries()) {
    const forward = (unknown.has(l.className) ? SWEEP_UNKNOWN_FACTOR : sweepForwardFactor(l)) * elements(l.outputShape) * F32;
    const visited = trainableBefore || l.trainableParams > 0;
    // The first layer with weights may make a gradient for the model input that nothing uses.
    const unused = visited && !trainableBefore ? unusedInputGradientElements(desc) * F32 : 0;
    // Inside its backward a layer's later ops have already freed their saved tensors: its output remains.
    const own = visited ? Math.min(forward, elements(l.outputShape) * F32) + sweepBackwardBytes(l, trainableBefore, unknown.has(l.className)) + unused + (held[i] ?? 0) : forward;
    stages.push(persistent + kept + own);
    kept += forward;
    trainableBefore ||= l.trainableParams > 0;
  }
  return { stages, peakBytesPerSample: Math.max(0, ...stages) };
}

/**
 * A residual Add hands its gradient to both inputs; the one for the shortcut waits, alive, until
 * the backward pass reaches the branch point. Descriptions have no graph, so it is counted for every
 * layer between the previous Add (or the model's start) and this one: bytes per image, per layer.
 */
function heldGradients(desc: ModelDescription): number[] {
  const held = desc.layers.map(() => 0);
  let from = 0;
  desc.layers.forEach((l, k) => {
    if (l.className !== 'Add') return;
    for (let j = from; j < k; j++) held[j]! += elements(l.outputShape) * F32;
    from = k + 1;
  });
  return held;
}

/**
 * Floats of a Conv2D layer's patch matrix per image (0 for other layers, and for 1×1 stride-1
 * layers, whose filter gradient our SIMD kernel computes from x and dy in place).
 */
export function patchElements(l: LayerDescription): number {
  if (l.className !== 'Conv2D' || l.outputShape.length !== 3) return 0;
  const [h, w, c] = l.outputShape as [number, number, number];
  const kernel = l.trainableParams > 0 ? l.trainableParams - (l.useBias ? c : 0) : l.params - (l.useBias ? c : 0);
  if (c <= 0 || kernel <= 0) return 0;
  const [sh = 1, sw = sh] = l.strides ?? [];
  const pointwise = sh === 1 && sw === 1 && l.inputElements === h * w * (kernel / c);
  return pointwise ? 0 : h * w * (kernel / c);
}

/**
 * Floats per image of the zero-inserted output gradient the wasm backend's input gradient of a
 * strided Conv2D builds ((H−1)·s+1 × (W−1)·s+1 × C; src/trainer/kernels/conv2d-backprop-input.ts).
 */
export function zeroInsertElements(l: LayerDescription): number {
  const [sh = 1, sw = sh] = l.strides ?? [];
  if (l.className !== 'Conv2D' || l.outputShape.length !== 3 || (sh === 1 && sw === 1)) return 0;
  const [h, w, c] = l.outputShape as [number, number, number];
  return ((h - 1) * sh + 1) * ((w - 1) * sw + 1) * c;
}

export interface Workspace {
  cappedBytesPerSample: number;
  restBytesPerSample: number;
}

/**
 * The wasm conv gradients' scratch, alive only inside the conv's backward: the filter gradient's
 * patch matrix (split by batch to stay under a cap) with a channel-major copy of the layer's input,
 * or the strided input gradient's zero-inserted copy of the output gradient. It adds to stage(i),
 * so the step's peak grows only by what stage(i) + scratch exceeds the sweep's peak. Returns, per
 * conv, per image: the capped part (the patch matrix) and the uncapped part less the room below
 * the peak (may be negative). Which conv is the peak depends on the batch (the cap): the step takes
 * the largest (bytesForBatch).
 */
export function sweepWorkspaces(desc: ModelDescription, sweep: Sweep): Workspace[] {
  const list: Workspace[] = [];
  desc.layers.forEach((l, i) => {
    const patch = patchElements(l);
    const up = zeroInsertElements(l);
    if (patch === 0 && up === 0) return;
    const room = sweep.peakBytesPerSample - (sweep.stages[i] ?? 0);
    const copy = patch > 0 ? (l.inputElements ?? 0) : 0;
    list.push(patch + copy >= up ? { cappedBytesPerSample: patch * F32, restBytesPerSample: copy * F32 - room } : { cappedBytesPerSample: 0, restBytesPerSample: up * F32 - room });
  });
  return list;
}

/** Of a batch's workspaces, the bytes the largest adds: min(capped × batch, cap) + rest × batch. */
export function workspaceBytes(list: Workspace[], batch: number, capBytes: number): number {
  return Math.max(0, ...list.map((w) => Math.min(w.cappedBytesPerSample * batch, capBytes) + w.restBytesPerSample * batch));
}
