/**
 * One probe trial, in its own child process: build the model, decode one real batch from the
 * dataset (as the run decodes it, at the plan's image size), run ≥3 full optimizer steps (with the
 * plan's accumulation) and one validation step, and report whether it fitted, the peak memory, the
 * speed, and that it really trained (steps ran and the loss changed). Optionally it then measures
 * gradient norms at two batch sizes for the noise scale.
 *
 * A failure is a result, never an exception: out of memory (any backend's wording), a trial that
 * trained nothing, or another error (with its raw text).
 */
import { execFileSync } from 'node:child_process';
import type { RunData, RunSetup } from '../../core/shared/run-spec';
import { listDatasetFiles } from '../../core/dataset/list';
import { firstLine, isOutOfMemoryError } from '../../core/shared/oom';
import type { GradientNormSamples, ProbeTrialResult, ProbeTrialSpec } from '../../core/shared/probe';
import type { BackendName } from '../../core/shared/protocol';
import { initBackend } from '../backend';
import { decodeImage } from '../data/decode';
import { splitFiles, type LabeledFile } from '../data/split';
import { buildClassifier } from '../models/zoo';
import { tf } from '../tf';
import { evaluateBatch, forward, headLoss, makeOptimizer, trainableVariables, trainStep, type LossHead, type MicroBatch } from '../train/step';
import { trackBuffers, trackEngine, wasmHeapBytes, type PeakTracker } from './peak';

export const MIN_PROBE_STEPS = 3;

interface Images {
  x: Float32Array;
  y: Int32Array;
  n: number;
}

/** `n` images decoded from `files` (cycling when there are fewer), skipping files that cannot be decoded. */
async function decodeBatch(files: readonly LabeledFile[], start: number, n: number, config: RunData): Promise<Images> {
  const [h, w] = config.imageSize;
  const px = h * w * config.channels;
  const x = new Float32Array(n * px);
  const y = new Int32Array(n);
  let filled = 0;
  let next = start;
  let failures = 0;
  while (filled < n) {
    const want = Math.min(16, n - filled);
    const picks = Array.from({ length: want }, () => files[next++ % files.length]!);
    const decoded = await Promise.all(picks.map((f) => decodeImage(f.path, { imageSize: config.imageSize, channels: config.channels }).catch(() => null)));
    decoded.forEach((img, i) => {
      if (!img || filled >= n) {
        failures++;
        return;
      }
      x.set(img, filled * px);
      y[filled++] = picks[i]!.label;
    });
    if (failures > Math.max(32, files.length)) throw new Error(`${config.dataset}: too many images could not be decoded for the probe`);
  }
  return { x, y, n };
}

function tensors(img: Images, from: number, n: number, config: RunData): MicroBatch {
  const [h, w] = config.imageSize;
  const px = h * w * config.channels;
  return { x: tf.tensor4d(img.x.subarray(from * px, (from + n) * px), [n, h, w, config.channels], 'float32'), y: tf.tensor1d(img.y.subarray(from, from + n), 'int32') };
}

/** GPU memory this process uses (nvidia-smi), when it can be read. */
function gpuBytesOfThisProcess(): number | undefined {
  try {
    const out = execFileSync('nvidia-smi', ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'], { timeout: 5000, encoding: 'utf8' });
    for (const line of out.split('\n')) {
      const [pid, used] = line.split(',').map((s) => Number(s.trim()));
      if (pid === process.pid && Number.isFinite(used)) return used! * 2 ** 20;
    }
  } catch {
    /* no nvidia-smi */
  }
  return undefined;
}

function squaredNorm(grads: Record<string, tf.Tensor>): number {
  return tf.tidy(() => tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))).dataSync()[0]!;
}

/**
 * Gradient norms for the noise scale: each step takes a fresh batch of `bigBatch` images, computes
 * the gradient of each `smallBatch` chunk (|G_small|², averaged over the chunks) and of their
 * average (|G_big|²), then applies the averaged gradient so the steps follow training. Runs
 * `steps` steps, then more (up to `maxSteps`) while the time spent is under `budgetMs`.
 */
