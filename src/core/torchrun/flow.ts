/**
 * The torchrun engine's part of the training flow (core/process/train-flow.ts): before planning,
 * what it needs (Python with torch, a model it can translate, a launch that adds up); after the run
 * folder exists, the run itself — the trainer child prepares the files, split, head and initial
 * model exactly as its own run would, the folder gets run.json and the Python files, then torchrun
 * starts (or, with an export, the cluster script is written instead).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainConfig } from '../config';
import { recordRunEnd } from '../planning/fit-gate';
import { TrainerClient } from '../process/trainer-client';
import { classifyError } from '../shared/errors';
import { PROTOCOL_VERSION, type LogEvent, type RunEndEvent, type TorchrunPrepared, type TrainEvent } from '../shared/protocol';
import { appendRunEvent, RUN_FILES } from '../run-folder/runs';
import type { RunSpec, TorchrunLaunch } from '../shared/run-spec';
import { writeExport, type ExportKind } from './export';
import { checkModelFile } from './layers';
import { TorchrunProcess } from './launch';
import { DEFAULT_PYTHONS, findTorchPython, type TorchPython } from './python';
import { INITIAL_MODEL_FOLDER, writeRunJson } from './run-json';
import { copyTemplates } from './template-files';

/** The command line's (or a caller's) torchrun settings. */
export interface TorchrunOptions {
  /** Processes on this node. Default: the config's nprocPerNode, else the CUDA devices, else 1. */
  nprocPerNode?: number;
  nnodes?: number;
  nodeRank?: number;
  rdzvEndpoint?: string;
  /** Write a cluster script instead of launching. */
  export?: ExportKind;
  /** The interpreter with torch. Default: python3, then /usr/bin/python3. */
  python?: string;
}

/** The torchrun settings cannot run: the message names the flag or file. */
export class TorchrunInputError extends Error {
  override readonly name = 'TorchrunInputError';
}

/** Why these settings cannot launch (the flag named), or undefined. */
export function torchrunOptionsProblem(o: TorchrunOptions): string | undefined {
  const nnodes = o.nnodes ?? 1;
  if (nnodes > 1 && !o.export) {
    if (o.nodeRank === undefined || !o.rdzvEndpoint) return `--nnodes ${nnodes} needs --node-rank R and --rdzv-endpoint HOST:PORT (the first node's address), or --export slurm|skypilot`;
    if (o.nodeRank >= nnodes) return `--node-rank must be below --nnodes (${nnodes}); got ${o.nodeRank}`;
  }
  if (o.rdzvEndpoint !== undefined && !/^[^\s:]+:\d{1,5}$/.test(o.rdzvEndpoint)) return `--rdzv-endpoint must be HOST:PORT; got "${o.rdzvEndpoint}"`;
  return undefined;
}

export interface TorchrunReady {
  launch: TorchrunLaunch;
  /** Absent for an export (the cluster brings its own Python). */
  python?: TorchPython;
  export?: ExportKind;
}

/** What the run needs before anything is planned or created; a TorchrunInputError naming what is missing. */
export async function checkTorchrun(config: TrainConfig, o: TorchrunOptions): Promise<TorchrunReady> {
  const problem = torchrunOptionsProblem(o);
  if (problem) throw new TorchrunInputError(problem);
  if (/\.json$/i.test(config.model)) {
    const why = checkModelFile(config.model);
    if (why) throw new TorchrunInputError(why);
  }
  let python: TorchPython | undefined;
  if (!o.export) {
    try {
      python = await findTorchPython(o.python ? [o.python] : DEFAULT_PYTHONS);
    } catch (e) {
      throw new TorchrunInputError(e instanceof Error ? e.message : String(e));
    }
  }
  const nprocPerNode = o.nprocPerNode ?? config.nprocPerNode ?? (python?.cuda ? Math.max(1, python.cudaDevices) : 1);
  const nnodes = o.nnodes ?? 1;
  const launch: TorchrunLaunch = { name: 'torchrun', nprocPerNode, nnodes, ...(o.nodeRank !== undefined ? { nodeRank: o.nodeRank } : {}), ...(o.rdzvEndpoint ? { rdzvEndpoint: o.rdzvEndpoint } : {}) };
  return { launch, ...(python ? { python } : {}), ...(o.export ? { export: o.export } : {}) };
}

/** Processes in all. */
export const worldSize = (l: TorchrunLaunch): number => l.nprocPerNode * l.nnodes;

/** In words, for the log: "torch 2.3.0 (python3), backend Gloo on the CPU, 2 processes". */
export function describeTorch(p: TorchPython, l: TorchrunLaunch): string {
  const backend = p.cuda ? `NCCL on ${p.cudaDevices} CUDA device${p.cudaDevices === 1 ? '' : 's'}` : 'Gloo on the CPU';
  return `torch ${p.torchVersion} (${p.python}), backend ${backend}, ${worldSize(l)} process${worldSize(l) === 1 ? '' : 'es'}${l.nnodes > 1 ? ` on ${l.nnodes} nodes (this is node ${l.nodeRank ?? 0})` : ''}`;
}

