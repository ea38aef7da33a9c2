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
