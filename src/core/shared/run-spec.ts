/**
 * The RunSpec: everything a training run (or, without its plan, a probe trial) needs, resolved on
 * the host in one place (core/planning/run-spec.ts) and carried by the train request alone. The trainer
 * validates it (`checkRunSpec`) and executes it without deciding anything again: it initialises
 * exactly `backend.name` from `backend`'s package locations (or ends the run saying why not), reads
 * the data as `data` says, builds `model`, and trains at `plan`'s numbers within `limits`.
 *
 * Sections for what other parts add: `callbacks` (what runs at step and epoch ends: today the
 * non-finite-loss guard; checkpoint, earlyStopping, lrSchedule and resume belong here), `backend`
 * (an engine other than the tfjs trainer, e.g. torchrun, belongs beside it), `test` (fault
 * injection: only tests set it, read from their environment by the entry points). Browser-safe.
 */
import type { OptimizerName } from './model';
import type { TrainingPlan } from './plan';
import { BACKEND_NAMES, type BackendName } from './constants';

export const RUN_SPEC_VERSION = 1;

/** Where the trainer looks for a backend's package, the same for a run, a probe trial and a model description. */
export interface BackendLocation {
  /** The user's workspace folder: its node_modules is searched first for tfjs-node(-gpu). */
  workspaceFolder?: string;
  /** The batchAdvisor.tfjsNodePath setting (a folder holding node_modules, its node_modules or the package folder). */
  tfjsNodePath?: string;
}

export interface RunData {
  /** The dataset folder (Keras layout: one sub-folder per class). */
  dataset: string;
  validationSplit: number;
  seed: number;
  /** [height, width] */
  imageSize: [number, number];
  channels: 1 | 3 | 4;
}

export interface RunModel {
  /** Zoo name or a tfjs Layers model.json path. */
  model: string;
  widthMultiplier: number;
  optimizer: OptimizerName;
}

export interface RunLimits {
  /** Stop after this many optimizer steps in total (smoke runs, benchmarks). */
  maxSteps?: number;
}

export interface RunCallbacks {
  /** Consecutive optimizer steps with a non-finite loss tolerated before the run ends as diverged. */
  nanPatience: number;
  /** Continue a run folder's training (config `resume`, `train --resume`): absent = a new run. */
  resume?: RunResume;
}

/** The metrics of one finished epoch, as its `epoch` event recorded them. */
export interface ResumeEpoch {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
}

/**
 * Where a resumed run continues (core/run-folder/resume.ts reads it from the run folder): the model
 * and optimizer state saved at the end of `epoch` (`<runDir>/model/`), the optimizer steps taken by
 * then, the batch the run was at (batch growth may have grown it) and the finished epochs' metrics
 * (early stopping and the best checkpoint continue from them).
 */
export interface RunResume {
  /** The last finished (saved) epoch; training continues at epoch + 1. */
  epoch: number;
  /** Optimizer steps taken up to the end of that epoch. */
  globalStep: number;
  /** The micro-batch in effect after that epoch (differs from the plan's when batch growth grew it). */
  microBatchSize: number;
  /** The learning rate relative to the plan's after batch growth (1 without). */
  lrScale: number;
  history: ResumeEpoch[];
}

/** Fault injection, set only by tests (the entry points read it from their environment). */
export interface RunTest {
  /** "oom@3" (an OOM error before step 3), "nan@2" (NaN weights), "spin@3" (a step that never ends), "delay@50" (every step 50 ms longer). */
  fault?: string;
  /** End the run as out of memory when its live tensors peak above this many bytes, as on a device of that size. */
  memoryLimitBytes?: number;
}

/** What a probe trial needs: the run's data, model and backend, without a plan. */
export interface RunSetup {
  data: RunData;
  model: RunModel;
  /** The backend resolved before planning (the plan is made for it) and where its package lives. */
  backend: BackendLocation & { name: BackendName };
  test?: RunTest;
}

/** How a torchrun engine run is launched (src/core/torchrun): processes on each node, and the nodes. */
export interface TorchrunLaunch {
  name: 'torchrun';
  /** Processes (devices) on this node. */
  nprocPerNode: number;
  /** Nodes in all (1: --standalone on this machine). */
  nnodes: number;
  /** This node's rank (0 … nnodes − 1), with several nodes. */
  nodeRank?: number;
  /** host:port of the rendezvous (node 0), with several nodes. */
  rdzvEndpoint?: string;
}

