/**
 * `batch-advisor train <config>`: validates the config, creates the run folder, runs the trainer
 * child process (dist/trainer.js) and shows its progress: a single redrawn line on a terminal,
 * plain lines otherwise, or one JSON event per line with --json.
 *
 * Exit codes: 0 completed, 1 training failed (e.g. out of memory: the message suggests a batch
 * size), 2 bad input (config, dataset), 130 stopped with Ctrl-C (the run folder is kept).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { BACKENDS, ConfigError, loadConfigFile, type BackendChoice, type TrainConfig } from '../core/config';
import { listDatasetFiles } from '../core/dataset/list';
import { DatasetInputError } from '../core/dataset/types';
import { formatCount, formatDuration, plural } from '../core/format';
import type { BatchEvent, RunEndEvent, TrainEvent } from '../core/protocol';
import { createRunDir } from '../core/runs';
import { TrainerClient } from '../core/trainer-client';

export interface TrainOptions {
  json?: boolean;
  epochs?: number;
  maxSteps?: number;
  backend?: string;
  batchSize?: number;
}

type Out = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface TrainIo {
  /** dist/trainer.js (or src/trainer/main.ts, run through tsx). */
  trainerScript: string;
  stdout: Out;
  stderr: Out;
  /** Where `.batch-advisor/runs/` goes. Default: the nearest folder of the config holding .git or package.json, else the config's folder. */
  workspaceRoot?: string;
  /** Turns batchSize "auto" into a number (the suggest engine). Default: 32. */
  resolveBatchSize?: (config: TrainConfig) => Promise<number>;
  /** Where Ctrl-C comes from. Default: process (SIGINT). */
  signals?: NodeJS.EventEmitter;
}

export const DEFAULT_BATCH_SIZE = 32;

/** The nearest folder at or above `start` holding .git or package.json; `start` if none. */
export function findWorkspaceRoot(start: string): string {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, '.git')) || existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return resolve(start);
    dir = up;
  }
}

function fmtNum(v: number | null | undefined, digits = 4): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
}

/** One line of progress: "Epoch 2/10  37/60 [=======>     ]  812 img/s  loss 0.6931  acc 0.500  ETA 1m 02s". */
export function progressLine(b: BatchEvent, epochs: number, width = 80): string {
  const barWidth = 20;
  const filled = Math.min(barWidth, Math.round((b.step / Math.max(1, b.stepsPerEpoch)) * barWidth));
  const bar = `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (filled === barWidth ? '=' : '>') : ''}${' '.repeat(barWidth - filled)}]`;
  const line = `Epoch ${b.epoch}/${epochs}  ${b.step}/${b.stepsPerEpoch} ${bar}  ${formatCount(Math.round(b.imagesPerSec))} img/s  loss ${fmtNum(b.loss)}  acc ${fmtNum(b.accuracy, 3)}  ETA ${formatDuration(b.etaSec)}`;
  return line.length > width ? line.slice(0, Math.max(10, width - 1)) : line;
}

class Reporter {
  private barShown = false;
  private lastPlain = 0;
  private lastDraw = 0;
  epochs = 0;
  runDir = '';
  private readonly tty: boolean;

  constructor(
    private readonly io: TrainIo,
    private readonly json: boolean,
  ) {
    this.tty = !json && io.stdout.isTTY === true;
  }

  private clearBar(): void {
    if (this.barShown) {
      this.io.stdout.write('\r\x1b[2K');
      this.barShown = false;
    }
  }

  out(line: string): void {
    this.clearBar();
    this.io.stdout.write(line + '\n');
  }

  err(line: string): void {
    this.clearBar();
    this.io.stderr.write(line + '\n');
  }