async function measureNoise(model: tf.LayersModel, optimizer: tf.Optimizer, files: readonly LabeledFile[], head: LossHead, config: RunData, spec: NonNullable<ProbeTrialSpec['noise']>, warmMs = 0, stepsBefore = 0, firstLoss?: number): Promise<GradientNormSamples> {
  const chunks = Math.max(2, Math.floor(spec.bigBatch / spec.smallBatch));
  const big = chunks * spec.smallBatch;
  const out: GradientNormSamples = { smallBatch: spec.smallBatch, bigBatch: big, small: [], big: [] };
  const vars = trainableVariables(model);
  const warm = await warmUp(model, optimizer, files, head, config, big, Math.min(warmMs, spec.warmMaxMs ?? 0), spec.warmMaxSteps ?? 0);
  out.afterSteps = stepsBefore + warm.steps;
  if (warm.lossTo !== undefined && firstLoss !== undefined) {
    out.lossFrom = firstLoss;
    out.lossTo = warm.lossTo;
  }
  const t0 = performance.now();
  const most = Math.max(spec.steps, spec.maxSteps ?? spec.steps);
  for (let s = 0; s < most; s++) {
    // Past the minimum, more steps only while they are cheap: each narrows the estimate's range.
    if (s >= spec.steps && performance.now() - t0 > (spec.budgetMs ?? 0)) break;
    const img = await decodeBatch(files, (warm.steps + s) * big, big, config);
    let sum: Record<string, tf.Tensor> | null = null;
    let smallSum = 0;
    for (let c = 0; c < chunks; c++) {
      const m = tensors(img, c * spec.smallBatch, spec.smallBatch, config);
      const { value, grads } = tf.variableGrads(() => headLoss(head, forward(model, head, m.x, true), m.y), vars);
      tf.dispose([value, m.x, m.y]);
      smallSum += squaredNorm(grads);
      const prev: Record<string, tf.Tensor> | null = sum;
      const next: Record<string, tf.Tensor> = {};
      for (const [k, g] of Object.entries(grads)) next[k] = tf.tidy(() => (prev?.[k] ? tf.add(prev[k], tf.div(g, chunks)) : tf.div(g, chunks)));
      tf.dispose(grads);
      if (prev) tf.dispose(prev);
      sum = next;
    }
    if (!sum) break;
    out.small.push(smallSum / chunks);
    out.big.push(squaredNorm(sum));
    optimizer.applyGradients(sum as tf.NamedTensorMap);
    tf.dispose(sum);
  }
  return out;
}

/**
 * Ordinary training steps on fresh batches of `big` images before the noise scale is measured, for
 * at most `budgetMs` and `maxSteps`: the noise scale grows fast once the loss starts to fall
 * (McCandlish et al. 2018, fig. 5; on the MNIST sample with the tutorial CNN, B_simple ≈ 47 after 25
 * steps and 90–120 after 50–100), and the run spends its time past its first steps, so that is
 * where it is measured. The last step's loss is reported with the estimate, beside the trial's first.
 */
async function warmUp(model: tf.LayersModel, optimizer: tf.Optimizer, files: readonly LabeledFile[], head: LossHead, config: RunData, big: number, budgetMs: number, maxSteps: number): Promise<{ steps: number; lossTo?: number }> {
  const out: { steps: number; lossTo?: number } = { steps: 0 };
  const t0 = performance.now();
  while (out.steps < maxSteps && performance.now() - t0 < budgetMs) {
    const img = await decodeBatch(files, out.steps * big, big, config);
    const m = tensors(img, 0, big, config);
    try {
      out.lossTo = (await trainStep(model, optimizer, [m], head)).loss;
    } finally {
      tf.dispose([m.x, m.y]);
    }
    out.steps++;
  }
  return out;
}

/** Timed steps per batch size and round: at least MIN, then more until half of THROUGHPUT_MS has passed (at most MAX). */
const THROUGHPUT_STEPS = { min: 1, max: 4 };
const THROUGHPUT_MS = 1500;
/** Share of the run's predicted time the measurements beyond their minimum may take (noise, then throughput). */
const NOISE_SHARE = 0.015;
const THROUGHPUT_SHARE = 0.02;
/** Share of the run's predicted time the training steps before the noise measurement may take. */
const WARM_SHARE = 0.02;

/** The run's predicted time (ms) at the measured speed, when the spec says how many images it trains. */
function predictedRunMs(spec: ProbeTrialSpec, imagesPerSec: number): number {
  return spec.runImages && imagesPerSec > 0 ? (spec.runImages / imagesPerSec) * 1000 : Infinity;
}

/**
 * Images/s at each batch size, all timed the same way: in two interleaved rounds (a, b, a, b, so a
 * drift of the machine's speed does not favour one batch) of timed steps on micro-batches of one real
 * batch, for half of `budgetMs` each (the first round after an untimed step); the faster round counts. Smallest first:
 * a batch that fails (a larger one asked for, out of memory) ends the timing, and the batches
 * measured before it are kept, with the error.
 */
