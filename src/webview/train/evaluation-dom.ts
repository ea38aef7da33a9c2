/**
 * The evaluation section's pieces (browser code): the confusion matrix as a heat map, the
 * per-class table, and image thumbnails. Colours come from the theme: the heat is the button
 * colour mixed into the card background, counts switch to the button's foreground on dark cells,
 * so the pair VS Code keeps readable in every theme (light, dark, high contrast) is the one used.
 */
import type { ClassFigures, EvaluationResult } from '../../core/shared/evaluation';

type Child = Node | string | null | undefined | false;
export function el(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

export const pct = (v: number | null): string => (v === null ? '–' : `${(v * 100).toFixed(1)}%`);

/** The last path segment (for captions and alt text). */
export function fileName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

/** Heat of a cell: its share of its row (the true class), 0–1. */
function heat(count: number, rowTotal: number): number {
  return rowTotal > 0 ? count / rowTotal : 0;
}

/** The matrix: rows true class, columns predicted; each cell a button showing its count. */
export function matrixGrid(r: EvaluationResult, selected: { t: number; p: number } | undefined, onCell: (t: number, p: number) => void): HTMLElement {
  const k = r.classes.length;
  const grid = el('div', { class: 'cm', role: 'grid', 'data-testid': 'confusion-matrix', 'aria-label': 'Confusion matrix: rows are the true class, columns the predicted class' });
  grid.style.gridTemplateColumns = `auto auto repeat(${k}, minmax(2.8em, 4.5em))`;
  const axisTop = el('div', { class: 'cm-axis cm-axis-x' }, 'predicted');
  axisTop.style.gridColumn = `3 / span ${k}`;
  grid.append(el('div', {}), el('div', {}), axisTop, el('div', {}), el('div', {}));
  for (const c of r.classes) grid.append(el('div', { class: 'cm-label cm-col', title: c }, c));
  r.confusionMatrix.forEach((row, t) => {
    if (t === 0) {
      const axisLeft = el('div', { class: 'cm-axis cm-axis-y' }, 'true');
      axisLeft.style.gridRow = `3 / span ${k}`;
      grid.append(axisLeft);
    }
    grid.append(el('div', { class: 'cm-label cm-row', title: r.classes[t] ?? '' }, r.classes[t] ?? ''));
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((n, p) => grid.append(matrixCell(r, t, p, n, heat(n, total), selected, onCell)));
  });
  return grid;
}

function matrixCell(r: EvaluationResult, t: number, p: number, n: number, h: number, selected: { t: number; p: number } | undefined, onCell: (t: number, p: number) => void): HTMLElement {
  const label = `true ${r.classes[t]}, predicted ${r.classes[p]}: ${n} image${n === 1 ? '' : 's'}`;
  const cell = el('button', { class: `cm-cell${t === p ? ' cm-diag' : ''}`, 'data-testid': 'cm-cell', 'data-true': String(t), 'data-predicted': String(p), 'data-count': String(n), title: label, 'aria-label': label }, String(n));
  const share = Math.round(h * 85);
  cell.style.background = `color-mix(in srgb, var(--heat) ${share}%, var(--cell-bg))`;
  cell.style.color = share >= 45 ? 'var(--heat-fg)' : 'var(--vscode-foreground)';
  if (selected && selected.t === t && selected.p === p) cell.classList.add('selected');
  if (n === 0) cell.setAttribute('disabled', '');
  cell.addEventListener('click', () => onCell(t, p));
  return cell;
}

export function perClassTable(figures: readonly ClassFigures[]): HTMLElement {
  const head = el('tr', {}, el('th', {}, 'class'), el('th', {}, 'precision'), el('th', {}, 'recall'), el('th', {}, 'support'));
  const rows = figures.map((f) => el('tr', {}, el('td', {}, f.class), el('td', {}, pct(f.precision)), el('td', {}, pct(f.recall)), el('td', {}, String(f.support))));
  return el('table', { class: 'per-class', 'data-testid': 'per-class' }, el('thead', {}, head), el('tbody', {}, ...rows));
}

/** A clickable thumbnail (the file name until its webview URI arrives); `caption` lines under it. */
export function thumbnail(path: string, uri: string | undefined, caption: string[], onOpen: (path: string) => void): HTMLElement {
  const img = uri ? el('img', { src: uri, alt: fileName(path), 'data-path': path }) : el('span', { class: 'thumb-placeholder', 'data-path': path }, fileName(path));
  const button = el('button', { class: 'thumb', title: `${path} (click to open)`, 'data-testid': 'thumbnail', 'data-path': path }, img);
  button.addEventListener('click', () => onOpen(path));
  return el('figure', { class: 'thumb-box' }, button, ...caption.map((c, i) => el('figcaption', { class: i === 0 ? '' : 'muted' }, c)));
}
