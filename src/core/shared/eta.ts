/**
 * Time left in a run, validation included: the optimizer steps still to take at the mean step time
 * so far, plus a validation pass at each epoch end still to come and the evaluation on the
 * validation split at the run's end (src/trainer/eval/run-eval.ts), plus what each epoch end spends
 * saving the model. A pass is timed from the passes measured so far; before the first one it is
 * estimated from the training throughput (a forward pass costs about a third of a training step's
 * forward + backward). Pure: the trainer puts it in each batch event; unit-tested.
 */

/**
 * Images a forward-only pass gets through per training image: the backward pass costs about twice
 * the forward (Kaplan et al. 2020 count training compute as 3× the forward), so ~3× as fast.
 */
export const VALIDATION_SPEEDUP = 3;

export interface EtaInput {
  /** The epoch (1-based) and the optimizer step within it (1-based) just taken. */
  epoch: number;
  step: number;
  stepsPerEpoch: number;
  /** Epochs in the plan: the run validates at the end of each it trains. */
  epochs: number;
  /** Optimizer steps taken in the run, and the most it will take (epochs × steps, or maxSteps). */
  globalStep: number;
  plannedSteps: number;
  /** Mean seconds per optimizer step so far (compute and data wait). */
  secPerStep: number;
  /** Images in one pass over the validation split (0: no validation). */
  validationImages: number;
  /** Seconds each validation pass so far took (empty before the first epoch end). */
  validationSec: readonly number[];
  /** Training images per second so far: estimates a pass before any was measured. */
  trainImagesPerSec: number;
  /** Mean seconds an epoch end spent besides validating (saving the model, checkpoints); 0 before one. */
  epochEndSec?: number;
  /** The run ends with an evaluation over the validation split (default true when there is one). */
  finalEvaluation?: boolean;
}

export interface Eta {
  /** Seconds left in all. */
  totalSec: number;
  /** Of which training steps. */
  trainSec: number;
  /** Of which validation passes (epoch ends and the final evaluation) and epoch-end saving. */
  validationSec: number;
  /** Validation passes still to come (epoch ends, then the final evaluation). */
  validationPasses: number;
}

/** Epoch ends still to come, this epoch's included (its batch event comes before its validation). */
export function epochEndsLeft(i: Pick<EtaInput, 'epoch' | 'step' | 'stepsPerEpoch' | 'epochs' | 'globalStep' | 'plannedSteps'>): number {
  const stepsLeft = Math.max(0, i.plannedSteps - i.globalStep);
  const leftInEpoch = Math.max(0, i.stepsPerEpoch - i.step);
  const later = stepsLeft > leftInEpoch && i.stepsPerEpoch > 0 ? Math.ceil((stepsLeft - leftInEpoch) / i.stepsPerEpoch) : 0;
  return Math.max(0, Math.min(1 + later, i.epochs - i.epoch + 1));
}

/** Seconds of one validation pass: the mean of those measured, else from the training throughput. */
export function validationPassSec(i: Pick<EtaInput, 'validationImages' | 'validationSec' | 'trainImagesPerSec'>): number {
  if (i.validationImages <= 0) return 0;
  const measured = i.validationSec.filter((s) => Number.isFinite(s) && s >= 0);
  if (measured.length) return measured.reduce((a, b) => a + b, 0) / measured.length;
  return i.trainImagesPerSec > 0 ? i.validationImages / (i.trainImagesPerSec * VALIDATION_SPEEDUP) : 0;
}

export function estimateEta(i: EtaInput): Eta {
  const stepsLeft = Math.max(0, i.plannedSteps - i.globalStep);
  const trainSec = stepsLeft * Math.max(0, i.secPerStep || 0);
  const ends = epochEndsLeft(i);
  const pass = validationPassSec(i);
  const final = i.validationImages > 0 && i.finalEvaluation !== false ? 1 : 0;
  const passes = i.validationImages > 0 ? ends + final : 0;
  const validationSec = passes * pass + ends * Math.max(0, i.epochEndSec ?? 0);
  return { totalSec: trainSec + validationSec, trainSec, validationSec, validationPasses: passes };
}
