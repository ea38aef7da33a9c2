/**
 * The gradient noise scale (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training")
 * from squared gradient norms at two batch sizes, as gpt-neox estimates it:
 *
 *   E|G_B|² = |G|² + tr(Σ)/B, so with B_small < B_big:
 *   |G|²  ≈ (B_big·|G_big|² − B_small·|G_small|²) / (B_big − B_small)
 *   tr(Σ) ≈ (|G_small|² − |G_big|²) / (1/B_small − 1/B_big)
 *   B_simple = tr(Σ) / |G|²
 *
 * Each term is averaged over the measured steps first, then divided (a ratio of noisy estimates
 * is biased; averaging the parts first is what the paper does).
 */
import type { GradientNoiseScale, GradientNormSamples } from '../shared/probe';

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function estimateNoiseScale(s: GradientNormSamples): GradientNoiseScale {
  const n = Math.min(s.small.length, s.big.length);
  const base = { smallBatch: s.smallBatch, bigBatch: s.bigBatch, steps: n };
  if (n === 0 || !(s.bigBatch > s.smallBatch)) {
    return { ...base, gradientSquaredNorm: NaN, traceSigma: NaN, note: 'not measured: no gradient norms at two different batch sizes' };
  }
  const small = mean(s.small.slice(0, n));
  const big = mean(s.big.slice(0, n));
  const g2 = (s.bigBatch * big - s.smallBatch * small) / (s.bigBatch - s.smallBatch);
  const trace = (small - big) / (1 / s.smallBatch - 1 / s.bigBatch);
  const over = `over ${n} step${n === 1 ? '' : 's'} at batches ${s.smallBatch} and ${s.bigBatch}`;
  if (!(g2 > 0) || !(trace > 0) || !Number.isFinite(g2) || !Number.isFinite(trace)) {
    return { ...base, gradientSquaredNorm: g2, traceSigma: trace, note: `too noisy to estimate ${over} (|G|² ≈ ${g2.toPrecision(3)}, tr(Σ) ≈ ${trace.toPrecision(3)})` };
  }
  const bSimple = trace / g2;
  return {
    ...base,
    bSimple,
    gradientSquaredNorm: g2,
    traceSigma: trace,
    note: `B_simple ≈ ${Number(bSimple.toPrecision(3))} ${over}, at the start of training; it grows as training proceeds (McCandlish et al. 2018)`,
  };
}
