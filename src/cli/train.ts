/**
 * `batch-advisor train <config>`: validates the config, creates the run folder, runs the trainer
 * child process (dist/trainer.js) and shows its progress: a single redrawn line on a terminal,
 * plain lines otherwise, or one JSON event per line with --json.
 *
 * Exit codes: 0 completed, 1 training failed (e.g. out of memory: the message suggests a batch
 * size), 2 bad input (config, dataset), 130 stopped with Ctrl-C (the run folder is kept).
 */
import type { WatchdogOptions } from '../core/process/step-watchdog';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { BACKENDS, ENGINES, loadConfigFile, withOverrides, type BackendChoice, type EngineName, type TrainConfig } from '../core/config';
import { EXPORTS, type ExportKind } from '../core/torchrun/export';
import type { TorchrunOptions } from '../core/torchrun/flow';
import { classifyError, EXIT_CODES } from '../core/shared/errors';
import { formatCount, formatDuration, plural } from '../core/shared/format';
import { describeBatch, plannedFor, type TrainingPlan } from '../core/shared/plan';
import type { LrSchedule } from '../core/shared/schedule';
import type { BatchEvent, TrainEvent } from '../core/shared/protocol';
import { TrainFlow, type TrainFlowResult } from '../core/process/train-flow';
import { readRunConfig, ResumeError, runWorkspace } from '../core/run-folder/resume';
import type { RunTest } from '../core/shared/run-spec';

export interface TrainOptions {
  json?: boolean;
  epochs?: number;
  maxSteps?: number;
  backend?: string;
  batchSize?: number;
  /** Plan for a device with this much memory (GiB). */
  deviceMemory?: number;
  /** --probe / --no-probe: measure the plan with real training steps (default: on for "batchSize": "auto"). */
  probe?: boolean;
  /** --lr-schedule: the config's `lrSchedule` (commander checks the choices). */
  lrSchedule?: LrSchedule;
  /** --engine: the config's `engine`. */
  engine?: string;
  /** torchrun: --nproc-per-node, --nnodes, --node-rank, --rdzv-endpoint, --export, --python. */
  nprocPerNode?: number;
  nnodes?: number;
  nodeRank?: number;
  rdzvEndpoint?: string;
  export?: string;
  python?: string;
  /** --resume <run folder>: continue that run (its recorded config and plan) instead of starting one. */
  resume?: string;
}

type Out = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface TrainIo {
  /** dist/trainer.js (or src/trainer/main.ts, run through tsx). */
  trainerScript: string;
  stdout: Out;
  stderr: Out;
  /** Where `.batch-advisor/runs/` goes. Default: the nearest folder of the config holding .git or package.json, else the config's folder. */
  workspaceRoot?: string;
  /** Makes the plan (test seam). Default: the suggestion's plan (see TrainFlow). */
  makePlan?: (config: TrainConfig, signal: AbortSignal) => Promise<TrainingPlan>;
  /** Fraction of free memory kept free. */
  headroom?: number;
  /** The stuck-step watchdog's limits (from the entry point's environment). */
  watchdog?: WatchdogOptions;
  /** Where Ctrl-C comes from. Default: process (SIGINT). */
  signals?: NodeJS.EventEmitter;
  /** Fault injection for tests (from the entry point's environment): it travels in the RunSpec. */
  test?: RunTest;
}

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
      case 'run-start': {
        const p = e.plan;
        this.epochs = p.epochs;
        this.runDir = e.runDir;
        if (e.resumed) this.out(`Resuming after epoch ${e.resumed.afterEpoch} of ${p.epochs} (optimizer step ${formatCount(e.resumed.globalStep)}), metrics appended to ${join(e.runDir, 'metrics.jsonl')}`);
        this.out(
          `Training on ${formatCount(e.trainImages)} images (${formatCount(e.validationImages)} for validation), batch ${describeBatch(p)}, ` +
            `${plural(p.epochs, 'epoch')} × ${plural(e.stepsPerEpoch, 'step')}, ${formatCount(e.params)} parameters, ${p.loading.strategy === 'preload' ? 'images preloaded' : 'images streamed from disk'}, backend ${e.backend}`,
        );
        return;
      }
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

