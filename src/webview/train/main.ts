/**
 * The training panel's webview app (browser code: no Node built-ins, no `vscode`).
 *
 * Shows one run live (or replayed from its metrics.jsonl) or several runs compared: a header per
 * run (status, backend and device, the plan, epoch progress, ETA, Stop / Retry / Export CSV) and
 * the charts (loss, accuracy, learning rate, images/s, step time, memory) against step, epoch or
 * wall time, with EMA smoothing and a log scale. Redraws at most once per animation frame.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import uplotCss from 'uplot/dist/uPlot.min.css';
import { formatBytes, formatCount, formatDuration } from '../../core/shared/format';
import { plannedFor } from '../../core/shared/plan';
import { TRAIN_CHANNEL, type PanelRun, type PanelRunInfo, type TrainHostToWebview, type TrainPanelState, type TrainWebviewToHost } from '../../core/shared/train-webview-protocol';
import { Charts, runColour, type ChartOptions } from './charts';
import { addEvent, emptySeries, type RunSeries, type XAxis } from './series';
import { EvaluationSection } from './evaluation';
import { CompareSection } from './compare';
import { addExportButtons } from './chart-export';
import { batchFact, batchFactTitle, progressFraction, type FactPart } from './facts';
import { connectHost } from '../shared/channel';
import css from './styles.css';

interface VsCodeApi {
  postMessage(message: TrainWebviewToHost): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const app = document.getElementById('app') as HTMLElement;

const sheet = new CSSStyleSheet();
sheet.replaceSync(uplotCss + '\n' + css);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];


interface ViewRun {
  info: PanelRunInfo;
  series: RunSeries;
  colour: number;
}

const runs = new Map<string, ViewRun>();
const saved = vscode.getState() as Partial<ChartOptions> | undefined;
const options: ChartOptions = {
  axis: saved?.axis === 'epoch' || saved?.axis === 'time' ? saved.axis : 'step',
  smoothing: typeof saved?.smoothing === 'number' ? Math.min(0.99, Math.max(0, saved.smoothing)) : 0.6,
  logScale: saved?.logScale === true,
};

// ---- DOM helpers (text only: names and messages never become HTML) ----------------------------

type Child = Node | string | null | undefined | false;
function el(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}
function button(label: string, testid: string, onClick: () => void, secondary = false): HTMLElement {
  const b = el('vscode-button', { 'data-testid': testid }, label);
  if (secondary) b.setAttribute('secondary', '');
  b.addEventListener('click', onClick);
  return b;
}

// ---- layout -----------------------------------------------------------------------------------

const headers = el('div', { class: 'runs' });
const controls = el('div', { class: 'controls' });
const chartRoot = el('div', { class: 'charts', 'data-testid': 'charts' });
const charts = new Charts(chartRoot);
const evaluation = new EvaluationSection((m) => vscode.postMessage(m));
const compare = new CompareSection();
app.replaceChildren(headers, compare.root, controls, chartRoot, evaluation.root);

function buildControls(): void {
  const axis = el('vscode-single-select', { 'data-testid': 'x-axis', 'aria-label': 'X axis' });
  for (const [v, label] of [
    ['step', 'Step'],
    ['epoch', 'Epoch'],
    ['time', 'Wall time'],
  ] as const) {
    const o = el('vscode-option', { value: v }, label);
    if (v === options.axis) o.setAttribute('selected', '');
    axis.append(o);
  }
  axis.addEventListener('change', () => {
    const v = (axis as unknown as { value: string }).value;
    if (v === 'step' || v === 'epoch' || v === 'time') setOption({ axis: v as XAxis });
  });

  const smooth = el('input', { type: 'range', min: '0', max: '0.99', step: '0.01', value: String(options.smoothing), 'data-testid': 'smoothing', 'aria-label': 'Smoothing' }) as HTMLInputElement;
  const smoothValue = el('span', { class: 'muted' }, options.smoothing.toFixed(2));
  smooth.addEventListener('input', () => {
    smoothValue.textContent = Number(smooth.value).toFixed(2);
    setOption({ smoothing: Number(smooth.value) });
  });

  const log = el('vscode-checkbox', { 'data-testid': 'log-scale', label: 'Log scale (loss, learning rate)' });
  if (options.logScale) log.setAttribute('checked', '');
  log.addEventListener('change', () => setOption({ logScale: (log as unknown as { checked: boolean }).checked }));

  controls.replaceChildren(el('label', {}, 'X axis ', axis), el('label', {}, 'Smoothing ', smooth, ' ', smoothValue), log);
}

/** Which runs this panel shows (from the host), kept beside the chart options so VS Code can restore the panel after a reload. */
let restore: TrainPanelState | undefined;

