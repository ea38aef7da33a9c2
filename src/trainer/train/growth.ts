/**
 * Batch growth during a run (the plan's `batchGrowth`): the gradient noise scale grows as the loss
 * falls (McCandlish et al. 2018), so the batch that reaches the target soonest grows too (Smith et
 * al. 2018, "Don't Decay the Learning Rate, Increase the Batch Size"). Every `measureEverySteps`
 * steps one step is taken as two half-batches — the same update — whose gradients give the noise
 * scale's two batch sizes; at an epoch end the time-to-target objective (core/probe/objective.ts),
 * on the probe's throughput curve, picks the batch for the next epoch among the plan's candidates.
 * The plan decided the candidates and the rule; this only measures and applies them.
 */
import { chooseBatch } from '../../core/probe/objective';
import { estimateNoiseScale } from '../../core/probe/noise';
import type { BatchGrowthPlan } from '../../core/shared/plan';
import { tf } from '../tf';
import type { MicroBatch } from './step';

/** Samples kept for the estimate: the latest ones (the noise scale drifts as training goes on). */
const KEEP = 16;
/** Samples needed before a decision. */
const MIN_SAMPLES = 4;

export interface GrowthDecision {
  from: number;
  to: number;
  bSimple: number;
  note: string;
}

export class BatchGrowth {
  private small: number[] = [];
  private big: number[] = [];

  constructor(
    private readonly plan: BatchGrowthPlan,
    /** The micro-batch the run trains at now. */
    public batch: number,
  ) {}

  /** Whether this 1-based global step should be taken as two half-batches. */
  measures(globalStep: number): boolean {
    return this.batch >= 4 && globalStep % this.plan.measureEverySteps === 0 && this.batch < Math.max(...this.plan.candidates);
  }

  record(norms: { small: number; big: number } | undefined): void {
    if (!norms || !Number.isFinite(norms.small) || !Number.isFinite(norms.big)) return;
    this.small.push(norms.small);
    this.big.push(norms.big);
    if (this.small.length > KEEP) {
      this.small.shift();
      this.big.shift();
    }
  }

  /** At an epoch end: the larger batch the objective prefers now, if any (then the samples start over). */
  decide(): GrowthDecision | undefined {
    if (this.small.length < MIN_SAMPLES) return undefined;
    const half = Math.floor(this.batch / 2);
    const g = estimateNoiseScale({ smallBatch: half, bigBatch: 2 * half, small: this.small, big: this.big });
    if (g.bSimple === undefined) return undefined;
    const to = chooseBatch(this.plan.throughput, g.bSimple, this.plan.candidates).batchSize;
    if (to <= this.batch) return undefined;
    const from = this.batch;
    this.batch = to;
    this.small = [];
    this.big = [];
    return { from, to, bSimple: g.bSimple, note: g.note };
  }
}

/** A micro-batch as its two halves (for a measured step); the caller disposes them. */
export function halves(m: MicroBatch): MicroBatch[] {
  const n = m.x.shape[0] ?? 0;
  const a = Math.floor(n / 2);
  const rest = m.x.shape.slice(1);
  return [
    { x: tf.slice(m.x, [0, ...rest.map(() => 0)], [a, ...rest]), y: tf.slice(m.y, [0], [a]) },
    { x: tf.slice(m.x, [a, ...rest.map(() => 0)], [n - a, ...rest]), y: tf.slice(m.y, [a], [n - a]) },
  ];
}
