/**
 * Worker threads that probe file batches so the scan uses a second core. Falls back to probing
 * in the calling thread if a worker cannot start or dies, so the scan result never depends on it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Prober, probeBatch, type BatchResult } from './probe';

interface Pending {
  paths: string[];
  resolve: (r: BatchResult) => void;
}

/** The worker entry: dist/scan-worker.js next to the bundle, or the .ts source when run under tsx. */
function startWorker(): Worker | undefined {
  const js = join(__dirname, 'scan-worker.js');
  if (existsSync(js)) return new Worker(js, { execArgv: [] });
  const ts = join(__dirname, 'scan-worker.ts');
  if (!existsSync(ts)) return undefined;
  // Running from the TypeScript sources (tests, benchmarks under tsx): load tsx's require hook in
  // the worker first. Resolved at run time, so bundles never reference tsx.
  let tsx: string;
  try {
    tsx = createRequire(__filename).resolve('tsx/cjs');
  } catch {
    return undefined;
  }
  return new Worker(`require(${JSON.stringify(tsx)}); require(${JSON.stringify(ts)});`, { eval: true, execArgv: [] });
}

export class ScanPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private fallback: Prober | undefined;
  private dead = false;

  private constructor(count: number) {
    for (let i = 0; i < count; i++) {
      try {
        const w = startWorker();
        if (!w) return;
        w.on('message', (m: { id: number; result: BatchResult }) => {
          const p = this.pending.get(m.id);
          if (!p) return;
          this.pending.delete(m.id);
          p.resolve(m.result);
        });
        w.on('error', () => this.fail());
        w.on('exit', () => this.fail());
        this.workers.push(w);
      } catch {
        this.fail();
        return;
      }
    }
  }

  /** `count` workers. */
  static create(count: number): ScanPool {
    return new ScanPool(count);
  }

  /** Workers worth starting by default: one when the machine has two or more CPUs. */
  static defaultCount(): number {
    return availableParallelism() >= 2 ? 1 : 0;
  }

  get size(): number {
    return this.dead ? 0 : this.workers.length;
  }

  /** Batches sent and not yet answered. */
  get pendingCount(): number {
    return this.pending.size;
  }

  probe(paths: string[]): Promise<BatchResult> {
    return new Promise((resolve) => {
      const id = this.nextId++;
      const w = this.workers[id % this.workers.length];
      if (this.dead || !w) {
        resolve(this.probeHere(paths));
        return;
      }
      this.pending.set(id, { paths, resolve });
      w.postMessage({ id, paths });
    });
  }

  private probeHere(paths: string[]): BatchResult {
    this.fallback ??= new Prober();
    return probeBatch(this.fallback, paths);
  }

  /** A worker failed or exited: finish its batches here and stop using workers. */
  private fail(): void {
    if (this.dead) return;
    this.dead = true;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.resolve(this.probeHere(p.paths));
    }
    this.release();
  }

  release(): void {
    this.dead = true;
    const ws = this.workers.splice(0);
    for (const w of ws) {
      w.removeAllListeners('exit');
      void w.terminate();
    }
    // Called when the scan ends (or is cancelled): nobody waits for batches still pending.
    this.pending.clear();
  }
}
