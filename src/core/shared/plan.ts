/**
 * The training plan: the resolved, numeric answer to "how will this run train". Made in one place
 * on the host (`src/core/planning/plan.ts`) from the config, the dataset report, the devices and the model;
 * shown by the Suggest panel and `suggest --json`; sent to the trainer, which executes it and
 * decides nothing it already decided; written to the run folder as `plan.json` and carried by the
 * run's `run-start` event. Browser-safe: the webviews show it.
 */
import type { BackendChoice } from './config-types';
import type { DeviceInfo } from './device-types';
import { formatBytes } from './format';
import type { BackendName } from './constants';
import { scheduleFactor, type LrSchedule } from './schedule';

export const PLAN_VERSION = 1;

/** Where a planned value came from. */
export type PlanSource =
  /** Written in the config file (or given on the command line) and kept as written. */
  | 'config'
  /** Worked out by the planner (memory model, dataset, scaling rules). */
  | 'planned'
  /** Measured by the probe's real training steps. */
  | 'probe'
  /** The planner could not run; a fixed fallback rule chose it (see `basis`). */
  | 'fallback';

export type LearningRateRule = 'linear' | 'sqrt' | 'none';

export interface TrainingPlan {
  v: typeof PLAN_VERSION;
  /** Images in one forward/backward pass (per device). */
  microBatchSize: number;
  /** Micro-batches whose gradients are averaged into one optimizer step. */
  accumulationSteps: number;
  /** microBatchSize × accumulationSteps × dataParallelDevices: images per optimizer step. */
  effectiveBatchSize: number;
  /** Devices training data-parallel (1 unless several GPUs are planned for). */
  dataParallelDevices: number;
  learningRate: {
    /** The rate the optimizer reaches after warmup. */
    value: number;
    /** The rate it was scaled from, and the batch that rate is taken to be tuned for. */
    base: number;
    baseBatchSize: number;
    rule: LearningRateRule;
  };
  /** Linear warmup from `startLearningRate` to `learningRate.value` over `steps` optimizer steps (0 = none). */
  warmup: { steps: number; epochs: number; startLearningRate: number };
  /** The schedule after warmup (./schedule.ts); absent = constant (plans written before it existed). */
  lrSchedule?: LrSchedule;
  /** Config `earlyStopping` with its defaults filled in; absent = train every epoch. */
  earlyStopping?: EarlyStoppingPlan;
  /** Config `checkpoint`: "best" also keeps the best epoch by `monitor` in model-best/; absent = "last" only (older plans). */
  checkpoint?: CheckpointPlan;
  epochs: number;
  /** The epochs the learning-rate schedule spans, when a resumed run was given more epochs than planned (the schedule keeps its course; the extra steps keep its last rate). Absent: `epochs`. */
  scheduleEpochs?: number;
  /** Optimizer steps per epoch: ceil(trainImages / effectiveBatchSize). */
  stepsPerEpoch: number;
  trainImages: number;
  validationImages: number;
  /** Batch used for validation passes (no gradients: may exceed the micro-batch). */
  validationBatchSize: number;
  loading: { strategy: 'preload' | 'stream'; reason: string };
  /** The config's backend choice and the backend the memory plan assumed. */
  backend: { preference: BackendChoice; planned: BackendName };
  /** "torchrun": the plan is trained by PyTorch under torchrun (core/torchrun), not by TensorFlow.js' `backend`; absent = our trainer. */
  engine?: 'torchrun';
  /** The device planned for (real or given by size). */
  device: Pick<DeviceInfo, 'name' | 'kind' | 'memoryTotalBytes' | 'memoryFreeBytes' | 'source'>;
  /** Memory the plan may use, and what one optimizer step at this plan is predicted to take. */
  budgetBytes: number;
  predictedBytes: number;
  /** Largest micro-batch predicted (or, with a probe, measured) to fit; 0 when not even 1 fits. */
  maxMicroBatchSize: number;
  /** Which values were kept from the config and which were planned. */
  sources: {
    batchSize: PlanSource;
    accumulationSteps: PlanSource;
    learningRate: PlanSource;
    warmup: PlanSource;
    loading: PlanSource;
  };
  /** How the plan was made: from a full suggestion, or by the fallback rule (with why). */
  basis: { kind: 'suggestion' } | { kind: 'fallback'; why: string };
  /**
   * Advice for data-parallel training when the machine has several GPUs (absent with one, or when
   * planning for a device given by size). Batch Advisor's own trainer trains on one device: the
   * numbers above are what it runs; these are for a data-parallel run elsewhere.
   */
  dataParallel?: DataParallelAdvice;
  /**
   * The loss the run computes, from the model's head (./head.ts), in words: "sparse categorical
   * cross-entropy on the softmax output (from its logits)". Set from the model description when
   * the plan is made; the trainer, which loads the model, sets it in `run-start` in every case.
   */
  loss?: string;
  /**
   * Batch growth during training (config `batchGrowth`, with the probe): the noise scale grows as
   * the loss falls, so a batch larger than the plan's can reach the target sooner later on.
   */
  batchGrowth?: BatchGrowthPlan;
  /** Plain-word reasons, most important first. */
  reasons: string[];
  /** What the person should read before training (e.g. an explicit batch predicted not to fit). */
  warnings: string[];
}

