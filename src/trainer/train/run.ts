/**
 * A training run in the trainer child: backend → dataset (Keras split) → input pipeline → model →
 * epochs of optimizer steps (with gradient accumulation) → validation → model saved each epoch.
 *
 * Every event goes to `<runDir>/metrics.jsonl` first, then to the host (`send`). The run always
 * ends with exactly one run-end: 'completed', 'stopped' (the AbortSignal, honoured within one
 * batch) or 'failed' (out of memory with a suggested batch size, bad input, internal error).
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import type { TrainConfig } from '../../core/config';
import { WASM_HEAP_MAX, estimateMemory, maxBatchSize } from '../../core/memory';
import { batchAfterOom, IMAGE_EXTENSIONS_TEXT } from '../../core/shared/constants';
import { describeFsError } from '../../core/runs';
import { isResourceFsError } from '../../core/fs-errors';
import { listDatasetFiles, tooFewClasses, unreadableClassFolder } from '../../core/dataset/list';
import { Prober, unusableReason } from '../../core/dataset/probe';
import { abortError } from '../../core/shared/errors';
import { learningRateAt, learningRateForBatch, type TrainingPlan } from '../../core/shared/plan';
import type { BackendName, BatchEvent, LogEvent, RunEndEvent, TrainerMessage, TrainEvent, TrainRequest } from '../../core/shared/protocol';
import { initBackend } from '../backend';
import { ImagePipeline, type Batch } from '../data/pipeline';
import { splitFiles } from '../data/split';
import { BadInputError, DivergedError, classifyError, isOutOfMemory } from '../errors';
import { describeModel } from '../models/describe';
import { buildClassifier } from '../models/zoo';
import type { Head } from '../../core/shared/head';
import { tf } from '../tf';
import { BatchGrowth, halves } from './growth';
import { RunFiles } from './run-files';
import { MemoryLimit, memoryLimitFromEnv } from './memory-limit';
import { evaluateBatch, makeOptimizer, trainStep, type MicroBatch } from './step';
import { evaluateAtRunEnd } from '../eval/run-eval';

/** What the entry point (main.ts) passes in: test seams, and settings that reach the child through its environment. */
export interface RunHooks {
  /** Folder of a user-installed @tensorflow/tfjs-node(-gpu) (the batchAdvisor.tfjsNodePath setting). */
  tfjsNodePath?: string;
  /** Called before each optimizer step (1-based global step); throw to inject a failure. */
  beforeStep?: (globalStep: number, model: tf.LayersModel) => void;
  /** Options passed to the input pipeline (e.g. prefetch depth). */
  pipeline?: { prefetchBatches?: number; concurrency?: number };
  /** End the run as out of memory when its live tensors peak above this (memory-limit.ts). */
  memoryLimitBytes?: number;
}

/**
 * Fault injection for end-to-end tests through the real child process:
 * BATCH_ADVISOR_FAULT="oom@3" throws a TensorFlow-style OOM error before step 3;
 * "delay@50" makes every step at least 50 ms longer; "nan@2" makes the model's weights NaN before
 * step 2 (a run that diverges, deterministically); "spin@3" never finishes step 3 (a stuck step).
 */
export function hooksFromEnv(env: NodeJS.ProcessEnv): RunHooks {
  const tfjsNodePath = env['BATCH_ADVISOR_TFJS_NODE_PATH'];
  const memoryLimitBytes = memoryLimitFromEnv(env);
  return { ...(tfjsNodePath ? { tfjsNodePath } : {}), ...(memoryLimitBytes ? { memoryLimitBytes } : {}), ...faultFromEnv(env) };
}

