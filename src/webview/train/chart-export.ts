/**
 * "Save as PNG" on each chart (browser code): the chart's uPlot canvas (lines, axes, ticks) drawn
 * onto a new canvas with the theme's background, the chart's title above and its legend below
 * (colour and label of each line), so the picture reads on its own; sent to the host as a PNG data
 * URL, which asks where to save it.
 */
import { el } from './evaluation-dom';

/** The chart box (`section.chart` from charts.ts) as one PNG data URL; null before it is drawn. */
export function chartPng(box: HTMLElement): string | null {
  const plot = box.querySelector<HTMLCanvasElement>('.plot canvas');
  if (!plot || !plot.width || !plot.height) return null;
  const scale = plot.width / Math.max(1, plot.clientWidth || plot.width);
  const style = getComputedStyle(document.body);
  const fg = style.getPropertyValue('--vscode-editor-foreground').trim() || style.color || '#333';
  const bg = style.getPropertyValue('--vscode-editor-background').trim() || style.backgroundColor || '#fff';
  const family = style.fontFamily || 'sans-serif';
  const pad = Math.round(12 * scale);
  const titleH = Math.round(26 * scale);
  const legend = [...box.querySelectorAll<HTMLElement>('.u-legend .u-series')].slice(1).map((s) => ({
    label: s.querySelector('.u-label')?.textContent?.trim() ?? '',
    colour: getComputedStyle(s.querySelector('.u-marker') ?? s).borderColor || fg,
  }));

  // Legend entries flow left to right, wrapping at the canvas width.
  const probe = document.createElement('canvas').getContext('2d')!;
  const fontPx = Math.round(12 * scale);
  probe.font = `${fontPx}px ${family}`;
  const rowH = Math.round(18 * scale);
  const swatch = Math.round(10 * scale);
  const width = plot.width + 2 * pad;
  let x = pad;
  let rows = legend.length ? 1 : 0;
  const placed = legend.map((l) => {
    const w = swatch + 6 * scale + probe.measureText(l.label).width + 18 * scale;
    if (x + w > width - pad && x > pad) [x, rows] = [pad, rows + 1];
    const at = { ...l, x, row: rows - 1 };
    x += w;
    return at;
  });

  const out = document.createElement('canvas');
  out.width = width;
  out.height = titleH + plot.height + rows * rowH + 2 * pad;
  const ctx = out.getContext('2d')!;
  ctx.fillStyle = bg;
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.fillStyle = fg;
  ctx.textBaseline = 'middle';
  ctx.font = `600 ${Math.round(14 * scale)}px ${family}`;
  ctx.fillText(box.querySelector('h3')?.textContent?.trim() ?? '', pad, pad + titleH / 2);
  ctx.drawImage(plot, pad, pad + titleH);
  ctx.font = `${fontPx}px ${family}`;
  const legendTop = pad + titleH + plot.height;
  for (const l of placed) {
    const y = legendTop + l.row * rowH + rowH / 2;
    ctx.fillStyle = l.colour;
    ctx.fillRect(l.x, y - swatch / 2, swatch, swatch);
    ctx.fillStyle = fg;
    ctx.fillText(l.label, l.x + swatch + 6 * scale, y);
  }
  return out.toDataURL('image/png');
}

/** Adds a "Save PNG" button to every chart box that has none (charts.ts rebuilds boxes on a theme change). */
export function addExportButtons(root: HTMLElement, onExport: (chart: string, dataUrl: string) => void): void {
  for (const box of root.querySelectorAll<HTMLElement>('section.chart')) {
    if (box.querySelector('.chart-export')) continue;
    const chart = box.dataset['chart'] ?? 'chart';
    const b = el('button', { class: 'chart-export', title: 'Save this chart as a PNG image', 'aria-label': `Save the ${chart} chart as PNG`, 'data-testid': `export-png-${chart}` }, 'Save PNG');
    b.addEventListener('click', () => {
      const url = chartPng(box);
      if (url) onExport(chart, url);
    });
    box.prepend(b);
  }
}
