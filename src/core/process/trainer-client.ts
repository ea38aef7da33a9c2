/**
 * The host side of the trainer child process (dist/trainer.js): used by the CLI and the extension.
 *
 * It forks the trainer with an IPC channel, checks the protocol version of its `ready` message,
 * and offers `describe` (model layers without training, for the memory model) and `train`
 * (streams TrainEvents, resolves with the run-end). Child stderr/stdout become log events; a child
 * that crashes or exits mid-request turns into a rejected `describe` or a run-end 'failed'.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { ModelDescription, ModelSpec } from '../shared/model';
import type { ProbeTrialResult, ProbeTrialSpec } from '../shared/probe';
import type { RunSetup, RunSpec } from '../shared/run-spec';
import type { EvaluationResult } from '../shared/evaluation';
import {
  PROTOCOL_VERSION,
  parseTrainerMessage,
  type DescribeRequest,
  type DescribedMessage,
  type EvaluateRequest,
  type HostMessage,
  type LogEvent,
  type ReadyMessage,
  type RunEndEvent,
  type TrainEvent,
  type TrainRequest,
  type TrainerErrorKind,
  type TrainerMessage,
  type TorchrunPrepared,
} from '../shared/protocol';
import { appendRunEvent } from '../run-folder/runs';
import { isOutOfMemoryText } from '../shared/oom';

export interface TrainerClientOptions {
  /** Path of the trainer entry: dist/trainer.js, or src/trainer/main.ts (run through tsx, for tests). */
  trainerScript: string;
  /** Extra environment for the child (on top of process.env and TF_FORCE_GPU_ALLOW_GROWTH=true). */
  env?: Record<string, string>;
  /** Node flags for the child. Default: none for .js, `--import tsx` for .ts. */
  execArgv?: string[];
  /** Log lines outside a training run (and child stderr). */
  onLog?: (e: LogEvent) => void;
  /** How long to wait for the child's `ready`. Default 60 s. */
  readyTimeoutMs?: number;
  /** How long a model description may take before the child is ended. Default 120 s. */
  describeTimeoutMs?: number;
}

/** A failure of the trainer process or of one of its requests. */
export class TrainerError extends Error {
  override readonly name = 'TrainerError';
  constructor(
    message: string,
    readonly kind: TrainerErrorKind,
  ) {
    super(message);
  }
}

interface PendingDescribe {
  resolve: (d: DescribedMessage) => void;
  reject: (e: Error) => void;
}

interface ActiveTrain {
  id: number;
  runDir: string;
  onEvent: (e: TrainEvent) => void;
  resolve: (e: RunEndEvent) => void;
  ended: boolean;
}

const STDERR_KEEP = 20;

function now(): string {
  return new Date().toISOString();
}

/** tsx as resolved from the script's own folder (its repository), so the host's cwd does not matter. */
function tsxLoader(script: string): string {
  try {
    return pathToFileURL(createRequire(script).resolve('tsx')).href;
  } catch {
    return 'tsx';
  }
}

/**
 * A line of tfjs's "Hi, looks like you are running TensorFlow.js in Node.js…" banner (and its
 * ===== rules). The trainer runs tfjs in production mode (src/trainer/tf.ts), which silences it;
 * a second copy of tfjs-core (e.g. one a workspace's tfjs-node brings) may still print it.
 */
export function isTfjsBanner(line: string): boolean {
  return /^\s*={8,}\s*$/.test(line) || /looks like you are running TensorFlow\.js in Node\.js/.test(line);
}

export class TrainerClient {
  private child: ChildProcess | undefined;
  private ready: Promise<ReadyMessage> | undefined;
  private nextId = 1;
  private readonly describes = new Map<number, PendingDescribe>();
  private readonly probes = new Map<number, { resolve: (r: ProbeTrialResult) => void; reject: (e: Error) => void }>();
  private readonly evaluations = new Map<number, { resolve: (r: EvaluationResult) => void; reject: (e: Error) => void }>();
  private readonly prepares = new Map<number, { resolve: (r: TorchrunPrepared) => void; reject: (e: Error) => void }>();
  private active: ActiveTrain | undefined;
  private readonly stderrTail: string[] = [];
  private disposed = false;
  private exitInfo: string | undefined;
  private trainStarting = false;
  private stopRequested = false;

  constructor(private readonly opts: TrainerClientOptions) {}

  /** The child's pid once started. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the child (once) and resolves when it has said `ready` with our protocol version. */
  start(): Promise<ReadyMessage> {
    if (this.disposed) return Promise.reject(new TrainerError('trainer client disposed', 'internal'));
    this.ready ??= this.spawn();
    return this.ready;
  }

