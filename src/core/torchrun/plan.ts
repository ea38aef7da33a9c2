/**
 * The plan a torchrun run trains at: the plan's micro-batch on each of `worldSize` processes, so the
 * global batch is micro-batch × accumulation × processes, with the learning rate scaled for the
 * global batch by the plan's rule (kept as written when the config sets it), the steps per epoch
 * and the warmup (its epochs, when planned) counted in the global batch's steps.
 */
import { formatCount, plural } from '../shared/format';
import { describeBatch, learningRateForBatch, type TrainingPlan } from '../shared/plan';
import type { TorchrunPlanSummary } from '../shared/report';

export function dataParallelPlan(plan: TrainingPlan, worldSize: number): TrainingPlan {
  const effectiveBatchSize = plan.microBatchSize * plan.accumulationSteps * worldSize;
  const stepsPerEpoch = Math.max(1, Math.ceil(plan.trainImages / effectiveBatchSize));
  const lr = plan.sources.learningRate === 'config' ? plan.learningRate.value : learningRateForBatch(plan, plan.learningRate.rule, effectiveBatchSize);
  const warmupSteps = plan.sources.warmup === 'config' || plan.warmup.steps === 0 ? plan.warmup.steps : Math.max(1, Math.round(plan.warmup.epochs * stepsPerEpoch));
  const start = plan.warmup.startLearningRate * (lr / plan.learningRate.value);
  const reason =
    worldSize > 1
      ? `torchrun: ${worldSize} processes × micro-batch ${plan.microBatchSize}${plan.accumulationSteps > 1 ? ` × ${plan.accumulationSteps} accumulation steps` : ''} = global batch ${effectiveBatchSize}; learning rate ${Number(lr.toPrecision(3))}${plan.sources.learningRate === 'config' ? ' (from the config)' : ` (${plan.learningRate.rule} scaling for the global batch)`}.`
      : `torchrun: one process, micro-batch ${plan.microBatchSize}.`;
  return {
    ...plan,
    engine: 'torchrun',
    dataParallelDevices: worldSize,
    effectiveBatchSize,
    stepsPerEpoch,
    learningRate: { ...plan.learningRate, value: lr },
    warmup: { ...plan.warmup, steps: warmupSteps, startLearningRate: start },
    reasons: [reason, ...plan.reasons],
  };
}

/** The plan on `processes` torchrun processes, for `suggest` and the Suggest panel to state. */
export function torchrunSummary(plan: TrainingPlan, processes: number): TorchrunPlanSummary {
  const dp = dataParallelPlan(plan, processes);
  const lr = Number(dp.learningRate.value.toPrecision(3));
  const note = `torchrun on ${plural(processes, 'process', 'processes')}: batch ${describeBatch(dp)}, learning rate ${lr} for the global batch, ${formatCount(dp.stepsPerEpoch)} steps per epoch${dp.warmup.steps > 0 ? `, warmup ${plural(dp.warmup.steps, 'step')}` : ''}`;
  return {
    processes,
    perDeviceBatchSize: dp.microBatchSize,
    accumulationSteps: dp.accumulationSteps,
    globalBatchSize: dp.effectiveBatchSize,
    learningRate: dp.learningRate.value,
    stepsPerEpoch: dp.stepsPerEpoch,
    warmupSteps: dp.warmup.steps,
    note,
  };
}
