/**
 * The one training flow both front ends use (`batch-advisor train` and the extension's Train
 * command): check the dataset → make the plan → create the run folder (config.json + plan.json) →
 * start the trainer with the plan → stream its events → the run-end.
 *
 * The plan comes from the suggestion (`suggest`); when that cannot be made for a reason other than
 * bad input (e.g. the devices cannot be read), one fallback rule applies (`fallbackPlan`) and the
 * plan says why. Bad input (config, dataset, model file) is a FlowInputError and nothing is created.
 * `stop()` works in every phase: while planning it cancels (AbortError, no run folder); once the
 * run folder exists it asks the trainer to stop after the current batch (the run ends 'stopped').
 */
import { basename, join } from 'node:path';
import type { TrainConfig } from '../config';
import { listDatasetFiles, tooFewClasses, unreadableClassFolder } from '../dataset/list';
import { fallbackPlan } from '../planning/plan';
import { PROBE_CACHE_FOLDER } from '../probe/cache';
import { createRunDir } from '../run-folder/runs';
import { readResumePoint, recordResumedPlan, ResumeError, type ResumePoint } from '../run-folder/resume';
import { backendLocation, buildRunSpec, runSetup } from '../planning/run-spec';
import { preflight, type PreflightOutcome, type PreflightRunnerFactory } from './preflight';
import { childTrialRunner } from './run-trial';
import { PROTOCOL_VERSION } from '../shared/protocol';
import type { BackendLocation, RunResume, RunTest } from '../shared/run-spec';
import { cannotFitEnd, planCannotFit, recordRunEnd } from '../planning/fit-gate';
import { StepWatchdog, stallEnd, type WatchdogOptions } from './step-watchdog';
import type { DatasetReport } from '../shared/dataset-types';
import { IMAGE_EXTENSIONS_TEXT } from '../shared/constants';
import { abortError, classifyError } from '../shared/errors';
import type { TrainingPlan } from '../shared/plan';
import type { LogEvent, RunEndEvent, TrainEvent } from '../shared/protocol';
import { suggest } from './suggest';
import { TrainerClient } from './trainer-client';
import { checkTorchrun, TorchrunRun, worldSize, type TorchrunOptions, type TorchrunReady } from '../torchrun/flow';
import { dataParallelPlan } from '../torchrun/plan';
import type { TorchPython } from '../torchrun/python';

/** The config or dataset cannot be trained on; the message names the file or field. */
export class FlowInputError extends Error {
  override readonly name = 'FlowInputError';
}

export type TrainPhase = 'checking' | 'planning' | 'starting' | 'training' | 'ended';

export interface TrainFlowOptions {
  config: TrainConfig;
  /** dist/trainer.js (or src/trainer/main.ts under tsx in tests). */
  trainerScript: string;
  /** Where `.batch-advisor/runs/` goes. */
  workspaceRoot: string;
  /** Fraction of free memory kept free. */
  headroom?: number;
  /** Plan for a device with this much memory (a setting or --device-memory; overrides the config's). */
  deviceMemoryGiB?: number;
  /** Stop after this many optimizer steps in total (smoke runs). */
  maxSteps?: number;
  /** The stuck-step watchdog's limits (the entry point reads them from its environment for tests and slow machines). */
  watchdog?: WatchdogOptions;
  /** Measure the plan with the probe (default: the config's `probe`, else on for "batchSize": "auto"); its cache is `<workspaceRoot>/.batch-advisor/probe-cache`. */
  probe?: boolean;
  /** Extra environment for the trainer child (its runtime settings: wasm threads, SIMD). */
  env?: Record<string, string>;
  /** The batchAdvisor.tfjsNodePath setting: where the description, the probe and the run look for tfjs-node(-gpu). */
  tfjsNodePath?: string;
  /** Fault injection for tests (the entry points read it from their environment): it travels in the RunSpec. */
  test?: RunTest;
  onPhase?: (phase: TrainPhase, message: string) => void;
  /** The plan and the run folder, before the trainer starts. */
  onPlan?: (plan: TrainingPlan, runDir: string) => void;
  onEvent?: (e: TrainEvent) => void;
  onLog?: (level: LogEvent['level'], message: string) => void;
  /** Runs the trials of the pre-flight check (preflight.ts; test seam). Default: the probe's child trial runner. */
  preflightRunner?: PreflightRunnerFactory;
  /** Makes the plan (test seam). Default: the suggestion's plan. */
  makePlan?: (config: TrainConfig, signal: AbortSignal) => Promise<TrainingPlan>;
  /** For a config with "engine": "torchrun": processes, nodes, an export instead of a launch (src/core/torchrun/flow.ts). */
  torchrun?: TorchrunOptions;
  /**
   * Continue this run folder's training instead of starting a new run (core/run-folder/resume.ts):
   * its recorded config and plan, nothing planned again; `epochs` trains to that many in all.
   * `config` is then only where the request came from.
   */
  resume?: { runDir: string; epochs?: number };
}

