/**
 * What is advised is what runs: the plan `suggest` gives is the plan a `train` run executes and
 * records (run-start event, plan.json, config.json), field by field — including gradient
 * accumulation, the learning rate and its warmup — and values the config sets are kept as written.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { trainCommand, type TrainOptions } from '../../src/cli/train';
import { loadConfigFile, withOverrides } from '../../src/core/config';
import { bytesForBatch } from '../../src/core/planning/memory';
import { readRun } from '../../src/core/run-folder/runs';
import { DEFAULT_HEADROOM } from '../../src/core/shared/constants';
import { learningRateAt, type TrainingPlan } from '../../src/core/shared/plan';
import type { BatchEvent, RunStartEvent, TrainEvent } from '../../src/core/shared/protocol';
import { suggest } from '../../src/core/process/suggest';
import { TrainFlow } from '../../src/core/process/train-flow';
import { planFor } from '../helpers/plan';
import { Capture } from '../helpers/capture';
import { makeTinyDataset } from '../helpers/tiny-dataset';

const TRAINER = resolve(__dirname, '../../src/trainer/main.ts');
const GIB = 2 ** 30;
let root: string;


function writeConfig(name: string, body: Record<string, unknown>): string {
  const path = join(root, `${name}.train.json`);
  writeFileSync(path, JSON.stringify({ dataset: 'ds', imageSize: [16, 16], backend: 'wasm', epochs: 1, ...body }));
  return path;
}

async function trainJson(configPath: string, opts: TrainOptions): Promise<{ code: number; events: TrainEvent[]; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await trainCommand(configPath, { ...opts, json: true }, { trainerScript: TRAINER, stdout, stderr });
  const events = stdout.text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TrainEvent);
  return { code, events, stderr: stderr.text };
}

function only<T extends TrainEvent['type']>(events: TrainEvent[], type: T): Extract<TrainEvent, { type: T }>[] {
  return events.filter((e): e is Extract<TrainEvent, { type: T }> => e.type === type);
}

/** The numbers a run executes (the reasons' wording may mention free host RAM, which moves). */
function numbers(p: TrainingPlan): Partial<TrainingPlan> {
  const { reasons: _r, warnings: _w, loading, ...rest } = p;
  return { ...rest, loading: { strategy: loading.strategy, reason: '' } };
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ba-flow-'));
  writeFileSync(join(root, 'package.json'), '{}');
  await makeTinyDataset(join(root, 'ds'), { classes: 2, perClass: 20, size: 16 });
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('one training plan, end to end', () => {
  test('"batchSize": "auto" on a small device: the run executes the suggested micro-batch × accumulation, lr and loading', async () => {
    // ResNet-20 at 32×32: activations dominate, so a device can hold a few images but not 8.
    // The memory model's plan ("probe": false): the probe's own end-to-end test is in probe-default.test.ts.
    const configPath = writeConfig('auto', { batchSize: 'auto', model: 'resnet-small', imageSize: [32, 32], probe: false });
    const config = loadConfigFile(configPath);
    // Size a device so that only a few images fit: the plan must accumulate micro-batches.
    const big = await suggest({ config }, { trainerScript: TRAINER, deviceMemoryGiB: 8 });
    let gib = 0;
    let advised: TrainingPlan | undefined;
    for (const n of [4, 3, 5, 2]) {
      gib = (bytesForBatch(big.memory, n) + big.memory.breakdown.gradientsBytes) / (1 - DEFAULT_HEADROOM) / GIB;
      const r = await suggest({ config }, { trainerScript: TRAINER, deviceMemoryGiB: gib });
      if (r.plan.accumulationSteps > 1) {
        advised = r.plan;
        break;
      }
    }
    assert.ok(advised, 'no device size gave a plan with accumulation');
    assert.ok(advised.microBatchSize < 8 && advised.effectiveBatchSize === advised.microBatchSize * advised.accumulationSteps);

    const r = await trainJson(configPath, { deviceMemory: gib, maxSteps: 3 });
    assert.equal(r.code, 0, r.stderr);
    const start = only(r.events, 'run-start')[0] as RunStartEvent;
    assert.deepEqual(numbers(start.plan), numbers(advised));
    const rec = readRun(start.runDir);
    assert.deepEqual(JSON.parse(readFileSync(join(start.runDir, 'plan.json'), 'utf8')), start.plan);
    assert.equal(rec.config.batchSize, advised.microBatchSize, 'config.json records the number that ran, not "auto"');
    assert.equal(rec.config.accumulationSteps, advised.accumulationSteps);
    assert.equal(rec.config.learningRate, advised.learningRate.value);
    // Each optimizer step took accumulation × micro-batch images.
    const batches = only(r.events, 'batch');
    assert.equal(batches.length, 3);
    for (const b of batches) assert.equal(b.learningRate, learningRateAt(advised, b.globalStep));
  });

  test('explicit batchSize, learningRate and accumulationSteps are kept as written (the plan says so)', async () => {
    const r = await trainJson(writeConfig('explicit', { batchSize: 4, learningRate: 0.0042, accumulationSteps: 3 }), { maxSteps: 2 });
    assert.equal(r.code, 0, r.stderr);
    const p = (only(r.events, 'run-start')[0] as RunStartEvent).plan;
    assert.deepEqual([p.microBatchSize, p.accumulationSteps, p.effectiveBatchSize, p.learningRate.value, p.learningRate.rule], [4, 3, 12, 0.0042, 'none']);
    assert.deepEqual([p.sources.batchSize, p.sources.accumulationSteps, p.sources.learningRate], ['config', 'config', 'config']);
    assert.ok(p.reasons.some((x) => /Batch 4 as the config sets it/.test(x)));
    assert.ok(only(r.events, 'batch').every((b) => b.learningRate === 0.0042));
  });

  test('warmup: the learning rate in the metrics ramps linearly as planned', async () => {
    const r = await trainJson(writeConfig('warmup', { batchSize: 4, learningRate: 0.003, warmupSteps: 3, optimizer: 'sgd' }), { maxSteps: 5 });
    assert.equal(r.code, 0, r.stderr);
    const lrs = only(r.events, 'batch').map((b: BatchEvent) => Number(b.learningRate.toPrecision(6)));
    assert.deepEqual(lrs, [0.001, 0.002, 0.003, 0.003, 0.003]);
  });

  test('a plan that cannot be made falls back to one fixed rule, and the run says why', async () => {
    const configPath = writeConfig('fallback', { batchSize: 'auto' });
    const logs: string[] = [];
    let seen: TrainingPlan | undefined;
    const flow = new TrainFlow({
      config: loadConfigFile(configPath),
      trainerScript: TRAINER,
      workspaceRoot: root,
      maxSteps: 1,
      makePlan: () => Promise.reject(new Error('systeminformation failed')),
      onLog: (_l, m) => logs.push(m),
      onPlan: (p) => (seen = p),
    });
    const { end, plan } = await flow.run();
    assert.equal(end.status, 'completed');
    assert.equal(plan, seen);
    assert.deepEqual(plan.basis, { kind: 'fallback', why: 'systeminformation failed' });
    assert.equal(plan.microBatchSize, 32);
    assert.equal(plan.loading.strategy, 'stream');
    assert.ok(logs.some((l) => /using the fallback rule/.test(l)));
  });

  test('bad input while planning (a model file that is not a model) is an input error and creates no run folder', async () => {
    writeFileSync(join(root, 'bad-model.json'), '{"not": "a model"}');
    const configPath = writeConfig('badmodel', { batchSize: 'auto', model: 'bad-model.json' });
    const r = await trainJson(configPath, { maxSteps: 1 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /bad-model\.json/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('stop while planning cancels: no run folder, AbortError', async () => {
    const config = withOverrides(loadConfigFile(writeConfig('cancel', { batchSize: 'auto' })), {});
    let release: () => void = () => undefined;
    const flow = new TrainFlow({
      config,
      trainerScript: TRAINER,
      workspaceRoot: join(root, 'cancel-ws'),
      makePlan: (c) =>
        new Promise((res) => {
          release = () => res(planFor(c));
        }),
      onPhase: (phase) => {
        if (phase === 'planning')
          setImmediate(() => {
            flow.stop();
            release();
          });
      },
    });
    await assert.rejects(flow.run(), (e: Error) => e.name === 'AbortError');
    assert.throws(() => readFileSync(join(root, 'cancel-ws', '.batch-advisor')), /ENOENT/);
  });
});
