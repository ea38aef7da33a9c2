/**
 * Chart.js charts for the Suggest panel, tree-shaken (only the pieces used are registered).
 * Canvas cannot use CSS variables, so colours are read from the `--vscode-*` variables with
 * getComputedStyle, and every chart is rebuilt when the theme changes (VS Code swaps the body's
 * `vscode-light` / `vscode-dark` / `vscode-high-contrast` class).
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LogarithmicScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
} from 'chart.js';
import { formatBytes, formatCount } from '../../core/shared/format';
import type { DatasetReport, HistogramBin } from '../../core/shared/dataset-types';
import type { ObjectiveReport } from '../../core/shared/probe';
import type { MemoryEstimate } from '../../core/shared/report';
import { withAlpha } from '../shared/colour';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LogarithmicScale, LineController, LineElement, PointElement, Tooltip, Legend);

interface Theme {
  fg: string;
  muted: string;
  grid: string;
  font: string;
  fontSize: number;
  blue: string;
  green: string;
  red: string;
  yellow: string;
  purple: string;
  orange: string;
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

export function readTheme(): Theme {
  const dark = !document.body.classList.contains('vscode-light');
  return {
    fg: cssVar('--vscode-foreground', dark ? '#cccccc' : '#3b3b3b'),
    muted: cssVar('--vscode-descriptionForeground', dark ? '#9d9d9d' : '#717171'),
    grid: cssVar('--vscode-editorWidget-border', cssVar('--vscode-panel-border', dark ? '#454545' : '#e5e5e5')),
    font: cssVar('--vscode-font-family', 'sans-serif'),
    fontSize: parseFloat(cssVar('--vscode-font-size', '13')) || 13,
    blue: cssVar('--vscode-charts-blue', '#3794ff'),
    green: cssVar('--vscode-charts-green', '#89d185'),
    red: cssVar('--vscode-charts-red', '#f14c4c'),
    yellow: cssVar('--vscode-charts-yellow', '#cca700'),
    purple: cssVar('--vscode-charts-purple', '#b180d7'),
    orange: cssVar('--vscode-charts-orange', '#d18616'),
  };
}

type Builder = (t: Theme) => ChartConfiguration;
const live = new Map<HTMLCanvasElement, { chart: Chart; build: Builder }>();

function baseOptions(t: Theme) {
  Chart.defaults.color = t.fg;
  Chart.defaults.borderColor = t.grid;
  Chart.defaults.font.family = t.font;
  Chart.defaults.font.size = Math.max(11, t.fontSize - 1);
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false as const,
    plugins: {
      legend: { display: false, labels: { color: t.fg, boxWidth: 12, boxHeight: 12 } },
      tooltip: { backgroundColor: withAlpha(t.fg, 0.92), titleColor: cssVar('--vscode-editor-background', '#1f1f1f'), bodyColor: cssVar('--vscode-editor-background', '#1f1f1f'), displayColors: false },
    },
  };
}

function mount(canvas: HTMLCanvasElement, build: Builder): void {
  live.get(canvas)?.chart.destroy();
  const chart = new Chart(canvas, build(readTheme()));
  live.set(canvas, { chart, build });
}

export function destroyCharts(): void {
  for (const { chart } of live.values()) chart.destroy();
  live.clear();
}

function redrawAll(): void {
  const t = readTheme();
  for (const [canvas, entry] of live) {
    if (!canvas.isConnected) {
      entry.chart.destroy();
      live.delete(canvas);
      continue;
    }
    entry.chart.destroy();
    entry.chart = new Chart(canvas, entry.build(t));
  }
}

/** Redraws every chart when VS Code switches theme (it changes the body's class). */
export function watchTheme(): void {
  let last = document.body.className;
  new MutationObserver(() => {
    if (document.body.className === last) return;
    last = document.body.className;
    requestAnimationFrame(redrawAll);
  }).observe(document.body, { attributes: true, attributeFilter: ['class'] });
}

export function renderClassChart(canvas: HTMLCanvasElement, d: DatasetReport): void {
  // Many classes: keep the 40 largest readable; the rest are summed in one bar.
  const sorted = [...d.classes];
  let labels = sorted.map((c) => c.name);
  let data = sorted.map((c) => c.count);
  if (sorted.length > 40) {
    const top = [...sorted].sort((a, b) => b.count - a.count).slice(0, 39);
    const rest = sorted.length - 39;
    labels = [...top.map((c) => c.name), `${rest} others`];
    data = [...top.map((c) => c.count), sorted.reduce((a, c) => a + c.count, 0) - top.reduce((a, c) => a + c.count, 0)];
  }
  mount(canvas, (t) => ({
    type: 'bar',
    data: { labels, datasets: [{ label: 'Images', data, backgroundColor: withAlpha(t.blue, 0.75), hoverBackgroundColor: t.blue, borderRadius: 3, maxBarThickness: 36 }] },
    options: {
      ...baseOptions(t),
      scales: {
        x: { grid: { display: false }, ticks: { color: t.muted, autoSkip: true, maxRotation: 0 } },
        y: { beginAtZero: true, grid: { color: withAlpha(t.grid, 0.6) }, border: { display: false }, ticks: { color: t.muted, precision: 0, callback: (v) => formatCount(Number(v)) } },
      },
    },
  }));
}

