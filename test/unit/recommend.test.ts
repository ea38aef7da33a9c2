import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configForFolder, type TrainConfig } from '../../src/core/config';
import type { DatasetReport } from '../../src/core/shared/dataset-types';
import type { DeviceInfo } from '../../src/core/shared/device-types';
import { batchTable } from '../../src/core/planning/memory';
import { floorPow2, recommend } from '../../src/core/planning/recommend';
import type { MemoryEstimate } from '../../src/core/shared/report';

const GIB = 2 ** 30;
const MIB = 2 ** 20;

function dataset(train: number, uint8Bytes = 100 * MIB): DatasetReport {
  const d = { min: 0, median: 0, p95: 0, max: 0 };
  return {
    root: '/data',
    classes: [{ name: 'a', count: train }],
    totalImages: train,
    formats: { png: train },
    bytesOnDisk: 0,
    width: d,
    height: d,
    widthHistogram: [],
    heightHistogram: [],
    aspectRatio: d,
    channels: { '3': train },
    imbalanceRatio: 1,
    validationSplit: 0,
    train,
    validation: 0,
    decoded: { imageSize: [224, 224], channels: 3, uint8Bytes, float32Bytes: uint8Bytes * 4 },
    problems: [],
    problemCounts: {},
    scanMs: 1,
  };
}

/** An estimate where exactly `fit` images fit: budget = fixed + fit × perSample. */
function memory(fit: number, perSample = 10 * MIB, fixed = 100 * MIB): MemoryEstimate {
  const budgetBytes = fixed + fit * perSample;
  const est = {
    budgetBytes,
    headroom: 0.1,
    perSampleBytes: perSample,
    fixedBytes: fixed,
    breakdown: { weightsBytes: 25 * MIB, gradientsBytes: 25 * MIB, optimizerBytes: 50 * MIB, activationBytesPerSample: perSample - MIB, inputBytesPerSample: MIB, overheadBytes: 0 },
    table: [] as MemoryEstimate['table'],
  };
  est.table = batchTable(est);
  return est;
}

const gpu: DeviceInfo = { kind: 'gpu', name: 'GPU0', memoryTotalBytes: 8 * GIB, memoryFreeBytes: 8 * GIB, source: 'nvidia-smi' };
const host: DeviceInfo = { kind: 'cpu', name: 'Host RAM', memoryTotalBytes: 16 * GIB, memoryFreeBytes: 8 * GIB, source: 'os' };

/** A config whose learning rate is the base the planner scales (as when the file leaves it out); other overrides are explicit. */
function config(over: Partial<TrainConfig> = {}): TrainConfig {
  const c = configForFolder('/data', { optimizer: 'sgd', learningRate: 0.01, epochs: 20, ...over });
  return { ...c, explicit: c.explicit.filter((f) => f !== 'learningRate') };
}

function run(o: { train?: number; fit: number; config?: Partial<TrainConfig>; device?: DeviceInfo; freeHost?: number; uint8?: number; mem?: MemoryEstimate; chosen?: number }) {
  return recommend({
    ...(o.chosen !== undefined ? { chosen: { batch: o.chosen, reason: `chosen by the probe (${o.chosen}).` } } : {}),
    dataset: dataset(o.train ?? 100_000, o.uint8),
    memory: o.mem ?? memory(o.fit),
    config: o.config && 'explicit' in o.config ? (o.config as TrainConfig) : config(o.config),
    device: o.device ?? gpu,
    freeHostRamBytes: o.freeHost ?? 8 * GIB,
  });
}

