/**
 * The versioned protocol between a host (the extension or the CLI) and the trainer child process.
 * Messages travel over Node's IPC channel (`child_process.fork` + `process.send`), never stdout:
 * libraries print. Every message carries `v`; a host refuses a child that speaks another version.
 *
 * The training events (`batch`, `epoch`, `run-start`, `run-end`, …) are also the lines of a run's
 * `metrics.jsonl`, so a run can be replayed from its folder alone.
 */
import type { EvaluationResult } from './evaluation';
import type { Head } from './head';
import { message, parseMessage, type MessageDescriptor, type Parsed } from './ipc';
import type { ModelDescription, ModelSpec } from './model';
import type { TrainingPlan } from './plan';
import type { ProbeTrialResult, ProbeTrialSpec } from './probe';
import type { BackendLocation, RunSetup, RunSpec } from './run-spec';

/** 3: a train request carries a RunSpec alone; a probe request a RunSetup; a description reports the backend that loads. */
export const PROTOCOL_VERSION = 3;

export type { BackendName } from './constants';
import type { BackendName } from './constants';

// ---- host → trainer -------------------------------------------------------------------------

export interface DescribeRequest {
  v: typeof PROTOCOL_VERSION;
  type: 'describe';
  id: number;
  spec: ModelSpec;
  /** [height, width, channels] */
  inputShape: [number, number, number];
  numClasses: number;
  /** Also resolve the backend this choice gets here, looking where a run would (reported in `described`). */
  backend?: BackendLocation & { choice: 'auto' | BackendName };
}

export interface TrainRequest {
  v: typeof PROTOCOL_VERSION;
  type: 'train';
  id: number;
  /** Everything the run needs, resolved: the trainer validates it, executes it and decides nothing. */
  spec: RunSpec;
}

export interface StopRequest {
  v: typeof PROTOCOL_VERSION;
  type: 'stop';
}

/** One probe trial: build the model, load one real batch, run real steps, report memory and speed. */
export interface ProbeRequest {
  v: typeof PROTOCOL_VERSION;
  type: 'probe';
  id: number;
  setup: RunSetup;
  trial: ProbeTrialSpec;
}

/** Evaluate a saved model on labelled images (src/trainer/eval/): answered by 'evaluated'. */
export interface EvaluateRequest {
  v: typeof PROTOCOL_VERSION;
  type: 'evaluate';
  id: number;
  /** The model.json to evaluate. */
  modelPath: string;
  /** The model's classes in its output order. */
  classNames: string[];
  /** The images, labelled with the model's class indices. */
  files: { path: string; label: number }[];
  /** [height, width] the images are resized to; default: the model's input shape. */
  imageSize?: [number, number];
  channels?: 1 | 3 | 4;
  batchSize?: number;
  backend?: BackendName | 'auto';
  /** The folder the host's workspace lives in (where tfjs-node may be installed). */
  workspaceFolder?: string;
}

/**
 * Prepares a torchrun engine run (src/core/torchrun): the trainer lists and splits the data as a run
 * of its own would, builds (or loads) the model with its initial weights into `<runDir>/<initialModel>`
 * and decides the head; answered by 'prepared'. Nothing trains.
 */
export interface PrepareTorchrunRequest {
  v: typeof PROTOCOL_VERSION;
  type: 'prepare-torchrun';
  id: number;
  spec: RunSpec;
  /** The folder under the run folder the initial model.json + weights.bin go to. */
  initialModel: string;
}

export type HostMessage = DescribeRequest | TrainRequest | StopRequest | ProbeRequest | EvaluateRequest | PrepareTorchrunRequest;

// ---- trainer → host -------------------------------------------------------------------------

export interface ReadyMessage {
  v: typeof PROTOCOL_VERSION;
  type: 'ready';
  pid: number;
}

export interface BackendEvent {
  v: typeof PROTOCOL_VERSION;
  type: 'backend';
  name: BackendName;
  /** Why each earlier backend in the preference order was passed over. */
  skipped: { name: BackendName; reason: string }[];
}

