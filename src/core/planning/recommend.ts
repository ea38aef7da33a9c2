/**
 * From the memory estimate, the dataset and the config to a batch size and what changes with it
 * (learning rate, warmup, accumulation, loading), with the reasons in plain words.
 *
 * Rules:
 *  - Batch ("auto"): the batch the probe chose by measured time to the target (`chosen`, see
 *    probe/objective.ts); without the probe Keras's default BASE_BATCH, since nothing measured says
 *    another reaches the target sooner. Either way never above what fits in memory, what the
 *    dataset allows (at least MIN_STEPS_PER_EPOCH optimizer steps per epoch; tiny datasets: never
 *    above train/4, but 8 is allowed when train/4 ≥ 8) and MAX_BATCH; never above the training images.
 *  - A batch set in the config is kept as written (a warning says when it is predicted not to fit).
 *  - When less than BASE_BATCH fits but the dataset allows BASE_BATCH, gradients are accumulated
 *    up to BASE_BATCH.
 *  - Learning rate: config.learningRate is taken as tuned for BASE_BATCH (Keras's default batch).
 *    Linear scaling for SGD/momentum (Goyal et al. 2017), square-root scaling for Adam/RMSProp.
 *    Warm up when the rate goes up: WARMUP_FRACTION of the run's optimizer steps (Goyal et al. warm
 *    up 5 of 90 epochs), at most MAX_WARMUP_EPOCHS epochs, never most of a short run.
 *  - Loading: preload decoded uint8 images when they take at most PRELOAD_FRACTION of the free host
 *    RAM (less what training itself takes when it trains on the host), else stream from disk.
 */
import { DEFAULTS, type TrainConfig } from '../shared/config-types';
import type { DatasetReport } from '../shared/dataset-types';
import type { DeviceInfo } from '../shared/device-types';
import { formatBytes, formatCount } from '../shared/format';
import { bytesForBatch, DEFAULT_ACTIVATION_FACTOR, maxBatchSize } from './memory';
import type { MemoryEstimate, Recommendation } from '../shared/report';

export const BASE_BATCH = 32;
export const MIN_STEPS_PER_EPOCH = 50;
export const MAX_BATCH = 1024;
export const MAX_WARMUP_EPOCHS = 5;
/** Share of the run's optimizer steps spent warming up when the learning rate is scaled up. */
export const WARMUP_FRACTION = 0.05;
export const PRELOAD_FRACTION = 0.5;

export interface RecommendInput {
  dataset: DatasetReport;
  memory: MemoryEstimate;
  /** Largest batch that fits; computed from `memory` when absent. */
  maxBatch?: number;
  /** Says where `maxBatch` comes from when it is not the memory model (e.g. the probe's trials). */
  maxBatchText?: string;
  /** The batch the probe chose for an automatic batch (by measured time to the target), with its reason as a sentence. */
  chosen?: { batch: number; reason: string };
  config: TrainConfig;
  device: DeviceInfo;
  freeHostRamBytes: number;
}

/** Largest power of two ≤ n (0 when n < 1). */
export function floorPow2(n: number): number {
  if (!(n >= 1)) return 0;
  return 2 ** Math.floor(Math.log2(Math.min(n, Number.MAX_SAFE_INTEGER)) + 1e-9);
}

function pct(f: number): string {
  return `${Math.round(f * 100)}%`;
}

function num(x: number): string {
  return Number(x.toPrecision(3)).toString();
}

/** The dataset's cap on the batch and the rule that sets it. */
export function datasetCap(train: number): { cap: number; reason: string } {
  const bySteps = floorPow2(train / MIN_STEPS_PER_EPOCH);
  const tiny = Math.min(8, floorPow2(train / 4));
  if (bySteps >= tiny && bySteps >= 1) {
    return {
      cap: bySteps,
      reason: `${formatCount(train)} training images: at most ${bySteps} per batch keeps at least ${MIN_STEPS_PER_EPOCH} optimizer steps per epoch (${formatCount(Math.ceil(train / bySteps))}).`,
    };
  }
  if (tiny >= 1) {
    return {
      cap: tiny,
      reason: `Only ${formatCount(train)} training images: the batch stays at ${tiny} (never above a quarter of the training set) so an epoch still has ${Math.ceil(train / tiny)} steps.`,
    };
  }
  return { cap: 1, reason: `Only ${formatCount(train)} training image${train === 1 ? '' : 's'}: batch 1.` };
}

