/**
 * The training loop: the model and optimizer built, then epochs of optimizer steps (k micro-batches
 * each, the plan's learning rate per step), validation and the model saved at each epoch end, and
 * the batch grown between epochs when the plan has batch growth.
 */
import { learningRateAt, learningRateForBatch, type TrainingPlan } from '../../core/shared/plan';
import { estimateEta } from '../../core/shared/eta';
import { PROTOCOL_VERSION, type BackendName, type BatchEvent } from '../../core/shared/protocol';
import type { RunSpec } from '../../core/shared/run-spec';
import type { Head } from '../../core/shared/head';
import type { Batch } from '../data/pipeline';
import { DivergedError } from '../errors';
import { buildClassifier } from '../models/zoo';
import { tf } from '../tf';
import { makeTensors, type Data } from './data';
import { BatchGrowth, halves } from './growth';
import type { MemoryLimit } from './memory-limit';
import { now, yieldToEventLoop, type RunContext } from './setup';
import { evaluateBatch, makeOptimizer, trainStep } from './step';
import { BestCheckpoint } from './callbacks/best-checkpoint';
import { EarlyStopping } from './callbacks/early-stopping';
import { evaluateAtRunEnd } from '../eval/run-eval';
import type { BestEpoch } from '../../core/shared/protocol';
import type { RunResume } from '../../core/shared/run-spec';
import { readBestRecord } from './callbacks/best-checkpoint';
import { restoreOptimizerState, restoreWeights } from './resume';

/** Mutable counters of the whole run. */
interface Progress {
  globalStep: number;
  plannedSteps: number;
  /** Milliseconds of this process's optimizer steps (compute and data wait), how many, and the images they trained (a resumed run's pace is its own). */
  timeSum: number;
  timedSteps: number;
  images: number;
  /** The global step this process stops at (maxSteps counts this process's steps). */
  stepLimit: number;
  /** Epochs in the plan, and images in one validation pass (0: none). */
  epochs: number;
  validationImages: number;
  /** Seconds each validation pass took, and what each epoch end spent besides (saving the model). */
  validationSec: number[];
  epochEndSec: number[];
  /** Consecutive steps with a non-finite loss. */
  nonFinite: number;
  /** The last epoch whose model was saved (0: none). */
  savedEpoch: number;
  /** The learning rate relative to the plan's, after the batch grew (1 before). */
  lrScale: number;
  /** Batch growth, when the plan has it. */
  growth?: BatchGrowth;
}

interface EpochTotals {
  loss: number;
  accuracy: number;
  /** The run reached its step limit in this epoch. */
  hitMax: boolean;
  /** A stop was asked for: the run has ended. */
  stopped: boolean;
}

