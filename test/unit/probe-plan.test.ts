/** The probe's planning (src/core/probe/probe.ts) against fake trials: margin, confirmation, throughput, noise scale. */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { configForFolder, type TrainConfig } from '../../src/core/config';
import { estimateMemory, FIXED_OVERHEAD } from '../../src/core/planning/memory';
import { objectiveChoice, planningNoiseScale, probePlan } from '../../src/core/probe/probe';
import type { DatasetReport } from '../../src/core/shared/dataset-types';
import type { DeviceInfo } from '../../src/core/shared/device-types';
import type { ModelDescription } from '../../src/core/shared/model';
import type { ProbeTrialResult, ProbeTrialSpec } from '../../src/core/shared/probe';

const MIB = 2 ** 20;
const GIB = 2 ** 30;

/** One Dense layer: 1 MiB of activations per image (factor 2 × 131072 outputs × 4 B). */
const model: ModelDescription = {
  name: 'fake',
  inputShape: [8, 8, 1],
  numClasses: 2,
  layers: [{ name: 'd', className: 'Dense', outputShape: [131072], params: 0, trainableParams: 0, activation: 'linear', useBias: false }],
  totalParams: 0,
  trainableParams: 0,
};

function dataset(train: number): DatasetReport {
  const d = { min: 0, median: 0, p95: 0, max: 0 };
  return { root: '/d', classes: [{ name: 'a', count: train }], totalImages: train, formats: {}, bytesOnDisk: 0, width: d, height: d, widthHistogram: [], heightHistogram: [], aspectRatio: d, channels: {}, imbalanceRatio: 1, validationSplit: 0, train, validation: 0, decoded: { imageSize: [8, 8], channels: 1, uint8Bytes: MIB, float32Bytes: 4 * MIB }, problems: [], problemCounts: {}, scanMs: 1 };
}

function setup(freeBytes: number, config: Partial<TrainConfig> = {}, plannedBackend: 'cpu' | 'tensorflow-gpu' = 'cpu') {
  const device: DeviceInfo = { kind: plannedBackend === 'cpu' ? 'cpu' : 'gpu', name: 'planned', memoryTotalBytes: freeBytes, memoryFreeBytes: freeBytes, source: 'override' };
  const memory = estimateMemory(model, { optimizer: 'sgd', budgetBytes: freeBytes * 0.9, headroom: 0.1, backend: 'cpu' });
  return { config: { ...configForFolder('/d', { optimizer: 'sgd', ...config }) }, dataset: dataset(100_000), device, memory, plannedBackend, freeHostRamBytes: 8 * GIB, margin: 0.1 };
}

interface Fake {
  /** Real bytes per image relative to the model's. */
  factor?: number;
  ips?: (b: number) => number;
  noise?: { g2: number; trace: number };
  failAt?: (spec: ProbeTrialSpec) => boolean;
}

/** Trials whose peaks are `factor` × the model's per-image bytes, with a throughput curve and synthetic gradient norms. */
function fake(f: Fake): { run: (s: ProbeTrialSpec) => Promise<ProbeTrialResult>; specs: ProbeTrialSpec[] } {
  const specs: ProbeTrialSpec[] = [];
  const perImage = (2 * 131072 * 4 + (64 + 2) * 4) * (f.factor ?? 1);
  const ips = f.ips ?? ((b: number) => 10 * b);
  return {
    specs,
    run: async (s) => {
      specs.push(s);
      const b = s.microBatchSize;
      const peak = perImage * b;
      const base = { batchSize: b, accumulationSteps: s.accumulationSteps, peakBytes: peak, tensorPeakBytes: peak, rssBytes: 0, steps: 3, durationMs: 1 };
      if (f.failAt?.(s)) return { ...base, ok: false, failure: 'oom', error: 'OOM when allocating tensor', imagesPerSec: 0 };
      const r: ProbeTrialResult = { ...base, ok: true, imagesPerSec: ips(b), lossFirst: 1, lossLast: 0.9 };
      // As the trainer does: the batches asked for and the trial's own; a larger one that does not fit
      // ends the timing (the trial itself trained: its result stands, without the throughput).
      const timed = s.throughputBatches ? [...s.throughputBatches, b].sort((x, y) => x - y) : [];
      const failed = timed.findIndex((t) => f.failAt?.({ ...s, microBatchSize: t }));
      if (failed >= 0) r.error = `throughput: batch ${timed[failed]} not timed: OOM when allocating tensor`;
      if (s.throughputBatches) r.throughput = (failed >= 0 ? timed.slice(0, failed) : timed).map((t) => ({ batchSize: t, imagesPerSec: ips(t) }));
      if (s.noise && f.noise) {
        const n = f.noise;
        const { smallBatch: bs, bigBatch: bb } = s.noise;
        r.gradientNorms = { smallBatch: bs, bigBatch: bb, small: [n.g2 + n.trace / bs, n.g2 + n.trace / bs], big: [n.g2 + n.trace / bb, n.g2 + n.trace / bb] };
      }
      return r;
    },
  };
}

