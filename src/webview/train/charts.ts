/**
 * The training panel's charts (uPlot, chosen by bench/chart-redraw.ts: 1.5 ms vs Chart.js's 7.4 ms
 * per redraw of 2 × 100k points downsampled, 8.5 ms vs 40.6 ms raw). Every point is kept in the
 * run's series; each redraw reduces each line to two points per pixel column (min/max), so a
 * redraw costs the same at 1k or 100k points. What each chart draws is in chart-defs.ts; colours
 * come from the --vscode-* theme variables and are read again when the theme changes.
 *
 * Read at a glance: a y-axis title with its unit, whole-number step ticks, legend markers filled
 * with each line's colour, and legend values that show each line's latest point until the pointer
 * hovers a step.
 */
import uPlot from 'uplot';
import { formatCount } from '../../core/shared/format';
import { AXIS_LABEL, CHARTS, latestValue, type ChartDef, type ChartOptions, type ChartRun, type Line, type Palette } from './chart-defs';
import { minMaxDownsample } from './downsample';
import { withAlpha } from '../shared/colour';
import { integerTicks, logByteRange, logByteTicks } from './ticks';

export type { ChartOptions, ChartRun } from './chart-defs';

const PALETTE = ['--vscode-charts-blue', '--vscode-charts-orange', '--vscode-charts-green', '--vscode-charts-purple', '--vscode-charts-red', '--vscode-charts-yellow'];
const FALLBACK = ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#cca700'];

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

/** A run's (or a line's) theme colour, opaque: some themes give --vscode-charts-* an alpha, which would draw lines faint. */
export function runColour(i: number): string {
  return withAlpha(cssVar(PALETTE[i % PALETTE.length]!, FALLBACK[i % FALLBACK.length]!), 1);
}

function readPalette(): Palette {
  const c = (i: number): string => runColour(i);
  return { blue: c(0), orange: c(1), green: c(2), purple: c(3), red: c(4), yellow: c(5), neutral: withAlpha(cssVar('--vscode-charts-foreground', cssVar('--vscode-foreground', '#cccccc')), 1), run: c };
}

/** A series' stroke colour (uPlot keeps it as a function once the plot is made). */
function seriesColour(u: uPlot, i: number): string {
  const stroke = u.series[i]?.stroke as unknown;
  return typeof stroke === 'function' ? String((stroke as (u: uPlot, i: number) => unknown)(u, i)) : typeof stroke === 'string' ? stroke : '';
}

interface Mounted {
  plot: uPlot;
  signature: string;
  /** Each series' latest value (index 0: the x axis), shown in the legend while the pointer is elsewhere. */
  latest: (number | null)[];
  /** The step axis's ticks at the last draw (written to the chart's data-x-ticks for tests). */
  xTicks?: number[];
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
    const palette = readPalette();
    for (const def of CHARTS) {
      const lines = def.lines(runs, o, palette).filter((l) => latestValue(l.y) !== null);
      const buckets = Math.max(64, width);
      const reduced = lines.map((l) => minMaxDownsample(l.x, l.y, buckets));
      const data = reduced.length ? uPlot.join(reduced.map((r) => [r.x, r.y]) as unknown as uPlot.AlignedData[]) : ([[]] as unknown as uPlot.AlignedData);
      const latestX = lines.reduce<number | null>((m, l) => Math.max(m ?? -Infinity, latestValue(l.x) ?? -Infinity), null);
      const latest = [latestX !== null && Number.isFinite(latestX) ? latestX : null, ...lines.map((l) => latestValue(l.y))];
      const log = def.log === 'bytes' || (def.log === 'option' && o.logScale);
      const signature = JSON.stringify([lines.map((l) => [l.label, l.colour, l.width, l.dash, l.points]), log, o.axis, width]);
      const m = this.mounted.get(def.id);
      if (m && m.signature === signature) {
        m.latest = latest;
        m.plot.setData(data);
        continue;
      }
      m?.plot.destroy();
      const host = this.host(def);
      const box = host.parentElement!;
      host.replaceChildren();
      const mounted: Mounted = { plot: undefined as unknown as uPlot, signature, latest };
      const plot = new uPlot(plotOptions({ def, lines, o, width, log, fg, grid, mounted, box }), data, host);
      mounted.plot = plot;
      host.setAttribute('aria-label', `${def.title}: ${def.yLabel} by ${AXIS_LABEL[o.axis]}`);
      this.mounted.set(def.id, mounted);
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
      // The y axis's title with its unit, as text above the axis (read without tilting the head).
      const yTitle = document.createElement('div');
      yTitle.className = 'y-title';
      yTitle.setAttribute('data-testid', 'y-title');
      yTitle.textContent = def.yLabel;
      const plotHost = document.createElement('div');
      plotHost.className = 'plot';
      plotHost.setAttribute('role', 'img');
      box.append(h, yTitle, plotHost);
      this.root.append(box);
    }
    return box.querySelector<HTMLElement>('.plot')!;
  }
}

