/**
 * Making the training plan — the one place that turns (config, dataset report, devices, model,
 * memory estimate, recommendation) into the numbers a run executes. `suggest` calls `makePlan`;
 * when a suggestion cannot be made (e.g. the devices cannot be read), `fallbackPlan` applies one
 * fixed rule and says why. Nothing downstream (CLI, extension, trainer) decides these numbers again.
 */
import type { TrainConfig } from '../shared/config-types';
import type { DatasetReport } from '../shared/dataset-types';
import type { DeviceInfo } from '../shared/device-types';
import { PLAN_VERSION, type PlanSource, type TrainingPlan } from '../shared/plan';
import type { BackendName } from '../shared/protocol';
import type { MemoryEstimate, Recommendation } from '../shared/report';
import { bytesForBatch } from './memory';
import { BASE_BATCH } from './recommend';

/** The batch a run uses when no plan can be made and the config does not set one (Keras's default). */
export const FALLBACK_BATCH_SIZE = 32;

function source(config: TrainConfig, field: TrainConfig['explicit'][number]): PlanSource {
  return config.explicit.includes(field) ? 'config' : 'planned';
}

function devicePart(device: DeviceInfo): TrainingPlan['device'] {
  return { name: device.name, kind: device.kind, memoryTotalBytes: device.memoryTotalBytes, memoryFreeBytes: device.memoryFreeBytes, source: device.source };
}

export interface PlanInput {
  config: TrainConfig;
  dataset: Pick<DatasetReport, 'train' | 'validation'>;
  device: DeviceInfo;
  memory: MemoryEstimate;
  recommendation: Recommendation;
  plannedBackend: BackendName;
}

/** The plan of a full suggestion. */
export function makePlan(input: PlanInput): TrainingPlan {
  const { config, dataset, device, memory, recommendation: r, plannedBackend } = input;
  const micro = r.batchSize;
  const k = r.accumulationSteps;
  const predicted = bytesForBatch(memory, micro) + (k > 1 ? memory.breakdown.gradientsBytes : 0);
  return {
    v: PLAN_VERSION,
    microBatchSize: micro,
    accumulationSteps: k,
    effectiveBatchSize: micro * k,
    dataParallelDevices: 1,
    learningRate: { value: r.learningRate.recommended, base: r.learningRate.base, baseBatchSize: r.learningRate.baseBatchSize, rule: r.learningRate.rule },
    // Goyal et al.: ramp from the unscaled rate to the scaled one; an unscaled rate ramps from 0.
    warmup: { steps: r.warmupSteps, epochs: r.warmupEpochs, startLearningRate: r.learningRate.rule === 'none' ? 0 : Math.min(r.learningRate.base, r.learningRate.recommended) },
    lrSchedule: config.lrSchedule ?? 'constant',
    ...(config.earlyStopping ? { earlyStopping: { ...config.earlyStopping } } : {}),
    checkpoint: { mode: config.checkpoint ?? 'best', monitor: config.earlyStopping?.monitor ?? 'val_loss' },
    epochs: config.epochs,
    stepsPerEpoch: r.stepsPerEpoch,
    trainImages: dataset.train,
    validationImages: dataset.validation,
    // Validation keeps no activations for a backward pass: the micro-batch always fits.
    validationBatchSize: micro,
    loading: { strategy: r.loading.strategy, reason: r.loading.reason },
    backend: { preference: config.backend, planned: plannedBackend },
    device: devicePart(device),
    budgetBytes: memory.budgetBytes,
    predictedBytes: predicted,
    maxMicroBatchSize: r.maxBatchSize,
    sources: {
      batchSize: source(config, 'batchSize'),
      accumulationSteps: source(config, 'accumulationSteps'),
      learningRate: source(config, 'learningRate'),
      warmup: source(config, 'warmupSteps'),
      loading: source(config, 'loading'),
    },
    basis: { kind: 'suggestion' },
    ...(memory.loss ? { loss: memory.loss } : {}),
    reasons: [...r.reasons, r.loading.reason],
    warnings: [...r.warnings],
  };
}

/**
 * The plan when no suggestion could be made: the config's values as written, else batch 32 with
 * no accumulation, the config's learning rate unscaled, no warmup (unless set), and streaming from
 * disk (it never runs out of host memory) unless the config asks to preload.
 */
export function fallbackPlan(config: TrainConfig, dataset: Pick<DatasetReport, 'train' | 'validation'>, why: string): TrainingPlan {
  const micro = typeof config.batchSize === 'number' ? config.batchSize : FALLBACK_BATCH_SIZE;
  const k = Math.max(1, config.accumulationSteps);
  const effective = micro * k;
  const stepsPerEpoch = Math.max(1, Math.ceil(Math.max(1, dataset.train) / effective));
  const warmupSteps = config.warmupSteps ?? 0;
  const fb = (field: TrainConfig['explicit'][number]): PlanSource => (config.explicit.includes(field) ? 'config' : 'fallback');
  const loading = config.loading === 'preload' ? 'preload' : 'stream';
  const unknownDevice: DeviceInfo = { kind: 'cpu', name: 'unknown device', memoryTotalBytes: 0, memoryFreeBytes: 0, source: 'os' };
  return {
    v: PLAN_VERSION,
    microBatchSize: micro,
    accumulationSteps: k,
    effectiveBatchSize: effective,
    dataParallelDevices: 1,
    learningRate: { value: config.learningRate, base: config.learningRate, baseBatchSize: BASE_BATCH, rule: 'none' },
    warmup: { steps: warmupSteps, epochs: warmupSteps / stepsPerEpoch, startLearningRate: 0 },
    lrSchedule: config.lrSchedule ?? 'constant',
    ...(config.earlyStopping ? { earlyStopping: { ...config.earlyStopping } } : {}),
    checkpoint: { mode: config.checkpoint ?? 'best', monitor: config.earlyStopping?.monitor ?? 'val_loss' },
    epochs: config.epochs,
    stepsPerEpoch,
    trainImages: dataset.train,
    validationImages: dataset.validation,
    validationBatchSize: micro,
    loading: { strategy: loading, reason: loading === 'preload' ? 'Preload, as the config asks.' : 'Stream from disk: no plan could be made, and streaming never runs out of host memory.' },
    backend: { preference: config.backend, planned: config.backend === 'auto' ? 'wasm' : config.backend },
    device: devicePart(unknownDevice),
    budgetBytes: 0,
    predictedBytes: 0,
    maxMicroBatchSize: 0,
    sources: { batchSize: fb('batchSize'), accumulationSteps: fb('accumulationSteps'), learningRate: fb('learningRate'), warmup: fb('warmupSteps'), loading: fb('loading') },
    basis: { kind: 'fallback', why },
    reasons: [`No plan could be made (${why}); training with batch ${micro}${k > 1 ? ` × ${k} accumulated` : ''} and learning rate ${config.learningRate} as a fixed rule.`],
    warnings: [`The batch size was not checked against memory: ${why}.`],
  };
}
