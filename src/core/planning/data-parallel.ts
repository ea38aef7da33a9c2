/**
 * Data-parallel advice: with several GPUs, each trains on its own micro-batch and the gradients are
 * averaged, so one optimizer step sees micro-batch × accumulation × devices images (the global
 * batch) and the learning rate is scaled for that (Goyal et al. 2017: linearly for SGD/momentum;
 * by the square root for Adam-family optimizers). Every device holds the same model, so the
 * per-device batch is limited by the GPU with the least free memory.
 */
import { maxBatchSize } from './memory';
import { memoryBudget } from '../shared/constants';
import type { DeviceInfo } from '../shared/device-types';
import { formatBytes, formatCount } from '../shared/format';
import type { OptimizerName } from '../shared/model';
import type { DataParallelAdvice, TrainingPlan } from '../shared/plan';
import type { MemoryEstimate } from '../shared/report';

export interface DataParallelInput {
  plan: Pick<TrainingPlan, 'microBatchSize' | 'accumulationSteps' | 'learningRate' | 'sources' | 'trainImages'>;
  devices: DeviceInfo[];
  /** The device the plan was made for (a device given by size means no advice). */
  device: DeviceInfo;
  memory: MemoryEstimate;
  headroom: number;
  optimizer: OptimizerName;
}

function num(x: number): string {
  return Number(x.toPrecision(3)).toString();
}

/** The advice, or undefined with fewer than 2 GPUs or when planning for a device given by size. */
export function dataParallelAdvice(input: DataParallelInput): DataParallelAdvice | undefined {
  const { plan, memory, headroom } = input;
  const gpus = input.devices.filter((d) => d.kind === 'gpu');
  if (gpus.length < 2 || input.device.source === 'override') return undefined;
  const smallest = gpus.reduce((a, b) => (b.memoryFreeBytes < a.memoryFreeBytes ? b : a));
  const fitsSmallest = maxBatchSize({ ...memory, budgetBytes: memoryBudget(smallest.memoryFreeBytes, headroom) });
  const per = Math.min(plan.microBatchSize, fitsSmallest);
  const n = gpus.length;
  const k = plan.accumulationSteps;
  const global = per * k * n;
  const { base, baseBatchSize } = plan.learningRate;
  const linear = input.optimizer === 'sgd' || input.optimizer === 'momentum';
  const fixed = plan.sources.learningRate === 'config';
  const rule = fixed || global === baseBatchSize ? 'none' : linear ? 'linear' : 'sqrt';
  const ratio = global / baseBatchSize;
  const learningRate = fixed ? plan.learningRate.value : rule === 'none' ? base : base * (linear ? ratio : Math.sqrt(ratio));
  const stepsPerEpoch = Math.max(1, Math.ceil(Math.max(1, plan.trainImages) / Math.max(1, global)));
  const unequal = gpus.some((g) => g.memoryFreeBytes !== smallest.memoryFreeBytes);
  const batch = `${per}${k > 1 ? ` × ${k} accumulated` : ''} per device × ${n} GPUs = global batch ${formatCount(global)}`;
  const lrText = fixed ? `learning rate ${num(learningRate)} as the config sets it` : rule === 'none' ? `learning rate ${num(learningRate)}` : `learning rate ${num(learningRate)} (${rule} from ${num(base)} at batch ${baseBatchSize})`;
  let note = `Data-parallel on ${n} GPUs: ${batch}, ${lrText}, ${formatCount(stepsPerEpoch)} steps per epoch.`;
  if (per === 0) note = `Data-parallel on ${n} GPUs: not even batch 1 fits ${smallest.name} (${formatBytes(smallest.memoryFreeBytes)} free), the GPU with the least free memory.`;
  else if (unequal && per < plan.microBatchSize) note += ` The GPUs differ: the per-device batch is limited by the smallest, ${smallest.name} (${formatBytes(smallest.memoryFreeBytes)} free, fits up to ${formatCount(fitsSmallest)}; the plan's ${plan.microBatchSize} does not).`;
  else if (unequal) note += ` The GPUs differ: the per-device batch fits the smallest, ${smallest.name} (${formatBytes(smallest.memoryFreeBytes)} free).`;
  note += ' Batch Advisor trains on one GPU; use this for a data-parallel run.';
  return {
    devices: n,
    perDeviceBatchSize: per,
    accumulationSteps: k,
    globalBatchSize: global,
    learningRate,
    rule,
    stepsPerEpoch,
    ...(unequal ? { limitedBy: { name: smallest.name, memoryFreeBytes: smallest.memoryFreeBytes, maxBatchSize: fitsSmallest } } : {}),
    note,
  };
}
