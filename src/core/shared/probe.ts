/**
 * The probe: real training steps that confirm (or correct) the memory model before a run trains.
 * Types shared by the host (search, plan), the trainer child (trials), the CLI's `--json` and the
 * Suggest panel. Browser-safe.
 */

/** What one trial runs: a fresh child process, one real batch, ≥3 optimizer steps, one validation step. */
export interface ProbeTrialSpec {
  microBatchSize: number;
  accumulationSteps: number;
  validationBatchSize: number;
  /** Optimizer steps to run (at least 3). */
  steps: number;
  learningRate: number;
  /**
   * Also measure gradient norms for the noise scale (after the memory steps): at least `steps`
   * steps, and more, up to `maxSteps`, while the measurement has taken less than `budgetMs`.
   */
  noise?: {
    smallBatch: number;
    bigBatch: number;
    steps: number;
    maxSteps?: number;
    budgetMs?: number;
    /** Ordinary training steps first (at most this many and this long, and a few percent of the run): the noise scale is measured once the loss has begun to fall. */
    warmMaxSteps?: number;
    warmMaxMs?: number;
  };
  /** Also time a few steps at these (smaller) batch sizes, in the same process. */
  throughputBatches?: number[];
  /**
   * Images the run will train (epochs × training images): the measurements beyond their minimum
   * (noise steps, timed steps) take at most a few percent of the run's predicted time, so a short
   * run is not slowed down by its own probe.
   */
  runImages?: number;
}

/** Why a trial failed. */
export type ProbeFailure = 'oom' | 'over-budget' | 'no-training' | 'timeout' | 'error';

/** Squared gradient norms at two batch sizes, one value per measured step. */
export interface GradientNormSamples {
  smallBatch: number;
  bigBatch: number;
  /** |G_small|², averaged over the small chunks of each step. */
  small: number[];
  /** |G_big|² of each step. */
  big: number[];
  /** Training steps the model had taken when the measurement began, and the training loss at the trial's first step and at the last step before the measurement. */
  afterSteps?: number;
  lossFrom?: number;
  lossTo?: number;
}

export interface ProbeTrialResult {
  batchSize: number;
  accumulationSteps: number;
  ok: boolean;
  failure?: ProbeFailure;
  /** The raw error text (first line) of a failed trial. */
  error?: string;
  /** The peak the trial is judged by: the largest of the measures below that the backend has. */
  peakBytes: number;
  /** Peak of live tfjs tensor bytes during the steps. */
  tensorPeakBytes: number;
  /** wasm: the heap's size after the steps (it only grows). */
  wasmHeapBytes?: number;
  /** Peak resident set size of the trial process. */
  rssBytes: number;
  /** tensorflow-gpu: GPU memory used (nvidia-smi), when it could be read. */
  gpuBytes?: number;
  imagesPerSec: number;
  /** Images/s at other batch sizes, timed in the same process after the memory steps. */
  throughput?: { batchSize: number; imagesPerSec: number }[];
  /** What the memory model predicted for this trial's measure (filled in by the host). */
  predictedBytes?: number;
  /** Optimizer steps that ran, and the loss of the first and the last. */
  steps: number;
  lossFirst?: number;
  lossLast?: number;
  backend?: string;
  durationMs: number;
  gradientNorms?: GradientNormSamples;
  /** Reused from the probe cache (no process ran for it). */
  cached?: boolean;
}

/** The gradient noise scale (McCandlish et al. 2018), measured early in training (after a short warm-up). */
export interface GradientNoiseScale {
  /** B_simple = tr(Σ) / |G|²; undefined when the estimate is not usable (then `note` says why). */
  bSimple?: number;
  /** 10th–90th percentile of B_simple over bootstrap resamples of the steps (null above: unbounded). */
  range?: [number, number | null];
  gradientSquaredNorm: number;
  traceSigma: number;
  smallBatch: number;
  bigBatch: number;
  steps: number;
  note: string;
}

/** What `suggest --probe` adds to the report. */
export interface ProbeReport {
  trials: ProbeTrialResult[];
  /** Largest micro-batch that trained (0 when not even 1 did); `undefined` when the search could not tell. */
  maxBatchSize: number;
  /** True when the search hit its cap: the real maximum may be higher. */
  atCap: boolean;
  /** (predicted − measured) / measured bytes at the largest batch that trained; positive = the model over-predicts. */
  modelError: number | null;
  /** The margin applied to the measured maximum (the configured one, widened when the model erred by more). */
  margin: number;
  /** The memory limit trials were judged by when planning for a device given by size. */
  limitBytes?: number;
  /** The micro-batch the plan may use: floor(maxBatchSize × (1 − margin)). */
  usableBatchSize: number;
  /** Trial processes started (including retries; trials reused from the cache are not counted). */
  processes: number;
  /** Why the search stopped, in words. */
  stop: string;
  /**
   * Whether the trials looked for the device's largest batch. False when they stopped once larger
   * batches could not reach the target sooner: `maxBatchSize` is then the largest batch confirmed,
   * not the device's maximum.
   */
  maxSearched: boolean;
  /** The time-to-target choice (absent when the batch was set in the config or memory bound it below the base batch). */
  objective?: ObjectiveReport;
  /** The probe cache: trials reused from an earlier probe on the same inputs. */
  cache?: { file: string; reused: number; hit: boolean };
}

/** Predicted time to the target per batch (McCandlish et al. 2018), as the plan chose it. */
export interface ObjectiveReport {
  /** 'noise-scale': argmin of (B + B_noise)/imagesPerSec(B); 'throughput': B_noise unknown, the smallest batch reaching 95% of the best throughput. */
  basis: 'noise-scale' | 'throughput';
  /** The noise scale the choice is made for (probe.ts planningNoiseScale: the upper end of the measured range), and the measured point estimate. */
  bNoise?: number;
  bNoiseMeasured?: number;
  /** The noise scale's bootstrap range and the batches the objective picks at its two ends. */
  bNoiseRange?: [number, number | null];
  choiceInRange?: [number, number];
  chosen: number;
  rows: { batchSize: number; imagesPerSec: number; measured: boolean; relativeTime: number }[];
}

/** Runs one probe trial (a fresh trainer child in process/run-trial.ts; a fake in tests). */
export type TrialRunner = (spec: ProbeTrialSpec) => Promise<ProbeTrialResult>;
