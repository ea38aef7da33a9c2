/**
 * Calibrates the memory model (src/core/planning/memory.ts) against real training steps.
 *
 *   node --import tsx bench/memory-model.ts            # measure (cached) and compare
 *   node --import tsx bench/memory-model.ts --remeasure # ignore the cache
 *   node --import tsx bench/memory-model.ts --probe    # per-layer factors from single-layer probes
 *   node --import tsx bench/memory-model.ts --only resnet-small
 *   node --import tsx bench/memory-model.ts --wasm     # cross-check on wasm + our training kernels
 *
 * For each point (model, input size, batch, optimizer) it builds the zoo model on the tfjs cpu
 * backend, runs one warm-up training step (creates the optimizer slots), then a second step while
 * recording two peaks:
 *
 *  - `buffers`: peak bytes of distinct backend data buffers (what a device really holds; reshapes and
 *    the tape's clones share a buffer). Measured by wrapping the backend's write/move/disposeData, so
 *    it also sees buffers that kernels allocate internally through the backend.
 *  - `engine`: tf.profile().peakBytes, the engine's per-tensor count. It counts a buffer once per
 *    tensor that views it (the tape keeps an Identity clone of most saved tensors), so it overstates.
 *
 * The memory model is calibrated against `buffers`. Measurements are cached in
 * bench/.data/memory-measurements.json (git-ignored); the table compares them with estimateMemory.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { bytesForBatch, estimateMemory } from '../src/core/planning/memory';
import type { ModelDescription, OptimizerName } from '../src/core/shared/model';
import { describeModel } from '../src/trainer/models/describe';
import { buildModel } from '../src/trainer/models/zoo';
import { initBackend } from '../src/trainer/backend';
import { tf } from '../src/trainer/tf';
import { cpuLine } from './util';

interface Point {
  backend?: 'cpu' | 'wasm';
  model: string;
  size: number;
  batch: number;
  optimizer: OptimizerName;
}

interface Measurement extends Point {
  /** Peak of distinct buffers above what was live before the model was built: max(backward, update). */
  buffers: number;
  /** Peak during forward + backward (optimizer.computeGradients). */
  backward: number;
  /** Peak during optimizer.applyGradients. */
  update: number;
  /** wasm only: the wasm heap's size after the step (it grows and never shrinks). */
  heap?: number;
  engine: number;
  ms: number;
  description: ModelDescription;
}

const CACHE = 'bench/.data/memory-measurements.json';
const CLASSES = 10;

/** The points: small inputs keep the cpu backend's slow conv gradients affordable on 2 cores. */
const POINTS: Point[] = [
  ...[1, 4, 16].map((batch) => ({ model: 'tutorial-cnn', size: 32, batch, optimizer: 'adam' as const })),
  ...[2, 8].map((batch) => ({ model: 'tutorial-cnn', size: 64, batch, optimizer: 'sgd' as const })),
  { model: 'tutorial-cnn', size: 48, batch: 8, optimizer: 'momentum' },
  { model: 'tutorial-cnn', size: 48, batch: 8, optimizer: 'rmsprop' },
  ...[1, 4].map((batch) => ({ model: 'resnet-small', size: 16, batch, optimizer: 'adam' as const })),
  ...[2, 8].map((batch) => ({ model: 'resnet-small', size: 32, batch, optimizer: 'sgd' as const })),
  ...[1, 4].map((batch) => ({ model: 'mobilenet-v2', size: 32, batch, optimizer: 'adam' as const })),
  ...[2, 8].map((batch) => ({ model: 'mobilenet-v2', size: 64, batch, optimizer: 'sgd' as const })),
  { model: 'mobilenet-v2', size: 64, batch: 4, optimizer: 'rmsprop' },
];

/** Cross-check on the backend training actually uses here (wasm + our kernels): the bigger points. */
const WASM_POINTS: Point[] = [
  { model: 'tutorial-cnn', size: 64, batch: 8, optimizer: 'sgd' },
  { model: 'tutorial-cnn', size: 128, batch: 16, optimizer: 'adam' },
  { model: 'resnet-small', size: 32, batch: 32, optimizer: 'momentum' },
  { model: 'mobilenet-v2', size: 32, batch: 1, optimizer: 'adam' },
  { model: 'mobilenet-v2', size: 96, batch: 16, optimizer: 'sgd' },
];

function bytesPerElement(dtype: string): number {
  return dtype === 'bool' ? 1 : dtype === 'complex64' ? 8 : 4;
}