function notEvenOneFits(input: RecommendInput, warnings: string[]): void {
  const { memory, config } = input;
  const need = bytesForBatch(memory, 1);
  const short = need - memory.budgetBytes;
  const b = memory.breakdown;
  const tips: string[] = [];
  const [h, w] = config.imageSize;
  if (h * w > 64 * 64) {
    tips.push(`a smaller imageSize (halving it to ${Math.round(h / 2)}×${Math.round(w / 2)} cuts the ${formatBytes(memory.perSampleBytes)} per image about 4×)`);
  }
  if (config.model === 'mobilenet-v2') tips.push(`a smaller widthMultiplier (now ${config.widthMultiplier})`);
  else tips.push('a smaller model (e.g. mobilenet-v2 with widthMultiplier 0.35 or resnet-small)');
  if (config.optimizer !== 'sgd' && b.optimizerBytes > 0) tips.push(`SGD instead of ${config.optimizer} (saves its ${formatBytes(b.optimizerBytes)} of slots)`);
  const ratio = short / Math.max(1, memory.budgetBytes);
  // When the runtime alone exceeds the budget, no model change helps: the device size is the question.
  const advice = b.overheadBytes >= memory.budgetBytes ? 'Check the device memory given (setting or --device-memory): it is smaller than the runtime itself needs.' : `Try ${tips.join(', or ')}.`;
  warnings.push(
    `Not even one image fits: batch 1 needs ${formatBytes(need)} but the budget is ${formatBytes(memory.budgetBytes)} ` +
      `(short by ${formatBytes(short)}, ${ratio > 10 ? `${formatCount(Math.round(need / Math.max(1, memory.budgetBytes)))}× the budget` : pct(ratio)}). ` +
      (memory.fixedBytes > memory.budgetBytes ? `${fixedParts(memory)} ` : '') +
      advice,
  );
}

/** What the fixed part of the memory is made of, in words (before any image). */
function fixedParts(memory: MemoryEstimate): string {
  const b = memory.breakdown;
  const model = b.weightsBytes + b.gradientsBytes + b.optimizerBytes;
  const runtime = b.overheadBytes > 16 * 2 ** 20 ? ` and the runtime (CUDA context and library handles) ${formatBytes(b.overheadBytes)}` : '';
  return `Before any image, the weights, gradients and optimizer state take ${formatBytes(model)}${runtime}.`;
}

/** The batch decision so far: micro-batch, accumulation, and whether the accumulation still needs its sentence. */
interface BatchChoice {
  micro: number;
  accumulation: number;
  explainAccumulation: boolean;
  /** The micro-batch was halved to make room for accumulation's running sum of the gradients (its bytes). */
  loweredForGradients?: number;
}

/** The micro-batch (and accumulation up to BASE_BATCH) from memory, the dataset, the config and the probe's choice. */
function chooseBatch(input: RecommendInput, maxFit: number, reasons: string[], warnings: string[]): BatchChoice {
  const { dataset, memory, config, device } = input;
  const train = Math.max(0, dataset.train);
  const accumulationSet = config.explicit.includes('accumulationSteps');
  const c: BatchChoice = { micro: 1, accumulation: Math.max(1, Math.floor(config.accumulationSteps || 1)), explainAccumulation: false };
  const freePart = memory.budgetNote
    ? `${memory.budgetNote}; ${formatBytes(device.memoryFreeBytes)} free on ${device.name}`
    : `${pct(1 - memory.headroom)} of ${formatBytes(device.memoryFreeBytes)} free on ${device.name}`;
  if (maxFit === 0) {
    notEvenOneFits(input, warnings);
    reasons.push(`Batch 1: nothing larger can be tried, and even 1 is predicted not to fit in ${formatBytes(memory.budgetBytes)} (${freePart}).`);
    return c;
  }
  const memCap = Math.min(floorPow2(maxFit), floorPow2(MAX_BATCH * 64));
  const fitText = input.maxBatchText
    ? `${input.maxBatchText}; ${formatCount(memCap)} is the largest power of two ${maxFit === memCap ? 'within that' : 'below that'}.`
    : maxFit >= Number.MAX_SAFE_INTEGER / 2
      ? `Memory is no limit here (budget ${formatBytes(memory.budgetBytes)}, ${freePart}).`
      : `Up to ${formatCount(maxFit)} images fit in ${formatBytes(memory.budgetBytes)} (${freePart}); ${formatCount(memCap)} is the largest power of two ${maxFit === memCap ? 'that fits' : 'below that'}.`;
  const data = datasetCap(Math.max(1, train));
  if (typeof config.batchSize === 'number') {
    c.micro = keptBatch(input, config.batchSize, maxFit, memCap, fitText, reasons, warnings);
  } else {
    c.micro = automaticBatch(input, Math.min(memCap, data.cap, floorPow2(MAX_BATCH)), memCap, data, fitText, reasons);
    // Too little fits for a stable step: accumulate up to the base batch when the dataset allows it.
    const target = Math.min(BASE_BATCH, data.cap);
    if (c.micro < target && !accumulationSet) {
      c.accumulation = Math.ceil(target / c.micro);
      c.explainAccumulation = true;
    }
  }
  if (train >= 1 && c.micro > train) {
    c.micro = floorPow2(train);
    reasons.push(`Capped at ${c.micro}: never more than the ${formatCount(train)} training images.`);
  }
  return c;
}

