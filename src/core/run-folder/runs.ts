/**
 * Run folders: `<workspace>/.batch-advisor/runs/<YYYYMMDD-HHMMSS>-<name>/`.
 *
 * The host creates the folder with `config.json` before it sends 'train'; the trainer child then
 * appends every TrainEvent as one JSON line to `metrics.jsonl` (flushed to the OS per event) and
 * its log lines to `train.log`, and saves the model into `model/` at each epoch end. A run can
 * therefore be replayed from its folder alone, even if the host died mid-run.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync, openSync, readSync, closeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { TrainConfig } from '../config';
import { describeFsError, FsResourceError, isResourceFsError, trueMkdirError } from '../fs-errors';
import { readRunMeta } from './run-meta';
import type { TrainingPlan } from '../shared/plan';
import { PROTOCOL_VERSION, type EpochEvent, type RunEndEvent, type RunStartEvent, type TrainEvent } from '../shared/protocol';

export const RUNS_FOLDER = join('.batch-advisor', 'runs');
export const RUN_FILES = { config: 'config.json', plan: 'plan.json', metrics: 'metrics.jsonl', log: 'train.log', model: 'model', evaluation: 'evaluation.json' } as const;

export function runsRoot(workspaceRoot: string): string {
  return join(resolve(workspaceRoot), RUNS_FOLDER);
}

/** A name safe in a folder name on every OS: letters, digits, dot, dash, underscore. */
export function sanitizeRunName(name: string): string {
  const s = name
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 60);
  return s || 'run';
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** Local time as YYYYMMDD-HHMMSS. */
export function runTimestamp(d = new Date()): string {
  return `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`;
}

/**
 * The config a run records: the resolved config with the plan's numbers in place of "auto" and of
 * the planned values, so `config.json` says what ran (the full plan, with its reasons, is plan.json).
 */
export function configAsRun(config: TrainConfig, plan: TrainingPlan): Omit<TrainConfig, 'explicit'> {
  const { explicit: _explicit, resume: _resume, ...rest } = config;
  return {
    ...rest,
    batchSize: plan.microBatchSize,
    accumulationSteps: plan.accumulationSteps,
    learningRate: plan.learningRate.value,
    warmupSteps: plan.warmup.steps,
    epochs: plan.epochs,
    loading: plan.loading.strategy,
  };
}

/**
 * Creates `<workspace>/.batch-advisor/runs/<YYYYMMDD-HHMMSS>-<name>/` holding `config.json` (what
 * runs, see configAsRun) and `plan.json`, and returns its absolute path. Two runs started in the
 * same second get `-2`, `-3`, … suffixes.
 */
export function createRunDir(workspaceRoot: string, config: TrainConfig, plan: TrainingPlan, now = new Date(), fs: RunDirFs = nodeRunDirFs): string {
  const root = runsRoot(workspaceRoot);
  try {
    fs.mkdirSync(root, { recursive: true });
  } catch (e) {
    throw runDirError(`cannot create the runs folder ${root}`, trueMkdirError(root, e, (p) => fs.mkdirSync(p)));
  }
  const base = `${runTimestamp(now)}-${sanitizeRunName(config.name)}`;
  for (let i = 1; ; i++) {
    const dir = join(root, i === 1 ? base : `${base}-${i}`);
    try {
      fs.mkdirSync(dir); // not recursive: fails if it exists, so concurrent hosts never share a folder
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw runDirError(`cannot create the run folder ${dir}`, e);
    }
    try {
      fs.writeFileSync(join(dir, RUN_FILES.config), JSON.stringify(configAsRun(config, plan), null, 2) + '\n');
      fs.writeFileSync(join(dir, RUN_FILES.plan), JSON.stringify(plan, null, 2) + '\n');
    } catch (e) {
      // Leave nothing half-made behind.
      rmSync(dir, { recursive: true, force: true });
      throw runDirError(`cannot write the run folder ${dir} (removed)`, e);
    }
    return dir;
  }
}

