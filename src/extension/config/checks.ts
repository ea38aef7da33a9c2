/**
 * Checks of a `*.train.json` beyond its JSON schema, on the exact range of the offending value:
 * the dataset folder is missing or is not a dataset (no class subfolders), the model file is
 * missing or is not a tfjs Layers model, an explicit batch is predicted not to fit (from the last
 * suggestion for this config). Pure (no `vscode`): ranges are text offsets; unit-tested.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { findNodeAtLocation, parseTree, type Node } from 'jsonc-parser';

export interface ConfigProblem {
  /** Offset and length of the value in the text. */
  offset: number;
  length: number;
  message: string;
  severity: 'error' | 'warning';
}

/** The value node of a top-level field, if the text parses that far. */
export function fieldNode(text: string, key: string): Node | undefined {
  const root = parseTree(text);
  return root ? findNodeAtLocation(root, [key]) : undefined;
}

function datasetProblem(path: string): string | undefined {
  if (!existsSync(path)) return `Dataset folder not found: ${path}`;
  if (!statSync(path).isDirectory()) return `The dataset must be a folder (one subfolder per class): ${path} is a file`;
  const classes = readdirSync(path, { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.startsWith('.'));
  if (classes.length === 0) return `Not a dataset: ${path} has no class subfolders (expected <dataset>/<class>/<images>)`;
  return undefined;
}

function modelProblem(path: string): string | undefined {
  if (!existsSync(path)) return `Model file not found: ${path}`;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return `Not a tfjs Layers model: ${path} is not valid JSON`;
  }
  const o = raw as { format?: unknown; modelTopology?: unknown };
  if (o.format === 'graph-model') return `${path} is a tfjs graph model (tfjs-converter output); only Layers models (format "layers-model") can be trained`;
  if (typeof o.modelTopology !== 'object' || o.modelTopology === null) return `Not a tfjs Layers model: ${path} has no "modelTopology"`;
  return undefined;
}

/**
 * Problems of the config text at `configPath`. `batchWarnings`: the last suggestion's warnings for
 * this config (an explicit batch predicted not to fit), shown on the batchSize value.
 */
export function checkConfig(text: string, configPath: string, batchWarnings: readonly string[] = []): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const base = dirname(configPath);
  const at = (node: Node, message: string, severity: ConfigProblem['severity'] = 'error') => out.push({ offset: node.offset, length: node.length, message, severity });

  const dataset = fieldNode(text, 'dataset');
  if (dataset?.type === 'string' && typeof dataset.value === 'string' && dataset.value.trim()) {
    const p = datasetProblem(isAbsolute(dataset.value) ? dataset.value : resolve(base, dataset.value));
    if (p) at(dataset, p);
  }
  const model = fieldNode(text, 'model');
  if (model?.type === 'string' && typeof model.value === 'string' && /\.json$/i.test(model.value)) {
    const p = modelProblem(isAbsolute(model.value) ? model.value : resolve(base, model.value));
    if (p) at(model, p);
  }
  const batch = fieldNode(text, 'batchSize');
  // Only the warnings about the batch written now (a changed value makes an older warning stale).
  const current = batch?.type === 'number' ? batchWarnings.filter((w) => w.startsWith(`Batch ${String(batch.value)} `)) : [];
  if (batch && current.length) at(batch, current.join(' '), 'warning');
  return out;
}
