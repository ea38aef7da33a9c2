/**
 * A training run in the trainer child: it executes the train request's RunSpec and decides nothing.
 * backend (exactly the spec's) → dataset (Keras split) → input pipeline → model → epochs of
 * optimizer steps (with gradient accumulation) → validation → model saved each epoch. The steps
 * live in setup.ts, data.ts, loop.ts and outcome.ts; this file orders them.
 *
 * Every event goes to `<runDir>/metrics.jsonl` first, then to the host (`send`). The run always
 * ends with exactly one run-end: 'completed', 'stopped' (the AbortSignal, honoured within one
 * batch) or 'failed' (a spec that is not valid, a backend that cannot load, out of memory with a
 * suggested batch size, bad input, internal error).
 */
import { describeFsError } from '../../core/run-folder/runs';
import { isResourceFsError } from '../../core/fs-errors';
import { PROTOCOL_VERSION, type TrainerMessage, type TrainRequest } from '../../core/shared/protocol';
import { checkRunSpec, type RunSpec } from '../../core/shared/run-spec';
import type { tf } from '../tf';
import { loadData } from './data';
import { withFault } from './faults';
import { buildModelAndOptimizer, trainEpochs } from './loop';
import { MemoryLimit, RunMemory } from './memory-limit';
import { RunReport, endAfterError, type Loaded } from './outcome';
import { RunFiles } from './run-files';
import { GpuMemoryPoller, now, setupBackend, type RunContext, type RunHooks } from './setup';

export { oomMessage, wasmFittingBatch } from './outcome';
export type { RunHooks } from './setup';
export { setLearningRate, weightsAreFinite } from './loop';

export async function runTraining(msg: TrainRequest, send: (m: TrainerMessage) => void, signal: AbortSignal, hooks: RunHooks = {}): Promise<void> {
  const fail = (error: 'bad-input' | 'internal', message: string): void => send({ v: PROTOCOL_VERSION, type: 'run-end', time: now(), status: 'failed', error, message });
  const checked = checkRunSpec(msg.spec);
  if (!checked.ok) return fail('bad-input', `the train request cannot be run: ${checked.error}`);
  const spec = checked.value;
  let files: RunFiles;
  try {
    files = new RunFiles(spec.runDir);
  } catch (e) {
    return fail(isResourceFsError(e) ? 'internal' : 'bad-input', `cannot write the run folder ${spec.runDir}: ${describeFsError(e)}`);
  }
  const report = new RunReport(files, send);
  const loaded: Loaded & { optimizer?: tf.Optimizer } = {};
  const gpu = new GpuMemoryPoller();
  const ctx: RunContext = {
    emit: report.emit,
    log: report.log,
    end: report.end,
    files,
    signal,
    hooks: withFault(hooks, spec.test),
    gpu,
    setModel: (model, optimizer, head) => Object.assign(loaded, { model, optimizer, head }),
    setBackend: (backend) => (loaded.backend = backend),
    nanPatience: spec.callbacks.nanPatience,
  };
  try {
    await train(spec, ctx);
  } catch (e) {
    endAfterError(e, spec, loaded, report, files, signal);
  } finally {
    gpu.stop();
    try {
      loaded.model?.dispose();
      loaded.optimizer?.dispose();
    } catch {
      /* already disposed */
    }
    if (!report.ended) report.end({ status: 'failed', error: 'internal', message: 'the run ended without a result' });
    files.close();
  }
}

async function train(spec: RunSpec, outer: RunContext): Promise<void> {
  // A stop that arrived while the run was setting up ends it before the next phase.
  const stopped = (): boolean => outer.signal.aborted && (outer.end({ status: 'stopped', message: 'stopped by request before training started' }), true);
  if (stopped()) return;
  const backend = await setupBackend(spec.backend, outer);
  // One tracker of live tensor bytes from before the model is built: each step's peak, and the run's for a memory limit.
  const memory = new RunMemory();
  const limitBytes = spec.test?.memoryLimitBytes;
  const limit = limitBytes === undefined ? undefined : new MemoryLimit(limitBytes, memory);
  const before = outer.hooks.beforeStep;
  const ctx: RunContext = !limit
    ? { ...outer, memory }
    : {
        ...outer,
        memory,
        hooks: {
          ...outer.hooks,
          beforeStep: (step, model) => {
            limit.check(`step ${step - 1}`);
            before?.(step, model);
          },
        },
      };
  try {
    if (stopped()) return;
    const data = await loadData(spec.data, spec.plan, ctx);
    if (stopped()) return;
    const built = await buildModelAndOptimizer(spec, data.numClasses, ctx);
    if (stopped()) return;
    await trainEpochs(spec, backend, data, built, ctx, limit);
  } finally {
    memory.restore();
  }
}