/** Wraps the active backend so that live and peak bytes of distinct data buffers can be read. */
function trackBuffers(): { reset(): void; peak(): number; live(): number } {
  type Storage = { has(id: object): boolean };
  const backend = tf.backend() as unknown as {
    data?: Storage; // cpu
    dataIdMap?: Storage; // wasm
    write(values: unknown, shape: number[], dtype: string): object;
    move(dataId: object, values: unknown, shape: number[], dtype: string, refCount: number): void;
    disposeData(dataId: object, force?: boolean): boolean;
    makeOutput?(shape: number[], dtype: string, memoryOffset?: number, values?: unknown): { dataId: object };
  };
  const storage = (backend.data ?? backend.dataIdMap) as Storage;
  const sizes = new WeakMap<object, number>();
  let live = 0;
  let peak = 0;
  const add = (id: object, shape: number[], dtype: string): void => {
    if (sizes.has(id)) return;
    const bytes = shape.reduce((a, b) => a * b, 1) * bytesPerElement(dtype);
    sizes.set(id, bytes);
    live += bytes;
    if (live > peak) peak = live;
  };
  const write = backend.write.bind(backend);
  const move = backend.move.bind(backend);
  const disposeData = backend.disposeData.bind(backend);
  backend.write = (values, shape, dtype) => {
    const id = write(values, shape, dtype);
    add(id, shape, dtype);
    return id;
  };
  backend.move = (dataId, values, shape, dtype, refCount) => {
    move(dataId, values, shape, dtype, refCount);
    add(dataId, shape, dtype);
  };
  backend.disposeData = (dataId, force) => {
    const r = disposeData(dataId, force);
    const bytes = sizes.get(dataId);
    if (bytes !== undefined && !storage.has(dataId)) {
      live -= bytes;
      sizes.delete(dataId);
    }
    return r;
  };
  const makeOutput = backend.makeOutput?.bind(backend);
  if (makeOutput) {
    // wasm: outputs placed at a given heap offset bypass write().
    backend.makeOutput = (shape, dtype, memoryOffset, values) => {
      const info = makeOutput(shape, dtype, memoryOffset, values);
      add(info.dataId, shape, dtype);
      return info;
    };
  }
  return { reset: () => (peak = live), peak: () => peak, live: () => live };
}

function makeOptimizer(name: OptimizerName): tf.Optimizer {
  switch (name) {
    case 'sgd':
      return tf.train.sgd(0.01);
    case 'momentum':
      return tf.train.momentum(0.01, 0.9);
    case 'adam':
      return tf.train.adam(0.001);
    case 'rmsprop':
      return tf.train.rmsprop(0.001);
  }
}

/** Live bytes before/after and the peaks of the two phases of `optimizer.minimize`. */
function trainStepPeaks(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  x: tf.Tensor,
  labels: tf.Tensor,
  tracker: ReturnType<typeof trackBuffers>,
): { backward: number; update: number; forward: number } {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  let forward = 0;
  const loss = (): tf.Scalar => {
    const logits = model.apply(x, { training: true }) as tf.Tensor;
    forward = tracker.live(); // what the forward pass keeps for the backward pass
    return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
  };
  // The same two phases as optimizer.minimize(): gradients (forward + backward in one tidy), then the update.
  tracker.reset();
  const { value, grads } = optimizer.computeGradients(loss, vars);
  const backward = tracker.peak();
  tracker.reset();
  optimizer.applyGradients(grads);
  const update = tracker.peak();
  tf.dispose([value, ...Object.values(grads)]);
  return { backward, update, forward };
}

function oneHot(batch: number, classes: number): tf.Tensor {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % classes), 'int32'), classes), 'float32'));
}

async function measure(p: Point, tracker: ReturnType<typeof trackBuffers>): Promise<Measurement> {
  const before = tracker.live();
  const shape: [number, number, number] = [p.size, p.size, 3];
  const model = await buildModel({ model: p.model }, shape, CLASSES);
  const description = describeModel(model, p.model, shape, CLASSES);
  const optimizer = makeOptimizer(p.optimizer);
  const x = tf.randomUniform([p.batch, ...shape], 0, 255);
  const labels = oneHot(p.batch, CLASSES);
  trainStepPeaks(model, optimizer, x, labels, tracker); // warm-up: creates the optimizer's slots
  const t0 = Date.now();
  let peaks = { backward: 0, update: 0 };
  const info = await tf.profile(() => {
    peaks = trainStepPeaks(model, optimizer, x, labels, tracker);
  });
  const ms = Date.now() - t0;
  const m: Measurement = {
    ...p,
    buffers: Math.max(peaks.backward, peaks.update) - before,
    backward: peaks.backward - before,
    update: peaks.update - before,
    engine: info.peakBytes,
    ms,
    description,
  };
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.length;
  if (heap !== undefined) m.heap = heap;
  tf.dispose([x, labels]);
  optimizer.dispose();
  model.dispose();
  return m;
}