/** The file-system calls createRunDir makes: a seam for tests (ENOSPC, EROFS as root). */
export interface RunDirFs {
  mkdirSync(path: string, opts?: { recursive: boolean }): unknown;
  writeFileSync(path: string, data: string): void;
}
const nodeRunDirFs: RunDirFs = { mkdirSync, writeFileSync };

/** The run folder cannot be made: the message says where and what to do. */
export class RunDirError extends Error {
  override readonly name = 'RunDirError';
}

export { describeFsError } from '../fs-errors';

/** Input to fix (read-only, permissions: RunDirError, exit 2) or a failure while working (full disk: exit 1). */
function runDirError(what: string, e: unknown): Error {
  return isResourceFsError(e) ? new FsResourceError(`${what}: ${describeFsError(e)}`) : new RunDirError(`${what}: ${describeFsError(e)}`);
}

export interface RunSummary {
  /** Folder name, e.g. "20260123-101500-mnist". */
  id: string;
  dir: string;
  /** The name a person gave it (meta.json), else the name part of the folder name. */
  name: string;
  /** Parsed from the folder name (local time); null if the name does not follow the pattern. */
  startedAt: Date | null;
  /** From the last `run-end` event; 'running' when none yet (or the trainer died without one). */
  status: RunEndEvent['status'] | 'running';
  /** Last epoch completed, from the tail of metrics.jsonl. */
  lastEpoch: number | null;
  /** That epoch's metrics (the run's final metrics once it ended). */
  lastEpochEvent: EpochEvent | null;
  /** The run-end's message (why it failed or stopped), if any. */
  endMessage: string | null;
}

const ID_PATTERN = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-(.+)$/;

/** Reads at most the last `bytes` of a file (cheap status for a long metrics.jsonl). */
function readTail(path: string, bytes: number): string {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const start = Math.max(0, size - bytes);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const text = buf.toString('utf8');
    // Drop a partial first line when we started mid-file.
    return start > 0 ? text.slice(text.indexOf('\n') + 1) : text;
  } finally {
    closeSync(fd);
  }
}

/** Runs of a workspace, newest first. Folders that are not runs are ignored. */
export function listRuns(workspaceRoot: string): RunSummary[] {
  const root = runsRoot(workspaceRoot);
  if (!existsSync(root)) return [];
  const out: RunSummary[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = join(root, entry.name);
    if (!existsSync(join(dir, RUN_FILES.config))) continue;
    const m = ID_PATTERN.exec(entry.name);
    const startedAt = m ? new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : null;
    let status: RunSummary['status'] = 'running';
    let lastEpoch: number | null = null;
    let lastEpochEvent: EpochEvent | null = null;
    let endMessage: string | null = null;
    const metrics = join(dir, RUN_FILES.metrics);
    if (existsSync(metrics)) {
      for (const ev of parseMetrics(readTail(metrics, 64 * 1024)).events) {
        if (ev.type === 'run-end') {
          status = ev.status;
          endMessage = ev.message ?? null;
        } else if (ev.type === 'epoch') {
          lastEpoch = ev.epoch;
          lastEpochEvent = ev;
        }
      }
    }
    out.push({ id: entry.name, dir, name: readRunMeta(dir).name ?? (m ? m[7]! : entry.name), startedAt, status, lastEpoch, lastEpochEvent, endMessage });
  }
  return out.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/**
 * The one writer of metrics.jsonl: each event one JSON line, written synchronously (handed to the
 * OS at once, so a process that dies loses nothing). The trainer holds one open for its run.
 */
export class MetricsWriter {
  private fd: number | undefined;

  constructor(dir: string) {
    this.fd = openSync(join(dir, RUN_FILES.metrics), 'a');
  }

  write(ev: TrainEvent): void {
    if (this.fd !== undefined) writeSync(this.fd, JSON.stringify(ev) + '\n');
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Appends one event to a run folder's metrics.jsonl from outside the trainer (the host ending a run
 * its trainer could not end). The event starts a line of its own: a trainer killed mid-write leaves
 * a truncated last line, which parseMetrics skips.
 */
export function appendRunEvent(dir: string, ev: TrainEvent): void {
  appendFileSync(join(dir, RUN_FILES.metrics), '\n' + JSON.stringify(ev) + '\n');
}

/**
 * Parses metrics.jsonl text. A truncated last line (the trainer was killed mid-write) and any
 * other unparsable line are skipped and counted, never fatal.
 */
export function parseMetrics(text: string): { events: TrainEvent[]; badLines: number; truncated: boolean } {
  const lines = text.split('\n');
  const events: TrainEvent[] = [];
  let badLines = 0;
  let truncated = false;
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      const ev = JSON.parse(line) as TrainEvent;
      if (typeof ev === 'object' && ev !== null && typeof ev.type === 'string') events.push(ev);
      else badLines++;
    } catch {
      if (i === lines.length - 1) truncated = true;
      else badLines++;
    }
  });
  return { events, badLines, truncated };
}

