/**
 * What the Compare panel tabulates (browser-safe, pure): the runs' hyper-parameters side by side
 * with the fields that differ marked, and per metric each run's last, best and worst value.
 *
 * Hyper-parameters come from each run's config.json (the config with the plan's numbers in place
 * of "auto", so it says what ran) plus what the run-start event adds (the backend that ran, the
 * effective batch); nested fields (earlyStopping) are flattened to dotted keys. Values are
 * compared as shown, so a highlighted row always shows two different strings.
 */
import type { TrainEvent } from './protocol';

export interface ParamRow {
  key: string;
  /** One shown value per run ('–' where a run does not have the field). */
  values: string[];
  differs: boolean;
}

/** Shown first, in this order; any other field follows alphabetically. */
const ORDER = [
  'model',
  'optimizer',
  'batchSize',
  'accumulationSteps',
  'effectiveBatch',
  'learningRate',
  'warmupSteps',
  'lrSchedule',
  'epochs',
  'imageSize',
  'channels',
  'widthMultiplier',
  'validationSplit',
  'seed',
  'loading',
  'backend',
  'backendUsed',
  'checkpoint',
  'earlyStopping.patience',
  'earlyStopping.monitor',
  'earlyStopping.minDelta',
  'dataset',
];
/** Not hyper-parameters: the name is the column's title; where the config file was is not what ran. */
const SKIPPED = new Set(['name', 'configPath', 'explicit']);

export const MISSING = '–';

/** A value as the table shows it: numbers to 4 significant digits, [28, 28] as 28 × 28. */
export function showValue(v: unknown): string {
  if (v === undefined || v === null) return MISSING;
  if (typeof v === 'number') return Number.isFinite(v) ? String(Number(v.toPrecision(4))) : String(v);
  if (Array.isArray(v)) return v.every((x) => typeof x === 'number') ? v.join(' × ') : v.map(showValue).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function flatten(o: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(o)) {
    const key = prefix + k;
    if (!prefix && SKIPPED.has(k)) continue;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) flatten(v as Record<string, unknown>, `${key}.`, out);
    else out[key] = v;
  }
  return out;
}

/** One run's fields: its recorded config, the backend its run-start reports and the effective batch. */
export function runParameters(config: Record<string, unknown> | undefined, events: readonly TrainEvent[]): Record<string, unknown> {
  const out = flatten(config ?? {});
  const start = events.find((e) => e.type === 'run-start');
  if (start?.type === 'run-start') {
    out['backendUsed'] = start.backend;
    out['effectiveBatch'] = start.plan.effectiveBatchSize;
  }
  return out;
}

/** The table: every field any run has, in ORDER then alphabetically; `differs` when the shown values are not all equal. */
export function parameterRows(runs: readonly Record<string, unknown>[]): ParamRow[] {
  const keys = new Set<string>();
  for (const r of runs) for (const k of Object.keys(r)) keys.add(k);
  const rank = (k: string): number => {
    const i = ORDER.indexOf(k);
    return i < 0 ? ORDER.length : i;
  };
  return [...keys]
    .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
    .map((key) => {
      const values = runs.map((r) => showValue(r[key]));
      return { key, values, differs: values.some((v) => v !== values[0]) };
    });
}

// ---- metrics -----------------------------------------------------------------------------------

export interface MetricDef {
  id: 'valAccuracy' | 'valLoss' | 'accuracy' | 'loss' | 'imagesPerSec';
  label: string;
  higherIsBetter: boolean;
  /** Per epoch (from epoch events) or per optimizer step (batch events). */
  per: 'epoch' | 'step';
}

export const METRICS: readonly MetricDef[] = [
  { id: 'valAccuracy', label: 'val accuracy', higherIsBetter: true, per: 'epoch' },
  { id: 'valLoss', label: 'val loss', higherIsBetter: false, per: 'epoch' },
  { id: 'accuracy', label: 'train accuracy', higherIsBetter: true, per: 'epoch' },
  { id: 'loss', label: 'train loss', higherIsBetter: false, per: 'epoch' },
  { id: 'imagesPerSec', label: 'images/s', higherIsBetter: true, per: 'step' },
];

export interface MetricStats {
  last: number;
  best: number;
  /** Epoch (per-epoch metrics) or global step (per-step metrics) of the best value (the first, on ties). */
  bestAt: number;
  /** The other extreme: the minimum of a higher-is-better metric, the maximum of a lower-is-better one. */
  worst: number;
}

/** The metric's value in this event and where it was (epoch or global step), if the event has a finite one. */
export function metricValue(e: TrainEvent, m: MetricDef): { v: number; at: number } | null {
  let v: number | null | undefined;
  let at: number;
  if (m.per === 'epoch' && e.type === 'epoch' && m.id !== 'imagesPerSec') [v, at] = [e[m.id], e.epoch];
  else if (m.per === 'step' && e.type === 'batch') [v, at] = [e.imagesPerSec, e.globalStep];
  else return null;
  return typeof v === 'number' && Number.isFinite(v) ? { v, at } : null;
}

/** Folds one value into a metric's stats (in event order). */
export function addToStats(s: MetricStats | null, x: { v: number; at: number }, m: MetricDef): MetricStats {
  if (!s) return { last: x.v, best: x.v, bestAt: x.at, worst: x.v };
  const better = (a: number, b: number) => (m.higherIsBetter ? a > b : a < b);
  return { last: x.v, ...(better(x.v, s.best) ? { best: x.v, bestAt: x.at } : { best: s.best, bestAt: s.bestAt }), worst: better(s.worst, x.v) ? x.v : s.worst };
}

/** A metric's last, best and worst finite value over a run's events; null when the run has none. */
export function metricStats(events: readonly TrainEvent[], m: MetricDef): MetricStats | null {
  let out: MetricStats | null = null;
  for (const e of events) {
    const x = metricValue(e, m);
    if (x) out = addToStats(out, x, m);
  }
  return out;
}

/** Index of the run with the best value (first on ties); -1 when no run has one or fewer than two do. */
export function bestRun(values: readonly (number | null)[], higherIsBetter: boolean): number {
  let best = -1;
  let count = 0;
  values.forEach((v, i) => {
    if (v === null) return;
    count++;
    if (best < 0 || (higherIsBetter ? v > values[best]! : v < values[best]!)) best = i;
  });
  return count >= 2 ? best : -1;
}
