/** The probe's planning (src/core/probe/probe.ts) against fake trials: margin, confirmation, throughput, noise scale. */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { configForFolder, type TrainConfig } from '../../src/core/config';
import { estimateMemory, FIXED_OVERHEAD } from '../../src/core/memory';
import { probePlan } from '../../src/core/probe/probe';
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

function setup(freeBytes: number, config: Partial<TrainConfig> = {}) {
  const device: DeviceInfo = { kind: 'cpu', name: 'planned', memoryTotalBytes: freeBytes, memoryFreeBytes: freeBytes, source: 'override' };
  const memory = estimateMemory(model, { optimizer: 'sgd', budgetBytes: freeBytes * 0.9, headroom: 0.1, backend: 'cpu' });
  return { config: { ...configForFolder('/d', { optimizer: 'sgd', ...config }) }, dataset: dataset(100_000), device, memory, plannedBackend: 'cpu' as const, freeHostRamBytes: 8 * GIB, margin: 0.1 };
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
      if (s.throughputBatches) r.throughput = s.throughputBatches.map((t) => ({ batchSize: t, imagesPerSec: ips(t) }));
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
  test('the model under-predicts by 30%: found max from the trials, margin widened, the plan confirmed by its own trial', async () => {
    const input = setup(FIXED_OVERHEAD + 200 * MIB);
    const f = fake({ factor: 1.3 });
    const out = await probePlan(input, { runTrial: f.run });
    const truth = Math.floor((200 * MIB) / ((2 * 131072 * 4 + 66 * 4) * 1.3));
    assert.ok(out.probe.maxBatchSize <= truth && out.probe.maxBatchSize >= truth * 0.95, `found ${out.probe.maxBatchSize}, truth ${truth}`);
    assert.ok(Math.abs(out.probe.margin - 0.23) < 0.02, `margin ${out.probe.margin}`);
    assert.ok(out.plan.microBatchSize <= out.probe.maxBatchSize * (1 - out.probe.margin));
    assert.equal(out.plan.sources.batchSize, 'probe');
    assert.equal(out.plan.maxMicroBatchSize, out.probe.maxBatchSize);
    assert.ok(out.plan.reasons.some((r) => /widened from 10%/.test(r)), out.plan.reasons.join('\n'));
    const last = f.specs.at(-1)!;
    assert.deepEqual([last.microBatchSize, last.accumulationSteps, last.validationBatchSize], [out.plan.microBatchSize, out.plan.accumulationSteps, out.plan.validationBatchSize]);
    assert.ok(out.probe.trials.every((t) => typeof t.predictedBytes === 'number'));
  });

  test('throughput that stops growing at 64: the plan takes 64, and says why', async () => {
    const input = setup(FIXED_OVERHEAD + 4 * GIB);
    const out = await probePlan(input, { runTrial: fake({ ips: (b) => 10 * Math.min(b, 64) }).run });
    assert.equal(out.plan.microBatchSize, 64);
    assert.ok(out.plan.reasons.some((r) => /95% of the best measured throughput/.test(r)), out.plan.reasons.join('\n'));
  });

  test('a gradient noise scale of 40 bounds the batch at 64 (soft), with the reason', async () => {
    const input = setup(FIXED_OVERHEAD + 4 * GIB);
    const out = await probePlan(input, { runTrial: fake({ noise: { g2: 1, trace: 40 } }).run });
    assert.ok(out.gradientNoiseScale?.bSimple !== undefined && Math.abs(out.gradientNoiseScale.bSimple - 40) < 1e-6);
    assert.equal(out.plan.microBatchSize, 64);
    assert.ok(out.plan.reasons.some((r) => /gradient noise scale.*start of training.*grows/.test(r)), out.plan.reasons.join('\n'));
  });

  test('a config batch is kept as written: neither throughput nor the noise scale changes it', async () => {
    const input = setup(FIXED_OVERHEAD + 4 * GIB, { batchSize: 256 });
    const out = await probePlan(input, { runTrial: fake({ ips: (b) => 10 * Math.min(b, 64), noise: { g2: 1, trace: 40 } }).run });
    assert.equal(out.plan.microBatchSize, 256);
    assert.equal(out.plan.sources.batchSize, 'config');
  });

  test("the plan's own trial fails: a smaller plan, confirmed again", async () => {
    const input = setup(FIXED_OVERHEAD + 200 * MIB);
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
