/** The plan a torchrun run trains at (src/core/torchrun/plan.ts): the global batch and its learning rate, steps and warmup; `suggest` states it. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { formatSuggest } from '../../src/cli/report';
import { suggest } from '../../src/core/process/suggest';
import { configForFolder, loadConfigFile } from '../../src/core/config';
import { configSuggestionFrom, withPlanFields } from '../../src/extension/config/plan-edit';
import { plannedFor, type TrainingPlan } from '../../src/core/shared/plan';
import { dataParallelPlan } from '../../src/core/torchrun/plan';
import { planFor } from '../helpers/plan';
import { makeTinyDataset } from '../helpers/tiny-dataset';

const TRAINER = resolve(__dirname, '../../src/trainer/main.ts');

function plan(overrides: Partial<TrainingPlan>): TrainingPlan {
  const base = planFor(configForFolder('/data/digits'), { microBatchSize: 16, accumulationSteps: 2, trainImages: 1000, ...overrides });
  return { ...base, learningRate: { value: 0.001, base: 0.001, baseBatchSize: 32, rule: 'sqrt' }, warmup: { steps: 32, epochs: 1, startLearningRate: 0.0001 }, sources: { ...base.sources, learningRate: 'planned', warmup: 'planned' }, ...overrides };
}

describe('dataParallelPlan', () => {
  it('4 processes × 16 × 2 accumulated = a global batch of 128: the rate by the plan\'s rule for it, steps and warmup in global steps', () => {
    const p = dataParallelPlan(plan({}), 4);
    assert.equal(p.effectiveBatchSize, 128);
    assert.equal(p.dataParallelDevices, 4);
    assert.equal(p.microBatchSize, 16, 'the per-device micro-batch is the plan\'s');
    assert.equal(p.stepsPerEpoch, 8); // ceil(1000 / 128)
    assert.ok(Math.abs(p.learningRate.value - 0.001 * Math.sqrt(128 / 32)) < 1e-12);
    assert.equal(p.warmup.steps, 8, 'one warmup epoch of global steps');
    assert.ok(Math.abs(p.warmup.startLearningRate - 0.0002) < 1e-12, 'the warmup starts at the same fraction of the rate');
    assert.match(p.reasons[0]!, /4 processes × micro-batch 16 × 2 accumulation steps = global batch 128/);
  });

  it('says the plan is trained by torchrun, not by the tfjs backend it was first made for', () => {
    const base = plan({});
    assert.equal(base.engine, undefined);
    assert.match(plannedFor(base), new RegExp(`^${base.backend.planned} [(o]`));
    const p = dataParallelPlan(base, 2);
    assert.equal(p.engine, 'torchrun');
    assert.match(plannedFor(p), /^torchrun \(PyTorch\) [(o]/);
  });

  it('a rate and warmup the config sets are kept as written', () => {
    const base = plan({});
    const p = dataParallelPlan({ ...base, sources: { ...base.sources, learningRate: 'config', warmup: 'config' } }, 8);
    assert.equal(p.learningRate.value, 0.001);
    assert.equal(p.warmup.steps, 32);
    assert.equal(p.effectiveBatchSize, 256);
  });
});

describe('suggest with "engine": "torchrun"', () => {
  it('states the plan the torchrun run trains at: per device × processes = global batch, its learning rate and steps', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ba-torchrun-suggest-'));
    try {
      await makeTinyDataset(join(root, 'data'), { classes: 2, perClass: 40 });
      const config = { ...configForFolder(join(root, 'data'), { imageSize: [16, 16], batchSize: 8, probe: false }), engine: 'torchrun' as const, nprocPerNode: 4 };
      const report = await suggest({ config }, { trainerScript: TRAINER, probe: false });
      const dp = dataParallelPlan(report.plan, 4);
      const line = formatSuggest(report).find((l) => l.includes('torchrun on 4 processes'));
      assert.ok(line, formatSuggest(report).join('\n'));
      assert.equal(line.trim(), report.torchrun?.note);
      assert.deepEqual([report.torchrun?.globalBatchSize, report.torchrun?.stepsPerEpoch, report.torchrun?.learningRate], [dp.effectiveBatchSize, dp.stepsPerEpoch, dp.learningRate.value]);
      assert.match(line, /batch 8 per device × 4 devices = 32/);
      assert.ok(line.includes(`learning rate ${Number(dp.learningRate.value.toPrecision(3))} for the global batch, ${dp.stepsPerEpoch} steps per epoch`));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("the editor's apply lens writes the global batch's learning rate: the applied config trains the plan Suggest stated", async () => {
    const root = mkdtempSync(join(tmpdir(), 'ba-torchrun-apply-'));
    try {
      await makeTinyDataset(join(root, 'data'), { classes: 2, perClass: 40 });
      const file = join(root, 'ddp.train.json');
      writeFileSync(file, JSON.stringify({ name: 'ddp', dataset: 'data', imageSize: [16, 16], batchSize: 8, probe: false, engine: 'torchrun', nprocPerNode: 4 }, null, 2));
      const before = await suggest({ config: loadConfigFile(file) }, { trainerScript: TRAINER, probe: false });
      const { fields } = configSuggestionFrom(before);
      assert.equal(fields.learningRate, before.torchrun?.learningRate);
      assert.notEqual(fields.learningRate, before.plan.learningRate.value, 'not the single-device rate (batch 8 vs the global 32)');
      writeFileSync(file, withPlanFields(readFileSync(file, 'utf8'), fields));
      const after = await suggest({ config: loadConfigFile(file) }, { trainerScript: TRAINER, probe: false });
      assert.deepEqual(
        [after.torchrun?.globalBatchSize, after.torchrun?.learningRate, after.torchrun?.warmupSteps],
        [before.torchrun?.globalBatchSize, before.torchrun?.learningRate, before.torchrun?.warmupSteps],
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