  private spawn(): Promise<ReadyMessage> {
    const script = this.opts.trainerScript;
    if (!existsSync(script)) return Promise.reject(new TrainerError(`trainer not found at ${script} (build with "npm run build")`, 'internal'));
    const execArgv = this.opts.execArgv ?? (/\.[cm]?ts$/.test(script) ? ['--import', tsxLoader(script)] : []);
    const child = fork(script, [], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv,
      // Not the host's working folder: every path the trainer gets is absolute, and a workspace's own
      // files there (an empty or broken package.json) must not reach Node's loader in the trainer's
      // threads (a wasm pthread that cannot start hangs the backend instead of failing).
      cwd: dirname(resolve(script)),
      // The child inherits the host's environment (PATH, CUDA's variables), plus what the host adds.
      // eslint-disable-next-line no-restricted-properties -- passed on to the child, not read here
      env: { ...process.env, TF_FORCE_GPU_ALLOW_GROWTH: 'true', ...this.opts.env },
      serialization: 'json',
      // Its own process group on POSIX: a terminal's Ctrl-C then reaches only the host, which
      // asks the trainer to stop cleanly. The trainer still exits when the IPC channel closes.
      detached: process.platform !== 'win32',
    });
    this.child = child;
    this.pipeLines(child.stderr, 'warn');
    this.pipeLines(child.stdout, 'info');

