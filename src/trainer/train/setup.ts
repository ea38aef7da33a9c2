/**
 * What a run sets up before it reads data: its context (events, hooks, the GPU poller) and exactly
 * the backend its RunSpec names (or a clear failure: never another backend's memory model).
 */
import { execFile } from 'node:child_process';
import type { RunSetup } from '../../core/shared/run-spec';
import { PROTOCOL_VERSION, type BackendName, type LogEvent, type RunEndEvent, type TrainEvent } from '../../core/shared/protocol';
import type { Head } from '../../core/shared/head';
import { initBackend } from '../backend';
import { BadInputError } from '../errors';
import type { tf } from '../tf';
import type { RunMemory } from './memory-limit';
import type { RunFiles } from './run-files';

/** Seams for tests and benchmarks that run the trainer in-process (the child's faults come from the RunSpec's `test`). */
export interface RunHooks {
  /** Called before each optimizer step (1-based global step); throw to inject a failure. */
  beforeStep?: (globalStep: number, model: tf.LayersModel) => void;
  /** Options passed to the input pipeline (e.g. prefetch depth). */
  pipeline?: { prefetchBatches?: number; concurrency?: number };
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
  /** Consecutive non-finite losses tolerated (the spec's callbacks.nanPatience). */
  nanPatience: number;
  /** Live tensor bytes, tracked once the backend is set up: each step's peak (batch events). */
  memory?: RunMemory;
}

export function now(): string {
  return new Date().toISOString();
}

export const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

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

/** Initialises exactly the spec's backend, looking for its package where the spec says (as the probe and the description did). */
export async function setupBackend(backend: RunSetup['backend'], ctx: RunContext): Promise<BackendName> {
  const { name, ...where } = backend;
  let r;
  try {
    r = await initBackend(name, where);
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).replace(/^backend '[^']+' is not available: /, '');
    throw new BadInputError(`The plan was made for the ${name} backend, which cannot be loaded here: ${reason}. Nothing was trained on another backend (its memory is not the plan's); plan again (Suggest), or set "backend" in the config.`);
  }
  ctx.setBackend(r.name);
  ctx.emit({ v: PROTOCOL_VERSION, type: 'backend', name: r.name, skipped: r.skipped });
  if (r.from) ctx.log('info', `backend ${r.name}: @tensorflow/tfjs-node loaded from ${r.from}`);
  if (r.name === 'tensorflow-gpu') ctx.gpu.start();
  return r.name;
}
