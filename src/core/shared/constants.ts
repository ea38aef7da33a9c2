/**
 * One source for the names and rules several parts of the product use: image extensions, backend
 * names, command ids, suggest stages, the default headroom, the memory budget and the
 * out-of-memory halving rule. Browser-safe (the webviews use some of them).
 */

/** Extensions Keras `image_dataset_from_directory` loads (lower case, no dot). */
export const IMAGE_EXTENSIONS = ['bmp', 'gif', 'jpeg', 'jpg', 'png'] as const;
/** ".bmp .gif .jpeg .jpg .png", for messages. */
export const IMAGE_EXTENSIONS_TEXT = IMAGE_EXTENSIONS.map((e) => `.${e}`).join(' ');

/** TensorFlow.js backends, in the order `auto` tries them. */
export const BACKEND_NAMES = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Command ids, every one (package.json contributes the same; test/unit/constants.test.ts holds them equal). */
export const COMMANDS = {
  suggest: 'batchAdvisor.suggest',
  train: 'batchAdvisor.train',
  showLog: 'batchAdvisor.showLog',
  applySuggestion: 'batchAdvisor.applySuggestedBatchSize',
  newConfig: 'batchAdvisor.newTrainingConfig',
  stopTraining: 'batchAdvisor.stopTraining',
  showLiveRun: 'batchAdvisor.showLiveRun',
  openRun: 'batchAdvisor.openRun',
  compareRuns: 'batchAdvisor.compareRuns',
  exportRunCsv: 'batchAdvisor.exportRunCsv',
  deleteRun: 'batchAdvisor.deleteRun',
  resumeRun: 'batchAdvisor.resumeRun',
  renameRun: 'batchAdvisor.renameRun',
  refreshRuns: 'batchAdvisor.refreshRuns',
} as const;

/** The file name ending of a training config. */
export const CONFIG_SUFFIX = '.train.json';

/** The stages of a suggestion, in order. */
export const SUGGEST_STAGES = ['scan', 'devices', 'model', 'plan', 'probe'] as const;
export type SuggestStage = (typeof SUGGEST_STAGES)[number];

/** Fraction of free device memory kept free by default, and the most a setting may keep (package.json's maximum). */
export const DEFAULT_HEADROOM = 0.1;
export const MAX_HEADROOM = 0.89;

/** The memory a plan may use: free memory less the headroom. */
export function memoryBudget(freeBytes: number, headroom: number): number {
  return Math.max(0, Math.floor(freeBytes * (1 - headroom)));
}

/** The batch to try after running out of memory at `batchSize`: half of it, at least 1. */
export function batchAfterOom(batchSize: number): number {
  return Math.max(1, Math.floor(batchSize / 2));
}

/**
 * The second half of "Try 16, or 16 with accumulationSteps 2 to keep the effective batch of 32":
 * the accumulation that keeps (or comes nearest to) the effective batch at a smaller micro-batch.
 * `showNow` adds the effective batch the run had when it cannot be kept exactly.
 */
export function keepEffectiveBatch(suggested: number, microBatch: number, accumulationSteps: number, showNow = false): string {
  const effective = microBatch * accumulationSteps;
  const k = Math.ceil(effective / suggested);
  return suggested * k === effective
    ? `, or ${suggested} with accumulationSteps ${k} to keep the effective batch of ${effective}`
    : `, or ${suggested} with accumulationSteps ${k} for an effective batch of ${suggested * k}${showNow ? ` (now ${effective})` : ''}`;
}