/** A chart's uPlot options: axes with their titles and ticks, one series per line, legend values at the latest point until hovered. */
function plotOptions(a: { def: ChartDef; lines: Line[]; o: ChartOptions; width: number; log: boolean; fg: string; grid: string; mounted: Mounted; box: HTMLElement }): uPlot.Options {
  const { def, lines, o, width, log, fg, grid, mounted, box } = a;
  const legendValue = (fmt: (v: number) => string) => (_u: uPlot, v: number | null, sidx: number, idx: number | null) => {
    // The pointer is off the chart: the line's latest point; on it: the value at that step ('–' where the line has none).
    const shown = idx === null || idx === undefined ? mounted.latest[sidx] : v;
    return shown === null || shown === undefined ? '–' : fmt(shown);
  };
  const xFormat = (v: number): string => (o.axis === 'step' ? formatCount(Math.round(v)) : Number(v.toPrecision(4)).toString());
  const axisFont = `12px ${cssVar('--vscode-font-family', 'sans-serif')}`;
  return {
    width,
    height: 230,
    // Markers filled with the line's colour (uPlot fills them with the series' area fill: none, so hollow).
    legend: { live: true, markers: { width: 2, fill: seriesColour, dash: (u: uPlot, i: number) => (u.series[i]?.dash ? 'dashed' : 'solid') } },
    cursor: { drag: { x: true, y: false } },
    hooks: { draw: [() => (box.dataset['xTicks'] = mounted.xTicks?.join(',') ?? '')] },
    scales: {
      x: { time: false },
      y: def.log === 'bytes' ? { distr: 3, log: 2, range: (_u, min, max) => logByteRange(min, max) } : log ? { distr: 3 } : {},
    },
    axes: [
      {
        stroke: fg,
        grid: { stroke: grid, width: 1 },
        ticks: { stroke: grid },
        label: AXIS_LABEL[o.axis],
        labelSize: 20,
        labelFont: axisFont,
        font: axisFont,
        ...(o.axis === 'step' ? { splits: (_u: uPlot, _i: number, min: number, max: number) => (mounted.xTicks = integerTicks(min, max, Math.max(2, Math.floor(width / 90)))) } : {}),
        values: (_u: uPlot, vals: number[]) => vals.map((v) => (v === null ? '' : xFormat(v))),
      },
      {
        stroke: fg,
        grid: { stroke: grid, width: 1 },
        ticks: { stroke: grid },
        size: def.log === 'bytes' ? 78 : 64,
        font: axisFont,
        // Every power-of-two tick labelled (uPlot's log axes label only 1, 2, 5 × 10^k by default).
        ...(def.log === 'bytes' ? { splits: (_u: uPlot, _i: number, min: number, max: number) => logByteTicks(min, max, 6), filter: (_u: uPlot, splits: number[]) => splits } : {}),
        values: (_u: uPlot, vals: number[]) => vals.map((v) => (v === null ? '' : def.format(v))),
      },
    ],
    series: [
      { label: AXIS_LABEL[o.axis], value: legendValue(xFormat) },
      ...lines.map((l) => ({
        label: l.label,
        stroke: l.colour,
        width: l.width,
        spanGaps: true,
        ...(l.dash ? { dash: l.dash } : {}),
        points: l.points ? { show: true, size: 9, width: 2, stroke: l.colour, fill: l.colour } : { show: false },
        value: legendValue(def.legend ?? def.format),
      })),
    ],
  };
}
