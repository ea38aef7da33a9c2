/**
 * Batch growth during training (the plan's batchGrowth): the decision from re-measured gradient
 * norms and the probe's throughput curve, and a real run that grows its batch at an epoch end —
 * the batch-growth event, the larger batch's steps and its learning rate by the plan's rule, all in
 * metrics.jsonl as the panel replays them.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { trainCommand } from '../../src/cli/train';
import { loadConfigFile, type TrainConfig } from '../../src/core/config';
import { learningRateForBatch, type TrainingPlan } from '../../src/core/shared/plan';
import type { BatchEvent, BatchGrowthEvent, RunStartEvent, TrainEvent } from '../../src/core/shared/protocol';
import { BatchGrowth } from '../../src/trainer/train/growth';
import { addEvent, emptySeries } from '../../src/webview/train/series';
import { Capture } from '../helpers/capture';
import { planFor } from '../helpers/plan';
import { makeTinyDataset } from '../helpers/tiny-dataset';

const TRAINER = resolve(__dirname, '../../src/trainer/main.ts');
let root: string;

/** Norms of a step as the estimator expects them: E|G_B|² = |G|² + tr(Σ)/B. */
function norms(g2: number, trace: number, batch: number): { small: number; big: number } {
  return { small: g2 + trace / (batch / 2), big: g2 + trace / batch };
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ba-growth-'));
  writeFileSync(join(root, 'package.json'), '{}');
  await makeTinyDataset(join(root, 'ds'), { classes: 2, perClass: 60, size: 16 });
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('batch growth', () => {
  const plan = { candidates: [32, 64, 128], measureEverySteps: 5, rule: 'sqrt' as const };

  test('a throughput curve that grows and a measured noise scale well above the batch: grow to the batch the objective prefers', () => {
    const g = new BatchGrowth({ ...plan, throughput: [{ batchSize: 32, imagesPerSec: 100 }, { batchSize: 64, imagesPerSec: 190 }, { batchSize: 128, imagesPerSec: 200 }] }, 32);
    assert.equal(g.measures(5), true);
    assert.equal(g.measures(6), false);
    for (let i = 0; i < 3; i++) g.record(norms(1, 500, 32));
    assert.equal(g.decide(), undefined, 'too few samples');
    g.record(norms(1, 500, 32));
    const d = g.decide()!;
    assert.deepEqual([d.from, d.to], [32, 64]); // (64+500)/190 < (128+500)/200 < (32+500)/100
    assert.ok(Math.abs(d.bSimple - 500) < 1e-6);
    assert.equal(g.batch, 64);
    assert.equal(g.decide(), undefined, 'samples start over at the new batch');
  });

  test('flat throughput or a small noise scale: no growth', () => {
    const flat = new BatchGrowth({ ...plan, throughput: [32, 64, 128].map((b) => ({ batchSize: b, imagesPerSec: 300 })) }, 32);
    for (let i = 0; i < 8; i++) flat.record(norms(1, 500, 32));
    assert.equal(flat.decide(), undefined);
    const never = new BatchGrowth({ ...plan, throughput: [32, 64, 128].map((b) => ({ batchSize: b, imagesPerSec: 300 + b / 100 })) }, 32);
    for (let i = 0; i < 8; i++) never.record(norms(1, 0.5, 32));
    assert.equal(never.decide(), undefined);
  });

  test('a real run grows its batch at an epoch end: the event, the new steps per epoch and the learning rate by the rule, replayed by the panel', { timeout: 240_000 }, async () => {
    const configPath = join(root, 'grow.train.json');
    writeFileSync(configPath, JSON.stringify({ dataset: 'ds', imageSize: [16, 16], backend: 'wasm', epochs: 3, model: 'tutorial-cnn', batchSize: 'auto', batchGrowth: true, seed: 7 }));
    const config = loadConfigFile(configPath);
    // A plan as the probe makes it: batch 8, larger batches confirmed, a throughput curve that grows linearly.
    const makePlan = (c: TrainConfig): Promise<TrainingPlan> =>
      Promise.resolve(
        planFor(
          c,
          {
            microBatchSize: 8,
            learningRate: { value: 0.001 * Math.sqrt(8 / 32), base: 0.001, baseBatchSize: 32, rule: 'sqrt' },
            batchGrowth: { candidates: [8, 16, 32], throughput: [8, 16, 32].map((b) => ({ batchSize: b, imagesPerSec: 10 * b })), measureEverySteps: 2, rule: 'sqrt' },
          },
          { train: 96, validation: 24 },
        ),
      );
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await trainCommand(configPath, { json: true }, { trainerScript: TRAINER, stdout, stderr, makePlan });
    assert.equal(code, 0, stderr.text);
    assert.equal(config.batchGrowth, true);
    const events = stdout.text.trim().split('\n').map((l) => JSON.parse(l) as TrainEvent);
    const start = events.find((e): e is RunStartEvent => e.type === 'run-start')!;
    const growth = events.filter((e): e is BatchGrowthEvent => e.type === 'batch-growth');
    assert.ok(growth.length >= 1, 'the batch grew');
    const g = growth[0]!;
    assert.equal(g.from, 8);
    assert.ok(g.to > 8 && start.plan.batchGrowth!.candidates.includes(g.to));
    assert.ok(g.bSimple > 0);
    assert.ok(Math.abs(g.learningRate - learningRateForBatch(start.plan, 'sqrt', g.to)) < 1e-12);
    const after = events.filter((e): e is BatchEvent => e.type === 'batch' && e.epoch >= g.epoch && (growth[1] === undefined || e.epoch < growth[1].epoch));
    assert.ok(after.length > 0);
    const trainImages = start.trainImages;
    assert.ok(after.every((b) => b.stepsPerEpoch === Math.ceil(trainImages / g.to)), `steps per epoch at batch ${g.to}`);
    // Past warmup the rate is the grown batch's.
    assert.ok(after.filter((b) => b.globalStep > start.plan.warmup.steps).every((b) => Math.abs(b.learningRate - g.learningRate) < 1e-12));
    // metrics.jsonl has it, and the panel's series replays it.
    const lines = readFileSync(join(start.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as TrainEvent);
    const s = emptySeries();
    for (const e of lines) addEvent(s, e);
    assert.deepEqual(s.growth[0], { globalStep: g.globalStep, epoch: g.epoch, from: 8, to: g.to, learningRate: g.learningRate });
  });
});
