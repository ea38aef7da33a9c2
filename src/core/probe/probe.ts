/**
 * The probe end to end. For an automatic batch (probeByObjective): measure what the time-to-target
 * objective needs (objective.ts) — the throughput curve from the base batch up and the gradient
 * noise scale, in one trial process — then try larger batches only while one of them could still
 * reach the target sooner, and plan the batch with the least predicted time to the target. The
 * trials' real steps at that batch confirm it fits; the device's maximum is searched only when a
 * trial runs out of memory on the way.
 *
 * For a batch set in the config, or when memory holds less than the base batch (probeByMaximum):
 * search for the largest micro-batch that really trains (seeded by the memory model), plan with it
 * less a safety margin and confirm the plan itself with one more trial.
 */
import { formatCount } from '../shared/format';
import type { TrainConfig } from '../shared/config-types';
import type { DatasetReport } from '../shared/dataset-types';
import type { DeviceInfo } from '../shared/device-types';
import type { TrainingPlan } from '../shared/plan';
import type { GradientNoiseScale, ObjectiveReport, ProbeReport, ProbeTrialResult, ProbeTrialSpec, TrialRunner } from '../shared/probe';
import type { BackendName } from '../shared/protocol';
import type { MemoryEstimate, Recommendation } from '../shared/report';
import { bytesForBatch, FIXED_OVERHEAD, GPU_RUNTIME_OVERHEAD, maxBatchSize, WASM_HEAP_MAX } from '../planning/memory';
import { makePlan } from '../planning/plan';
import { BASE_BATCH, datasetCap, floorPow2, MAX_BATCH, recommend, type RecommendInput } from '../planning/recommend';
import { estimateNoiseScale } from './noise';
import { chooseBatch, cleanCurve, largerBatchWorthTrying, ratioText, throughputAt, type ThroughputPoint } from './objective';
import { searchMaxBatch, type SearchResult } from './search';

/** The margin is widened to the model's error when that is larger, up to this. */
export const MAX_MARGIN = 0.5;
/** Optimizer steps per trial. */
export const PROBE_STEPS = 3;
/** Steps of the noise-scale measurement: at least, and at most while they take under NOISE_BUDGET_MS. */
export const NOISE_STEPS = 3;
export const NOISE_MAX_STEPS = 16;
export const NOISE_BUDGET_MS = 8000;
/**
 * Training steps before the noise measurement: at most these, and at most this long (the trial
 * also keeps them within a few percent of the run's predicted time). The noise scale at a run's
 * first steps is a small fraction of what it is while most of the run trains.
 */
export const NOISE_WARM_MAX_STEPS = 200;
export const NOISE_WARM_MAX_MS = 5000;
/** The first trial's batch: throughput is timed at every power of two from the base batch up to it. */
export const FIRST_TRIAL_BATCH = { gpu: 256, host: 64 } as const;
/** Trial processes of the objective's measurements (failed ones included) before it settles. */
export const MAX_MEASURE_TRIALS = 4;
/**
 * The next batch above a trial's is also timed inside that trial's process when the memory model
 * predicts it within this share of the limit: it cannot run out of memory there, and a process (its
 * start, the backend, the model, a decoded batch) is saved. Above that share it gets a process of its own.
 */
export const IN_TRIAL_ABOVE_SHARE = 0.25;

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

