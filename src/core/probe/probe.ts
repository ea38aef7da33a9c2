/**
 * The probe end to end: search for the largest micro-batch that really trains (seeded by the memory
 * model), plan with it less a safety margin, confirm the plan itself with one more trial (which also
 * measures the gradient noise scale and the throughput at the plan), and say all of it in reasons.
 */
import { formatCount } from '../shared/format';
import type { TrainConfig } from '../shared/config-types';
import type { DatasetReport } from '../shared/dataset-types';
import type { DeviceInfo } from '../shared/device-types';
import type { TrainingPlan } from '../shared/plan';
import type { GradientNoiseScale, ProbeReport, ProbeTrialResult, ProbeTrialSpec } from '../shared/probe';
import type { BackendName } from '../shared/protocol';
import type { MemoryEstimate, Recommendation } from '../shared/report';
import { bytesForBatch, FIXED_OVERHEAD, GPU_RUNTIME_OVERHEAD, maxBatchSize } from '../memory';
import { makePlan } from '../plan';
import { BASE_BATCH, recommend, type RecommendInput } from '../recommend';
import { estimateNoiseScale } from './noise';
import { searchMaxBatch } from './search';
import type { TrialRunner } from './run-trial';

/** The margin is widened to the model's error when that is larger, up to this. */
export const MAX_MARGIN = 0.5;
/** Optimizer steps per trial. */
export const PROBE_STEPS = 3;
/** Steps of the noise-scale measurement. */
export const NOISE_STEPS = 4;

export interface ProbeInput {
  config: TrainConfig;
  dataset: DatasetReport;
  device: DeviceInfo;
  memory: MemoryEstimate;
  plannedBackend: BackendName;
  freeHostRamBytes: number;
  /** The configured margin (the headroom). */
  margin: number;
}

export interface ProbeOptions {
  runTrial: TrialRunner;
  maxTrials?: number;
  onTrial?: (r: ProbeTrialResult, phase: 'search' | 'confirm') => void;
}

export interface ProbeOutcome {
  probe: ProbeReport;
  gradientNoiseScale?: GradientNoiseScale;
  recommendation: Recommendation;
  plan: TrainingPlan;
}

function pct(f: number): string {
  return `${Math.round(f * 100)}%`;
}

/** What a trial's peak is compared with when the trials cannot run out of the planned device's memory themselves. */
function deviceLimit(device: DeviceInfo, backend: BackendName): number | undefined {
  if (device.source !== 'override' && device.kind !== 'gpu') return undefined;
  // Trials measure live tensors: the runtime's own share of the device is taken off the limit.
  return Math.max(0, device.memoryFreeBytes - (backend === 'tensorflow-gpu' ? GPU_RUNTIME_OVERHEAD : 0) - FIXED_OVERHEAD);
}

function spec(config: TrainConfig, micro: number, k: number, validationBatch: number, noise?: ProbeTrialSpec['noise']): ProbeTrialSpec {
  return { microBatchSize: micro, accumulationSteps: k, validationBatchSize: validationBatch, steps: PROBE_STEPS, learningRate: config.learningRate, ...(noise ? { noise } : {}) };
}

/** Batches for the noise scale: a big batch of up to 64 split into 8 chunks (at least 4 images each). */
function noiseSpec(micro: number, train: number): NonNullable<ProbeTrialSpec['noise']> {
  const big = Math.max(8, Math.min(64, micro, train));
  const small = Math.max(4, Math.floor(big / 8));
  return { smallBatch: small, bigBatch: Math.max(2 * small, big), steps: NOISE_STEPS };
}

/**
 * The model's prediction for what a trial measures: all of it against nvidia-smi's reading; without
 * the runtime overhead (CUDA context, scratch) against live tensor bytes.
 */
export function predictedForTrial(memory: MemoryEstimate, r: Pick<ProbeTrialResult, 'batchSize' | 'gpuBytes'>): number {
  const all = bytesForBatch(memory, r.batchSize);
  return r.gpuBytes !== undefined ? all : all - memory.breakdown.overheadBytes;
}

function modelError(memory: MemoryEstimate, r: ProbeTrialResult | undefined): number | null {
  if (!r || !(r.tensorPeakBytes > 0)) return null;
  const measured = r.gpuBytes ?? r.tensorPeakBytes;
  return (predictedForTrial(memory, r) - measured) / measured;
}

