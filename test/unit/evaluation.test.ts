/**
 * Evaluation: the arithmetic (confusion matrix, precision/recall, the wrong list), `batch-advisor
 * evaluate` on a folder with known labels checked against predictions made here with tfjs, the
 * class matching (exit 2 naming classes the model lacks), a binary sigmoid head, and the
 * evaluation every run writes at its end.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { evaluateCommand } from '../../src/cli/evaluate';
import { trainCommand } from '../../src/cli/train';
import { readRun } from '../../src/core/run-folder/runs';
import { confusionMatrix, matchClasses, mostConfidentlyWrong, perClassFigures, type EvaluationResult, type Prediction } from '../../src/core/shared/evaluation';
import { initBackend } from '../../src/trainer/backend';
import { decodeImage } from '../../src/trainer/data/decode';
import { fileSaveHandler, loadLayersModelFromFile } from '../../src/trainer/model-io';
import { tf } from '../../src/trainer/tf';
import { Capture } from '../helpers/capture';
import { makeTinyDataset } from '../helpers/tiny-dataset';

const TRAINER = resolve(__dirname, '../../src/trainer/main.ts');
const CLI_MAIN = resolve(__dirname, '../helpers/cli-main.ts');
let root: string;
let runDir: string;

async function evaluate(model: string, folder: string): Promise<{ code: number; json: EvaluationResult; text: string }> {
  const out = new Capture();
  const code = await evaluateCommand(model, folder, { json: true }, { trainerScript: TRAINER, stdout: out, stderr: new Capture() });
  return { code, json: JSON.parse(out.text) as EvaluationResult, text: out.text };
}

/** The CLI as a person runs it (source main(), a real process): exit code and output. */
function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI_MAIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Predictions made here, independently of the trainer: the saved model on each decoded image. */
async function predictHere(modelPath: string, folder: string, classes: string[], imageSize: [number, number]): Promise<Map<string, { label: number; predicted: number; p: number[] }>> {
  const model = await loadLayersModelFromFile(modelPath);
  const out = new Map<string, { label: number; predicted: number; p: number[] }>();
  for (const cls of readdirSync(folder)) {
    for (const f of readdirSync(join(folder, cls))) {
      const path = join(folder, cls, f);
      const px = await decodeImage(path, { imageSize, channels: 3 });
      const y = tf.tidy(() => model.predict(tf.tensor4d(Float32Array.from(px), [1, imageSize[0], imageSize[1], 3])) as tf.Tensor);
      const v = Array.from(await y.data());
      y.dispose();
      const predicted = v.length === 1 ? (v[0]! > 0.5 ? 1 : 0) : v.indexOf(Math.max(...v));
      out.set(path, { label: classes.indexOf(cls), predicted, p: v });
    }
  }
  model.dispose();
  return out;
}