function saveState(): void {
  vscode.setState({ ...options, ...(restore ? { restore } : {}) });
}

function setOption(patch: Partial<ChartOptions>): void {
  Object.assign(options, patch);
  saveState();
  scheduleDraw();
}

// ---- headers ------------------------------------------------------------------------------------

const STATUS_LABEL: Record<PanelRunInfo['status'], string> = {
  starting: 'starting',
  running: 'running',
  finished: 'finished',
  stopped: 'stopped',
  failed: 'failed',
  interrupted: 'interrupted',
};

function fact(label: string, value: string | FactPart[], testid: string, title?: string): HTMLElement {
  const v = el('span', { class: 'value', 'data-testid': testid, ...(title ? { title } : {}) });
  if (typeof value === 'string') v.textContent = value;
  else for (const p of value) v.append(p.testid ? el('span', { 'data-testid': p.testid }, p.text) : p.text);
  return el('div', { class: 'fact' }, el('span', { class: 'label' }, label), v);
}

/** Each run's header DOM, kept between redraws so its buttons stay clickable while a run streams. */
interface HeaderDom {
  box: HTMLElement;
  title: HTMLElement;
  actions: HTMLElement;
  actionsKey: string;
  body: HTMLElement;
  progress?: ProgressDom;
}
const headerDoms = new Map<string, HeaderDom>();

function headerDom(id: string): HeaderDom {
  let d = headerDoms.get(id);
  if (!d) {
    const title = el('div', { class: 'title' });
    const actions = el('div', { class: 'actions' });
    const body = el('div', {});
    const box = el('section', { class: 'run', 'data-testid': 'run', 'data-run-id': id }, el('header', { class: 'top' }, title, actions), body);
    d = { box, title, actions, actionsKey: '', body };
    headerDoms.set(id, d);
  }
  return d;
}

function renderActions(d: HeaderDom, r: ViewRun): void {
  const { info, series: s } = r;
  const key = `${info.live}|${info.retryBatchSize ?? ''}|${s.step.length > 0}`;
  if (key === d.actionsKey) return;
  d.actionsKey = key;
  d.actions.replaceChildren();
  if (info.live) d.actions.append(button('Stop', 'stop', () => vscode.postMessage({ type: 'stop', runId: info.id })));
  if (info.retryBatchSize) d.actions.append(button(`Retry at batch ${info.retryBatchSize}`, 'retry', () => vscode.postMessage({ type: 'retry', runId: info.id })));
  if (s.step.length) d.actions.append(button('Export CSV', 'export-csv', () => vscode.postMessage({ type: 'export-csv', runId: info.id }), true));
}