export async function probePlan(input: ProbeInput, opts: ProbeOptions): Promise<ProbeOutcome> {
  const { config, dataset, device, memory, plannedBackend } = input;
  const base: Omit<RecommendInput, 'maxBatch'> = { dataset, memory, config, device, freeHostRamBytes: input.freeHostRamBytes };
  // The batch the plan would use if memory were no limit, and the batch that must train for it to fit with the margin.
  const unbounded = recommend({ ...base, maxBatch: Number.MAX_SAFE_INTEGER });
  const cap = Math.max(1, Math.ceil(unbounded.batchSize / (1 - input.margin)));
  const limitBytes = deviceLimit(device, plannedBackend);
  const k0 = config.explicit.includes('accumulationSteps') ? config.accumulationSteps : 1;
  const search = await searchMaxBatch({
    predictedBytes: (b) => bytesForBatch(memory, b),
    budgetBytes: memory.budgetBytes,
    predictedMax: maxBatchSize(memory),
    cap,
    ...(limitBytes !== undefined ? { limitBytes } : {}),
    ...(opts.maxTrials !== undefined ? { maxTrials: opts.maxTrials } : {}),
    trial: (b) => opts.runTrial(spec(config, b, k0, b)),
    onTrial: (r) => opts.onTrial?.(r, 'search'),
  });
  const trials = [...search.trials];
  const largestOk = trials.filter((t) => t.ok).sort((a, b) => b.batchSize - a.batchSize)[0];
  const err = modelError(memory, largestOk);
  // Widened when the model under-predicted by more than the margin: its error is what the margin guards against.
  const margin = err !== null && -err > input.margin ? Math.min(MAX_MARGIN, -err) : input.margin;
  const report: ProbeReport = {
    trials,
    maxBatchSize: search.maxBatchSize ?? 0,
    atCap: search.atCap,
    modelError: err,
    margin,
    ...(limitBytes !== undefined ? { limitBytes } : {}),
    usableBatchSize: 0,
    processes: search.processes,
    stop: search.stop,
  };

  if (search.maxBatchSize === undefined) {
    // Every trial failed for a reason other than memory: keep the model's plan and say why.
    const recommendation = recommend(base);
    const why = trials.at(-1)?.error ?? 'no trial finished';
    recommendation.warnings.push(`The probe could not confirm the plan (${why}); the batch size comes from the memory model alone.`);
    const plan = makePlan({ config, dataset, device, memory, recommendation, plannedBackend });
    for (const t of trials) t.predictedBytes = predictedForTrial(memory, t);
    return { probe: report, recommendation, plan };
  }

  const measuredMax = search.maxBatchSize;
  let usable = Math.floor(measuredMax * (1 - margin));
  if (measuredMax > 0) usable = Math.max(1, usable);
  const errText = err === null ? '' : ` (the memory model ${err >= 0 ? 'over' : 'under'}-predicted by ${pct(Math.abs(err))} at batch ${largestOk!.batchSize})`;
  const marginText = margin > input.margin ? `a ${pct(margin)} margin (widened from ${pct(input.margin)}: the model erred by more)` : `a ${pct(margin)} margin`;
  const maxText = search.atCap
    ? `Real training steps trained batch ${formatCount(measuredMax)} (${plural(search.processes, 'trial')})${errText}, enough for this plan with ${marginText}`
    : measuredMax === 0
      ? `Real training steps did not train even batch 1 (${plural(search.processes, 'trial')})`
      : `Real training steps trained up to batch ${formatCount(measuredMax)} (${plural(search.processes, 'trial')}, ${search.stop})${errText}; with ${marginText} up to ${formatCount(usable)} images are used`;

  let gradientNoiseScale: GradientNoiseScale | undefined;
  let recommendation = recommend({ ...base, maxBatch: usable, maxBatchText: maxText });
  let plan = finish(makePlan({ config, dataset, device, memory, recommendation, plannedBackend }), measuredMax);
  let confirm: ProbeTrialResult | undefined;
  // Confirm the plan itself (its micro-batch, accumulation and validation batch); measure the noise scale with it.
  for (let attempt = 0; attempt < 2 && measuredMax > 0; attempt++) {
    confirm = await opts.runTrial({
      ...spec(config, plan.microBatchSize, plan.accumulationSteps, plan.validationBatchSize, noiseSpec(plan.microBatchSize, dataset.train)),
      throughputBatches: plan.accumulationSteps > 1 ? [] : throughputBatches(config, plan.microBatchSize),
    });
    report.processes++;
    if (limitBytes !== undefined && confirm.ok && confirm.peakBytes > limitBytes) confirm = { ...confirm, ok: false, failure: 'over-budget' };
    opts.onTrial?.(confirm, 'confirm');
    trials.push(confirm);
    if (confirm.ok || plan.microBatchSize <= 1) break;
    usable = Math.max(1, plan.microBatchSize - 1);
    recommendation = recommend({ ...base, maxBatch: usable, maxBatchText: `${maxText}; the plan's own trial at batch ${plan.microBatchSize} failed (${confirm.error ?? confirm.failure}), so at most ${usable}` });
    plan = finish(makePlan({ config, dataset, device, memory, recommendation, plannedBackend }), measuredMax);
  }
  report.usableBatchSize = usable;

  if (confirm?.gradientNorms) gradientNoiseScale = estimateNoiseScale(confirm.gradientNorms);
  const soft = softCaps(config, plan, confirm, gradientNoiseScale);
  if (soft) {
    // A smaller micro-batch than the confirmed one, without accumulation (never below the base batch): it fits a fortiori.
    recommendation = recommend({ ...base, maxBatch: usable, maxBatchText: maxText, softCap: soft });
    plan = finish(makePlan({ config, dataset, device, memory, recommendation, plannedBackend }), measuredMax);
  }
  if (gradientNoiseScale?.bSimple !== undefined && !soft?.reason.startsWith('bound by the gradient noise')) {
    plan.reasons.push(`Gradient noise scale: ${gradientNoiseScale.note}; the batch of ${plan.effectiveBatchSize} is ${plan.effectiveBatchSize <= gradientNoiseScale.bSimple ? 'within it' : 'above it, which is fine while it grows'}.`);
  }
  for (const t of trials) t.predictedBytes = predictedForTrial(memory, t);
  throughputReason(plan, trials);
  if (confirm && !confirm.ok) {
    const w = `The plan's own trial failed (${confirm.error ?? confirm.failure}); train with care.`;
    plan.warnings.push(w);
    recommendation.warnings.push(w);
  }
  return { probe: report, ...(gradientNoiseScale ? { gradientNoiseScale } : {}), recommendation, plan };
}