/**
 * Probes: per-image bytes a single layer adds between two batch sizes, in units of its output
 * elements × 4, i.e. the factor the memory model uses. The probed layer sits between a stem conv
 * (so a gradient flows into it, as in a real network) and Flatten → Dense(2); the same net without
 * it is the reference.
 */
async function probe(tracker: ReturnType<typeof trackBuffers>): Promise<void> {
  const shape: [number, number, number] = [16, 16, 8];
  const probes: [string, () => tf.layers.Layer][] = [
    ['Conv2D linear', () => tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false })],
    ['Conv2D linear+bias', () => tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same' })],
    ['Conv2D relu+bias', () => tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' })],
    ['Conv2D relu', () => tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', useBias: false })],
    ['DepthwiseConv2D linear', () => tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false })],
    ['Dense relu+bias', () => tf.layers.dense({ units: 8, activation: 'relu' })],
    ['Dense linear+bias', () => tf.layers.dense({ units: 8 })],
    ['BatchNormalization', () => tf.layers.batchNormalization({})],
    ['ReLU', () => tf.layers.reLU({})],
    ['ReLU6', () => tf.layers.reLU({ maxValue: 6 })],
    ['Activation relu', () => tf.layers.activation({ activation: 'relu' })],
    ['MaxPooling2D', () => tf.layers.maxPooling2d({ poolSize: 2 })],
    ['AveragePooling2D', () => tf.layers.averagePooling2d({ poolSize: 2 })],
    ['Dropout', () => tf.layers.dropout({ rate: 0.5 })],
    ['Add', () => tf.layers.add({})],
    ['Activation tanh', () => tf.layers.activation({ activation: 'tanh' })],
    ['Activation elu', () => tf.layers.activation({ activation: 'elu' })],
    ['Activation sigmoid', () => tf.layers.activation({ activation: 'sigmoid' })],
    ['Activation selu', () => tf.layers.activation({ activation: 'selu' })],
    ['Activation softplus', () => tf.layers.activation({ activation: 'softplus' })],
    ['Activation swish', () => tf.layers.activation({ activation: 'swish' })],
    ['LeakyReLU', () => tf.layers.leakyReLU({ alpha: 0.1 })],
    ['ELU', () => tf.layers.elu({})],
    ['Conv2D tanh+bias', () => tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'tanh' })],
    ['Conv2D elu+bias', () => tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'elu' })],
    ['DepthwiseConv2D relu+bias', () => tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'relu' })],
    ['SeparableConv2D linear', () => tf.layers.separableConv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false })],
    ['SeparableConv2D relu+bias', () => tf.layers.separableConv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' })],
    ['Conv2D s2 valid linear', () => tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid', useBias: false })],
    ['GlobalAveragePooling2D', () => tf.layers.globalAveragePooling2d({})],
    ['GlobalMaxPooling2D', () => tf.layers.globalMaxPooling2d({})],
    ['Concatenate', () => tf.layers.concatenate({})],
    ['UpSampling2D', () => tf.layers.upSampling2d({})],
  ];
  const slope = async (make: (() => tf.layers.Layer) | undefined): Promise<{ slope: number; forward: number; outElems: number }> => {
    const build = (): { model: tf.LayersModel; outElems: number } => {
      const input = tf.input({ shape });
      let x = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false }).apply(input) as tf.SymbolicTensor;
      let outElems = 0;
      if (make) {
        const layer = make();
        x = layer.apply(['Add', 'Concatenate'].includes(layer.getClassName()) ? [x, x] : x) as tf.SymbolicTensor;
        outElems = (x.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
      }
      if (x.shape.length > 2) x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
      return { model: tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2 }).apply(x) as tf.SymbolicTensor }), outElems };
    };
    const peaks: number[] = [];
    const forwards: number[] = [];
    let outElems = 0;
    for (const batch of [2, 6]) {
      const { model, outElems: n } = build();
      outElems = n;
      const optimizer = tf.train.sgd(0.01);
      const x = tf.randomUniform([batch, ...shape]);
      const labels = oneHot(batch, 2);
      trainStepPeaks(model, optimizer, x, labels, tracker);
      const p = trainStepPeaks(model, optimizer, x, labels, tracker);
      peaks.push(p.backward);
      forwards.push(p.forward);
      tf.dispose([x, labels]);
      optimizer.dispose();
      model.dispose();
    }
    return { slope: ((peaks[1] as number) - (peaks[0] as number)) / 4, forward: ((forwards[1] as number) - (forwards[0] as number)) / 4, outElems };
  };
  const ref = await slope(undefined);
  console.log('Per-layer factors (extra bytes per image / (4 × output elements)):');
  if (tf.getBackend() === 'wasm') console.log('  (wasm frees activations during the backward pass: only the "forward" column is a factor of its model, src/core/planning/memory-sweep.ts)');
  for (const [name, make] of probes) {
    const r = await slope(make);
    // Also per input element (16×16×8): what layers whose backward keeps their input (pooling to a vector) cost.
    const inElems = shape.reduce((a, b) => a * b, 1);
    const out = 4 * r.outElems;
    console.log(`  ${name.padEnd(28)} ${((r.slope - ref.slope) / out).toFixed(2)} per output element (forward ${((r.forward - ref.forward) / out).toFixed(2)})   ${((r.slope - ref.slope) / (4 * inElems)).toFixed(2)} per input element`);
  }
}

