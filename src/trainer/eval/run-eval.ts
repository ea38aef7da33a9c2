/**
 * The end of a training run: the final model evaluated on the validation split (the files the run
 * validated on), written to `<runDir>/evaluation.json` and sent as an `evaluation` event (so it is
 * also a line of metrics.jsonl and a replayed run shows it).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Head } from '../../core/shared/head';
import { PROTOCOL_VERSION, type LogEvent, type TrainEvent } from '../../core/shared/protocol';
import { describeFsError, RUN_FILES } from '../../core/run-folder/runs';
import type { ImagePipeline } from '../data/pipeline';
import type { tf } from '../tf';
import { evaluatePipeline } from './evaluate';

export const EVALUATION_FILE = RUN_FILES.evaluation;

export interface RunEvalContext {
  runDir: string;
  emit: (ev: TrainEvent) => void;
  log: (level: LogEvent['level'], message: string) => void;
  signal: AbortSignal;
}

export async function evaluateAtRunEnd(model: tf.LayersModel, head: Head, validation: ImagePipeline | undefined, classNames: readonly string[], ctx: RunEvalContext): Promise<void> {
  if (!validation || validation.size === 0) {
    ctx.log('info', 'evaluation skipped: the run has no validation split (set validationSplit, or run `batch-advisor evaluate` on a test folder)');
    return;
  }
  const t0 = performance.now();
  const evaluated = await evaluatePipeline(model, head, validation, classNames, ctx.signal);
  if (!evaluated) return;
  const result = { ...evaluated, source: 'validation split', model: join(ctx.runDir, 'model', 'model.json') };
  try {
    writeFileSync(join(ctx.runDir, EVALUATION_FILE), JSON.stringify(result, null, 2) + '\n');
  } catch (e) {
    ctx.log('warn', `cannot write ${join(ctx.runDir, EVALUATION_FILE)}: ${describeFsError(e)}`);
  }
  ctx.log('info', `evaluation on the validation split: accuracy ${(result.accuracy * 100).toFixed(1)}%, loss ${result.loss.toFixed(4)} over ${result.images} images (${Math.round(performance.now() - t0)} ms)`);
  ctx.emit({ v: PROTOCOL_VERSION, type: 'evaluation', time: new Date().toISOString(), result });
}
