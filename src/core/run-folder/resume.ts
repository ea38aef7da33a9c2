/**
 * Resuming a run (config `resume`, `batch-advisor train --resume <run folder>`, the runs view's
 * Resume Run): the run folder says where its training stands, and the run continues there — its
 * recorded config and plan (nothing is planned again), the model and optimizer state saved at its
 * last finished epoch, the next epoch, its optimizer step count, and its metrics.jsonl appended to.
 *
 * What cannot be resumed is bad input with a message that says why and what to do: not a run
 * folder, no epoch finished yet, no saved model, every epoch already trained (unless more are asked).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { TrainConfig } from '../config';
import type { TrainingPlan } from '../shared/plan';
import type { EpochEvent, TrainEvent } from '../shared/protocol';
import type { ResumeEpoch, RunResume } from '../shared/run-spec';
import { parseMetrics, RUN_FILES } from './runs';

/** The optimizer's state (moments, iteration count) saved beside the model at each epoch end. */
export const OPTIMIZER_FILES = { specs: 'optimizer.json', weights: 'optimizer.bin' } as const;

/** The run folder cannot be resumed; the message names it and says what to do. */
export class ResumeError extends Error {
  override readonly name = 'ResumeError';
  /** Set when the only problem is that every epoch is trained: how many (more epochs would resume it). */
  constructor(
    message: string,
    readonly trainedEpochs?: number,
  ) {
    super(message);
  }
}

export interface ResumePoint {
  runDir: string;
  /** The run's recorded config (config.json). */
  config: TrainConfig;
  /** The run's plan (plan.json), with `epochs` raised when more were asked for. */
  plan: TrainingPlan;
  resume: RunResume;
}

function readJson<T>(path: string, what: string, dir: string): T {
  if (!existsSync(path)) throw new ResumeError(`${dir}: not a run folder that can be resumed (no ${what})`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new ResumeError(`${path}: cannot be read (${(e as Error).message}); the run cannot be resumed`);
  }
}

/** Where the events say training stands: the last finished epoch, the steps up to it, the batch then. */
export function resumeState(events: readonly TrainEvent[], plan: Pick<TrainingPlan, 'microBatchSize' | 'learningRate'>): RunResume | undefined {
  const epochs = new Map<number, EpochEvent>();
  for (const e of events) if (e.type === 'epoch') epochs.set(e.epoch, e);
  if (epochs.size === 0) return undefined;
  const last = Math.max(...epochs.keys());
  let globalStep = 0;
  let microBatchSize = plan.microBatchSize;
  let lrScale = 1;
  for (const e of events) {
    if (e.type === 'batch' && e.epoch <= last) globalStep = Math.max(globalStep, e.globalStep);
    if (e.type === 'batch-growth' && e.epoch <= last + 1) {
      microBatchSize = e.to;
      lrScale = e.learningRate / plan.learningRate.value;
    }
  }
  const history: ResumeEpoch[] = [...epochs.values()]
    .filter((e) => e.epoch <= last)
    .sort((a, b) => a.epoch - b.epoch)
    .map((e) => ({ epoch: e.epoch, loss: e.loss, accuracy: e.accuracy, valLoss: e.valLoss, valAccuracy: e.valAccuracy }));
  return { epoch: last, globalStep, microBatchSize, lrScale, history };
}

/** A run folder's recorded config (config.json: the resolved config the run trained with). */
export function readRunConfig(dir: string): TrainConfig {
  const runDir = resolve(dir);
  if (!existsSync(runDir)) throw new ResumeError(`${dir}: no such run folder`);
  const raw = readJson<Omit<TrainConfig, 'explicit'>>(join(runDir, RUN_FILES.config), RUN_FILES.config, dir);
  return { ...raw, explicit: [] };
}

/** The workspace a run folder belongs to (`<workspace>/.batch-advisor/runs/<run>`). */
export function runWorkspace(runDir: string): string {
  return dirname(dirname(dirname(resolve(runDir))));
}

/**
 * Reads a run folder for resuming. `epochs`: train to this many epochs in all (more than the run
 * has finished); without it the run continues to its plan's epochs.
 */
export function readResumePoint(dir: string, opts: { epochs?: number } = {}): ResumePoint {
  const runDir = resolve(dir);
  const raw = readRunConfig(dir);
  const plan = readJson<TrainingPlan>(join(runDir, RUN_FILES.plan), RUN_FILES.plan, dir);
  const metrics = join(runDir, RUN_FILES.metrics);
  const events = existsSync(metrics) ? parseMetrics(readFileSync(metrics, 'utf8')).events : [];
  const resume = resumeState(events, plan);
  if (!resume) throw new ResumeError(`${dir}: no epoch of this run finished, so there is nothing to resume from; start a new run instead`);
  if (!existsSync(join(runDir, RUN_FILES.model, 'model.json'))) throw new ResumeError(`${dir}: the model saved at epoch ${resume.epoch} (${RUN_FILES.model}/model.json) is missing; the run cannot be resumed`);
  const epochs = opts.epochs ?? plan.epochs;
  if (epochs <= resume.epoch) {
    const more = `pass more epochs (e.g. --epochs ${resume.epoch + Math.max(1, plan.epochs)}) to train it further`;
    throw new ResumeError(
      opts.epochs === undefined
        ? `${dir}: every epoch of this run (${plan.epochs}) is already trained; ${more}`
        : `${dir}: epochs ${epochs} is not more than the ${resume.epoch} already trained; ${more}`,
      resume.epoch,
    );
  }
  const config: TrainConfig = { ...raw, epochs, explicit: [] };
  const scheduleEpochs = epochs > plan.epochs ? (plan.scheduleEpochs ?? plan.epochs) : plan.scheduleEpochs;
  return { runDir, config, plan: { ...plan, epochs, ...(scheduleEpochs !== undefined ? { scheduleEpochs } : {}) }, resume };
}

/** plan.json records the epochs the resumed run trains to (the rest of the plan is unchanged). */
export function recordResumedPlan(point: ResumePoint): void {
  writeFileSync(join(point.runDir, RUN_FILES.plan), JSON.stringify(point.plan, null, 2) + '\n');
}