export interface TrainFlowResult {
  runDir: string;
  plan: TrainingPlan;
  end: RunEndEvent;
  /** The cluster script written instead of launching (torchrun --export). */
  exported?: string;
}

/** Keras's split: validation = floor(split × N). */
function splitCounts(total: number, validationSplit: number): Pick<DatasetReport, 'train' | 'validation'> {
  const validation = Math.floor(validationSplit * total);
  return { train: total - validation, validation };
}

/** A dataset the trainer can use, or a FlowInputError naming the folder. Returns the image count. */
export async function checkDataset(config: TrainConfig, signal?: AbortSignal): Promise<number> {
  let listing: Awaited<ReturnType<typeof listDatasetFiles>>;
  try {
    listing = await listDatasetFiles(config.dataset, signal ? { signal } : {});
  } catch (e) {
    if (signal?.aborted) throw abortError();
    const c = classifyError(e);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FlowInputError(`${config.dataset}: dataset folder not found`);
    if (code === 'ENOTDIR') throw new FlowInputError(`${config.dataset}: the dataset must be a folder`);
    if (c.kind === 'bad-input' || code) throw new FlowInputError(c.message);
    throw e;
  }
  const classes = tooFewClasses(config.dataset, listing.classNames) ?? unreadableClassFolder(listing);
  if (classes) throw new FlowInputError(classes);
  if (listing.files.length === 0) throw new FlowInputError(`${config.dataset}: no images (${IMAGE_EXTENSIONS_TEXT}) in its class folders`);
  return listing.files.length;
}

export class TrainFlow {
  private readonly abort = new AbortController();
  private client: TrainerClient | undefined;
  private torch: TorchrunRun | undefined;
  private stopAsked = false;
  phase: TrainPhase = 'checking';

  /** Where every trainer child of this flow looks for tfjs-node(-gpu). */
  private readonly location: BackendLocation;

  constructor(private readonly opts: TrainFlowOptions) {
    this.location = backendLocation(opts.config, { workspaceRoot: opts.workspaceRoot, ...(opts.tfjsNodePath ? { tfjsNodePath: opts.tfjsNodePath } : {}) });
  }

  /** Asks the flow to stop: cancels planning, or stops the run after the current batch. */
  stop(): void {
    this.stopAsked = true;
    this.abort.abort();
    this.client?.stop();
    this.torch?.stop();
  }

  /** Ends the trainer at once (a second Ctrl-C, the editor closing). */
  /** Ends everything now (see TrainerClient.dispose); true when a run in progress was recorded as stopped with `reason`. */
  kill(reason?: string): boolean {
    this.abort.abort();
    return (this.client?.dispose(reason) ?? false) || (this.torch?.kill(reason) ?? false);
  }

  get stopRequested(): boolean {
    return this.stopAsked;
  }

  private extra: Pick<TrainFlowOptions, 'onPhase' | 'onEvent'> = {};

  private setPhase(phase: TrainPhase, message: string): void {
    this.phase = phase;
    this.opts.onPhase?.(phase, message);
    this.extra.onPhase?.(phase, message);
  }

  private async plan(config: TrainConfig, total: number, torchPython?: TorchPython): Promise<TrainingPlan> {
    const { opts } = this;
    const signal = this.abort.signal;
    const make =
      opts.makePlan ??
      (async (c: TrainConfig, s: AbortSignal) =>
        (
          await suggest(
            { config: c },
            {
              trainerScript: opts.trainerScript,
              signal: s,
              ...(opts.headroom !== undefined ? { headroom: opts.headroom } : {}),
              ...(opts.deviceMemoryGiB !== undefined ? { deviceMemoryGiB: opts.deviceMemoryGiB } : {}),
              ...(opts.probe !== undefined ? { probe: opts.probe } : {}),
              ...(opts.env ? { env: opts.env } : {}),
              backendLocation: this.location,
              probeCacheDir: join(opts.workspaceRoot, PROBE_CACHE_FOLDER),
              ...(torchPython ? { torchPython } : {}),
              log: (line) => opts.onLog?.('info', line),
            },
          )
        ).plan);
    try {
      return await make(config, signal);
    } catch (e) {
      if (signal.aborted) throw abortError();
      const c = classifyError(e);
      if (c.kind === 'bad-input') throw new FlowInputError(c.message);
      if (c.kind === 'cancelled') throw e;
      opts.onLog?.('warn', `could not make a plan (${c.message}); using the fallback rule`);
      return fallbackPlan(config, splitCounts(total, config.validationSplit), c.message);
    }
  }

