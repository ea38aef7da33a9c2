/**
 * Keras-callback equivalents in the config (issue 19, part 2): the learning-rate schedule after
 * warmup, early stopping and the best-epoch checkpoint — the rules, their validation, and real runs that honour them.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { trainCommand, type TrainOptions } from '../../src/cli/train';
import { learningRateAt } from '../../src/core/shared/plan';
import type { BatchEvent, TrainEvent } from '../../src/core/shared/protocol';
import { COSINE_FLOOR, scheduleFactor } from '../../src/core/shared/schedule';
import { BestCheckpoint } from '../../src/trainer/train/callbacks/best-checkpoint';
import { EarlyStopping, type EpochMetrics } from '../../src/trainer/train/callbacks/early-stopping';
import { Capture } from '../helpers/capture';
import { makeTinyDataset } from '../helpers/tiny-dataset';

const TRAINER = resolve(__dirname, '../../src/trainer/main.ts');
let root: string;

async function train(body: Record<string, unknown>, opts: TrainOptions = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const path = join(root, 'c.train.json');
  writeFileSync(path, JSON.stringify(body));
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await trainCommand(path, opts, { trainerScript: TRAINER, stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const tiny = { dataset: 'ds', imageSize: [16, 16], batchSize: 8, learningRate: 0.01, backend: 'wasm', probe: false, epochs: 2, warmupSteps: 2 };

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ba-callbacks-'));
  writeFileSync(join(root, 'package.json'), '{}');
  await makeTinyDataset(join(root, 'ds'), { classes: 2, perClass: 20, size: 16 });
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('lrSchedule', () => {
  const plan = { learningRate: { value: 0.1, base: 0.1, baseBatchSize: 32, rule: 'none' as const }, warmup: { steps: 2, epochs: 0.5, startLearningRate: 0 }, epochs: 3, stepsPerEpoch: 4 };
  test('cosine falls from the target after warmup to 1% of it at the last step; step is ×0.1 at 50% and 75%', () => {
    const cos = (s: number): number => learningRateAt({ ...plan, lrSchedule: 'cosine' }, s);
    assert.equal(cos(1), 0.05); // warmup unchanged
    assert.equal(cos(2), 0.1);
    assert.ok(Math.abs(cos(7) - 0.1 * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + Math.cos(Math.PI * 0.5)))) < 1e-12);
    assert.ok(Math.abs(cos(12) - 0.1 * COSINE_FLOOR) < 1e-12);
    assert.ok(Math.abs(cos(40) - 0.1 * COSINE_FLOOR) < 1e-12, 'past the end (a resumed run) it stays at the floor');
    const stp = [3, 6, 7, 9, 10, 12].map((s) => Number(learningRateAt({ ...plan, lrSchedule: 'step' }, s).toPrecision(6)));
    assert.deepEqual(stp, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]); // 10 steps after warmup: ×0.1 from t=0.5 (step 7), again from 0.75 (step 9.5)
    assert.equal(learningRateAt(plan, 12), 0.1, 'absent = constant (older plans)');
    assert.equal(scheduleFactor('cosine', 5, 10, 10), 1, 'no steps after warmup: no decay');
  });

  test('an unknown schedule → exit 2 naming the field', async () => {
    const r = await train({ ...tiny, lrSchedule: 'linear' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /lrSchedule/);
  });

  test('a cosine run: plan.json and run-start record it, the batch events carry the scheduled rate', async () => {
    const r = await train({ ...tiny, lrSchedule: 'cosine' }, { json: true });
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as TrainEvent);
    const start = events.find((e) => e.type === 'run-start');
    assert.ok(start && start.type === 'run-start');
    assert.equal(start.plan.lrSchedule, 'cosine');
    assert.equal((JSON.parse(readFileSync(join(start.runDir, 'plan.json'), 'utf8')) as { lrSchedule?: string }).lrSchedule, 'cosine');
    const batches = events.filter((e): e is BatchEvent => e.type === 'batch');
    const total = start.plan.epochs * start.plan.stepsPerEpoch;
    assert.equal(batches.length, total);
    for (const b of batches) {
      const t = Math.min(1, Math.max(0, (b.globalStep - 2) / (total - 2)));
      const want = b.globalStep <= 2 ? (0.01 * b.globalStep) / 2 : 0.01 * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + Math.cos(Math.PI * t)));
      assert.ok(Math.abs(b.learningRate - want) < 1e-9, `step ${b.globalStep}: ${b.learningRate} vs ${want}`);
    }
    assert.ok(batches.at(-1)!.learningRate < 0.01 * 0.05, 'the last step is near the floor');
  });
});

describe('earlyStopping', () => {
  const m = (valLoss: number | null, loss = 1): EpochMetrics => ({ loss, accuracy: 0.5, valLoss, valAccuracy: valLoss === null ? null : 1 - valLoss });
  test('stops after `patience` epochs without an improvement larger than minDelta, and says why', () => {
    const es = new EarlyStopping({ monitor: 'val_loss', patience: 2, minDelta: 0.01 }, () => {});
    assert.deepEqual([0.9, 0.5, 0.495, 0.3, 0.31].map((v, i) => es.update(i + 1, m(v))), [undefined, undefined, undefined, undefined, undefined]);
    assert.equal(es.update(6, m(0.295)), 'early stopping: val_loss did not improve by 0.01 for 2 epochs (best 0.3 at epoch 4)');
    const acc = new EarlyStopping({ monitor: 'val_accuracy', patience: 1, minDelta: 0 }, () => {});
    assert.equal(acc.update(1, m(0.5)), undefined);
    assert.equal(acc.update(2, m(0.4)), undefined, 'accuracy 0.6 > 0.5 is an improvement');
    assert.match(acc.update(3, m(0.45)) ?? '', /^early stopping: val_accuracy did not improve by 0 for 1 epoch \(best 0\.6 at epoch 2\)$/);
  });
  test('without validation it watches the training loss and logs it once', () => {
    const logs: string[] = [];
    const es = new EarlyStopping({ monitor: 'val_loss', patience: 1, minDelta: 0 }, (l) => logs.push(l));
    es.update(1, m(null, 1));
    assert.match(es.update(2, m(null, 1.2)) ?? '', /^early stopping: loss did not improve/);
    assert.deepEqual(logs, ['early stopping: no validation data, so it monitors the training loss instead of val_loss']);
  });

  test('a run stops at the patience: run-end completed with the reason, plan records it, CLI prints it', async () => {
    // minDelta 100: no epoch after the first can improve, so a patience of 2 ends the run after epoch 3 of 6.
    const earlyStopping = { patience: 2, minDelta: 100 };
    const r = await train({ ...tiny, epochs: 6, earlyStopping }, { json: true });
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as TrainEvent);
    const start = events.find((e) => e.type === 'run-start');
    assert.ok(start && start.type === 'run-start');
    assert.deepEqual(start.plan.earlyStopping, { patience: 2, monitor: 'val_loss', minDelta: 100 });
    assert.deepEqual(events.filter((e) => e.type === 'epoch').map((e) => e.type === 'epoch' && e.epoch), [1, 2, 3]);
    const end = events.find((e) => e.type === 'run-end');
    assert.ok(end && end.type === 'run-end');
    assert.equal(end.status, 'completed');
    assert.match(end.message ?? '', /^early stopping: val_loss did not improve by 100 for 2 epochs \(best [\d.]+ at epoch 1\)$/);
    const people = await train({ ...tiny, epochs: 6, earlyStopping });
    assert.match(people.stdout, /Done \(early stopping: val_loss did not improve by 100 for 2 epochs/);
  });

  for (const [bad, field] of [
    [{ patience: -1 }, 'patience'],
    [{ patience: 2, monitor: 'loss' }, 'monitor'],
    [{ patience: 2, minDelta: -0.1 }, 'minDelta'],
  ] as const) {
    test(`earlyStopping ${JSON.stringify(bad)} → exit 2 naming ${field}`, async () => {
      const r = await train({ ...tiny, earlyStopping: bad });
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`earlyStopping.*${field}|${field}.*earlyStopping`));
    });
  }
});

describe('checkpoint "best"', () => {
  test('the loss rising in the last epoch keeps the earlier epoch in model-best/, model/ holds the last', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ba-best-'));
    try {
      const logs: string[] = [];
      const best = new BestCheckpoint({ mode: 'best', monitor: 'val_loss' }, (l) => logs.push(l));
      const saveEpoch = (epoch: number, valLoss: number): void => {
        mkdirSync(join(dir, 'model'), { recursive: true });
        writeFileSync(join(dir, 'model', 'weights.bin'), `weights of epoch ${epoch}`);
        writeFileSync(join(dir, 'model', 'model.json'), '{}');
        best.update(epoch, { loss: 1, accuracy: 0.5, valLoss, valAccuracy: 0.5 }, join(dir, 'model', 'model.json'));
      };
      saveEpoch(1, 0.9);
      saveEpoch(2, 0.4);
      saveEpoch(3, 0.7); // rises
      assert.equal(readFileSync(join(dir, 'model', 'weights.bin'), 'utf8'), 'weights of epoch 3');
      assert.equal(readFileSync(join(dir, 'model-best', 'weights.bin'), 'utf8'), 'weights of epoch 2');
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'model-best', 'checkpoint.json'), 'utf8')), { epoch: 2, monitor: 'val_loss', value: 0.4 });
      assert.equal(logs.at(-1), 'best model so far: epoch 2 (val_loss 0.4), saved in model-best/');
      assert.ok(!existsSync(join(dir, 'model-best.saving')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a real run keeps model/ and model-best/ with the epoch of the lowest validation loss', async () => {
    const r = await train({ ...tiny, epochs: 3 }, { json: true });
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as TrainEvent);
    const start = events.find((e) => e.type === 'run-start');
    assert.ok(start && start.type === 'run-start');
    assert.deepEqual(start.plan.checkpoint, { mode: 'best', monitor: 'val_loss' });
    const epochs = events.filter((e) => e.type === 'epoch');
    const lowest = epochs.reduce((a, b) => ((b.valLoss ?? Infinity) < (a.valLoss ?? Infinity) ? b : a));
    const record = JSON.parse(readFileSync(join(start.runDir, 'model-best', 'checkpoint.json'), 'utf8')) as { epoch: number; value: number };
    assert.equal(record.epoch, lowest.epoch);
    assert.equal(record.value, lowest.valLoss);
    assert.ok(existsSync(join(start.runDir, 'model-best', 'weights.bin')) && existsSync(join(start.runDir, 'model', 'model.json')));
    const last = await train({ ...tiny, epochs: 1, checkpoint: 'last' }, { json: true });
    const lastStart = last.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as TrainEvent).find((e) => e.type === 'run-start');
    assert.ok(lastStart && lastStart.type === 'run-start');
    assert.ok(!existsSync(join(lastStart.runDir, 'model-best')), '"last" keeps model/ only');
  });
});
