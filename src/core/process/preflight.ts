/**
 * Before training a plan whose micro-batch is predicted near the memory budget and was never
 * measured: one probe-sized trial at that micro-batch, paced by a trial at a small batch, so a
 * batch that does not fit ends in seconds with the figures (not a run that starts and spins) and a
 * batch that does fit tells the step watchdog how long its first step may take.
 *
 * The pace: the small trial measures images/s at batch b; the trial at the plan's micro-batch B
 * may take PACE_FACTOR × (its steps × B / that rate) plus the small trial's start-up time, at
 * least PACE_FLOOR_MS, never more than the probe's fixed trial timeout. A step is at most linear
 * in the batch on every backend measured here, so a trial past that is not training.
 *
 * Plans far over the budget never get here (fit-gate.ts ends them without any trial); plans the
 * probe measured, fallback plans and plans comfortably within the budget train at once.
 */
import { WASM_HEAP_MAX } from '../planning/memory';
import type { FitVerdict } from '../planning/fit-gate';
import { DEFAULT_TRIAL_TIMEOUT_MS } from './run-trial';
import { batchAfterOom, keepEffectiveBatch } from '../shared/constants';
import { formatBytes } from '../shared/format';
import type { TrainingPlan } from '../shared/plan';
import type { ProbeTrialResult, ProbeTrialSpec, TrialRunner } from '../shared/probe';

/** A micro-batch predicted above this fraction of the budget (or of the wasm heap) is tried first. */
export const NEAR_BUDGET = 0.85;
export const PACE_FACTOR = 6;
export const PACE_FLOOR_MS = 20_000;
export const PREFLIGHT_STEPS = 3;

export type PreflightPlan = Pick<
  TrainingPlan,
  'microBatchSize' | 'accumulationSteps' | 'validationBatchSize' | 'learningRate' | 'budgetBytes' | 'predictedBytes' | 'maxMicroBatchSize' | 'basis' | 'sources' | 'backend' | 'device'
>;

/** Makes a trial runner whose trials are killed after `timeoutMs` (the probe's child runner in the product). */
export type PreflightRunnerFactory = (timeoutMs: number) => TrialRunner;

export type PreflightOutcome =
  | { kind: 'skipped' }
  /** The micro-batch trained: its trial's wall time (start-up included) bounds the run's first step. */
  | { kind: 'fits'; trial: ProbeTrialResult; firstStepMs: number }
  | { kind: 'cannot-fit'; verdict: FitVerdict };

/** Whether the plan's micro-batch is near enough to the budget, and unmeasured, to be tried before the run. */
export function needsPreflight(plan: PreflightPlan): boolean {
  if (plan.basis.kind !== 'suggestion' || plan.sources.batchSize === 'probe') return false;
  if (!(plan.budgetBytes > 0) || !(plan.predictedBytes > 0)) return false;
  const limit = plan.backend.planned === 'wasm' ? Math.min(plan.budgetBytes, WASM_HEAP_MAX) : plan.budgetBytes;
  return plan.predictedBytes >= NEAR_BUDGET * limit;
}

/** The small batch that sets the pace: an eighth of the micro-batch (at least 1). */
export function paceBatch(micro: number): number {
  return Math.max(1, Math.floor(micro / 8));
}

/** How long the trial at `micro` may take, from the small trial (see the module comment). */
export function trialLimitMs(small: ProbeTrialResult, micro: number, steps = PREFLIGHT_STEPS): number {
  if (!small.ok || !(small.imagesPerSec > 0)) return DEFAULT_TRIAL_TIMEOUT_MS;
  const stepsMs = (1000 * small.steps * small.batchSize) / small.imagesPerSec;
  const startupMs = Math.max(0, small.durationMs - stepsMs);
  const expectedMs = (1000 * steps * micro) / small.imagesPerSec;
  return Math.min(DEFAULT_TRIAL_TIMEOUT_MS, Math.max(PACE_FLOOR_MS, startupMs + PACE_FACTOR * expectedMs));
}

function spec(plan: PreflightPlan, batch: number): ProbeTrialSpec {
  return { microBatchSize: batch, accumulationSteps: 1, validationBatchSize: Math.min(plan.validationBatchSize, batch), steps: PREFLIGHT_STEPS, learningRate: plan.learningRate.value };
}

function why(r: ProbeTrialResult): string {
  if (r.failure === 'timeout') return r.error ?? 'it did not finish in time';
  return r.error ? `it failed: ${r.error}` : 'it failed';
}

function verdictFor(plan: PreflightPlan, failed: ProbeTrialResult, small: ProbeTrialResult | undefined): FitVerdict {
  const micro = plan.microBatchSize;
  const smallOk = small?.ok ? small.batchSize : 0;
  const predictedFit = plan.maxMicroBatchSize > 0 && plan.maxMicroBatchSize < micro ? plan.maxMicroBatchSize : micro;
  const tried = failed.batchSize;
  const suggested = tried > 1 ? Math.max(smallOk, Math.min(batchAfterOom(tried), predictedFit)) : 0;
  const figures = `batch ${micro} is predicted to need ${formatBytes(plan.predictedBytes)} of the ${formatBytes(plan.budgetBytes)} budget on ${plan.device.name}, and a trial of ${PREFLIGHT_STEPS} steps at batch ${tried} did not train: ${why(failed)}`;
  const paced = small?.ok ? `; batch ${small.batchSize} trained at ${Math.round(small.imagesPerSec)} images/s` : '';
  if (suggested < 1) {
    return { message: `Out of memory (tried before training, not started): ${figures}${paced}. Use a smaller imageSize (or a smaller model).` };
  }
  const keep = keepEffectiveBatch(suggested, micro, plan.accumulationSteps);
  return { message: `Out of memory (tried before training, not started): ${figures}${paced}. Try ${suggested}${keep}.`, suggestedBatchSize: suggested };
}

function isMemoryFailure(r: ProbeTrialResult): boolean {
  return r.failure === 'oom' || r.failure === 'timeout' || r.failure === 'over-budget';
}

/**
 * Tries the plan's micro-batch when `needsPreflight`. A trial that fails for a reason other than
 * memory (a bad file, a crash) is not a verdict on the batch: the run starts and reports its own.
 */
export async function preflight(plan: PreflightPlan, runner: PreflightRunnerFactory, log?: (line: string) => void): Promise<PreflightOutcome> {
  if (!needsPreflight(plan)) return { kind: 'skipped' };
  const micro = plan.microBatchSize;
  log?.(`batch ${micro} is predicted at ${formatBytes(plan.predictedBytes)}, near the ${formatBytes(plan.budgetBytes)} budget: trying it before the run`);
  const b = paceBatch(micro);
  const small = b < micro ? await runner(DEFAULT_TRIAL_TIMEOUT_MS)(spec(plan, b)) : undefined;
  if (small && !small.ok) {
    if (!isMemoryFailure(small)) return { kind: 'skipped' };
    return { kind: 'cannot-fit', verdict: verdictFor(plan, small, undefined) };
  }
  const limitMs = small ? trialLimitMs(small, micro) : DEFAULT_TRIAL_TIMEOUT_MS;
  const trial = await runner(limitMs)(spec(plan, micro));
  if (trial.ok) {
    log?.(`batch ${micro} trained in a trial at ${Math.round(trial.imagesPerSec)} images/s`);
    return { kind: 'fits', trial, firstStepMs: Math.max(PACE_FLOOR_MS, 3 * trial.durationMs) };
  }
  if (!isMemoryFailure(trial)) return { kind: 'skipped' };
  return { kind: 'cannot-fit', verdict: verdictFor(plan, trial, small) };
}