/** The model and optimizer for the data's classes; the loss and the model's notes are logged. */
export async function buildModelAndOptimizer(spec: Pick<RunSpec, 'data' | 'model' | 'plan'>, numClasses: number, ctx: RunContext): Promise<{ model: tf.LayersModel; optimizer: tf.Optimizer; head: Head }> {
  const [h, w] = spec.data.imageSize;
  const config = spec.model;
  const { model, head, notes } = await buildClassifier({ model: config.model, widthMultiplier: config.widthMultiplier }, [h, w, spec.data.channels], numClasses);
  const optimizer = makeOptimizer(config.optimizer, learningRateAt(spec.plan, 1));
  ctx.setModel(model, optimizer, head);
  for (const n of notes) ctx.log('warn', n);
  ctx.log('info', `loss: ${head.description}`);
  if (!model.layers.some((l) => l.getClassName() === 'Rescaling')) {
    ctx.log('warn', `${config.model}: no Rescaling layer found; the model receives raw pixel values 0–255`);
  }
  return { model, optimizer, head };
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

/** True when every weight of the model is a finite number (checked before a model is saved). */
export function weightsAreFinite(model: tf.LayersModel): boolean {
  return tf.tidy(() => model.getWeights().every((w) => w.dtype !== 'float32' || tf.all(tf.isFinite(w)).dataSync()[0] === 1));
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

/** Up to k micro-batches from the epoch's iterator (the data wait); `exhausted` when the epoch ran out. */
async function gather(it: AsyncGenerator<Batch>, k: number): Promise<{ batches: Batch[]; exhausted: boolean; dataWaitMs: number }> {
  const tw = performance.now();
  const batches: Batch[] = [];
  while (batches.length < k) {
    const r = await it.next();
    if (r.done) return { batches, exhausted: true, dataWaitMs: performance.now() - tw };
    batches.push(r.value);
  }
  return { batches, exhausted: false, dataWaitMs: performance.now() - tw };
}

/** One optimizer step on the gathered micro-batches (with batch growth, now and then as two half-batches). */
async function step(batches: Batch[], k: number, model: tf.LayersModel, optimizer: tf.Optimizer, head: Head, p: Progress, ctx: RunContext): Promise<Awaited<ReturnType<typeof trainStep>>> {
  ctx.hooks.beforeStep?.(p.globalStep + 1, model);
  // The step's memory window opens before its input tensors exist: they are part of what a batch costs.
  ctx.memory?.startStep();
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
  return r;
}

/** One epoch of optimizer steps: k micro-batches each, the plan's learning rate (warmup) per step. */
async function trainEpoch(epoch: number, plan: TrainingPlan, model: tf.LayersModel, optimizer: tf.Optimizer, head: Head, data: Data, p: Progress, ctx: RunContext): Promise<EpochTotals> {
  const { signal } = ctx;
  const k = plan.accumulationSteps;
  const spe = Math.ceil(data.train.batchesPerEpoch / k);
  const it = data.train.epoch(epoch, signal);
  const sum = { step: 0, loss: 0, correct: 0, images: 0 };
  let exhausted = false;
  let hitMax = false;
  try {
    while (!exhausted) {
      if (signal.aborted) return { loss: NaN, accuracy: NaN, hitMax, stopped: true };
      if (p.globalStep >= p.plannedSteps) {
        hitMax = true;
        break;
      }
      const g = await gather(it, k);
      exhausted = g.exhausted;
      if (g.batches.length === 0) break;
      if (signal.aborted) return { loss: NaN, accuracy: NaN, hitMax, stopped: true };
      const lr = learningRateAt(plan, p.globalStep + 1) * p.lrScale;
      setLearningRate(optimizer, lr);
      const ts = performance.now();
      const r = await step(g.batches, k, model, optimizer, head, p, ctx);
      const stepMs = performance.now() - ts;
      sum.step++;
      p.globalStep++;
      const finite = Number.isFinite(r.loss);
      p.nonFinite = finite ? 0 : p.nonFinite + 1;
      if (finite) {
        sum.loss += r.loss * r.images;
        sum.correct += r.accuracy * r.images;
        sum.images += r.images;
      }
      p.timeSum += stepMs + g.dataWaitMs;
      p.timedSteps++;
      p.images += r.images;
      ctx.emit(batchEvent({ epoch, step: sum.step, stepsPerEpoch: spe, lr, stepMs, dataWaitMs: g.dataWaitMs }, r, p, ctx));
      if (p.nonFinite > ctx.nanPatience) throw divergedError(r.loss, p, epoch, sum.step, lr, ctx);
      // Let the input pipeline, IPC (stop) and timers run: tfjs steps are synchronous.
      await yieldToEventLoop();
    }
  } finally {
    await it.return(undefined);
  }
  return { loss: sum.images ? sum.loss / sum.images : NaN, accuracy: sum.images ? sum.correct / sum.images : NaN, hitMax, stopped: signal.aborted };
}

function batchEvent(
  s: { epoch: number; step: number; stepsPerEpoch: number; lr: number; stepMs: number; dataWaitMs: number },
  r: { loss: number; accuracy: number; images: number },
  p: Progress,
  ctx: RunContext,
): BatchEvent {
  const mem = ctx.memory?.stepMemory();
  const eta = estimateEta({
    epoch: s.epoch,
    step: s.step,
    stepsPerEpoch: s.stepsPerEpoch,
    epochs: p.epochs,
    globalStep: p.globalStep,
    plannedSteps: p.plannedSteps,
    secPerStep: p.timedSteps > 0 ? p.timeSum / p.timedSteps / 1000 : 0,
    validationImages: p.validationImages,
    validationSec: p.validationSec,
    trainImagesPerSec: p.timeSum > 0 ? p.images / (p.timeSum / 1000) : 0,
    epochEndSec: p.epochEndSec.length ? p.epochEndSec.reduce((a, b) => a + b, 0) / p.epochEndSec.length : 0,
  });
  const ev: BatchEvent = {
    v: PROTOCOL_VERSION,
    type: 'batch',
    time: now(),
    epoch: s.epoch,
    step: s.step,
    stepsPerEpoch: s.stepsPerEpoch,
    globalStep: p.globalStep,
    loss: r.loss,
    accuracy: r.accuracy,
    learningRate: s.lr,
    imagesPerSec: r.images / ((s.stepMs + s.dataWaitMs) / 1000),
    stepMs: s.stepMs,
    dataWaitMs: s.dataWaitMs,
    tensorBytes: tf.memory().numBytes,
    ...(mem ? { peakTensorBytes: mem.peakTensorBytes, rssBytes: mem.rssBytes, ...(mem.wasmHeapBytes !== undefined ? { wasmHeapBytes: mem.wasmHeapBytes } : {}) } : {}),
    etaSec: eta.totalSec,
    etaValidationSec: eta.validationSec,
  };
  if (ctx.gpu.reading) {
    ev.gpuMemoryUsedBytes = ctx.gpu.reading.used;
    ev.gpuMemoryTotalBytes = ctx.gpu.reading.total;
  }
  return ev;
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

/** At an epoch end, with batch growth: the next epochs train at the batch the re-measured noise scale prefers. */
function growBatch(nextEpoch: number, plan: TrainingPlan, data: Data, p: Progress, ctx: RunContext): void {
  const d = p.growth?.decide();
  if (!d || !plan.batchGrowth) return;
  data.train.setBatchSize(d.to);
  const lr = learningRateForBatch(plan, plan.batchGrowth.rule, d.to);
  p.lrScale = lr / plan.learningRate.value;
  const remaining = (plan.epochs - nextEpoch + 1) * data.train.batchesPerEpoch;
  p.plannedSteps = Math.min(p.globalStep + remaining, p.stepLimit);
  const message = `Batch ${d.from} → ${d.to} from epoch ${nextEpoch}: the noise scale measured during the run is ${Number(d.bSimple.toPrecision(3))} (it grows as the loss falls), so batch ${d.to} is predicted to reach the target sooner; learning rate ${Number(lr.toPrecision(3))}.`;
  ctx.log('info', message);
  ctx.emit({ v: PROTOCOL_VERSION, type: 'batch-growth', time: now(), epoch: nextEpoch, globalStep: p.globalStep, from: d.from, to: d.to, learningRate: lr, bSimple: d.bSimple, message });
}

/** A resumed run: the model and optimizer as its last finished epoch left them, the batch it was at, its step count. */
async function resumeState(spec: RunSpec, built: { model: tf.LayersModel; optimizer: tf.Optimizer }, data: Data, p: Progress, ctx: RunContext): Promise<RunResume | undefined> {
  const r = spec.callbacks.resume;
  if (!r) return undefined;
  await restoreWeights(built.model, ctx.files.modelDir);
  if (!(await restoreOptimizerState(built.optimizer, ctx.files.modelDir))) {
    ctx.log('warn', `${ctx.files.modelDir}: no optimizer state was saved with this model (a run from an older version): the ${spec.model.optimizer} optimizer starts afresh`);
  }
  if (r.microBatchSize !== spec.plan.microBatchSize) data.train.setBatchSize(r.microBatchSize);
  p.globalStep = r.globalStep;
  p.lrScale = r.lrScale;
  ctx.log('info', `resuming after epoch ${r.epoch} (optimizer step ${r.globalStep}) from ${ctx.files.modelDir}`);
  return r;
}

/** The run's counters before its first step. */
function newProgress(plan: TrainingPlan, data: Data): Progress {
  return {
    globalStep: 0,
    plannedSteps: 0,
    timeSum: 0,
    timedSteps: 0,
    stepLimit: Infinity,
    images: 0,
    epochs: plan.epochs,
    validationImages: data.validation?.size ?? 0,
    validationSec: [],
    epochEndSec: [],
    nonFinite: 0,
    savedEpoch: 0,
    lrScale: 1,
    ...(plan.batchGrowth ? { growth: new BatchGrowth(plan.batchGrowth, plan.microBatchSize) } : {}),
  };
}

/** Early stopping and the best checkpoint as the plan asks; a resumed run's continue from its finished epochs. */
function epochCallbacks(plan: TrainingPlan, resumed: RunResume | undefined, runDir: string, log: RunContext['log']): { early?: EarlyStopping; best?: BestCheckpoint } {
  const early = plan.earlyStopping ? new EarlyStopping(plan.earlyStopping, (m) => log('info', m)) : undefined;
  const best = plan.checkpoint?.mode === 'best' ? new BestCheckpoint(plan.checkpoint, (m) => log('info', m)) : undefined;
  if (resumed) {
    early?.replay(resumed.history);
    const kept = best && readBestRecord(runDir);
    if (kept) best.restore(kept);
  }
  return { ...(early ? { early } : {}), ...(best ? { best } : {}) };
}

/** The run-start event, then the epochs; ends the run (completed, or stopped). */
export async function trainEpochs(spec: RunSpec, backend: BackendName, data: Data, built: { model: tf.LayersModel; optimizer: tf.Optimizer; head: Head }, ctx: RunContext, limit?: MemoryLimit): Promise<void> {
  const { model, optimizer, head } = built;
  const { plan, limits } = spec;
  const { emit, log, end, files, signal } = ctx;
  const p = newProgress(plan, data);
  const resumed = await resumeState(spec, built, data, p, ctx);
  const firstEpoch = (resumed?.epoch ?? 0) + 1;
  p.savedEpoch = resumed?.epoch ?? 0;
  const stepsPerEpoch = Math.ceil(data.train.batchesPerEpoch / plan.accumulationSteps);
  // maxSteps bounds this process's steps (a smoke run, a benchmark), resumed or not.
  p.stepLimit = p.globalStep + (limits.maxSteps ?? Infinity);
  p.plannedSteps = Math.min(p.globalStep + (plan.epochs - firstEpoch + 1) * stepsPerEpoch, p.stepLimit);
  // The trainer loaded the model: the loss it computes is the plan's (the same decision the host's description made).
  emit({
    v: PROTOCOL_VERSION,
    type: 'run-start',
    time: now(),
    runDir: spec.runDir,
    backend,
    plan: { ...plan, loss: head.description },
    stepsPerEpoch,
    trainImages: data.trainFiles,
    validationImages: data.validationFiles,
    params: model.countParams(),
    classNames: data.classNames,
    ...(resumed ? { resumed: { afterEpoch: resumed.epoch, globalStep: resumed.globalStep } } : {}),
  });
  // The saved model.json carries its class names (`batch-advisor evaluate` matches folders by them).
  model.setUserDefinedMetadata({ ...(model.getUserDefinedMetadata() ?? {}), classNames: data.classNames });
  const { early, best } = epochCallbacks(plan, resumed, files.dir, log);
  let stopReason: string | undefined;
  for (let epoch = firstEpoch; epoch <= plan.epochs; epoch++) {
    const t0 = performance.now();
    const totals = await trainEpoch(epoch, plan, model, optimizer, head, data, p, ctx);
    if (totals.stopped || signal.aborted) return end({ status: 'stopped', message: 'stopped by request', ...bestOf(best) });
    const tv = performance.now();
    const val = await validate(model, head, data, signal);
    const validationMs = performance.now() - tv;
    if (limit) {
      limit.check(`the end of epoch ${epoch} (its last step and validation)`);
      log('info', `memory limit ${limit.limitBytes} bytes: tensors peaked at ${limit.peakBytes} bytes so far`);
    }
    if (!val || signal.aborted) return end({ status: 'stopped', message: 'stopped by request', ...bestOf(best) });
    // Never replace the last good model with a diverged one (a NaN weight with a finite loss, or
    // non-finite losses tolerated by nanPatience).
    if (!weightsAreFinite(model)) throw divergedError(NaN, p, epoch, p.globalStep, learningRateAt(plan, p.globalStep), ctx, 'a model weight');
    const savedModel = await files.saveModel(model, optimizer);
    p.savedEpoch = epoch;
    const metrics = { loss: totals.loss, accuracy: totals.accuracy, ...val };
    best?.update(epoch, metrics, savedModel);
    emit({ v: PROTOCOL_VERSION, type: 'epoch', time: now(), epoch, ...metrics, durationMs: performance.now() - t0, ...(p.validationImages > 0 ? { validationMs } : {}), savedModel, ...bestOf(best) });
    // The ETA of the steps to come: this epoch end's validation pass, and what it spent besides.
    if (p.validationImages > 0) p.validationSec.push(validationMs / 1000);
    p.epochEndSec.push(Math.max(0, performance.now() - tv - validationMs) / 1000);
    stopReason = early?.update(epoch, metrics);
    if (stopReason) break;
    if (totals.hitMax || p.globalStep >= p.plannedSteps) {
      if (epoch < plan.epochs) log('info', `stopped after ${p.globalStep} steps (maxSteps)`);
      break;
    }
    if (epoch < plan.epochs) growBatch(epoch + 1, plan, data, p, ctx);
  }
  await evaluateAtRunEnd(model, head, data.validation, data.classNames, { runDir: spec.runDir, emit, log, signal });
  if (signal.aborted) return end({ status: 'stopped', message: 'stopped by request', ...bestOf(best) });
  end({ status: 'completed', ...(stopReason ? { message: stopReason } : {}), ...bestOf(best) });
}

function bestOf(best: BestCheckpoint | undefined): { best?: BestEpoch } {
  const b = best?.current;
  return b ? { best: { ...b } } : {};
}
