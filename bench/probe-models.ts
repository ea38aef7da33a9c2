/**
 * The models × budgets of the probe benchmarks (bench/probe.ts, bench/probe-epoch.ts) and the
 * oracle both use: real training steps (wasm backend + our kernels, in this process) at any batch
 * size, each step's peak of live tensor bytes measured (src/trainer/probe/peak.ts).
 */
import type { OptimizerName } from '../src/core/shared/model';
import { buildModel } from '../src/trainer/models/zoo';
import type { PeakTracker } from '../src/trainer/probe/peak';
import { tf } from '../src/trainer/tf';
import { makeOptimizer, trainStep } from '../src/trainer/train/step';

export const CLASSES = 10;
export const SHAPE: [number, number, number] = [32, 32, 3];

export interface Case {
  name: string;
  optimizer: OptimizerName;
  build: () => Promise<tf.LayersModel>;
  /** Target true maxima for the two budgets. */
  targets: [number, number];
}

function sym(x: tf.SymbolicTensor | tf.SymbolicTensor[] | tf.Tensor | tf.Tensor[]): tf.SymbolicTensor {
  return x as tf.SymbolicTensor;
}

/** A functional net: stride-2 valid conv, separable conv, LeakyReLU, Concatenate, Dropout, GAP. */
function mixedNet(): tf.LayersModel {
  const input = tf.input({ shape: SHAPE });
  let x = sym(tf.layers.rescaling({ scale: 1 / 255 }).apply(input));
  x = sym(tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'valid' }).apply(x));
  x = sym(tf.layers.leakyReLU({ alpha: 0.1 }).apply(x));
  const a = sym(tf.layers.separableConv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x));
  const b = sym(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x));
  x = sym(tf.layers.concatenate().apply([a, b]));
  x = sym(tf.layers.batchNormalization().apply(x));
  x = sym(tf.layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'elu' }).apply(x));
  x = sym(tf.layers.globalAveragePooling2d({}).apply(x));
  x = sym(tf.layers.dropout({ rate: 0.3 }).apply(x));
  return tf.model({ inputs: input, outputs: sym(tf.layers.dense({ units: CLASSES }).apply(x)) });
}

/** A wide MLP (most of its memory is weights: the SGD update's temporaries matter). */
function wideMlp(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.rescaling({ scale: 1 / 255, inputShape: SHAPE }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 1024, activation: 'tanh' }));
  m.add(tf.layers.dense({ units: 512, activation: 'relu' }));
  m.add(tf.layers.dense({ units: CLASSES }));
  return m;
}

/** A VGG-style stack: two convs per stage, max pooling, dropout. */
function vggSmall(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.rescaling({ scale: 1 / 255, inputShape: SHAPE }));
  for (const f of [16, 32]) {
    m.add(tf.layers.conv2d({ filters: f, kernelSize: 3, padding: 'same', activation: 'relu' }));
    m.add(tf.layers.conv2d({ filters: f, kernelSize: 3, padding: 'same', activation: 'relu' }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    m.add(tf.layers.dropout({ rate: 0.25 }));
  }
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 128, activation: 'relu' }));
  m.add(tf.layers.dense({ units: CLASSES }));
  return m;
}

/** BN/ReLU stack with a residual Add, stride-2 'valid' convs mid-network, dropout, global max pooling. */
function bnResidual(): tf.LayersModel {
  const input = tf.input({ shape: SHAPE });
  let x = sym(tf.layers.rescaling({ scale: 1 / 255 }).apply(input));
  x = sym(tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'valid', useBias: false }).apply(x));
  x = sym(tf.layers.reLU().apply(sym(tf.layers.batchNormalization().apply(x))));
  let y = sym(tf.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', useBias: false }).apply(x));
  y = sym(tf.layers.reLU().apply(sym(tf.layers.batchNormalization().apply(y))));
  x = sym(tf.layers.dropout({ rate: 0.2 }).apply(sym(tf.layers.add().apply([x, y]))));
  x = sym(tf.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu' }).apply(x));
  x = sym(tf.layers.globalMaxPooling2d({}).apply(x));
  return tf.model({ inputs: input, outputs: sym(tf.layers.dense({ units: CLASSES }).apply(x)) });
}

/** Separable and depthwise blocks with tanh, ReLU6 and sigmoid, average pooling, an ELU dense head. */
function separableBlocks(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.rescaling({ scale: 1 / 255, inputShape: SHAPE }));
  m.add(tf.layers.separableConv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'tanh' }));
  m.add(tf.layers.averagePooling2d({ poolSize: 2 }));
  m.add(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false }));
  m.add(tf.layers.reLU({ maxValue: 6 }));
  m.add(tf.layers.separableConv2d({ filters: 32, kernelSize: 3, padding: 'same' }));
  m.add(tf.layers.activation({ activation: 'sigmoid' }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 64, activation: 'elu' }));
  m.add(tf.layers.dense({ units: CLASSES }));
  return m;
}

export const CASES: Case[] = [
  { name: 'tutorial-cnn', optimizer: 'adam', build: () => buildModel({ model: 'tutorial-cnn' }, SHAPE, CLASSES), targets: [24, 96] },
  { name: 'resnet-small', optimizer: 'momentum', build: () => buildModel({ model: 'resnet-small' }, SHAPE, CLASSES), targets: [16, 48] },
  { name: 'mobilenet-v2-0.35', optimizer: 'rmsprop', build: () => buildModel({ model: 'mobilenet-v2', widthMultiplier: 0.35 }, SHAPE, CLASSES), targets: [12, 40] },
  { name: 'mlp-wide', optimizer: 'sgd', build: async () => wideMlp(), targets: [32, 160] },
  { name: 'vgg-small', optimizer: 'sgd', build: async () => vggSmall(), targets: [16, 64] },
  { name: 'mixed-functional', optimizer: 'adam', build: async () => mixedNet(), targets: [16, 64] },
  { name: 'bn-residual', optimizer: 'momentum', build: async () => bnResidual(), targets: [16, 48] },
  { name: 'separable-blocks', optimizer: 'rmsprop', build: async () => separableBlocks(), targets: [16, 48] },
];

/** Real steps at any batch size on one model, each step's peak measured once and cached. */
export class Oracle {
  private readonly peaks = new Map<number, number>();
  private constructor(
    private readonly model: tf.LayersModel,
    private readonly optimizer: tf.Optimizer,
    private readonly tracker: PeakTracker,
  ) {}

  static async create(c: Case, tracker: PeakTracker): Promise<Oracle> {
    const model = await c.build();
    const o = new Oracle(model, makeOptimizer(c.optimizer, 0.001), tracker);
    await o.step(1); // creates the optimizer's slots
    o.peaks.clear();
    return o;
  }

  private async step(b: number): Promise<number> {
    const x = tf.randomUniform([b, ...SHAPE], 0, 255, 'float32', b);
    const y = tf.tensor1d(Array.from({ length: b }, (_, i) => i % CLASSES), 'int32');
    this.tracker.reset();
    await trainStep(this.model, this.optimizer, [{ x, y }], CLASSES);
    const peak = this.tracker.peak();
    tf.dispose([x, y]);
    return peak;
  }

  async peak(b: number): Promise<number> {
    let p = this.peaks.get(b);
    if (p === undefined) {
      p = await this.step(b);
      this.peaks.set(b, p);
    }
    return p;
  }

  get measured(): ReadonlyMap<number, number> {
    return this.peaks;
  }

  dispose(): void {
    this.model.dispose();
    this.optimizer.dispose();
  }
}

