/**
 * The whole suggestion, shared by the CLI and the extension: scan the dataset and read the devices
 * (in parallel), have the trainer child describe the model, then plan memory and recommend.
 */
import type { TrainConfig } from '../config';
import { tooFewClasses } from '../dataset/list';
import { inspectDataset } from '../dataset/inspect';
import { noUsableImagesMessage } from '../dataset/verdict';
import { chooseDevice, listDevices } from '../devices/devices';
import { dataParallelAdvice, type DataParallelInput } from '../planning/data-parallel';
import { estimateMemory } from '../planning/memory';
import { makePlan } from '../planning/plan';
import { DEFAULT_HEADROOM, memoryBudget, type SuggestStage } from '../shared/constants';
import { probePlan } from '../probe/probe';
import { ProbeCache, probeCacheKey } from '../probe/cache';
import { childTrialRunner } from './run-trial';
import type { ProbeTrialResult, TrialRunner } from '../shared/probe';
import { abortError } from '../shared/errors';

export { DEFAULT_HEADROOM, type SuggestStage } from '../shared/constants';
import { recommend } from '../planning/recommend';
import type { DeviceInfo } from '../shared/device-types';
import type { DatasetReport } from '../shared/dataset-types';
import type { TrainingPlan } from '../shared/plan';
import type { BackendName, DescribedMessage } from '../shared/protocol';
import type { BackendLocation } from '../shared/run-spec';
import { backendLocation, runSetup } from '../planning/run-spec';
import type { SuggestReport } from '../shared/report';
import { TrainerClient } from './trainer-client';
import { torchrunSummary } from '../torchrun/plan';
import { torchTrials, type TorchTrials } from '../torchrun/probe';
import { findTorchPython, type TorchPython } from '../torchrun/python';

/** The input is readable but cannot be planned for (e.g. a folder without images). */
export class SuggestInputError extends Error {
  override readonly name = 'SuggestInputError';
}


export interface SuggestProgress {
  stage: SuggestStage;
  message: string;
  filesSeen?: number;
}

export interface SuggestOptions {
  /** dist/trainer.js (or the .ts entry under tsx in tests). */
  trainerScript: string;
  signal?: AbortSignal;
  onProgress?: (p: SuggestProgress) => void;
  /** Fraction of free memory kept free. Default 0.10. */
  headroom?: number;
  /** Plan for a device with this much memory (overrides the config's deviceMemoryGiB). */
  deviceMemoryGiB?: number;
  /** Lines for the log. */
  log?: (message: string) => void;
  /** Test hook: a pause (ms) at every yield of the dataset scan (see InternalInspectOptions.yieldDelayMs). */
  scanYieldDelayMs?: number;
  /** Confirm the plan with real training steps. Default: the config's `probe`, else on for `"batchSize": "auto"`. */
  probe?: boolean;
  /** Folder of the probe cache (see probe/cache.ts); without it every probe runs its trials. */
  probeCacheDir?: string;
  /** Each probe trial as it ends. */
  onProbeTrial?: (r: ProbeTrialResult, phase: 'search' | 'confirm') => void;
  /** Time a probe trial may take before it is killed (ms). */
  probeTimeoutMs?: number;
  /** Where the trainer looks for tfjs-node(-gpu) (default: the config's folder; see core/planning/run-spec.ts backendLocation). */
  backendLocation?: BackendLocation;
  /** Extra environment for the trial processes (e.g. the tfjs-node path). */
  env?: Record<string, string>;
  /** Runs one trial (test seam). Default: a fresh trainer child per trial. */
  probeRunner?: TrialRunner;
  /** Skips the probe (kills the trial in progress): the report keeps the memory model's plan. */
  probeSkipSignal?: AbortSignal;
  /** Reads the devices (test seam). Default: listDevices(). */
  listDevices?: () => Promise<DeviceInfo[]>;
  /** For "engine": "torchrun": the Python whose torch runs the probe's trials (default: the first of python3, /usr/bin/python3 with torch). */
  torchPython?: TorchPython;
}



