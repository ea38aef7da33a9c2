/** The suggestion as the CLI's `--json`, the Suggest panel and the tests see it. */
import type { TrainConfig } from './config-types';
import type { DatasetReport } from './dataset-types';
import type { DeviceInfo } from './device-types';
import type { ModelDescription, OptimizerName } from './model';
import type { TrainingPlan } from './plan';
import type { GradientNoiseScale, ProbeReport } from './probe';

export interface MemoryBreakdown {
  weightsBytes: number;
  gradientsBytes: number;
  optimizerBytes: number;
  /** Activations kept for the backward pass, per sample. */
  activationBytesPerSample: number;
  /** The float32 input batch, per sample. */
  inputBytesPerSample: number;
  /** Framework/runtime constant: workspace, allocator slack, kernels' scratch. */
  overheadBytes: number;
  /**
   * Temporaries of the optimizer update (tfjs Adam keeps ~11× the trainable weights until the update
   * ends). They live after the activations are freed, so a step needs
   * fixed + perSample × batch + max(0, updateScratchBytes − activationBytesPerSample × batch).
   */
  updateScratchBytes?: number;
  /**
   * Backend kernels' scratch during the backward pass (wasm: the conv gradients'), per image: a part
   * up to a cap (the filter gradient's patch matrix), and the rest less the backward temporaries
   * not yet made while it is alive (may be negative). A step needs the larger of
   * min(workspace × batch, cap) + rest × batch and the update's extra.
   */
  workspaceBytesPerSample?: number;
  workspaceRestBytesPerSample?: number;
  workspaceCapBytes?: number;
  /** wasm: every conv's workspace (the one above is the largest per image); the step takes the largest at its batch. */
  workspaces?: { cappedBytesPerSample: number; restBytesPerSample: number }[];
}

export interface MemoryEstimate {
  /** Memory the plan may use: free memory × (1 − headroom). */
  budgetBytes: number;
  /** Set when the budget is not simply free × (1 − headroom), saying why (e.g. the wasm heap's 4 GiB limit). */
  budgetNote?: string;
  headroom: number;
  /** Layer classes without a measured factor, counted with the conservative default. */
  unknownLayers?: string[];
  /** Bytes that grow with each sample of the batch. */
  perSampleBytes: number;
  /** Bytes that do not depend on the batch (weights, gradients, optimizer slots, overhead). */
  fixedBytes: number;
  breakdown: MemoryBreakdown;
  /** Predicted bytes for a range of batch sizes (powers of two up to past the maximum). */
  table: { batchSize: number; bytes: number; fits: boolean }[];
  /** The loss the estimate assumed, from the model's head (ModelDescription.head): the plan reports it. */
  loss?: string;
}

export interface Recommendation {
  batchSize: number;
  /** Largest batch whose predicted memory fits the budget (0 when not even 1 fits). */
  maxBatchSize: number;
  /** Plain-word reasons, most important first. */
  reasons: string[];
  stepsPerEpoch: number;
  learningRate: {
    /** The config's learning rate, taken as tuned for `baseBatchSize`. */
    base: number;
    baseBatchSize: number;
    recommended: number;
    rule: 'linear' | 'sqrt' | 'none';
  };
  warmupEpochs: number;
  /** Optimizer steps of linear warmup (the config's warmupSteps, else warmupEpochs × stepsPerEpoch). */
  warmupSteps: number;
  /** Micro-batches per optimizer step; >1 when the wanted effective batch does not fit. */
  accumulationSteps: number;
  effectiveBatchSize: number;
  loading: { strategy: 'preload' | 'stream'; reason: string };
  /** Warnings the user should read (e.g. not even batch 1 fits). */
  warnings: string[];
}

export interface SuggestReport {
  config: TrainConfig;
  dataset: DatasetReport;
  devices: DeviceInfo[];
  /** The device the plan is made for (first GPU, else host RAM; or the override). */
  device: DeviceInfo;
  model: ModelDescription;
  optimizer: OptimizerName;
  memory: MemoryEstimate;
  recommendation: Recommendation;
  /** The training plan a run with this config executes (what `train` and the Train lens run). */
  plan: TrainingPlan;
  /** Real training steps that confirmed the plan (with `--probe` / `"probe": true`). */
  probe?: ProbeReport;
  /** The gradient noise scale measured by the probe (after a short warm-up of training steps). */
  gradientNoiseScale?: GradientNoiseScale;
  /** With "engine": "torchrun": the plan the torchrun processes train at (src/core/torchrun/plan.ts). */
  torchrun?: TorchrunPlanSummary;
}

/** The plan's numbers on `processes` torchrun processes: what the generated script runs. */
export interface TorchrunPlanSummary {
  processes: number;
  perDeviceBatchSize: number;
  accumulationSteps: number;
  globalBatchSize: number;
  learningRate: number;
  stepsPerEpoch: number;
  warmupSteps: number;
  /** The same in one sentence (the CLI's line, the Suggest panel's paragraph). */
  note: string;
}