/** The bytes a trial's process may use: the device's limit, the memory model's budget, the wasm heap. */
function safeLimit(input: ProbeInput, limitBytes: number | undefined): number {
  return Math.min(limitBytes ?? Infinity, input.memory.budgetBytes, input.plannedBackend === 'wasm' ? WASM_HEAP_MAX : Infinity);
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
  return { smallBatch: small, bigBatch: Math.max(2 * small, big), steps: NOISE_STEPS, maxSteps: NOISE_MAX_STEPS, budgetMs: NOISE_BUDGET_MS, warmMaxSteps: NOISE_WARM_MAX_STEPS, warmMaxMs: NOISE_WARM_MAX_MS };
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
  if (typeof input.config.batchSize === 'number') {
    const out = await probeByMaximum(input, opts);
    out.probe.processes = out.probe.trials.filter((t) => !t.cached).length;
    if (input.config.batchGrowth) out.plan.warnings.push('Batch growth is off for this run: the config sets the batch size.');
    return out;
  }
  const predictedUsable = Math.floor(maxBatchSize(input.memory) * (1 - input.margin));
  const ceiling = Math.min(floorPow2(predictedUsable), datasetCap(Math.max(1, input.dataset.train)).cap, floorPow2(MAX_BATCH));
  const out = ceiling < BASE_BATCH ? await probeByMaximum(input, opts) : await probeByObjective(input, opts, ceiling);
  // Processes that ran: trials reused from the probe cache started none.
  out.probe.processes = out.probe.trials.filter((t) => !t.cached).length;
  if (input.config.batchGrowth && !out.plan.batchGrowth && !out.plan.warnings.some((w) => w.startsWith('Batch growth'))) {
    out.plan.warnings.push(`Batch growth is off for this run: memory holds less than batch ${BASE_BATCH}, so no larger batch can be grown to.`);
  }
  return out;
}

