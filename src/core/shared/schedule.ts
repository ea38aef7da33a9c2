/**
 * Learning-rate schedules after warmup (config `lrSchedule`), as Keras's CosineDecay and
 * PiecewiseConstantDecay do. Browser-safe: the panels draw the planned curve.
 *
 * - constant: the target rate to the end (today's behaviour, the default).
 * - cosine: from the target down to COSINE_FLOOR × target over the steps left after warmup,
 *   target × (f + (1 − f) × ½(1 + cos(π t))), t = (step − warmup) / (total − warmup).
 * - step: ×STEP_FACTOR at each of STEP_FRACTIONS of the steps left after warmup (×0.1 at 50%,
 *   ×0.01 at 75%).
 */
export const LR_SCHEDULES = ['constant', 'cosine', 'step'] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];

/** Cosine decays to this fraction of the target, not to 0: the last steps still learn. */
export const COSINE_FLOOR = 0.01;
export const STEP_FRACTIONS = [0.5, 0.75] as const;
export const STEP_FACTOR = 0.1;

/**
 * The factor on the target rate at a 1-based optimizer step, past `warmupSteps` of `totalSteps`.
 * Steps beyond the total (a resumed run with more epochs) keep the last factor.
 */
export function scheduleFactor(schedule: LrSchedule, step: number, warmupSteps: number, totalSteps: number): number {
  const span = totalSteps - warmupSteps;
  if (schedule === 'constant' || span <= 0) return 1;
  const t = Math.min(1, Math.max(0, (step - warmupSteps) / span));
  if (schedule === 'cosine') return COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + Math.cos(Math.PI * t));
  return STEP_FRACTIONS.reduce((f, at) => (t >= at ? f * STEP_FACTOR : f), 1);
}