function renderFacts(r: ViewRun): HTMLElement {
  const { series: s } = r;
  const plan = s.plan;
  const facts = el('div', { class: 'facts' });
  // Two plain facts: the backend that runs, and what the plan was made for (the same backend, on its memory).
  if (s.backend) facts.append(fact('Backend', s.backend, 'backend'));
  if (plan) facts.append(fact('Planned for', plannedFor(plan), 'plan-device'));
  if (plan) {
    // One batch fact: micro-batch × accumulation = images per step, the learning rate, the warmup.
    facts.append(fact('Batch', batchFact(plan), 'plan-batch', batchFactTitle(plan)), fact('Loading', plan.loading.strategy, 'plan-loading'));
    const g = s.growth.at(-1);
    if (g) facts.append(fact('Batch grew', s.growth.map((x) => `${x.from} → ${x.to} (epoch ${x.epoch}, step ${formatCount(x.globalStep)})`).join(', '), 'batch-growth'));
  }
  if (s.lastEpoch) facts.append(fact('Epoch', `${s.lastEpoch}/${plan?.epochs || '?'}`, 'epoch'), fact('Step', `${s.lastStep}/${s.stepsPerEpoch}`, 'step'));
  if (s.step.length) {
    const last = s.loss.length - 1;
    const loss = s.loss[last];
    facts.append(fact('Loss', loss === null || loss === undefined ? 'NaN' : loss.toFixed(4), 'loss'));
    facts.append(fact('Images/s', (s.imagesPerSec[last] ?? 0).toFixed(0), 'images-per-sec'));
    // The step's peak decides whether a batch fits; what persists after it is in the hover text.
    const peak = s.peakTensorBytes[last];
    const after = `${formatBytes(s.tensorBytes[last] ?? 0)} after the step (weights, optimizer slots)`;
    if (peak !== null && peak !== undefined) facts.append(fact('Step peak', formatBytes(peak), 'tensor-peak', `Tensors at most during the step; ${after}`));
    else facts.append(fact('Tensors', formatBytes(s.tensorBytes[last] ?? 0), 'tensor-bytes', after));
  }
  return facts;
}

/** A run's progress bar, kept between redraws (updated in place: no flicker, and it stays the same element). */
interface ProgressDom {
  root: HTMLElement;
  bar: HTMLElement;
  fill: HTMLElement;
  pct: HTMLElement;
  eta: HTMLElement;
}

/** The run's progress: a bar, the percentage and the ETA (validation included). */
function renderProgress(d: HeaderDom, s: RunSeries, epochs: number): HTMLElement {
  if (!d.progress) {
    const fill = el('div', { class: 'fill', 'data-testid': 'progress-fill' });
    const bar = el('div', { class: 'bar', role: 'progressbar', 'aria-label': 'Run progress', 'aria-valuemin': '0', 'aria-valuemax': '100', 'data-testid': 'progress' }, fill);
    const pct = el('span', { class: 'pct', 'data-testid': 'progress-pct' });
    const eta = el('span', { 'data-testid': 'eta' });
    d.progress = { root: el('div', { class: 'progress' }, bar, el('div', { class: 'progress-text' }, pct, eta)), bar, fill, pct, eta };
  }
  const p = d.progress;
  const done = progressFraction({ epoch: s.lastEpoch, step: s.lastStep, stepsPerEpoch: s.stepsPerEpoch, epochs });
  const pct = Math.floor(done * 100);
  p.fill.style.width = `${(done * 100).toFixed(2)}%`;
  p.bar.setAttribute('aria-valuenow', String(pct));
  p.pct.textContent = `${pct}%`;
  const validation = s.etaValidationSec !== null && s.etaValidationSec >= 0.5 ? el('span', { class: 'muted', 'data-testid': 'eta-validation' }, ` (validation ${formatDuration(s.etaValidationSec)})`) : '';
  p.eta.replaceChildren(s.etaSec === null ? '' : `ETA ${formatDuration(s.etaSec)}`, validation);
  return p.root;
}