async function measureThroughput(model: tf.LayersModel, optimizer: tf.Optimizer, img: Images, head: LossHead, config: RunData, batches: number[], budgetMs = THROUGHPUT_MS): Promise<{ points: { batchSize: number; imagesPerSec: number }[]; steps: number; error?: string }> {
  const best = new Map<number, number>();
  let steps = 0;
  let error: string | undefined;
  const usable = [...new Set(batches)].filter((b) => b >= 1 && b <= img.n).sort((a, b) => a - b);
  rounds: for (let round = 0; round < 2; round++) {
    for (const b of usable) {
      const m = tensors(img, 0, b, config);
      try {
        // The first round starts with an untimed step (kernels and buffers for this shape); the second is warm already.
        if (round === 0) await trainStep(model, optimizer, [m], head);
        const t = performance.now();
        let n = 0;
        while (n < THROUGHPUT_STEPS.min || (n < THROUGHPUT_STEPS.max && performance.now() - t < budgetMs / 2)) {
          await trainStep(model, optimizer, [m], head);
          n++;
        }
        best.set(b, Math.max(best.get(b) ?? 0, (n * b) / ((performance.now() - t) / 1000)));
        steps += n + (round === 0 ? 1 : 0);
      } catch (e) {
        error = `batch ${b} not timed: ${firstLine(e)}`;
        break rounds;
      } finally {
        tf.dispose([m.x, m.y]);
      }
    }
  }
  return { points: usable.filter((b) => best.has(b)).map((b) => ({ batchSize: b, imagesPerSec: best.get(b)! })), steps, ...(error ? { error } : {}) };
}

interface Loaded {
  train: LabeledFile[];
  validation: LabeledFile[];
  numClasses: number;
}

async function listFiles(config: RunData): Promise<Loaded> {
  const listing = await listDatasetFiles(config.dataset);
  if (listing.files.length === 0) throw new Error(`${config.dataset}: no images in its class folders`);
  const split = splitFiles(listing.files, config.validationSplit, config.seed);
  const train = split.train.length ? split.train : split.validation;
  return { train, validation: split.validation.length ? split.validation : train, numClasses: listing.classNames.length };
}

export async function runProbeTrial(setup: RunSetup, spec: ProbeTrialSpec): Promise<ProbeTrialResult> {
  const config = setup.data;
  const t0 = performance.now();
  const k = Math.max(1, spec.accumulationSteps);
  const result: ProbeTrialResult = { batchSize: spec.microBatchSize, accumulationSteps: k, ok: false, peakBytes: 0, tensorPeakBytes: 0, rssBytes: 0, imagesPerSec: 0, steps: 0, durationMs: 0 };
  let tracker: PeakTracker | undefined;
  let model: tf.LayersModel | undefined;
  let optimizer: tf.Optimizer | undefined;
  const held: tf.Tensor[] = [];
  try {
    // Exactly the backend the plan is made for, looked for where the run will look (the spec's backend).
    const { name, ...where } = setup.backend;
    const backend = await initBackend(name, where);
    result.backend = backend.name;
    const files = await listFiles(config);
    const micro = spec.microBatchSize;
    // Enough images for the trial's steps and for every batch it times (a larger one too, when asked).
    const img = await decodeBatch(files.train, 0, Math.max(micro * k, ...(spec.throughputBatches ?? [])), config);
    const val = await decodeBatch(files.validation, 0, spec.validationBatchSize, config);

    tracker = trackBuffers() ?? trackEngine();
    const [h, w] = config.imageSize;
    // The run's model, head and loss (../train/step.ts): the trial measures what the run will do.
    const built = await buildClassifier({ model: setup.model.model, widthMultiplier: setup.model.widthMultiplier }, [h, w, config.channels], files.numClasses);
    model = built.model;
    const head = built.head;
    optimizer = makeOptimizer(setup.model.optimizer, spec.learningRate);
    const batches = Array.from({ length: k }, (_, i) => tensors(img, i * micro, micro, config));
    for (const b of batches) held.push(b.x, b.y);

    const steps = await timeSteps(model, optimizer, batches, head, spec, result);
    const v = tensors(val, 0, spec.validationBatchSize, config);
    held.push(v.x, v.y);
    await evaluateBatch(model, v.x, v.y, head);
    recordPeaks(result, tracker, backend.name as BackendName);
    const trained = result.steps >= steps && Number.isFinite(result.lossFirst) && Number.isFinite(result.lossLast) && result.lossFirst !== result.lossLast;
    if (!trained) {
      result.failure = 'no-training';
      result.error = `the steps trained nothing (${result.steps} steps, loss ${String(result.lossFirst)} → ${String(result.lossLast)})`;
    } else {
      result.ok = true;
      tf.dispose(held.splice(0));
      await measureExtras(model, optimizer, head, img, files, config, spec, result);
    }
  } catch (e) {
    result.ok = false;
    result.failure = isOutOfMemoryError(e) ? 'oom' : 'error';
    result.error = firstLine(e);
    if (tracker) result.tensorPeakBytes = result.peakBytes = tracker.peak();
  } finally {
    result.rssBytes = process.resourceUsage().maxRSS * 1024;
    result.durationMs = performance.now() - t0;
    try {
      tf.dispose(held);
      model?.dispose();
      optimizer?.dispose();
    } catch {
      /* a backend that aborted cannot free anything; the process ends anyway */
    }
    tracker?.restore();
  }
  return result;
}