  /** Runs the flow once; `extra` handlers are called after the options' own. */
  async run(extra: Pick<TrainFlowOptions, 'onPhase' | 'onEvent'> = {}): Promise<TrainFlowResult> {
    this.extra = extra;
    const { opts } = this;
    const resume = opts.resume ?? opts.config.resume;
    if (resume) return this.resumeRun(resume);
    const config = opts.config;
    this.setPhase('checking', `Checking ${config.dataset}`);
    const total = await checkDataset(config, this.abort.signal);
    if (this.abort.signal.aborted) throw abortError();

    // The torchrun engine: Python with torch and a model it translates, checked before anything is made.
    const torch = config.engine === 'torchrun' ? await this.checkTorch(config) : undefined;
    this.setPhase('planning', 'Planning the run (batch size, learning rate, loading)…');
    const planned = await this.plan(config, total, torch?.python);
    if (this.abort.signal.aborted) throw abortError();
    const plan = torch ? dataParallelPlan(planned, worldSize(torch.launch)) : planned;

    const runDir = createRunDir(opts.workspaceRoot, config, plan);
    opts.onPlan?.(plan, runDir);
    // A plan predicted far over the device ends now, as out of memory, instead of never moving.
    const cannot = planCannotFit(plan, config.imageSize);
    if (cannot) return this.ended(runDir, plan, cannotFitEnd(runDir, cannot), extra);
    if (torch) return this.runTorch(config, runDir, plan, torch, extra);
    // A micro-batch predicted near the budget is tried first: one that does not fit ends now.
    const pre = await this.preflight(config, plan);
    if (pre.kind === 'stopped') return this.ended(runDir, plan, this.stoppedBeforeTraining(runDir), extra);
    if (pre.kind === 'cannot-fit') return this.ended(runDir, plan, cannotFitEnd(runDir, pre.verdict), extra);
    const firstStepMs = pre.kind === 'fits' ? Math.min(opts.watchdog?.firstStepMs ?? Infinity, pre.firstStepMs) : opts.watchdog?.firstStepMs;
    return this.train(config, plan, runDir, firstStepMs);
  }

  /** Continues a run folder's training: its recorded config and plan, from the epoch after its last saved one. */
  private async resumeRun(resume: NonNullable<TrainFlowOptions['resume']>): Promise<TrainFlowResult> {
    const { opts } = this;
    this.setPhase('checking', `Reading ${resume.runDir}`);
    let point: ResumePoint;
    try {
      point = readResumePoint(resume.runDir, resume.epochs !== undefined ? { epochs: resume.epochs } : {});
    } catch (e) {
      if (e instanceof ResumeError) throw new FlowInputError(e.message);
      throw e;
    }
    // Our trainer would continue it on another engine than it started on.
    if (point.config.engine === 'torchrun') throw new FlowInputError(`${resume.runDir}: a torchrun engine run cannot be resumed yet; start a new run (its model/ holds the last epoch's weights: "model": "${join(resume.runDir, 'model', 'model.json')}")`);
    await checkDataset(point.config, this.abort.signal);
    if (this.abort.signal.aborted) throw abortError();
    recordResumedPlan(point);
    opts.onPlan?.(point.plan, point.runDir);
    opts.onLog?.('info', `resuming ${basename(point.runDir)} after epoch ${point.resume.epoch} of ${point.plan.epochs} (optimizer step ${point.resume.globalStep})`);
    // The batch already trained in this run: no pre-flight trial.
    return this.train(point.config, point.plan, point.runDir, opts.watchdog?.firstStepMs, point.resume);
  }

