/** RunSpecs for tests that drive the trainer directly, made by the product's one builder (src/core/planning/run-spec.ts). */
import type { TrainConfig } from '../../src/core/config';
import { backendLocation, buildRunSpec, runSetup } from '../../src/core/planning/run-spec';
import type { TrainingPlan } from '../../src/core/shared/plan';
import { PROTOCOL_VERSION, type TrainRequest } from '../../src/core/shared/protocol';
import type { RunSetup, RunTest } from '../../src/core/shared/run-spec';

/** The train request for a run of `config` at `plan` in `runDir`. */
export function trainRequest(config: TrainConfig, runDir: string, plan: TrainingPlan, extra: { maxSteps?: number; test?: RunTest } = {}): TrainRequest {
  return { v: PROTOCOL_VERSION, type: 'train', id: 1, spec: buildRunSpec(config, plan, { runDir, location: backendLocation(config), ...extra }) };
}

/** A probe trial's setup for `config`, on its backend (wasm for "auto", as the fallback plan assumes). */
export function setupFor(config: TrainConfig): RunSetup {
  return runSetup(config, config.backend === 'auto' ? 'wasm' : config.backend, backendLocation(config));
}
