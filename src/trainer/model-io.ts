/**
 * File-system IO handlers for tfjs Layers models. tfjs's `file://` handlers live in tfjs-node, which
 * cannot be installed here, so the trainer brings its own:
 *
 *  - `fileLoadHandler(modelJsonPath)`: reads a Layers `model.json` and its weight shards.
 *  - `fileSaveHandler(folder)`: writes `model.json` + one `weights.bin` into a folder.
 *  - `loadLayersModelFromFile(path)`: both steps of loading, with every failure a BadInputError
 *    that names the offending file.
 *  - `loadModelFile(path)`: the same, plus the file's training config (loss) and notes for the run.
 *
 * Model files come as tfjs `model.save()` writes them (`trainingConfig` at the top, optimizer
 * weights in the manifest with `includeOptimizer`) or as `tensorflowjs_converter` writes them
 * (`modelTopology` = {keras_version, backend, model_config, training_config}). We choose the
 * optimizer ourselves, so tfjs never compiles the model from its training config (Keras's
 * snake_case optimizer configs make tfjs fail with an internal message) and optimizer weights are
 * dropped; only the loss is read, for the head (../core/shared/head.ts).
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { BadInputError } from './errors';
import { describeFsError, FsResourceError, isResourceFsError } from '../core/fs-errors';
import { tf } from './tf';

const LAYERS_MODEL_CLASSES = new Set(['Sequential', 'Model', 'Functional']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function errorCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
}

async function readOrThrow(path: string, what: string, referencedBy?: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = errorCode(e);
    const by = referencedBy ? ` (listed in ${referencedBy})` : '';
    if (code === 'ENOENT') throw new BadInputError(`${path}: ${what} not found${by}`);
    if (code === 'EISDIR') throw new BadInputError(`${path}: is a folder, expected ${what}${by}`);
    const why = (e as NodeJS.ErrnoException).code ? describeFsError(e) : code;
    // Out of file handles or a failing disk is a failure while working (exit 1), not the file's fault.
    if (isResourceFsError(e)) throw new FsResourceError(`${path}: cannot read ${what}${by}: ${why}`);
    throw new BadInputError(`${path}: cannot read ${what}${by}: ${why}`);
  }
}

/** Bytes a weight entry occupies in its shard (quantized entries store the quantized dtype). */
function entryBytes(entry: tf.io.WeightsManifestEntry): number | undefined {
  const n = entry.shape.reduce((a, b) => a * b, 1);
  const q = entry.quantization?.dtype;
  if (q) return n * (q === 'uint8' ? 1 : 2);
  switch (entry.dtype) {
    case 'float32':
    case 'int32':
      return n * 4;
    case 'bool':
      return n;
    default:
      return undefined; // strings/complex: length not knowable from the manifest
  }
}

/**
 * Parses and checks a model.json text; throws BadInputError naming `path` when it is not valid JSON
 * or not a tfjs Layers model (e.g. a graph model from tfjs-converter).
 */
export function parseLayersModelJson(text: string, path: string): tf.io.ModelJSON {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new BadInputError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(raw)) throw new BadInputError(`${path}: not a tfjs model.json (expected a JSON object)`);
  if (raw.format === 'graph-model') {
    throw new BadInputError(`${path}: is a tfjs graph model (tfjs-converter output); only Layers models (format "layers-model") can be trained`);
  }
  const topology = raw.modelTopology;
  if (!isObject(topology)) throw new BadInputError(`${path}: not a tfjs Layers model (no "modelTopology" object)`);
  // Keras-saved topologies wrap the model as {keras_version, backend, model_config: {...}}.
  const modelConfig = isObject(topology.model_config) ? topology.model_config : topology;
  const className = modelConfig.class_name;
  if (typeof className !== 'string' || !LAYERS_MODEL_CLASSES.has(className) || !isObject(modelConfig.config) && !Array.isArray(modelConfig.config)) {
    throw new BadInputError(
      `${path}: not a tfjs Layers model (modelTopology.class_name is ${JSON.stringify(className)}; expected Sequential, Model or Functional)`,
    );
  }
  const manifest = raw.weightsManifest;
  if (manifest !== undefined) {
    const ok =
      Array.isArray(manifest) &&
      manifest.every((g) => isObject(g) && Array.isArray(g.paths) && g.paths.every((p) => typeof p === 'string') && Array.isArray(g.weights));
    if (!ok) throw new BadInputError(`${path}: malformed "weightsManifest" (expected [{paths: [...], weights: [...]}, ...])`);
  }
  return raw as unknown as tf.io.ModelJSON;
}