function key(p: Point): string {
  return `${p.backend ?? 'cpu'}:${p.model}@${p.size}x${p.batch}/${p.optimizer}`;
}

function readCache(): Map<string, Measurement> {
  if (!existsSync(CACHE)) return new Map();
  const list = JSON.parse(readFileSync(CACHE, 'utf8')) as Measurement[];
  return new Map(list.map((m) => [key(m), m]));
}

/** Cached measurements to reuse (none with --remeasure; the file still keeps other backends' points). */
function loadCache(): Map<string, Measurement> {
  return process.argv.includes('--remeasure') ? new Map() : readCache();
}

function mib(b: number): string {
  return (b / 2 ** 20).toFixed(2);
}

async function main(): Promise<void> {
  const backend = process.argv.includes('--wasm') ? 'wasm' : 'cpu';
  if (backend === 'wasm') await initBackend('wasm');
  else await tf.setBackend('cpu');
  const tracker = trackBuffers();
  if (process.argv.includes('--probe')) return probe(tracker);
  const cache = loadCache();
  const results: Measurement[] = [];
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
  const points = (backend === 'wasm' ? WASM_POINTS : POINTS).map((p) => ({ ...p, backend }) as Point);
  for (const p of points.filter((q) => !only || q.model === only)) {
    let m = cache.get(key(p));
    if (!m) {
      m = await measure(p, tracker);
      process.stderr.write(`measured ${key(p)} in ${m.ms} ms\n`);
    }
    results.push(m);
  }
  mkdirSync('bench/.data', { recursive: true });
  const merged = new Map([...readCache(), ...results.map((m) => [key(m), m] as const)]);
  writeFileSync(CACHE, JSON.stringify([...merged.values()], null, 1));

  console.log(`Memory model vs one real training step (tfjs ${tf.version_core}, ${backend} backend), ${CLASSES} classes; MiB`);
  console.log('model          input  batch  optimizer  backward   update | measured  predicted   error | engine-count');
  if (backend === 'wasm') {
    for (const m of results) if (m.heap) console.log(`  after ${key(m)}: wasm heap ${mib(m.heap)} MiB (peak of live tensors so far ${mib(Math.max(...results.slice(0, results.indexOf(m) + 1).map((r) => r.buffers)))} MiB)`);
  }
  let sumAbs = 0;
  let worst = 0;
  const errors: number[] = [];
  for (const m of results) {
    const est = estimateMemory(m.description, { optimizer: m.optimizer, budgetBytes: Number.MAX_SAFE_INTEGER, headroom: 0, ...(m.backend === 'wasm' ? { backend: 'wasm' as const } : {}) });
    // Measured are tensor bytes: the runtime constant (FIXED_OVERHEAD) is not among them.
    const predicted = bytesForBatch(est, m.batch) - est.breakdown.overheadBytes;
    const err = (predicted - m.buffers) / m.buffers;
    sumAbs += Math.abs(err);
    errors.push(Math.abs(err));
    worst = Math.max(worst, Math.abs(err));
    console.log(
      `${m.model.padEnd(14)} ${String(m.size).padStart(5)}  ${String(m.batch).padStart(5)}  ${m.optimizer.padEnd(9)} ${mib(m.backward).padStart(8)} ${mib(m.update).padStart(8)} | ${mib(m.buffers).padStart(8)}  ${mib(predicted).padStart(9)}  ${(err * 100).toFixed(1).padStart(5)}% | ${mib(m.engine).padStart(9)}`,
    );
  }
  const sorted = [...errors].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  console.log(`mean |error| ${((sumAbs / results.length) * 100).toFixed(1)}%, median ${(median * 100).toFixed(1)}%, worst ${(worst * 100).toFixed(1)}% over ${results.length} points; CPU: ${cpuLine()}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

void main();