/** The largest batch that trains, less the margin; the plan confirmed by its own trial. */
async function probeByMaximum(input: ProbeInput, opts: ProbeOptions): Promise<ProbeOutcome> {
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
    ...(plannedBackend === 'wasm' ? { hardLimitBytes: WASM_HEAP_MAX } : {}),
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
    maxSearched: true,
  };

  // Every trial failed for a reason other than memory: keep the model's plan and say why.
  if (search.maxBatchSize === undefined) return unconfirmed(input, report, trials.at(-1)?.error ?? 'no trial finished');

  const measuredMax = search.maxBatchSize;
  let usable = Math.floor(measuredMax * (1 - margin));
  if (measuredMax > 0) usable = Math.max(1, usable);
  const maxText = searchedText(search, usable, err, largestOk?.batchSize, margin, input.margin);

  let gradientNoiseScale: GradientNoiseScale | undefined;
  let recommendation = recommend({ ...base, maxBatch: usable, maxBatchText: maxText });
  let plan = finish(makePlan({ config, dataset, device, memory, recommendation, plannedBackend }), measuredMax);
  let confirm: ProbeTrialResult | undefined;
  // Confirm the plan itself (its micro-batch, accumulation and validation batch); measure the noise scale with it.
  for (let attempt = 0; attempt < 2 && measuredMax > 0; attempt++) {
    confirm = await opts.runTrial({
      ...spec(config, plan.microBatchSize, plan.accumulationSteps, plan.validationBatchSize, noiseSpec(plan.microBatchSize, dataset.train)),
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
  if (gradientNoiseScale) plan.reasons.push(`Gradient noise scale: ${gradientNoiseScale.note}.`);
  for (const t of trials) t.predictedBytes = predictedForTrial(memory, t);
  throughputReason(plan, trials);
  if (confirm && !confirm.ok) {
    const w = `The plan's own trial failed (${confirm.error ?? confirm.failure}); train with care.`;
    plan.warnings.push(w);
    recommendation.warnings.push(w);
  }
  return { probe: report, ...(gradientNoiseScale ? { gradientNoiseScale } : {}), recommendation, plan };
}

/** What the search for the largest batch found, for the reasons: the batch it trained, the model's error, the margin. */
function searchedText(
  search: SearchResult,
  usable: number,
  err: number | null,
  errAt: number | undefined,
  margin: number,
  askedMargin: number,
): string {
  const measuredMax = search.maxBatchSize ?? 0;
  const trials = plural(search.processes, 'trial');
  const errText = err === null ? '' : ` (the memory model ${err >= 0 ? 'over' : 'under'}-predicted by ${pct(Math.abs(err))} at batch ${errAt})`;
  const marginText = margin > askedMargin ? `a ${pct(margin)} margin (widened from ${pct(askedMargin)}: the model erred by more)` : `a ${pct(margin)} margin`;
  if (search.atCap) return `Real training steps trained batch ${formatCount(measuredMax)} (${trials})${errText}, enough for this plan with ${marginText}`;
  if (measuredMax === 0) return `Real training steps did not train even batch 1 (${trials})`;
  return `Real training steps trained up to batch ${formatCount(measuredMax)} (${trials}, ${search.stop})${errText}; with ${marginText} up to ${formatCount(usable)} images are used`;
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

/** Powers of two from `from` up to `to` (both included when powers of two). */
function powersOfTwo(from: number, to: number): number[] {
  const out: number[] = [];
  for (let b = 2 ** Math.ceil(Math.log2(Math.max(1, from))); b <= to; b *= 2) out.push(b);
  return out;
}

/** Throughput points of the trials that trained (the trial's own batch only without accumulation). */
function curveOf(trials: readonly ProbeTrialResult[]): ThroughputPoint[] {
  return cleanCurve(
    trials
      .filter((t) => t.ok)
      .flatMap((t) => [...(t.accumulationSteps === 1 ? [{ batchSize: t.batchSize, imagesPerSec: t.imagesPerSec }] : []), ...(t.throughput ?? [])]),
  );
}

function ips(curve: readonly ThroughputPoint[], b: number): string {
  return throughputAt(curve, b).toFixed(0);
}

function num3(x: number): string {
  return formatCount(Number(x.toPrecision(3)));
}

/**
 * The noise scale the plan is made for: the upper end of the measured one's 80% range (its point
 * estimate when the range is unbounded or unknown). The noise scale only grows as the loss falls
 * (McCandlish et al. 2018, fig. 5; on the MNIST sample ≈ 47 after 25 steps, 90–120 after 50–100,
 * ~200 after 250), so the measurement early in training is low for the steps that follow it; of the
 * values the measurement allows, the plan takes the one nearest to what most of the run trains at.
 */
export function planningNoiseScale(g: GradientNoiseScale): number | undefined {
  if (g.bSimple === undefined) return undefined;
  const hi = g.range?.[1] ?? NaN;
  return Number.isFinite(hi) ? Math.max(hi, g.bSimple) : g.bSimple;
}

/**
 * The objective's choice among the confirmed candidates, its report and the reason in words: the
 * argmin of (B + B_noise)/imagesPerSec(B) with the noise scale it is planned for (planningNoiseScale) (and what the choice would
 * be at the ends of its range), or without one the smallest batch reaching 95% of the best throughput.
 */
export function objectiveChoice(curve: readonly ThroughputPoint[], g: GradientNoiseScale | undefined, candidates: readonly number[]): { report: ObjectiveReport; reason: string } {
  const largest = Math.max(...candidates);
  const bNoise = g ? planningNoiseScale(g) : undefined;
  if (g?.bSimple !== undefined && bNoise !== undefined) {
    const c = chooseBatch(curve, bNoise, candidates);
    const report: ObjectiveReport = { basis: 'noise-scale', bNoise, bNoiseMeasured: g.bSimple, chosen: c.batchSize, rows: c.rows };
    const bigRow = c.rows.find((r) => r.batchSize === largest)!;
    const noise = bNoise > g.bSimple ? `noise scale ${num3(bNoise)} planned for (measured ≈ ${num3(g.bSimple)}; it grows as the loss falls, so the plan takes the upper end of its range)` : `noise scale ≈ ${num3(bNoise)}`;
    let reason =
      c.batchSize < largest
        ? `predicted to reach the same loss in ${ratioText(1 / bigRow.relativeTime)} the time of batch ${formatCount(largest)} — ${ips(curve, c.batchSize)} vs ${ips(curve, largest)} images/s measured, ${noise} (time to a target ∝ (batch + noise scale) / images per second, McCandlish et al. 2018).`
        : `predicted to reach the target loss soonest of the batches measured (${formatCount(Math.min(...candidates))}–${formatCount(largest)}): ${ips(curve, largest)} images/s, ${noise}${c.rows.length > 1 ? `; batch ${formatCount(c.rows[c.rows.length - 2]!.batchSize)} would take ${ratioText(c.rows[c.rows.length - 2]!.relativeTime)} as long` : ''} (time to a target ∝ (batch + noise scale) / images per second, McCandlish et al. 2018).`;
    if (g.range) {
      const lo = chooseBatch(curve, g.range[0], candidates).batchSize;
      const hi = chooseBatch(curve, g.range[1] ?? 1e12, candidates).batchSize;
      report.bNoiseRange = g.range;
      report.choiceInRange = [lo, hi];
      const range = `${num3(g.range[0])}–${g.range[1] === null ? 'unbounded' : num3(g.range[1])}`;
      reason +=
        lo === hi && lo === c.batchSize
          ? ` The choice holds across the noise scale's measured range (${range}).`
          : ` Within the noise scale's measured range (${range}) the choice would be ${formatCount(lo)}–${formatCount(hi)}.`;
    }
    return { report, reason };
  }
  // No usable noise scale: nothing says a larger batch needs fewer steps; take the smallest batch
  // that is (almost) as fast as any measured.
  const rows = candidates.map((b) => ({ batchSize: b, imagesPerSec: throughputAt(curve, b) }));
  const best = Math.max(...rows.map((r) => r.imagesPerSec));
  const fast = rows.find((r) => r.imagesPerSec >= 0.95 * best)!;
  const report: ObjectiveReport = {
    basis: 'throughput',
    chosen: fast.batchSize,
    rows: rows.map((r) => ({ ...r, measured: true, relativeTime: (r.batchSize / r.imagesPerSec) / (fast.batchSize / fast.imagesPerSec) })),
  };
  const why = g ? `the gradient noise scale was ${g.note}` : 'the gradient noise scale was not measured';
  return { report, reason: `the smallest batch reaching 95% of the best measured throughput (${fast.imagesPerSec.toFixed(0)} images/s at ${formatCount(fast.batchSize)}, ${best.toFixed(0)} at best); ${why}, so a larger batch is not known to need fewer steps.` };
}

/**
 * The objective's probe: one trial at a moderate batch times every power of two from the base
 * batch up to it and measures the noise scale; further trials only while a larger batch could still
 * reach the target sooner (objective.ts largerBatchWorthTrying), up to `ceiling` (the memory model's
 * usable maximum, the dataset's and MAX_BATCH). A trial out of memory on the way lowers the ceiling
 * to what trained.
 */
async function probeByObjective(input: ProbeInput, opts: ProbeOptions, ceiling: number): Promise<ProbeOutcome> {
  const { config, dataset, plannedBackend } = input;
  const limitBytes = deviceLimit(input.device, plannedBackend);
  const k0 = config.explicit.includes('accumulationSteps') ? config.accumulationSteps : 1;
  const t = new TrialLog(opts, limitBytes);
  const above = (b: number): number[] => (k0 === 1 && 2 * b <= ceiling && bytesForBatch(input.memory, 2 * b) <= IN_TRIAL_ABOVE_SHARE * safeLimit(input, limitBytes) ? [2 * b] : []);
  const measure = (b: number, below: number[], noise: boolean): ProbeTrialSpec => ({
    ...spec(config, b, k0, b, noise ? noiseSpec(b, dataset.train) : undefined),
    throughputBatches: [...below.filter((x) => x < b), ...above(b)],
    runImages: config.epochs * Math.max(1, dataset.train),
  });

  let first = Math.min(ceiling, plannedBackend === 'tensorflow-gpu' ? FIRST_TRIAL_BATCH.gpu : FIRST_TRIAL_BATCH.host);
  let r = await t.run(measure(first, powersOfTwo(BASE_BATCH, first), true));
  if (!r.ok && !isMemoryFailure(r)) r = await t.run(measure(first, powersOfTwo(BASE_BATCH, first), true)); // one retry: a flaky failure is not a memory limit
  let failedAt = Infinity;
  while (!r.ok && isMemoryFailure(r) && first > BASE_BATCH) {
    // The memory model over-predicted what fits: halve down to the base batch.
    failedAt = first;
    first = first / 2;
    r = await t.run(measure(first, powersOfTwo(BASE_BATCH, first), true));
  }
  // A batch above the trial's that trained inside it (well within memory) is confirmed as well.
  if (r.ok && failedAt === Infinity) first = largestTrained(r, first, ceiling);
  if (!r.ok) {
    if (isMemoryFailure(r)) return fallback(input, opts, t.trials, t.processes, `batch ${first} did not fit (${r.error ?? r.failure}): the plan falls back to the largest batch that trains`);
    const why = r.error ?? r.failure ?? 'no trial finished';
    const report: ProbeReport = { trials: t.trials, maxBatchSize: 0, atCap: false, modelError: null, margin: input.margin, ...(limitBytes !== undefined ? { limitBytes } : {}), usableBatchSize: 0, processes: t.processes, stop: `the trials failed: ${why}`, maxSearched: false };
    return unconfirmed(input, report, why, Math.max(1, Math.floor(maxBatchSize(input.memory) * (1 - input.margin))));
  }
  const noiseTrial = t.trials.find((x) => x.ok && x.gradientNorms);
  const gradientNoiseScale = noiseTrial?.gradientNorms ? estimateNoiseScale(noiseTrial.gradientNorms) : undefined;
  const grown = await growWhileWorth(t, measure, first, ceiling, failedAt, gradientNoiseScale ? planningNoiseScale(gradientNoiseScale) : undefined);
  return objectiveOutcome(input, t, { ...grown, ceiling, limitBytes, ...(gradientNoiseScale ? { gradientNoiseScale } : {}) });
}

/** The largest batch a trial trained, up to `ceiling`: its own, or one it timed above it (within memory, probeByObjective's `above`). */
function largestTrained(r: ProbeTrialResult, own: number, ceiling: number): number {
  return Math.max(own, ...(r.throughput ?? []).filter((p) => p.imagesPerSec > 0 && p.batchSize <= ceiling).map((p) => p.batchSize));
}

/** The probe's trials in order and the processes they took; a trial whose peak is above the planned device's limit counts as over budget. */
class TrialLog {
  readonly trials: ProbeTrialResult[] = [];
  processes = 0;

  constructor(
    private readonly opts: ProbeOptions,
    private readonly limitBytes: number | undefined,
  ) {}

  async run(s: ProbeTrialSpec): Promise<ProbeTrialResult> {
    let r = await this.opts.runTrial(s);
    if (!r.cached) this.processes++;
    const limit = this.limitBytes;
    if (limit !== undefined && r.ok && r.peakBytes > limit) r = { ...r, ok: false, failure: 'over-budget', error: `peak ${Math.round(r.peakBytes / 2 ** 20)} MiB is above the planned device's ${Math.round(limit / 2 ** 20)} MiB` };
    this.opts.onTrial?.(r, 'search');
    this.trials.push(r);
    return r;
  }
}

function isMemoryFailure(r: ProbeTrialResult): boolean {
  return r.failure === 'oom' || r.failure === 'over-budget' || r.failure === 'timeout';
}

/** Every trial failed for a reason other than memory: the memory model's plan, saying why it is not confirmed. */
function unconfirmed(input: ProbeInput, report: ProbeReport, why: string, maxBatch?: number): ProbeOutcome {
  const { config, dataset, device, memory, plannedBackend } = input;
  const recommendation = recommend({ dataset, memory, config, device, freeHostRamBytes: input.freeHostRamBytes, ...(maxBatch !== undefined ? { maxBatch } : {}) });
  recommendation.warnings.push(`The probe could not confirm the plan (${why}); the batch size comes from the memory model alone.`);
  const plan = makePlan({ config, dataset, device, memory, recommendation, plannedBackend });
  for (const t of report.trials) t.predictedBytes = predictedForTrial(memory, t);
  return { probe: report, recommendation, plan };
}

/** Larger batches than the first confirmed one, only while one could still win (a GPU whose throughput still grows). */
async function growWhileWorth(
  t: TrialLog,
  measure: (b: number, below: number[], noise: boolean) => ProbeTrialSpec,
  first: number,
  ceiling: number,
  failedAtFirst: number,
  bNoise: number | undefined,
): Promise<{ confirmed: number; failedAt: number; stop: string }> {
  let confirmed = first;
  let failedAt = failedAtFirst;
  let stop = ceiling <= confirmed ? `batch ${formatCount(confirmed)} is the largest the plan could use (the memory model's, the dataset's and the ${formatCount(MAX_BATCH)} ceiling)` : `larger batches than ${formatCount(confirmed)} cannot reach the target sooner here`;
  while (bNoise !== undefined && t.trials.length < MAX_MEASURE_TRIALS && failedAt === Infinity) {
    const next = largerBatchWorthTrying(curveOf(t.trials), bNoise, powersOfTwo(BASE_BATCH, confirmed), Math.min(ceiling, failedAt - 1));
    if (next === undefined) break;
    const r = await t.run(measure(next, powersOfTwo(confirmed * 2, next), false));
    if (r.ok) {
      confirmed = largestTrained(r, next, ceiling);
      stop = ceiling <= confirmed ? `batch ${formatCount(confirmed)} is the largest the plan could use` : `larger batches than ${formatCount(confirmed)} cannot reach the target sooner here`;
    } else {
      failedAt = next;
      stop = `batch ${formatCount(next)} did not train (${r.error ?? r.failure})`;
    }
  }
  if (t.trials.length >= MAX_MEASURE_TRIALS && stop.startsWith('larger')) stop = `${MAX_MEASURE_TRIALS} trials`;
  return { confirmed, failedAt, stop };
}

/** The objective's choice among the confirmed batches (within the margin), its reasons, and the probe's report. */
function objectiveOutcome(
  input: ProbeInput,
  t: TrialLog,
  m: { confirmed: number; failedAt: number; stop: string; ceiling: number; limitBytes: number | undefined; gradientNoiseScale?: GradientNoiseScale },
): ProbeOutcome {
  const { config, dataset, device, memory, plannedBackend } = input;
  const { trials, processes } = t;
  const { confirmed, failedAt, stop, limitBytes, gradientNoiseScale } = m;
  const curve = curveOf(trials);
  let candidates = powersOfTwo(BASE_BATCH, confirmed);
  let { report: objective, reason } = objectiveChoice(curve, gradientNoiseScale, candidates);
  // The margin: a confirmed batch whose measured peak leaves less than the margin below the device is not planned.
  const atEdge = trials.find((x) => x.ok && x.batchSize === objective.chosen && x.peakBytes > 0);
  if (limitBytes !== undefined && atEdge && atEdge.peakBytes > limitBytes * (1 - input.margin) && objective.chosen > BASE_BATCH) {
    candidates = candidates.filter((b) => b < objective.chosen);
    ({ report: objective, reason } = objectiveChoice(curve, gradientNoiseScale, candidates));
    reason += ` (batch ${formatCount(atEdge.batchSize)} trained but left less than the ${pct(input.margin)} margin free.)`;
  }
  const largestOk = trials.filter((x) => x.ok).sort((a, b) => b.batchSize - a.batchSize)[0];
  const reused = trials.filter((x) => x.cached).length;
  const how = [processes > 0 ? `${processes} trial process${processes === 1 ? '' : 'es'}` : '', reused > 0 ? `${plural(reused, 'trial')} reused from the probe cache` : ''].filter(Boolean).join(', ');
  const maxText =
    `Real training steps trained batch ${formatCount(confirmed)} (${how}) and timed every batch from ${BASE_BATCH} up to it` +
    (failedAt !== Infinity
      ? `; batch ${formatCount(failedAt)} did not fit`
      : `. Larger batches were not tried: ${stop}. The memory model predicts up to ${formatCount(Math.floor(maxBatchSize(memory) * (1 - input.margin)))} fit with a ${pct(input.margin)} margin`);
  const recommendation = recommend({ dataset, memory, config, device, freeHostRamBytes: input.freeHostRamBytes, maxBatch: confirmed, maxBatchText: maxText, chosen: { batch: objective.chosen, reason } });
  const plan = finish(makePlan({ config, dataset, device, memory, recommendation, plannedBackend }), confirmed);
  if (gradientNoiseScale) plan.reasons.push(`Gradient noise scale: ${gradientNoiseScale.note}.`);
  if (config.batchGrowth) planGrowth(plan, config, curve, candidates);
  for (const x of trials) x.predictedBytes = predictedForTrial(memory, x);
  const report: ProbeReport = {
    trials,
    maxBatchSize: confirmed,
    atCap: m.ceiling <= confirmed,
    modelError: modelError(memory, largestOk),
    margin: input.margin,
    ...(limitBytes !== undefined ? { limitBytes } : {}),
    usableBatchSize: Math.max(...candidates),
    processes,
    stop,
    maxSearched: failedAt !== Infinity,
    objective,
  };
  return { probe: report, ...(gradientNoiseScale ? { gradientNoiseScale } : {}), recommendation, plan };
}

/** The objective's first trial did not fit even at the base batch: plan by the largest batch that trains. */
async function fallback(input: ProbeInput, opts: ProbeOptions, earlier: ProbeTrialResult[], processes: number, why: string): Promise<ProbeOutcome> {
  const out = await probeByMaximum(input, opts);
  out.probe.trials = [...earlier, ...out.probe.trials];
  out.probe.processes += processes;
  out.probe.stop = `${why}; ${out.probe.stop}`;
  return out;
}

/** Steps between the trainer's noise-scale measurements when the batch may grow. */
export const GROWTH_MEASURE_EVERY = 10;

/**
 * Batch growth (config `batchGrowth`): the confirmed batches above the plan's are where the run may
 * grow to, with the probe's throughput curve for the objective and the optimizer's scaling rule.
 */
function planGrowth(plan: TrainingPlan, config: TrainConfig, curve: ThroughputPoint[], confirmed: number[]): void {
  const larger = confirmed.filter((b) => b > plan.microBatchSize);
  if (plan.accumulationSteps > 1 || larger.length === 0) {
    plan.warnings.push(`Batch growth is off for this run: ${plan.accumulationSteps > 1 ? 'the plan accumulates gradients' : `no batch above ${plan.microBatchSize} was confirmed to fit`}.`);
    return;
  }
  const lrSet = config.explicit.includes('learningRate');
  const rule = lrSet ? 'none' : config.optimizer === 'sgd' || config.optimizer === 'momentum' ? 'linear' : 'sqrt';
  plan.batchGrowth = { candidates: [plan.microBatchSize, ...larger], throughput: curve, measureEverySteps: GROWTH_MEASURE_EVERY, rule };
  plan.reasons.push(
    `Batch growth: every ${GROWTH_MEASURE_EVERY} steps one step is taken as two half-batches to re-measure the noise scale, which grows as the loss falls; at an epoch end the batch grows to the one (up to ${formatCount(Math.max(...larger))}, confirmed to fit) predicted to reach the target sooner, ${rule === 'none' ? 'keeping the learning rate the config sets' : `the learning rate scaled by the ${rule === 'linear' ? 'linear' : 'square-root'} rule`}.`,
  );
}