  /** Starts the trainer on the RunSpec and streams its events to the run-end. */
  private async train(config: TrainConfig, plan: TrainingPlan, runDir: string, firstStepMs: number | undefined, resume?: RunResume): Promise<TrainFlowResult> {
    const { opts, extra } = this;
    this.setPhase('starting', `Starting the trainer in ${basename(runDir)}`);
    const client = new TrainerClient({
      trainerScript: opts.trainerScript,
      ...(opts.env ? { env: opts.env } : {}),
      onLog: (e) => opts.onLog?.(e.level, e.message),
    });
    this.client = client;
    // A stop asked for between planning and here still reaches the trainer (the client delivers
    // it right after the train request).
    if (this.stopAsked) client.stop();
    // A step that never ends (the trainer's thread is blocked) is ended from here as out of memory.
    // maxSteps counts this process's steps: a resumed run's last one is past the steps it had.
    const lastStep = opts.maxSteps !== undefined ? { maxSteps: (resume?.globalStep ?? 0) + opts.maxSteps } : {};
    const watchdog = new StepWatchdog({ ...opts.watchdog, ...(firstStepMs !== undefined ? { firstStepMs } : {}), ...lastStep }, (s) => client.abortRun(stallEnd(s, plan)));
    try {
      const spec = buildRunSpec(config, plan, { runDir, location: this.location, ...(opts.maxSteps !== undefined ? { maxSteps: opts.maxSteps } : {}), ...(opts.test ? { test: opts.test } : {}), ...(resume ? { resume } : {}) });
      const end = await client.train(spec, (e) => {
        watchdog.event(e);
        if (e.type === 'run-start') this.setPhase('training', `Training in ${basename(runDir)}`);
        opts.onEvent?.(e);
        extra.onEvent?.(e);
      });
      this.setPhase('ended', end.status);
      return { runDir, plan, end };
    } finally {
      watchdog.stop();
      client.dispose();
      this.client = undefined;
    }
  }

  private async checkTorch(config: TrainConfig): Promise<TorchrunReady> {
    try {
      return await checkTorchrun(config, this.opts.torchrun ?? {});
    } catch (e) {
      throw new FlowInputError(e instanceof Error ? e.message : String(e));
    }
  }

  /** A torchrun engine run in the run folder (its plan already the data-parallel one): no tfjs pre-flight, the trainer only prepares. */
  private async runTorch(config: TrainConfig, runDir: string, plan: TrainingPlan, ready: TorchrunReady, extra: Pick<TrainFlowOptions, 'onEvent'>): Promise<TrainFlowResult> {
    const { opts } = this;
    this.setPhase('starting', `Starting torchrun in ${basename(runDir)}`);
    const run = new TorchrunRun({
      trainerScript: opts.trainerScript,
      ...(opts.env ? { env: opts.env } : {}),
      ready,
      onLog: (level, message) => opts.onLog?.(level, message),
      onEvent: (e) => {
        if (e.type === 'run-start') this.setPhase('training', `Training in ${basename(runDir)}`);
        opts.onEvent?.(e);
        extra.onEvent?.(e);
      },
    });
    this.torch = run;
    if (this.stopAsked) run.stop();
    try {
      const spec = buildRunSpec(config, plan, { runDir, location: this.location, engine: ready.launch, ...(opts.maxSteps !== undefined ? { maxSteps: opts.maxSteps } : {}) });
      const end = await run.run(spec);
      this.setPhase('ended', end.status);
      return { runDir, plan, end, ...(run.exported ? { exported: run.exported } : {}) };
    } finally {
      this.torch = undefined;
    }
  }

  /** The pre-flight trial (preflight.ts), or 'stopped' when the person stopped during it. */
  private async preflight(config: TrainConfig, plan: TrainingPlan): Promise<PreflightOutcome | { kind: 'stopped' }> {
    const { opts } = this;
    const signal = this.abort.signal;
    const setup = runSetup(config, plan.backend.planned, this.location, opts.test);
    const runner: PreflightRunnerFactory =
      opts.preflightRunner ??
      ((timeoutMs) => childTrialRunner(setup, { trainerScript: opts.trainerScript, timeoutMs, signal, ...(opts.env ? { env: opts.env } : {}), log: (line) => opts.onLog?.('info', line) }));
    try {
      return await preflight(plan, runner, (line) => {
        this.setPhase('planning', `Trying batch ${plan.microBatchSize} before the run…`);
        opts.onLog?.('info', line);
      });
    } catch (e) {
      if (signal.aborted) return { kind: 'stopped' };
      throw e;
    }
  }

  private stoppedBeforeTraining(runDir: string): RunEndEvent {
    return recordRunEnd(runDir, { v: PROTOCOL_VERSION, type: 'run-end', time: new Date().toISOString(), status: 'stopped', message: 'Stopped before training started.' });
  }

  private ended(runDir: string, plan: TrainingPlan, end: RunEndEvent, extra: Pick<TrainFlowOptions, 'onEvent'>): TrainFlowResult {
    this.opts.onEvent?.(end);
    extra.onEvent?.(end);
    this.setPhase('ended', end.status);
    return { runDir, plan, end };
  }
}
