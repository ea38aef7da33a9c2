/**
 * The pre-flight trial (src/core/process/preflight.ts, issue 21): a micro-batch predicted near the
 * budget and never measured is tried before the run; one that does not train ends the run at once
 * as out of memory with the figures and a smaller batch, and one that trains bounds the watchdog's
 * first step. Trials are faked here (the real trial runner is covered by the probe's tests).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configForFolder } from '../../src/core/config';
import { needsPreflight, paceBatch, PACE_FACTOR, PACE_FLOOR_MS, preflight, trialLimitMs } from '../../src/core/process/preflight';
import { DEFAULT_TRIAL_TIMEOUT_MS } from '../../src/core/process/run-trial';
import { TrainFlow } from '../../src/core/process/train-flow';
import type { TrainingPlan } from '../../src/core/shared/plan';
import type { ProbeTrialResult, ProbeTrialSpec } from '../../src/core/shared/probe';
import type { TrainEvent } from '../../src/core/shared/protocol';
import { planFor } from '../helpers/plan';
import { makeTinyDataset } from '../helpers/tiny-dataset';

let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ba-preflight-'));
  writeFileSync(join(dir, 'package.json'), '{}');
  await makeTinyDataset(join(dir, 'ds'), { classes: 2, perClass: 10, size: 16 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function nearPlan(overrides: Partial<TrainingPlan> = {}): TrainingPlan {
  const cfg = configForFolder(join(dir, 'ds'), { name: 'near', imageSize: [16, 16] });
  return planFor({ ...cfg, batchSize: 64 }, {
    microBatchSize: 64,
    basis: { kind: 'suggestion' },
    budgetBytes: 1e9,
    predictedBytes: 0.95e9,
    maxMicroBatchSize: 66,
    backend: { preference: 'auto', planned: 'wasm' },
    sources: { batchSize: 'config', accumulationSteps: 'planned', learningRate: 'config', warmup: 'planned', loading: 'planned' },
    ...overrides,
  });
}

function ok(spec: ProbeTrialSpec, imagesPerSec: number, durationMs: number): ProbeTrialResult {
  return { batchSize: spec.microBatchSize, accumulationSteps: 1, ok: true, peakBytes: 1, tensorPeakBytes: 1, rssBytes: 1, imagesPerSec, steps: spec.steps, durationMs };
}

function timedOut(spec: ProbeTrialSpec, limitMs: number): ProbeTrialResult {
  return { batchSize: spec.microBatchSize, accumulationSteps: 1, ok: false, failure: 'timeout', error: `the trial did not finish within ${Math.round(limitMs / 1000)} s and was killed`, peakBytes: 0, tensorPeakBytes: 0, rssBytes: 0, imagesPerSec: 0, steps: 0, durationMs: limitMs };
}

describe('which plans are tried before the run', () => {
  test('near the budget and unmeasured: yes; measured by the probe, comfortably within, or a fallback plan: no', () => {
    assert.equal(needsPreflight(nearPlan()), true);
    assert.equal(needsPreflight(nearPlan({ predictedBytes: 0.5e9 })), false, 'half the budget');
    assert.equal(needsPreflight(nearPlan({ sources: { ...nearPlan().sources, batchSize: 'probe' } })), false, 'the probe trained this batch');
    assert.equal(needsPreflight(nearPlan({ basis: { kind: 'fallback', why: 'x' } })), false);
    assert.equal(needsPreflight(nearPlan({ budgetBytes: 8e9, predictedBytes: 3.9e9 })), true, 'wasm: near its 4 GiB heap even with a larger budget');
    assert.equal(needsPreflight(nearPlan({ budgetBytes: 8e9, predictedBytes: 3.9e9, backend: { preference: 'auto', planned: 'tensorflow' } })), false);
  });

  test('the pace: the small trial\'s rate scaled to the batch, × the factor, plus its start-up; floored and capped', () => {
    const small = ok({ microBatchSize: 8, accumulationSteps: 1, validationBatchSize: 8, steps: 3, learningRate: 1e-3 }, 100, 2240);
    // 3 steps × 8 images at 100 images/s = 240 ms of steps, so 2000 ms of start-up.
    const expected = 2000 + PACE_FACTOR * ((1000 * 3 * 64) / 100);
    assert.equal(trialLimitMs(small, 64), Math.max(PACE_FLOOR_MS, expected));
    assert.equal(trialLimitMs(small, 4), PACE_FLOOR_MS);
    assert.equal(trialLimitMs({ ...small, imagesPerSec: 1 }, 4096), DEFAULT_TRIAL_TIMEOUT_MS);
    assert.equal(paceBatch(64), 8);
    assert.equal(paceBatch(3), 1);
  });
});

describe('the trial decides', () => {
  test('a batch that does not train in its trial: cannot fit, with the figures, the small batch\'s rate and a smaller batch that keeps the effective batch', async () => {
    const limits: number[] = [];
    const out = await preflight(nearPlan(), (limitMs) => async (spec) => {
      limits.push(limitMs);
      return spec.microBatchSize === 64 ? timedOut(spec, limitMs) : ok(spec, 400, 1500);
    });
    assert.equal(out.kind, 'cannot-fit');
    assert.equal(limits.length, 2);
    assert.equal(limits[0], DEFAULT_TRIAL_TIMEOUT_MS, 'the small trial has the probe\'s fixed timeout');
    assert.ok(limits[1]! < DEFAULT_TRIAL_TIMEOUT_MS, `the batch's trial is paced (${limits[1]} ms)`);
    if (out.kind !== 'cannot-fit') return;
    assert.match(out.verdict.message, /^Out of memory \(tried before training, not started\): batch 64 is predicted to need [\d.]+ MiB of the [\d.]+ MiB budget on .+, and a trial of 3 steps at batch 64 did not train: the trial did not finish within \d+ s and was killed; batch 8 trained at 400 images\/s\. Try 32, or 32 with accumulationSteps 2 to keep the effective batch of 64\.$/);
    assert.equal(out.verdict.suggestedBatchSize, 32);
  });

  test('a batch that trains: the run starts, its first step allowed 3× the trial', async () => {
    const out = await preflight(nearPlan(), () => async (spec) => ok(spec, 300, 9000));
    assert.equal(out.kind, 'fits');
    if (out.kind === 'fits') assert.equal(out.firstStepMs, 27_000);
  });

  test('a trial that fails for another reason (a crash, not memory) is no verdict: the run starts and reports its own', async () => {
    const out = await preflight(nearPlan(), () => async (spec) => ({ ...timedOut(spec, 1), failure: 'error', error: 'boom' }));
    assert.equal(out.kind, 'skipped');
  });
});

describe('in the training flow', () => {
  test('a near plan whose trial fails ends as out of memory before any trainer starts; the run folder records it', async () => {
    const plan = nearPlan();
    const config = { ...configForFolder(join(dir, 'ds'), { name: 'near', imageSize: [16, 16] as [number, number] }), batchSize: 64 };
    const events: TrainEvent[] = [];
    const flow = new TrainFlow({
      config,
      // Never started: the trial fails first.
      trainerScript: join(dir, 'no-such-trainer.js'),
      workspaceRoot: dir,
      makePlan: async () => plan,
      preflightRunner: (limitMs) => async (spec) => (spec.microBatchSize === 64 ? timedOut(spec, limitMs) : ok(spec, 400, 1500)),
      onEvent: (e) => events.push(e),
    });
    const { end, runDir } = await flow.run();
    assert.equal(end.status, 'failed');
    assert.equal(end.error, 'oom');
    assert.equal(end.suggestedBatchSize, 32);
    assert.match(end.message ?? '', /tried before training, not started/);
    assert.deepEqual(events.map((e) => e.type), ['run-end']);
    const recorded = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as TrainEvent);
    assert.equal(recorded.at(-1)?.type, 'run-end');
  });
});
