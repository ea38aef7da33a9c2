/** A run's data: the Keras listing and split, the usable files, and the input pipelines at the plan's batch sizes and loading. */
import { IMAGE_EXTENSIONS_TEXT } from '../../core/shared/constants';
import { listDatasetFiles, tooFewClasses, unreadableClassFolder } from '../../core/dataset/list';
import { Prober, unusableReason } from '../../core/dataset/probe';
import { abortError } from '../../core/shared/errors';
import type { TrainingPlan } from '../../core/shared/plan';
import type { RunData } from '../../core/shared/run-spec';
import { ImagePipeline, type Batch } from '../data/pipeline';
import { splitFiles, type LabeledFile, type Split } from '../data/split';
import { BadInputError } from '../errors';
import { tf } from '../tf';
import { yieldToEventLoop, type RunContext } from './setup';
import type { MicroBatch } from './step';
import { PROTOCOL_VERSION } from '../../core/shared/protocol';

export interface Data {
  numClasses: number;
  /** The dataset's class names in label order (the model's output order). */
  classNames: string[];
  train: ImagePipeline;
  validation: ImagePipeline | undefined;
  trainFiles: number;
  validationFiles: number;
}

export function makeTensors(b: Batch): MicroBatch {
  return { x: tf.tensor4d(b.x, b.shape, 'float32'), y: tf.tensor1d(b.y, 'int32') };
}

/** The Keras listing and split, and the input pipelines at the plan's batch sizes and loading. */
export async function loadData(config: RunData, plan: TrainingPlan, ctx: RunContext): Promise<Data> {
  const { signal, log } = ctx;
  const split = await splitUsable(config, ctx);
  log('info', `loading: ${plan.loading.strategy} (${plan.loading.reason})`);
  const onSkip = (path: string, reason: string): void => ctx.emit({ v: PROTOCOL_VERSION, type: 'skipped-file', path, reason });
  const base = { imageSize: config.imageSize, channels: config.channels, seed: config.seed, loading: plan.loading.strategy, onSkip, signal, ...ctx.hooks.pipeline };
  let lastLog = performance.now();
  const progress = (done: number, total: number): void => {
    const t = performance.now();
    if (done === total || t - lastLog > 2000) {
      lastLog = t;
      log('info', `preloading images: ${Math.floor((done / total) * 100)}% (${done}/${total})`);
    }
  };
  const train = await ImagePipeline.create(split.train, { ...base, batchSize: plan.microBatchSize }, plan.loading.strategy === 'preload' ? progress : undefined);
  const validation = split.validation.length ? await ImagePipeline.create(split.validation, { ...base, batchSize: plan.validationBatchSize }) : undefined;
  if (train.size === 0) throw new BadInputError(`${config.dataset}: none of the ${split.train.length} training images could be decoded`);
  return { numClasses: split.numClasses, classNames: split.classNames, train, validation, trainFiles: split.train.length, validationFiles: split.validation.length };
}

/** The dataset listed, its unusable files left out (and reported), split into training and validation (also what a torchrun run trains on). */
export async function splitUsable(config: RunData, ctx: Pick<RunContext, 'signal' | 'log' | 'emit'>): Promise<Split<LabeledFile> & { numClasses: number; classNames: string[] }> {
  const { signal, log } = ctx;
  let listing: Awaited<ReturnType<typeof listDatasetFiles>>;
  try {
    listing = await listDatasetFiles(config.dataset, { signal });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new BadInputError(e instanceof Error ? e.message : String(e));
  }
  const numClasses = listing.classNames.length;
  const classes = tooFewClasses(config.dataset, listing.classNames) ?? unreadableClassFolder(listing);
  if (classes) throw new BadInputError(classes);
  for (const u of listing.unreadable) log('warn', `Folder ${u.path} cannot be read (${u.code}): its images are not used.`);
  if (listing.files.length === 0) throw new BadInputError(`${config.dataset}: no images (${IMAGE_EXTENSIONS_TEXT}) in its class folders`);
  // The same header check as the inspection, so the counts it reported (and the plan was made
  // from) are the counts trained on: unusable files are reported here, not split.
  const usable = await usableFiles(listing.files, signal, (path, reason) => ctx.emit({ v: PROTOCOL_VERSION, type: 'skipped-file', path, reason }));
  if (usable.length === 0) throw new BadInputError(`${config.dataset}: none of the ${listing.files.length} images can be used (see the skipped files)`);
  if (usable.length < listing.files.length) log('warn', `${listing.files.length - usable.length} of ${listing.files.length} files are not usable images and are left out (as the inspection reports).`);
  const split = splitFiles(usable, config.validationSplit, config.seed);
  if (split.train.length === 0) throw new BadInputError(`${config.dataset}: no training images left after the validation split of ${config.validationSplit}`);
  log('info', `Found ${usable.length} files belonging to ${numClasses} classes: ${split.train.length} for training, ${split.validation.length} for validation.`);
  return { ...split, numClasses, classNames: listing.classNames };
}

/** The files whose header the inspection accepts (probe.ts unusableReason), yielding now and then. */
async function usableFiles<T extends { path: string }>(files: T[], signal: AbortSignal, onSkip: (path: string, reason: string) => void): Promise<T[]> {
  const prober = new Prober();
  const out: T[] = [];
  for (let i = 0; i < files.length; i++) {
    const f = files[i] as T;
    prober.probe(f.path);
    const why = unusableReason(prober);
    if (why) onSkip(f.path, why);
    else out.push(f);
    if (i % 512 === 511) {
      await yieldToEventLoop();
      if (signal.aborted) throw abortError('stopped');
    }
  }
  return out;
}
