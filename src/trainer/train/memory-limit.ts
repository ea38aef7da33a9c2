/**
 * A memory limit for a run, as if on a device of that size (the RunSpec's `test.memoryLimitBytes`,
 * from BATCH_ADVISOR_MEMORY_LIMIT=<bytes> read by the host's entry points; used by bench/probe-epoch.ts
 * and the tests). The run's live tensor bytes are tracked as a probe
 * trial tracks them (src/trainer/probe/peak.ts), and a peak above the limit ends the run as out of
 * memory — what the probe counts as "does not fit" when planning for a device given by size.
 */
import { formatBytes } from '../../core/shared/format';
import { trackBuffers, trackEngine, type PeakTracker } from '../probe/peak';

export class MemoryLimit {
  private readonly tracker: PeakTracker;

  /** Starts tracking now: tensors made from here on count (as in a trial, from before the model is built). */
  constructor(readonly limitBytes: number) {
    this.tracker = trackBuffers() ?? trackEngine();
  }

  get peakBytes(): number {
    return this.tracker.peak();
  }

  /** Throws an out-of-memory error when the peak so far is above the limit. */
  check(where: string): void {
    const peak = this.tracker.peak();
    if (peak > this.limitBytes) throw new Error(`out of memory: tensors peaked at ${formatBytes(peak)} by ${where}, above the memory limit of ${formatBytes(this.limitBytes)}`);
  }

  restore(): void {
    this.tracker.restore();
  }
}