  event(e: TrainEvent): void {
    if (this.json) {
      this.io.stdout.write(JSON.stringify(e) + '\n');
      return;
    }
    switch (e.type) {
      case 'backend':
        this.out(`Backend: ${e.name}${e.skipped.length ? ` (passed over: ${e.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')})` : ''}`);
        return;
      case 'run-start':
        this.epochs = e.epochs;
        this.runDir = e.runDir;
        this.out(
          `Training on ${formatCount(e.trainImages)} images (${formatCount(e.validationImages)} for validation), batch ${e.batchSize}` +
            `${e.accumulationSteps > 1 ? ` × ${e.accumulationSteps} accumulated = ${e.batchSize * e.accumulationSteps}` : ''}, ` +
            `${plural(e.epochs, 'epoch')} × ${plural(e.stepsPerEpoch, 'step')}, ${formatCount(e.params)} parameters, ${e.loading === 'preload' ? 'images preloaded' : 'images streamed from disk'}, backend ${e.backend}`,
        );
        return;
      case 'batch': {
        const t = Date.now();
        if (this.tty) {
          // Redraw at most ~10 times a second, and always at the end of an epoch.
          if (t - this.lastDraw < 100 && e.step !== e.stepsPerEpoch) return;
          this.lastDraw = t;
          this.io.stdout.write(`\r\x1b[2K${progressLine(e, this.epochs, (this.io.stdout.columns ?? 0) > 20 ? (this.io.stdout.columns ?? 0) - 1 : 100)}`);
          this.barShown = true;
        } else if (e.step === 1 || t - this.lastPlain >= 5000) {
          this.lastPlain = t;
          this.out(progressLine(e, this.epochs, 200));
        }
        return;
      }
      case 'epoch':
        this.out(
          `Epoch ${e.epoch}/${this.epochs}: loss ${fmtNum(e.loss)}  acc ${fmtNum(e.accuracy, 3)}  val loss ${fmtNum(e.valLoss)}  val acc ${fmtNum(e.valAccuracy, 3)}  (${formatDuration(e.durationMs / 1000)}; model saved)`,
        );
        return;
      case 'skipped-file':
        this.err(`Skipped ${e.path}: ${e.reason}`);
        return;
      case 'log':
        if (e.message.startsWith('trainer stdout:')) return; // library chatter; it is in train.log's host-side view only
        if (e.level === 'warn' || e.level === 'error') this.err(`${e.level === 'error' ? 'Error' : 'Warning'}: ${e.message}`);
        else if (e.level === 'info') this.out(e.message);
        return;
      case 'run-end':
        this.clearBar();
        return;
    }
  }
}

async function checkDataset(config: TrainConfig): Promise<string | undefined> {
  if (!existsSync(config.dataset)) return `${config.dataset}: dataset folder not found`;
  if (!statSync(config.dataset).isDirectory()) return `${config.dataset}: the dataset must be a folder`;
  try {
    const { classNames, files } = await listDatasetFiles(config.dataset);
    if (classNames.length === 0) return `${config.dataset}: no class subfolders (expected <dataset>/<class>/<images>)`;
    if (files.length === 0) return `${config.dataset}: no images (.bmp .gif .jpeg .jpg .png) in its class folders`;
  } catch (e) {
    if (e instanceof DatasetInputError) return e.message;
    throw e;
  }
  return undefined;
}

export async function trainCommand(configPath: string, opts: TrainOptions, io: TrainIo): Promise<number> {
  const fail = (message: string, code: number): number => {
    io.stderr.write(`batch-advisor: ${message}\n`);
    return code;
  };

  // Config, with the command-line overrides.
  let config: TrainConfig;
  try {
    config = loadConfigFile(configPath);
  } catch (e) {
    if (e instanceof ConfigError) return fail(e.message.split('\n')[0] ?? e.message, 2);
    throw e;
  }
  if (opts.backend !== undefined) {
    if (!(BACKENDS as readonly string[]).includes(opts.backend)) return fail(`--backend must be one of ${BACKENDS.join(', ')}; got "${opts.backend}"`, 2);
    config = { ...config, backend: opts.backend as BackendChoice };
  }
  if (opts.epochs !== undefined) {
    if (!Number.isInteger(opts.epochs) || opts.epochs < 1) return fail(`--epochs must be a positive whole number`, 2);
    config = { ...config, epochs: opts.epochs };
  }
  if (opts.batchSize !== undefined) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) return fail(`--batch-size must be a positive whole number`, 2);
    config = { ...config, batchSize: opts.batchSize };
  }
  if (opts.maxSteps !== undefined && (!Number.isInteger(opts.maxSteps) || opts.maxSteps < 1)) return fail(`--max-steps must be a positive whole number`, 2);

  const datasetProblem = await checkDataset(config);
  if (datasetProblem) return fail(datasetProblem, 2);

  const reporter = new Reporter(io, opts.json === true);

  // Batch size: "auto" → the suggestion.
  let batchSize: number;
  if (config.batchSize === 'auto') {
    if (io.resolveBatchSize) {
      try {
        batchSize = await io.resolveBatchSize(config);
        if (!opts.json) reporter.out(`Batch size: ${batchSize} (recommended; set "batchSize" in the config to choose another)`);
      } catch (e) {
        batchSize = DEFAULT_BATCH_SIZE;
        reporter.err(`Warning: could not work out a batch size (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); using ${DEFAULT_BATCH_SIZE}`);
      }
    } else {
      // TODO(suggest): main.ts provides io.resolveBatchSize; without it, Keras' default.
      batchSize = DEFAULT_BATCH_SIZE;
    }
  } else {
    batchSize = config.batchSize;
  }

  const workspaceRoot = io.workspaceRoot ?? findWorkspaceRoot(dirname(resolve(configPath)));
  const runDir = createRunDir(workspaceRoot, { ...config, batchSize });
  const shownDir = relative(process.cwd(), runDir) || runDir;
  if (!opts.json) reporter.out(`Run folder: ${shownDir}`);

  const client = new TrainerClient({ trainerScript: io.trainerScript });
  const signals = io.signals ?? process;
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts === 1) {
      if (!opts.json) reporter.err('Stopping after the current batch… (Ctrl-C again to quit at once)');
      client.stop();
    } else {
      client.dispose();
    }
  };
  signals.on('SIGINT', onSigint);

  let end: RunEndEvent;
  try {
    end = await client.train({ config: { ...config, batchSize }, runDir, batchSize, ...(opts.maxSteps !== undefined ? { maxSteps: opts.maxSteps } : {}) }, (e) => reporter.event(e));
  } catch (e) {
    signals.off('SIGINT', onSigint);
    client.dispose();
    return fail(`the trainer could not start: ${e instanceof Error ? e.message : String(e)}`, 1);
  }
  signals.off('SIGINT', onSigint);
  client.dispose();

  if (end.status === 'completed') {
    if (!opts.json) reporter.out(`Done. Model: ${join(shownDir, 'model', 'model.json')}`);
    return 0;
  }
  if (end.status === 'stopped') {
    if (!opts.json) reporter.out(`Stopped. The run is kept in ${shownDir}`);
    else io.stderr.write(`Stopped. The run is kept in ${shownDir}\n`);
    return interrupts > 0 ? 130 : 1;
  }
  // Failed.
  const message = end.message ?? 'training failed';
  if (end.error === 'oom') {
    reporter.err(message);
    reporter.err(`Run again with "batchSize": ${end.suggestedBatchSize ?? Math.max(1, Math.floor(batchSize / 2))} in ${configPath} (or --batch-size ${end.suggestedBatchSize ?? ''}). Run folder: ${shownDir}`);
    return 1;
  }
  reporter.err(`Training failed: ${message.split('\n')[0]}`);
  reporter.err(`Run folder: ${shownDir}`);
  return end.error === 'bad-input' ? 2 : 1;
}