/** The user's batch is kept as written; a warning says when it is predicted not to fit. */
function keptBatch(input: RecommendInput, wanted: number, maxFit: number, memCap: number, fitText: string, reasons: string[], warnings: string[]): number {
  const { memory } = input;
  if (wanted <= maxFit) {
    reasons.push(`Batch ${wanted} as the config sets it; it fits: ${fitText}`);
    return wanted;
  }
  const k = Math.ceil(wanted / memCap);
  reasons.push(`Batch ${wanted} as the config sets it, although it is predicted not to fit. ${fitText}`);
  warnings.push(
    `Batch ${wanted} is predicted to need ${formatBytes(bytesForBatch(memory, wanted))}, more than the ${formatBytes(memory.budgetBytes)} budget: the run will likely run out of memory. ` +
      `Set "batchSize": "auto" to train on micro-batches of ${memCap} accumulated over ${k} (effective ${memCap * k}), or set a batch of ${memCap} or less.`,
  );
  return wanted;
}

/** "auto": the probe's choice, else Keras's default, within the hard caps (`hard`). */
function automaticBatch(input: RecommendInput, hard: number, memCap: number, data: { cap: number; reason: string }, fitText: string, reasons: string[]): number {
  if (input.chosen) {
    const micro = Math.max(1, Math.min(input.chosen.batch, hard));
    const capped = micro < input.chosen.batch ? (micro === data.cap && data.cap <= memCap ? ` Capped at ${micro}: ${data.reason}` : ` Capped at ${micro} by memory.`) : '';
    reasons.push(`Batch ${micro}: ${input.chosen.reason}${capped} ${fitText}`);
    return micro;
  }
  const micro = Math.min(BASE_BATCH, hard);
  const why =
    micro === BASE_BATCH
      ? `Batch ${micro}, Keras's default: without the probe's measurements (throughput per batch, gradient noise scale) nothing says another batch reaches the target accuracy sooner; the probe would choose by measurement.`
      : micro === memCap && memCap < data.cap
        ? `Batch ${micro}, bound by memory.`
        : `Batch ${micro}, bound by the dataset. ${data.reason}`;
  reasons.push(`${why} ${fitText}`);
  return micro;
}

/**
 * Accumulation keeps the running gradient sum next to the new gradients: halve the micro-batch
 * until that fits too. With a measured maximum (the probe) the model's bytes at that maximum are
 * what fits, whatever the model says of the budget (it may over-predict a device's runtime share,
 * e.g. a planned GPU's).
 */
function fitAccumulation(input: RecommendInput, maxFit: number, c: BatchChoice, reasons: string[]): void {
  const { memory, config } = input;
  if (!(c.accumulation > 1 && maxFit > 0 && typeof config.batchSize !== 'number' && !config.explicit.includes('accumulationSteps'))) return;
  const extra = memory.breakdown.gradientsBytes;
  const target = c.micro * c.accumulation;
  const room = input.maxBatch !== undefined ? Math.max(memory.budgetBytes, bytesForBatch(memory, maxFit)) : memory.budgetBytes;
  if (bytesForBatch(memory, 1) + extra > room) {
    // Not even one image fits next to the running sum (a model that is mostly weights): no accumulation.
    c.accumulation = 1;
    c.explainAccumulation = false;
    reasons.push(`No gradient accumulation: its running sum of the gradients (${formatBytes(extra)}) does not fit next to even one image, so the effective batch stays ${c.micro}.`);
  }
  while (c.accumulation > 1 && c.micro > 1 && bytesForBatch(memory, c.micro) + extra > room) {
    c.micro = Math.floor(c.micro / 2);
    c.accumulation = Math.ceil(target / c.micro);
    c.loweredForGradients = extra;
  }
  if (c.loweredForGradients !== undefined && !c.explainAccumulation) {
    reasons.push(
      `Micro-batch lowered to ${c.micro} (accumulating ${c.accumulation} of them): accumulation keeps a running sum of the gradients (${formatBytes(extra)} more), which does not fit next to a larger micro-batch.`,
    );
  }
}