/** Stop when `monitor` has not improved by more than `minDelta` for `patience` epochs (Keras's EarlyStopping). */
export interface EarlyStoppingPlan {
  monitor: 'val_loss' | 'val_accuracy';
  patience: number;
  minDelta: number;
}

/** Which models a run keeps: model/ (the last epoch) always; with "best" also model-best/. */
export interface CheckpointPlan {
  mode: 'best' | 'last';
  /** The earlyStopping monitor when set, else val_loss. */
  monitor: 'val_loss' | 'val_accuracy';
}

/** Per-device and global batch for data-parallel training over several GPUs, with its learning rate. */
export interface DataParallelAdvice {
  devices: number;
  /** Micro-batch on each device: the plan's, limited by what fits the GPU with the least free memory. */
  perDeviceBatchSize: number;
  accumulationSteps: number;
  /** perDeviceBatchSize × accumulationSteps × devices: images per optimizer step. */
  globalBatchSize: number;
  /** The rate scaled for the global batch (same rule and base as the plan's). */
  learningRate: number;
  rule: LearningRateRule;
  stepsPerEpoch: number;
  /** Set when the GPUs differ: the one that limits the per-device batch. */
  limitedBy?: { name: string; memoryFreeBytes: number; maxBatchSize: number };
  /** One line for the front ends. */
  note: string;
}

/**
 * How a run grows its batch: the trainer re-measures the noise scale from half-batch gradients
 * every `measureEverySteps` steps and, at an epoch end, moves to the candidate the time-to-target
 * objective prefers (core/probe/objective.ts) with the learning rate by `rule` — the plan's numbers,
 * the trainer's measurement.
 */
export interface BatchGrowthPlan {
  /** Batches the run may train at, ascending: the plan's micro-batch, then larger ones the probe confirmed to fit. */
  candidates: number[];
  /** Images/s per batch measured by the probe. */
  throughput: { batchSize: number; imagesPerSec: number }[];
  measureEverySteps: number;
  /** How the learning rate follows the batch: the optimizer's scaling rule; 'none' when the config sets the rate. */
  rule: LearningRateRule;
}

/** The learning rate for an effective batch under the plan's base rate and the growth rule. */
export function learningRateForBatch(plan: Pick<TrainingPlan, 'learningRate'>, rule: LearningRateRule, effectiveBatch: number): number {
  const { base, baseBatchSize } = plan.learningRate;
  const ratio = effectiveBatch / baseBatchSize;
  return rule === 'linear' ? base * ratio : rule === 'sqrt' ? base * Math.sqrt(ratio) : plan.learningRate.value;
}

/** The learning rate at a 1-based optimizer step under the plan's linear warmup, then its schedule over epochs × stepsPerEpoch steps. */
export function learningRateAt(plan: Pick<TrainingPlan, 'learningRate' | 'warmup' | 'lrSchedule'> & Partial<Pick<TrainingPlan, 'epochs' | 'scheduleEpochs' | 'stepsPerEpoch'>>, step: number): number {
  const { steps, startLearningRate } = plan.warmup;
  const target = plan.learningRate.value;
  if (steps <= 0 || step > steps) {
    const total = (plan.scheduleEpochs ?? plan.epochs ?? 0) * (plan.stepsPerEpoch ?? 0);
    return target * scheduleFactor(plan.lrSchedule ?? 'constant', step, Math.max(0, steps), total);
  }
  const s = Math.max(1, step);
  return startLearningRate + ((target - startLearningRate) * s) / steps;
}

/**
 * What the plan was made for, in words: the backend that trains (the run uses exactly it) and the
 * memory it trains in — "wasm on Host RAM, 5.2 GiB free", "tensorflow-gpu on a GPU of 8.0 GiB
 * (given by size)". The device is the backend's: a GPU only for tensorflow-gpu.
 */
export function plannedFor(plan: Pick<TrainingPlan, 'backend' | 'device' | 'engine'>): string {
  const d = plan.device;
  const engine = plan.engine === 'torchrun' ? 'torchrun (PyTorch)' : plan.backend.planned;
  if (d.source !== 'override' && !(d.memoryTotalBytes > 0)) return `${engine} (the device's memory was not read: a fallback plan)`;
  const where = d.source === 'override' ? `${d.kind === 'gpu' ? 'a GPU' : 'host memory'} of ${formatBytes(d.memoryTotalBytes)} (given by size)` : `${d.name}, ${formatBytes(d.memoryFreeBytes)} free`;
  return `${engine} on ${where}`;
}

/** "4 × 8 accumulated = 32" or "32". */
export function describeBatch(plan: Pick<TrainingPlan, 'microBatchSize' | 'accumulationSteps' | 'effectiveBatchSize' | 'dataParallelDevices'>): string {
  const per = plan.accumulationSteps > 1 ? `${plan.microBatchSize} × ${plan.accumulationSteps} accumulated` : `${plan.microBatchSize}`;
  if (plan.dataParallelDevices > 1) return `${per} per device × ${plan.dataParallelDevices} devices = ${plan.effectiveBatchSize}`;
  return plan.accumulationSteps > 1 ? `${per} = ${plan.effectiveBatchSize}` : per;
}