describe('planning with the probe', () => {
  test('memory holds less than the base batch and the model under-predicts by 30%: found max from the trials, margin widened, the plan confirmed by its own trial', async () => {
    const input = setup(FIXED_OVERHEAD + 20 * MIB);
    const f = fake({ factor: 1.3 });
    const out = await probePlan(input, { runTrial: f.run });
    const truth = Math.floor((20 * MIB) / ((2 * 131072 * 4 + 66 * 4) * 1.3));
    assert.ok(out.probe.maxBatchSize <= truth && out.probe.maxBatchSize >= truth * 0.9, `found ${out.probe.maxBatchSize}, truth ${truth}`);
    assert.equal(out.probe.maxSearched, true);
    assert.ok(Math.abs(out.probe.margin - 0.23) < 0.02, `margin ${out.probe.margin}`);
    assert.ok(out.plan.microBatchSize <= out.probe.maxBatchSize * (1 - out.probe.margin));
    assert.equal(out.plan.effectiveBatchSize, 32, 'accumulated up to the base batch');
    assert.equal(out.plan.sources.batchSize, 'probe');
    assert.equal(out.plan.maxMicroBatchSize, out.probe.maxBatchSize);
    assert.ok(out.plan.reasons.some((r) => /widened from 10%/.test(r)), out.plan.reasons.join('\n'));
    const last = f.specs.at(-1)!;
    assert.deepEqual([last.microBatchSize, last.accumulationSteps, last.validationBatchSize], [out.plan.microBatchSize, out.plan.accumulationSteps, out.plan.validationBatchSize]);
    assert.ok(out.probe.trials.every((t) => typeof t.predictedBytes === 'number'));
  });

  test('flat throughput (a CPU): one trial process, a small batch, the maximum not searched, the reason with numbers', async () => {
    const input = setup(FIXED_OVERHEAD + 4 * GIB);
    const f = fake({ ips: (b) => 200 + 0.1 * b, noise: { g2: 1, trace: 215 } });
    const out = await probePlan(input, { runTrial: f.run });
    assert.equal(out.probe.processes, 1);
    assert.equal(f.specs.length, 1);
    // 32 below the trial's 64, and 128 above it: predicted at 128 MiB, well within a quarter of the 3.6 GiB budget.
    assert.deepEqual(f.specs[0]!.throughputBatches, [32, 128]);
    assert.equal(f.specs[0]!.runImages, out.plan.epochs * 100_000, 'the trial knows how long the run is (its extra measurements stay a small share of it)');
    assert.equal(out.plan.microBatchSize, 32);
    assert.equal(out.plan.sources.batchSize, 'probe');
    assert.equal(out.probe.maxSearched, false);
    assert.equal(out.probe.maxBatchSize, 128, 'batch 128 trained inside the first trial');
    assert.equal(out.probe.objective?.chosen, 32);
    const why = out.plan.reasons[0]!;
    assert.match(why, /^Batch 32: predicted to reach the same loss in 0\.\d+× the time of batch 128 — 203 vs 213 images\/s measured, noise scale ≈ 215/);
    assert.match(why, /Real training steps trained batch 128 \(1 trial process\)/);
    assert.match(why, /Larger batches were not tried: larger batches than 128 cannot reach the target sooner here/);
  });

  test('a batch above the trial’s is timed inside it only when predicted well within memory; otherwise in a process of its own', async () => {
    // 1 MiB per image: batch 128 needs ~128 MiB, more than a quarter of a 400 MiB budget.
    const input = setup(FIXED_OVERHEAD + 400 * MIB);
    const f = fake({ ips: (b) => 10 * b, noise: { g2: 1, trace: 215 } });
    const out = await probePlan(input, { runTrial: f.run });
    assert.deepEqual(f.specs[0]!.throughputBatches, [32], 'nothing above the first trial inside it');
    assert.ok(f.specs.length >= 2 && f.specs[1]!.microBatchSize === 128, f.specs.map((s) => s.microBatchSize).join(', '));
    assert.ok(out.probe.maxBatchSize >= 128);
  });

  test('throughput that grows linearly (a GPU below saturation): larger batches are tried while they can win, the largest is planned', async () => {
    const input = setup(FIXED_OVERHEAD + 4 * GIB, {}, 'tensorflow-gpu');
    const f = fake({ ips: (b) => 10 * b, noise: { g2: 1, trace: 215 } });
    const out = await probePlan(input, { runTrial: f.run });
    assert.ok(out.probe.processes <= 4, `${out.probe.processes} processes`);
    assert.equal(out.plan.microBatchSize, 1024);
    assert.equal(out.probe.maxBatchSize, 1024);
    assert.match(out.plan.reasons[0]!, /^Batch 1024: predicted to reach the target loss soonest of the batches measured \(32–1,024\)/);
  });

  test('throughput that bends at 256 on a GPU: one more trial finds the bend and the plan stops there', async () => {
    const input = setup(FIXED_OVERHEAD + 4 * GIB, {}, 'tensorflow-gpu');
    const f = fake({ ips: (b) => 10 * Math.min(b, 256) + 0.01 * b, noise: { g2: 1, trace: 100 } });
    const out = await probePlan(input, { runTrial: f.run });
    assert.equal(out.plan.microBatchSize, 256);
    assert.ok(out.probe.processes <= 2, `${out.probe.processes} processes`);
  });

  test('without a usable noise scale: the smallest batch reaching 95% of the best throughput, and says why', async () => {
    const input = setup(FIXED_OVERHEAD + 4 * GIB);
    const out = await probePlan(input, { runTrial: fake({ ips: (b) => 10 * Math.min(b, 64) }).run });
    assert.equal(out.plan.microBatchSize, 64);
    assert.equal(out.probe.objective?.basis, 'throughput');
    assert.ok(out.plan.reasons.some((r) => /95% of the best measured throughput/.test(r)), out.plan.reasons.join('\n'));
  });

  test('the objective moves with the noise scale: a larger B_noise gives a larger batch on the same curve', async () => {
    const curve = (b: number) => 100 * Math.log2(b);
    const small = await probePlan(setup(FIXED_OVERHEAD + 4 * GIB), { runTrial: fake({ ips: curve, noise: { g2: 1, trace: 10 } }).run });
    const big = await probePlan(setup(FIXED_OVERHEAD + 4 * GIB), { runTrial: fake({ ips: curve, noise: { g2: 1, trace: 2000 } }).run });
    assert.ok(big.plan.microBatchSize > small.plan.microBatchSize, `${small.plan.microBatchSize} vs ${big.plan.microBatchSize}`);
  });

  test('the first trial runs out of memory (the model over-predicted the fit): halved until one trains, and the plan stays below it', async () => {
    const input = setup(FIXED_OVERHEAD + 4 * GIB);
    const f = fake({ failAt: (s) => s.microBatchSize >= 64, noise: { g2: 1, trace: 5000 } });
    const out = await probePlan(input, { runTrial: f.run });
    assert.deepEqual(f.specs.map((s) => s.microBatchSize), [64, 32]);
    assert.equal(out.plan.microBatchSize, 32);
    assert.equal(out.probe.maxSearched, true);
    assert.match(out.plan.reasons[0]!, /batch 64 did not fit/);
  });

  test('a larger batch worth trying runs out of memory: the plan stays at the largest that trained, and says so', async () => {
    const input = setup(FIXED_OVERHEAD + 4 * GIB);
    const f = fake({ failAt: (s) => s.microBatchSize >= 128, noise: { g2: 1, trace: 5000 } });
    const out = await probePlan(input, { runTrial: f.run });
    assert.deepEqual(f.specs.map((s) => s.microBatchSize), [64, 128]);
    assert.equal(out.plan.microBatchSize, 64);
    assert.equal(out.probe.maxSearched, true);
    assert.match(out.plan.reasons[0]!, /batch 128 did not fit/);
  });

  test('a config batch is kept as written: neither throughput nor the noise scale changes it', async () => {
    const input = setup(FIXED_OVERHEAD + 4 * GIB, { batchSize: 256 });
    const out = await probePlan(input, { runTrial: fake({ ips: (b) => 10 * Math.min(b, 64), noise: { g2: 1, trace: 40 } }).run });
    assert.equal(out.plan.microBatchSize, 256);
    assert.equal(out.plan.sources.batchSize, 'config');
  });

  test("memory-bound: the plan's own trial fails, a smaller plan is confirmed again", async () => {
    const input = setup(FIXED_OVERHEAD + 20 * MIB);
    let confirmFails = 1;
    const f = fake({ failAt: (s) => s.noise !== undefined && confirmFails-- > 0 });
    const out = await probePlan(input, { runTrial: f.run });
    const confirms = f.specs.filter((s) => s.noise);
    assert.equal(confirms.length, 2);
    assert.ok(confirms[1]!.microBatchSize < confirms[0]!.microBatchSize);
    assert.equal(out.plan.microBatchSize, confirms[1]!.microBatchSize);
  });

  test('every trial fails for another reason: the model plan stays, with a warning', async () => {
    const input = setup(FIXED_OVERHEAD + 200 * MIB);
    const out = await probePlan(input, { runTrial: async (s) => ({ batchSize: s.microBatchSize, accumulationSteps: 1, ok: false, failure: 'error', error: 'model file broken', peakBytes: 0, tensorPeakBytes: 0, rssBytes: 0, imagesPerSec: 0, steps: 0, durationMs: 1 }) });
    assert.equal(out.plan.sources.batchSize, 'planned');
    assert.ok(out.plan.warnings.some((w) => /could not confirm the plan \(model file broken\)/.test(w)));
  });
});

