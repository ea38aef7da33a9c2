/**
 * What the training panel's charts draw: for each chart its lines, its y-axis title with the unit,
 * and how its values read. Pure (colours come in as a palette, read from the theme by charts.ts):
 * unit-tested in Node.
 *
 * One run: train raw, train smoothed and validation in three theme colours (raw a faint neutral
 * behind the smoothed line, validation with a marker on each epoch end); memory as each step's
 * peak of live tensors against the plan's budget and prediction, with the wasm heap, the process's
 * resident set and the GPU where they are measured. Several runs: one colour per run.
 */
import { formatBytes } from '../../core/shared/format';
import { ema } from './downsample';
import { epochXOf, xOf, type RunSeries, type XAxis } from './series';
import { withAlpha } from '../shared/colour';

export interface ChartRun {
  id: string;
  name: string;
  series: RunSeries;
  colour: number;
}

export interface ChartOptions {
  axis: XAxis;
  /** EMA weight 0…0.99 for the loss and accuracy lines (the raw points stay, faint). */
  smoothing: number;
  logScale: boolean;
}

/** Theme colours (the --vscode-charts-* variables), resolved by the caller. */
export interface Palette {
  blue: string;
  orange: string;
  green: string;
  purple: string;
  red: string;
  yellow: string;
  /** The charts' neutral foreground: raw points behind the smoothed line, the prediction. */
  neutral: string;
  /** A run's colour when several runs are compared. */
  run(i: number): string;
}

export interface Line {
  label: string;
  x: ArrayLike<number>;
  y: ArrayLike<number | null>;
  colour: string;
  width: number;
  dash?: number[];
  /** A marker on every point (validation: one per epoch end). */
  points?: boolean;
}

export type ValueFormat = (v: number) => string;

export interface ChartDef {
  id: string;
  title: string;
  /** The y axis's title, with the unit. */
  yLabel: string;
  lines: (runs: ChartRun[], o: ChartOptions, p: Palette) => Line[];
  /** Tick labels. */
  format: ValueFormat;
  /** Legend values (default: the tick format). */
  legend?: ValueFormat;
  /** 'option': log scale when the panel's Log scale box is ticked; 'bytes': always log, ticks at powers of two. */
  log?: 'option' | 'bytes';
}

export const AXIS_LABEL: Record<XAxis, string> = { step: 'optimizer step', epoch: 'epoch', time: 'wall time (s)' };

export const DASH = [6, 4];
const DOTTED = [2, 3];

export const fmt3: ValueFormat = (v) => (Math.abs(v) >= 1000 || v === 0 ? v.toFixed(0) : Number(v.toPrecision(3)).toString());
const percent: ValueFormat = (v) => `${Number((v * 100).toPrecision(3))}`;

function prefix(runs: ChartRun[], r: ChartRun): string {
  return runs.length > 1 ? `${r.name} ` : '';
}

/** Train (raw and smoothed) and validation of one metric. */
function trainVal(pick: (s: RunSeries) => (number | null)[], pickVal: (s: RunSeries) => (number | null)[], what: string) {
  return (runs: ChartRun[], o: ChartOptions, p: Palette): Line[] => {
    const one = runs.length === 1;
    const out: Line[] = [];
    for (const r of runs) {
      const c = one ? { raw: withAlpha(p.neutral, 0.45), train: p.blue, val: p.orange } : { raw: withAlpha(p.run(r.colour), 0.3), train: p.run(r.colour), val: p.run(r.colour) };
      const x = xOf(r.series, o.axis);
      const y = pick(r.series);
      if (o.smoothing > 0) {
        out.push({ label: `${prefix(runs, r)}train ${what} (raw)`, x, y, colour: c.raw, width: 1 });
        out.push({ label: `${prefix(runs, r)}train ${what} (smoothed)`, x, y: ema(y, o.smoothing), colour: c.train, width: 2 });
      } else out.push({ label: `${prefix(runs, r)}train ${what}`, x, y, colour: c.train, width: 1.5 });
      out.push({ label: `${prefix(runs, r)}validation ${what}`, x: epochXOf(r.series, o.axis), y: pickVal(r.series), colour: c.val, width: 2, dash: DASH, points: true });
    }
    return out;
  };
}

/** One line per part and run: the part's theme colour for one run, the run's colour (later parts dashed) for several. */
function perRun(parts: { label: string; pick: (s: RunSeries) => ArrayLike<number | null>; colour: (p: Palette) => string }[]) {
  return (runs: ChartRun[], o: ChartOptions, p: Palette): Line[] =>
    runs.flatMap((r) =>
      parts.map((part, i) => ({
        label: `${prefix(runs, r)}${part.label}`,
        x: xOf(r.series, o.axis),
        y: part.pick(r.series),
        colour: runs.length > 1 ? p.run(r.colour) : part.colour(p),
        width: 1.75,
        ...(runs.length > 1 && i > 0 ? { dash: DASH } : {}),
      })),
    );
}