function faultFromEnv(env: NodeJS.ProcessEnv): RunHooks {
  const spec = env['BATCH_ADVISOR_FAULT'];
  if (!spec) return {};
  const [kind, arg] = spec.split('@');
  const n = Number(arg);
  if (kind === 'oom') {
    return {
      beforeStep: (step) => {
        if (step === n) throw new Error('OOM when allocating tensor with shape[32,64,64,32] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc (injected)');
      },
    };
  }
  if (kind === 'nan') {
    return {
      beforeStep: (step, model) => {
        if (step === n) model.setWeights(model.getWeights().map((w) => tf.fill(w.shape, NaN)));
      },
    };
  }
  if (kind === 'spin') {
    // A step that never ends, as the wasm backend's when its heap is exhausted (the host's watchdog ends it).
    return {
      beforeStep: (step) => {
        // eslint-disable-next-line no-empty
        if (step === n) for (;;) {}
      },
    };
  }
    if (kind === 'delay') {
    return {
      beforeStep: () => {
        const t = performance.now();
        while (performance.now() - t < n) {
          /* a slow step */
        }
      },
    };
  }
  return {};
}

function now(): string {
  return new Date().toISOString();
}

const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The workspace folder of a run folder `<ws>/.batch-advisor/runs/<id>`. */
function workspaceOf(runDir: string): string {
  return resolve(runDir, '..', '..', '..');
}

/**
 * The message and the batch to try after an out-of-memory failure at `batchSize`. `fits` is the
 * largest batch the memory model says fits (0: not even 1), when it can be known (the wasm heap's
 * fixed 4 GiB); without it, half the batch. `imageSize` is [height, width].
 */
export function oomMessage(
  batchSize: number,
  accumulationSteps: number,
  cause: string,
  opts: { fits?: number; imageSize?: [number, number] } = {},
): { message: string; suggestedBatchSize?: number } {
  const first = (cause.split('\n')[0] ?? cause).replace(/\s*Build with -sASSERTIONS for more info\.?/, '').trim() || 'out of memory';
  const size = opts.imageSize ? ` at image size ${opts.imageSize[0]}×${opts.imageSize[1]}` : '';
  const half = batchSize > 1 ? batchAfterOom(batchSize) : 0;
  const suggested = opts.fits === undefined ? half : Math.min(half, opts.fits);
  if (batchSize <= 1 || suggested < 1) {
    return { message: `Out of memory: even batch size 1 does not fit${size} on this device${opts.fits === 0 ? ' (estimated for the wasm backend\'s 4 GiB heap)' : ''}: use a smaller imageSize (or a smaller model). (${first})` };
  }
  const effective = batchSize * accumulationSteps;
  const k = Math.ceil(effective / suggested);
  const keep = suggested * k === effective ? `, or ${suggested} with accumulationSteps ${k} to keep the effective batch of ${effective}` : `, or ${suggested} with accumulationSteps ${k} for an effective batch of ${suggested * k} (now ${effective})`;
  return { message: `Out of memory at batch size ${batchSize}: try ${suggested}${keep}. (${first})`, suggestedBatchSize: suggested };
}

/** The largest batch the memory model fits in the wasm heap for this model (undefined off wasm). */
export function wasmFittingBatch(model: tf.LayersModel | undefined, config: TrainConfig, backend: BackendName | undefined, accumulationSteps: number, head?: Head): number | undefined {
  if (!model || backend !== 'wasm') return undefined;
  try {
    const classes = head ? (head.loss === 'binary' ? 2 : head.units) : ((model.outputs[0]?.shape ?? []).at(-1) ?? 2);
    const desc = describeModel(model, config.model, [config.imageSize[0], config.imageSize[1], config.channels], classes, head);
    return maxBatchSize(estimateMemory(desc, { optimizer: config.optimizer, budgetBytes: WASM_HEAP_MAX, headroom: 0, backend: 'wasm', accumulationSteps }));
  } catch {
    return undefined;
  }
}