describe('the noise scale the plan is made for', () => {
  // A CPU-like curve: batch 64 is 1.5× as fast as 32, 128 no faster than 64.
  const curve = [
    { batchSize: 32, imagesPerSec: 1000 },
    { batchSize: 64, imagesPerSec: 1500 },
    { batchSize: 128, imagesPerSec: 1500 },
  ];
  const g = (bSimple: number, range?: [number, number | null]) => ({ bSimple, ...(range ? { range } : {}), gradientSquaredNorm: 1, traceSigma: bSimple, smallBatch: 8, bigBatch: 64, steps: 8, note: '' });

  test('the upper end of the measured range (it only grows as the loss falls); the point estimate when the range is unbounded or missing', () => {
    assert.equal(planningNoiseScale(g(30, [20, 90])), 90);
    assert.equal(planningNoiseScale(g(30, [20, null])), 30);
    assert.equal(planningNoiseScale(g(30)), 30);
    assert.equal(planningNoiseScale({ ...g(30), bSimple: undefined }), undefined);
  });

  test('a choice that flips inside the range is made for its upper end, and the reason says both figures', () => {
    // At 30: (32+30)/1000 = 0.062 < (64+30)/1500 = 0.0627 → 32. At 90: 0.122 vs 0.103 → 64.
    const { report, reason } = objectiveChoice(curve, g(30, [20, 90]), [32, 64, 128]);
    assert.equal(report.chosen, 64);
    assert.equal(report.bNoise, 90);
    assert.equal(report.bNoiseMeasured, 30);
    assert.deepEqual(report.choiceInRange, [32, 64]);
    assert.match(reason, /noise scale 90 planned for \(measured ≈ 30; it grows as the loss falls, so the plan takes the upper end of its range\)/);
    // Without a range the measured value decides, and the reason gives it alone.
    const point = objectiveChoice(curve, g(30), [32, 64, 128]);
    assert.equal(point.report.chosen, 32);
    assert.match(point.reason, /noise scale ≈ 30 \(/);
  });
});
