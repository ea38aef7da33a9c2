/** Data-parallel advice with several GPUs: per-device and global batch, the learning rate scaled for the global batch. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatSuggest } from '../../src/cli/report';
import { configForFolder } from '../../src/core/config';
import { dataParallelAdvice, type DataParallelInput } from '../../src/core/planning/data-parallel';
import { batchTable } from '../../src/core/planning/memory';
import type { DeviceInfo } from '../../src/core/shared/device-types';
import type { MemoryEstimate } from '../../src/core/shared/report';
import { suggest } from '../../src/core/process/suggest';
import { makeTinyDataset } from '../helpers/tiny-dataset';

const GIB = 2 ** 30;
const MIB = 2 ** 20;
const TRAINER = resolve(__dirname, '../../src/trainer/main.ts');

function gpu(name: string, freeGiB: number): DeviceInfo {
  return { kind: 'gpu', name, memoryTotalBytes: 24 * GIB, memoryFreeBytes: freeGiB * GIB, source: 'nvidia-smi' };
}
const host: DeviceInfo = { kind: 'cpu', name: 'Host RAM', memoryTotalBytes: 64 * GIB, memoryFreeBytes: 32 * GIB, source: 'os' };

/** 100 MiB fixed + 10 MiB per image; the budget is what the device list gives (headroom 0). */
function memory(): MemoryEstimate {
  const est = {
    budgetBytes: 8 * GIB,
    headroom: 0,
    perSampleBytes: 10 * MIB,
    fixedBytes: 100 * MIB,
    breakdown: { weightsBytes: 25 * MIB, gradientsBytes: 25 * MIB, optimizerBytes: 50 * MIB, activationBytesPerSample: 9 * MIB, inputBytesPerSample: MIB, overheadBytes: 0 },
    table: [] as MemoryEstimate['table'],
  };
  est.table = batchTable(est);
  return est;
}

function input(devices: DeviceInfo[], over: Partial<DataParallelInput> = {}): DataParallelInput {
  return {
    plan: { microBatchSize: 128, accumulationSteps: 1, learningRate: { value: 0.04, base: 0.01, baseBatchSize: 32, rule: 'linear' }, sources: { batchSize: 'planned', accumulationSteps: 'planned', learningRate: 'planned', warmup: 'planned', loading: 'planned' }, trainImages: 10_000 },
    devices,
    device: devices[0]!,
    memory: memory(),
    headroom: 0,
    optimizer: 'sgd',
    ...over,
  };
}

describe('data-parallel advice', () => {
  it('2 equal GPUs: the plan per device, twice the global batch, the learning rate scaled linearly for it (SGD)', () => {
    const a = dataParallelAdvice(input([gpu('A100 #0', 20), gpu('A100 #1', 20), host]))!;
    assert.equal(a.devices, 2);
    assert.equal(a.perDeviceBatchSize, 128);
    assert.equal(a.globalBatchSize, 256);
    assert.equal(a.rule, 'linear');
    assert.ok(Math.abs(a.learningRate - 0.01 * (256 / 32)) < 1e-12);
    assert.equal(a.stepsPerEpoch, Math.ceil(10_000 / 256));
    assert.equal(a.limitedBy, undefined);
    assert.match(a.note, /^Data-parallel on 2 GPUs: 128 per device × 2 GPUs = global batch 256, learning rate 0\.08 \(linear from 0\.01 at batch 32\), 40 steps per epoch\./);
  });

  it('4 equal GPUs with Adam and accumulation: the global batch counts every micro-batch, the rate scales by its square root', () => {
    const plan = { ...input([]).plan, microBatchSize: 64, accumulationSteps: 2 };
    const a = dataParallelAdvice(input([gpu('g0', 20), gpu('g1', 20), gpu('g2', 20), gpu('g3', 20), host], { plan, optimizer: 'adam' }))!;
    assert.equal(a.globalBatchSize, 64 * 2 * 4);
    assert.equal(a.rule, 'sqrt');
    assert.ok(Math.abs(a.learningRate - 0.01 * Math.sqrt(512 / 32)) < 1e-12);
    assert.match(a.note, /64 × 2 accumulated per device × 4 GPUs = global batch 512/);
  });

  it('unequal GPUs: the per-device batch is limited by the smallest, and the note says so', () => {
    // 2 GiB free: (2048 − 100) / 10 = 194 images fit; 1 GiB: (1024 − 100) / 10 = 92.
    const a = dataParallelAdvice(input([gpu('big', 20), gpu('small', 1), host]))!;
    assert.equal(a.perDeviceBatchSize, 92);
    assert.equal(a.globalBatchSize, 184);
    assert.deepEqual(a.limitedBy, { name: 'small', memoryFreeBytes: GIB, maxBatchSize: 92 });
    assert.match(a.note, /The GPUs differ: the per-device batch is limited by the smallest, small \(1\.0 GiB free, fits up to 92; the plan's 128 does not\)/);
  });

  it('a learning rate set in the config is kept as written', () => {
    const base = input([]).plan;
    const plan = { ...base, learningRate: { value: 0.05, base: 0.05, baseBatchSize: 32, rule: 'none' as const }, sources: { ...base.sources, learningRate: 'config' as const } };
    const a = dataParallelAdvice(input([gpu('a', 20), gpu('b', 20)], { plan }))!;
    assert.equal(a.learningRate, 0.05);
    assert.match(a.note, /learning rate 0\.05 as the config sets it/);
  });

  it('no advice with one GPU, without GPUs, or when planning for a device given by size', () => {
    assert.equal(dataParallelAdvice(input([gpu('only', 20), host])), undefined);
    assert.equal(dataParallelAdvice(input([host])), undefined);
    const planned: DeviceInfo = { ...gpu('Planned GPU (12 GiB)', 12), source: 'override' };
    assert.equal(dataParallelAdvice(input([gpu('a', 20), gpu('b', 20)], { device: planned })), undefined);
  });
});

describe('suggest on a machine with several GPUs', () => {
  let dir: string;
  let dataset: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ba-dp-'));
    dataset = (await makeTinyDataset(join(dir, 'ds'), { classes: 2, perClass: 20, size: 16, channels: 3 })).root;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('puts the advice in the plan (--json) and in the text report', async () => {
    const config = configForFolder(dataset, { imageSize: [16, 16], channels: 3, optimizer: 'sgd', backend: 'wasm' });
    const devices = [gpu('RTX 4090', 20), gpu('RTX 3060', 10), host];
    const report = await suggest({ config }, { trainerScript: TRAINER, listDevices: async () => devices });
    const dp = report.plan.dataParallel!;
    assert.ok(dp, 'the plan has data-parallel advice');
    assert.equal(dp.devices, 2);
    assert.equal(dp.globalBatchSize, dp.perDeviceBatchSize * report.plan.accumulationSteps * 2);
    assert.equal(dp.limitedBy?.name, 'RTX 3060');
    assert.match(dp.note, /The GPUs differ: the per-device batch fits the smallest, RTX 3060 \(10\.0 GiB free\)/);
    assert.equal(report.plan.dataParallelDevices, 1, 'the trainer itself runs on one device');
    assert.ok(JSON.parse(JSON.stringify(report)).plan.dataParallel.note.startsWith('Data-parallel on 2 GPUs'));
    assert.ok(formatSuggest(report).includes(`  ${dp.note}`));
  });
});