export interface DescribedMessage {
  v: typeof PROTOCOL_VERSION;
  type: 'described';
  id: number;
  description: ModelDescription;
  /** The backend the request's choice got (when it asked): the plan is made for it and the run uses exactly it. */
  backend?: ResolvedBackend;
}

/** A backend that loaded, with why each earlier one in the preference order was passed over. */
export interface ResolvedBackend {
  name: BackendName;
  skipped: { name: BackendName; reason: string }[];
  /** For tensorflow(-gpu): the tfjs-node file that loaded. */
  from?: string;
}

/** What a torchrun engine run trains on, decided by the trainer exactly as its own run decides it. */
export interface TorchrunPrepared {
  classNames: string[];
  /** [path, label] of each training / validation image: the split of the tfjs trainer, not re-derived. */
  train: [string, number][];
  validation: [string, number][];
  head: Head;
  params: number;
  /** The model.json of the initial weights, relative to the run folder. */
  initialModel: string;
  /** Notes for the run log (the model file's settings not used, files left out). */
  notes: string[];
}

export interface PreparedMessage {
  v: typeof PROTOCOL_VERSION;
  type: 'prepared';
  id: number;
  prepared: TorchrunPrepared;
}

export interface LogEvent {
  v: typeof PROTOCOL_VERSION;
  type: 'log';
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

/** The backend of a torchrun engine run: PyTorch's process-group backend (Gloo on CPUs, NCCL on CUDA). */
export type TorchBackend = 'torch-gloo' | 'torch-nccl';

/** What a torchrun engine run trains on, reported in its run-start. */
export interface TorchrunEngineInfo {
  name: 'torchrun';
  /** torch.__version__ */
  torch: string;
  distBackend: 'gloo' | 'nccl';
  device: 'cpu' | 'cuda';
  /** Processes in all (every node). */
  worldSize: number;
  nnodes: number;
}

export interface RunStartEvent {
  v: typeof PROTOCOL_VERSION;
  type: 'run-start';
  time: string;
  runDir: string;
  backend: BackendName | TorchBackend;
  /** Set for a torchrun engine run (absent: the tfjs trainer). */
  engine?: TorchrunEngineInfo;
  /** The plan being executed, as received (also in the run folder's plan.json). */
  plan: TrainingPlan;
  /** Optimizer steps per epoch over the images that are really there (the plan's, unless files vanished). */
  stepsPerEpoch: number;
  trainImages: number;
  validationImages: number;
  params: number;
  /** The dataset's class names in label order (the model's output order). */
  classNames?: string[];
  /** A resumed run (`train --resume`): it continues after this epoch and optimizer step, appending to the same metrics.jsonl. */
  resumed?: { afterEpoch: number; globalStep: number };
}

export interface BatchEvent {
  v: typeof PROTOCOL_VERSION;
  type: 'batch';
  time: string;
  epoch: number;
  /** Optimizer step within the epoch, 1-based. */
  step: number;
  stepsPerEpoch: number;
  /** Optimizer steps since the start of the run. */
  globalStep: number;
  /** null in JSON (metrics.jsonl, IPC) when the loss was NaN or infinite: the run then ends 'diverged'. */
  loss: number;
  accuracy: number;
  /** The learning rate this step was taken with (the plan's warmup ramp is visible here). */
  learningRate: number;
  imagesPerSec: number;
  stepMs: number;
  /** Time the step waited for the input pipeline. */
  dataWaitMs: number;
  /** Live tfjs tensor bytes after the step (tf.memory().numBytes): what persists (weights, optimizer slots). */
  tensorBytes: number;
  /**
   * The step's peak of live tensor bytes (its inputs, activations kept for backward, gradients, the
   * update's temporaries): what decides whether a batch fits. Absent in runs recorded before it.
   */
  peakTensorBytes?: number;
  /** The wasm heap's size after the step (wasm backend; it grows and never shrinks). */
  wasmHeapBytes?: number;
  /** The trainer process's resident set size after the step. */
  rssBytes?: number;
  /** With a GPU: used/total from nvidia-smi. */
  gpuMemoryUsedBytes?: number;
  gpuMemoryTotalBytes?: number;
  /**
   * Seconds to the end of the run: the steps left at the mean step time so far, plus the validation
   * passes to come (each epoch end and the final evaluation) and epoch-end saving (../shared/eta.ts).
   */
  etaSec: number;
  /** Of etaSec, the validation passes and epoch ends (absent in runs recorded before it). */
  etaValidationSec?: number;
}

export interface EpochEvent {
  v: typeof PROTOCOL_VERSION;
  type: 'epoch';
  time: string;
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
  durationMs: number;
  /** Of durationMs, the validation pass (absent without a validation split, or in older runs). */
  validationMs?: number;
  /** Path of the model saved at the end of this epoch. */
  savedModel: string;
  /** The best epoch so far (checkpoint "best"), kept in model-best/: this one when `best.epoch` equals `epoch`. */
  best?: BestEpoch;
}

/** The best epoch by the checkpoint's metric (the plan's monitor, or the training one without validation). */
export interface BestEpoch {
  epoch: number;
  monitor: string;
  value: number;
}

/** The run grew its batch at an epoch end (the plan's batchGrowth): from the next epoch on it trains at `to`. */
export interface BatchGrowthEvent {
  v: typeof PROTOCOL_VERSION;
  type: 'batch-growth';
  time: string;
  /** The first epoch trained at the new batch. */
  epoch: number;
  /** Optimizer steps before the change. */
  globalStep: number;
  from: number;
  to: number;
  /** The learning rate after warmup at the new batch (the plan's rule). */
  learningRate: number;
  /** The noise scale measured during the run that decided it. */
  bSimple: number;
  message: string;
}

export interface SkippedFileEvent {
  v: typeof PROTOCOL_VERSION;
  type: 'skipped-file';
  path: string;
  reason: string;
}

export type RunEndStatus = 'completed' | 'stopped' | 'failed';

export interface RunEndEvent {
  v: typeof PROTOCOL_VERSION;
  type: 'run-end';
  time: string;
  status: RunEndStatus;
  /** For a failure: what happened, in words. */
  message?: string;
  /** For an out-of-memory failure: a batch size that should fit. */
  suggestedBatchSize?: number;
  error?: TrainerErrorKind;
  /** For a diverged run: the global optimizer step whose loss was first non-finite. */
  divergedAtStep?: number;
  /** The best epoch of a run that kept one (checkpoint "best"; its model is in model-best/). */
  best?: BestEpoch;
}

/** The run's model evaluated on its validation split at the end (also written to evaluation.json). */
export interface EvaluationEvent {
  v: typeof PROTOCOL_VERSION;
  type: 'evaluation';
  time: string;
  result: EvaluationResult;
}

export type TrainEvent = EvaluationEvent | RunStartEvent | BatchEvent | EpochEvent | BatchGrowthEvent | SkippedFileEvent | RunEndEvent | BackendEvent | LogEvent;

/** 'diverged': the loss became NaN or infinite (the run stopped; the last finite model is kept). */
export type TrainerErrorKind = 'oom' | 'bad-input' | 'diverged' | 'internal';

export interface ErrorMessage {
  v: typeof PROTOCOL_VERSION;
  type: 'error';
  /** The request that failed; absent for a failure outside any request. */
  id?: number;
  kind: TrainerErrorKind;
  message: string;
}

export interface ProbeResultMessage {
  v: typeof PROTOCOL_VERSION;
  type: 'probe-result';
  id: number;
  result: ProbeTrialResult;
}

export interface EvaluatedMessage {
  v: typeof PROTOCOL_VERSION;
  type: 'evaluated';
  id: number;
  result: EvaluationResult;
}

export type TrainerMessage = ReadyMessage | DescribedMessage | ErrorMessage | ProbeResultMessage | EvaluatedMessage | PreparedMessage | TrainEvent;

// ---- descriptors: each side validates what it receives -------------------------------------

/** What the trainer accepts from its host. */
export const HOST_MESSAGES: readonly MessageDescriptor<HostMessage>[] = [
  message<DescribeRequest>('describe', { id: 'integer', spec: 'object', inputShape: 'array', numClasses: 'integer', backend: 'object?' }),
  // The spec's own fields are checked by the trainer (checkRunSpec), which ends the run saying which is wrong.
  message<TrainRequest>('train', { id: 'integer', spec: 'object' }),
  message<StopRequest>('stop'),
  message<ProbeRequest>('probe', { id: 'integer', setup: 'object', trial: 'object' }),
  message<PrepareTorchrunRequest>('prepare-torchrun', { id: 'integer', spec: 'object', initialModel: 'string' }),
  message<EvaluateRequest>('evaluate', { id: 'integer', modelPath: 'string', classNames: 'array', files: 'array', imageSize: 'array?', channels: 'integer?', batchSize: 'integer?', backend: 'string?', workspaceFolder: 'string?' }),
];

/** What the host accepts from the trainer. */
export const TRAINER_MESSAGES: readonly MessageDescriptor<TrainerMessage>[] = [
  message<ReadyMessage>('ready', { pid: 'integer' }),
  message<DescribedMessage>('described', { id: 'integer', description: 'object', backend: 'object?' }),
  message<ErrorMessage>('error', { id: 'integer?', kind: 'string', message: 'string' }),
  message<ProbeResultMessage>('probe-result', { id: 'integer', result: 'object' }),
  message<EvaluatedMessage>('evaluated', { id: 'integer', result: 'object' }),
  message<PreparedMessage>('prepared', { id: 'integer', prepared: 'object' }),
  message<EvaluationEvent>('evaluation', { time: 'string', result: 'object' }),
  message<BackendEvent>('backend', { name: 'string', skipped: 'array' }),
  message<LogEvent>('log', { level: 'string', message: 'string' }),
  message<RunStartEvent>('run-start', { time: 'string', runDir: 'string', backend: 'string', plan: 'object', stepsPerEpoch: 'integer', trainImages: 'integer', validationImages: 'integer', params: 'integer' }),
  message<BatchEvent>('batch', { epoch: 'integer', step: 'integer', stepsPerEpoch: 'integer', globalStep: 'integer', loss: 'number|null', accuracy: 'number|null', learningRate: 'number', imagesPerSec: 'number', stepMs: 'number', dataWaitMs: 'number', tensorBytes: 'number', peakTensorBytes: 'number?', wasmHeapBytes: 'number?', rssBytes: 'number?', etaSec: 'number', etaValidationSec: 'number?' }),
  message<EpochEvent>('epoch', { epoch: 'integer', loss: 'number|null', accuracy: 'number|null', durationMs: 'number', validationMs: 'number?', savedModel: 'string' }),
  message<BatchGrowthEvent>('batch-growth', { time: 'string', epoch: 'integer', globalStep: 'integer', from: 'integer', to: 'integer', learningRate: 'number', bSimple: 'number', message: 'string' }),
  message<SkippedFileEvent>('skipped-file', { path: 'string', reason: 'string' }),
  message<RunEndEvent>('run-end', { time: 'string', status: 'string', message: 'string?', suggestedBatchSize: 'integer?', error: 'string?', divergedAtStep: 'integer?' }),
];

export function parseHostMessage(raw: unknown): Parsed<HostMessage> {
  return parseMessage(raw, HOST_MESSAGES, PROTOCOL_VERSION);
}

export function parseTrainerMessage(raw: unknown): Parsed<TrainerMessage> {
  return parseMessage(raw, TRAINER_MESSAGES, PROTOCOL_VERSION);
}
