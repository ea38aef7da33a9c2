/**
 * The host's watchdog over a training run: tfjs steps are synchronous, so a step that never ends
 * (the wasm backend spins at 100% CPU instead of aborting when its heap is exhausted) blocks the
 * trainer's own thread and timers. The host watches the events instead: once the first steps have
 * shown how long a step takes, no `batch` event within max(FACTOR × the typical step, a floor)
 * ends the run as out of memory (the trainer is killed) with the usual advice, a smaller batch.
 *
 * Allowances: the first step (kernels compile, the first batch is decoded) gets `firstStepMs`;
 * the step that ends an epoch (or the run's last step) is followed by validation and the model's
 * save, so its allowance covers the validation batches too.
 */
import { batchAfterOom, keepEffectiveBatch } from '../shared/constants';
import type { TrainingPlan } from '../shared/plan';
import { PROTOCOL_VERSION, type BatchEvent, type RunEndEvent, type TrainEvent } from '../shared/protocol';

export const STALL_FACTOR = 10;
export const STALL_FLOOR_MS = 30_000;
/** Before any step has finished nothing is measured: a generous bound (the plan check stops what is predicted not to fit). */
export const FIRST_STEP_MS = 600_000;

export interface WatchdogOptions {
  factor?: number;
  floorMs?: number;
  firstStepMs?: number;
  /** The run's step limit (the run validates and ends after it). */
  maxSteps?: number;
  now?: () => number;
}

/** BATCH_ADVISOR_STALL_FLOOR_MS, BATCH_ADVISOR_STALL_FIRST_STEP_MS, BATCH_ADVISOR_STALL_FACTOR (tests, slow machines). */
export function watchdogOptionsFromEnv(env: NodeJS.ProcessEnv): WatchdogOptions {
  const num = (k: string): number | undefined => {
    const v = Number(env[k]);
    return env[k] !== undefined && Number.isFinite(v) && v > 0 ? v : undefined;
  };
  const floorMs = num('BATCH_ADVISOR_STALL_FLOOR_MS');
  const firstStepMs = num('BATCH_ADVISOR_STALL_FIRST_STEP_MS');
  const factor = num('BATCH_ADVISOR_STALL_FACTOR');
  return { ...(floorMs ? { floorMs } : {}), ...(firstStepMs ? { firstStepMs } : {}), ...(factor ? { factor } : {}) };
}

export interface Stall {
  /** Optimizer steps finished before the stall (0: the first step never finished). */
  stepsDone: number;
  waitedMs: number;
  /** The typical step so far (undefined before the first step finished). */
  typicalMs: number | undefined;
  /** What was expected next. */
  awaiting: 'first step' | 'step' | 'validation';
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export class StepWatchdog {
  private readonly factor: number;
  private readonly floorMs: number;
  private readonly firstStepMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private firstMs: number | undefined;
  private readonly intervals: number[] = [];
  private lastBatch: BatchEvent | undefined;
  private validationSteps = 0;
  private stopped = false;

  constructor(
    private readonly opts: WatchdogOptions,
    private readonly onStall: (s: Stall) => void,
  ) {
    this.factor = opts.factor ?? STALL_FACTOR;
    this.floorMs = opts.floorMs ?? STALL_FLOOR_MS;
    this.firstStepMs = Math.max(this.floorMs, opts.firstStepMs ?? FIRST_STEP_MS);
    this.now = opts.now ?? (() => performance.now());
  }

  /** The typical step so far: the median interval between batch events (the first step until there is one). */
  get typicalMs(): number | undefined {
    return this.intervals.length ? median(this.intervals.slice(-20)) : this.firstMs;
  }

  event(e: TrainEvent): void {
    if (this.stopped) return;
    const t = this.now();
    switch (e.type) {
      case 'run-start':
        this.last = t;
        this.validationSteps = e.validationImages > 0 ? Math.ceil(e.validationImages / Math.max(1, e.plan.validationBatchSize)) : 0;
        this.arm(this.firstStepMs, 'first step');
        return;
      case 'batch': {
        const prev = this.lastBatch;
        if (!prev) this.firstMs = t - this.last;
        else if (e.epoch === prev.epoch) this.intervals.push(t - this.last);
        this.last = t;
        this.lastBatch = e;
        const typical = this.typicalMs ?? 0;
        const ends = e.step >= e.stepsPerEpoch || (this.opts.maxSteps !== undefined && e.globalStep >= this.opts.maxSteps);
        if (ends) this.arm(Math.max(this.floorMs, this.factor * typical * (1 + this.validationSteps)), 'validation');
        else this.arm(Math.max(this.floorMs, this.factor * typical), 'step');
        return;
      }
      case 'epoch':
        // The next batch starts a new epoch (its first batch is read like any other).
        this.last = t;
        this.arm(Math.max(this.floorMs, this.factor * (this.typicalMs ?? 0)), 'step');
        return;
      case 'run-end':
        this.stop();
        return;
      default:
        return;
    }
  }

  private arm(ms: number, awaiting: Stall['awaiting']): void {
    if (this.timer) clearTimeout(this.timer);
    const from = this.last;
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      this.stopped = true;
      this.onStall({ stepsDone: this.lastBatch?.globalStep ?? 0, waitedMs: this.now() - from, typicalMs: this.typicalMs, awaiting });
    }, ms);
    this.timer.unref?.();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function seconds(ms: number): string {
  return ms >= 10_000 ? `${Math.round(ms / 1000)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.max(1, Math.round(ms))} ms`;
}

/** The run-end of a stalled run: out of memory, with a smaller batch (never above what the plan says fits). */
export function stallEnd(s: Stall, plan: Pick<TrainingPlan, 'microBatchSize' | 'accumulationSteps' | 'maxMicroBatchSize'>): RunEndEvent {
  const micro = plan.microBatchSize;
  const what =
    s.stepsDone === 0
      ? `the first step did not finish within ${seconds(s.waitedMs)}`
      : `${s.awaiting === 'validation' ? 'validation after' : 'the step after'} step ${s.stepsDone} made no progress for ${seconds(s.waitedMs)}${s.typicalMs !== undefined ? ` (steps so far took ${seconds(s.typicalMs)} each)` : ''}`;
  const cause = `${what}, so the trainer was ended: memory is most likely exhausted (the wasm backend spins instead of failing when its heap is full)`;
  const fits = plan.maxMicroBatchSize > 0 && plan.maxMicroBatchSize < micro ? plan.maxMicroBatchSize : Infinity;
  const suggested = micro > 1 ? Math.min(batchAfterOom(micro), fits) : 0;
  const time = new Date().toISOString();
  if (suggested < 1) {
    return { v: PROTOCOL_VERSION, type: 'run-end', time, status: 'failed', error: 'oom', message: `Out of memory: even batch size 1 does not train on this device: ${cause}. Use a smaller imageSize (or a smaller model).` };
  }
  const keep = keepEffectiveBatch(suggested, micro, plan.accumulationSteps);
  return { v: PROTOCOL_VERSION, type: 'run-end', time, status: 'failed', error: 'oom', message: `Out of memory at batch size ${micro}: ${cause}. Try ${suggested}${keep}.`, suggestedBatchSize: suggested };
}
