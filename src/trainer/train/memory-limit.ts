/**
 * A run's memory, step by step, and its optional memory limit.
 *
 * `RunMemory` installs one tracker of live tensor bytes (src/trainer/probe/peak.ts, as a probe
 * trial does) before the model is built, and restarts its peak at each optimizer step: each batch
 * event reports the step's own peak — the moment of most live tensors, inside the backward pass or
 * the update — which is what decides whether a batch fits, not `tf.memory().numBytes` after the
 * step (what persists: weights and optimizer slots). It also reads the wasm heap and the process's
 * resident set.
 *
 * `MemoryLimit` is a limit for a run, as if on a device of that size (the RunSpec's
 * `test.memoryLimitBytes`, from BATCH_ADVISOR_MEMORY_LIMIT=<bytes> read by the host's entry points;
 * used by bench/probe-epoch.ts and the tests): a run peak above the limit ends the run as out of
 * memory — what the probe counts as "does not fit" when planning for a device given by size.
 */
import { formatBytes } from '../../core/shared/format';
import { trackBuffers, trackEngine, wasmHeapBytes, type PeakTracker } from '../probe/peak';
import { tf } from '../tf';

/** What one optimizer step held at most, and the process around it. */
export interface StepMemory {
  /** Peak live tensor bytes during the step (its micro-batches' inputs included). */
  peakTensorBytes: number;
  /** The wasm heap's size (wasm backend only; it grows and never shrinks). */
  wasmHeapBytes?: number;
  /** The process's resident set size. */
  rssBytes: number;
}

export class RunMemory {
  private readonly tracker: PeakTracker;
  /** Highest peak of the windows before the current one. */
  private earlier = 0;

  /** Starts tracking now (after the backend is set up, before the model is built): tensors made from here on count. */
  constructor() {
    this.tracker = trackBuffers() ?? trackEngine();
  }

  /** Starts a step's window: its peak counts from what is live now. */
  startStep(): void {
    this.earlier = Math.max(this.earlier, this.tracker.peak());
    this.tracker.reset();
  }

  /** The step's peak (since startStep), never below what is live after it, and the process around it. */
  stepMemory(): StepMemory {
    const m: StepMemory = { peakTensorBytes: Math.max(this.tracker.peak(), tf.memory().numBytes), rssBytes: process.memoryUsage.rss() };
    const heap = wasmHeapBytes();
    if (heap !== undefined) m.wasmHeapBytes = heap;
    return m;
  }

  /** The run's peak so far (every window). */
  get peakBytes(): number {
    return Math.max(this.earlier, this.tracker.peak());
  }

  restore(): void {
    this.tracker.restore();
  }
}

export class MemoryLimit {
  constructor(
    readonly limitBytes: number,
    private readonly memory: RunMemory,
  ) {}

  get peakBytes(): number {
    return this.memory.peakBytes;
  }

  /** Throws an out-of-memory error when the peak so far is above the limit. */
  check(where: string): void {
    const peak = this.memory.peakBytes;
    if (peak > this.limitBytes) throw new Error(`out of memory: tensors peaked at ${formatBytes(peak)} by ${where}, above the memory limit of ${formatBytes(this.limitBytes)}`);
  }
}
