/**
 * The torchrun engine's model translator (src/core/torchrun/template/tfjs_torch.py): each supported
 * layer, and each zoo model, built and saved with tfjs, then run in torch on the same weights and
 * input. The outputs agree within 1e-4 of the output's scale (max |torch − tfjs| / max |tfjs|), and
 * the model torch writes back as tfjs model.json + weights.bin predicts what the original did.
 * Needs Python with torch (Debian's python3-torch; CI installs it): skipped, saying so, without it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkModelFile, unsupportedLayer } from '../../src/core/torchrun/layers';
import { findTorchPython, type TorchPython } from '../../src/core/torchrun/python';
import { templatePath } from '../../src/core/torchrun/template-files';
import { fileSaveHandler, loadLayersModelFromFile } from '../../src/trainer/model-io';
import { mobilenetV2, resnetSmall, tutorialCnn } from '../../src/trainer/models/zoo';
import { tf } from '../../src/trainer/tf';
import { rng } from '../helpers/tiny-dataset';

type Build = () => tf.LayersModel;
// Height 8 with stride 2 and kernel 3: 'same' pads 1 in all, TensorFlow's row at the bottom; width 9 pads evenly.
const S = [8, 9, 3] as [number, number, number];

function seq(layers: tf.layers.Layer[], inputShape: number[] = S): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.inputLayer({ inputShape }));
  for (const l of layers) m.add(l);
  return m;
}

function functional(body: (x: tf.SymbolicTensor) => tf.SymbolicTensor, inputShape: number[] = S): tf.LayersModel {
  const input = tf.input({ shape: inputShape });
  return tf.model({ inputs: input, outputs: body(input) });
}

const apply = (l: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]): tf.SymbolicTensor => l.apply(x) as tf.SymbolicTensor;

/** One small model per supported layer (and the settings that change how it pads, flattens or scales). */
const LAYER_CASES: [string, Build][] = [
  ['Conv2D same stride 2 (uneven padding: TensorFlow pads the bottom)', () => seq([tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' })])],
  ['Conv2D same stride 1, even kernel', () => seq([tf.layers.conv2d({ filters: 5, kernelSize: 2, padding: 'same' })])],
  ['Conv2D valid, dilation 2, no bias', () => seq([tf.layers.conv2d({ filters: 3, kernelSize: 3, dilationRate: 2, useBias: false })])],
  ['DepthwiseConv2D depthMultiplier 2, same stride 2', () => seq([tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same' })])],
  ['SeparableConv2D depthMultiplier 2, same stride 2, relu', () => seq([tf.layers.separableConv2d({ filters: 6, kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same', activation: 'relu' })])],
  ['SeparableConv2D, same stride 1, no bias', () => seq([tf.layers.separableConv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false })])],
  ['Flatten then Dense (NHWC flatten order)', () => seq([tf.layers.flatten(), tf.layers.dense({ units: 5 })])],
  ['Dense on a feature map (last axis)', () => seq([tf.layers.dense({ units: 4, activation: 'tanh' })])],
  ['BatchNormalization (epsilon 1e-3, momentum 0.99)', () => seq([tf.layers.batchNormalization({ epsilon: 1e-3, momentum: 0.99 })])],
  ['BatchNormalization without scale and center', () => seq([tf.layers.batchNormalization({ scale: false, center: false })])],
  ['MaxPooling2D same, pool 3 stride 2', () => seq([tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' })])],
  ['MaxPooling2D valid', () => seq([tf.layers.maxPooling2d({ poolSize: 2 })])],
  ['AveragePooling2D same (pixels inside only)', () => seq([tf.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' })])],
  ['AveragePooling2D valid', () => seq([tf.layers.averagePooling2d({ poolSize: 2, strides: 1 })])],
  ['GlobalAveragePooling2D', () => seq([tf.layers.globalAveragePooling2d({})])],
  ['GlobalMaxPooling2D', () => seq([tf.layers.globalMaxPooling2d({})])],
  ['Dropout (inference: identity)', () => seq([tf.layers.dropout({ rate: 0.5 }), tf.layers.conv2d({ filters: 2, kernelSize: 1 })])],
  ['ReLU', () => seq([tf.layers.reLU({})])],
  ['ReLU maxValue 6 (ReLU6)', () => seq([tf.layers.reLU({ maxValue: 6 })])],
  ['LeakyReLU', () => seq([tf.layers.leakyReLU({ alpha: 0.2 })])],
  ['Activation relu6', () => seq([tf.layers.activation({ activation: 'relu6' })])],
  ['Activation softmax head', () => seq([tf.layers.flatten(), tf.layers.dense({ units: 4 }), tf.layers.activation({ activation: 'softmax' })])],
  ['Dense sigmoid head', () => seq([tf.layers.globalAveragePooling2d({}), tf.layers.dense({ units: 1, activation: 'sigmoid' })])],
  ['Softmax layer', () => seq([tf.layers.globalAveragePooling2d({}), tf.layers.softmax()])],
  ['Rescaling 1/127.5 − 1', () => seq([tf.layers.rescaling({ scale: 1 / 127.5, offset: -1 })])],
  ['ZeroPadding2D asymmetric', () => seq([tf.layers.zeroPadding2d({ padding: [[1, 2], [0, 3]] }), tf.layers.conv2d({ filters: 2, kernelSize: 2 })])],
  [
    'Add (functional)',
    () => functional((x) => apply(tf.layers.add(), [apply(tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }), x), x])),
  ],
  [
    'Concatenate on channels (functional)',
    () => functional((x) => apply(tf.layers.concatenate({ axis: -1 }), [apply(tf.layers.conv2d({ filters: 2, kernelSize: 1 }), x), x])),
  ],
];

/** tfjs 4.22's SeparableConv2D leaves depth_multiplier out of its saved config, so tfjs cannot load its own file back (torch reads it from the weights). */
const TFJS_CANNOT_RELOAD = new Set(['SeparableConv2D depthMultiplier 2, same stride 2, relu']);

const ZOO_CASES: [string, Build, number[]][] = [
  ['tutorial-cnn', () => tutorialCnn([28, 28, 1], 10), [28, 28, 1]],
  ['mobilenet-v2 (alpha 0.35)', () => mobilenetV2([32, 32, 3], 10, 0.35), [32, 32, 3]],
  ['resnet-small', () => resnetSmall([32, 32, 3], 10), [32, 32, 3]],
];

/** Random moving statistics, gamma and beta: a freshly built BatchNormalization would be near the identity. */
function perturbBatchNorm(model: tf.LayersModel, rand: () => number): void {
  for (const l of model.layers) {
    if (l.getClassName() !== 'BatchNormalization') continue;
    const names = l.weights.map((v) => v.name);
    l.setWeights(
      l.getWeights().map((w, i) => {
        const name = names[i] ?? '';
        const n = w.size;
        const v = Float32Array.from({ length: n }, () => (/variance/.test(name) ? 0.5 + rand() : /gamma/.test(name) ? 0.5 + rand() : rand() - 0.5));
        return tf.tensor(v, w.shape);
      }),
    );
  }
}

/** A file's bytes as float32 (a Buffer may be a view into a larger pool). */
function floats(b: Buffer): Float32Array {
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

interface Case {
  name: string;
  expected: Float32Array;
  output: string;
  /** The model torch wrote back as tfjs model.json + weights.bin. */
  back: string;
  input: Float32Array;
  shape: number[];
}

/** max |got − want| / max |want|, asserting the case tests something. */
function relativeError(name: string, got: Float32Array, want: Float32Array): number {
  assert.equal(got.length, want.length, `${name}: ${got.length} values, expected ${want.length}`);
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < got.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(want[i]!));
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
  }
  assert.ok(maxRef > 0, `${name}: the tfjs output is all zeros (the case tests nothing)`);
  return maxDiff / maxRef;
}

describe('torchrun translator: tfjs Layers → torch.nn, forward pass equal', () => {
  let py: TorchPython | undefined;
  let skip = '';
  let dir = '';
  const cases: Case[] = [];
  let results = new Map<string, Float32Array>();

  before(async () => {
    await tf.setBackend('cpu');
    try {
      py = await findTorchPython();
    } catch (e) {
      skip = (e as Error).message;
      return;
    }
    dir = mkdtempSync(join(tmpdir(), 'ba-translate-'));
    const rand = rng(7);
    const list = [...LAYER_CASES.map(([n, b]) => [n, b, S] as [string, Build, number[]]), ...ZOO_CASES];
    const specs: object[] = [];
    for (const [i, [name, build, shape]] of list.entries()) {
      const model = build();
      perturbBatchNorm(model, rand);
      const folder = join(dir, `m${i}`);
      await model.save(fileSaveHandler(folder));
      const n = 2;
      const scale = ZOO_CASES.some((z) => z[0] === name) ? 255 : 2; // zoo models take raw pixels
      const x = Float32Array.from({ length: n * shape.reduce((a, b) => a * b, 1) }, () => (scale === 255 ? rand() * 255 : (rand() - 0.5) * 2 * scale));
      const input = join(folder, 'x.f32');
      writeFileSync(input, Buffer.from(x.buffer));
      const y = tf.tidy(() => model.predict(tf.tensor(x, [n, ...shape])) as tf.Tensor);
      cases.push({ name, expected: y.dataSync() as Float32Array, output: join(folder, 'y.f32'), back: join(folder, 'back', 'model.json'), input: x, shape: [n, ...shape] });
      y.dispose();
      model.dispose();
      specs.push({ model: join(folder, 'model.json'), input, shape: [n, ...shape], output: join(folder, 'y.f32'), save: join(folder, 'back') });
    }
    writeFileSync(join(dir, 'cases.json'), JSON.stringify(specs));
    execFileSync(py.python, [templatePath('tfjs_torch.py'), join(dir, 'cases.json')], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
    results = new Map(cases.map((c) => [c.name, floats(readFileSync(c.output))]));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const [name] of [...LAYER_CASES, ...ZOO_CASES]) {
    it(name, (t) => {
      if (skip) return t.skip(skip);
      const c = cases.find((x) => x.name === name)!;
      const rel = relativeError(name, results.get(name)!, c.expected);
      assert.ok(rel <= 1e-4, `${name}: torch's output differs from tfjs's by ${rel} of its scale (max 1e-4)`);
    });
    it(`${name}: written back as tfjs, predicts the same`, async (t) => {
      if (skip) return t.skip(skip);
      if (TFJS_CANNOT_RELOAD.has(name)) return t.skip('tfjs 4.22 cannot load this layer from its own saved config (depth_multiplier is not saved)');
      const c = cases.find((x) => x.name === name)!;
      const model = await loadLayersModelFromFile(c.back);
      const y = tf.tidy(() => model.predict(tf.tensor(c.input, c.shape)) as tf.Tensor);
      const rel = relativeError(name, y.dataSync() as Float32Array, c.expected);
      y.dispose();
      model.dispose();
      assert.ok(rel <= 1e-6, `${name}: the model written back predicts differently by ${rel} of the scale`);
    });
  }
});

describe('torchrun translator: unsupported layers are input errors', () => {
  it('names the layer and its class', () => {
    const modelJson = { modelTopology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Conv2D', config: { name: 'c1' } }, { class_name: 'LSTM', config: { name: 'lstm_1' } }] } } };
    assert.match(unsupportedLayer(modelJson, 'm.json') ?? '', /^m\.json: layer "lstm_1" \(LSTM\) is not supported by the torchrun engine; it translates .*Conv2D/);
  });

  it('refuses channels_first', () => {
    const modelJson = { modelTopology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Conv2D', config: { name: 'c1', data_format: 'channels_first' } }] } } };
    assert.match(unsupportedLayer(modelJson, 'm.json') ?? '', /layer "c1" \(Conv2D\) has data_format channels_first/);
  });

  it('accepts every zoo model', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ba-translate-zoo-'));
    try {
      for (const [name, build] of ZOO_CASES) {
        const m = build();
        await m.save(fileSaveHandler(join(dir, name)));
        m.dispose();
        assert.equal(checkModelFile(join(dir, name, 'model.json')), undefined, name);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the Python side refuses it too, exit 2 with the layer named', async (t) => {
    let py: TorchPython;
    try {
      py = await findTorchPython();
    } catch (e) {
      return t.skip((e as Error).message);
    }
    const dir = mkdtempSync(join(tmpdir(), 'ba-translate-bad-'));
    try {
      const model = { modelTopology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Conv2D', config: { name: 'c1', filters: 1, kernel_size: [1, 1], batch_input_shape: [null, 2, 2, 1] } }, { class_name: 'UpSampling2D', config: { name: 'up' } }] } }, weightsManifest: [{ paths: ['weights.bin'], weights: [{ name: 'c1/kernel', shape: [1, 1, 1, 1], dtype: 'float32' }, { name: 'c1/bias', shape: [1], dtype: 'float32' }] }] };
      writeFileSync(join(dir, 'model.json'), JSON.stringify(model));
      writeFileSync(join(dir, 'weights.bin'), Buffer.alloc(8));
      writeFileSync(join(dir, 'x.f32'), Buffer.alloc(16));
      writeFileSync(join(dir, 'cases.json'), JSON.stringify([{ model: join(dir, 'model.json'), input: join(dir, 'x.f32'), shape: [1, 2, 2, 1], output: join(dir, 'y.f32') }]));
      let stderr = '';
      let status: number | null = 0;
      try {
        execFileSync(py.python, [templatePath('tfjs_torch.py'), join(dir, 'cases.json')], { stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (e) {
        stderr = String((e as { stderr?: Buffer }).stderr ?? '');
        status = (e as { status: number | null }).status;
      }
      assert.equal(status, 2);
      assert.match(stderr, /layer "up" \(UpSampling2D\) is not supported by the torchrun engine/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
