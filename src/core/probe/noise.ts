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

/** B_simple from the step means of two sets of squared norms (NaN when not positive). */
function bSimpleOf(small: number, big: number, bs: number, bb: number): number {
  const g2 = (bb * big - bs * small) / (bb - bs);
  const trace = (small - big) / (1 / bs - 1 / bb);
  return g2 > 0 && trace > 0 && Number.isFinite(g2) && Number.isFinite(trace) ? trace / g2 : NaN;
}

/** Deterministic generator for the bootstrap (the same samples give the same range). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

export const BOOTSTRAP_RESAMPLES = 400;

/**
 * The spread of B_simple: the 10th and 90th percentiles over bootstrap resamples of the steps
 * (resamples whose estimate is not positive count as unbounded above: null). Undefined with < 3 steps.
 */
export function bootstrapRange(s: GradientNormSamples, n: number): [number, number | null] | undefined {
  if (n < 3) return undefined;
  const rand = lcg(0x9e3779b9 ^ n);
  const values: number[] = [];
  for (let r = 0; r < BOOTSTRAP_RESAMPLES; r++) {
    let small = 0;
    let big = 0;
    for (let i = 0; i < n; i++) {
      const j = Math.min(n - 1, Math.floor(rand() * n));
      small += s.small[j]!;
      big += s.big[j]!;
    }
    const b = bSimpleOf(small / n, big / n, s.smallBatch, s.bigBatch);
    values.push(Number.isFinite(b) ? b : Infinity);
  }
  values.sort((a, b) => a - b);
  const hi = values[Math.ceil(0.9 * (values.length - 1))]!;
  return [values[Math.floor(0.1 * (values.length - 1))]!, Number.isFinite(hi) ? hi : null];
}

/** When the measurement was taken: "after 42 training steps (loss 2.30 → 0.61)", or "at the start of training". */
function whenText(s: GradientNormSamples): string {
  if (!(s.afterSteps! > 0)) return 'at the start of training';
  const loss = s.lossFrom !== undefined && s.lossTo !== undefined ? ` (training loss ${s.lossFrom.toFixed(2)} → ${s.lossTo.toFixed(2)})` : '';
  return `after ${s.afterSteps} training step${s.afterSteps === 1 ? '' : 's'}${loss}`;
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
  const range = bootstrapRange(s, n);
  const rangeText = range ? ` (80% bootstrap range ${Number(range[0].toPrecision(3))}–${range[1] !== null ? Number(range[1].toPrecision(3)) : '∞'})` : '';
  return {
    ...base,
    bSimple,
    ...(range ? { range } : {}),
    gradientSquaredNorm: g2,
    traceSigma: trace,
    note: `B_simple ≈ ${Number(bSimple.toPrecision(3))}${rangeText} ${over}, ${whenText(s)}; it grows as training proceeds (McCandlish et al. 2018)`,
  };
}
