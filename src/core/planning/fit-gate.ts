/**
 * Before training: a plan the memory model says cannot fit ends the run at once, as out of memory,
 * with the figures and the largest batch that fits — instead of a run that starts and never moves
 * (the wasm backend spins at 100% CPU instead of failing once its heap is exhausted; other
 * backends may swap or thrash for minutes before failing).
 *
 * "Cannot fit" is decided with margin for the model's error: not even batch 1 fits, or the
 * micro-batch is predicted to need more than FAR_OVER × the budget, or (wasm) more than its fixed
 * 4 GiB heap. A plan within that margin trains, and the step watchdog (step-watchdog.ts) is there
 * if it stalls.
 */
import { WASM_HEAP_MAX } from './memory';
import { appendRunEvent } from '../run-folder/runs';
import { keepEffectiveBatch } from '../shared/constants';
import { formatBytes } from '../shared/format';
import type { TrainingPlan } from '../shared/plan';
import { PROTOCOL_VERSION, type RunEndEvent } from '../shared/protocol';

/** A micro-batch predicted to need more than this × the budget is not started. */
export const FAR_OVER = 2;

export interface FitVerdict {
  message: string;
  /** The largest micro-batch that fits (absent when not even 1 does). */
  suggestedBatchSize?: number;
}

function ratio(need: number, budget: number): string {
  const r = need / Math.max(1, budget);
  return r >= 10 ? `${Math.round(r)}×` : `${r.toFixed(1)}×`;
}

/** Why the plan cannot train at all, or undefined when it may (see the module comment). */
export function planCannotFit(plan: TrainingPlan, imageSize?: [number, number]): FitVerdict | undefined {
  if (plan.basis.kind !== 'suggestion' || !(plan.budgetBytes > 0) || !(plan.predictedBytes > 0)) return undefined;
  const micro = plan.microBatchSize;
  const fits = Math.max(0, Math.floor(plan.maxMicroBatchSize));
  if (fits >= micro) return undefined;
  const need = plan.predictedBytes;
  const budget = plan.budgetBytes;
  const overHeap = plan.backend.planned === 'wasm' && need > WASM_HEAP_MAX;
  if (fits > 0 && need <= FAR_OVER * budget && !overHeap) return undefined;
  const size = imageSize ? ` at image size ${imageSize[0]}×${imageSize[1]}` : '';
  const figures = `batch ${micro} needs ${formatBytes(need)} but the budget is ${formatBytes(budget)} (${ratio(need, budget)})${overHeap ? `, beyond the wasm backend's 4 GiB heap` : ''}`;
  if (fits === 0) {
    // The planner's own words (recommend.ts notEvenOneFits): the figures for batch 1 and what to change.
    const why = plan.warnings.find((w) => w.startsWith('Not even one image fits')) ?? `Not even one image fits: ${figures}. Use a smaller imageSize (or a smaller model).`;
    return { message: `Out of memory (predicted, not started): batch ${micro}${size} cannot train on ${plan.device.name}. ${why}` };
  }
  const keep = keepEffectiveBatch(fits, micro, plan.accumulationSteps);
  return {
    message: `Out of memory (predicted, not started): ${figures}; the largest batch that fits is ${fits}. Try ${fits}${keep}.`,
    suggestedBatchSize: fits,
  };
}

/** The run-end of a plan that cannot fit, also recorded in the run folder's metrics.jsonl (the runs view and "Retry at batch N" read it there). */
export function cannotFitEnd(runDir: string, verdict: FitVerdict): RunEndEvent {
  return recordRunEnd(runDir, { v: PROTOCOL_VERSION, type: 'run-end', time: new Date().toISOString(), status: 'failed', error: 'oom', message: verdict.message, ...(verdict.suggestedBatchSize !== undefined ? { suggestedBatchSize: verdict.suggestedBatchSize } : {}) });
}

/** A run-end the host decided (no trainer ran), appended to the run folder's metrics.jsonl. */
export function recordRunEnd(runDir: string, end: RunEndEvent): RunEndEvent {
  try {
    appendRunEvent(runDir, end);
  } catch {
    /* the caller still gets the run-end */
  }
  return end;
}