export interface RunRecord {
  dir: string;
  config: TrainConfig;
  events: TrainEvent[];
  /** The last line was cut off (the trainer died mid-write). */
  truncated: boolean;
  /** Other lines that could not be parsed. */
  badLines: number;
  runStart: RunStartEvent | null;
  runEnd: RunEndEvent | null;
}

/** Reads a run folder: its config and every event so far, tolerant of a truncated last line. */
export function readRun(dir: string): RunRecord {
  const config = JSON.parse(readFileSync(join(dir, RUN_FILES.config), 'utf8')) as TrainConfig;
  const metrics = join(dir, RUN_FILES.metrics);
  const parsed = existsSync(metrics) ? parseMetrics(readFileSync(metrics, 'utf8')) : { events: [], badLines: 0, truncated: false };
  const runStart = (parsed.events.find((e) => e.type === 'run-start') as RunStartEvent | undefined) ?? null;
  const runEnd = ([...parsed.events].reverse().find((e) => e.type === 'run-end') as RunEndEvent | undefined) ?? null;
  return { dir, config, events: parsed.events, truncated: parsed.truncated, badLines: parsed.badLines, runStart, runEnd };
}

/** Deletes a run folder; refuses anything that is not a run folder directly under the runs root. */
export function deleteRun(workspaceRoot: string, dir: string): void {
  const root = runsRoot(workspaceRoot);
  const abs = resolve(dir);
  if (dirname(abs) !== root || !existsSync(join(abs, RUN_FILES.config))) throw new Error(`${dir}: not a run folder of this workspace`);
  rmSync(abs, { recursive: true, force: true });
}

const CSV_COLUMNS = ['time', 'epoch', 'step', 'globalStep', 'loss', 'accuracy', 'valLoss', 'valAccuracy', 'learningRate', 'imagesPerSec', 'stepMs', 'dataWaitMs', 'tensorBytes', 'gpuMemoryUsedBytes'] as const;

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * A run's metrics as CSV: one row per optimizer step (batch events) and one per epoch end (with the
 * validation metrics; its step columns empty), in the order they happened.
 */
export function metricsCsv(events: readonly TrainEvent[]): string {
  const rows = [CSV_COLUMNS.join(',')];
  for (const e of events) {
    let row: Partial<Record<(typeof CSV_COLUMNS)[number], unknown>> | null = null;
    if (e.type === 'batch') row = e;
    else if (e.type === 'epoch') row = { time: e.time, epoch: e.epoch, loss: e.loss, accuracy: e.accuracy, valLoss: e.valLoss, valAccuracy: e.valAccuracy };
    if (row) rows.push(CSV_COLUMNS.map((c) => csvCell(row[c])).join(','));
  }
  return rows.join('\n') + '\n';
}

/**
 * Ends a run whose trainer this host had to end at once (the window closing or reloading): appends
 * a `run-end` "stopped" line saying so, so the run reads as stopped (not running) from then on.
 */
export function markRunInterrupted(dir: string, message: string): void {
  const end: RunEndEvent = { v: PROTOCOL_VERSION, type: 'run-end', time: new Date().toISOString(), status: 'stopped', message };
  appendRunEvent(dir, end);
}
