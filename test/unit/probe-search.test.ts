/** The probe's pure parts: the search against an oracle, OOM recognition, the noise-scale estimator. */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { isOutOfMemoryError, isOutOfMemoryText } from '../../src/core/shared/oom';
import { estimateNoiseScale } from '../../src/core/probe/noise';
import { searchMaxBatch, type SearchInput } from '../../src/core/probe/search';
import type { ProbeFailure, ProbeTrialResult } from '../../src/core/shared/probe';

const MIB = 2 ** 20;

function result(batch: number, ok: boolean, failure?: ProbeFailure, peak = 0): ProbeTrialResult {
  return { batchSize: batch, accumulationSteps: 1, ok, ...(failure ? { failure, error: failure } : {}), peakBytes: peak, tensorPeakBytes: peak, rssBytes: 0, imagesPerSec: ok ? 100 : 0, steps: ok ? 3 : 0, durationMs: 1 };
}

/** A device where batches up to `trueMax` train; the model predicts `fixed + perSample × b`. */
function oracle(trueMax: number, predictedMax: number, opts: Partial<SearchInput> = {}): SearchInput & { tried: number[] } {
  const perSample = MIB;
  const fixed = 10 * MIB;
  const tried: number[] = [];
  return {
    tried,
    predictedBytes: (b) => fixed + perSample * b,
    budgetBytes: fixed + perSample * predictedMax,
    predictedMax,
    cap: 100_000,
    trial: async (b) => {
      tried.push(b);
      return b <= trueMax ? result(b, true, undefined, fixed + perSample * b) : result(b, false, 'oom');
    },
    ...opts,
  };
}

