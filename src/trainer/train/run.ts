/**
 * A training run in the trainer child: backend → dataset (Keras split) → input pipeline → model →
 * epochs of optimizer steps (with gradient accumulation) → validation → model saved each epoch.
 * The steps live in setup.ts, data.ts, loop.ts and outcome.ts; this file orders them.
 *
 * Every event goes to `<runDir>/metrics.jsonl` first, then to the host (`send`). The run always
 * ends with exactly one run-end: 'completed', 'stopped' (the AbortSignal, honoured within one
 * batch) or 'failed' (out of memory with a suggested batch size, bad input, internal error).
 */
import { describeFsError } from '../../core/runs';
import { isResourceFsError } from '../../core/fs-errors';
import { PROTOCOL_VERSION, type TrainerMessage, type TrainRequest } from '../../core/shared/protocol';
import type { tf } from '../tf';
import { loadData } from './data';
import { buildModelAndOptimizer, trainEpochs } from './loop';
import { MemoryLimit } from './memory-limit';
import { RunReport, endAfterError, type Loaded } from './outcome';
import { RunFiles } from './run-files';
import { GpuMemoryPoller, checkPlan, now, setupBackend, type RunContext, type RunHooks } from './setup';

export { hooksFromEnv } from './faults';
export { oomMessage, wasmFittingBatch } from './outcome';
export { checkPlan, type RunHooks } from './setup';
export { setLearningRate, weightsAreFinite } from './loop';

export async function runTraining(msg: TrainRequest, send: (m: TrainerMessage) => void, signal: AbortSignal, hooks: RunHooks = {}): Promise<void> {
  let files: RunFiles;
  try {
    files = new RunFiles(msg.runDir);
  } catch (e) {
    send({ v: PROTOCOL_VERSION, type: 'run-end', time: now(), status: 'failed', error: isResourceFsError(e) ? 'internal' : 'bad-input', message: `cannot write the run folder ${msg.runDir}: ${describeFsError(e)}` });
    return;
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
    hooks,
    gpu,
    setModel: (model, optimizer, head) => Object.assign(loaded, { model, optimizer, head }),
    setBackend: (backend) => (loaded.backend = backend),
    nanPatience: msg.config.nanPatience ?? 0,
  };
  try {
    await train(msg, ctx);
  } catch (e) {
    endAfterError(e, msg, loaded, report, files, signal);
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

async function train(msg: TrainRequest, outer: RunContext): Promise<void> {
  const plan = checkPlan(msg.plan);
  // A stop that arrived while the run was setting up ends it before the next phase.
  if (outer.signal.aborted) return outer.end({ status: 'stopped', message: 'stopped by request before training started' });
  const backend = await setupBackend(msg.config, msg.runDir, outer);
  const limitBytes = outer.hooks.memoryLimitBytes;
  const limit = limitBytes === undefined ? undefined : new MemoryLimit(limitBytes);
  const before = outer.hooks.beforeStep;
  const ctx: RunContext = !limit
    ? outer
    : {
        ...outer,
        hooks: {
          ...outer.hooks,
          beforeStep: (step, model) => {
            limit.check(`step ${step - 1}`);
            before?.(step, model);
          },
        },
      };
  try {
    const stopped = (): boolean => ctx.signal.aborted && (ctx.end({ status: 'stopped', message: 'stopped by request before training started' }), true);
    if (stopped()) return;
    const data = await loadData(msg.config, plan, ctx);
    if (stopped()) return;
    const built = await buildModelAndOptimizer(msg.config, plan, data.numClasses, ctx);
    if (stopped()) return;
    await trainEpochs(msg, plan, backend, data, built, ctx, limit);
  } finally {
    limit?.restore();
  }
}
