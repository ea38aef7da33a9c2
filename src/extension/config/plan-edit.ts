/**
 * The apply lens's edit as text (pure, no vscode): the plan's batch, accumulation, learning rate
 * and warmup written into a `*.train.json`, keeping its comments, order and indentation (jsonc-parser
 * edits), missing fields added. The lens applies the result as one WorkspaceEdit: one Undo.
 */
import { applyEdits, findNodeAtLocation, modify, parseTree, type FormattingOptions } from 'jsonc-parser';

/** The config fields that set a plan's numbers: batch, accumulation, learning rate, warmup. */
export interface PlanFields {
  batchSize: number;
  accumulationSteps: number;
  learningRate: number;
  warmupSteps: number;
}

export interface ConfigSuggestion {
  /** The suggested micro-batch (what "batchSize" would become). */
  batchSize: number;
  /** The plan's fields the apply lens writes together (one undoable edit). */
  fields: PlanFields;
  /** The plan's warnings about the batch (e.g. an explicit batch predicted not to fit). */
  batchWarnings: string[];
}

/** The largest power of two ≤ n (n ≥ 1). */
function floorPow2(n: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

/**
 * What the editor offers from a suggestion report: the planned micro-batch, or — for an explicit
 * batch predicted not to fit — the largest power of two that is predicted to fit. For a torchrun
 * config the learning rate and warmup are the global batch's (report.torchrun): a rate the config
 * sets is kept as written by the torchrun plan, so the single-device rate would train there.
 */
export function configSuggestionFrom(report: {
  plan: { microBatchSize: number; accumulationSteps: number; maxMicroBatchSize: number; predictedBytes: number; budgetBytes: number; learningRate: { value: number }; warmup: { steps: number }; sources: { batchSize: string }; warnings: string[] };
  torchrun?: { learningRate: number; warmupSteps: number };
}): ConfigSuggestion {
  const p = report.plan;
  const tooBig = p.sources.batchSize === 'config' && p.predictedBytes > p.budgetBytes && p.maxMicroBatchSize >= 1;
  const batchSize = tooBig ? floorPow2(p.maxMicroBatchSize) : p.microBatchSize;
  const learningRate = report.torchrun?.learningRate ?? p.learningRate.value;
  const warmupSteps = report.torchrun?.warmupSteps ?? p.warmup.steps;
  return {
    batchSize,
    // A batch predicted not to fit: only the batch changes (the rest was planned for the other one).
    fields: { batchSize, accumulationSteps: tooBig ? 1 : p.accumulationSteps, learningRate, warmupSteps },
    batchWarnings: p.warnings.filter((w) => /^Batch \d+ is predicted/.test(w)),
  };
}

/** The lens's title: "Suggested: 8 × 4, lr 0.0014 — apply". */
export function applyTitle(f: PlanFields): string {
  return `Suggested: ${f.batchSize}${f.accumulationSteps > 1 ? ` × ${f.accumulationSteps}` : ''}, lr ${Number(f.learningRate.toPrecision(3))}${f.warmupSteps > 0 ? `, warmup ${f.warmupSteps}` : ''} — apply`;
}

const KEYS: (keyof PlanFields)[] = ['batchSize', 'accumulationSteps', 'learningRate', 'warmupSteps'];

/** The indentation the file uses (its first indented line), for fields that are added. */
function formatting(text: string): FormattingOptions {
  const indent = /\n([ \t]+)"/.exec(text)?.[1] ?? '  ';
  return { insertSpaces: !indent.includes('\t'), tabSize: indent.includes('\t') ? 1 : indent.length, eol: text.includes('\r\n') ? '\r\n' : '\n' };
}

/** The file with the plan's fields written. */
export function withPlanFields(text: string, f: PlanFields): string {
  let out = text;
  const formattingOptions = formatting(text);
  for (const key of KEYS) out = applyEdits(out, modify(out, [key], f[key], { formattingOptions }));
  return out;
}

/** True when the file already sets every field to the plan's value (the lens is not shown). */
export function planFieldsMatch(text: string, f: PlanFields): boolean {
  const root = parseTree(text);
  if (!root) return false;
  return KEYS.every((k) => findNodeAtLocation(root, [k])?.value === f[k]);
}