/** The plan in a few lines, before training starts (people output). */
export function planLines(plan: TrainingPlan): string[] {
  const lr = plan.learningRate;
  const from = (f: keyof TrainingPlan['sources']): string => (plan.sources[f] === 'config' ? ' (from the config)' : plan.sources[f] === 'fallback' ? ' (fallback)' : '');
  const lines = [
    `Plan: batch ${describeBatch(plan)}${from('batchSize')}, learning rate ${Number(lr.value.toPrecision(3))}${lr.rule !== 'none' ? ` (${lr.rule} scaling from ${lr.base} at batch ${lr.baseBatchSize})` : ''}${from('learningRate')}` +
      `${plan.warmup.steps > 0 ? `, warmup ${plural(plan.warmup.steps, 'step')}` : ''}${plan.lrSchedule && plan.lrSchedule !== 'constant' ? `, ${plan.lrSchedule} schedule` : ''}, ${plan.loading.strategy}${from('loading')}`,
  ];
  lines.push(`Planned for ${plannedFor(plan)}`);
  if (plan.basis.kind === 'fallback') lines.push(`Warning: no plan could be made (${plan.basis.why}); fixed fallback values are used.`);
  for (const w of plan.warnings) if (plan.basis.kind !== 'fallback') lines.push(`Warning: ${w}`);
  return lines;
}

/** Applies the command-line overrides; a message for a bad one. */
function applyOverrides(config: TrainConfig, opts: TrainOptions): TrainConfig | string {
  if (opts.backend !== undefined && !(BACKENDS as readonly string[]).includes(opts.backend)) return `--backend must be one of ${BACKENDS.join(', ')}; got "${opts.backend}"`;
  for (const [flag, v] of [
    ['--epochs', opts.epochs],
    ['--batch-size', opts.batchSize],
    ['--max-steps', opts.maxSteps],
  ] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) return `${flag} must be a positive whole number`;
  }
  if (opts.deviceMemory !== undefined && !(opts.deviceMemory > 0)) return `--device-memory must be a positive number of GiB`;
  if (opts.engine !== undefined && !(ENGINES as readonly string[]).includes(opts.engine)) return `--engine must be one of ${ENGINES.join(', ')}; got "${opts.engine}"`;
  const engine = opts.engine ?? config.engine ?? 'tfjs';
  const torchFlag = TORCHRUN_FLAGS.find(([, k]) => opts[k] !== undefined);
  if (torchFlag && engine !== 'torchrun') return `${torchFlag[0]} is a torchrun setting: add --engine torchrun (or "engine": "torchrun" in the config)`;
  if (opts.export !== undefined && !(EXPORTS as readonly string[]).includes(opts.export)) return `--export must be one of ${EXPORTS.join(', ')}; got "${opts.export}"`;
  return withOverrides(config, {
    ...(opts.engine !== undefined ? { engine: opts.engine as EngineName } : {}),
    ...(opts.backend !== undefined ? { backend: opts.backend as BackendChoice } : {}),
    ...(opts.epochs !== undefined ? { epochs: opts.epochs } : {}),
    ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
    ...(opts.deviceMemory !== undefined ? { deviceMemoryGiB: opts.deviceMemory } : {}),
    ...(opts.lrSchedule !== undefined ? { lrSchedule: opts.lrSchedule } : {}),
  });
}

const TORCHRUN_FLAGS = [
  ['--nproc-per-node', 'nprocPerNode'],
  ['--nnodes', 'nnodes'],
  ['--node-rank', 'nodeRank'],
  ['--rdzv-endpoint', 'rdzvEndpoint'],
  ['--export', 'export'],
  ['--python', 'python'],
] as const;