export interface RunSpec extends RunSetup {
  v: typeof RUN_SPEC_VERSION;
  /** The run's name (config name). */
  name: string;
  /** The run folder, already created by the host, holding config.json and plan.json. */
  runDir: string;
  plan: TrainingPlan;
  limits: RunLimits;
  callbacks: RunCallbacks;
  /** The engine that trains it when not the tfjs trainer: PyTorch DDP through torchrun. */
  engine?: TorchrunLaunch;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const positiveInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1;

/** Why a RunSetup is not valid (the field named), or undefined. */
export function runSetupProblem(raw: unknown): string | undefined {
  if (!isObject(raw)) return 'not an object';
  const { data, model, backend, test } = raw;
  if (!isObject(data)) return 'data must be an object';
  if (typeof data['dataset'] !== 'string' || !data['dataset']) return 'data.dataset must be a folder path';
  const size = data['imageSize'];
  if (!Array.isArray(size) || size.length !== 2 || !size.every(positiveInt)) return `data.imageSize must be [height, width] in whole pixels; got ${JSON.stringify(size)}`;
  if (![1, 3, 4].includes(data['channels'] as number)) return `data.channels must be 1, 3 or 4; got ${String(data['channels'])}`;
  const split = data['validationSplit'] as number;
  if (!(typeof split === 'number' && split >= 0 && split < 1)) return `data.validationSplit must be in [0, 1); got ${String(split)}`;
  if (!Number.isInteger(data['seed'])) return `data.seed must be an integer; got ${String(data['seed'])}`;
  if (!isObject(model) || typeof model['model'] !== 'string' || !model['model']) return 'model.model must be a zoo name or a model.json path';
  if (!(typeof model['widthMultiplier'] === 'number' && model['widthMultiplier'] > 0)) return `model.widthMultiplier must be positive; got ${String(model['widthMultiplier'])}`;
  if (typeof model['optimizer'] !== 'string') return 'model.optimizer must be an optimizer name';
  if (!isObject(backend) || !(BACKEND_NAMES as readonly unknown[]).includes(backend['name'])) return `backend.name must be one of ${BACKEND_NAMES.join(', ')} (the backend the plan was made for); got ${JSON.stringify(isObject(backend) ? backend['name'] : backend)}`;
  for (const k of ['workspaceFolder', 'tfjsNodePath'] as const) if (backend[k] !== undefined && typeof backend[k] !== 'string') return `backend.${k} must be a path`;
  if (test !== undefined && !isObject(test)) return 'test must be an object';
  return undefined;
}

/** Why a plan's numbers cannot be trained at (the field named), or undefined. */
export function planProblem(plan: unknown): string | undefined {
  if (!isObject(plan)) return 'plan must be an object';
  const p = plan as unknown as TrainingPlan;
  for (const k of ['microBatchSize', 'accumulationSteps', 'epochs', 'validationBatchSize'] as const) {
    if (!positiveInt(p[k])) return `plan.${k} must be a positive integer; got ${String(p[k])}`;
  }
  if (!(p.learningRate?.value > 0)) return `plan.learningRate.value must be positive; got ${String(p.learningRate?.value)}`;
  if (!(Number.isInteger(p.warmup?.steps) && p.warmup.steps >= 0)) return `plan.warmup.steps must be a whole number ≥ 0; got ${String(p.warmup?.steps)}`;
  if (p.loading?.strategy !== 'preload' && p.loading?.strategy !== 'stream') return 'plan.loading.strategy must be "preload" or "stream"';
  return undefined;
}

/** The RunSpec, or why it is not one: every field a run reads is checked, so a bad spec ends the run with a clear message before anything loads. */
function isResume(r: unknown): r is RunResume {
  const whole = (v: unknown, min: number): boolean => Number.isInteger(v) && (v as number) >= min;
  return isObject(r) && whole(r['epoch'], 1) && whole(r['globalStep'], 0) && whole(r['microBatchSize'], 1) && typeof r['lrScale'] === 'number' && r['lrScale'] > 0 && Array.isArray(r['history']);
}

export function checkRunSpec(raw: unknown): Checked<RunSpec> {
  const fail = (why: string): Checked<RunSpec> => ({ ok: false, error: `run spec: ${why}` });
  if (!isObject(raw)) return fail('not an object');
  if (raw['v'] !== RUN_SPEC_VERSION) return fail(`version ${JSON.stringify(raw['v'])}, expected ${RUN_SPEC_VERSION}`);
  if (typeof raw['runDir'] !== 'string' || !raw['runDir']) return fail('runDir must be the run folder');
  const problem = runSetupProblem(raw) ?? planProblem(raw['plan']);
  if (problem) return fail(problem);
  const limits = raw['limits'];
  if (!isObject(limits) || (limits['maxSteps'] !== undefined && !(Number.isInteger(limits['maxSteps']) && (limits['maxSteps'] as number) >= 0))) return fail(`limits.maxSteps must be a whole number when set; got ${JSON.stringify(isObject(limits) ? limits['maxSteps'] : limits)}`);
  const callbacks = raw['callbacks'];
  if (!isObject(callbacks) || !(Number.isInteger(callbacks['nanPatience']) && (callbacks['nanPatience'] as number) >= 0)) return fail('callbacks.nanPatience must be a whole number ≥ 0');
  const resume = callbacks['resume'];
  if (resume !== undefined && !isResume(resume)) return fail('callbacks.resume must give the epoch, globalStep, microBatchSize, lrScale and history to continue from');
  return { ok: true, value: raw as unknown as RunSpec };
}
