/**
 * run.json: what a torchrun run folder's train.py executes, resolved here — the spec's data-parallel
 * plan (plan.ts), the files and split the trainer prepared (src/trainer/torchrun/prepare.ts), the
 * head. train.py decides nothing; the same numbers go into the cluster exports (export.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OptimizerName } from '../shared/model';
import type { TrainingPlan } from '../shared/plan';
import type { TorchrunPrepared } from '../shared/protocol';
import type { RunSpec } from '../shared/run-spec';
import type { LrSchedule } from '../shared/schedule';

export const RUN_JSON = 'run.json';
export const INITIAL_MODEL_FOLDER = 'model-init';

export interface TorchrunRunJson {
  v: 1;
  name: string;
  runDir: string;
  /** The initial model.json, relative to runDir. */
  initialModel: string;
  classNames: string[];
  train: [string, number][];
  validation: [string, number][];
  imageSize: [number, number];
  channels: 1 | 3 | 4;
  /** Per process. */
  microBatchSize: number;
  accumulationSteps: number;
  validationBatchSize: number;
  /** For the global batch, after warmup. */
  learningRate: number;
  warmupSteps: number;
  warmupStartLearningRate: number;
  lrSchedule: LrSchedule;
  epochs: number;
  /** The plan's, for the processes it was made for (train.py counts its own from the sampler). */
  stepsPerEpoch: number;
  maxSteps?: number;
  seed: number;
  optimizer: OptimizerName;
  head: TorchrunPrepared['head'];
  /** The data-parallel plan, for run-start (the panel shows it). */
  plan: TrainingPlan;
}

export function runJson(spec: RunSpec, prepared: TorchrunPrepared): TorchrunRunJson {
  const { plan } = spec;
  return {
    v: 1,
    name: spec.name,
    runDir: spec.runDir,
    initialModel: prepared.initialModel,
    classNames: prepared.classNames,
    train: prepared.train,
    validation: prepared.validation,
    imageSize: spec.data.imageSize,
    channels: spec.data.channels,
    microBatchSize: plan.microBatchSize,
    accumulationSteps: plan.accumulationSteps,
    validationBatchSize: plan.validationBatchSize,
    learningRate: plan.learningRate.value,
    warmupSteps: plan.warmup.steps,
    warmupStartLearningRate: plan.warmup.startLearningRate,
    lrSchedule: plan.lrSchedule ?? 'constant',
    epochs: plan.epochs,
    stepsPerEpoch: plan.stepsPerEpoch,
    ...(spec.limits.maxSteps !== undefined ? { maxSteps: spec.limits.maxSteps } : {}),
    seed: spec.data.seed,
    optimizer: spec.model.optimizer,
    head: prepared.head,
    plan: { ...plan, loss: prepared.head.description },
  };
}

/** Writes run.json into the run folder; returns its path. */
export function writeRunJson(spec: RunSpec, prepared: TorchrunPrepared): string {
  const path = join(spec.runDir, RUN_JSON);
  writeFileSync(path, JSON.stringify(runJson(spec, prepared)) + '\n');
  return path;
}
