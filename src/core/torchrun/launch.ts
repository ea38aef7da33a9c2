/**
 * Starts a torchrun run on this machine and follows it:
 *
 *   <python> <runDir>/launch.py --standalone --nnodes 1 --nproc_per_node N <runDir>/train.py <runDir>/run.json
 *
 * (launch.py is `python -m torch.distributed.run` itself, with a fix for torch < 2.0 on Python 3.11),
 * in a process group of its own (Stop signals the whole group: the launcher and every rank get
 * SIGTERM, the ranks agree to stop after the current step and rank 0 records run-end "stopped").
 * The events are rank 0's metrics.jsonl lines, read as they are written and checked against our
 * protocol, so the panel gets exactly what a replay of the folder shows. Its output goes to train.log
 * and the log. A launcher that ends without a run-end (killed, crashed) gets one written for it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { appendRunEvent, RUN_FILES } from '../run-folder/runs';
import { isOutOfMemoryText } from '../shared/oom';
import { parseTrainerMessage, PROTOCOL_VERSION, type LogEvent, type RunEndEvent, type TrainEvent } from '../shared/protocol';
import type { TorchrunLaunch } from '../shared/run-spec';
import { RUN_JSON } from './run-json';
import { LAUNCH_SCRIPT, TRAIN_SCRIPT } from './template-files';

/** torchrun's arguments for a launch (the same for a local run and the cluster exports). */
export function torchrunArgs(launch: TorchrunLaunch, script: string, runJson: string): string[] {
  const nodes =
    launch.nnodes > 1
      ? ['--nnodes', String(launch.nnodes), '--node_rank', String(launch.nodeRank ?? 0), '--rdzv_backend', 'c10d', '--rdzv_endpoint', launch.rdzvEndpoint ?? '']
      : ['--standalone', '--nnodes', '1'];
  return [...nodes, '--nproc_per_node', String(launch.nprocPerNode), script, runJson];
}

export interface LaunchOptions {
  python: string;
  runDir: string;
  launch: TorchrunLaunch;
  onEvent: (e: TrainEvent) => void;
  onLog: (level: LogEvent['level'], message: string) => void;
  /** Extra environment for the launcher. */
  env?: Record<string, string>;
  /** How often metrics.jsonl is read. Default 200 ms. */
  pollMs?: number;
  /** How long the ranks get to stop after Stop before the group is killed. Default 60 s. */
  stopGraceMs?: number;
}

const TAIL_LINES = 12;

export class TorchrunProcess {
  private child: ChildProcess | undefined;
  private offset = 0;
  private partial = '';
  private end: RunEndEvent | undefined;
  private stopAsked = false;
  private killedWith: string | undefined;
  private readonly tail: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: LaunchOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the launcher; resolves with the run's run-end, whatever its status. */
  run(): Promise<RunEndEvent> {
    const { opts } = this;
    const args = [join(opts.runDir, LAUNCH_SCRIPT), ...torchrunArgs(opts.launch, join(opts.runDir, TRAIN_SCRIPT), join(opts.runDir, RUN_JSON))];
    opts.onLog('info', `torchrun: ${opts.python} ${args.join(' ')}`);
    return new Promise<RunEndEvent>((resolve) => {
      const child = spawn(opts.python, args, {
        cwd: opts.runDir,
        stdio: ['ignore', 'pipe', 'pipe'],
        // The CPU's threads shared among this node's ranks (torchrun would set 1 each, and say so at length).
        // eslint-disable-next-line no-restricted-properties -- passed on to the launcher, not read here
        env: { OMP_NUM_THREADS: String(Math.max(1, Math.floor(availableParallelism() / opts.launch.nprocPerNode))), ...process.env, PYTHONUNBUFFERED: '1', ...opts.env },
        detached: process.platform !== 'win32',
      });
      this.child = child;
      this.lines(child.stdout, 'info');
      this.lines(child.stderr, 'warn');
      this.timer = setInterval(() => this.read(), opts.pollMs ?? 200);
      const finish = (why: string): void => {
        clearInterval(this.timer);
        clearTimeout(this.graceTimer);
        this.read();
        this.child = undefined;
        resolve(this.end ?? this.synthesize(why));
      };
      child.on('error', (e) => finish(`torchrun could not be started with ${opts.python}: ${e.message}`));
      child.on('exit', (code, signal) => finish(`torchrun exited (${signal ? `signal ${signal}` : `code ${String(code)}`}) without a run-end`));
    });
  }

