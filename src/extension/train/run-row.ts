/**
 * What a row of the runs view says (pure, no `vscode`): a description short enough for the
 * Explorer's width (one headline metric, and the status unless it completed) and a tooltip with everything else.
 */
import type { RunSummary } from '../../core/run-folder/runs';

export type RowStatus = 'training' | 'interrupted' | RunSummary['status'];

export function rowStatus(run: RunSummary, live: boolean): RowStatus {
  return live ? 'training' : run.status === 'running' ? 'interrupted' : run.status;
}

const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;

/** The one metric the row shows: validation accuracy, else validation loss, else training loss. */
export function headlineMetric(run: RunSummary): string {
  const e = run.lastEpochEvent;
  if (!e) return '';
  if (e.valAccuracy !== null) return `val acc ${pct(e.valAccuracy)}`;
  if (e.valLoss !== null) return `val loss ${e.valLoss.toFixed(3)}`;
  return `loss ${e.loss.toFixed(3)}`;
}

/**
 * "val acc 97.1%" for a completed run (its icon says so), "stopped · val acc 97.1%" otherwise: short,
 * so that a long name still leaves it room.
 */
export function rowDescription(run: RunSummary, live: boolean): string {
  const status = rowStatus(run, live);
  return [status === 'completed' ? '' : status, headlineMetric(run)].filter(Boolean).join(' · ') || status;
}

function localTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Every detail, one per line: name and status, why it ended, the last epoch's metrics, when, where. */
export function rowTooltip(run: RunSummary, live: boolean): string {
  const lines = [`${run.name} — ${rowStatus(run, live)}`];
  if (run.endMessage) lines.push(run.endMessage);
  const e = run.lastEpochEvent;
  if (e) {
    const m = [`epoch ${e.epoch}`, `loss ${e.loss.toFixed(4)}`, `accuracy ${pct(e.accuracy)}`];
    if (e.valLoss !== null) m.push(`val loss ${e.valLoss.toFixed(4)}`);
    if (e.valAccuracy !== null) m.push(`val accuracy ${pct(e.valAccuracy)}`);
    lines.push(m.join(' · '));
  } else lines.push('no epoch finished');
  if (run.startedAt) lines.push(`started ${localTime(run.startedAt)}`);
  lines.push(`run ${run.id}`, run.dir);
  return lines.join('\n');
}
