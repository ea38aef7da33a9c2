/**
 * A run's training state across processes: the optimizer's state (iteration count, moments) is
 * saved beside the model at each epoch end (`model/optimizer.json` + `optimizer.bin`, swapped in
 * with the model), and a resumed run (RunSpec `callbacks.resume`) loads both back before its first
 * step, so it continues as if it had never stopped.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { OPTIMIZER_FILES } from '../../core/run-folder/resume';
import { BadInputError } from '../errors';
import { fileLoadHandler } from '../model-io';
import { tf } from '../tf';

/** Writes the optimizer's state into a model folder being saved (`dir`). */
export async function saveOptimizerState(optimizer: tf.Optimizer, dir: string): Promise<void> {
  const named = await optimizer.getWeights();
  try {
    const { data, specs } = await tf.io.encodeWeights(named);
    await writeFile(join(dir, OPTIMIZER_FILES.weights), new Uint8Array(data as ArrayBuffer));
    await writeFile(join(dir, OPTIMIZER_FILES.specs), JSON.stringify({ optimizer: optimizer.getClassName(), weights: specs }));
  } finally {
    // getWeights() makes the iteration count a new tensor; the moments are the optimizer's own.
    const iter = named.find((w) => w.name === 'iter');
    iter?.tensor.dispose();
  }
}

/**
 * Sets `model`'s weights to the ones saved in `modelDir` (the run's last finished epoch). The saved
 * model is this run's, built the same way: its weights match in order and shape, or the run folder
 * was changed and the run cannot continue.
 */
export async function restoreWeights(model: tf.LayersModel, modelDir: string): Promise<void> {
  const path = join(modelDir, 'model.json');
  const artifacts = await fileLoadHandler(path).load!();
  const specs = artifacts.weightSpecs ?? [];
  const data = artifacts.weightData;
  if (data === undefined) throw new BadInputError(`${path}: holds no weights; the run cannot be resumed`);
  const decoded = tf.io.decodeWeights(data, specs);
  const values = specs.map((s) => decoded[s.name]!);
  try {
    const mismatch = model.weights.length !== values.length ? `${values.length} weights saved, the model has ${model.weights.length}` : model.weights.map((w, i) => (w.shape.join('×') === values[i]!.shape.join('×') ? undefined : `${w.name}: saved ${values[i]!.shape.join('×')}, the model has ${w.shape.join('×')}`)).find((m) => m);
    if (mismatch) throw new BadInputError(`${path}: the saved model is not this run's model (${mismatch}); the run cannot be resumed`);
    model.setWeights(values);
  } finally {
    tf.dispose(values);
  }
}

/**
 * Loads the optimizer's saved state from `modelDir`; false when none was saved (a run from before
 * it was kept: the optimizer then starts afresh, and the caller says so).
 */
export async function restoreOptimizerState(optimizer: tf.Optimizer, modelDir: string): Promise<boolean> {
  const specsPath = join(modelDir, OPTIMIZER_FILES.specs);
  if (!existsSync(specsPath)) return false;
  const unreadable = (why: string): BadInputError => new BadInputError(`${specsPath}: the optimizer state cannot be read (${why}); delete ${OPTIMIZER_FILES.specs} and ${OPTIMIZER_FILES.weights} to resume with a fresh optimizer`);
  let saved: { optimizer: string; weights: tf.io.WeightsManifestEntry[] };
  let decoded: tf.NamedTensorMap;
  try {
    saved = JSON.parse(await readFile(specsPath, 'utf8')) as typeof saved;
    if (saved.optimizer !== optimizer.getClassName()) throw new BadInputError(`${specsPath}: saved for ${saved.optimizer}, but the run's optimizer is ${optimizer.getClassName()}; the run cannot be resumed`);
    const buf = await readFile(join(modelDir, OPTIMIZER_FILES.weights));
    const expected = saved.weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
    if (buf.byteLength !== expected) throw unreadable(`${OPTIMIZER_FILES.weights} holds ${buf.byteLength} bytes, ${expected} expected`);
    decoded = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer, saved.weights);
  } catch (e) {
    if (e instanceof BadInputError) throw e;
    throw unreadable(e instanceof Error ? e.message : String(e));
  }
  const named = saved.weights.map((s) => ({ name: s.name, tensor: decoded[s.name]! }));
  try {
    await optimizer.setWeights(named);
  } finally {
    // setWeights copies them into the optimizer's own variables.
    tf.dispose(named.map((n) => n.tensor));
  }
  return true;
}
