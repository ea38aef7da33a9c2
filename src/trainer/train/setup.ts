/**
 * What a run sets up before it reads data: its context (events, hooks, the GPU poller), the plan's
 * numbers checked, and the backend initialised.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import type { TrainConfig } from '../../core/config';
import type { TrainingPlan } from '../../core/shared/plan';
import type { BackendName, LogEvent, RunEndEvent, TrainEvent } from '../../core/shared/protocol';
import type { Head } from '../../core/shared/head';
import { initBackend } from '../backend';
import { BadInputError } from '../errors';
import type { tf } from '../tf';
import type { RunFiles } from './run-files';

/** What the entry point (main.ts) passes in: test seams, and settings that reach the child through its environment. */
export interface RunHooks {
  /** Folder of a user-installed @tensorflow/tfjs-node(-gpu) (the batchAdvisor.tfjsNodePath setting). */
  tfjsNodePath?: string;
  /** Called before each optimizer step (1-based global step); throw to inject a failure. */
  beforeStep?: (globalStep: number, model: tf.LayersModel) => void;
  /** Options passed to the input pipeline (e.g. prefetch depth). */
  pipeline?: { prefetchBatches?: number; concurrency?: number };
  /** End the run as out of memory when its live tensors peak above this (memory-limit.ts). */
  memoryLimitBytes?: number;
}

export interface RunContext {
  emit: (ev: TrainEvent) => void;
  log: (level: LogEvent['level'], message: string) => void;
  end: (e: Omit<RunEndEvent, 'v' | 'type' | 'time'>) => void;
  files: RunFiles;
  signal: AbortSignal;
  hooks: RunHooks;
  gpu: GpuMemoryPoller;
  setModel: (m: tf.LayersModel, o: tf.Optimizer, h: Head) => void;
  setBackend: (b: BackendName) => void;
  /** Consecutive non-finite losses tolerated (config.nanPatience, default 0). */
  nanPatience: number;
}

export function now(): string {
  return new Date().toISOString();
}

export const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The workspace folder of a run folder `<ws>/.batch-advisor/runs/<id>`. */
function workspaceOf(runDir: string): string {
  return resolve(runDir, '..', '..', '..');
}

/** Polls nvidia-smi now and then (tensorflow-gpu only); the latest reading is attached to batch events. */
export class GpuMemoryPoller {
  reading: { used: number; total: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  start(): void {
    const poll = (): void => {
      execFile('nvidia-smi', ['--query-gpu=memory.used,memory.total', '--format=csv,noheader,nounits'], { timeout: 5000 }, (err, stdout) => {
        if (err) return;
        const [used, total] = (stdout.split('\n')[0] ?? '').split(',').map((s) => Number(s.trim()) * 2 ** 20);
        if (used !== undefined && total !== undefined && Number.isFinite(used) && Number.isFinite(total)) this.reading = { used, total };
      });
    };
    poll();
    this.timer = setInterval(poll, 5000);
    this.timer.unref();
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** Checks the plan's numbers before anything is loaded: a malformed plan is bad input, not a crash. */
export function checkPlan(plan: TrainingPlan | undefined): TrainingPlan {
  if (!plan || typeof plan !== 'object') throw new BadInputError('the train request carries no plan');
  const positive = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1;
  if (!positive(plan.microBatchSize)) throw new BadInputError(`plan: microBatchSize must be a positive integer; got ${String(plan.microBatchSize)}`);
  if (!positive(plan.accumulationSteps)) throw new BadInputError(`plan: accumulationSteps must be a positive integer; got ${String(plan.accumulationSteps)}`);
  if (!positive(plan.epochs)) throw new BadInputError(`plan: epochs must be a positive integer; got ${String(plan.epochs)}`);
  if (!positive(plan.validationBatchSize)) throw new BadInputError(`plan: validationBatchSize must be a positive integer; got ${String(plan.validationBatchSize)}`);
  if (!(plan.learningRate?.value > 0)) throw new BadInputError(`plan: learningRate.value must be positive; got ${String(plan.learningRate?.value)}`);
  if (!(Number.isInteger(plan.warmup?.steps) && plan.warmup.steps >= 0)) throw new BadInputError(`plan: warmup.steps must be a whole number ≥ 0; got ${String(plan.warmup?.steps)}`);
  if (plan.loading?.strategy !== 'preload' && plan.loading?.strategy !== 'stream') throw new BadInputError(`plan: loading.strategy must be "preload" or "stream"`);
  return plan;
}

export async function setupBackend(config: TrainConfig, runDir: string, ctx: RunContext): Promise<BackendName> {
  try {
    const { tfjsNodePath } = ctx.hooks;
    const r = await initBackend(config.backend, { workspaceFolder: workspaceOf(runDir), ...(tfjsNodePath ? { tfjsNodePath } : {}) });
    ctx.setBackend(r.name);
    ctx.emit({ v: 2, type: 'backend', name: r.name, skipped: r.skipped });
    if (r.from) ctx.log('info', `backend ${r.name}: @tensorflow/tfjs-node loaded from ${r.from}`);
    if (r.name === 'tensorflow-gpu') ctx.gpu.start();
    return r.name;
  } catch (e) {
    throw new BadInputError(e instanceof Error ? e.message : String(e));
  }
}
