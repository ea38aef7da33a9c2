/**
 * Training the heads people bring, on real digits (a seeded subset of the MNIST sample): the
 * tutorial convnet ending in softmax trains like the same net ending in logits, and the loss the
 * run reports is the cross-entropy of its saved model's predictions; Dense(1, sigmoid) and
 * Dense(2, softmax) on a two-class folder train, with binary / categorical cross-entropy. The probe
 * and the memory model agree on a softmax head as on a logits head.
 */
import { strict as assert } from 'node:assert';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeSample } from '../../src/cli/make-sample';
import { configForFolder, type TrainConfig } from '../../src/core/config';
import { listDatasetFiles } from '../../src/core/dataset/list';
import { bytesForBatch, estimateMemory } from '../../src/core/planning/memory';
import type { TrainEvent, TrainerMessage } from '../../src/core/shared/protocol';
import { createRunDir } from '../../src/core/run-folder/runs';
import { initBackend } from '../../src/trainer/backend';
import { decodeImage } from '../../src/trainer/data/decode';
import { splitFiles } from '../../src/trainer/data/split';
import { fileSaveHandler, loadLayersModelFromFile } from '../../src/trainer/model-io';
import { describeModelSpec } from '../../src/trainer/models/describe';
import { tutorialCnn } from '../../src/trainer/models/zoo';
import { runProbeTrial } from '../../src/trainer/probe/trial';
import { tf } from '../../src/trainer/tf';
import { runTraining } from '../../src/trainer/train/run';
import { planFor } from '../helpers/plan';
import { setupFor, trainRequest } from '../helpers/run-spec';

let dir: string;
let digits: string;
let twoClass: string;

