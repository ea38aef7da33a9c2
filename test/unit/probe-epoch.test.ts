/**
 * A full epoch at the probed plan, on a device given by size that the plan only just fits: the
 * real `suggest --probe --device-memory` and the real trainer, with the budget enforced in the run
 * as the probe enforces it (a live-tensor peak above it is out of memory).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configForFolder, type TrainConfig } from '../../src/core/config';
import { FIXED_OVERHEAD } from '../../src/core/planning/memory';
import type { TrainingPlan } from '../../src/core/shared/plan';
import { suggest } from '../../src/core/process/suggest';
import { TrainFlow } from '../../src/core/process/train-flow';
import { runProbeTrial } from '../../src/trainer/probe/trial';
import { makeTinyDataset } from '../helpers/tiny-dataset';
import { setupFor } from '../helpers/run-spec';

const TRAINER = resolve(__dirname, '../../src/trainer/main.ts');
let dir: string;
let config: TrainConfig;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ba-probe-epoch-'));
  const { root } = await makeTinyDataset(join(dir, 'ds'), { classes: 2, perClass: 80, size: 24, channels: 3 });
  config = configForFolder(root, { name: 'tight', imageSize: [24, 24], channels: 3, epochs: 1, optimizer: 'adam', learningRate: 0.001, backend: 'wasm', validationSplit: 0.2 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function epoch(plan: TrainingPlan, limitBytes: number): TrainFlow {
  return new TrainFlow({ config, trainerScript: TRAINER, workspaceRoot: join(dir, 'ws'), test: { memoryLimitBytes: Math.floor(limitBytes) }, makePlan: async () => plan });
}

describe('a full epoch at the probed plan', () => {
  test('completes on a device the plan only just fits, and the same limit is really enforced', async () => {
    // The device: its trial limit lies between the real peaks of batches 8 and 9 (the 128 training
    // images cap the batch at 8, so memory is what decides).
    const spec = (b: number) => ({ microBatchSize: b, accumulationSteps: 1, validationBatchSize: b, steps: 3, learningRate: 0.001 });
    const [p8, p9] = [(await runProbeTrial(setupFor(config), spec(8))).tensorPeakBytes, (await runProbeTrial(setupFor(config), spec(9))).tensorPeakBytes];
    assert.ok(p9 > p8, `${p8} < ${p9}`);
    const limit = (p8 + p9) / 2;
    // The config's backend (wasm) is what the plan is made for: host memory of that size, no GPU runtime's share.
    const report = await suggest({ config }, { trainerScript: TRAINER, probe: true, deviceMemoryGiB: (limit + FIXED_OVERHEAD) / 2 ** 30 });
    const plan = report.plan;
    assert.deepEqual([plan.backend.planned, plan.device.kind], ['wasm', 'cpu']);
    assert.equal(plan.sources.batchSize, 'probe');
    assert.ok(Math.abs(report.probe!.limitBytes! - limit) <= 1, 'the trials were held to the same limit');
    assert.ok(report.probe!.maxBatchSize <= 8, `the probe found ${report.probe!.maxBatchSize} under a limit that 9 exceeds`);
    assert.ok(plan.microBatchSize <= report.probe!.usableBatchSize);

    const ok = await epoch(plan, limit).run();
    assert.equal(ok.end.status, 'completed', ok.end.message);
    assert.equal(ok.plan.stepsPerEpoch, plan.stepsPerEpoch);

    const tooSmall = await epoch(plan, 2 ** 20).run();
    assert.equal(tooSmall.end.status, 'failed');
    assert.equal(tooSmall.end.error, 'oom');
    assert.match(tooSmall.end.message ?? '', /above the memory limit of 1\.0 MiB/);
  });
});