    return new Promise<ReadyMessage>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        fail(new TrainerError(`trainer did not start within ${Math.round((this.opts.readyTimeoutMs ?? 60_000) / 1000)} s`, 'internal'));
        child.kill();
      }, this.opts.readyTimeoutMs ?? 60_000);
      const fail = (e: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(e);
      };
      child.on('message', (raw: unknown) => {
        const m = raw as Partial<TrainerMessage> | null;
        if (!settled && m && typeof m === 'object' && m.type === 'ready') {
          if (m.v !== PROTOCOL_VERSION) {
            fail(new TrainerError(`trainer speaks protocol v${String(m.v)}, this host speaks v${PROTOCOL_VERSION}: rebuild so both match`, 'internal'));
            child.kill();
            return;
          }
          settled = true;
          clearTimeout(timer);
          resolve(m as ReadyMessage);
          return;
        }
        this.onMessage(raw);
      });
      child.on('error', (e) => {
        fail(new TrainerError(`trainer could not be started: ${e.message}`, 'internal'));
      });
      child.on('exit', (code, signal) => {
        this.exitInfo = signal ? `signal ${signal}` : `code ${String(code)}`;
        const tail = this.stderrTail.join('\n').trim();
        const oom = isOutOfMemoryText(tail);
        const message = `trainer exited unexpectedly (${this.exitInfo})${tail ? `: ${tail.split('\n').slice(-5).join(' | ')}` : ''}`;
        fail(new TrainerError(message, oom ? 'oom' : 'internal'));
        this.onExit(message, oom ? 'oom' : 'internal');
      });
    });
  }

  private pipeLines(stream: NodeJS.ReadableStream | null, level: LogEvent['level']): void {
    if (!stream) return;
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        if (line.trim()) this.childOutput(line, level);
      }
    });
    stream.on('end', () => {
      if (buf.trim()) this.childOutput(buf, level);
      buf = '';
    });
  }

  private childOutput(line: string, level: LogEvent['level']): void {
    if (isTfjsBanner(line)) return;
    if (level === 'warn') {
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_KEEP) this.stderrTail.shift();
    }
    const ev: LogEvent = { v: PROTOCOL_VERSION, type: 'log', level, message: `trainer ${level === 'warn' ? 'stderr' : 'stdout'}: ${line}` };
    this.emitLog(ev);
  }

  private emitLog(ev: LogEvent): void {
    if (this.active && !this.active.ended) this.active.onEvent(ev);
    this.opts.onLog?.(ev);
  }

  private onMessage(raw: unknown): void {
    const parsed = parseTrainerMessage(raw);
    if (!parsed.ok) {
      this.emitLog({ v: PROTOCOL_VERSION, type: 'log', level: 'warn', message: `unexpected message from trainer (${parsed.error}): ${JSON.stringify(raw)?.slice(0, 200)}` });
      return;
    }
    const m = parsed.message;
    switch (m.type) {
      case 'ready':
        return;
      case 'described': {
        const p = this.describes.get(m.id);
        this.describes.delete(m.id);
        p?.resolve(m);
        return;
      }
      case 'probe-result': {
        const p = this.probes.get(m.id);
        this.probes.delete(m.id);
        p?.resolve(m.result);
        return;
      }
      case 'evaluated': {
        const p = this.evaluations.get(m.id);
        this.evaluations.delete(m.id);
        p?.resolve(m.result);
        return;
      }
      case 'prepared': {
        const p = this.prepares.get(m.id);
        this.prepares.delete(m.id);
        p?.resolve(m.prepared);
        return;
      }
      case 'error': {
        const prepare = m.id !== undefined ? this.prepares.get(m.id) : undefined;
        if (prepare && m.id !== undefined) {
          this.prepares.delete(m.id);
          prepare.reject(new TrainerError(m.message, m.kind));
          return;
        }
        const evaluation = m.id !== undefined ? this.evaluations.get(m.id) : undefined;
        if (evaluation && m.id !== undefined) {
          this.evaluations.delete(m.id);
          evaluation.reject(new TrainerError(m.message, m.kind));
          return;
        }
        const probe = m.id !== undefined ? this.probes.get(m.id) : undefined;
        if (probe && m.id !== undefined) {
          this.probes.delete(m.id);
          probe.reject(new TrainerError(m.message, m.kind));
          return;
        }
        const p = m.id !== undefined ? this.describes.get(m.id) : undefined;
        if (p && m.id !== undefined) {
          this.describes.delete(m.id);
          p.reject(new TrainerError(m.message, m.kind));
          return;
        }
        if (this.active && (m.id === undefined || m.id === this.active.id)) {
          this.finishTrain({ v: PROTOCOL_VERSION, type: 'run-end', time: now(), status: 'failed', error: m.kind, message: m.message }, true);
          return;
        }
        this.emitLog({ v: PROTOCOL_VERSION, type: 'log', level: 'error', message: m.message });
        return;
      }
      case 'log':
        this.emitLog(m);
        return;
      case 'run-end':
        this.finishTrain(m, false);
        return;
      default:
        if (this.active && !this.active.ended) this.active.onEvent(m);
        return;
    }
  }

  /** Delivers the run-end and settles `train`. `synthesized` ones are also appended to metrics.jsonl. */
  private finishTrain(end: RunEndEvent, synthesized: boolean): void {
    const a = this.active;
    if (!a || a.ended) return;
    a.ended = true;
    this.active = undefined;
    this.stopRequested = false;
    if (synthesized) {
      // The child could not write it: keep the run folder complete.
      try {
        appendRunEvent(a.runDir, end);
      } catch {
        /* the folder may be gone; the event still reaches the caller */
      }
    }
    a.onEvent(end);
    a.resolve(end);
  }

  private onExit(message: string, kind: TrainerErrorKind): void {
    this.child = undefined;
    this.ready = undefined; // a later call starts a fresh child
    for (const p of this.describes.values()) p.reject(new TrainerError(message, kind));
    this.describes.clear();
    for (const p of this.probes.values()) p.reject(new TrainerError(message, kind));
    this.probes.clear();
    for (const p of this.evaluations.values()) p.reject(new TrainerError(message, kind));
    this.evaluations.clear();
    for (const p of this.prepares.values()) p.reject(new TrainerError(message, kind));
    this.prepares.clear();
    if (this.active) {
      this.finishTrain(
        this.disposed
          ? { v: PROTOCOL_VERSION, type: 'run-end', time: now(), status: 'stopped', message: 'trainer process ended' }
          : { v: PROTOCOL_VERSION, type: 'run-end', time: now(), status: 'failed', error: kind, message },
        true,
      );
    }
  }

  private send(m: HostMessage): void {
    if (!this.child?.connected) throw new TrainerError(`trainer is not running${this.exitInfo ? ` (it exited: ${this.exitInfo})` : ''}`, 'internal');
    this.child.send(m);
  }

  /** Layers, output shapes and parameter counts of a model, built in the child without training. */
  async describe(spec: ModelSpec, inputShape: [number, number, number], numClasses: number): Promise<ModelDescription> {
    return (await this.describeOn(spec, inputShape, numClasses)).description;
  }

  /** The description and, when `backend` is given, the backend that choice gets in the child (looked for where a run looks). */
  async describeOn(spec: ModelSpec, inputShape: [number, number, number], numClasses: number, backend?: DescribeRequest['backend']): Promise<DescribedMessage> {
    await this.start();
    const id = this.nextId++;
    const limitMs = this.opts.describeTimeoutMs ?? 120_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const described = new Promise<DescribedMessage>((resolve, reject) => {
      this.describes.set(id, { resolve, reject });
      try {
        this.send({ v: PROTOCOL_VERSION, type: 'describe', id, spec, inputShape, numClasses, ...(backend ? { backend } : {}) });
      } catch (e) {
        this.describes.delete(id);
        reject(e as Error);
        return;
      }
      // A model that never finishes building (a huge or malformed model.json) must not hang the
      // caller: end the child (it may be stuck in tfjs) and say so.
      timer = setTimeout(() => {
        if (!this.describes.delete(id)) return;
        reject(new TrainerError(`building the model took longer than ${Math.round(limitMs / 1000)} s: check its size and model.json`, 'bad-input'));
        this.child?.kill();
      }, limitMs);
      timer.unref?.();
    });
    return described.finally(() => clearTimeout(timer));
  }

  /** Sends a request whose answer (or the child's death) settles the promise kept under its id in `pending`. */
  private async request<T>(pending: Map<number, { resolve: (r: T) => void; reject: (e: Error) => void }>, message: (id: number) => HostMessage): Promise<T> {
    await this.start();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      try {
        this.send(message(id));
      } catch (e) {
        pending.delete(id);
        reject(e as Error);
      }
    });
  }

  /** One probe trial in the child (see src/trainer/probe/trial.ts); rejects when the child dies. */
  async probe(setup: RunSetup, trial: ProbeTrialSpec): Promise<ProbeTrialResult> {
    return this.request(this.probes, (id) => ({ v: PROTOCOL_VERSION, type: 'probe', id, setup, trial }));
  }

  /** A saved model evaluated on labelled files in the child (src/trainer/eval/); rejects when the child dies. */
  async evaluate(req: Omit<EvaluateRequest, 'v' | 'type' | 'id'>): Promise<EvaluationResult> {
    return this.request(this.evaluations, (id) => ({ ...req, v: PROTOCOL_VERSION, type: 'evaluate', id }));
  }

  /** A torchrun engine run prepared in the child (src/trainer/torchrun/prepare.ts): its files, split, head and initial model. */
  async prepareTorchrun(spec: RunSpec, initialModel: string): Promise<TorchrunPrepared> {
    return this.request(this.prepares, (id) => ({ v: PROTOCOL_VERSION, type: 'prepare-torchrun', id, spec, initialModel }));
  }

  /**
   * Starts a training run in the child. Every event (including log lines and the final run-end) goes
   * to `onEvent`; the promise resolves with the run-end, whatever its status — it never rejects for
   * a training failure, only for misuse (a run already in progress) or a child that cannot start.
   */
  async train(spec: RunSpec, onEvent: (e: TrainEvent) => void): Promise<RunEndEvent> {
    if (this.active || this.trainStarting) throw new TrainerError('a training run is already in progress in this trainer', 'internal');
    // stopRequested is NOT cleared here: a stop asked for just before train() (TrainFlow's stop
    // between planning and starting) must reach this run. It is cleared when a run ends.
    this.trainStarting = true;
    try {
      await this.start();
    } finally {
      this.trainStarting = false;
    }
    const id = this.nextId++;
    return new Promise<RunEndEvent>((resolve) => {
      this.active = { id, runDir: spec.runDir, onEvent, resolve, ended: false };
      const msg: TrainRequest = { v: PROTOCOL_VERSION, type: 'train', id, spec };
      try {
        this.send(msg);
        // A stop asked for while the child was starting.
        if (this.stopRequested) this.send({ v: PROTOCOL_VERSION, type: 'stop' });
      } catch (e) {
        this.finishTrain({ v: PROTOCOL_VERSION, type: 'run-end', time: now(), status: 'failed', error: 'internal', message: (e as Error).message }, true);
      }
    });
  }

  /**
   * Ends the run in progress with `end` (recorded in its metrics.jsonl) and kills the child at once:
   * for a trainer stuck in a synchronous step (see step-watchdog.ts), which answers no message.
   */
  abortRun(end: RunEndEvent): void {
    if (!this.active || this.active.ended) return;
    const pid = this.child?.pid;
    this.finishTrain(end, true);
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }

    /** True while a training run is in progress. */
  get training(): boolean {
    return this.active !== undefined;
  }

  /** Asks the child to stop the current run; it ends it within one batch with run-end 'stopped'. */
  stop(): void {
    this.stopRequested = true;
    if (this.child?.connected) this.child.send({ v: PROTOCOL_VERSION, type: 'stop' } satisfies HostMessage);
  }

  /**
   * Kills the child. A run in progress ends as 'stopped' with `reason` (its folder is kept), recorded
   * in its metrics.jsonl right here, synchronously: the caller may be a process about to end (a
   * window reloading), and the child's exit would otherwise be seen too late or not at all.
   * Returns whether a run was ended so.
   */
  dispose(reason?: string): boolean {
    if (this.disposed) return false;
    this.disposed = true;
    const ended = this.active !== undefined && !this.active.ended;
    if (ended) this.finishTrain({ v: PROTOCOL_VERSION, type: 'run-end', time: now(), status: 'stopped', message: reason ?? 'trainer process ended' }, true);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      if (child.connected) child.disconnect(); // the trainer exits on disconnect
      child.kill();
    }
    return ended;
  }
}