/** The learning rate for the effective batch by the optimizer's rule (or as the config sets it). */
function learningRateFor(config: TrainConfig, effective: number, reasons: string[]): { lr: number; factor: number; rule: Recommendation['learningRate']['rule'] } {
  const ratio = effective / BASE_BATCH;
  const linear = config.optimizer === 'sgd' || config.optimizer === 'momentum';
  const lrSet = config.explicit.includes('learningRate');
  const rule: Recommendation['learningRate']['rule'] = lrSet || ratio === 1 ? 'none' : linear ? 'linear' : 'sqrt';
  const factor = rule === 'none' ? 1 : linear ? ratio : Math.sqrt(ratio);
  const lr = config.learningRate * factor;
  if (lrSet) {
    reasons.push(`Learning rate ${num(lr)} as the config sets it (not scaled with the batch; remove "learningRate" to have it scaled from ${num(DEFAULTS.learningRate)} at batch ${BASE_BATCH}).`);
  } else if (rule === 'none') {
    reasons.push(`Learning rate ${num(lr)} unchanged: the effective batch is ${BASE_BATCH}, the batch it is taken to be tuned for.`);
  } else {
    reasons.push(
      `Learning rate ${num(config.learningRate)} → ${num(lr)}: the default rate is taken as tuned for batch ${BASE_BATCH}; the effective batch is ${effective} (×${num(ratio)}), and ` +
        (linear
          ? `${config.optimizer} scales it linearly (Goyal et al. 2017).`
          : `${config.optimizer} scales it with the square root (×${num(factor)}), the usual rule for Adam-family optimizers.`),
    );
  }
  return { lr, factor, rule };
}

/** Warmup in optimizer steps: as the config sets it, or WARMUP_FRACTION of the run when the rate goes up. */
function warmupFor(config: TrainConfig, stepsPerEpoch: number, lr: number, factor: number, reasons: string[]): { warmupSteps: number; warmupEpochs: number } {
  if (config.warmupSteps !== undefined) {
    const warmupSteps = config.warmupSteps;
    reasons.push(`Warmup over ${warmupSteps} optimizer step${warmupSteps === 1 ? '' : 's'} as the config sets it.`);
    return { warmupSteps, warmupEpochs: warmupSteps / stepsPerEpoch };
  }
  if (factor < 1) reasons.push('No warmup: the learning rate goes down, not up.');
  if (!(factor > 1)) return { warmupSteps: 0, warmupEpochs: 0 };
  const total = stepsPerEpoch * Math.max(1, config.epochs);
  // Never more than the fraction: a run too short for one step of it gets none.
  const warmupSteps = Math.min(Math.floor(WARMUP_FRACTION * total), MAX_WARMUP_EPOCHS * stepsPerEpoch);
  if (warmupSteps === 0) reasons.push(`No warmup: the run has ${formatCount(total)} optimizer steps, too few for ${pct(WARMUP_FRACTION)} of them to be one step; it starts at ${num(lr)}.`);
  else reasons.push(
    `Warm up over ${formatCount(warmupSteps)} optimizer step${warmupSteps === 1 ? '' : 's'} (${pct(warmupSteps / total)} of the run's ${formatCount(total)}): start at ${num(config.learningRate)} and ramp to ${num(lr)}, since a rate ×${num(factor)} from the first step can diverge (Goyal et al. 2017 warm up 5 of 90 epochs; here ${pct(WARMUP_FRACTION)} of the run, at most ${MAX_WARMUP_EPOCHS} epochs).`,
  );
  return { warmupSteps, warmupEpochs: warmupSteps / stepsPerEpoch };
}

