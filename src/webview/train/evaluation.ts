/**
 * The training panel's evaluation section (browser code): for each run with an `evaluation` event
 * (the end of a run, or its evaluation.json replayed from metrics.jsonl) the accuracy and loss,
 * per-class precision and recall, the confusion matrix as a heat map — a click on a cell lists that
 * cell's images — and a gallery of the most confidently wrong images. Thumbnails load through the
 * webview URIs the host gives for the paths the evaluation lists; a click opens the file.
 */
import type { EvaluationResult } from '../../core/shared/evaluation';
import type { TrainEvent } from '../../core/shared/protocol';
import type { ThumbnailsMessage, TrainWebviewToHost } from '../../core/shared/train-webview-protocol';
import { el, fileName, matrixGrid, pct, perClassTable, thumbnail } from './evaluation-dom';
import css from './evaluation.css';

const sheet = new CSSStyleSheet();
sheet.replaceSync(css);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];

/** Thumbnails of a cell shown at once. */
const CELL_SHOWN = 60;
const GALLERY_SHOWN = 24;

interface RunEvaluation {
  name: string;
  result: EvaluationResult;
}

export class EvaluationSection {
  readonly root = el('section', { class: 'evaluation', 'data-testid': 'evaluation' });
  private readonly results = new Map<string, RunEvaluation>();
  private readonly uris = new Map<string, string>();
  private readonly requested = new Set<string>();
  private selected: { runId: string; t: number; p: number } | undefined;
  private dirty = true;

  constructor(private readonly post: (m: TrainWebviewToHost) => void) {}

  /** Forgets the results before a replay; the selected cell stays selected if its run is replayed. */
  clear(): void {
    this.results.clear();
    this.dirty = true;
  }

  onEvent(runId: string, name: string, e: TrainEvent): void {
    if (e.type !== 'evaluation') return;
    this.results.set(runId, { name, result: e.result });
    this.dirty = true;
  }

  onThumbnails(m: ThumbnailsMessage): void {
    for (const [path, uri] of Object.entries(m.uris)) this.uris.set(path, uri);
    this.dirty = true;
  }

  /** Rebuilds the section when something changed (not on every chart frame). */
  render(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const blocks = [...this.results].map(([id, r]) => this.runBlock(id, r));
    this.root.replaceChildren(...(blocks.length ? [el('h2', {}, 'Evaluation'), ...blocks] : []));
    this.root.hidden = blocks.length === 0;
  }

  private runBlock(runId: string, { name, result: r }: RunEvaluation): HTMLElement {
    const many = this.results.size > 1;
    const selected = this.selected?.runId === runId ? this.selected : undefined;
    const facts = el(
      'div',
      { class: 'facts eval-facts' },
      fact('Accuracy', pct(r.accuracy), 'eval-accuracy'),
      fact('Loss', r.loss.toFixed(4), 'eval-loss'),
      fact('Images', r.images.toLocaleString('en-US'), 'eval-images'),
      fact('Evaluated on', r.source ?? 'validation split', 'eval-source'),
    );
    const matrix = el('div', {}, el('h3', {}, 'Confusion matrix'), matrixGrid(r, selected, (t, p) => this.select(runId, t, p)));
    const table = el('div', {}, el('h3', {}, 'Per class'), perClassTable(r.perClass));
    return el(
      'div',
      { class: 'eval-run', 'data-testid': 'eval-run', 'data-run-id': runId },
      many ? el('h3', {}, name) : null,
      facts,
      el('div', { class: 'eval-top' }, matrix, table),
      selected ? this.cellImages(runId, r, selected) : null,
      this.gallery(runId, r),
    );
  }

  private select(runId: string, t: number, p: number): void {
    const same = this.selected?.runId === runId && this.selected.t === t && this.selected.p === p;
    this.selected = same ? undefined : { runId, t, p };
    this.dirty = true;
    this.render();
  }

  private cellImages(runId: string, r: EvaluationResult, s: { t: number; p: number }): HTMLElement {
    const paths = r.cells?.[s.t]?.[s.p] ?? [];
    const count = r.confusionMatrix[s.t]?.[s.p] ?? 0;
    const shown = paths.slice(0, CELL_SHOWN);
    const title = `True ${r.classes[s.t]}, predicted ${r.classes[s.p]}: ${count} image${count === 1 ? '' : 's'}${shown.length < count ? ` (first ${shown.length} shown)` : ''}`;
    this.want(runId, shown);
    const thumbs = shown.map((path) => thumbnail(path, this.uris.get(path), [fileName(path)], (x) => this.open(runId, x)));
    return el('div', { class: 'cell-images', 'data-testid': 'cell-images' }, el('h3', {}, title), el('div', { class: 'thumbs' }, ...thumbs));
  }

  private gallery(runId: string, r: EvaluationResult): HTMLElement {
    const wrong = r.wrong.slice(0, GALLERY_SHOWN);
    this.want(runId, wrong.map((w) => w.path));
    const items = wrong.map((w) => thumbnail(w.path, this.uris.get(w.path), [`${w.true} → ${w.predicted}`, pct(w.confidence)], (x) => this.open(runId, x)));
    const title = wrong.length ? `Most confidently wrong (${wrong.length} of ${r.images - Math.round(r.accuracy * r.images)} wrong)` : 'No wrong predictions';
    return el('div', { class: 'wrong', 'data-testid': 'wrong-gallery' }, el('h3', {}, title), el('div', { class: 'thumbs' }, ...items));
  }

  /** Asks the host for the webview URIs of paths not asked for yet. */
  private want(runId: string, paths: string[]): void {
    const missing = paths.filter((p) => !this.uris.has(p) && !this.requested.has(`${runId}\n${p}`));
    if (!missing.length) return;
    for (const p of missing) this.requested.add(`${runId}\n${p}`);
    this.post({ type: 'thumbnails', runId, paths: missing });
  }

  private open(runId: string, path: string): void {
    this.post({ type: 'open-file', runId, path });
  }
}

function fact(label: string, value: string, testid: string): HTMLElement {
  return el('div', { class: 'fact' }, el('span', { class: 'label' }, label), el('span', { class: 'value', 'data-testid': testid }, value));
}
