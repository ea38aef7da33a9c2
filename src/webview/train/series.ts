/**
 * One run's metrics as columns (every point kept; charts downsample for drawing), built from its
 * events in order. Pure: unit-tested in Node.
 */
import type { TrainingPlan } from '../../core/shared/plan';
import type { RunEndEvent, RunStartEvent, TrainEvent } from '../../core/shared/protocol';

export type XAxis = 'step' | 'epoch' | 'time';

export interface RunSeries {
  plan: TrainingPlan | null;
  runStart: RunStartEvent | null;
  backend: RunStartEvent['backend'] | null;
  end: RunEndEvent | null;
  startMs: number | null;
  // per optimizer step
  step: number[];
  epochX: number[];
  timeSec: number[];
  loss: (number | null)[];
  accuracy: (number | null)[];
  learningRate: number[];
  imagesPerSec: number[];
  computeMs: number[];
  dataWaitMs: number[];
  /** Live tensor bytes after each step (what persists). */
  tensorBytes: number[];
  /** Each step's peak of live tensor bytes (null in runs recorded before it was measured). */
  peakTensorBytes: (number | null)[];
  wasmHeapBytes: (number | null)[];
  rssBytes: (number | null)[];
  gpuUsed: (number | null)[];
  gpuTotal: (number | null)[];
  // per epoch end
  epochStep: number[];
  epochEpochX: number[];
  epochTimeSec: number[];
  valLoss: (number | null)[];
  valAccuracy: (number | null)[];
  /** The last batch event's position, for the header. */
  lastEpoch: number;
  lastStep: number;
  stepsPerEpoch: number;
  etaSec: number | null;
  /** Of etaSec, validation and epoch ends (null when the trainer did not say). */
  etaValidationSec: number | null;
  /** First optimizer step whose loss was NaN or ±Infinity (null when none). */
  firstBadLossStep: number | null;
  /** Batch growth during the run (batch-growth events), in order. */
  growth: { globalStep: number; epoch: number; from: number; to: number; learningRate: number }[];
}

export function emptySeries(): RunSeries {
  return {
    plan: null,
    runStart: null,
    backend: null,
    end: null,
    startMs: null,
    step: [],
    epochX: [],
    timeSec: [],
    loss: [],
    accuracy: [],
    learningRate: [],
    imagesPerSec: [],
    computeMs: [],
    dataWaitMs: [],
    tensorBytes: [],
    peakTensorBytes: [],
    wasmHeapBytes: [],
    rssBytes: [],
    gpuUsed: [],
    gpuTotal: [],
    epochStep: [],
    epochEpochX: [],
    epochTimeSec: [],
    valLoss: [],
    valAccuracy: [],
    lastEpoch: 0,
    lastStep: 0,
    stepsPerEpoch: 0,
    etaSec: null,
    etaValidationSec: null,
    firstBadLossStep: null,
    growth: [],
  };
}

/** JSON has no NaN: a non-finite loss arrives as null. */
function finite(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function secondsSince(s: RunSeries, time: string): number {
  const t = Date.parse(time);
  if (!Number.isFinite(t)) return s.timeSec.length ? s.timeSec[s.timeSec.length - 1]! : 0;
  s.startMs ??= t;
  return (t - s.startMs) / 1000;
}

export function addEvent(s: RunSeries, e: TrainEvent): void {
  switch (e.type) {
    case 'run-start':
      if (e.resumed && s.runStart) {
        resumeSeries(s, e.resumed, Date.parse(e.time));
      } else s.startMs = Date.parse(e.time) || null;
      s.runStart = e;
      s.plan = e.plan;
      s.backend = e.backend;
      s.stepsPerEpoch = e.stepsPerEpoch;
      s.end = null;
      break;
    case 'batch': {
      const loss = finite(e.loss);
      if (loss === null && s.firstBadLossStep === null) s.firstBadLossStep = e.globalStep;
      s.step.push(e.globalStep);
      s.epochX.push(e.epoch - 1 + e.step / e.stepsPerEpoch);
      s.timeSec.push(secondsSince(s, e.time));
      s.loss.push(loss);
      s.accuracy.push(finite(e.accuracy));
      s.learningRate.push(e.learningRate);
      s.imagesPerSec.push(e.imagesPerSec);
      s.dataWaitMs.push(e.dataWaitMs);
      s.computeMs.push(Math.max(0, e.stepMs - e.dataWaitMs));
      s.tensorBytes.push(e.tensorBytes);
      s.peakTensorBytes.push(finite(e.peakTensorBytes));
      s.wasmHeapBytes.push(finite(e.wasmHeapBytes));
      s.rssBytes.push(finite(e.rssBytes));
      s.gpuUsed.push(finite(e.gpuMemoryUsedBytes));
      s.gpuTotal.push(finite(e.gpuMemoryTotalBytes));
      s.lastEpoch = e.epoch;
      s.lastStep = e.step;
      s.stepsPerEpoch = e.stepsPerEpoch;
      s.etaSec = e.etaSec;
      s.etaValidationSec = finite(e.etaValidationSec);
      break;
    }
    case 'epoch':
      s.epochStep.push(s.step.length ? s.step[s.step.length - 1]! : 0);
      s.epochEpochX.push(e.epoch);
      s.epochTimeSec.push(secondsSince(s, e.time));
      s.valLoss.push(finite(e.valLoss));
      s.valAccuracy.push(finite(e.valAccuracy));
      break;
    case 'batch-growth':
      s.growth.push({ globalStep: e.globalStep, epoch: e.epoch, from: e.from, to: e.to, learningRate: e.learningRate });
      break;
    case 'run-end':
      s.end = e;
      s.etaSec = null;
      s.etaValidationSec = null;
      break;
    default:
      break;
  }
}

/** The per-epoch columns; every other array column of the same length as `step` is per step. */
const EPOCH_COLUMNS = new Set(['epochStep', 'epochEpochX', 'epochTimeSec', 'valLoss', 'valAccuracy']);

/**
 * A resumed run continues the same series: the steps after its last saved epoch (trained again
 * now) are dropped, and its time axis goes on from where it was, without the pause.
 */
function resumeSeries(s: RunSeries, at: { afterEpoch: number; globalStep: number }, startedMs: number): void {
  const keepSteps = s.step.findIndex((g) => g > at.globalStep);
  const keepEpochs = s.epochEpochX.findIndex((e) => e > at.afterEpoch);
  const steps = s.step.length;
  const record = s as unknown as Record<string, unknown>;
  for (const [key, v] of Object.entries(record)) {
    if (!Array.isArray(v) || key === 'growth') continue;
    if (EPOCH_COLUMNS.has(key)) {
      if (keepEpochs >= 0) v.length = keepEpochs;
    } else if (keepSteps >= 0 && v.length === steps) v.length = keepSteps;
  }
  s.growth = s.growth.filter((g) => g.globalStep <= at.globalStep);
  const lastTime = s.timeSec.length ? s.timeSec[s.timeSec.length - 1]! : 0;
  if (Number.isFinite(startedMs)) s.startMs = startedMs - lastTime * 1000;
}

export function xOf(s: RunSeries, axis: XAxis): number[] {
  return axis === 'step' ? s.step : axis === 'epoch' ? s.epochX : s.timeSec;
}

export function epochXOf(s: RunSeries, axis: XAxis): number[] {
  return axis === 'step' ? s.epochStep : axis === 'epoch' ? s.epochEpochX : s.epochTimeSec;
}
