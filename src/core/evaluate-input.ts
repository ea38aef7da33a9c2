/**
 * What `batch-advisor evaluate <run folder | model.json> <folder>` evaluates, resolved on the host
 * (no tfjs): the model.json, its class names in output order (recorded by the run: its run-start
 * event and the saved model.json's metadata), the image size its run trained at, and the folder's
 * images labelled with the model's class indices — classes matched by name.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { listDatasetFiles } from './dataset/list';
import { readRoot } from './dataset/walk';
import { RUN_FILES, readRun } from './run-folder/runs';
import { matchClasses } from './shared/evaluation';
import type { TrainConfig } from './shared/config-types';

/** Bad input to `evaluate` (exit 2): the message names the file, folder or classes at fault. */
export class EvaluateInputError extends Error {
  override readonly name = 'EvaluateInputError';
}

export interface EvaluationInput {
  modelPath: string;
  classNames: string[];
  /** Where the class names came from, in words. */
  classSource: string;
  /** The run's config, when the model belongs to a run folder. */
  config?: TrainConfig;
  files: { path: string; label: number }[];
  /** Model classes the folder has no images of (reported with support 0). */
  missing: string[];
}

function isRunFolder(dir: string): boolean {
  return existsSync(join(dir, RUN_FILES.config)) && existsSync(join(dir, RUN_FILES.model, 'model.json'));
}

/** The classNames the saved model.json carries in its userDefinedMetadata (runs record them). */
function metadataClasses(modelPath: string): string[] | undefined {
  try {
    const json = JSON.parse(readFileSync(modelPath, 'utf8')) as { userDefinedMetadata?: { classNames?: unknown } };
    const c = json.userDefinedMetadata?.classNames;
    return Array.isArray(c) && c.every((x) => typeof x === 'string') ? (c as string[]) : undefined;
  } catch {
    return undefined; // the trainer's loader says what is wrong with the file
  }
}

interface ModelSource {
  modelPath: string;
  runDir?: string;
}

function modelSource(input: string): ModelSource {
  const path = resolve(input);
  if (!existsSync(path)) throw new EvaluateInputError(`${input}: no such run folder or model.json`);
  if (statSync(path).isDirectory()) {
    if (isRunFolder(path)) return { modelPath: join(path, RUN_FILES.model, 'model.json'), runDir: path };
    if (existsSync(join(path, 'model.json'))) return { modelPath: join(path, 'model.json'), ...(isRunFolder(dirname(path)) ? { runDir: dirname(path) } : {}) };
    throw new EvaluateInputError(`${input}: not a run folder (no ${RUN_FILES.config} and ${RUN_FILES.model}/model.json) and holds no model.json`);
  }
  if (!/\.json$/i.test(path)) throw new EvaluateInputError(`${input}: expected a run folder or a tfjs Layers model.json`);
  const dir = dirname(path);
  const runDir = basename(dir) === RUN_FILES.model && isRunFolder(dirname(dir)) ? dirname(dir) : undefined;
  return { modelPath: path, ...(runDir ? { runDir } : {}) };
}

/** The model's classes: the run's record, the model file's metadata, or (last) a folder's class list. */
async function modelClasses(src: ModelSource, folderClasses: string[], config: TrainConfig | undefined): Promise<{ classNames: string[]; classSource: string }> {
  const run = src.runDir ? readRun(src.runDir) : undefined;
  const recorded = run?.runStart?.classNames;
  if (recorded?.length) return { classNames: recorded, classSource: `the run's record (${RUN_FILES.metrics})` };
  const meta = metadataClasses(src.modelPath);
  if (meta?.length) return { classNames: meta, classSource: 'the model file\'s metadata' };
  if (config?.dataset && existsSync(config.dataset)) {
    const { classNames } = await readRoot(config.dataset);
    if (classNames.length) return { classNames, classSource: `the class folders of the run's dataset ${config.dataset}` };
  }
  return { classNames: folderClasses, classSource: 'the evaluated folder\'s class folders, in name order (the model records no class names)' };
}

export async function resolveEvaluationInput(input: string, folder: string): Promise<EvaluationInput> {
  const src = modelSource(input);
  const config = src.runDir ? readRun(src.runDir).config : undefined;
  const listing = await listDatasetFiles(resolve(folder));
  if (listing.files.length === 0) throw new EvaluateInputError(`${folder}: no images in class subfolders (expected <folder>/<class>/<images>)`);
  const { classNames, classSource } = await modelClasses(src, listing.classNames, config);
  const { labelOf, unknown } = matchClasses(classNames, listing.classNames);
  if (unknown.length) {
    const list = unknown.map((c) => `"${c}"`).join(', ');
    throw new EvaluateInputError(`${folder}: the model does not know the class${unknown.length > 1 ? 'es' : ''} ${list} (its classes: ${classNames.join(', ')}); remove or rename ${unknown.length > 1 ? 'those folders' : 'that folder'}`);
  }
  const files = listing.files.map((f) => ({ path: f.path, label: labelOf[f.label]! }));
  const present = new Set(listing.classNames);
  return { modelPath: src.modelPath, classNames, classSource, ...(config ? { config } : {}), files, missing: classNames.filter((c) => !present.has(c)) };
}
