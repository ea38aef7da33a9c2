/**
 * The one place a RunSpec is made (core/shared/run-spec.ts): from the config, the plan and where
 * the run happens, right after the plan. The backend is the one the plan was made for
 * (`plan.backend.planned`, resolved before planning where the trainer can say which loads), looked
 * for where the probe looked. A probe trial gets the same `RunSetup`, without the plan.
 */
import { dirname } from 'node:path';
import type { TrainConfig } from '../config';
import type { BackendName } from '../shared/constants';
import type { TrainingPlan } from '../shared/plan';
import { RUN_SPEC_VERSION, type BackendLocation, type RunResume, type RunSetup, type RunSpec, type RunTest, type TorchrunLaunch } from '../shared/run-spec';

/** Where the trainer looks for tfjs-node(-gpu): the workspace (else the config's folder, else the dataset's) and the tfjsNodePath setting. */
export function backendLocation(config: Pick<TrainConfig, 'configPath' | 'dataset'>, opts: { workspaceRoot?: string; tfjsNodePath?: string } = {}): BackendLocation {
  const workspaceFolder = opts.workspaceRoot ?? (config.configPath ? dirname(config.configPath) : dirname(config.dataset));
  return { workspaceFolder, ...(opts.tfjsNodePath ? { tfjsNodePath: opts.tfjsNodePath } : {}) };
}

/** What a probe trial (and the run) needs apart from the plan. */
export function runSetup(config: TrainConfig, backend: BackendName, location: BackendLocation, test?: RunTest): RunSetup {
  return {
    data: { dataset: config.dataset, validationSplit: config.validationSplit, seed: config.seed, imageSize: config.imageSize, channels: config.channels },
    model: { model: config.model, widthMultiplier: config.widthMultiplier, optimizer: config.optimizer },
    backend: { name: backend, ...location },
    ...(test && Object.keys(test).length ? { test } : {}),
  };
}

export interface RunPlace {
  runDir: string;
  location: BackendLocation;
  maxSteps?: number;
  test?: RunTest;
  /** Train with torchrun instead of the tfjs trainer. */
  engine?: TorchrunLaunch;
  /** Continue the run folder's training from here (core/run-folder/resume.ts). */
  resume?: RunResume;
}

/** The RunSpec of a run at `plan`: everything the trainer needs, nothing it has to decide. */
export function buildRunSpec(config: TrainConfig, plan: TrainingPlan, place: RunPlace): RunSpec {
  return {
    v: RUN_SPEC_VERSION,
    name: config.name,
    runDir: place.runDir,
    ...runSetup(config, plan.backend.planned, place.location, place.test),
    plan,
    limits: place.maxSteps !== undefined ? { maxSteps: place.maxSteps } : {},
    callbacks: { nanPatience: config.nanPatience ?? 0, ...(place.resume ? { resume: place.resume } : {}) },
    ...(place.engine ? { engine: place.engine } : {}),
  };
}

/** Test faults from an entry point's environment (BATCH_ADVISOR_FAULT, BATCH_ADVISOR_MEMORY_LIMIT); undefined when none. */
export function runTestFromEnv(env: Readonly<Record<string, string | undefined>>): RunTest | undefined {
  const fault = env['BATCH_ADVISOR_FAULT'];
  const limit = Number(env['BATCH_ADVISOR_MEMORY_LIMIT']);
  const test: RunTest = { ...(fault ? { fault } : {}), ...(Number.isFinite(limit) && limit > 0 ? { memoryLimitBytes: limit } : {}) };
  return Object.keys(test).length ? test : undefined;
}