/**
 * The backend the plan assumes: the one the trainer resolved for the config's choice (`resolved`,
 * what the run will use). Without it (a trainer that could not load an explicit choice: the run
 * will say why): TensorFlow with CUDA on a GPU (real or planned), else the config's choice on host
 * RAM — where "auto" means wasm.
 */
export function planBackend(config: TrainConfig, device: DeviceInfo, resolved?: BackendName): BackendName {
  if (resolved) return resolved;
  if (device.kind === 'gpu') return 'tensorflow-gpu';
  if (config.backend === 'tensorflow' || config.backend === 'cpu') return config.backend;
  return 'wasm';
}

/** The plan with data-parallel advice added when the machine has several GPUs. */
function withDataParallel(plan: TrainingPlan, rest: Omit<DataParallelInput, 'plan'>): TrainingPlan {
  const advice = dataParallelAdvice({ plan, ...rest });
  return advice ? { ...plan, dataParallel: advice } : plan;
}

/** The model's description and the backend the config's choice gets, both from one trainer child (looked for at `location`, as the run will). */
async function describeAndResolve(config: TrainConfig, numClasses: number, location: BackendLocation, opts: SuggestOptions): Promise<DescribedMessage> {
  const { signal, log } = opts;
  const [h, w] = config.imageSize;
  const client = new TrainerClient({ trainerScript: opts.trainerScript, ...(opts.env ? { env: opts.env } : {}), ...(log ? { onLog: (e) => log(e.message) } : {}) });
  const onAbort = () => client.dispose();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await client.describeOn({ model: config.model, widthMultiplier: config.widthMultiplier }, [h, w, config.channels], numClasses, { choice: config.backend, ...location });
  } catch (e) {
    if (signal?.aborted) throw abortError();
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    client.dispose();
  }
}

/** Scans the dataset folder; a folder that cannot be trained on is a SuggestInputError naming it. */
async function scanDataset(config: TrainConfig, opts: SuggestOptions): Promise<DatasetReport> {
  const { signal, onProgress } = opts;
  onProgress?.({ stage: 'scan', message: `Scanning ${config.dataset}`, filesSeen: 0 });
  const dataset = await inspectDataset(config.dataset, {
    validationSplit: config.validationSplit,
    imageSize: config.imageSize,
    channels: config.channels,
    ...(signal ? { signal } : {}),
    ...(opts.scanYieldDelayMs ? { yieldDelayMs: opts.scanYieldDelayMs } : {}),
    onProgress: (p) => onProgress?.({ stage: 'scan', message: `Scanned ${p.filesSeen.toLocaleString('en-US')} files`, filesSeen: p.filesSeen }),
  });
  opts.log?.(`Scanned ${dataset.root}: ${dataset.totalImages} images in ${dataset.classes.length} classes (${dataset.scanMs} ms)`);
  const classes = tooFewClasses(dataset.root, dataset.classes.map((c) => c.name));
  if (classes && dataset.classes.length > 0) throw new SuggestInputError(classes);
  if (dataset.totalImages === 0) throw new SuggestInputError(noUsableImagesMessage(dataset));
  return dataset;
}

/** What the probe needs besides the memory model's report. */
interface ProbeContext {
  location: BackendLocation;
  plannedBackend: BackendName;
  headroom: number;
  freeHostRamBytes: number;
}