before(async () => {
  await initBackend('wasm').catch(() => initBackend('cpu'));
  dir = mkdtempSync(join(tmpdir(), 'ba-heads-train-'));
  // The first 150 of each digit: 1,500 real digits, 1,200 to train on.
  digits = (await makeSample(join(dir, 'mnist'), { perDigit: 150 })).folder;
  twoClass = join(dir, 'zero-one');
  for (const d of ['0', '1']) cpSync(join(digits, d), join(twoClass, d), { recursive: true });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function config(dataset: string, model: string, overrides: Partial<TrainConfig> = {}): TrainConfig {
  return configForFolder(dataset, { name: 'heads', imageSize: [28, 28], channels: 1, epochs: 1, optimizer: 'adam', learningRate: 0.002, backend: tf.getBackend() as TrainConfig['backend'], model, ...overrides });
}

async function train(cfg: TrainConfig, batchSize = 64): Promise<{ events: TrainEvent[]; start: Extract<TrainEvent, { type: 'run-start' }>; epoch: Extract<TrainEvent, { type: 'epoch' }>; logs: string[] }> {
  const plan = planFor({ ...cfg, batchSize });
  const runDir = createRunDir(join(dir, 'ws'), cfg, plan);
  const events: TrainEvent[] = [];
  await runTraining(trainRequest(cfg, runDir, plan), (m: TrainerMessage) => events.push(m as TrainEvent), new AbortController().signal);
  const end = events.at(-1) as Extract<TrainEvent, { type: 'run-end' }>;
  assert.equal(end.status, 'completed', end.message);
  const start = events.find((e): e is Extract<TrainEvent, { type: 'run-start' }> => e.type === 'run-start')!;
  const epoch = events.findLast((e): e is Extract<TrainEvent, { type: 'epoch' }> => e.type === 'epoch')!;
  const logs = events.filter((e): e is Extract<TrainEvent, { type: 'log' }> => e.type === 'log').map((e) => e.message);
  return { events, start, epoch, logs };
}

/** Saves `model` as <dir>/<name>/model.json; `edit` rewrites the JSON (e.g. the head's activation). */
async function save(model: tf.LayersModel, name: string, edit?: (json: { modelTopology: { config: { layers: { config: Record<string, unknown> }[] } }; trainingConfig?: unknown }) => void): Promise<string> {
  await model.save(fileSaveHandler(join(dir, name)));
  const path = join(dir, name, 'model.json');
  if (edit) {
    const json = JSON.parse(readFileSync(path, 'utf8'));
    edit(json);
    writeFileSync(path, JSON.stringify(json));
  }
  return path;
}

/** The validation images of a run (the same Keras split), decoded, with their labels. */
async function validationSet(cfg: TrainConfig): Promise<{ x: tf.Tensor4D; y: number[] }> {
  const listing = await listDatasetFiles(cfg.dataset);
  const { validation } = splitFiles(listing.files, cfg.validationSplit, cfg.seed);
  const px = 28 * 28;
  const x = new Float32Array(validation.length * px);
  for (const [i, f] of validation.entries()) x.set(await decodeImage(f.path, { imageSize: cfg.imageSize, channels: cfg.channels }), i * px);
  return { x: tf.tensor4d(x, [validation.length, 28, 28, 1]), y: validation.map((f) => f.label) };
}

/** −mean log p[label] from the saved model's own predictions (probabilities: it ends in its softmax/sigmoid). */
async function crossEntropyOfSaved(path: string, cfg: TrainConfig): Promise<{ loss: number; accuracy: number; probabilities: boolean }> {
  const model = await loadLayersModelFromFile(path);
  const { x, y } = await validationSet(cfg);
  const p = (model.predict(x) as tf.Tensor).arraySync() as number[][];
  tf.dispose(x);
  model.dispose();
  let nll = 0;
  let correct = 0;
  let probabilities = true;
  p.forEach((row, i) => {
    const label = y[i]!;
    const sum = row.reduce((a, b) => a + b, 0);
    if (row.some((v) => v < 0 || v > 1) || (row.length > 1 && Math.abs(sum - 1) > 1e-4)) probabilities = false;
    const pl = row.length === 1 ? (label === 1 ? row[0]! : 1 - row[0]!) : row[label]!;
    nll -= Math.log(pl);
    const predicted = row.length === 1 ? (row[0]! > 0.5 ? 1 : 0) : row.indexOf(Math.max(...row));
    if (predicted === label) correct++;
  });
  return { loss: nll / p.length, accuracy: correct / p.length, probabilities };
}

describe('a softmax head trains like a logits head (real digits)', () => {
  test('same convnet and weights, one epoch: accuracies within 1 point; the reported loss is the saved model’s cross-entropy', async () => {
    const net = tutorialCnn([28, 28, 1], 10);
    const linear = await save(net, 'linear');
    // The same weights, the head as Keras writes it: Dense(10, activation='softmax'), compiled with
    // sparse_categorical_crossentropy (and optimizer settings we do not use).
    const softmax = await save(net, 'softmax', (j) => {
      j.modelTopology.config.layers.at(-1)!.config.activation = 'softmax';
      j.trainingConfig = { loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'], optimizer_config: { class_name: 'Adam', config: { learning_rate: 0.001 } } };
    });
    net.dispose();
    const lin = await train(config(digits, linear));
    const sm = await train(config(digits, softmax));
    const [a, b] = [lin.epoch.valAccuracy!, sm.epoch.valAccuracy!];
    console.log(`softmax head: val accuracy ${b.toFixed(4)}, val loss ${sm.epoch.valLoss!.toFixed(4)}; linear head: ${a.toFixed(4)}, ${lin.epoch.valLoss!.toFixed(4)}`);
    // Learned: far above chance (0.1 for ten classes). The weights are initialised without a seed, so
    // one epoch lands anywhere from about 0.55 to 0.75; the comparison below is the point of the test.
    assert.ok(a > 0.3, `the logits net learned (val accuracy ${a}, chance 0.1)`);
    assert.ok(Math.abs(a - b) <= 0.01, `val accuracy softmax ${b} vs linear ${a}`);
    assert.ok(Math.abs(sm.epoch.valLoss! - lin.epoch.valLoss!) < 0.02, `val loss softmax ${sm.epoch.valLoss} vs linear ${lin.epoch.valLoss}`);
    assert.equal(sm.start.plan.loss, 'sparse categorical cross-entropy on the softmax output (from its logits)');
    assert.equal(lin.start.plan.loss, 'sparse categorical cross-entropy from logits');
    assert.ok(sm.logs.some((l) => /optimizer settings \(Adam training config\) are not used/.test(l)), sm.logs.join('\n'));

    // The saved model still ends in its softmax, and the loss the run reported is its cross-entropy.
    const ce = await crossEntropyOfSaved(sm.epoch.savedModel, config(digits, softmax));
    assert.ok(ce.probabilities, 'the saved softmax model outputs probabilities');
    assert.ok(Math.abs(ce.loss - sm.epoch.valLoss!) < 1e-3 * Math.max(1, ce.loss), `reported ${sm.epoch.valLoss} vs −mean log p ${ce.loss}`);
    assert.ok(Math.abs(ce.accuracy - b) < 1e-9, `accuracy ${ce.accuracy} vs ${b}`);
  });
});

describe('two classes (digits 0 and 1)', () => {
  function small(head: Parameters<typeof tf.layers.dense>[0]): tf.LayersModel {
    const m = tf.sequential();
    m.add(tf.layers.rescaling({ scale: 1 / 255, inputShape: [28, 28, 1] }));
    m.add(tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, activation: 'relu' }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense(head));
    return m;
  }

  test("Dense(1, sigmoid): binary cross-entropy on labels 0/1, well above chance after three epochs", async () => {
    const m = small({ units: 1, activation: 'sigmoid' });
    const path = await save(m, 'sigmoid', (j) => (j.trainingConfig = { loss: 'binary_crossentropy' }));
    m.dispose();
    // Three epochs of 15 steps: one epoch from an unseeded start ended anywhere from 0.90 to 0.98.
    const cfg = config(twoClass, path, { epochs: 3 });
    const r = await train(cfg, 16);
    assert.equal(r.start.plan.loss, 'binary cross-entropy on the sigmoid output (from its logit)');
    assert.ok(r.epoch.valAccuracy! > 0.9, `val accuracy ${r.epoch.valAccuracy}`);
    const ce = await crossEntropyOfSaved(r.epoch.savedModel, cfg);
    console.log(`Dense(1, sigmoid): val accuracy ${r.epoch.valAccuracy!.toFixed(4)}, val loss ${r.epoch.valLoss!.toFixed(4)} (saved model's BCE ${ce.loss.toFixed(4)})`);
    assert.ok(ce.probabilities);
    assert.ok(Math.abs(ce.loss - r.epoch.valLoss!) < 1e-3 * Math.max(1, ce.loss), `reported ${r.epoch.valLoss} vs binary cross-entropy ${ce.loss}`);
    assert.ok(Math.abs(ce.accuracy - r.epoch.valAccuracy!) < 1e-9);
  });

  test('Dense(2, softmax) on the same folder likewise (three epochs)', async () => {
    const m = small({ units: 2, activation: 'softmax' });
    const path = await save(m, 'softmax2');
    m.dispose();
    // Three epochs of 15 steps: one epoch from an unseeded start ended anywhere from 0.90 to 0.98.
    const cfg = config(twoClass, path, { epochs: 3 });
    const r = await train(cfg, 16);
    assert.equal(r.start.plan.loss, 'sparse categorical cross-entropy on the softmax output (from its logits)');
    assert.ok(r.epoch.valAccuracy! > 0.9, `val accuracy ${r.epoch.valAccuracy}`);
    const ce = await crossEntropyOfSaved(r.epoch.savedModel, cfg);
    console.log(`Dense(2, softmax): val accuracy ${r.epoch.valAccuracy!.toFixed(4)}, val loss ${r.epoch.valLoss!.toFixed(4)}`);
    assert.ok(Math.abs(ce.loss - r.epoch.valLoss!) < 1e-3 * Math.max(1, ce.loss));
  });
});

describe('the probe and the memory model on a softmax head', () => {
  test('predicted vs measured peak within the same 15% as the logits head, at two batch sizes', async () => {
    const net = tutorialCnn([28, 28, 1], 10);
    const linear = await save(net, 'mem-linear');
    const softmax = await save(net, 'mem-softmax', (j) => (j.modelTopology.config.layers.at(-1)!.config.activation = 'softmax'));
    const sigmoidNet = tutorialCnn([28, 28, 1], 1);
    const sigmoid = await save(sigmoidNet, 'mem-sigmoid', (j) => (j.modelTopology.config.layers.at(-1)!.config.activation = 'sigmoid'));
    net.dispose();
    sigmoidNet.dispose();
    const rows: string[] = [];
    const errors: Record<string, number[]> = {};
    for (const [name, path, dataset, classes] of [['linear', linear, digits, 10], ['softmax', softmax, digits, 10], ['sigmoid', sigmoid, twoClass, 2]] as const) {
      const cfg = config(dataset, path, { backend: 'wasm' });
      const desc = await describeModelSpec({ model: path }, [28, 28, 1], classes);
      const est = estimateMemory(desc, { optimizer: 'adam', budgetBytes: 2 ** 40, headroom: 0, backend: 'wasm' });
      for (const b of [8, 32]) {
        const r = await runProbeTrial(setupFor(cfg), { microBatchSize: b, accumulationSteps: 1, validationBatchSize: b, steps: 3, learningRate: 0.001 });
        assert.equal(r.ok, true, r.error);
        const predicted = bytesForBatch(est, b) - est.breakdown.overheadBytes;
        const err = (predicted - r.tensorPeakBytes) / r.tensorPeakBytes;
        (errors[name] ??= []).push(err);
        rows.push(`${name} b${b}: measured ${(r.tensorPeakBytes / 2 ** 20).toFixed(2)} MiB, predicted ${(predicted / 2 ** 20).toFixed(2)} MiB (${(err * 100).toFixed(1)}%)`);
      }
    }
    console.log(rows.join('\n'));
    for (const [name, errs] of Object.entries(errors)) for (const e of errs) assert.ok(Math.abs(e) <= 0.15, `${name}: error ${(e * 100).toFixed(1)}%\n${rows.join('\n')}`);
    // Trained from its logits, the softmax head makes the logits head's tensors: same prediction, same measurement (within noise).
    errors.softmax!.forEach((e, i) => assert.ok(Math.abs(e - errors.linear![i]!) < 0.02, rows.join('\n')));
  });
});