describe('search for the largest batch that trains', () => {
  test('model within 5%: two trials, the found maximum within 5% of the truth (above and below)', async () => {
    for (const [truth, predicted] of [
      [100, 97],
      [97, 100],
      [500, 480],
      [64, 64],
    ] as const) {
      const o = oracle(truth, predicted);
      const r = await searchMaxBatch(o);
      assert.ok(r.processes <= 3, `${truth}/${predicted}: ${r.processes} trials (${o.tried.join(', ')})`);
      assert.equal(o.tried[0], predicted, 'the predicted maximum is tried first');
      assert.ok(r.maxBatchSize! <= truth && r.maxBatchSize! >= truth * 0.95, `${truth}/${predicted}: found ${String(r.maxBatchSize)}`);
    }
  });

  test('first trial out of memory (the model 40% too optimistic): steps down, then bisects to within 5%', async () => {
    const o = oracle(60, 100);
    const r = await searchMaxBatch(o);
    assert.equal(o.tried[0], 100);
    assert.ok(r.maxBatchSize! <= 60 && r.maxBatchSize! >= 57, `found ${String(r.maxBatchSize)} after ${o.tried.join(', ')}`);
    assert.ok(r.processes <= 8);
  });

  test('the model far too pessimistic: grows past the prediction (never above the cap)', async () => {
    const o = oracle(400, 100, { cap: 180 });
    const r = await searchMaxBatch(o);
    assert.equal(r.maxBatchSize, 180);
    assert.equal(r.atCap, true);
    assert.ok(o.tried.every((b) => b <= 180));
    assert.ok(r.processes <= 4, o.tried.join(', '));
  });

  test('never tries a batch the model predicts to need more than 2× the budget', async () => {
    const o = oracle(10_000, 100);
    const r = await searchMaxBatch(o);
    const limit = 2 * o.budgetBytes;
    assert.ok(o.tried.every((b) => o.predictedBytes(b) <= limit), o.tried.join(', '));
    assert.match(r.stop, /2× the budget|trial cap/);
  });

  test('nothing fits at batch 1: maximum 0, and it says so', async () => {
    const o = oracle(0, 8);
    const r = await searchMaxBatch(o);
    assert.equal(r.maxBatchSize, 0);
    assert.match(r.stop, /batch 1 did not train/);
    assert.equal(o.tried.at(-1), 1);
  });

  test('a model bigger than the budget: no trial is run', async () => {
    const o = oracle(5, 0, { budgetBytes: 4 * MIB });
    const r = await searchMaxBatch(o);
    assert.equal(r.processes, 0);
    assert.equal(r.maxBatchSize, 0);
    assert.match(r.stop, /more than 2× the budget/);
  });

  test('a flaky trial (an error once) is retried and then counts as fitting', async () => {
    const o = oracle(100, 100);
    let flaked = false;
    const inner = o.trial;
    o.trial = async (b) => {
      if (!flaked) {
        flaked = true;
        return result(b, false, 'error');
      }
      return inner(b);
    };
    const r = await searchMaxBatch(o);
    assert.equal(r.trials[0]!.failure, 'error');
    assert.equal(r.trials[1]!.ok, true);
    assert.equal(r.trials[1]!.batchSize, r.trials[0]!.batchSize);
    assert.ok(r.maxBatchSize! >= 95);
  });

  test('a hanging trial (timeout) counts as a failure without a retry', async () => {
    const o = oracle(1000, 100);
    const inner = o.trial;
    o.trial = async (b) => (b > 100 ? result(b, false, 'timeout') : inner(b));
    const r = await searchMaxBatch(o);
    assert.equal(r.maxBatchSize, 100);
    assert.equal(r.trials.filter((t) => t.failure === 'timeout').length, 1);
  });

  test('a trial that trains nothing is a failure, not a fit', async () => {
    const o = oracle(1000, 100);
    o.trial = async (b) => result(b, false, 'no-training');
    const r = await searchMaxBatch(o);
    assert.equal(r.maxBatchSize, undefined, 'no memory failure and no fit: the search cannot tell');
    assert.ok(r.trials.every((t) => !t.ok));
  });

  test('a device given by size: a trial whose peak is above its limit does not fit', async () => {
    const o = oracle(10_000, 100, { limitBytes: 10 * MIB + 80 * MIB });
    const r = await searchMaxBatch(o);
    assert.ok(r.maxBatchSize! <= 80 && r.maxBatchSize! >= 76, `found ${String(r.maxBatchSize)}`);
    const over = r.trials.find((t) => t.failure === 'over-budget' && t.peakBytes);
    assert.ok(over);
    assert.match(over.error ?? '', /^peak \d+(\.\d+)? MiB is above the planned device's 90\.0 MiB$/, 'sizes a person can read');
  });

  test('with a known limit, the measured peak corrects the model: 3 trials even when it errs by 15%', async () => {
    for (const factor of [1.15, 0.85]) {
      const fixed = 10 * MIB;
      const limit = fixed + 200 * MIB;
      const tried: number[] = [];
      const r = await searchMaxBatch({
        predictedBytes: (b) => fixed + MIB * b,
        budgetBytes: limit,
        predictedMax: 200,
        cap: 10_000,
        limitBytes: limit,
        trial: async (b) => {
          tried.push(b);
          return result(b, true, undefined, fixed + factor * MIB * b); // the limit check turns peaks above it into over-budget
        },
      });
      const truth = Math.floor(200 / factor);
      assert.equal(r.maxBatchSize, truth, `${factor}: ${tried.join(', ')}`);
      assert.ok(r.processes <= 3, `${factor}: ${tried.join(', ')}`);
    }
  });

  test('stops at the trial cap with the largest confirmed batch', async () => {
    const o = oracle(37, 1000, { maxTrials: 3 });
    const r = await searchMaxBatch(o);
    assert.equal(r.processes, 3);
    assert.match(r.stop, /trial cap/);
    assert.ok(r.maxBatchSize === 0 || r.maxBatchSize! <= 37);
  });
});

describe('out of memory, as every backend says it', () => {
  const oom = [
    'OOM when allocating tensor with shape[256,64,96,96] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc',
    'Invalid TF_Status: 8\nMessage: OOM when allocating tensor',
    'RESOURCE_EXHAUSTED: failed to allocate memory',
    'CUDA_ERROR_OUT_OF_MEMORY: out of memory',
    'Aborted(). Build with -sASSERTIONS for more info.',
    'RuntimeError: Aborted(OOM)',
    'RuntimeError: memory access out of bounds',
    'Cannot allocate Wasm memory for new instance',
    'RangeError: Array buffer allocation failed',
    'RangeError: Invalid typed array length: 4294967296',
    'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory',
  ];
  for (const text of oom) test(text.slice(0, 60), () => assert.equal(isOutOfMemoryText(text), true));
  test('errors that are not memory', () => {
    for (const text of ['Conv2D: filter shape mismatch', 'ENOENT: no such file', 'RangeError: Maximum call stack size exceeded', 'model.json: not valid JSON']) {
      assert.equal(isOutOfMemoryText(text), false, text);
    }
  });
  test('a JS RangeError for an allocation is recognised from the error object', () => {
    assert.equal(isOutOfMemoryError(new RangeError('Array buffer allocation failed')), true);
    assert.equal(isOutOfMemoryError(new RangeError('Invalid array length')), false);
  });
});

describe('gradient noise scale', () => {
  /** Seeded normal numbers. */
  function gaussian(seed: number): () => number {
    let a = seed >>> 0;
    const u = (): number => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
    };
    return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  }

  test('recovers B_simple = tr(Σ)/|G|² from synthetic gradients', () => {
    const d = 2000;
    const sigma = 0.5; // per-example noise per coordinate: tr(Σ) = d·σ²
    const g = 0.05; // true gradient per coordinate: |G|² = d·g²
    const truth = (d * sigma * sigma) / (d * g * g); // 100
    const rand = gaussian(7);
    const norm2 = (b: number): number => {
      let s = 0;
      for (let i = 0; i < d; i++) {
        const v = g + (sigma / Math.sqrt(b)) * rand();
        s += v * v;
      }
      return s;
    };
    const small: number[] = [];
    const big: number[] = [];
    for (let step = 0; step < 20; step++) {
      small.push(norm2(8));
      big.push(norm2(64));
    }
    const est = estimateNoiseScale({ smallBatch: 8, bigBatch: 64, small, big });
    assert.ok(est.bSimple !== undefined);
    assert.ok(Math.abs(est.bSimple - truth) / truth < 0.15, `estimated ${est.bSimple} vs ${truth}`);
    assert.match(est.note, /start of training.*grows/);
  });

  test('too noisy to estimate: no B_simple, and the note says why', () => {
    const est = estimateNoiseScale({ smallBatch: 4, bigBatch: 32, small: [1, 1], big: [2, 2] });
    assert.equal(est.bSimple, undefined);
    assert.match(est.note, /too noisy/);
  });

  test('needs two different batch sizes', () => {
    assert.match(estimateNoiseScale({ smallBatch: 8, bigBatch: 8, small: [1], big: [1] }).note, /not measured/);
  });
});