export interface TorchrunRunOptions {
  trainerScript: string;
  env?: Record<string, string>;
  ready: TorchrunReady;
  onEvent: (e: TrainEvent) => void;
  onLog: (level: LogEvent['level'], message: string) => void;
}

const ended = (status: RunEndEvent['status'], message: string, error?: RunEndEvent['error']): RunEndEvent => ({ v: PROTOCOL_VERSION, type: 'run-end', time: new Date().toISOString(), status, message, ...(error ? { error } : {}) });

/** One torchrun run in an existing run folder. */
export class TorchrunRun {
  private client: TrainerClient | undefined;
  private proc: TorchrunProcess | undefined;
  private stopAsked = false;
  /** The export written, when one was asked for. */
  exported: string | undefined;

  constructor(private readonly opts: TorchrunRunOptions) {}

  async run(spec: RunSpec): Promise<RunEndEvent> {
    const { opts } = this;
    const end = (e: RunEndEvent): RunEndEvent => {
      recordRunEnd(spec.runDir, e);
      opts.onEvent(e);
      return e;
    };
    const client = new TrainerClient({ trainerScript: opts.trainerScript, ...(opts.env ? { env: opts.env } : {}), onLog: (e) => opts.onLog(e.level, e.message) });
    this.client = client;
    let prepared;
    try {
      prepared = await client.prepareTorchrun(spec, INITIAL_MODEL_FOLDER);
    } catch (e) {
      if (this.stopAsked) return end(ended('stopped', 'Stopped before training started.'));
      const c = classifyError(e);
      return end(ended('failed', c.message, c.kind === 'bad-input' ? 'bad-input' : 'internal'));
    } finally {
      client.dispose();
      this.client = undefined;
    }
    for (const n of prepared.notes) opts.onLog('warn', n);
    opts.onLog('info', `torchrun: ${prepared.train.length} training and ${prepared.validation.length} validation images; loss: ${prepared.head.description}`);
    writeRunJson(spec, prepared);
    copyTemplates(spec.runDir);
    const { ready } = opts;
    if (ready.export) {
      this.exported = writeExport(ready.export, { name: spec.name, runDir: spec.runDir, dataset: spec.data.dataset, launch: ready.launch, plan: spec.plan });
      return { v: PROTOCOL_VERSION, type: 'run-end', time: new Date().toISOString(), status: 'completed', message: `exported to ${this.exported}; nothing was launched here` };
    }
    if (this.stopAsked) return end(ended('stopped', 'Stopped before training started.'));
    const python = ready.python!;
    opts.onLog('info', `torchrun: ${describeTorch(python, ready.launch)}`);
    const proc = new TorchrunProcess({ python: python.python, runDir: spec.runDir, launch: ready.launch, onEvent: opts.onEvent, onLog: opts.onLog, ...(opts.env ? { env: opts.env } : {}) });
    this.proc = proc;
    let result: RunEndEvent;
    try {
      result = await proc.run();
    } finally {
      this.proc = undefined;
    }
    if (result.status === 'completed' && !this.stopAsked && prepared.validation.length > 0) await this.evaluate(spec, prepared);
    return result;
  }

  /**
   * As our own trainer does at a run's end: the written-back model evaluated on the validation
   * split (by our trainer, from the tfjs files), into evaluation.json and an `evaluation` event,
   * so the panel's matrix and gallery and `batch-advisor evaluate` treat it like any run. A failure
   * here is logged; the run has completed.
   */
  private async evaluate(spec: RunSpec, prepared: TorchrunPrepared): Promise<void> {
    const { opts } = this;
    const client = new TrainerClient({ trainerScript: opts.trainerScript, ...(opts.env ? { env: opts.env } : {}), onLog: (e) => opts.onLog(e.level, e.message) });
    this.client = client;
    try {
      const result = await client.evaluate({
        modelPath: join(spec.runDir, RUN_FILES.model, 'model.json'),
        classNames: prepared.classNames,
        files: prepared.validation.map(([path, label]) => ({ path, label })),
        imageSize: spec.data.imageSize,
        channels: spec.data.channels,
        batchSize: spec.plan.validationBatchSize,
      });
      writeFileSync(join(spec.runDir, RUN_FILES.evaluation), JSON.stringify(result, null, 2) + '\n');
      const ev: TrainEvent = { v: PROTOCOL_VERSION, type: 'evaluation', time: new Date().toISOString(), result };
      appendRunEvent(spec.runDir, ev);
      opts.onEvent(ev);
      opts.onEvent({ v: PROTOCOL_VERSION, type: 'log', level: 'info', message: `evaluation on the validation split: accuracy ${(100 * result.accuracy).toFixed(1)}%, loss ${result.loss.toFixed(4)} over ${result.images} images` });
    } catch (e) {
      opts.onLog('warn', `the trained model could not be evaluated on the validation split: ${classifyError(e).message}`);
    } finally {
      client.dispose();
      this.client = undefined;
    }
  }

  stop(): void {
    this.stopAsked = true;
    this.client?.stop(); // a prepare still listing the data ends now
    this.proc?.stop();
  }

  kill(reason?: string): boolean {
    this.stopAsked = true;
    this.client?.dispose();
    return this.proc?.kill(reason) ?? false;
  }
}