/** A model.json holds the topology only (weights are in .bin shards): past this it is not one. */
export const MAX_MODEL_JSON_BYTES = 64 * 2 ** 20;

async function checkModelJsonSize(path: string): Promise<void> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return; // reading it says why
  }
  if (size > MAX_MODEL_JSON_BYTES) {
    throw new BadInputError(`${path}: ${(size / 2 ** 20).toFixed(0)} MiB is too large for a model.json (at most ${MAX_MODEL_JSON_BYTES / 2 ** 20} MiB: the topology only; weights belong in .bin shards)`);
  }
}

/** A tfjs IOHandler that loads a Layers model.json and its weight shards from disk. */
export function fileLoadHandler(modelJsonPath: string): tf.io.IOHandler {
  const path = resolve(modelJsonPath);
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      await checkModelJsonSize(path);
      const text = (await readOrThrow(path, 'model file')).toString('utf8');
      const modelJSON = parseLayersModelJson(text, path);
      return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          let groupBytes = 0;
          let expected: number | undefined = 0;
          for (const w of group.weights) {
            specs.push(w);
            const b = entryBytes(w);
            expected = b === undefined || expected === undefined ? undefined : expected + b;
          }
          for (const shard of group.paths) {
            const shardPath = resolve(dirname(path), shard);
            const rel = relative(dirname(path), shardPath);
            if (rel.startsWith('..') || isAbsolute(rel)) throw new BadInputError(`${path}: weight shard "${shard}" is outside the model's folder; shards must sit next to model.json`);
            const buf = await readOrThrow(shardPath, 'weight shard', path);
            groupBytes += buf.byteLength;
            buffers.push(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
          }
          if (expected !== undefined && groupBytes !== expected) {
            throw new BadInputError(
              `${path}: weight shards ${group.paths.join(', ')} hold ${groupBytes} bytes but the manifest describes ${expected} bytes`,
            );
          }
        }
        return [specs, tf.io.concatenateArrayBuffers(buffers)];
      });
    },
  };
}

/** A tfjs IOHandler that saves a model as `<folder>/model.json` + `<folder>/weights.bin`. */
export function fileSaveHandler(folder: string): tf.io.IOHandler {
  const dir = resolve(folder);
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const topology = artifacts.modelTopology;
      if (topology === undefined || topology instanceof ArrayBuffer) {
        throw new Error('fileSaveHandler: only JSON model topologies can be saved');
      }
      await mkdir(dir, { recursive: true });
      const weightData = artifacts.weightData;
      const weights = weightData === undefined ? new ArrayBuffer(0) : Array.isArray(weightData) ? tf.io.concatenateArrayBuffers(weightData) : weightData;
      const manifest: tf.io.WeightsManifestConfig = [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }];
      const modelJSON: tf.io.ModelJSON = {
        modelTopology: topology,
        weightsManifest: manifest,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
      };
      if (artifacts.trainingConfig) modelJSON.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata) modelJSON.userDefinedMetadata = artifacts.userDefinedMetadata;
      await writeFile(join(dir, 'weights.bin'), new Uint8Array(weights));
      await writeFile(join(dir, 'model.json'), JSON.stringify(modelJSON));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON({ ...artifacts, weightData: weights }) };
    },
  };
}

/** Loads a Layers model from a model.json path. Every failure is a BadInputError naming the file. */
export async function loadLayersModelFromFile(modelJsonPath: string): Promise<tf.LayersModel> {
  return (await loadModelFile(modelJsonPath)).model;
}