before(async () => {
  await initBackend('wasm');
  root = mkdtempSync(join(tmpdir(), 'ba-eval-'));
  writeFileSync(join(root, 'package.json'), '{}');
  await makeTinyDataset(join(root, 'ds'), { classes: 3, perClass: 20, size: 16, seed: 3 });
  await makeTinyDataset(join(root, 'test'), { classes: 3, perClass: 7, size: 16, seed: 11 });
  const config = join(root, 'tiny.train.json');
  writeFileSync(config, JSON.stringify({ dataset: 'ds', imageSize: [16, 16], batchSize: 8, learningRate: 0.003, backend: 'wasm', epochs: 2, probe: false }));
  const err = new Capture();
  const code = await trainCommand(config, {}, { trainerScript: TRAINER, stdout: new Capture(), stderr: err });
  assert.equal(code, 0, err.text);
  const runs = join(root, '.batch-advisor', 'runs');
  runDir = join(runs, readdirSync(runs)[0]!);
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('evaluation arithmetic', () => {
  const p = (label: number, predicted: number, confidence: number, path = `${label}-${predicted}-${confidence}`): Prediction => ({ path, label, predicted, confidence });
  test('confusion matrix rows are true classes, columns predicted; precision by column, recall by row', () => {
    const preds = [p(0, 0, 0.9), p(0, 1, 0.8), p(1, 1, 0.7), p(1, 1, 0.6), p(2, 0, 0.99)];
    const m = confusionMatrix(preds, 3);
    assert.deepEqual(m, [[1, 1, 0], [0, 2, 0], [1, 0, 0]]);
    const f = perClassFigures(m, ['a', 'b', 'c']);
    assert.deepEqual(f.map((x) => [x.precision, x.recall, x.support]), [[0.5, 0.5, 2], [2 / 3, 1, 2], [null, 0, 1]]);
    assert.deepEqual(mostConfidentlyWrong(preds, ['a', 'b', 'c']).map((w) => [w.true, w.predicted, w.confidence]), [['c', 'a', 0.99], ['a', 'b', 0.8]]);
  });
  test('classes are matched by name; the folder\'s unknown ones are listed', () => {
    assert.deepEqual(matchClasses(['cat', 'dog'], ['dog', 'cat']), { labelOf: [1, 0], unknown: [] });
    assert.deepEqual(matchClasses(['cat', 'dog'], ['cat', 'emu', 'yak']).unknown, ['emu', 'yak']);
  });
});

describe('batch-advisor evaluate', () => {
  test('the confusion matrix sums to the images and matches predictions made independently', async () => {
    const { code, json } = await evaluate(runDir, join(root, 'test'));
    assert.equal(code, 0);
    assert.deepEqual(json.classes, ['class_0', 'class_1', 'class_2']);
    assert.equal(json.images, 21);
    assert.equal(json.confusionMatrix.flat().reduce((a, b) => a + b, 0), 21);
    const here = await predictHere(join(runDir, 'model', 'model.json'), join(root, 'test'), json.classes, [16, 16]);
    const mine = confusionMatrix([...here].map(([path, v]) => ({ path, label: v.label, predicted: v.predicted, confidence: 0 })), 3);
    assert.deepEqual(json.confusionMatrix, mine);
    const correct = [...here.values()].filter((v) => v.label === v.predicted).length;
    assert.equal(json.accuracy, correct / 21);
    // Loss as training computes it: sparse categorical cross-entropy of the softmax (the zoo model outputs logits).
    const ce = [...here.values()].reduce((s, v) => s - Math.log(Math.exp(v.p[v.label]!) / v.p.reduce((a, z) => a + Math.exp(z), 0)), 0) / 21;
    assert.ok(Math.abs(json.loss - ce) < 1e-4, `${json.loss} vs ${ce}`);
    // The wrong list: every wrong image, most confident first, with its true and predicted class.
    assert.equal(json.wrong.length, 21 - correct);
    for (let i = 1; i < json.wrong.length; i++) assert.ok(json.wrong[i - 1]!.confidence >= json.wrong[i]!.confidence);
    for (const w of json.wrong) {
      const v = here.get(w.path)!;
      assert.equal(w.true, json.classes[v.label]);
      assert.equal(w.predicted, json.classes[v.predicted]);
    }
    assert.deepEqual(Object.keys(json).sort(), ['accuracy', 'classes', 'confusionMatrix', 'images', 'loss', 'model', 'perClass', 'source', 'wrong']);
    assert.deepEqual(Object.keys(json.perClass[0]!).sort(), ['class', 'precision', 'recall', 'support']);
  });

  test('a folder class the model does not know: exit 2 naming it; a model class missing from the folder has support 0', async () => {
    const folder = join(root, 'test-extra');
    cpSync(join(root, 'test'), folder, { recursive: true });
    mkdirSync(join(folder, 'zebra'));
    cpSync(join(folder, 'class_0', '0000.png'), join(folder, 'zebra', 'z.png'));
    const r = cli('evaluate', runDir, folder);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^batch-advisor: .*test-extra: the model does not know the class "zebra" \(its classes: class_0, class_1, class_2\)/);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/); // no stack
    rmSync(join(folder, 'zebra'), { recursive: true });
    rmSync(join(folder, 'class_2'), { recursive: true });
    const { json } = await evaluate(join(runDir, 'model', 'model.json'), folder);
    assert.equal(json.images, 14);
    assert.deepEqual(json.perClass[2], { class: 'class_2', precision: json.perClass[2]!.precision, recall: null, support: 0 });
    assert.deepEqual(json.confusionMatrix[2], [0, 0, 0]);
    const human = cli('evaluate', runDir, folder);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /Evaluated 14 images of 3 classes/);
    assert.match(human.stdout, /confusion matrix \(rows: true class, columns: predicted\)/);
    assert.match(human.stdout, /not in the folder \(support 0\): class_2/);
  });

  test('a model.json with a Dense(1, sigmoid) head on two classes: probability > 0.5 is class 1', async () => {
    const folder = join(root, 'two');
    mkdirSync(folder);
    for (const c of ['class_0', 'class_1']) cpSync(join(root, 'test', c), join(folder, c), { recursive: true });
    const model = tf.sequential({ layers: [tf.layers.rescaling({ scale: 1 / 255, inputShape: [16, 16, 3] }), tf.layers.flatten(), tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: 'glorotUniform', biasInitializer: 'zeros' })] });
    model.setUserDefinedMetadata({ classNames: ['class_0', 'class_1'] });
    await model.save(fileSaveHandler(join(root, 'sigmoid')));
    const { json } = await evaluate(join(root, 'sigmoid', 'model.json'), folder);
    const here = await predictHere(join(root, 'sigmoid', 'model.json'), folder, ['class_0', 'class_1'], [16, 16]);
    const mine = confusionMatrix([...here].map(([path, v]) => ({ path, label: v.label, predicted: v.predicted, confidence: 0 })), 2);
    assert.deepEqual(json.confusionMatrix, mine);
    const bce = [...here.values()].reduce((s, v) => s - Math.log(v.label === 1 ? v.p[0]! : 1 - v.p[0]!), 0) / 14;
    assert.ok(Math.abs(json.loss - bce) < 1e-4, `${json.loss} vs ${bce}`);
    for (const w of json.wrong) assert.ok(w.confidence >= 0.5 && w.confidence <= 1);
    model.dispose();
  });
});

describe('the evaluation at the end of a run', () => {
  test('evaluation.json and an evaluation event on the validation split, matching the last validation', () => {
    const run = readRun(runDir);
    const ev = run.events.find((e) => e.type === 'evaluation');
    assert.ok(ev && ev.type === 'evaluation');
    const file = JSON.parse(readFileSync(join(runDir, 'evaluation.json'), 'utf8')) as EvaluationResult;
    assert.deepEqual(file, ev.result);
    assert.equal(file.source, 'validation split');
    assert.equal(file.images, run.runStart!.validationImages);
    assert.deepEqual(run.runStart!.classNames, ['class_0', 'class_1', 'class_2']);
    const last = run.events.filter((e) => e.type === 'epoch').at(-1);
    assert.ok(last && last.type === 'epoch');
    assert.ok(Math.abs(file.accuracy - last.valAccuracy!) < 1e-9);
    assert.ok(Math.abs(file.loss - last.valLoss!) < 1e-5);
    assert.equal(file.cells!.flat().reduce((n, c) => n + c.length, 0), file.images);
  });
});
