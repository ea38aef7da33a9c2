/**
 * The training panel's charts (uPlot, chosen by bench/chart-redraw.ts: 1.5 ms vs Chart.js's 7.4 ms
 * per redraw of 2 × 100k points downsampled, 8.5 ms vs 40.6 ms raw). Every point is kept in the
 * run's series; each redraw reduces each line to two points per pixel column (min/max), so a
 * redraw costs the same at 1k or 100k points. Colours come from the --vscode-* theme variables and
 * are read again when the theme changes.
 */
import uPlot from 'uplot';
import { formatBytes } from '../../core/shared/format';
import { ema, minMaxDownsample } from './downsample';
import { epochXOf, xOf, type RunSeries, type XAxis } from './series';

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

interface Line {
  label: string;
  x: ArrayLike<number>;
  y: ArrayLike<number | null>;
  colour: string;
  faint?: boolean;
  dashed?: boolean;
  points?: boolean;
}

type ValueFormat = (v: number) => string;

interface ChartDef {
  id: string;
  title: string;
  lines: (runs: ChartRun[], o: ChartOptions) => Line[];
  format?: ValueFormat;
  /** Log scale applies to this chart (loss and learning rate). */
  log?: boolean;
}

const PALETTE = ['--vscode-charts-blue', '--vscode-charts-orange', '--vscode-charts-green', '--vscode-charts-purple', '--vscode-charts-red', '--vscode-charts-yellow'];
const FALLBACK = ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#cca700'];

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

export function runColour(i: number): string {
  return cssVar(PALETTE[i % PALETTE.length]!, FALLBACK[i % FALLBACK.length]!);
}

function trainVal(pick: (s: RunSeries) => (number | null)[], pickVal: (s: RunSeries) => (number | null)[], what: string) {
  return (runs: ChartRun[], o: ChartOptions): Line[] => {
    const out: Line[] = [];
    for (const r of runs) {
      const colour = runColour(r.colour);
      const prefix = runs.length > 1 ? `${r.name} ` : '';
      const x = xOf(r.series, o.axis);
      const y = pick(r.series);
      if (o.smoothing > 0) {
        out.push({ label: `${prefix}train ${what} (raw)`, x, y, colour, faint: true });
        out.push({ label: `${prefix}train ${what}`, x, y: ema(y, o.smoothing), colour });
      } else out.push({ label: `${prefix}train ${what}`, x, y, colour });
      out.push({ label: `${prefix}val ${what}`, x: epochXOf(r.series, o.axis), y: pickVal(r.series), colour, dashed: true, points: true });
    }
    return out;
  };
}

function perRun(parts: { label: string; pick: (s: RunSeries) => ArrayLike<number | null>; dashed?: boolean }[]) {
  return (runs: ChartRun[], o: ChartOptions): Line[] =>
    runs.flatMap((r) =>
      parts.map((p, i) => ({
        label: `${runs.length > 1 ? `${r.name} ` : ''}${p.label}`,
        x: xOf(r.series, o.axis),
        y: p.pick(r.series),
        colour: runs.length > 1 ? runColour(r.colour) : runColour(i),
        ...(p.dashed || (runs.length > 1 && i > 0) ? { dashed: true } : {}),
      })),
    );
}

const fmt3: ValueFormat = (v) => (Math.abs(v) >= 1000 || v === 0 ? v.toFixed(0) : Number(v.toPrecision(3)).toString());

export const CHARTS: ChartDef[] = [
  { id: 'loss', title: 'Loss', lines: trainVal((s) => s.loss, (s) => s.valLoss, 'loss'), log: true },
  { id: 'accuracy', title: 'Accuracy', lines: trainVal((s) => s.accuracy, (s) => s.valAccuracy, 'accuracy') },
  { id: 'lr', title: 'Learning rate', lines: perRun([{ label: 'learning rate', pick: (s) => s.learningRate }]), format: (v) => v.toExponential(2), log: true },
  { id: 'throughput', title: 'Images per second', lines: perRun([{ label: 'images/s', pick: (s) => s.imagesPerSec }]) },
  {
    id: 'step-time',
    title: 'Step time (ms): compute and data wait',
    lines: perRun([
      { label: 'compute ms', pick: (s) => s.computeMs },
      { label: 'data wait ms', pick: (s) => s.dataWaitMs },
    ]),
  },
  {
    id: 'memory',
    title: 'Memory',
    lines: perRun([
      { label: 'tensor bytes', pick: (s) => s.tensorBytes },
      { label: 'GPU used', pick: (s) => s.gpuUsed },
      { label: 'GPU total', pick: (s) => s.gpuTotal, dashed: true },
    ]),
    format: formatBytes,
  },
];

