/**
 * The RunSpec (core/shared/run-spec.ts): built in one place (core/planning/run-spec.ts), it crosses the
 * protocol unchanged, the trainer refuses a bad one naming the field, and a run whose backend
 * cannot load ends saying so (no silent fallback to another backend's memory model).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configForFolder, type TrainConfig } from '../../src/core/config';
import { backendLocation, buildRunSpec, runTestFromEnv } from '../../src/core/planning/run-spec';
import { createRunDir } from '../../src/core/run-folder/runs';
import { parseHostMessage, PROTOCOL_VERSION, type TrainEvent, type TrainerMessage } from '../../src/core/shared/protocol';
import { checkRunSpec, type RunSpec } from '../../src/core/shared/run-spec';
import { TrainerClient } from '../../src/core/process/trainer-client';
import { suggest } from '../../src/core/process/suggest';
import { plannedFor } from '../../src/core/shared/plan';
import type { DeviceInfo } from '../../src/core/shared/device-types';
import { runTraining } from '../../src/trainer/train/run';
import { planFor } from '../helpers/plan';
import { makeTinyDataset } from '../helpers/tiny-dataset';

const TRAINER = resolve(__dirname, '..', '..', 'src', 'trainer', 'main.ts');
let dir: string;
let dataset: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ba-runspec-'));
  dataset = (await makeTinyDataset(join(dir, 'ds'), { classes: 2, perClass: 6, size: 8, channels: 1 })).root;
});
after(() => rmSync(dir, { recursive: true, force: true }));

function config(overrides: Partial<TrainConfig> = {}): TrainConfig {
  return configForFolder(dataset, { name: 'tiny', imageSize: [8, 8], channels: 1, epochs: 1, backend: 'cpu', nanPatience: 2, ...overrides });
}

function specFor(cfg: TrainConfig, extra: Partial<Parameters<typeof buildRunSpec>[2]> = {}): RunSpec {
  const plan = planFor({ ...cfg, batchSize: 4 });
  return buildRunSpec(cfg, plan, { runDir: createRunDir(join(dir, 'ws'), cfg, plan), location: backendLocation(cfg, { workspaceRoot: join(dir, 'ws'), tfjsNodePath: '/opt/tfjs' }), maxSteps: 3, test: { fault: 'delay@1' }, ...extra });
}

describe('RunSpec', () => {
  test('built from the config and the plan: the resolved backend, its package location, the plan, limits and callbacks; it round-trips through the protocol', () => {
    const spec = specFor(config());
    assert.equal(spec.backend.name, spec.plan.backend.planned);
    assert.deepEqual(spec.backend, { name: 'cpu', workspaceFolder: join(dir, 'ws'), tfjsNodePath: '/opt/tfjs' });
    assert.deepEqual(spec.data, { dataset, validationSplit: 0.2, seed: 1337, imageSize: [8, 8], channels: 1 });
    assert.equal(spec.plan.microBatchSize, 4);
    assert.deepEqual([spec.limits, spec.callbacks, spec.test], [{ maxSteps: 3 }, { nanPatience: 2 }, { fault: 'delay@1' }]);
    // Over IPC as JSON: the trainer parses the request and checks the spec, and gets the same spec back.
    const wire = JSON.parse(JSON.stringify({ v: PROTOCOL_VERSION, type: 'train', id: 7, spec })) as unknown;
    const parsed = parseHostMessage(wire);
    assert.ok(parsed.ok && parsed.message.type === 'train');
    const checked = checkRunSpec(parsed.message.spec);
    assert.ok(checked.ok, checked.ok ? '' : checked.error);
    assert.deepEqual(checked.value, spec);
  });

  test('a bad spec is refused naming the field', () => {
    const spec = specFor(config());
    const bad = (patch: object): string => {
      const r = checkRunSpec({ ...spec, ...patch });
      return r.ok ? 'accepted' : r.error;
    };
    assert.equal(bad({ plan: { ...spec.plan, microBatchSize: 0 } }), 'run spec: plan.microBatchSize must be a positive integer; got 0');
    assert.equal(bad({ backend: { name: 'auto' } }), 'run spec: backend.name must be one of tensorflow-gpu, tensorflow, wasm, cpu (the backend the plan was made for); got "auto"');
    assert.equal(bad({ data: { ...spec.data, channels: 2 } }), 'run spec: data.channels must be 1, 3 or 4; got 2');
    assert.equal(bad({ v: 0 }), 'run spec: version 0, expected 1');
    assert.equal(bad({ callbacks: {} }), 'run spec: callbacks.nanPatience must be a whole number ≥ 0');
  });

  test('the trainer ends a run with a bad spec as bad input, before anything loads', async () => {
    const events: TrainEvent[] = [];
    const spec = specFor(config());
    await runTraining({ v: PROTOCOL_VERSION, type: 'train', id: 1, spec: { ...spec, plan: { ...spec.plan, epochs: 0 } } }, (m: TrainerMessage) => events.push(m as TrainEvent), new AbortController().signal);
    assert.deepEqual(
      events.map((e) => e.type),
      ['run-end'],
    );
    assert.deepEqual({ ...events[0], time: '' }, { v: PROTOCOL_VERSION, type: 'run-end', time: '', status: 'failed', error: 'bad-input', message: 'the train request cannot be run: run spec: plan.epochs must be a positive integer; got 0' });
  });

  const tfjsNodeHere = ((): boolean => {
    try {
      createRequire(__filename).resolve('@tensorflow/tfjs-node');
      return true;
    } catch {
      return false;
    }
  })();
  test('a trainer given a RunSpec whose backend cannot load ends with that message: nothing trains on another backend', { skip: tfjsNodeHere && 'tfjs-node is installed here: the tensorflow backend loads' }, async () => {
    const spec = specFor(config({ backend: 'tensorflow' }), { test: {}, location: { workspaceFolder: join(dir, 'ws'), tfjsNodePath: join(dir, 'nothing-here') } });
    assert.equal(spec.backend.name, 'tensorflow');
    const client = new TrainerClient({ trainerScript: TRAINER });
    const seen: TrainEvent[] = [];
    try {
      const end = await client.train(spec, (e) => seen.push(e));
      assert.equal(end.status, 'failed');
      assert.equal(end.error, 'bad-input');
      assert.match(end.message ?? '', /^The plan was made for the tensorflow backend, which cannot be loaded here: .*Nothing was trained on another backend/);
      assert.ok(!seen.some((e) => e.type === 'backend' || e.type === 'run-start' || e.type === 'batch'), 'no backend was initialised and nothing trained');
    } finally {
      client.dispose();
    }
  });

  test('the plan is made for the backend that runs: a GPU read from nvidia-smi while the run trains on wasm is a host-memory plan, said as two facts that agree', async () => {
    const gpu: DeviceInfo = { kind: 'gpu', name: 'NVIDIA Test GPU', memoryTotalBytes: 8 * 2 ** 30, memoryFreeBytes: 0.334 * 2 ** 30, source: 'nvidia-smi' };
    const host: DeviceInfo = { kind: 'cpu', name: 'Host RAM', memoryTotalBytes: 16 * 2 ** 30, memoryFreeBytes: 6 * 2 ** 30, source: 'os' };
    const report = await suggest({ config: config({ backend: 'wasm' }) }, { trainerScript: TRAINER, probe: false, listDevices: async () => [gpu, host] });
    assert.deepEqual([report.plan.backend.planned, report.plan.device.name, report.plan.device.kind], ['wasm', 'Host RAM', 'cpu']);
    assert.equal(plannedFor(report.plan), 'wasm on Host RAM, 6.0 GiB free');
    const given = await suggest({ config: config({ backend: 'wasm' }) }, { trainerScript: TRAINER, probe: false, deviceMemoryGiB: 2, listDevices: async () => [gpu, host] });
    assert.equal(plannedFor(given.plan), 'wasm on host memory of 2.0 GiB (given by size)');
    assert.equal(given.plan.device.name, 'Planned host memory (2 GiB)');
  });

  test('the entry points read the test faults from their environment into the spec', () => {
    assert.deepEqual(runTestFromEnv({ BATCH_ADVISOR_FAULT: 'oom@3', BATCH_ADVISOR_MEMORY_LIMIT: '1000' }), { fault: 'oom@3', memoryLimitBytes: 1000 });
    assert.equal(runTestFromEnv({ BATCH_ADVISOR_MEMORY_LIMIT: 'lots' }), undefined);
  });
});
