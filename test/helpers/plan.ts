/** A training plan for tests that drive the trainer directly: the product's fallback rule over the config, with overrides. */
import type { TrainConfig } from '../../src/core/config';
import { fallbackPlan } from '../../src/core/planning/plan';
import type { TrainingPlan } from '../../src/core/shared/plan';

export function planFor(config: TrainConfig, overrides: Partial<TrainingPlan> = {}, counts = { train: 0, validation: 0 }): TrainingPlan {
  const base = fallbackPlan(config, counts, 'test plan');
  const plan = { ...base, ...overrides };
  return { ...plan, effectiveBatchSize: plan.microBatchSize * plan.accumulationSteps, validationBatchSize: overrides.validationBatchSize ?? plan.microBatchSize };
}
