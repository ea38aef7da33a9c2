/**
 * The probe's search for the largest micro-batch that really trains, seeded by the memory model:
 *
 *  1. try the model's predicted maximum first (clamped to the largest batch worth confirming);
 *  2. bracket with ±5% steps (widening: ×1.05, ×1.25, ×2 up; ×0.95, ×0.8, ×0.5 down);
 *  3. bisect until the bracket is within 5% (or 1 image), or the trial cap is reached;
 *  4. never try a batch the model predicts to need more than 2× the budget (or, on wasm, more than
 *     its 4 GiB heap: such a trial spins instead of failing, see hardLimitBytes).
 *
 * A trial that fails for a reason other than memory (an error, a trial that trained nothing) is
 * retried once; a hanging trial (timeout) is not. What still fails counts as "does not fit". When
 * no trial failed for memory and none fitted, the search cannot tell and says so.
 */
import { formatBytes } from '../shared/format';
import type { ProbeTrialResult } from '../shared/probe';

export const DEFAULT_TOLERANCE = 0.05;
export const DEFAULT_MAX_TRIALS = 8;

export interface SearchInput {
  /** The memory model's prediction for a micro-batch. */
  predictedBytes: (batch: number) => number;
  /** The model's budget (for the 2× rule). */
  budgetBytes: number;
  /** The model's largest fitting batch (0 when not even 1 fits). */
  predictedMax: number;
  /** Never search above this (the largest batch the plan could use). */
  cap: number;
  /** A trial whose peak is above this does not fit (planning for a device given by size). */
  limitBytes?: number;
  /** A trial predicted to need more than this is never started (the wasm backend's fixed heap: past it the backend can spin instead of failing). */
  hardLimitBytes?: number;
  /** Trial processes at most (retries included). */
  maxTrials?: number;
  tolerance?: number;
  trial: (batch: number) => Promise<ProbeTrialResult>;
  onTrial?: (r: ProbeTrialResult) => void;
}

export interface SearchResult {
  trials: ProbeTrialResult[];
  /** Largest batch that trained; 0 when not even 1 did; undefined when the search could not tell. */
  maxBatchSize: number | undefined;
  atCap: boolean;
  processes: number;
  stop: string;
}

const UP = [1.05, 1.25, 2];
const DOWN = [0.95, 0.8, 0.5];

/**
 * The batch whose peak reaches `limitBytes` by the measured peaks: a line through the two largest
 * measurements, or with one, the model's per-image bytes rescaled to it; undefined when the line
 * does not rise.
 */
export function batchAtLimit(peaks: ReadonlyMap<number, number>, limitBytes: number, predictedBytes: (b: number) => number): number | undefined {
  const pts = [...peaks].sort((a, b) => b[0] - a[0]);
  if (pts.length === 0) return undefined;
  let slope: number;
  let intercept: number;
  if (pts.length >= 2) {
    const [[b1, p1], [b2, p2]] = pts as [[number, number], [number, number]];
    slope = (p1 - p2) / (b1 - b2);
    intercept = p1 - slope * b1;
  } else {
    const [[b1, p1]] = pts as [[number, number]];
    intercept = 2 * predictedBytes(1) - predictedBytes(2);
    slope = (p1 - intercept) / b1;
  }
  return slope > 0 ? Math.max(0, Math.floor((limitBytes - intercept) / slope)) : undefined;
}

export async function searchMaxBatch(input: SearchInput): Promise<SearchResult> {
  const tol = input.tolerance ?? DEFAULT_TOLERANCE;
  const maxTrials = Math.max(1, input.maxTrials ?? DEFAULT_MAX_TRIALS);
  const cap = Math.max(1, Math.floor(input.cap));
  const allowed = (b: number): boolean => input.predictedBytes(b) <= Math.min(2 * input.budgetBytes, input.hardLimitBytes ?? Infinity);
  const trials: ProbeTrialResult[] = [];
  let processes = 0;
  let lo = 0; // largest batch that trained
  let hi = Infinity; // smallest batch that did not
  let ups = 0;
  let downs = 0;
  let memoryFailures = 0;

  // With a known limit, measured peaks correct the model (batchAtLimit).
  let guess: number | undefined;
  const peaks = new Map<number, number>();
  const tried = new Set<number>();
  const correct = (r: ProbeTrialResult): void => {
    if (input.limitBytes === undefined || !(r.peakBytes > 0)) return;
    peaks.set(r.batchSize, r.peakBytes);
    guess = batchAtLimit(peaks, input.limitBytes, input.predictedBytes);
  };

  const done = (stop: string): SearchResult => {
    const undecided = lo === 0 && memoryFailures === 0 && trials.length > 0;
    return { trials, maxBatchSize: undecided ? undefined : lo, atCap: lo >= cap, processes, stop };
  };

  const attempt = async (b: number): Promise<boolean> => {
    tried.add(b);
    let r = await input.trial(b);
    processes++;
    if (!r.ok && r.failure !== 'oom' && r.failure !== 'timeout' && processes < maxTrials) {
      input.onTrial?.(r);
      trials.push(r);
      r = await input.trial(b); // one retry: a flaky failure is not a memory limit
      processes++;
    }
    if (r.ok && input.limitBytes !== undefined && r.peakBytes > input.limitBytes) {
      r = { ...r, ok: false, failure: 'over-budget', error: `peak ${formatBytes(r.peakBytes)} is above the planned device's ${formatBytes(input.limitBytes)}` };
    }
    if (!r.ok && (r.failure === 'oom' || r.failure === 'over-budget')) memoryFailures++;
    correct(r);
    input.onTrial?.(r);
    trials.push(r);
    return r.ok;
  };

  if (!allowed(1)) return done('the model predicts batch 1 needs more than 2× the budget: no trial run');
  let next = Math.min(cap, Math.max(1, Math.floor(input.predictedMax)));
  while (!allowed(next) && next > 1) next = Math.max(1, Math.floor(next * 0.8));

  for (;;) {
    if (processes >= maxTrials) return done(`trial cap (${maxTrials}) reached`);
    const fits = await attempt(next);
    if (fits) lo = Math.max(lo, next);
    else hi = Math.min(hi, next);
    if (lo >= cap) return done(`batch ${cap}, the largest the plan could use, trained`);
    if (hi === 1) return done('nothing fits: batch 1 did not train');
    if (hi !== Infinity && lo > 0 && (hi - lo <= 1 || (hi - lo) / hi <= tol)) return done(`bracket ${lo}–${hi} is within ${Math.round(tol * 100)}%`);
    const g = guess === undefined ? undefined : Math.min(Math.max(guess, lo + 1), hi - 1, cap);
    if (g !== undefined && g > lo && g < hi && !tried.has(g) && allowed(g)) {
      next = g; // the model corrected by the measured peaks
    } else if (hi === Infinity) {
      // Everything tried so far fits: step up, faster each time.
      let up = Math.min(cap, Math.max(lo + 1, Math.ceil(lo * UP[Math.min(ups++, UP.length - 1)]!)));
      while (!allowed(up) && up > lo + 1) up = Math.floor((lo + up) / 2);
      if (!allowed(up)) return done(`batch ${lo + 1} is predicted to need more than 2× the budget: not tried`);
      next = up;
    } else if (lo === 0) {
      next = Math.max(1, Math.min(hi - 1, Math.floor(hi * DOWN[Math.min(downs++, DOWN.length - 1)]!)));
    } else {
      next = Math.floor((lo + hi) / 2);
    }
  }
}
