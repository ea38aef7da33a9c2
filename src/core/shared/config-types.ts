/**
 * The `*.train.json` config as data: its types and defaults. Browser-safe (the webviews show
 * configs); validation and file reading live in `../config.ts` on the host.
 */
import { BACKEND_NAMES } from './constants';
import type { OptimizerName } from './model';
import type { LrSchedule } from './schedule';

export const BACKENDS = ['auto', ...BACKEND_NAMES] as const;
export type BackendChoice = (typeof BACKENDS)[number];
export type LoadingChoice = 'auto' | 'preload' | 'stream';
export const ENGINES = ['tfjs', 'torchrun'] as const;
/** What trains the plan: our TensorFlow.js trainer, or PyTorch DDP through torchrun (src/core/torchrun). */
export type EngineName = (typeof ENGINES)[number];

/** The file as a person writes it. */
export interface TrainConfigFile {
  $schema?: string;
  name?: string;
  /** Dataset folder, relative to the config file. */
  dataset: string;
  /** [height, width]. Default [256, 256]. */
  imageSize?: [number, number];
  /** 1 (grayscale), 3 (RGB) or 4 (RGBA). Default 3. */
  channels?: 1 | 3 | 4;
  validationSplit?: number;
  seed?: number;
  /** Zoo name or a path (relative to the config file) to a tfjs Layers model.json. */
  model?: string;
  widthMultiplier?: number;
  optimizer?: OptimizerName;
  learningRate?: number;
  batchSize?: number | 'auto';
  epochs?: number;
  accumulationSteps?: number;
  /** Optimizer steps of linear learning-rate warmup (0 = none). Default: planned with the batch. */
  warmupSteps?: number;
  /** Learning-rate schedule after warmup (./schedule.ts). Default "constant". */
  lrSchedule?: LrSchedule;
  /** Stop when the monitored metric stops improving. Defaults: monitor "val_loss", minDelta 0. */
  earlyStopping?: { patience: number; monitor?: 'val_loss' | 'val_accuracy'; minDelta?: number };
  /** "best" (default): keep the best epoch in model-best/ as well as the last in model/; "last": model/ only. */
  checkpoint?: 'best' | 'last';
  loading?: LoadingChoice;
  /** What trains the plan: "tfjs" (default) or "torchrun" (PyTorch DDP). */
  engine?: EngineName;
  /** torchrun engine: processes on this machine (default: the CUDA devices, else 1). */
  nprocPerNode?: number;
  backend?: BackendChoice;
  /** Plan for a device with this much memory instead of the one present. */
  deviceMemoryGiB?: number;
  /** Consecutive optimizer steps with a non-finite (NaN/Inf) loss tolerated before the run stops. Default 0. */
  nanPatience?: number;
  /** Confirm the plan with real training steps before training (the probe). */
  probe?: boolean;
  /** Grow the batch during training when the measured noise scale says a larger one reaches the target sooner. Default false. */
  batchGrowth?: boolean;
  /** A run folder (relative to the config file) whose training continues: its recorded config and plan, from the epoch after its last saved one; `epochs`, when set here, trains to that many in all. */
  resume?: string;
}

/** A config with every default filled in and every path absolute. */
export interface TrainConfig {
  name: string;
  configPath?: string;
  dataset: string;
  imageSize: [number, number];
  channels: 1 | 3 | 4;
  validationSplit: number;
  seed: number;
  model: string;
  widthMultiplier: number;
  optimizer: OptimizerName;
  learningRate: number;
  batchSize: number | 'auto';
  epochs: number;
  accumulationSteps: number;
  /** Explicit warmup in optimizer steps; absent = planned. */
  warmupSteps?: number;
  /** Learning-rate schedule after warmup (absent = constant). */
  lrSchedule?: LrSchedule;
  earlyStopping?: { patience: number; monitor: 'val_loss' | 'val_accuracy'; minDelta: number };
  /** Absent = "best". */
  checkpoint?: 'best' | 'last';
  loading: LoadingChoice;
  /** Absent = "tfjs". */
  engine?: EngineName;
  nprocPerNode?: number;
  backend: BackendChoice;
  deviceMemoryGiB?: number;
  /** Consecutive non-finite losses tolerated before the run stops as diverged (absent = 0). */
  nanPatience?: number;
  /** Confirm the plan with real training steps (absent: on for "batchSize": "auto"). */
  probe?: boolean;
  /** Grow the batch during training by the re-measured noise scale (needs the probe's throughput curve). */
  batchGrowth?: boolean;
  /** The run folder to continue (TrainConfigFile `resume`, absolute) and the file's `epochs` when it set them. */
  resume?: { runDir: string; epochs?: number };
  /** The plan-relevant fields the config (or the command line) sets; the plan keeps these as written. */
  explicit: ExplicitField[];
}

/** Fields a plan keeps as written when the config sets them. */
export const EXPLICIT_FIELDS = ['batchSize', 'accumulationSteps', 'learningRate', 'warmupSteps', 'loading'] as const;
export type ExplicitField = (typeof EXPLICIT_FIELDS)[number];

/** The explicit fields among `raw`'s keys ("batchSize": "auto" is not explicit, nor is "loading": "auto"). */
export function explicitFields(raw: object): ExplicitField[] {
  const r = raw as Partial<Record<string, unknown>>;
  return EXPLICIT_FIELDS.filter((f) => r[f] !== undefined && r[f] !== 'auto');
}

export const DEFAULTS = {
  imageSize: [256, 256] as [number, number],
  channels: 3 as const,
  validationSplit: 0.2,
  seed: 1337,
  model: 'tutorial-cnn',
  widthMultiplier: 1,
  optimizer: 'adam' as OptimizerName,
  learningRate: 0.001,
  batchSize: 'auto' as const,
  epochs: 10,
  accumulationSteps: 1,
  lrSchedule: 'constant' as LrSchedule,
  loading: 'auto' as LoadingChoice,
  backend: 'auto' as BackendChoice,
};
