/**
 * The latest suggestion per config file, for the editor: the "Suggested: 8 × 4, lr 0.0014 — apply"
 * lens (which writes the plan's batch, accumulation, learning rate and warmup) and the "predicted
 * not to fit" diagnostic. The Suggest controller records each result for a config.
 */
import * as vscode from 'vscode';
import type { PlanFields } from './plan-edit';

export { applyTitle, type PlanFields } from './plan-edit';

export interface ConfigSuggestion {
  /** The suggested micro-batch (what "batchSize" would become). */
  batchSize: number;
  /** The plan's fields the apply lens writes together (one undoable edit). */
  fields: PlanFields;
  /** The plan's warnings about the batch (e.g. an explicit batch predicted not to fit). */
  batchWarnings: string[];
}

const byPath = new Map<string, ConfigSuggestion>();
const changed = new vscode.EventEmitter<string>();

/** Fires with the config path whose suggestion changed. */
export const onDidChangeSuggestion = changed.event;

export function recordSuggestion(configPath: string, s: ConfigSuggestion): void {
  byPath.set(configPath, s);
  changed.fire(configPath);
}

export function suggestionFor(configPath: string): ConfigSuggestion | undefined {
  return byPath.get(configPath);
}

/** The largest power of two ≤ n (n ≥ 1). */
function floorPow2(n: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

/**
 * What the editor offers from a suggestion report: the planned micro-batch, or — for an explicit
 * batch predicted not to fit — the largest power of two that is predicted to fit.
 */
export function configSuggestionFrom(report: {
  plan: { microBatchSize: number; accumulationSteps: number; maxMicroBatchSize: number; predictedBytes: number; budgetBytes: number; learningRate: { value: number }; warmup: { steps: number }; sources: { batchSize: string }; warnings: string[] };
}): ConfigSuggestion {
  const p = report.plan;
  const tooBig = p.sources.batchSize === 'config' && p.predictedBytes > p.budgetBytes && p.maxMicroBatchSize >= 1;
  const batchSize = tooBig ? floorPow2(p.maxMicroBatchSize) : p.microBatchSize;
  return {
    batchSize,
    // A batch predicted not to fit: only the batch changes (the rest was planned for the other one).
    fields: tooBig ? { batchSize, accumulationSteps: 1, learningRate: p.learningRate.value, warmupSteps: p.warmup.steps } : { batchSize, accumulationSteps: p.accumulationSteps, learningRate: p.learningRate.value, warmupSteps: p.warmup.steps },
    batchWarnings: p.warnings.filter((w) => /^Batch \d+ is predicted/.test(w)),
  };
}