const AXIS_LABEL: Record<XAxis, string> = { step: 'step', epoch: 'epoch', time: 'wall time (s)' };

interface Mounted {
  plot: uPlot;
  signature: string;
}

/** Draws and redraws the charts into one container; measures each full redraw. */
export class Charts {
  private readonly mounted = new Map<string, Mounted>();
  /** Milliseconds the last full redraw (reduce + draw every chart) took. */
  lastRedrawMs = 0;

  constructor(private readonly root: HTMLElement) {}

  /** Forgets every chart (theme change: colours are baked into the uPlot options). */
  reset(): void {
    for (const m of this.mounted.values()) m.plot.destroy();
    this.mounted.clear();
    this.root.replaceChildren();
  }

  draw(runs: ChartRun[], o: ChartOptions): void {
    const t0 = performance.now();
    const cols = this.root.clientWidth >= 1000 ? 2 : 1;
    const width = Math.max(240, Math.floor((this.root.clientWidth - 14 * (cols - 1)) / cols) - 22);
    this.root.dataset['cols'] = String(cols);
    const fg = cssVar('--vscode-editor-foreground', '#cccccc');
    const grid = cssVar('--vscode-editorWidget-border', 'rgba(128,128,128,0.25)');
    for (const def of CHARTS) {
      const lines = def.lines(runs, o).filter((l) => hasValue(l.y));
      const buckets = Math.max(64, width);
      const reduced = lines.map((l) => minMaxDownsample(l.x, l.y, buckets));
      const data = reduced.length ? uPlot.join(reduced.map((r) => [r.x, r.y]) as unknown as uPlot.AlignedData[]) : ([[]] as unknown as uPlot.AlignedData);
      const log = o.logScale && def.log === true;
      const signature = JSON.stringify([lines.map((l) => [l.label, l.colour, l.faint, l.dashed]), log, o.axis, width]);
      const m = this.mounted.get(def.id);
      if (m && m.signature === signature) {
        m.plot.setData(data);
        continue;
      }
      m?.plot.destroy();
      const host = this.host(def);
      host.replaceChildren();
      const plot = new uPlot(
        {
          width,
          height: 220,
          legend: { live: true },
          cursor: { drag: { x: true, y: false } },
          scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
          axes: [
            { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, label: AXIS_LABEL[o.axis], labelSize: 18 },
            { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 64, ...(def.format ? { values: (_u: uPlot, vals: number[]) => vals.map((v) => (v === null ? '' : def.format!(v))) } : {}) },
          ],
          series: [
            { label: AXIS_LABEL[o.axis] },
            ...lines.map((l) => ({
              label: l.label,
              stroke: l.colour,
              ...(l.faint ? { alpha: 0.3 } : {}),
              width: l.faint ? 1 : 1.75,
              spanGaps: true,
              ...(l.dashed ? { dash: [6, 4] } : {}),
              points: { show: l.points === true, size: 6, fill: l.colour },
              value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '–' : (def.format ?? fmt3)(v)),
            })),
          ],
        },
        data,
        host,
      );
      this.mounted.set(def.id, { plot, signature });
    }
    this.lastRedrawMs = performance.now() - t0;
    this.root.dataset['redrawMs'] = this.lastRedrawMs.toFixed(2);
  }

  private host(def: ChartDef): HTMLElement {
    let box = this.root.querySelector<HTMLElement>(`[data-chart="${def.id}"]`);
    if (!box) {
      box = document.createElement('section');
      box.className = 'chart';
      box.dataset['chart'] = def.id;
      box.setAttribute('data-testid', `chart-${def.id}`);
      const h = document.createElement('h3');
      h.textContent = def.title;
      const plotHost = document.createElement('div');
      plotHost.className = 'plot';
      box.append(h, plotHost);
      this.root.append(box);
    }
    return box.querySelector<HTMLElement>('.plot')!;
  }
}

function hasValue(ys: ArrayLike<number | null>): boolean {
  for (let i = 0; i < ys.length; i++) if (ys[i] !== null && ys[i] !== undefined) return true;
  return false;
}