export function recommend(input: RecommendInput): Recommendation {
  const { dataset, memory, config, device } = input;
  const reasons: string[] = [];
  const warnings: string[] = [];
  const maxFit = Math.max(0, Math.floor(input.maxBatch ?? maxBatchSize(memory)));
  const train = Math.max(0, dataset.train);
  const c = chooseBatch(input, maxFit, reasons, warnings);
  fitAccumulation(input, maxFit, c, reasons);
  const { micro, accumulation } = c;
  if (c.explainAccumulation) {
    reasons.push(
      `Only ${micro} per step fits${c.loweredForGradients !== undefined ? ` next to accumulation's running sum of the gradients (${formatBytes(c.loweredForGradients)})` : ''}, so gradients are accumulated over ${accumulation} micro-batches for an effective batch of ${micro * accumulation} (the batch the learning rate is tuned for). BatchNorm layers still see batches of ${micro}.`,
    );
  }
  const effective = micro * accumulation;
  const stepsPerEpoch = Math.max(1, Math.ceil(Math.max(train, 1) / effective));
  if (config.explicit.includes('accumulationSteps') && accumulation > 1) {
    reasons.push(`Accumulating gradients over ${accumulation} micro-batches as the config sets it (effective batch ${effective}).`);
  }
  const { lr, factor, rule } = learningRateFor(config, effective, reasons);
  const { warmupSteps, warmupEpochs } = warmupFor(config, stepsPerEpoch, lr, factor, reasons);
  if (memory.unknownLayers?.length) {
    reasons.push(
      `The memory model has no measured factor for ${memory.unknownLayers.join(', ')}: counted conservatively as ${DEFAULT_ACTIVATION_FACTOR} float32 tensors of their output size per image (run with the probe to measure).`,
    );
  }
  const loading = chooseLoading(input, micro);
  if (loading.warning) warnings.push(loading.warning);
  if (device.source === 'override') warnings.push(`This plan is for a device given by size only (${device.name}); check the real ${device.kind === 'gpu' ? "card's" : "machine's"} free memory before training.`);
  return {
    batchSize: micro,
    maxBatchSize: maxFit >= Number.MAX_SAFE_INTEGER / 2 ? Number.MAX_SAFE_INTEGER : maxFit,
    reasons,
    stepsPerEpoch,
    learningRate: { base: config.learningRate, baseBatchSize: BASE_BATCH, recommended: lr, rule },
    warmupEpochs,
    warmupSteps,
    accumulationSteps: accumulation,
    effectiveBatchSize: effective,
    loading: { strategy: loading.strategy, reason: loading.reason },
    warnings,
  };
}

function chooseLoading(input: RecommendInput, batch: number): { strategy: 'preload' | 'stream'; reason: string; warning?: string } {
  const { dataset, config, device, memory } = input;
  const u8 = dataset.decoded.uint8Bytes;
  const [h, w] = dataset.decoded.imageSize;
  // Training on the host shares its RAM with the preloaded images.
  const training = device.kind === 'cpu' && device.source !== 'override' ? bytesForBatch(memory, batch) : 0;
  const free = Math.max(0, input.freeHostRamBytes - training);
  const limit = free * PRELOAD_FRACTION;
  const fits = u8 <= limit;
  const what =
    `${formatCount(dataset.totalImages)} images decoded at ${h}×${w}×${dataset.decoded.channels} take ${formatBytes(u8)} as uint8 ` +
    `(kept as bytes and converted to float32 one batch at a time; as float32 they would take ${formatBytes(dataset.decoded.float32Bytes)})`;
  const room =
    `${pct(PRELOAD_FRACTION)} of ${formatBytes(free)} free host RAM` + (training > 0 ? ` (after the ${formatBytes(training)} training itself takes there)` : '');
  if (config.loading === 'preload') {
    return {
      strategy: 'preload',
      reason: `Preload, as the config asks: ${what}.`,
      ...(fits ? {} : { warning: `Preloading ${formatBytes(u8)} of images exceeds ${room}; the run may swap or be killed. Consider loading: "stream".` }),
    };
  }
  if (config.loading === 'stream') return { strategy: 'stream', reason: `Stream from disk, as the config asks: ${what}.` };
  return fits
    ? { strategy: 'preload', reason: `Preload: ${what}, within ${room}; decoding once saves decoding every epoch.` }
    : { strategy: 'stream', reason: `Stream from disk: ${what}, more than ${room}.` };
}