export interface LoadedModelFile {
  model: tf.LayersModel;
  /** The training config's loss (raw), from `trainingConfig` or `modelTopology.training_config`. */
  loss?: unknown;
  /** One-line notes for the run log (the file's optimizer settings not used). */
  notes: string[];
}

/** Layer classes Keras has and tfjs cannot build, with what to do instead. */
const AUGMENTATION = /^Random[A-Z]/;

/** Every `class_name` in a topology (nested models' layers included), with the layer's name. */
function layerClasses(node: unknown, out: { className: string; name: string }[] = []): { className: string; name: string }[] {
  if (Array.isArray(node)) {
    for (const n of node) layerClasses(n, out);
  } else if (isObject(node)) {
    if (typeof node.class_name !== 'string') return out;
    const config = isObject(node.config) ? node.config : {};
    out.push({ className: node.class_name, name: typeof config.name === 'string' ? config.name : node.class_name });
    // A Sequential's config is {layers: [...]}, or the layer list itself in older files.
    layerClasses(Array.isArray(node.config) ? node.config : config.layers, out);
  }
  return out;
}

/** A BadInputError for the first layer tfjs has no class for (e.g. Keras's RandomFlip). */
function checkLayerClasses(topology: Record<string, unknown>, path: string): void {
  const known = tf.serialization.SerializationMap.getMap().classNameMap;
  for (const { className, name } of layerClasses(topology)) {
    if (LAYERS_MODEL_CLASSES.has(className) || className in known) continue;
    const todo = AUGMENTATION.test(className) ? 'remove it from the model and apply augmentation outside the model' : 'remove it, or replace it with a layer TensorFlow.js has';
    throw new BadInputError(`${path}: layer "${name}" (${className}) cannot be built by TensorFlow.js ${tf.version_layers}: ${todo}`);
  }
}

function optimizerNote(trainingConfig: Record<string, unknown>, optimizerWeights: number, path: string): string | undefined {
  const opt = trainingConfig.optimizer_config ?? trainingConfig.optimizerConfig;
  if (!isObject(opt) && optimizerWeights === 0) return undefined;
  const name = isObject(opt) && typeof opt.class_name === 'string' ? `${opt.class_name} ` : '';
  const weights = optimizerWeights > 0 ? ` and its ${optimizerWeights} optimizer weights are dropped` : '';
  return `${path}: the file's optimizer settings (${name}training config) are not used${weights}: the run trains with the config's optimizer and the plan's learning rate.`;
}

/** Loads a model file with its training config's loss; every failure is a BadInputError naming the file. */
export async function loadModelFile(modelJsonPath: string): Promise<LoadedModelFile> {
  const path = resolve(modelJsonPath);
  try {
    return await loadChecked(path);
  } catch (e) {
    if (e instanceof BadInputError || e instanceof FsResourceError) throw e;
    throw new BadInputError(`${path}: cannot build a Layers model from it (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})`);
  }
}

async function loadChecked(path: string): Promise<LoadedModelFile> {
  const artifacts = await fileLoadHandler(path).load!();
  const topology = artifacts.modelTopology as Record<string, unknown>;
  const modelConfig = isObject(topology.model_config) ? topology.model_config : topology;
  checkLayerClasses(modelConfig, path);
  const trainingConfig = (artifacts.trainingConfig as unknown as Record<string, unknown> | undefined) ?? (isObject(topology.training_config) ? topology.training_config : undefined);
  const optimizerWeights = (artifacts.weightSpecs ?? []).filter((w) => w.group === 'optimizer').length;
  // Never let tfjs compile from the file's training config: the run brings its own optimizer.
  delete artifacts.trainingConfig;
  const model = await tf.loadLayersModel({ load: async () => artifacts });
  const note = trainingConfig ? optimizerNote(trainingConfig, optimizerWeights, path) : undefined;
  return { model, ...(trainingConfig && trainingConfig.loss !== undefined ? { loss: trainingConfig.loss } : {}), notes: note ? [note] : [] };
}