/** The torchrun flags for the flow. */
function torchrunOptions(opts: TrainOptions): TorchrunOptions {
  return {
    ...(opts.nprocPerNode !== undefined ? { nprocPerNode: opts.nprocPerNode } : {}),
    ...(opts.nnodes !== undefined ? { nnodes: opts.nnodes } : {}),
    ...(opts.nodeRank !== undefined ? { nodeRank: opts.nodeRank } : {}),
    ...(opts.rdzvEndpoint !== undefined ? { rdzvEndpoint: opts.rdzvEndpoint } : {}),
    ...(opts.export !== undefined ? { export: opts.export as ExportKind } : {}),
    ...(opts.python !== undefined ? { python: opts.python } : {}),
  };
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The flags that would change a resumed run's plan (it keeps the one it was started with). */
const PLAN_FLAGS = [
  ['--batch-size', 'batchSize'],
  ['--backend', 'backend'],
  ['--device-memory', 'deviceMemory'],
  ['--lr-schedule', 'lrSchedule'],
  ['--probe / --no-probe', 'probe'],
] as const;

/** The run folder's recorded config (resume.ts reads it again with its plan); a message when it cannot be resumed. */
function resumeConfig(runDir: string, opts: TrainOptions): TrainConfig | string {
  const changed = PLAN_FLAGS.filter(([, k]) => opts[k] !== undefined).map(([f]) => f);
  if (changed.length) return `--resume continues a run with the plan it was started with: leave out ${changed.join(', ')} (only --epochs and --max-steps apply)`;
  try {
    return readRunConfig(runDir);
  } catch (e) {
    if (e instanceof ResumeError) return e.message;
    throw e;
  }
}

/** The config to train: the file's with the flags applied, or the resumed run's recorded one; a message for bad input. */
function configToTrain(configPath: string | undefined, opts: TrainOptions): TrainConfig | string {
  if (configPath === undefined && opts.resume === undefined) return 'pass a *.train.json config, or --resume <run folder> to continue a run';
  if (configPath !== undefined && opts.resume !== undefined) return `--resume continues ${opts.resume} with its own recorded config: leave out ${configPath}`;
  try {
    return opts.resume !== undefined ? resumeConfig(opts.resume, opts) : applyOverrides(loadConfigFile(configPath!), opts);
  } catch (e) {
    const c = classifyError(e);
    if (c.kind === 'bad-input') return c.message;
    throw e;
  }
}

export async function trainCommand(configPath: string | undefined, opts: TrainOptions, io: TrainIo): Promise<number> {
  const fail = (message: string, code: number): number => {
    io.stderr.write(`batch-advisor: ${message.split('\n')[0]}\n`);
    return code;
  };
  const config = configToTrain(configPath, opts);
  if (typeof config === 'string') return fail(config, EXIT_CODES['bad-input']);
  // --resume, or a config's "resume" (its "epochs", or --epochs, train to that many in all).
  const resume = opts.resume !== undefined ? { runDir: resolve(opts.resume) } : config.resume;
  const resumeEpochs = opts.epochs ?? resume?.epochs;
  const shownConfig = configPath ?? join(opts.resume ?? '', 'config.json');

  const reporter = new Reporter(io, opts.json === true);
  const workspaceRoot = io.workspaceRoot ?? (opts.resume !== undefined ? runWorkspace(opts.resume) : findWorkspaceRoot(dirname(resolve(shownConfig))));
  const shown = { dir: '' };
  const flow = new TrainFlow({
    config,
    trainerScript: io.trainerScript,
    workspaceRoot,
    ...(io.headroom !== undefined ? { headroom: io.headroom } : {}),
    ...(opts.maxSteps !== undefined ? { maxSteps: opts.maxSteps } : {}),
    ...(opts.probe !== undefined ? { probe: opts.probe } : {}),
    ...(io.watchdog ? { watchdog: io.watchdog } : {}),
    ...(io.makePlan ? { makePlan: io.makePlan } : {}),
    ...(io.test ? { test: io.test } : {}),
    torchrun: torchrunOptions(opts),
    ...(resume ? { resume: { runDir: resume.runDir, ...(resumeEpochs !== undefined ? { epochs: resumeEpochs } : {}) } } : {}),
    onPhase: (phase, message) => {
      if (!opts.json && phase === 'planning') reporter.out(message);
    },
    onPlan: (plan, runDir) => {
      shown.dir = relative(process.cwd(), runDir) || runDir;
      if (opts.json) return;
      for (const line of planLines(plan)) {
        if (line.startsWith('Warning')) reporter.err(line);
        else reporter.out(line);
      }
      reporter.out(`Run folder: ${shown.dir}`);
    },
    onEvent: (e) => reporter.event(e),
    onLog: (level, message) => {
      if (level === 'warn' && !opts.json && flow.phase === 'planning') reporter.err(`Warning: ${message}`);
    },
  });
  const stops = new StopSignals(io.signals ?? process, flow, () => !opts.json && reporter.err('Stopping after the current batch… (Ctrl-C again to quit at once)'));
  let result: TrainFlowResult;
  try {
    result = await flow.run();
  } catch (e) {
    const c = classifyError(e);
    if (c.kind === 'cancelled') return fail('stopped before training started; no run folder was created', EXIT_CODES.cancelled);
    // A full disk while making the run folder (FsResourceError) is a failure while working, said as is.
    return fail(c.kind === 'internal' && (e as Error | undefined)?.name !== 'FsResourceError' ? `the trainer could not start: ${c.message}` : c.message, EXIT_CODES[c.kind]);
  } finally {
    stops.dispose();
  }
  return outcome(result, { reporter, io, json: opts.json === true, shownDir: shown.dir, shownConfig, interrupted: stops.count > 0 });
}

/** Ctrl-C, SIGTERM (a timeout, a cancelled CI job) and SIGHUP (the terminal closed) stop the run after the current batch; a second one ends it at once. */
class StopSignals {
  count = 0;
  private readonly on = (): void => {
    this.count++;
    if (this.count === 1) {
      this.announce();
      this.flow.stop();
    } else {
      this.flow.kill();
    }
  };

  constructor(
    private readonly signals: NodeJS.EventEmitter,
    private readonly flow: TrainFlow,
    private readonly announce: () => void,
  ) {
    for (const sig of STOP_SIGNALS) signals.on(sig, this.on);
  }

  dispose(): void {
    for (const sig of STOP_SIGNALS) this.signals.off(sig, this.on);
  }
}

/** What the person reads at the end of a run, and the exit code (README: 0 done, 1 failure while working, 2 bad input, 130 stopped). */
function outcome(result: TrainFlowResult, o: { reporter: Reporter; io: TrainIo; json: boolean; shownDir: string; shownConfig: string; interrupted: boolean }): number {
  const { end, plan } = result;
  const { reporter, shownDir, shownConfig } = o;
  if (result.exported) {
    if (!o.json) reporter.out(`Wrote ${relative(process.cwd(), result.exported) || result.exported}: submit it on the cluster (nothing was launched here).`);
    return 0;
  }
  if (end.status === 'completed') {
    if (!o.json) reporter.out(`Done${end.message ? ` (${end.message})` : ''}. Model: ${join(shownDir, 'model', 'model.json')}`);
    return 0;
  }
  if (end.status === 'stopped') {
    if (!o.json) reporter.out(`Stopped. The run is kept in ${shownDir}`);
    else o.io.stderr.write(`Stopped. The run is kept in ${shownDir}\n`);
    return o.interrupted ? EXIT_CODES.cancelled : 1;
  }
  // Failed.
  const message = end.message ?? 'training failed';
  if (end.error === 'oom') {
    reporter.err(message);
    const smaller = end.suggestedBatchSize;
    if (smaller !== undefined && smaller < plan.microBatchSize) reporter.err(`Run again with "batchSize": ${smaller} in ${shownConfig} (or --batch-size ${smaller}). Run folder: ${shownDir}`);
    else reporter.err(`Run again with a smaller "imageSize" in ${shownConfig}. Run folder: ${shownDir}`);
    return EXIT_CODES.oom;
  }
  if (end.error === 'diverged') {
    reporter.err(message);
    reporter.err(`Run folder: ${shownDir}`);
    return EXIT_CODES.diverged;
  }
  reporter.err(`Training failed: ${message.split('\n')[0]}`);
  reporter.err(`Run folder: ${shownDir}`);
  return end.error === 'bad-input' ? EXIT_CODES['bad-input'] : EXIT_CODES.internal;
}