function renderHeader(r: ViewRun): HTMLElement {
  const { info, series: s } = r;
  const plan = s.plan;
  const epochs = plan?.epochs ?? 0;
  const d = headerDom(info.id);
  d.box.dataset['status'] = info.status;
  const swatch = el('span', { class: 'swatch' });
  swatch.style.background = runColour(r.colour);
  d.title.replaceChildren(
    ...[
      runs.size > 1 ? swatch : null,
      el('h1', { 'data-testid': 'run-name' }, info.name),
      el('vscode-badge', { 'data-testid': 'run-status', class: `status-${info.status}` }, STATUS_LABEL[info.status]),
      el('span', { class: 'muted', 'data-testid': 'run-id' }, info.id),
    ].filter((c): c is HTMLElement => c !== null),
  );
  renderActions(d, r);
  const body: Node[] = [renderFacts(r)];
  if (info.live && epochs && s.stepsPerEpoch) body.push(renderProgress(d, s, epochs));
  if (info.message) body.push(el('p', { class: `message ${info.status === 'failed' ? 'error' : ''}`, 'data-testid': 'run-message' }, info.message));
  if (s.firstBadLossStep !== null) {
    const lr = plan ? ` (now ${Number(plan.learningRate.value.toPrecision(3))}; try ${Number((plan.learningRate.value / 10).toPrecision(3))})` : '';
    body.push(el('p', { class: 'message error', 'data-testid': 'nan-warning' }, `The loss became NaN or infinite at step ${formatCount(s.firstBadLossStep)}: lower the learning rate${lr} and train again.`));
  }
  if (plan?.warnings.length) body.push(el('p', { class: 'message warning' }, plan.warnings.join(' ')));
  d.body.replaceChildren(...body);
  return d.box;
}

// ---- drawing -------------------------------------------------------------------------------------

let frame = 0;
function scheduleDraw(): void {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    draw();
  });
}

function draw(): void {
  const boxes = [...runs.values()].map(renderHeader);
  if (boxes.length !== headers.children.length || boxes.some((b, i) => headers.children[i] !== b)) headers.replaceChildren(...boxes);
  charts.draw(
    [...runs.values()].map((r) => ({ id: r.info.id, name: r.info.name, series: r.series, colour: r.colour })),
    options,
  );
  evaluation.render();
  compare.render();
  const first = runs.keys().next().value;
  if (first !== undefined) addExportButtons(chartRoot, (chart, dataUrl) => vscode.postMessage({ type: 'export-png', runId: first, chart: runs.size > 1 ? `compare-${chart}` : chart, dataUrl }));
  document.body.dataset['points'] = String([...runs.values()].reduce((n, r) => n + r.series.step.length, 0));
}

function load(list: PanelRun[]): void {
  runs.clear();
  headerDoms.clear();
  evaluation.clear();
  compare.clear();
  list.forEach((r, i) => {
    compare.addRun(r.id, r.name, i, r.config);
    const series = emptySeries();
    for (const e of r.events) addEvent(series, e);
    for (const e of r.events) evaluation.onEvent(r.id, r.name, e);
    for (const e of r.events) compare.onEvent(r.id, e);
    const { events: _events, config: _config, ...info } = r;
    runs.set(r.id, { info, series, colour: i });
  });
}

function onMessage(m: TrainHostToWebview): void {
  if (m.type === 'reset') {
    if (m.restore) {
      restore = m.restore;
      saveState();
    }
    load(m.runs);
  }
  else if (m.type === 'events') {
    const r = runs.get(m.runId);
    for (const e of r ? m.events : []) {
      addEvent(r!.series, e);
      evaluation.onEvent(r!.info.id, r!.info.name, e);
      compare.onEvent(r!.info.id, e);
    }
  } else if (m.type === 'thumbnails') {
    evaluation.onThumbnails(m);
  } else {
    const r = runs.get(m.run.id);
    if (r) r.info = m.run;
    compare.rename(m.run.id, m.run.name);
  }
  scheduleDraw();
}

const host = connectHost(TRAIN_CHANNEL, vscode, onMessage);

// Theme change: body's class switches (vscode-light / vscode-dark / vscode-high-contrast); colours
// are read again and every chart rebuilt.
new MutationObserver(() => {
  charts.reset();
  compare.themeChanged();
  scheduleDraw();
}).observe(document.body, { attributes: true, attributeFilter: ['class'] });

new ResizeObserver(() => scheduleDraw()).observe(chartRoot);

/** For the benchmark and tests: synthetic points through the real drawing path. */
(window as unknown as { batchAdvisorTrainPanel: unknown }).batchAdvisorTrainPanel = { onMessage, redrawMs: () => charts.lastRedrawMs, draw };

buildControls();
host.ready();
