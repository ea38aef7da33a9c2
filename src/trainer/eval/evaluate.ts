/**
 * Evaluation in the trainer child: a saved model (model.json) on labelled image files, as the
 * `evaluate` request asks (the CLI, the extension), and the run's own model on its validation
 * split at the end of training (run-eval.ts). The arithmetic is ../../core/shared/evaluation.ts.
 */
import { resolve } from 'node:path';
import { summarizeEvaluation, type EvaluationResult, type Prediction } from '../../core/shared/evaluation';
import type { Head } from '../../core/shared/head';
import type { EvaluateRequest } from '../../core/shared/protocol';
import { initBackend } from '../backend';
import { ImagePipeline } from '../data/pipeline';
import { BadInputError } from '../errors';
import { loadModelFile } from '../model-io';
import { headOf } from '../models/head';
import type { tf } from '../tf';
import { predictBatch } from './predict';

const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Predicts every image of `pipeline` (in file order); undefined when `signal` aborts. */
export async function evaluatePipeline(model: tf.LayersModel, head: Head, pipeline: ImagePipeline, classNames: readonly string[], signal?: AbortSignal): Promise<EvaluationResult | undefined> {
  const predictions: Prediction[] = [];
  let lossSum = 0;
  for await (const b of pipeline.sequential(signal)) {
    const r = await predictBatch(model, head, b);
    predictions.push(...r.predictions);
    lossSum += r.lossSum;
    await yieldToEventLoop();
    if (signal?.aborted) return undefined;
  }
  if (signal?.aborted) return undefined;
  return summarizeEvaluation(predictions, classNames, lossSum);
}

/** [height, width, channels] of the model's input, filled in from the request where the model leaves it open. */
function inputSize(model: tf.LayersModel, msg: EvaluateRequest): { imageSize: [number, number]; channels: 1 | 3 | 4 } {
  const shape = (model.inputs[0]?.shape ?? []).slice(1);
  const h = shape[0] ?? msg.imageSize?.[0];
  const w = shape[1] ?? msg.imageSize?.[1];
  const c = shape[2] ?? msg.channels ?? 3;
  if (!h || !w) throw new BadInputError(`${msg.modelPath}: the model does not fix its input height and width; evaluate it from its run folder (whose config.json has imageSize)`);
  if (c !== 1 && c !== 3 && c !== 4) throw new BadInputError(`${msg.modelPath}: the model takes ${c} channels; images can be given as 1, 3 or 4`);
  return { imageSize: [h, w], channels: c };
}

/** The `evaluate` request: loads the model, decides its head for the classes, predicts every file. */
export async function evaluateRequest(msg: EvaluateRequest): Promise<EvaluationResult> {
  await initBackend(msg.backend ?? 'auto', msg.workspaceFolder ? { workspaceFolder: msg.workspaceFolder } : {});
  const path = resolve(msg.modelPath);
  const { model, loss } = await loadModelFile(path);
  try {
    const { head } = headOf(model, msg.classNames.length, loss, path);
    const { imageSize, channels } = inputSize(model, msg);
    const pipeline = await ImagePipeline.create(msg.files, { imageSize, channels, batchSize: msg.batchSize ?? 32, seed: 0, loading: 'stream' });
    const result = await evaluatePipeline(model, head, pipeline, msg.classNames);
    if (!result) throw new Error('evaluation stopped');
    const skipped = pipeline.skippedFiles.size;
    return { ...result, model: path, ...(skipped ? { skipped } : {}) };
  } finally {
    model.dispose();
  }
}