function binLabel(b: HistogramBin): string {
  return b.to - b.from <= 1 ? String(b.from) : `${b.from}–${b.to}`;
}

export function renderSizeChart(canvas: HTMLCanvasElement, d: DatasetReport): void {
  const w = d.widthHistogram;
  const hgt = d.heightHistogram;
  const sameBins = w.length === hgt.length && w.every((b, i) => b.from === hgt[i]!.from && b.to === hgt[i]!.to);
  mount(canvas, (t) => {
    const datasets = sameBins
      ? [
          { label: 'Width', data: w.map((b) => b.count), backgroundColor: withAlpha(t.purple, 0.75), borderRadius: 3, maxBarThickness: 28 },
          { label: 'Height', data: hgt.map((b) => b.count), backgroundColor: withAlpha(t.orange, 0.75), borderRadius: 3, maxBarThickness: 28 },
        ]
      : [{ label: 'Width', data: w.map((b) => b.count), backgroundColor: withAlpha(t.purple, 0.75), borderRadius: 3, maxBarThickness: 28 }];
    const base = baseOptions(t);
    return {
      type: 'bar',
      data: { labels: w.map(binLabel), datasets },
      options: {
        ...base,
        plugins: { ...base.plugins, legend: { ...base.plugins.legend, display: true, position: 'top', align: 'end' } },
        scales: {
          x: { grid: { display: false }, ticks: { color: t.muted, maxRotation: 0, autoSkip: true } },
          y: { beginAtZero: true, grid: { color: withAlpha(t.grid, 0.6) }, border: { display: false }, ticks: { color: t.muted, precision: 0, callback: (v) => formatCount(Number(v)) } },
        },
      },
    };
  });
}

function powersOf4(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let v = 1; v <= hi; v *= 4) if (v >= lo) out.push(v);
  return out;
}

export function renderMemoryChart(canvas: HTMLCanvasElement, m: MemoryEstimate, recommended: number): void {
  const rows = m.table;
  const values = [...rows.map((r) => r.bytes), m.budgetBytes].filter((v) => v > 0);
  // Axis bounds snapped to powers of 4 around the data.
  const lo = 4 ** Math.floor(Math.log(Math.min(...values)) / Math.log(4));
  const hi = 4 ** Math.ceil(Math.log(Math.max(...values) * 1.05) / Math.log(4));
  mount(canvas, (t) => {
    const base = baseOptions(t);
    return {
      type: 'bar',
      data: {
        labels: rows.map((r) => String(r.batchSize)),
        datasets: [
          {
            type: 'line',
            label: 'Budget',
            data: rows.map(() => m.budgetBytes),
            borderColor: t.yellow,
            borderWidth: 2,
            borderDash: [6, 4],
            pointRadius: 0,
            pointHoverRadius: 0,
            fill: false,
            order: 0,
          },
          {
            type: 'bar',
            label: 'Predicted memory',
            data: rows.map((r) => r.bytes),
            backgroundColor: rows.map((r) => (r.batchSize === recommended ? t.blue : r.fits ? withAlpha(t.green, 0.6) : withAlpha(t.red, 0.55))),
            borderRadius: 3,
            maxBarThickness: 40,
            order: 1,
          },
        ],
      },
      options: {
        ...base,
        plugins: {
          ...base.plugins,
          tooltip: {
            ...base.plugins.tooltip,
            callbacks: {
              title: (items) => `Batch size ${items[0]?.label ?? ''}`,
              label: (item) => (item.dataset.type === 'line' ? `Budget ${formatBytes(m.budgetBytes)}` : `${formatBytes(Number(item.raw))}${rows[item.dataIndex]?.fits ? ' — fits' : ' — does not fit'}`),
            },
          },
        },
        scales: {
          x: { title: { display: true, text: 'Batch size', color: t.muted }, grid: { display: false }, ticks: { color: t.muted, maxRotation: 0 } },
          // Logarithmic: the rows span orders of magnitude (batch 1 … past the budget). Ticks at
          // powers of 4 bytes (1 MiB, 4 MiB, 16 MiB, …) read cleanly.
          y: {
            type: 'logarithmic',
            min: lo,
            max: hi,
            grid: { color: withAlpha(t.grid, 0.6) },
            border: { display: false },
            afterBuildTicks: (axis) => {
              axis.ticks = powersOf4(lo, hi).map((value) => ({ value }));
            },
            ticks: { color: t.muted, callback: (v) => formatBytes(Number(v)) },
          },
        },
      },
    };
  });
}