export async function suggest(input: { config: TrainConfig }, opts: SuggestOptions): Promise<SuggestReport> {
  const { config } = input;
  const { signal, onProgress } = opts;
  const headroom = opts.headroom ?? DEFAULT_HEADROOM;
  if (signal?.aborted) throw abortError();
  const devicesPromise = (opts.listDevices ?? listDevices)();
  const dataset = await scanDataset(config, opts);

  onProgress?.({ stage: 'devices', message: 'Reading device memory' });
  const devices = await devicesPromise;
  if (signal?.aborted) throw abortError();

  onProgress?.({ stage: 'model', message: `Describing model ${config.model}` });
  const location = opts.backendLocation ?? backendLocation(config);
  const { description: model, backend: resolved } = await describeAndResolve(config, dataset.classes.length, location, opts);
  if (signal?.aborted) throw abortError();
  // The device the backend that will run trains on (a GPU only for tensorflow-gpu), and the plan made for that backend.
  const device = chooseDevice(devices, opts.deviceMemoryGiB ?? config.deviceMemoryGiB, resolved?.name);
  const plannedBackend = planBackend(config, device, resolved?.name);
  if (resolved) opts.log?.(`backend: ${resolved.name} loads here${resolved.skipped.length ? ` (${resolved.skipped.map((x) => `${x.name}: ${x.reason}`).join('; ')})` : ''}; the plan is made for it`);

  onProgress?.({ stage: 'plan', message: 'Planning memory' });
  const budgetBytes = memoryBudget(device.memoryFreeBytes, headroom);
  const memory = estimateMemory(model, { optimizer: config.optimizer, budgetBytes, headroom, backend: plannedBackend });
  const freeHostRamBytes = devices.find((d) => d.kind === 'cpu')?.memoryFreeBytes ?? device.memoryFreeBytes;
  const recommendation = recommend({ dataset, memory, config, device, freeHostRamBytes });
  const plan = withDataParallel(makePlan({ config, dataset, device, memory, recommendation, plannedBackend }), { devices, device, memory, headroom, optimizer: config.optimizer });
  const report: SuggestReport = { config, dataset, devices, device, model, optimizer: config.optimizer, memory, recommendation, plan };
  if (config.batchGrowth) plan.warnings.push('Batch growth needs the probe\'s measurements ("batchSize": "auto" with the probe): it is off for this plan.');
  const out = opts.probe ?? config.probe ?? config.batchSize === 'auto' ? await probeReport(report, { location, plannedBackend, headroom, freeHostRamBytes }, opts) : report;
  return withTorchrun(out);
}

/**
 * With "engine": "torchrun", the final plan on the processes `train` launches (the config's
 * nprocPerNode, else one per GPU, else 1): the numbers the generated script trains at, made by the
 * same function as the run's (dataParallelPlan).
 */
function withTorchrun(report: SuggestReport): SuggestReport {
  const c = report.config;
  if (c.engine !== 'torchrun') return report;
  return { ...report, torchrun: torchrunSummary(report.plan, c.nprocPerNode ?? Math.max(1, report.devices.filter((d) => d.kind === 'gpu').length)) };
}

