/**
 * Worker threads that probe file batches so a scan uses a second core.
 *
 * One pool is shared by all scans in the process and kept for a few seconds after the last one
 * (a worker costs ~30 ms to start from the bundle, ~250 ms from TypeScript sources under tsx), so
 * repeated scans don't pay that again. Idle workers are unref'd: they never keep a process alive.
 * If a worker cannot start or dies, its batches are probed in the calling thread instead, so a
 * scan's result never depends on the pool.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { endWorkers, startWorker } from '../workers';
import { Prober, probeBatch, type BatchResult } from './probe';

interface Pending {
  paths: string[];
  resolve: (r: BatchResult) => void;
}

/** Claim slots shared with the workers (a ring: far more than the batches ever in flight). */
export const CLAIM_SLOTS = 4096;

/** What a worker gets at start: the claim slots, one Int32 per batch id (mod CLAIM_SLOTS). */
export interface ScanWorkerData {
  claims: SharedArrayBuffer;
}

/** A request to a worker: probe `paths` unless the batch was taken back (claims[slot] ≠ 0). */
export interface ScanRequest {
  id: number;
  slot: number;
  paths: string[];
}

/** A worker's answer: the result, or `stolen` when the sender took the batch back first. */
export interface ScanResponse {
  id: number;
  result?: BatchResult;
  stolen?: true;
}

/** How long an unused pool waits before its workers are terminated. */
const IDLE_MS = 10_000;

let shared: ScanPool | undefined;

export class ScanPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  /** 0 = not started, 1 = a worker took it, 2 = taken back by the sender. */
  private readonly claims = new Int32Array(new SharedArrayBuffer(4 * CLAIM_SLOTS));
  private nextId = 0;
  private fallback: Prober | undefined;
  private dead = false;
  private users = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  private constructor(count: number) {
    for (let i = 0; i < count; i++) {
      let w: Worker | undefined;
      try {
        w = startWorker(__dirname, 'scan-worker', { claims: this.claims.buffer as SharedArrayBuffer } satisfies ScanWorkerData);
      } catch {
        w = undefined;
      }
      if (!w) break;
      w.on('message', (m: ScanResponse) => {
        const p = this.pending.get(m.id);
        if (!p || !m.result) return;
        this.pending.delete(m.id);
        p.resolve(m.result);
      });
      w.on('error', () => this.fail());
      w.on('exit', () => this.fail());
      this.workers.push(w);
    }
    if (this.workers.length === 0) this.dead = true;
  }

  /**
   * Workers to use by default: one when the machine has two or more CPUs. Measured on 2 shared
   * CPUs (bench/scan.ts): ~1.6× faster wall on a quiet machine, still faster under heavy load
   * (idle batches are taken back, see takeBack), at ~5-10% more CPU time in all.
   */
  static defaultCount(): number {
    return availableParallelism() >= 2 ? 1 : 0;
  }

  /** The shared pool with at least `count` workers (started if needed); pair with `release()`. */
  static acquire(count: number): ScanPool {
    if (!shared || shared.dead || shared.workers.length < count) {
      // A smaller pool still in use by another scan ends by itself once released.
      if (shared && shared.users === 0) shared.terminate();
      shared = new ScanPool(count);
    }
    const pool = shared;
    pool.users++;
    if (pool.idleTimer) clearTimeout(pool.idleTimer);
    pool.idleTimer = undefined;
    for (const w of pool.workers) w.ref();
    return pool;
  }

  /** Live workers (0 once the pool has failed). */
  get size(): number {
    return this.dead ? 0 : this.workers.length;
  }

  /** Batches sent and not yet answered. */
  get pendingCount(): number {
    return this.pending.size;
  }

  probe(paths: string[]): Promise<BatchResult> {
    return this.submit(paths).result;
  }

  /** Sends a batch to a worker; `id` can be passed to `takeBack`. */
  submit(paths: string[]): { id: number; result: Promise<BatchResult> } {
    const id = this.nextId++;
    const result = new Promise<BatchResult>((resolve) => {
      const w = this.workers[id % this.workers.length];
      if (this.dead || !w) {
        resolve(this.probeHere(paths));
        return;
      }
      const slot = id % CLAIM_SLOTS;
      Atomics.store(this.claims, slot, 0);
      this.pending.set(id, { paths, resolve });
      const req: ScanRequest = { id, slot, paths };
      w.postMessage(req);
    });
    return { id, result };
  }

  /**
   * Takes batch `id` back if no worker has started it (a worker may be descheduled on a busy
   * machine): true → the caller probes it and its `result` promise never settles.
   */
  takeBack(id: number): boolean {
    if (!this.pending.has(id)) return false;
    if (Atomics.compareExchange(this.claims, id % CLAIM_SLOTS, 0, 2) !== 0) return false;
    this.pending.delete(id);
    return true;
  }

  /** One scan is done with the pool: when none is left, workers stop holding the process and end after IDLE_MS. */
  release(): void {
    this.users = Math.max(0, this.users - 1);
    if (this.users > 0 || this.dead) return;
    for (const w of this.workers) w.unref();
    this.idleTimer = setTimeout(() => this.terminate(), IDLE_MS);
    this.idleTimer.unref();
  }

  private probeHere(paths: string[]): BatchResult {
    this.fallback ??= new Prober();
    return probeBatch(this.fallback, paths);
  }

  /** A worker failed or exited: finish the waiting batches here and stop using workers. */
  private fail(): void {
    if (this.dead) return;
    this.terminate();
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.resolve(this.probeHere(p.paths));
    }
  }

  private terminate(): void {
    this.dead = true;
    if (shared === this) shared = undefined;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    endWorkers(this.workers);
  }
}
