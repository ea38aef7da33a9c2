/**
 * Keras-callback equivalents in the config (issue 19, part 2): the learning-rate schedule after
 * warmup — the formula, its validation, and a real run whose batch events carry it.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { trainCommand, type TrainOptions } from '../../src/cli/train';
import { learningRateAt } from '../../src/core/shared/plan';
import type { BatchEvent, TrainEvent } from '../../src/core/shared/protocol';
import { COSINE_FLOOR, scheduleFactor } from '../../src/core/shared/schedule';
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
