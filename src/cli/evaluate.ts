/**
 * `batch-advisor evaluate <run folder | model.json> <folder> [--json]`: a saved model on a folder
 * of labelled images (Keras layout, classes matched by name with the model's), in the trainer child.
 */
import { dirname, relative } from 'node:path';
import { findWorkspaceRoot } from './train';
import { resolveEvaluationInput } from '../core/evaluate-input';
import type { EvaluationResult } from '../core/shared/evaluation';
import { TrainerClient } from '../core/process/trainer-client';

export interface EvaluateFlags {
  json?: boolean;
  batchSize?: number;
  backend?: string;
}

export interface EvaluateIo {
  trainerScript: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const pct = (v: number | null): string => (v === null ? '–' : `${(v * 100).toFixed(1)}%`);

/** The summary a person reads: figures, per-class table, confusion matrix, the most confidently wrong. */
export function formatEvaluation(r: EvaluationResult, wrongShown = 10): string[] {
  const lines = [`Evaluated ${r.images.toLocaleString('en-US')} images of ${r.classes.length} classes${r.source ? ` (${r.source})` : ''}`, `  accuracy  ${pct(r.accuracy)}`, `  loss      ${r.loss.toFixed(4)}`];
  if (r.skipped) lines.push(`  skipped   ${r.skipped} files that could not be decoded`);
  const w = Math.max(5, ...r.classes.map((c) => c.length));
  lines.push('', `  ${'class'.padEnd(w)}  precision  recall  support`);
  for (const c of r.perClass) lines.push(`  ${c.class.padEnd(w)}  ${pct(c.precision).padStart(9)}  ${pct(c.recall).padStart(6)}  ${String(c.support).padStart(7)}`);
  const cw = Math.max(4, ...r.confusionMatrix.flat().map((n) => String(n).length), ...r.classes.map((c) => Math.min(c.length, 8)));
  lines.push('', `  confusion matrix (rows: true class, columns: predicted)`, `  ${''.padEnd(w)}  ${r.classes.map((c) => c.slice(0, 8).padStart(cw)).join(' ')}`);
  r.confusionMatrix.forEach((row, i) => lines.push(`  ${(r.classes[i] ?? '').padEnd(w)}  ${row.map((n) => String(n).padStart(cw)).join(' ')}`));
  if (r.wrong.length) {
    lines.push('', `  most confidently wrong${r.wrong.length > wrongShown ? ` (${wrongShown} of ${r.wrong.length}; --json lists them all)` : ''}:`);
    for (const x of r.wrong.slice(0, wrongShown)) lines.push(`  ${pct(x.confidence).padStart(6)}  ${x.true} → ${x.predicted}  ${relative(process.cwd(), x.path) || x.path}`);
  }
  return lines;
}

export async function evaluateCommand(input: string, folder: string, flags: EvaluateFlags, io: EvaluateIo): Promise<number> {
  const target = await resolveEvaluationInput(input, folder);
  const client = new TrainerClient({ trainerScript: io.trainerScript });
  try {
    const config = target.config;
    const result = await client.evaluate({
      modelPath: target.modelPath,
      classNames: target.classNames,
      files: target.files,
      ...(config?.imageSize ? { imageSize: config.imageSize } : {}),
      ...(config?.channels ? { channels: config.channels } : {}),
      ...(flags.batchSize ? { batchSize: flags.batchSize } : {}),
      backend: (flags.backend ?? config?.backend ?? 'auto') as 'auto',
      workspaceFolder: findWorkspaceRoot(dirname(target.modelPath)),
    });
    const full: EvaluationResult = { ...result, source: folder };
    if (flags.json) {
      const { cells: _cells, ...doc } = full;
      io.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    } else {
      io.stdout.write(formatEvaluation(full).join('\n') + '\n');
      io.stdout.write(`  classes from ${target.classSource}${target.missing.length ? `; not in the folder (support 0): ${target.missing.join(', ')}` : ''}\n`);
    }
    return 0;
  } finally {
    client.dispose();
  }
}