/** The memory model's report confirmed (and its batch chosen) by the probe's real training steps. */
async function probeReport(report: SuggestReport, p: ProbeContext, opts: SuggestOptions): Promise<SuggestReport> {
  const { config, dataset, devices, device, memory, recommendation, plan } = report;
  const { signal, onProgress, log } = opts;
  const { plannedBackend, headroom } = p;
  onProgress?.({ stage: 'probe', message: `Probing: real training steps at batch ${Math.max(1, recommendation.maxBatchSize === Number.MAX_SAFE_INTEGER ? recommendation.batchSize : recommendation.maxBatchSize)}…` });
  const skip = opts.probeSkipSignal;
  const trialSignal = signal && skip ? AbortSignal.any([signal, skip]) : (signal ?? skip);
  const torch = config.engine === 'torchrun' && !opts.probeRunner ? await torchProbe(report, p.location, opts, trialSignal) : undefined;
  const runTrial =
    opts.probeRunner ??
    torch?.trials?.runTrial ??
    childTrialRunner(runSetup(config, plannedBackend, p.location), {
      trainerScript: opts.trainerScript,
      ...(trialSignal ? { signal: trialSignal } : {}),
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.probeTimeoutMs !== undefined ? { timeoutMs: opts.probeTimeoutMs } : {}),
      ...(log ? { log } : {}),
    });
  const cache = opts.probeCacheDir ? new ProbeCache(opts.probeCacheDir, probeCacheKey({ config, dataset, device, plannedBackend, headroom }), log) : undefined;
  const runner = cache ? cache.runner(runTrial) : runTrial;
  let trialNo = 0;
  const skipped = (): SuggestReport => {
    log?.('probe skipped');
    const w = 'The probe was skipped: the batch size comes from the memory model alone, not confirmed by real training steps.';
    plan.warnings.push(w);
    recommendation.warnings.push(w);
    return report;
  };
  if (skip?.aborted) return skipped();
  let probed;
  try {
    probed = await probePlan(
      { config, dataset, device, memory, plannedBackend, freeHostRamBytes: p.freeHostRamBytes, margin: headroom },
      {
        runTrial: runner,
        onTrial: (r, phase) => {
          trialNo++;
          const what = (r.ok ? `trained, ${r.imagesPerSec.toFixed(1)} images/s` : `${r.failure ?? 'failed'}${r.error ? `: ${r.error}` : ''}`) + (r.cached ? ' (from the probe cache)' : '');
          log?.(`probe trial ${trialNo} (${phase}) at batch ${r.batchSize}${r.accumulationSteps > 1 ? ` × ${r.accumulationSteps}` : ''}: ${what}`);
          opts.onProbeTrial?.(r, phase);
          onProgress?.({ stage: 'probe', message: `Probe trial ${trialNo} at batch ${r.batchSize}: ${r.ok ? 'trained' : (r.failure ?? 'failed')}; next trial running…` });
        },
      },
    );
  } catch (e) {
    if (!signal?.aborted && skip?.aborted) return skipped();
    throw e;
  } finally {
    torch?.trials?.dispose();
  }
  if (signal?.aborted) throw abortError();
  if (torch) noteTorchProbe(probed, torch);
  if (cache) {
    probed.probe.cache = { file: cache.file, reused: cache.reused, hit: cache.reused > 0 && probed.probe.processes === 0 };
    if (probed.probe.cache.hit) {
      const line = `The probe's ${cache.reused} trial${cache.reused === 1 ? ' was' : 's were'} reused from the probe cache (${cache.file}): no trial ran. Delete the file to measure again.`;
      probed.plan.reasons.push(line);
      probed.recommendation.reasons.push(line);
    }
  }
  return {
    ...report,
    recommendation: probed.recommendation,
    plan: withDataParallel(probed.plan, { devices, device, memory, headroom, optimizer: config.optimizer }),
    probe: probed.probe,
    ...(probed.gradientNoiseScale ? { gradientNoiseScale: probed.gradientNoiseScale } : {}),
  };
}

/**
 * A torchrun run's probe runs on PyTorch (torchrun/probe.ts): the trials' folder prepared, or — with
 * no Python with torch here — why the trials run on TensorFlow.js instead.
 */
async function torchProbe(report: SuggestReport, location: BackendLocation, opts: SuggestOptions, signal: AbortSignal | undefined): Promise<{ trials?: TorchTrials; why?: string }> {
  let python = opts.torchPython;
  try {
    python ??= await findTorchPython();
  } catch (e) {
    return { why: e instanceof Error ? e.message : String(e) };
  }
  opts.log?.(`probe: trials on torch ${python.torchVersion} (${python.python}), the engine this run trains on`);
  const trials = await torchTrials(report.config, report.plan, location, {
    python,
    trainerScript: opts.trainerScript,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.probeTimeoutMs !== undefined ? { timeoutMs: opts.probeTimeoutMs } : {}),
    ...(signal ? { signal } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  return { trials };
}

/** Where a torchrun run's trials ran, in the plan's reasons (or why not on torch, in its warnings). */
function noteTorchProbe(probed: { plan: TrainingPlan; recommendation: SuggestReport['recommendation'] }, torch: { trials?: TorchTrials; why?: string }): void {
  if (torch.trials) {
    const line = `The probe's trials ran on ${torch.trials.describe}, the engine this run trains on: the batch sizes, memory and speed above are PyTorch's.`;
    probed.plan.reasons.push(line);
    probed.recommendation.reasons.push(line);
  } else {
    const line = `The probe's trials ran on TensorFlow.js, not on the torchrun engine that will train: ${torch.why ?? 'no Python with torch'}.`;
    probed.plan.warnings.push(line);
    probed.recommendation.warnings.push(line);
  }
}