/** Polls nvidia-smi now and then (tensorflow-gpu only); the latest reading is attached to batch events. */
class GpuMemoryPoller {
  reading: { used: number; total: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  start(): void {
    const poll = (): void => {
      execFile('nvidia-smi', ['--query-gpu=memory.used,memory.total', '--format=csv,noheader,nounits'], { timeout: 5000 }, (err, stdout) => {
        if (err) return;
        const [used, total] = (stdout.split('\n')[0] ?? '').split(',').map((s) => Number(s.trim()) * 2 ** 20);
        if (used !== undefined && total !== undefined && Number.isFinite(used) && Number.isFinite(total)) this.reading = { used, total };
      });
    };
    poll();
    this.timer = setInterval(poll, 5000);
    this.timer.unref();
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

export async function runTraining(msg: TrainRequest, send: (m: TrainerMessage) => void, signal: AbortSignal, hooks: RunHooks = {}): Promise<void> {
  let files: RunFiles;
  try {
    files = new RunFiles(msg.runDir);
  } catch (e) {
    send({ v: 2, type: 'run-end', time: now(), status: 'failed', error: isResourceFsError(e) ? 'internal' : 'bad-input', message: `cannot write the run folder ${msg.runDir}: ${describeFsError(e)}` });
    return;
  }
  let ended = false;
  let writeFailed = false;
  const emit = (ev: TrainEvent): void => {
    if (ended) return;
    try {
      files.event(ev);
    } catch (e) {
      // A full disk must not stop the run from reporting to the host; say so once.
      if (!writeFailed) {
        writeFailed = true;
        try {
          send({ v: 2, type: 'log', level: 'warn', message: `cannot write ${files.dir}/metrics.jsonl: ${describeFsError(e)}; events reach this window only until it is fixed` });
        } catch {
          /* the host is gone too */
        }
      }
    }
    try {
      send(ev);
    } catch {
      /* the host is gone: the run folder still gets every event */
    }
    if (ev.type === 'run-end') ended = true;
  };
  const log = (level: LogEvent['level'], message: string): void => emit({ v: 2, type: 'log', level, message });
  const end = (e: Omit<RunEndEvent, 'v' | 'type' | 'time'>): void => emit({ v: 2, type: 'run-end', time: now(), ...e });

  let model: tf.LayersModel | undefined;
  let optimizer: tf.Optimizer | undefined;
  let head: Head | undefined;
  let backend: BackendName | undefined;
  const gpu = new GpuMemoryPoller();
  const config = msg.config;
  try {
    await train(msg, config, { emit, log, end, files, signal, hooks, gpu, setModel: (m, o, h) => ((model = m), (optimizer = o), (head = h)), setBackend: (b) => (backend = b), nanPatience: config.nanPatience ?? 0 });
  } catch (e) {
    if (signal.aborted && !isOutOfMemory(e) && !(e instanceof BadInputError) && !(e instanceof DivergedError)) {
      end({ status: 'stopped', message: 'stopped by request' });
    } else if (isOutOfMemory(e)) {
      const k = msg.plan?.accumulationSteps ?? 1;
      const fits = wasmFittingBatch(model, config, backend, k, head);
      const { message, suggestedBatchSize } = oomMessage(msg.plan?.microBatchSize ?? 1, k, e instanceof Error ? e.message : String(e), {
        ...(fits !== undefined ? { fits } : {}),
        imageSize: config.imageSize,
      });
      log('error', message);
      end({ status: 'failed', error: 'oom', message, ...(suggestedBatchSize !== undefined ? { suggestedBatchSize } : {}) });
    } else if (e instanceof DivergedError) {
      log('error', e.message);
      end({ status: 'failed', error: 'diverged', message: e.message, divergedAtStep: e.step });
    } else {
      const { kind, message } = classifyError(e);
      const short = e instanceof Error ? e.message : String(e);
      try {
        if (kind === 'internal') files.log('error', message); // the stack, for the record
      } catch {
        /* the disk is full: the host still gets the run-end */
      }
      end({ status: 'failed', error: kind, message: short });
    }
  } finally {
    gpu.stop();
    try {
      (model as tf.LayersModel | undefined)?.dispose();
      (optimizer as tf.Optimizer | undefined)?.dispose();
    } catch {
      /* already disposed */
    }
    if (!ended) end({ status: 'failed', error: 'internal', message: 'the run ended without a result' });
    files.close();
  }
}

interface RunContext {
  emit: (ev: TrainEvent) => void;
  log: (level: LogEvent['level'], message: string) => void;
  end: (e: Omit<RunEndEvent, 'v' | 'type' | 'time'>) => void;
  files: RunFiles;
  signal: AbortSignal;
  hooks: RunHooks;
  gpu: GpuMemoryPoller;
  setModel: (m: tf.LayersModel, o: tf.Optimizer, h: Head) => void;
  setBackend: (b: BackendName) => void;
  /** Consecutive non-finite losses tolerated (config.nanPatience, default 0). */
  nanPatience: number;
}

function makeTensors(b: Batch): MicroBatch {
  return { x: tf.tensor4d(b.x, b.shape, 'float32'), y: tf.tensor1d(b.y, 'int32') };
}

/** Checks the plan's numbers before anything is loaded: a malformed plan is bad input, not a crash. */
export function checkPlan(plan: TrainingPlan | undefined): TrainingPlan {
  if (!plan || typeof plan !== 'object') throw new BadInputError('the train request carries no plan');
  const positive = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1;
  if (!positive(plan.microBatchSize)) throw new BadInputError(`plan: microBatchSize must be a positive integer; got ${String(plan.microBatchSize)}`);
  if (!positive(plan.accumulationSteps)) throw new BadInputError(`plan: accumulationSteps must be a positive integer; got ${String(plan.accumulationSteps)}`);
  if (!positive(plan.epochs)) throw new BadInputError(`plan: epochs must be a positive integer; got ${String(plan.epochs)}`);
  if (!positive(plan.validationBatchSize)) throw new BadInputError(`plan: validationBatchSize must be a positive integer; got ${String(plan.validationBatchSize)}`);
  if (!(plan.learningRate?.value > 0)) throw new BadInputError(`plan: learningRate.value must be positive; got ${String(plan.learningRate?.value)}`);
  if (!(Number.isInteger(plan.warmup?.steps) && plan.warmup.steps >= 0)) throw new BadInputError(`plan: warmup.steps must be a whole number ≥ 0; got ${String(plan.warmup?.steps)}`);
  if (plan.loading?.strategy !== 'preload' && plan.loading?.strategy !== 'stream') throw new BadInputError(`plan: loading.strategy must be "preload" or "stream"`);
  return plan;
}

/** Sets an optimizer's learning rate for the next step (SGD/momentum keep it as a scalar tensor). */
export function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  const o = optimizer as unknown as { setLearningRate?: (v: number) => void; learningRate: number };
  if (typeof o.setLearningRate === 'function') {
    if (o.learningRate !== lr) o.setLearningRate(lr);
  } else {
    o.learningRate = lr;
  }
}

async function setupBackend(config: TrainConfig, runDir: string, ctx: RunContext): Promise<BackendName> {
  try {
    const { tfjsNodePath } = ctx.hooks;
    const r = await initBackend(config.backend, { workspaceFolder: workspaceOf(runDir), ...(tfjsNodePath ? { tfjsNodePath } : {}) });
    ctx.setBackend(r.name);
    ctx.emit({ v: 2, type: 'backend', name: r.name, skipped: r.skipped });
    if (r.from) ctx.log('info', `backend ${r.name}: @tensorflow/tfjs-node loaded from ${r.from}`);
    if (r.name === 'tensorflow-gpu') ctx.gpu.start();
    return r.name;
  } catch (e) {
    throw new BadInputError(e instanceof Error ? e.message : String(e));
  }
}

interface Data {
  numClasses: number;
  classNames: string[];
  train: ImagePipeline;
  validation: ImagePipeline | undefined;
  trainFiles: number;
  validationFiles: number;
}

/** The Keras listing and split, and the input pipelines at the plan's batch sizes and loading. */
async function loadData(config: TrainConfig, plan: TrainingPlan, ctx: RunContext): Promise<Data> {
  const { signal, log, emit, hooks } = ctx;
  let listing: Awaited<ReturnType<typeof listDatasetFiles>>;
  try {
    listing = await listDatasetFiles(config.dataset, { signal });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new BadInputError(e instanceof Error ? e.message : String(e));
  }
  const numClasses = listing.classNames.length;
  const classes = tooFewClasses(config.dataset, listing.classNames) ?? unreadableClassFolder(listing);
  if (classes) throw new BadInputError(classes);
  for (const u of listing.unreadable) log('warn', `Folder ${u.path} cannot be read (${u.code}): its images are not used.`);
  if (listing.files.length === 0) throw new BadInputError(`${config.dataset}: no images (${IMAGE_EXTENSIONS_TEXT}) in its class folders`);
  // The same header check as the inspection, so the counts it reported (and the plan was made
  // from) are the counts trained on: unusable files are reported here, not split.
  const usable = await usableFiles(listing.files, signal, (path, reason) => emit({ v: 2, type: 'skipped-file', path, reason }));
  if (usable.length === 0) throw new BadInputError(`${config.dataset}: none of the ${listing.files.length} images can be used (see the skipped files)`);
  if (usable.length < listing.files.length) log('warn', `${listing.files.length - usable.length} of ${listing.files.length} files are not usable images and are left out (as the inspection reports).`);
  const split = splitFiles(usable, config.validationSplit, config.seed);
  if (split.train.length === 0) throw new BadInputError(`${config.dataset}: no training images left after the validation split of ${config.validationSplit}`);
  log('info', `Found ${usable.length} files belonging to ${numClasses} classes: ${split.train.length} for training, ${split.validation.length} for validation.`);
  log('info', `loading: ${plan.loading.strategy} (${plan.loading.reason})`);

  const onSkip = (path: string, reason: string): void => emit({ v: 2, type: 'skipped-file', path, reason });
  const base = { imageSize: config.imageSize, channels: config.channels, seed: config.seed, loading: plan.loading.strategy, onSkip, signal, ...hooks.pipeline };
  let lastLog = performance.now();
  const progress = (done: number, total: number): void => {
    const t = performance.now();
    if (done === total || t - lastLog > 2000) {
      lastLog = t;
      log('info', `preloading images: ${Math.floor((done / total) * 100)}% (${done}/${total})`);
    }
  };
  const train = await ImagePipeline.create(split.train, { ...base, batchSize: plan.microBatchSize }, plan.loading.strategy === 'preload' ? progress : undefined);
  const validation = split.validation.length ? await ImagePipeline.create(split.validation, { ...base, batchSize: plan.validationBatchSize }) : undefined;
  if (train.size === 0) throw new BadInputError(`${config.dataset}: none of the ${split.train.length} training images could be decoded`);
  return { numClasses, classNames: listing.classNames, train, validation, trainFiles: split.train.length, validationFiles: split.validation.length };
}

/** The files whose header the inspection accepts (probe.ts unusableReason), yielding now and then. */
async function usableFiles<T extends { path: string }>(files: T[], signal: AbortSignal, onSkip: (path: string, reason: string) => void): Promise<T[]> {
  const prober = new Prober();
  const out: T[] = [];
  for (let i = 0; i < files.length; i++) {
    const f = files[i] as T;
    prober.probe(f.path);
    const why = unusableReason(prober);
    if (why) onSkip(f.path, why);
    else out.push(f);
    if (i % 512 === 511) {
      await yieldToEventLoop();
      if (signal.aborted) throw abortError('stopped');
    }
  }
  return out;
}

async function buildModelAndOptimizer(config: TrainConfig, plan: TrainingPlan, numClasses: number, ctx: RunContext): Promise<{ model: tf.LayersModel; optimizer: tf.Optimizer; head: Head }> {
  const [h, w] = config.imageSize;
  const { model, head, notes } = await buildClassifier({ model: config.model, widthMultiplier: config.widthMultiplier }, [h, w, config.channels], numClasses);
  const optimizer = makeOptimizer(config.optimizer, learningRateAt(plan, 1));
  ctx.setModel(model, optimizer, head);
  for (const n of notes) ctx.log('warn', n);
  ctx.log('info', `loss: ${head.description}`);
  if (!model.layers.some((l) => l.getClassName() === 'Rescaling')) {
    ctx.log('warn', `${config.model}: no Rescaling layer found; the model receives raw pixel values 0–255`);
  }
  return { model, optimizer, head };
}

/** Mutable counters of the whole run. */
interface Progress {
  globalStep: number;
  plannedSteps: number;
  timeSum: number;
  /** Consecutive steps with a non-finite loss. */
  nonFinite: number;
  /** The last epoch whose model was saved (0: none). */
  savedEpoch: number;
  /** The learning rate relative to the plan's, after the batch grew (1 before). */
  lrScale: number;
  /** Batch growth, when the plan has it. */
  growth?: BatchGrowth;
}

/** Why the run stops: the loss (or, at an epoch end, a weight) is no longer a finite number. */
function divergedError(loss: number, p: Progress, epoch: number, step: number, lr: number, ctx: RunContext, subject = 'the loss'): DivergedError {
  const what = Number.isNaN(loss) ? 'NaN' : 'infinite';
  const kept = p.savedEpoch > 0 ? `the model saved at epoch ${p.savedEpoch} (the last finite one) is kept` : 'no model was saved (none was finite yet)';
  const patience = ctx.nanPatience > 0 && p.nonFinite > 0 ? ` for ${p.nonFinite} steps in a row (nanPatience ${ctx.nanPatience})` : '';
  return new DivergedError(
    `Training diverged: ${subject} became ${what} at step ${p.globalStep} (epoch ${epoch}, step ${step}, learning rate ${Number(lr.toPrecision(3))})${patience}. ` +
      `Lower the learning rate (e.g. "learningRate": ${Number((lr / 10).toPrecision(2))}) or check the inputs and model weights for NaN; ${kept}.`,
    p.globalStep,
  );
}

/** True when every weight of the model is a finite number (checked before a model is saved). */
export function weightsAreFinite(model: tf.LayersModel): boolean {
  return tf.tidy(() => model.getWeights().every((w) => w.dtype !== 'float32' || tf.all(tf.isFinite(w)).dataSync()[0] === 1));
}

interface EpochTotals {
  loss: number;
  accuracy: number;
  /** The run reached its step limit in this epoch. */
  hitMax: boolean;
  /** A stop was asked for: the run has ended. */
  stopped: boolean;
}

/** One epoch of optimizer steps: k micro-batches each, the plan's learning rate (warmup) per step. */
async function trainEpoch(epoch: number, plan: TrainingPlan, model: tf.LayersModel, optimizer: tf.Optimizer, head: Head, data: Data, p: Progress, ctx: RunContext): Promise<EpochTotals> {
  const { signal, hooks, emit } = ctx;
  const k = plan.accumulationSteps;
  const spe = Math.ceil(data.train.batchesPerEpoch / k);
  const it = data.train.epoch(epoch, signal);
  let step = 0;
  let lossSum = 0;
  let correctSum = 0;
  let images = 0;
  let exhausted = false;
  let hitMax = false;
  const patience = ctx.nanPatience;
  try {
    while (!exhausted) {
      if (signal.aborted) return { loss: NaN, accuracy: NaN, hitMax, stopped: true };
      if (p.globalStep >= p.plannedSteps) {
        hitMax = true;
        break;
      }
      // Gather k micro-batches (the data wait).
      const tw = performance.now();
      const batches: Batch[] = [];
      while (batches.length < k) {
        const r = await it.next();
        if (r.done) {
          exhausted = true;
          break;
        }
        batches.push(r.value);
      }
      const dataWaitMs = performance.now() - tw;
      if (batches.length === 0) break;
      if (signal.aborted) return { loss: NaN, accuracy: NaN, hitMax, stopped: true };

      const lr = learningRateAt(plan, p.globalStep + 1) * p.lrScale;
      setLearningRate(optimizer, lr);
      const ts = performance.now();
      hooks.beforeStep?.(p.globalStep + 1, model);
      const micro = batches.map(makeTensors);
      // Batch growth: now and then the step is taken as two half-batches (the same update) to re-measure the noise scale.
      const measured = p.growth && k === 1 && micro.length === 1 && p.growth.measures(p.globalStep + 1) ? halves(micro[0]!) : undefined;
      let r;
      try {
        r = await trainStep(model, optimizer, measured ?? micro, head, measured !== undefined);
      } finally {
        for (const m of [...micro, ...(measured ?? [])]) tf.dispose([m.x, m.y]);
      }
      if (measured) p.growth!.record(r.gradientNorms);
      const stepMs = performance.now() - ts;
      step++;
      p.globalStep++;
      const finite = Number.isFinite(r.loss);
      p.nonFinite = finite ? 0 : p.nonFinite + 1;
      if (finite) {
        lossSum += r.loss * r.images;
        correctSum += r.accuracy * r.images;
        images += r.images;
      }
      p.timeSum += stepMs + dataWaitMs;
      const ev: BatchEvent = {
        v: 2,
        type: 'batch',
        time: now(),
        epoch,
        step,
        stepsPerEpoch: spe,
        globalStep: p.globalStep,
        loss: r.loss,
        accuracy: r.accuracy,
        learningRate: lr,
        imagesPerSec: r.images / ((stepMs + dataWaitMs) / 1000),
        stepMs,
        dataWaitMs,
        tensorBytes: tf.memory().numBytes,
        etaSec: (p.timeSum / p.globalStep / 1000) * (p.plannedSteps - p.globalStep),
      };
      if (ctx.gpu.reading) {
        ev.gpuMemoryUsedBytes = ctx.gpu.reading.used;
        ev.gpuMemoryTotalBytes = ctx.gpu.reading.total;
      }
      emit(ev);
      if (p.nonFinite > patience) throw divergedError(r.loss, p, epoch, step, lr, ctx);
      // Let the input pipeline, IPC (stop) and timers run: tfjs steps are synchronous.
      await yieldToEventLoop();
    }
  } finally {
    await it.return(undefined);
  }
  return { loss: images ? lossSum / images : NaN, accuracy: images ? correctSum / images : NaN, hitMax, stopped: signal.aborted };
}

/** Loss and accuracy over the validation set at the plan's validation batch (null without one); undefined when stopped. */
async function validate(model: tf.LayersModel, head: Head, data: Data, signal: AbortSignal): Promise<{ valLoss: number | null; valAccuracy: number | null } | undefined> {
  if (!data.validation || data.validation.size === 0) return { valLoss: null, valAccuracy: null };
  let vl = 0;
  let vc = 0;
  let vn = 0;
  for await (const b of data.validation.sequential(signal)) {
    const m = makeTensors(b);
    try {
      const e = await evaluateBatch(model, m.x, m.y, head);
      vl += e.lossSum;
      vc += e.correct;
      vn += e.images;
    } finally {
      tf.dispose([m.x, m.y]);
    }
    await yieldToEventLoop();
    if (signal.aborted) return undefined;
  }
  return vn > 0 ? { valLoss: vl / vn, valAccuracy: vc / vn } : { valLoss: null, valAccuracy: null };
}

async function train(msg: TrainRequest, config: TrainConfig, outer: RunContext): Promise<void> {
  const plan = checkPlan(msg.plan);
  // A stop that arrived while the run was setting up ends it before the next phase.
  if (outer.signal.aborted) return outer.end({ status: 'stopped', message: 'stopped by request before training started' });
  const backend = await setupBackend(config, msg.runDir, outer);
  const limitBytes = outer.hooks.memoryLimitBytes;
  if (limitBytes === undefined) return trainWith(msg, config, plan, backend, outer);
  const limit = new MemoryLimit(limitBytes);
  const before = outer.hooks.beforeStep;
  const hooks: RunHooks = {
    ...outer.hooks,
    beforeStep: (step, model) => {
      limit.check(`step ${step - 1}`);
      before?.(step, model);
    },
  };
  try {
    await trainWith(msg, config, plan, backend, { ...outer, hooks }, limit);
  } finally {
    limit.restore();
  }
}

/** At an epoch end, with batch growth: the next epochs train at the batch the re-measured noise scale prefers. */
function growBatch(nextEpoch: number, plan: TrainingPlan, data: Data, p: Progress, ctx: RunContext, maxSteps: number | undefined): void {
  const d = p.growth?.decide();
  if (!d || !plan.batchGrowth) return;
  data.train.setBatchSize(d.to);
  const lr = learningRateForBatch(plan, plan.batchGrowth.rule, d.to);
  p.lrScale = lr / plan.learningRate.value;
  const remaining = (plan.epochs - nextEpoch + 1) * data.train.batchesPerEpoch;
  p.plannedSteps = Math.min(p.globalStep + remaining, maxSteps ?? Infinity);
  const message = `Batch ${d.from} → ${d.to} from epoch ${nextEpoch}: the noise scale measured during the run is ${Number(d.bSimple.toPrecision(3))} (it grows as the loss falls), so batch ${d.to} is predicted to reach the target sooner; learning rate ${Number(lr.toPrecision(3))}.`;
  ctx.log('info', message);
  ctx.emit({ v: 2, type: 'batch-growth', time: now(), epoch: nextEpoch, globalStep: p.globalStep, from: d.from, to: d.to, learningRate: lr, bSimple: d.bSimple, message });
}

async function trainWith(msg: TrainRequest, config: TrainConfig, plan: TrainingPlan, backend: BackendName, ctx: RunContext, limit?: MemoryLimit): Promise<void> {
  const { emit, log, end, files, signal } = ctx;
  const stopped = (): boolean => signal.aborted;
  if (stopped()) return end({ status: 'stopped', message: 'stopped by request before training started' });
  const data = await loadData(config, plan, ctx);
  if (stopped()) return end({ status: 'stopped', message: 'stopped by request before training started' });
  const { model, optimizer, head } = await buildModelAndOptimizer(config, plan, data.numClasses, ctx);
  if (stopped()) return end({ status: 'stopped', message: 'stopped by request before training started' });

  const stepsPerEpoch = Math.ceil(data.train.batchesPerEpoch / plan.accumulationSteps);
  const p: Progress = {
    globalStep: 0,
    plannedSteps: Math.min(plan.epochs * stepsPerEpoch, msg.maxSteps ?? Infinity),
    timeSum: 0,
    nonFinite: 0,
    savedEpoch: 0,
    lrScale: 1,
    ...(plan.batchGrowth ? { growth: new BatchGrowth(plan.batchGrowth, plan.microBatchSize) } : {}),
  };
  emit({
    v: 2,
    type: 'run-start',
    time: now(),
    runDir: msg.runDir,
    backend,
    // The trainer loaded the model: the loss it computes is the plan's (the same decision the host's description made).
    plan: { ...plan, loss: head.description },
    stepsPerEpoch,
    trainImages: data.trainFiles,
    validationImages: data.validationFiles,
    params: model.countParams(),
    classNames: data.classNames,
  });
  // The saved model.json carries its class names (`batch-advisor evaluate` matches folders by them).
  model.setUserDefinedMetadata({ ...(model.getUserDefinedMetadata() ?? {}), classNames: data.classNames });

  for (let epoch = 1; epoch <= plan.epochs; epoch++) {
    const t0 = performance.now();
    const totals = await trainEpoch(epoch, plan, model, optimizer, head, data, p, ctx);
    if (totals.stopped || signal.aborted) return end({ status: 'stopped', message: 'stopped by request' });
    const val = await validate(model, head, data, signal);
    if (limit) {
      limit.check(`the end of epoch ${epoch} (its last step and validation)`);
      log('info', `memory limit ${limit.limitBytes} bytes: tensors peaked at ${limit.peakBytes} bytes so far`);
    }
    if (!val || signal.aborted) return end({ status: 'stopped', message: 'stopped by request' });
    // Never replace the last good model with a diverged one (a NaN weight with a finite loss, or
    // non-finite losses tolerated by nanPatience).
    if (!weightsAreFinite(model)) throw divergedError(NaN, p, epoch, p.globalStep, learningRateAt(plan, p.globalStep), ctx, 'a model weight');
    const savedModel = await files.saveModel(model);
    p.savedEpoch = epoch;
    emit({ v: 2, type: 'epoch', time: now(), epoch, loss: totals.loss, accuracy: totals.accuracy, ...val, durationMs: performance.now() - t0, savedModel });
    if (totals.hitMax || p.globalStep >= p.plannedSteps) {
      if (epoch < plan.epochs) log('info', `stopped after ${p.globalStep} steps (maxSteps)`);
      break;
    }
    if (epoch < plan.epochs) growBatch(epoch + 1, plan, data, p, ctx, msg.maxSteps);
  }
  await evaluateAtRunEnd(model, head, data.validation, data.classNames, { runDir: msg.runDir, emit, log, signal });
  if (stopped()) return end({ status: 'stopped', message: 'stopped by request' });
  end({ status: 'completed' });
}
