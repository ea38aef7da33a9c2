/**
 * How long a probe trial may take, from the trials that already trained: a trial over the wasm
 * heap can spin instead of failing, and must not wait out the fixed timeout (180 s). Once a trial
 * has trained in d ms at batch b, a trial at batch B may take FACTOR × d × max(1, B / b), at least
 * FLOOR_MS (process start, backend and decoding are in d too, so this is generous), never more
 * than the fixed timeout.
 */
import type { ProbeTrialResult } from '../shared/probe';

export const TRIAL_PACE_FACTOR = 6;
export const TRIAL_PACE_FLOOR_MS = 30_000;

export class TrialPace {
  private best: { batch: number; durationMs: number } | undefined;

  constructor(
    private readonly factor = TRIAL_PACE_FACTOR,
    private readonly floorMs = TRIAL_PACE_FLOOR_MS,
  ) {}

  /** Remembers a trial that trained (the largest batch's). */
  record(r: ProbeTrialResult): void {
    if (!r.ok || !(r.durationMs > 0) || r.cached) return;
    if (!this.best || r.batchSize >= this.best.batch) this.best = { batch: r.batchSize, durationMs: r.durationMs };
  }

  limitMs(batch: number, timeoutMs: number): number {
    if (!this.best) return timeoutMs;
    return Math.min(timeoutMs, Math.max(this.floorMs, this.factor * this.best.durationMs * Math.max(1, batch / this.best.batch)));
  }

  why(batch: number): string {
    const b = this.best;
    return b ? `batch ${b.batch} trained in ${(b.durationMs / 1000).toFixed(1)} s; batch ${batch} was allowed ${this.factor}× that, scaled by the batch: most likely memory is exhausted` : '';
  }
}
