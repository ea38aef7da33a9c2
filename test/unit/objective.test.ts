/** The time-to-target objective (src/core/probe/objective.ts) and the noise scale's range, as pure functions. */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { bootstrapRange, estimateNoiseScale } from '../../src/core/probe/noise';
import { chooseBatch, largerBatchWorthTrying, throughputAt, timeToTarget, type ThroughputPoint } from '../../src/core/probe/objective';
import { objectiveChoice } from '../../src/core/probe/probe';

const POW2 = [32, 64, 128, 256, 512, 1024];
const curveOf = (f: (b: number) => number, batches = POW2): ThroughputPoint[] => batches.map((b) => ({ batchSize: b, imagesPerSec: f(b) }));

describe('time to target: argmin (B + B_noise) / imagesPerSec(B)', () => {
  test('the figures measured on a real 60,000-image dataset (CPU): batch 64', () => {
    const curve = [
      { batchSize: 32, imagesPerSec: 187 },
      { batchSize: 64, imagesPerSec: 222 },
      { batchSize: 128, imagesPerSec: 251 },
      { batchSize: 256, imagesPerSec: 275 },
      { batchSize: 512, imagesPerSec: 295 },
    ];
    const c = chooseBatch(curve, 215, [32, 64, 128, 256, 512]);
    assert.equal(c.batchSize, 64);
    // (64 + 215) / 222 against (512 + 215) / 295.
    const r512 = c.rows.find((r) => r.batchSize === 512)!.relativeTime;
    assert.ok(Math.abs(r512 - (727 / 295) / (279 / 222)) < 1e-9, String(r512));
  });

  test('a flat curve gives the smallest batch, a linear one the largest', () => {
    assert.equal(chooseBatch(curveOf(() => 300), 200, POW2).batchSize, 32);
    assert.equal(chooseBatch(curveOf((b) => 3 * b), 200, POW2).batchSize, 1024);
  });

  test('the batch moves with B_noise as the formula says: on ips = a·log2(B) the optimum grows with B_noise', () => {
    const curve = curveOf((b) => 100 * Math.log2(b));
    const picks = [1, 30, 300, 3000, 30000].map((n) => chooseBatch(curve, n, POW2).batchSize);
    for (let i = 1; i < picks.length; i++) assert.ok(picks[i]! >= picks[i - 1]!, picks.join(' '));
    assert.equal(picks[0], 32);
    assert.equal(picks.at(-1), 1024);
    // Brute force over the candidates agrees with the choice.
    for (const n of [1, 30, 300, 3000]) {
      const best = POW2.reduce((a, b) => (timeToTarget(curve, n, b) < timeToTarget(curve, n, a) * 0.995 ? b : a));
      assert.equal(chooseBatch(curve, n, POW2).batchSize, best);
    }
  });

  test('a tie (within 0.5%) goes to the faster batch, the sooner one at any larger noise scale; a clear win does not', () => {
    // (32 + 30) / 1000 = 0.0620 and (64 + 30) / 1510 = 0.0623: 0.4% apart.
    const tied = [{ batchSize: 32, imagesPerSec: 1000 }, { batchSize: 64, imagesPerSec: 1510 }];
    assert.equal(chooseBatch(tied, 30, [32, 64]).batchSize, 64);
    assert.ok(timeToTarget(tied, 60, 64) < timeToTarget(tied, 60, 32), 'at a larger noise scale 64 wins outright');
    // (64 + 30) / 1400 = 0.0671: 8% behind, so 32 stays.
    assert.equal(chooseBatch([{ batchSize: 32, imagesPerSec: 1000 }, { batchSize: 64, imagesPerSec: 1400 }], 30, [32, 64]).batchSize, 32);
  });

  test('throughput is interpolated log-log between measured batches and flat outside them', () => {
    const curve = [{ batchSize: 32, imagesPerSec: 100 }, { batchSize: 128, imagesPerSec: 400 }];
    assert.ok(Math.abs(throughputAt(curve, 64) - 200) < 1e-9);
    assert.equal(throughputAt(curve, 16), 100);
    assert.equal(throughputAt(curve, 1024), 400);
  });

  test('larger batches are worth trying only while the last doubling still gains enough to win', () => {
    // Linear growth: a larger batch always could win.
    assert.equal(largerBatchWorthTrying(curveOf((b) => 3 * b, [32, 64, 128]), 200, [32, 64, 128], 4096), 256);
    // Flat: never.
    assert.equal(largerBatchWorthTrying(curveOf(() => 300, [32, 64, 128]), 200, [32, 64, 128], 4096), undefined);
    // Growth, but not above what may be chosen.
    assert.equal(largerBatchWorthTrying(curveOf((b) => 3 * b, [32, 64, 128]), 200, [32, 64, 128], 128), undefined);
  });
});

describe('the noise scale: its range and a decision robust to it', () => {
  const samples = (small: number[], big: number[]) => ({ smallBatch: 8, bigBatch: 64, small, big });

  test('identical steps give a point range; noisier steps a wider one; fewer than 3 steps no range', () => {
    const g2 = 1;
    const trace = 200;
    const s = samples(Array(8).fill(g2 + trace / 8), Array(8).fill(g2 + trace / 64));
    const r = bootstrapRange(s, 8)!;
    assert.ok(Math.abs(r[0] - 200) < 1e-6 && Math.abs(r[1]! - 200) < 1e-6, JSON.stringify(r));
    const jitter = [0.8, 1.2, 0.9, 1.1, 1, 0.7, 1.3, 1];
    const noisy = samples(jitter.map((j) => (g2 + trace / 8) * j), jitter.map((j, i) => (g2 + trace / 64) * jitter[(i + 3) % 8]!));
    const rn = bootstrapRange(noisy, 8)!;
    assert.ok(rn[0] < 200 && (rn[1] === null || rn[1] > rn[0]), JSON.stringify(rn));
    assert.equal(bootstrapRange(s, 2), undefined);
    assert.deepEqual(estimateNoiseScale(noisy).range, rn);
    assert.match(estimateNoiseScale(noisy).note, /80% bootstrap range/);
  });

  test('the reason says when the choice would change inside the range', () => {
    const curve = curveOf((b) => 100 * Math.log2(b));
    const candidates = POW2;
    const steady = objectiveChoice(curve, { bSimple: 300, range: [295, 305], gradientSquaredNorm: 1, traceSigma: 300, smallBatch: 8, bigBatch: 64, steps: 8, note: '' }, candidates);
    assert.match(steady.reason, /The choice holds across the noise scale's measured range \(295–305\)/);
    const wide = objectiveChoice(curve, { bSimple: 300, range: [10, 30000], gradientSquaredNorm: 1, traceSigma: 300, smallBatch: 8, bigBatch: 64, steps: 8, note: '' }, candidates);
    assert.deepEqual(wide.report.choiceInRange, [chooseBatch(curve, 10, candidates).batchSize, chooseBatch(curve, 30000, candidates).batchSize]);
    assert.match(wide.reason, /Within the noise scale's measured range \(10–30,000\) the choice would be 32–1,024/);
  });
});
