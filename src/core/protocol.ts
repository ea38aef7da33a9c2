/**
 * The versioned protocol between a host (the extension or the CLI) and the trainer child process.
 * Messages travel over Node's IPC channel (`child_process.fork` + `process.send`), never stdout:
 * libraries print. Every message carries `v`; a host refuses a child that speaks another version.
 *
 * The training events (`batch`, `epoch`, `run-start`, `run-end`, …) are also the lines of a run's
 * `metrics.jsonl`, so a run can be replayed from its folder alone.
 */
import type { TrainConfig } from './config';
import type { ModelDescription, ModelSpec } from './model';

export const PROTOCOL_VERSION = 1;

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

// ---- host → trainer -------------------------------------------------------------------------

export interface DescribeRequest {
  v: 1;
  type: 'describe';
  id: number;
  spec: ModelSpec;
  /** [height, width, channels] */
  inputShape: [number, number, number];
  numClasses: number;
}

export interface TrainRequest {
  v: 1;
  type: 'train';
  id: number;
  config: TrainConfig;
  /** The run folder, already created by the host, holding config.json. */
  runDir: string;
  /** Resolved batch size (the host turns "auto" into a number before sending). */
  batchSize: number;
  /** Stop after this many optimizer steps in total (for smoke runs and benchmarks). */
  maxSteps?: number;
}

export interface StopRequest {
  v: 1;
  type: 'stop';
}

export type HostMessage = DescribeRequest | TrainRequest | StopRequest;

// ---- trainer → host -------------------------------------------------------------------------

export interface ReadyMessage {
  v: 1;
  type: 'ready';
  pid: number;
}

export interface BackendEvent {
  v: 1;
  type: 'backend';
  name: BackendName;
  /** Why each earlier backend in the preference order was passed over. */
  skipped: { name: BackendName; reason: string }[];
}

export interface DescribedMessage {
  v: 1;
  type: 'described';
  id: number;
  description: ModelDescription;
}

export interface LogEvent {
  v: 1;
  type: 'log';
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

export interface RunStartEvent {
  v: 1;
  type: 'run-start';
  time: string;
  runDir: string;
  backend: BackendName;
  batchSize: number;
  accumulationSteps: number;
  epochs: number;
  stepsPerEpoch: number;
  trainImages: number;
  validationImages: number;
  loading: 'preload' | 'stream';
  params: number;
}

export interface BatchEvent {
  v: 1;
  type: 'batch';
  time: string;
  epoch: number;
  /** Optimizer step within the epoch, 1-based. */
  step: number;
  stepsPerEpoch: number;
  /** Optimizer steps since the start of the run. */
  globalStep: number;
  loss: number;
  accuracy: number;
  imagesPerSec: number;
  stepMs: number;
  /** Time the step waited for the input pipeline. */
  dataWaitMs: number;
  /** Live tfjs tensor bytes (tf.memory().numBytes). */
  tensorBytes: number;
  /** With a GPU: used/total from nvidia-smi. */
  gpuMemoryUsedBytes?: number;
  gpuMemoryTotalBytes?: number;
  /** Seconds to the end of the run, from the average step time so far. */
  etaSec: number;
}

export interface EpochEvent {
  v: 1;
  type: 'epoch';
  time: string;
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
  durationMs: number;
  /** Path of the model saved at the end of this epoch. */
  savedModel: string;
}

export interface SkippedFileEvent {
  v: 1;
  type: 'skipped-file';
  path: string;
  reason: string;
}

export type RunEndStatus = 'completed' | 'stopped' | 'failed';

export interface RunEndEvent {
  v: 1;
  type: 'run-end';
  time: string;
  status: RunEndStatus;
  /** For a failure: what happened, in words. */
  message?: string;
  /** For an out-of-memory failure: a batch size that should fit. */
  suggestedBatchSize?: number;
  error?: TrainerErrorKind;
}

export type TrainEvent = RunStartEvent | BatchEvent | EpochEvent | SkippedFileEvent | RunEndEvent | BackendEvent | LogEvent;

export type TrainerErrorKind = 'oom' | 'bad-input' | 'internal';

export interface ErrorMessage {
  v: 1;
  type: 'error';
  /** The request that failed; absent for a failure outside any request. */
  id?: number;
  kind: TrainerErrorKind;
  message: string;
}

export type TrainerMessage = ReadyMessage | DescribedMessage | ErrorMessage | TrainEvent;

export function isTrainerMessage(m: unknown): m is TrainerMessage {
  return typeof m === 'object' && m !== null && (m as { v?: unknown }).v === PROTOCOL_VERSION && typeof (m as { type?: unknown }).type === 'string';
}