/** One probe trial as the chart needs it. */
export interface ProbePoint {
  batchSize: number;
  /** Null for a batch only timed (throughput), not a memory trial. */
  predictedBytes: number | null;
  measuredBytes: number | null;
  imagesPerSec: number | null;
  ok: boolean;
}

/**
 * The probe: predicted vs measured memory per batch size tried (left axis) and the measured
 * throughput (right axis), with the plan's batch highlighted.
 */
export function renderProbeChart(canvas: HTMLCanvasElement, points: ProbePoint[], chosen: number): void {
  const rows = [...points].sort((a, b) => a.batchSize - b.batchSize);
  mount(canvas, (t) => {
    const base = baseOptions(t);
    return {
      type: 'line',
      data: {
        labels: rows.map((r) => String(r.batchSize)),
        datasets: [
          { label: 'Predicted memory', data: rows.map((r) => r.predictedBytes), borderColor: t.muted, borderDash: [4, 4], pointRadius: 2, spanGaps: true, yAxisID: 'y', order: 2 },
          {
            label: 'Measured peak',
            data: rows.map((r) => r.measuredBytes),
            borderColor: t.green,
            showLine: false,
            pointRadius: rows.map((r) => (r.batchSize === chosen ? 7 : 5)),
            pointBackgroundColor: rows.map((r) => (r.batchSize === chosen ? t.blue : r.ok ? t.green : t.red)),
            yAxisID: 'y',
            order: 1,
          },
          { label: 'Images/s', data: rows.map((r) => r.imagesPerSec), borderColor: t.purple, pointRadius: rows.map((r) => (r.batchSize === chosen ? 6 : 3)), spanGaps: true, yAxisID: 'y1', order: 0 },
        ],
      },
      options: {
        ...base,
        plugins: {
          ...base.plugins,
          legend: { ...base.plugins.legend, display: true, position: 'bottom' },
          tooltip: {
            ...base.plugins.tooltip,
            callbacks: {
              title: (items) => `Batch size ${items[0]?.label ?? ''}${Number(items[0]?.label) === chosen ? ' (the plan)' : ''}`,
              label: (item) => (item.dataset.yAxisID === 'y1' ? `${Number(item.raw).toFixed(1)} images/s` : `${item.dataset.label ?? ''}: ${formatBytes(Number(item.raw))}`),
            },
          },
        },
        scales: {
          x: { title: { display: true, text: 'Batch size', color: t.muted }, grid: { display: false }, ticks: { color: t.muted } },
          y: { position: 'left', grid: { color: withAlpha(t.grid, 0.6) }, ticks: { color: t.muted, callback: (v) => formatBytes(Number(v)) } },
          y1: { position: 'right', grid: { display: false }, ticks: { color: t.purple, callback: (v) => `${formatCount(Number(v))}/s` } },
        },
      },
    };
  });
}

/**
 * The time-to-target objective: predicted wall time to the same loss per batch size, relative to
 * the chosen batch ((B + B_noise) / images per second, McCandlish et al. 2018), the chosen one marked.
 */
export function renderObjectiveChart(canvas: HTMLCanvasElement, o: ObjectiveReport): void {
  const rows = [...o.rows].sort((a, b) => a.batchSize - b.batchSize);
  mount(canvas, (t) => {
    const base = baseOptions(t);
    return {
      type: 'bar',
      data: {
        labels: rows.map((r) => formatCount(r.batchSize)),
        datasets: [
          {
            label: 'Predicted time to the target (× the chosen batch)',
            data: rows.map((r) => r.relativeTime),
            backgroundColor: rows.map((r) => (r.batchSize === o.chosen ? t.blue : withAlpha(t.muted, 0.55))),
            borderColor: rows.map((r) => (r.batchSize === o.chosen ? t.blue : t.muted)),
            borderWidth: 1,
          },
        ],
      },
      options: {
        ...base,
        plugins: {
          ...base.plugins,
          legend: { display: false },
          tooltip: {
            ...base.plugins.tooltip,
            callbacks: {
              title: (items) => `Batch size ${items[0]?.label ?? ''}${rows[items[0]?.dataIndex ?? -1]?.batchSize === o.chosen ? ' (the plan)' : ''}`,
              label: (item) => {
                const r = rows[item.dataIndex]!;
                return [`${r.relativeTime.toFixed(2)}× the chosen batch's time`, `${r.imagesPerSec.toFixed(1)} images/s${r.measured ? ' measured' : ' (interpolated)'}`];
              },
            },
          },
        },
        scales: {
          x: { title: { display: true, text: 'Batch size', color: t.muted }, grid: { display: false }, ticks: { color: t.muted } },
          y: { beginAtZero: true, title: { display: true, text: 'Time to target (× chosen)', color: t.muted }, grid: { color: withAlpha(t.grid, 0.6) }, ticks: { color: t.muted, callback: (v) => `${Number(v).toFixed(1)}×` } },
        },
      },
    };
  });
}
