/**
 * Worker threads that decode images, so decoding uses every core and never waits for the training
 * thread (busy in tfjs between steps). One pool per process; its workers are unref'd (they never
 * keep a process alive) and end after IDLE_MS without work.
 *
 * Requests are grouped: the decodes asked for in one synchronous burst (the pipeline launches a
 * window of images at once) go out as one message per worker, not one per image. If no worker can
 * start (no worker file, e.g. an unusual bundle) or one dies, images are decoded in this thread.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { endWorkers, startWorker } from '../../core/workers';
import { decodeImage, SkipFileError, type DecodeOptions } from './decode';

export interface DecodeRequest {
  id: number;
  jobs: { path: string; opts: DecodeOptions }[];
}

/** Pixels, or why the file was skipped (SkipFileError), or another error's message. */
export interface DecodeResult {
  px?: Uint8Array;
  skip?: string;
  error?: string;
}

export interface DecodeResponse {
  id: number;
  results: DecodeResult[];
}

/** What a worker posts once it has loaded (before that, it gets no work). */
export interface DecodeReady {
  ready: true;
}

interface Job {
  path: string;
  opts: DecodeOptions;
  resolve: (px: Uint8Array) => void;
  reject: (e: Error) => void;
}

const IDLE_MS = 5_000;
/** Images per message at most (keeps every worker busy when a burst is small). */
const MAX_CHUNK = 16;

let shared: DecodePool | undefined;

export class DecodePool {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly ready: boolean[] = [];
  private readonly pending = new Map<number, { jobs: Job[]; worker: number }>();
  private queue: Job[] = [];
  private flushing = false;
  private nextId = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private dead = false;

  private constructor(count: number) {
    for (let i = 0; i < count; i++) {
      let w: Worker | undefined;
      try {
        w = startWorker(__dirname, 'decode-worker');
      } catch {
        w = undefined;
      }
      if (!w) break;
      w.unref();
      const index = i;
      w.on('message', (m: DecodeResponse | DecodeReady) => ('ready' in m ? this.started(index) : this.answer(m)));
      w.on('error', () => this.fail());
      w.on('exit', () => this.fail());
      this.workers.push(w);
      this.load.push(0);
      this.ready.push(false);
    }
    if (this.workers.length === 0) this.dead = true;
  }

  /** The process's pool (one worker per core, at most 4); starting it early hides the workers' start-up. */
  static shared(): DecodePool {
    if (!shared || shared.dead) shared = new DecodePool(Math.min(4, availableParallelism()));
    return shared;
  }

  /** Live workers (0 when decoding happens in this thread). */
  get size(): number {
    return this.dead ? 0 : this.workers.length;
  }

  decode(path: string, opts: DecodeOptions): Promise<Uint8Array> {
    if (this.dead) return decodeImage(path, opts);
    return new Promise<Uint8Array>((resolve, reject) => {
      if (this.queue.length === 0 && this.pending.size === 0) this.hold(true);
      this.queue.push({ path, opts, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  private started(index: number): void {
    this.ready[index] = true;
    if (this.queue.length) this.flush();
  }

  /**
   * Sends the queued jobs, in chunks, to the least-loaded of the workers that have started (a
   * worker still loading, ~0.3 s from the TypeScript sources, would hold its share back).
   */
  private flush(): void {
    this.flushing = false;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.dead) return this.decodeHere(this.queue.splice(0));
    const live = this.workers.map((_, i) => i).filter((i) => this.ready[i]);
    if (live.length === 0) return; // sent when the first worker reports ready
    const jobs = this.queue.splice(0);
    const chunk = Math.max(1, Math.min(MAX_CHUNK, Math.ceil(jobs.length / live.length)));
    for (let i = 0; i < jobs.length; i += chunk) {
      const part = jobs.slice(i, i + chunk);
      const w = live.reduce((best, j) => (this.load[j]! < this.load[best]! ? j : best), live[0]!);
      const id = this.nextId++;
      this.pending.set(id, { jobs: part, worker: w });
      this.load[w]! += part.length;
      const req: DecodeRequest = { id, jobs: part.map((j) => ({ path: j.path, opts: j.opts })) };
      this.workers[w]!.postMessage(req);
    }
  }

  private answer(m: DecodeResponse): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    this.load[p.worker]! -= p.jobs.length;
    p.jobs.forEach((job, i) => settle(job, m.results[i] ?? { error: 'no answer from the decode worker' }));
    if (this.pending.size === 0 && this.queue.length === 0) {
      this.hold(false);
      this.idleTimer = setTimeout(() => this.terminate(), IDLE_MS);
      this.idleTimer.unref();
    }
  }

  /** Workers keep the process alive only while images are waiting for them. */
  private hold(on: boolean): void {
    for (const w of this.workers) {
      if (on) w.ref();
      else w.unref();
    }
  }

  private decodeHere(jobs: Job[]): void {
    for (const j of jobs) decodeImage(j.path, j.opts).then(j.resolve, j.reject);
  }

  /** A worker failed or exited: decode the waiting images here and stop using workers. */
  private fail(): void {
    if (this.dead) return;
    this.terminate();
    const waiting = [...this.pending.values()].flatMap((p) => p.jobs);
    this.pending.clear();
    this.decodeHere(waiting);
  }

  private terminate(): void {
    this.dead = true;
    if (shared === this) shared = undefined;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    endWorkers(this.workers);
  }
}

function settle(job: Job, r: DecodeResult): void {
  if (r.px) job.resolve(r.px);
  else if (r.skip !== undefined) job.reject(new SkipFileError(r.skip));
  else job.reject(new Error(r.error ?? 'decode failed'));
}
