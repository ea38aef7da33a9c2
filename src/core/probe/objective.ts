/**
 * The batch that reaches a given loss soonest (McCandlish et al. 2018, "An Empirical Model of
 * Large-Batch Training"): the optimizer steps to a target loss are S(B) = S_min·(1 + B_noise/B), so
 * the wall time to it is S_min·(B + B_noise) / imagesPerSec(B). The planner minimises
 * (B + B_noise) / imagesPerSec(B) over the batches that fit, with imagesPerSec measured by the
 * probe (interpolated between measured batches) and B_noise ≈ B_simple measured by it.
 *
 * Flat throughput (a CPU) gives a small batch; throughput that grows with the batch (a GPU below
 * saturation) gives a large one, up to where the curve bends. Pure: curves and noise scales in,
 * a choice and its table out.
 */

export interface ThroughputPoint {
  batchSize: number;
  imagesPerSec: number;
}

export interface ObjectiveRow {
  batchSize: number;
  /** Measured, or interpolated between measured batches (`measured: false`). */
  imagesPerSec: number;
  measured: boolean;
  /** Predicted wall time to the target relative to the chosen batch's (1 = the chosen one). */
  relativeTime: number;
}

export interface ObjectiveChoice {
  batchSize: number;
  bNoise: number;
  rows: ObjectiveRow[];
}

/** Sorted, positive, finite points; one per batch (the fastest of repeats). */
export function cleanCurve(curve: readonly ThroughputPoint[]): ThroughputPoint[] {
  const best = new Map<number, number>();
  for (const p of curve) {
    if (!(p.batchSize >= 1) || !(p.imagesPerSec > 0) || !Number.isFinite(p.imagesPerSec)) continue;
    best.set(p.batchSize, Math.max(best.get(p.batchSize) ?? 0, p.imagesPerSec));
  }
  return [...best].map(([batchSize, imagesPerSec]) => ({ batchSize, imagesPerSec })).sort((a, b) => a.batchSize - b.batchSize);
}

/**
 * Images/s at batch `b` from a measured curve: log-log linear between the two measured batches
 * around it; flat outside the measured range (no extrapolated gain is ever assumed).
 */
export function throughputAt(curve: readonly ThroughputPoint[], b: number): number {
  const c = cleanCurve(curve);
  if (c.length === 0) return NaN;
  if (b <= c[0]!.batchSize) return c[0]!.imagesPerSec;
  const last = c[c.length - 1]!;
  if (b >= last.batchSize) return last.imagesPerSec;
  const i = c.findIndex((p) => p.batchSize >= b);
  const hi = c[i]!;
  const lo = c[i - 1]!;
  if (hi.batchSize === b) return hi.imagesPerSec;
  const t = (Math.log(b) - Math.log(lo.batchSize)) / (Math.log(hi.batchSize) - Math.log(lo.batchSize));
  return Math.exp(Math.log(lo.imagesPerSec) + t * (Math.log(hi.imagesPerSec) - Math.log(lo.imagesPerSec)));
}

/** Predicted wall time to the target at batch `b`, up to the constant S_min: (B + B_noise) / imagesPerSec(B). */
export function timeToTarget(curve: readonly ThroughputPoint[], bNoise: number, b: number): number {
  return (b + Math.max(0, bNoise)) / throughputAt(curve, b);
}

/**
 * The candidate batch with the least predicted time to the target. Among batches within 0.5% of it,
 * the fastest (images/s) is chosen: the noise scale only grows as training goes on, and at any
 * larger noise scale the faster of two tied batches is the sooner to the target.
 */
export function chooseBatch(curve: readonly ThroughputPoint[], bNoise: number, candidates: readonly number[]): ObjectiveChoice {
  const cands = [...new Set(candidates.filter((b) => Number.isInteger(b) && b >= 1))].sort((a, b) => a - b);
  if (cands.length === 0) throw new Error('chooseBatch: no candidate batch');
  const measured = new Set(cleanCurve(curve).map((p) => p.batchSize));
  const times = cands.map((b) => timeToTarget(curve, bNoise, b));
  const least = Math.min(...times);
  let best = times.findIndex((t) => t === least);
  for (let i = 0; i < cands.length; i++) if (times[i]! <= least * 1.005 && throughputAt(curve, cands[i]!) > throughputAt(curve, cands[best]!)) best = i;
  const t0 = times[best]!;
  return {
    batchSize: cands[best]!,
    bNoise,
    rows: cands.map((b, i) => ({ batchSize: b, imagesPerSec: throughputAt(curve, b), measured: measured.has(b), relativeTime: times[i]! / t0 })),
  };
}

/**
 * Whether a batch above the largest measured one could still reach the target sooner than the best
 * measured choice, assuming each further doubling gains at most what the last measured doubling
 * gained (throughput curves bend down as the device saturates). `upTo` is the largest batch that
 * may still be chosen (memory, dataset). Returns the next batch worth measuring, or undefined.
 */
export function largerBatchWorthTrying(curve: readonly ThroughputPoint[], bNoise: number, candidates: readonly number[], upTo: number): number | undefined {
  const c = cleanCurve(curve);
  if (c.length === 0) return undefined;
  const last = c[c.length - 1]!;
  if (last.batchSize * 2 > upTo) return undefined;
  const prev = c.length >= 2 ? c[c.length - 2]! : undefined;
  // Gain per doubling of the last measured segment (at least 1: no faster than the last point).
  const gain = prev ? Math.max(1, (last.imagesPerSec / prev.imagesPerSec) ** (1 / Math.log2(last.batchSize / prev.batchSize))) : 2;
  if (gain <= 1.0001) return undefined;
  const bestNow = Math.min(...candidates.filter((b) => b <= last.batchSize).map((b) => timeToTarget(curve, bNoise, b)));
  for (let b = last.batchSize * 2, ips = last.imagesPerSec * gain; b <= upTo; b *= 2, ips *= gain) {
    if ((b + bNoise) / ips < bestNow * 0.995) return b;
  }
  return undefined;
}

/** "0.23×", "0.997×", "1.04×", "12×": two significant digits, three near 1 (a 4% difference is not "1×"). */
export function ratioText(r: number): string {
  return `${Number(r.toPrecision(r >= 0.9 && r < 10 ? 3 : 2))}×`;
}