/** The trial's steps at the spec's batch: images/s over all but the first (which warms up kernels and creates the optimizer's slots). Returns the steps asked for. */
async function timeSteps(model: tf.LayersModel, optimizer: tf.Optimizer, batches: MicroBatch[], head: LossHead, spec: ProbeTrialSpec, result: ProbeTrialResult): Promise<number> {
  const steps = Math.max(MIN_PROBE_STEPS, spec.steps);
  let timed = 0;
  for (let s = 0; s < steps; s++) {
    const ts = performance.now();
    const r = await trainStep(model, optimizer, batches, head);
    if (s > 0) timed += performance.now() - ts;
    result.steps++;
    if (s === 0) result.lossFirst = r.loss;
    result.lossLast = r.loss;
  }
  result.imagesPerSec = ((steps - 1) * spec.microBatchSize * Math.max(1, spec.accumulationSteps)) / (timed / 1000);
  return steps;
}

/** The peaks the trial reached: tensors (the tracker), the wasm heap, the GPU's bytes for this process; `peakBytes` is what decides a fit. */
function recordPeaks(result: ProbeTrialResult, tracker: PeakTracker, backend: BackendName): void {
  result.tensorPeakBytes = tracker.peak();
  result.wasmHeapBytes = wasmHeapBytes();
  if (result.wasmHeapBytes === undefined) delete result.wasmHeapBytes;
  if (backend === 'tensorflow-gpu') {
    const gpu = gpuBytesOfThisProcess();
    if (gpu !== undefined) result.gpuBytes = gpu;
  }
  result.peakBytes = result.gpuBytes ?? result.tensorPeakBytes;
}

/** After a trial that trained: the throughput of the smaller batches and the gradient noise scale, when asked for, within their share of the predicted run. */
async function measureExtras(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  head: LossHead,
  img: Awaited<ReturnType<typeof decodeBatch>>,
  files: Loaded,
  config: RunData,
  spec: ProbeTrialSpec,
  result: ProbeTrialResult,
): Promise<void> {
  const runMs = predictedRunMs(spec, result.imagesPerSec);
  let stepsBefore = result.steps;
  // Asked for (even with no smaller batch): the trial's own batch is timed again, beside the smaller
  // ones, as every batch of the curve is (its 3 memory steps are too few to compare with).
  const batches = spec.throughputBatches && (spec.accumulationSteps > 1 ? spec.throughputBatches : [...spec.throughputBatches, spec.microBatchSize]);
  if (batches?.length) {
    try {
      const each = Math.min(THROUGHPUT_MS, (THROUGHPUT_SHARE * runMs) / batches.length);
      const measured = await measureThroughput(model, optimizer, img, head, config, batches, each);
      result.throughput = measured.points;
      stepsBefore += measured.steps;
      if (measured.error) result.error = `throughput: ${measured.error}`;
    } catch (e) {
      result.error = `throughput not measured: ${firstLine(e)}`;
    }
  }
  if (spec.noise) {
    try {
      const budgetMs = Math.min(spec.noise.budgetMs ?? 0, NOISE_SHARE * runMs);
      result.gradientNorms = await measureNoise(model, optimizer, files.train, head, config, { ...spec.noise, budgetMs }, WARM_SHARE * runMs, stepsBefore, result.lossFirst);
    } catch (e) {
      result.error = `noise scale not measured: ${firstLine(e)}`; // the trial itself fitted and trained
    }
  }
}