/** Powers of two below the plan's micro-batch, down to the base batch: where the throughput is timed. */
function throughputBatches(config: TrainConfig, micro: number): number[] {
  if (typeof config.batchSize === 'number') return [];
  const out: number[] = [];
  for (let b = micro / 2; b >= BASE_BATCH && Number.isInteger(b); b /= 2) out.push(b);
  return out;
}

/** Throughput per batch size measured by the plan's own trial (the plan's batch included). */
export function throughputCurve(confirm: ProbeTrialResult | undefined): { batchSize: number; imagesPerSec: number }[] {
  if (!confirm?.ok) return [];
  return [{ batchSize: confirm.batchSize, imagesPerSec: confirm.imagesPerSec }, ...(confirm.throughput ?? [])].filter((p) => p.imagesPerSec > 0 && Number.isFinite(p.imagesPerSec)).sort((a, b) => a.batchSize - b.batchSize);
}

/**
 * Soft upper bounds on an automatic batch, the lower one wins: the smallest measured batch reaching
 * 95% of the best measured throughput, and the gradient noise scale (rounded up to a power of two).
 * Neither goes below the base batch (no accumulation is needed to reach it).
 */
function softCaps(config: TrainConfig, plan: TrainingPlan, confirm: ProbeTrialResult | undefined, g: GradientNoiseScale | undefined): RecommendInput['softCap'] {
  if (typeof config.batchSize === 'number' || plan.accumulationSteps > 1) return undefined;
  const caps: { batch: number; reason: string }[] = [];
  const curve = throughputCurve(confirm);
  const best = curve.reduce((m, p) => Math.max(m, p.imagesPerSec), 0);
  const fast = curve.find((p) => p.imagesPerSec >= 0.95 * best);
  if (fast && fast.batchSize < plan.microBatchSize) {
    const at = curve.find((p) => p.batchSize === plan.microBatchSize);
    caps.push({
      batch: Math.max(BASE_BATCH, fast.batchSize),
      reason: `the smallest batch reaching 95% of the best measured throughput (${fast.imagesPerSec.toFixed(1)} images/s at ${fast.batchSize} vs ${best.toFixed(1)} at best${at ? `, ${at.imagesPerSec.toFixed(1)} at ${at.batchSize}` : ''}): a larger batch would not train faster here.`,
    });
  }
  if (g?.bSimple !== undefined) {
    const b = Math.max(BASE_BATCH, 2 ** Math.ceil(Math.log2(Math.max(1, g.bSimple))));
    if (b < plan.microBatchSize) caps.push({ batch: b, reason: `bound by the gradient noise scale: ${g.note}. Much beyond it a larger batch buys little per image at first; later in training larger batches may pay off.` });
  }
  return caps.sort((a, b) => a.batch - b.batch)[0];
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Marks the plan's batch as probed and records the measured maximum. */
function finish(plan: TrainingPlan, measuredMax: number): TrainingPlan {
  plan.maxMicroBatchSize = measuredMax;
  if (plan.sources.batchSize === 'planned') plan.sources.batchSize = 'probe';
  return plan;
}

/** Images/s at the plan's batch against the best measured, in the reasons. */
function throughputReason(plan: TrainingPlan, trials: ProbeTrialResult[]): void {
  const points = trials
    .filter((t) => t.ok && t.accumulationSteps === 1)
    .flatMap((t) => [{ batchSize: t.batchSize, imagesPerSec: t.imagesPerSec }, ...(t.throughput ?? [])])
    .filter((p) => p.imagesPerSec > 0 && Number.isFinite(p.imagesPerSec));
  const best = [...points].sort((a, b) => b.imagesPerSec - a.imagesPerSec)[0];
  const at = points.filter((p) => p.batchSize === plan.microBatchSize).sort((a, b) => b.imagesPerSec - a.imagesPerSec)[0];
  if (!best || !at || plan.accumulationSteps > 1) return;
  const share = at.imagesPerSec / best.imagesPerSec;
  plan.reasons.push(`Throughput: ${at.imagesPerSec.toFixed(1)} images/s at this batch, ${pct(share)} of the best measured (${best.imagesPerSec.toFixed(1)} at batch ${best.batchSize}).`);
}
