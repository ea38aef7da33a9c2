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
  /** Also measure gradient norms for the noise scale (after the memory steps). */
  noise?: { smallBatch: number; bigBatch: number; steps: number };
  /** Also time a few steps at these (smaller) batch sizes, in the same process. */
  throughputBatches?: number[];
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
}

/** The gradient noise scale (McCandlish et al. 2018) at the start of training. */
export interface GradientNoiseScale {
  /** B_simple = tr(Σ) / |G|²; undefined when the estimate is not usable (then `note` says why). */
  bSimple?: number;
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
  /** Trial processes started (including retries). */
  processes: number;
  /** Why the search stopped, in words. */
  stop: string;
}