  /** Asks every rank to stop after its current step (SIGTERM to the launcher's process group); killed after the grace time. */
  stop(): void {
    this.stopAsked = true;
    this.signal('SIGTERM');
    this.graceTimer ??= setTimeout(() => this.signal('SIGKILL'), this.opts.stopGraceMs ?? 60_000);
    this.graceTimer.unref?.();
  }

  /** Ends the group at once; a run in progress is recorded as stopped with `reason`. True when one was. */
  kill(reason?: string): boolean {
    if (!this.child || this.end) return false;
    this.killedWith = reason ?? 'the torchrun processes were ended';
    this.stopAsked = true;
    this.signal('SIGKILL');
    this.end = this.synthesize(this.killedWith);
    return true;
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(process.platform === 'win32' ? pid : -pid, sig);
    } catch {
      /* already gone */
    }
  }

  /** The run-end the launcher did not write: stopped when asked to, else failed with its last output. */
  private synthesize(why: string): RunEndEvent {
    const text = this.tail.join(' | ');
    const end: RunEndEvent = this.stopAsked
      ? { v: PROTOCOL_VERSION, type: 'run-end', time: new Date().toISOString(), status: 'stopped', message: this.killedWith ?? 'stopped by request' }
      : { v: PROTOCOL_VERSION, type: 'run-end', time: new Date().toISOString(), status: 'failed', error: isOutOfMemoryText(text) ? 'oom' : 'internal', message: `${why}${text ? `: ${text}` : ''}` };
    try {
      appendRunEvent(this.opts.runDir, end);
    } catch {
      /* the folder may be gone; the event still reaches the caller */
    }
    this.end = end;
    this.opts.onEvent(end);
    return end;
  }

  /** New complete lines of metrics.jsonl, as events. */
  private read(): void {
    const path = join(this.opts.runDir, RUN_FILES.metrics);
    if (!existsSync(path)) return;
    const size = statSync(path).size;
    if (size <= this.offset) return;
    const fd = openSync(path, 'r');
    const buf = Buffer.alloc(size - this.offset);
    try {
      readSync(fd, buf, 0, buf.length, this.offset);
    } finally {
      closeSync(fd);
    }
    this.offset = size;
    const text = this.partial + buf.toString('utf8');
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) this.event(line);
  }

  private event(line: string): void {
    if (this.end) return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return this.opts.onLog('warn', `metrics.jsonl: a line that is not JSON: ${line.slice(0, 200)}`);
    }
    const parsed = parseTrainerMessage(raw);
    if (!parsed.ok) return this.opts.onLog('warn', `metrics.jsonl: not an event of our protocol (${parsed.error}): ${line.slice(0, 200)}`);
    const e = parsed.message as TrainEvent;
    if (e.type === 'run-end') this.end = e;
    this.opts.onEvent(e);
  }

  private lines(stream: NodeJS.ReadableStream | null, level: LogEvent['level']): void {
    if (!stream) return;
    let buf = '';
    stream.setEncoding('utf8');
    const out = (line: string): void => {
      if (!line.trim()) return;
      try {
        appendFileSync(join(this.opts.runDir, RUN_FILES.log), line + '\n');
      } catch {
        /* the folder may be gone */
      }
      if (level === 'warn') {
        this.tail.push(line.trim());
        if (this.tail.length > TAIL_LINES) this.tail.shift();
      }
      this.opts.onLog(level, `torchrun: ${line}`);
    };
    stream.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        out(buf.slice(0, i).replace(/\r$/, ''));
        buf = buf.slice(i + 1);
      }
    });
    stream.on('end', () => out(buf));
  }
}