/** A level across the run's x range (the plan's budget, its predicted peak). */
function level(r: ChartRun, o: ChartOptions, value: number): { x: number[]; y: number[] } {
  const x = xOf(r.series, o.axis);
  if (!(value > 0) || x.length === 0) return { x: [], y: [] };
  const xs = x.length > 1 ? [x[0]!, x[x.length - 1]!] : [x[0]!];
  return { x: xs, y: xs.map(() => value) };
}

function hasAny(ys: ArrayLike<number | null>): boolean {
  for (let i = 0; i < ys.length; i++) if (ys[i] !== null && ys[i] !== undefined) return true;
  return false;
}

/**
 * Memory: each step's peak of live tensors (tensors after the step for runs recorded before the
 * peak was measured), the wasm heap, the process's RSS and the GPU where measured, and the plan's
 * predicted peak and budget as levels.
 */
export function memoryLines(runs: ChartRun[], o: ChartOptions, p: Palette): Line[] {
  const one = runs.length === 1;
  const out: Line[] = [];
  for (const r of runs) {
    const s = r.series;
    const x = xOf(s, o.axis);
    const c = (own: string): string => (one ? own : p.run(r.colour));
    const name = prefix(runs, r);
    if (hasAny(s.peakTensorBytes)) out.push({ label: `${name}step peak (tensors)`, x, y: s.peakTensorBytes, colour: c(p.blue), width: 2 });
    else out.push({ label: `${name}tensors after step`, x, y: s.tensorBytes, colour: c(p.blue), width: 2 });
    if (one) {
      out.push({ label: 'wasm heap', x, y: s.wasmHeapBytes, colour: p.purple, width: 1.5 });
      out.push({ label: 'process RSS', x, y: s.rssBytes, colour: p.green, width: 1.5 });
      out.push({ label: 'GPU used', x, y: s.gpuUsed, colour: p.red, width: 1.5 });
      out.push({ label: 'GPU total', x, y: s.gpuTotal, colour: p.red, width: 1, dash: DASH });
    }
    const plan = s.plan;
    if (plan) {
      if (one) out.push({ label: 'predicted peak', ...level(r, o, plan.predictedBytes), colour: p.neutral, width: 1.5, dash: DOTTED });
      out.push({ label: `${name}budget`, ...level(r, o, plan.budgetBytes), colour: c(p.yellow), width: 2, dash: DASH });
    }
  }
  return out;
}

export const CHARTS: ChartDef[] = [
  { id: 'loss', title: 'Loss', yLabel: 'cross-entropy (nats)', lines: trainVal((s) => s.loss, (s) => s.valLoss, 'loss'), format: fmt3, legend: (v) => Number(v.toPrecision(4)).toString(), log: 'option' },
  { id: 'accuracy', title: 'Accuracy', yLabel: 'accuracy (%)', lines: trainVal((s) => s.accuracy, (s) => s.valAccuracy, 'accuracy'), format: percent, legend: (v) => `${(v * 100).toFixed(1)}%` },
  { id: 'lr', title: 'Learning rate', yLabel: 'learning rate', lines: perRun([{ label: 'learning rate', pick: (s) => s.learningRate, colour: (p) => p.blue }]), format: (v) => v.toExponential(1), legend: (v) => v.toExponential(3), log: 'option' },
  { id: 'throughput', title: 'Images per second', yLabel: 'images / s', lines: perRun([{ label: 'images/s', pick: (s) => s.imagesPerSec, colour: (p) => p.green }]), format: fmt3 },
  {
    id: 'step-time',
    title: 'Step time: compute and data wait',
    yLabel: 'ms per step',
    lines: perRun([
      { label: 'compute', pick: (s) => s.computeMs, colour: (p) => p.blue },
      { label: 'data wait', pick: (s) => s.dataWaitMs, colour: (p) => p.orange },
    ]),
    format: fmt3,
    legend: (v) => `${fmt3(v)} ms`,
  },
  { id: 'memory', title: 'Memory: each step’s peak against the plan', yLabel: 'bytes (log scale)', lines: memoryLines, format: formatBytes, log: 'bytes' },
];

/** The last value of a line that is a number (what its legend shows when the pointer is elsewhere). */
export function latestValue(ys: ArrayLike<number | null>): number | null {
  for (let i = ys.length - 1; i >= 0; i--) {
    const v = ys[i];
    if (v !== null && v !== undefined && Number.isFinite(v)) return v;
  }
  return null;
}
