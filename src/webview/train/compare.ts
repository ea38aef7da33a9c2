/**
 * The Compare panel's tables (browser code), shown when a panel holds two or more runs: the
 * hyper-parameters side by side, the fields that differ highlighted and named first; and per metric
 * each run's last, best (with its epoch or step) and worst value, the best run's value marked.
 */
import { addToStats, bestRun, metricValue, METRICS, MISSING, parameterRows, runParameters, type MetricStats } from '../../core/shared/run-compare';
import type { TrainEvent } from '../../core/shared/protocol';
import { runColour } from './charts';
import { el } from './evaluation-dom';
import css from './compare.css';

const sheet = new CSSStyleSheet();
sheet.replaceSync(css);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];

interface CompareRun {
  id: string;
  name: string;
  colour: number;
  config: Record<string, unknown> | undefined;
  start: TrainEvent | undefined;
  stats: (MetricStats | null)[];
}

const num = (v: number): string => (Math.abs(v) >= 1000 ? v.toFixed(0) : Number(v.toPrecision(4)).toString());

export class CompareSection {
  readonly root = el('section', { class: 'compare', 'data-testid': 'compare' });
  private readonly runs = new Map<string, CompareRun>();
  private dirty = true;

  clear(): void {
    this.runs.clear();
    this.dirty = true;
  }

  /** Colours are read from the theme when drawn: redraw after a theme change. */
  themeChanged(): void {
    this.dirty = true;
  }

  addRun(id: string, name: string, colour: number, config: Record<string, unknown> | undefined): void {
    this.runs.set(id, { id, name, colour, config, start: undefined, stats: METRICS.map(() => null) });
    this.dirty = true;
  }

  rename(id: string, name: string): void {
    const r = this.runs.get(id);
    if (r && r.name !== name) [r.name, this.dirty] = [name, true];
  }

  onEvent(id: string, e: TrainEvent): void {
    const r = this.runs.get(id);
    if (!r) return;
    if (e.type === 'run-start') [r.start, this.dirty] = [e, true];
    METRICS.forEach((m, i) => {
      const x = metricValue(e, m);
      if (x) [r.stats[i], this.dirty] = [addToStats(r.stats[i] ?? null, x, m), true];
    });
  }

  render(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const runs = [...this.runs.values()];
    this.root.hidden = runs.length < 2;
    if (runs.length < 2) return void this.root.replaceChildren();
    this.root.replaceChildren(el('h2', {}, 'Compare'), el('div', { class: 'compare-tables' }, this.params(runs), this.metrics(runs)));
  }

  private head(runs: CompareRun[], first: string): HTMLElement {
    return el(
      'thead',
      {},
      el('tr', {}, el('th', {}, first), ...runs.map((r) => {
        const swatch = el('span', { class: 'swatch' });
        swatch.style.background = runColour(r.colour);
        // The run id under the name: two runs of one config share their name.
        return el('th', { class: 'run-col' }, swatch, el('span', { class: 'run-name' }, r.name), el('div', { class: 'run-id muted' }, r.id));
      })),
    );
  }

  private params(runs: CompareRun[]): HTMLElement {
    const rows = parameterRows(runs.map((r) => runParameters(r.config, r.start ? [r.start] : [])));
    const differing = rows.filter((r) => r.differs);
    const summary = differing.length
      ? `${differing.length} of ${rows.length} differ: ${differing.map((r) => r.key).join(', ')}`
      : `All ${rows.length} are the same.`;
    const body = rows.map((row) =>
      el(
        'tr',
        { class: row.differs ? 'differs' : '', 'data-testid': 'param-row', 'data-key': row.key, ...(row.differs ? { 'data-differs': '' } : {}) },
        el('th', { scope: 'row' }, row.differs ? el('span', { class: 'marker', 'aria-label': 'differs' }, '≠') : null, row.key),
        ...row.values.map((v) => el('td', {}, v)),
      ),
    );
    return el(
      'div',
      { class: 'compare-block' },
      el('h3', {}, 'Hyper-parameters'),
      el('p', { class: 'muted', 'data-testid': 'param-summary' }, summary),
      el('table', { class: 'compare-table', 'data-testid': 'param-table' }, this.head(runs, 'field'), el('tbody', {}, ...body)),
    );
  }

  private metrics(runs: CompareRun[]): HTMLElement {
    const body: HTMLElement[] = [];
    METRICS.forEach((m, i) => {
      const stats = runs.map((r) => r.stats[i] ?? null);
      if (stats.every((s) => s === null)) return;
      const where = m.per === 'epoch' ? 'epoch' : 'step';
      const lines: [string, string, (s: MetricStats) => number, (s: MetricStats) => string][] = [
        ['last', 'last', (s) => s.last, (s) => num(s.last)],
        ['best', `best (${m.higherIsBetter ? 'max' : 'min'})`, (s) => s.best, (s) => `${num(s.best)} (${where} ${s.bestAt})`],
        ['worst', m.higherIsBetter ? 'min' : 'max', (s) => s.worst, (s) => num(s.worst)],
      ];
      lines.forEach(([stat, label, value, show], j) => {
        const winner = stat === 'worst' ? -1 : bestRun(stats.map((s) => (s ? value(s) : null)), m.higherIsBetter);
        body.push(
          el(
            'tr',
            { 'data-testid': 'metric-row', 'data-metric': m.id, 'data-stat': stat, class: j === 0 ? 'group-start' : '' },
            el('th', { scope: 'row' }, j === 0 ? m.label : ''),
            el('td', { class: 'muted stat' }, label),
            ...stats.map((s, k) => el('td', { class: k === winner ? 'winner' : '' }, s ? show(s) : MISSING)),
          ),
        );
      });
    });
    const head = this.head(runs, 'metric');
    head.firstElementChild!.insertBefore(el('th', {}, ''), head.firstElementChild!.children[1] ?? null);
    return el(
      'div',
      { class: 'compare-block' },
      el('h3', {}, 'Metrics'),
      el('p', { class: 'muted' }, 'Per epoch (images/s per step); the best run of each row in bold.'),
      el('table', { class: 'compare-table', 'data-testid': 'metric-table' }, head, el('tbody', {}, ...body)),
    );
  }
}