describe('recommend: batch size', () => {
  it('floorPow2', () => {
    assert.deepEqual([0, 0.5, 1, 2, 3, 255, 256, 257].map(floorPow2), [0, 0, 1, 2, 2, 128, 256, 256]);
  });

  it("without the probe: Keras's default 32, saying the probe would choose by measurement", () => {
    const r = run({ fit: 300 });
    assert.equal(r.batchSize, 32);
    assert.equal(r.maxBatchSize, 300);
    assert.match(r.reasons[0] as string, /Batch 32, Keras's default: without the probe's measurements .* the probe would choose by measurement/);
    assert.match(r.reasons[0] as string, /Up to 300 images fit in 3\.0 GiB \(90% of 8\.0 GiB free on GPU0\)/);
    assert.equal(r.accumulationSteps, 1);
    assert.equal(r.stepsPerEpoch, Math.ceil(100_000 / 32));
    assert.equal(r.learningRate.rule, 'none'); // the base batch: the rate as given
  });

  it("the probe's choice is the batch, with its reason; memory caps it and says so", () => {
    const r = run({ fit: 300, chosen: 128 });
    assert.equal(r.batchSize, 128);
    assert.match(r.reasons[0] as string, /^Batch 128: chosen by the probe \(128\)\. Up to 300 images fit/);
    const capped = run({ fit: 300, chosen: 1024 });
    assert.equal(capped.batchSize, 256);
    assert.match(capped.reasons[0] as string, /Capped at 256 by memory/);
  });

  it('memory below the base batch: the largest power of two that fits, accumulated up to 32', () => {
    const r = run({ fit: 20 });
    assert.deepEqual([r.batchSize, r.accumulationSteps, r.effectiveBatchSize], [16, 2, 32]);
    assert.match(r.reasons[0] as string, /Batch 16, bound by memory/);
  });

  it('explains a budget that is not simply 90% of free memory (wasm heap)', () => {
    const mem = memory(300);
    mem.budgetNote = "the wasm backend's 4 GiB heap less 10% headroom, ÷ 1.2 for its allocator's slack";
    const r = run({ fit: 300, mem, device: host });
    assert.match(r.reasons[0] as string, /Up to 300 images fit in 3\.0 GiB \(the wasm backend's 4 GiB heap .*; 8\.0 GiB free on Host RAM\)/);
  });

  it('uses maxBatch when given instead of recomputing it', () => {
    const r = recommend({ dataset: dataset(100_000), memory: memory(300), maxBatch: 40, config: config(), device: gpu, freeHostRamBytes: 8 * GIB });
    assert.equal(r.batchSize, 32);
    assert.equal(r.maxBatchSize, 40);
  });

  it('keeps at least 50 optimizer steps per epoch', () => {
    const r = run({ train: 3200, fit: 5000, chosen: 1024 });
    assert.equal(r.batchSize, 64); // 3200 / 50 = 64
    assert.equal(r.stepsPerEpoch, 50);
    assert.match(r.reasons[0] as string, /Capped at 64: 3,200 training images: at most 64 per batch keeps at least 50 optimizer steps per epoch/);
    assert.equal(run({ train: 3199, fit: 5000, chosen: 1024 }).batchSize, 32); // 63.98 → 32
    assert.equal(run({ train: 1000, fit: 5000 }).batchSize, 16); // no probe: 32 would leave 31 steps
  });

  it('tiny datasets: never above a quarter of the training images, 8 when that allows', () => {
    const r = run({ train: 40, fit: 5000 });
    assert.equal(r.batchSize, 8); // 40 / 4 = 10 → 8
    assert.equal(r.stepsPerEpoch, 5);
    assert.match(r.reasons[0] as string, /Only 40 training images/);
    assert.equal(run({ train: 20, fit: 5000 }).batchSize, 4); // 20 / 4 = 5 → 4
    assert.equal(run({ train: 3, fit: 5000 }).batchSize, 1);
    assert.equal(run({ train: 3, fit: 5000 }).accumulationSteps, 1);
  });

  it('a batch from the config is kept when it fits, but never above the training images', () => {
    assert.equal(run({ fit: 300, config: { batchSize: 48 } }).batchSize, 48);
    const r = run({ train: 40, fit: 300, config: { batchSize: 64 } });
    assert.equal(r.batchSize, 32);
    assert.ok(r.reasons.some((x) => /never more than the 40 training images/.test(x)));
  });

  it('not even batch 1 fits: batch 1, max 0, and a warning with the shortfall and what to do', () => {
    const mem = memory(0, 10 * MIB, 100 * MIB);
    mem.budgetBytes = 105 * MIB; // batch 1 needs 110 MiB
    const r = run({ fit: 0, mem, config: { optimizer: 'adam', imageSize: [256, 256] } });
    assert.equal(r.batchSize, 1);
    assert.equal(r.maxBatchSize, 0);
    assert.equal(r.warnings.length, 1);
    const w = r.warnings[0] as string;
    assert.match(w, /batch 1 needs 110 MiB but the budget is 105 MiB \(short by 5\.0 MiB, 5%\)/);
    assert.match(w, /smaller imageSize \(halving it to 128×128/);
    assert.match(w, /SGD instead of adam \(saves its 50\.0 MiB of slots\)/);
    assert.match(w, /smaller model/);
  });
});

describe('recommend: not even one image fits', () => {
  it('the model is too big: says what the model takes before any image and suggests smaller settings', () => {
    const r = run({ fit: 0, mem: { ...memory(0), budgetBytes: 50 * MIB } });
    const w = r.warnings.find((x) => x.startsWith('Not even one image fits'));
    assert.ok(w, r.warnings.join('\n'));
    assert.match(w, /Before any image, the weights, gradients and optimizer state take 100 MiB\./);
    assert.match(w, /Try a smaller imageSize .*, or a smaller model/);
    assert.doesNotMatch(w, /runtime/);
  });

  it('the runtime alone exceeds the device given: the advice is to check the device size, not the model; no absurd percentages', () => {
    const m = memory(0);
    const mem = { ...m, fixedBytes: m.fixedBytes + 300 * MIB, breakdown: { ...m.breakdown, overheadBytes: 300 * MIB }, budgetBytes: 100 * 1024 };
    const w = run({ fit: 0, mem }).warnings.find((x) => x.startsWith('Not even one image fits'));
    assert.ok(w);
    assert.match(w, /weights, gradients and optimizer state take 100 MiB and the runtime \(CUDA context and library handles\) 300 MiB/);
    assert.match(w, /Check the device memory given/);
    assert.match(w, /\d× the budget\)/);
    assert.doesNotMatch(w, /\d{4,}%/);
  });
});

describe('recommend: learning rate and warmup', () => {
  it('linear rule for SGD/momentum with warmup', () => {
    const r = run({ train: 6400, fit: 5000, chosen: 128, config: { optimizer: 'momentum', learningRate: 0.01, epochs: 20 } });
    assert.equal(r.effectiveBatchSize, 128);
    assert.deepEqual(r.learningRate, { base: 0.01, baseBatchSize: 32, recommended: 0.04, rule: 'linear' });
    assert.equal(r.warmupSteps, 50); // 5% of 20 × 50 steps
    assert.equal(r.warmupEpochs, 1);
  });

  it('square-root rule for Adam/RMSProp', () => {
    const r = run({ train: 6400, fit: 5000, chosen: 128, config: { optimizer: 'adam', learningRate: 0.001 } });
    assert.equal(r.learningRate.rule, 'sqrt');
    assert.ok(Math.abs(r.learningRate.recommended - 0.002) < 1e-12); // √4 = 2
    assert.equal(run({ train: 6400, fit: 5000, chosen: 128, config: { optimizer: 'rmsprop', learningRate: 0.001 } }).learningRate.rule, 'sqrt');
  });

  it('no scaling at the base batch, no warmup when the batch goes down', () => {
    const base = run({ fit: 32 });
    assert.equal(base.learningRate.rule, 'none');
    assert.equal(base.learningRate.recommended, 0.01);
    assert.equal(base.warmupEpochs, 0);
    const small = run({ train: 40, fit: 5000 });
    assert.equal(small.learningRate.recommended, 0.01 / 4);
    assert.equal(small.warmupEpochs, 0);
    assert.equal(run({ fit: 1024, chosen: 1024, config: { epochs: 90 } }).learningRate.recommended, 0.32);
  });

  it('warmup is at most 5% of the run (never most of a short run) and at most 5 epochs; its reason states the numbers', () => {
    for (const [train, epochs, chosen] of [[100_000, 2, 1024], [100_000, 100, 1024], [6400, 1, 128], [6400, 3, 64], [3200, 1, 64], [3200, 5, 64], [800, 1, 64]] as const) {
      const r = run({ train, fit: 5000, chosen, config: { epochs } });
      const total = r.stepsPerEpoch * epochs;
      assert.ok(r.warmupSteps <= 0.05 * total, `${train}/${epochs}/${chosen}: warmup ${r.warmupSteps} of ${total}`);
      assert.ok(r.warmupEpochs <= 5);
      assert.equal(r.warmupEpochs, r.warmupSteps / r.stepsPerEpoch);
      if (!(r.learningRate.recommended > r.learningRate.base)) continue; // the rate does not go up: nothing to warm up
      const reason = r.reasons.find((x) => /^Warm up over|^No warmup/.test(x))!;
      if (r.warmupSteps > 0) assert.match(reason, new RegExp(`^Warm up over ${r.warmupSteps.toLocaleString('en-US')} optimizer steps? \\(${Math.round((r.warmupSteps / total) * 100)}% of the run's ${total.toLocaleString('en-US')}\\)`));
      else assert.match(reason, new RegExp(`^No warmup: the run has ${total} optimizer steps`));
    }
    assert.equal(run({ train: 100_000, fit: 5000, chosen: 1024, config: { epochs: 100 } }).warmupEpochs, 5); // 5% of 100 epochs
  });
});

describe('recommend: gradient accumulation', () => {
  it('keeps a config batch that does not fit as written, with a warning that says what to do', () => {
    const r = run({ fit: 100, config: { batchSize: 256 } });
    assert.equal(r.batchSize, 256);
    assert.equal(r.accumulationSteps, 1);
    assert.ok(r.reasons.some((x) => /Batch 256 as the config sets it, although it is predicted not to fit/.test(x)));
    assert.ok(r.warnings.some((w) => /Batch 256 is predicted to need .* Set "batchSize": "auto" to train on micro-batches of 64 accumulated over 4 \(effective 256\)/.test(w)));
  });

  it('keeps a config accumulation as written (no halving, no extra accumulation)', () => {
    const r = run({ fit: 5, config: { accumulationSteps: 3 } });
    assert.equal(r.batchSize, 4);
    assert.equal(r.accumulationSteps, 3);
    assert.equal(r.effectiveBatchSize, 12);
    assert.ok(r.reasons.some((x) => /Accumulating gradients over 3 micro-batches as the config sets it/.test(x)));
  });

  it('keeps a config learning rate as written: not scaled, no warmup', () => {
    const c = configForFolder('/data', { optimizer: 'sgd', learningRate: 0.05, epochs: 20 });
    assert.deepEqual(c.explicit, ['learningRate']);
    const r = run({ train: 6400, fit: 5000, chosen: 128, config: c });
    assert.equal(r.effectiveBatchSize, 128);
    assert.deepEqual(r.learningRate, { base: 0.05, baseBatchSize: 32, recommended: 0.05, rule: 'none' });
    assert.equal(r.warmupSteps, 0);
    assert.ok(r.reasons.some((x) => /Learning rate 0\.05 as the config sets it \(not scaled/.test(x)));
  });

  it('a config warmup is kept as written', () => {
    const r = run({ train: 6400, fit: 5000, config: { warmupSteps: 7 } });
    assert.equal(r.warmupSteps, 7);
    assert.ok(r.reasons.some((x) => /Warmup over 7 optimizer steps as the config sets it/.test(x)));
  });

  it('halves the micro-batch when the running gradient sum does not fit next to it', () => {
    // 17 fit (100 + 17×10 MiB): 16 × 2 accumulated would need 100 + 160 + 25 (the gradient sum) = 285 MiB of 270.
    const r = run({ fit: 17 });
    assert.deepEqual([r.batchSize, r.accumulationSteps, r.effectiveBatchSize], [8, 4, 32]);
    assert.ok(r.reasons.some((x) => /Only 8 per step fits next to accumulation's running sum of the gradients \(25(\.0)? MiB\), so gradients are accumulated over 4 micro-batches/.test(x)));
  });

  it('with a measured maximum (the probe), the running sum is checked against what the maximum used, not the model\'s budget', () => {
    // The model says nothing fits the budget (e.g. a planned GPU's runtime share), but real steps trained 20.
    const mem = memory(0, 10 * MIB, 300 * MIB);
    mem.budgetBytes = 250 * MIB;
    mem.breakdown.gradientsBytes = MIB;
    const r = recommend({ dataset: dataset(100_000), memory: mem, maxBatch: 20, config: config(), device: gpu, freeHostRamBytes: 8 * GIB });
    assert.deepEqual([r.batchSize, r.accumulationSteps, r.effectiveBatchSize], [16, 2, 32]);
  });

  it('no accumulation when its running gradient sum does not fit next to even one image (a model of mostly weights)', () => {
    const mem = memory(20);
    mem.breakdown.gradientsBytes = 250 * MIB; // 100 + 10 + 250 MiB > 300 MiB
    const r = run({ fit: 20, mem });
    assert.deepEqual([r.batchSize, r.accumulationSteps, r.effectiveBatchSize], [16, 1, 16]);
    assert.ok(r.reasons.some((x) => /No gradient accumulation: its running sum of the gradients \(250 MiB\) does not fit next to even one image, so the effective batch stays 16/.test(x)), r.reasons.join('\n'));
    assert.ok(!r.reasons.some((x) => /accumulated over/.test(x)));
  });

  it('accumulates up to batch 32 when only a few images fit', () => {
    const mem = memory(5);
    mem.breakdown.gradientsBytes = MIB; // the running sum fits next to batch 4
    const r = run({ fit: 5, mem });
    assert.equal(r.batchSize, 4);
    assert.equal(r.accumulationSteps, 8);
    assert.equal(r.effectiveBatchSize, 32);
    assert.equal(r.learningRate.rule, 'none');
    assert.ok(r.reasons.some((x) => /^Only 4 per step fits, so gradients are accumulated over 8 micro-batches.*BatchNorm layers still see batches of 4/.test(x)));
    // With a 25 MiB gradient sum, batch 4 (140 MiB of 150 MiB) leaves no room: micro 2 × 16.
    const tight = run({ fit: 5 });
    assert.deepEqual([tight.batchSize, tight.accumulationSteps, tight.effectiveBatchSize], [2, 16, 32]);
    assert.ok(tight.reasons.some((x) => /Only 2 per step fits next to accumulation's running sum of the gradients \(25(\.0)? MiB\), so .*over 16 micro-batches/.test(x)));
  });
});

describe('recommend: loading', () => {
  it('preloads uint8 images when they take at most half the free host RAM, else streams', () => {
    const pre = run({ fit: 64, uint8: 4 * GIB, freeHost: 8 * GIB });
    assert.equal(pre.loading.strategy, 'preload');
    assert.match(pre.loading.reason, /4\.0 GiB as uint8.*float32 they would take 16\.0 GiB.*within 50% of 8\.0 GiB free host RAM/);
    const str = run({ fit: 64, uint8: 4 * GIB + 1, freeHost: 8 * GIB });
    assert.equal(str.loading.strategy, 'stream');
  });

  it('training on the host leaves less RAM for preloading', () => {
    // 64 images × 10 MiB + 100 MiB = 740 MiB of training memory in host RAM.
    const r = run({ fit: 64, chosen: 64, uint8: 3.8 * GIB, freeHost: 8 * GIB, device: host });
    assert.equal(r.loading.strategy, 'stream');
    assert.match(r.loading.reason, /after the 740 MiB training itself takes there/);
  });

  it('respects an explicit choice, warning when a preload will not fit', () => {
    const r = run({ fit: 64, uint8: 6 * GIB, freeHost: 8 * GIB, config: { loading: 'preload' } });
    assert.equal(r.loading.strategy, 'preload');
    assert.ok(r.warnings.some((w) => /Preloading 6\.0 GiB/.test(w)));
    assert.equal(run({ fit: 64, uint8: MIB, config: { loading: 'stream' } }).loading.strategy, 'stream');
  });
});
