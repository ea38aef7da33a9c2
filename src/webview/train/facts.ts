/** The training panel's header facts, as text. Pure: unit-tested in Node. */
import { formatCount } from '../../core/shared/format';
import type { TrainingPlan } from '../../core/shared/plan';

/** One piece of a fact's text; `testid` marks a value the tests (and screen readers) find on its own. */
export interface FactPart {
  text: string;
  testid?: string;
}

type BatchPlan = Pick<TrainingPlan, 'microBatchSize' | 'accumulationSteps' | 'effectiveBatchSize' | 'dataParallelDevices' | 'learningRate' | 'warmup'>;

/** A learning rate as the panel shows it (4 significant digits). */
export function shownRate(v: number): string {
  return String(Number(v.toPrecision(4)));
}

/**
 * The plan's batch in one fact: "8 × 4 = 32 · lr 0.001 · warmup 120 steps" — micro-batch ×
 * accumulation (× devices) = images per optimizer step, the learning rate after warmup, the warmup.
 */
export function batchFact(plan: BatchPlan): FactPart[] {
  const k = plan.accumulationSteps;
  const d = plan.dataParallelDevices;
  const parts: FactPart[] = [{ text: String(plan.microBatchSize), testid: 'plan-micro-batch' }];
  if (k > 1) parts.push({ text: ' × ' }, { text: String(k), testid: 'plan-accumulation' });
  // Without accumulation a "× 1" says nothing: "16 per device × 2 devices = 32".
  if (d > 1) parts.push({ text: `${k > 1 ? '' : ' per device'} × ${d} devices` });
  if (k > 1 || d > 1) parts.push({ text: ` = ${formatCount(plan.effectiveBatchSize)}` });
  parts.push({ text: ' · lr ' }, { text: shownRate(plan.learningRate.value), testid: 'plan-lr' });
  if (plan.warmup.steps > 0) parts.push({ text: ' · warmup ' }, { text: `${formatCount(plan.warmup.steps)} steps`, testid: 'plan-warmup' });
  else parts.push({ text: ' · ' }, { text: 'no warmup', testid: 'plan-warmup' });
  return parts;
}

/** The batch fact's hover text: each number named. */
export function batchFactTitle(plan: BatchPlan): string {
  const k = plan.accumulationSteps;
  const d = plan.dataParallelDevices;
  const per = `micro-batch ${plan.microBatchSize}${k > 1 ? ` × ${k} accumulation steps` : ''}${d > 1 ? ` × ${d} devices` : ''} = ${formatCount(plan.effectiveBatchSize)} images per optimizer step`;
  const lr = `learning rate ${shownRate(plan.learningRate.value)}${plan.learningRate.rule !== 'none' ? ` (${plan.learningRate.rule} scaling from ${plan.learningRate.base} at batch ${plan.learningRate.baseBatchSize})` : ''}`;
  const warm = plan.warmup.steps > 0 ? `warmup over ${formatCount(plan.warmup.steps)} optimizer steps from ${shownRate(plan.warmup.startLearningRate)}` : 'no warmup';
  return `${per}; ${lr}; ${warm}`;
}

/** Fraction of the run's optimizer steps done, 0 … 1. */
export function progressFraction(p: { epoch: number; step: number; stepsPerEpoch: number; epochs: number }): number {
  if (!(p.epochs > 0) || !(p.stepsPerEpoch > 0)) return 0;
  const done = (Math.max(0, p.epoch - 1) * p.stepsPerEpoch + p.step) / (p.epochs * p.stepsPerEpoch);
  return Math.min(1, Math.max(0, done));
}
