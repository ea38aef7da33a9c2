/**
 * The Suggest panel's webview app (browser code: no Node built-ins, no `vscode`).
 *
 * Renders the host's {@link SuggestViewState}: working (stage + files scanned, Cancel), result
 * (recommendation, dataset, problems, memory, devices, model), cancelled, error. The host replays
 * its latest state on `ready`; the state is also persisted with setState so a restored panel
 * paints at once.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import '@vscode-elements/elements/dist/vscode-table/index.js';
import '@vscode-elements/elements/dist/vscode-table-body/index.js';
import '@vscode-elements/elements/dist/vscode-table-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-header/index.js';
import '@vscode-elements/elements/dist/vscode-table-header-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-row/index.js';
import { formatBytes, formatCount, plural } from '../../core/shared/format';
import type { ObjectiveReport, ProbeTrialResult } from '../../core/shared/probe';
import type { SuggestReport } from '../../core/shared/report';
import {
  SUGGEST_CHANNEL,
  isPersistedState,
  type SuggestPersistedState,
  type SuggestStage,
  type SuggestViewState,
  type WebviewToHost,
} from '../../core/shared/webview-protocol';
import { destroyCharts, renderClassChart, renderMemoryChart, renderObjectiveChart, renderProbeChart, renderSizeChart, watchTheme, type ProbePoint } from './charts';
import { connectHost } from '../shared/channel';
import css from './styles.css';

interface VsCodeApi {
  postMessage(message: WebviewToHost): void;
  getState(): unknown;
  setState(state: SuggestPersistedState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const app = document.getElementById('app') as HTMLElement;

// Styles as a constructable stylesheet: no inline <style>, so the CSP needs no 'unsafe-inline'.
const sheet = new CSSStyleSheet();
sheet.replaceSync(css);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];

function post(m: WebviewToHost): void {
  vscode.postMessage(m);
}

// ---- tiny DOM helpers (text only: paths and messages never become HTML) -----------------------

type Child = Node | string | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}
function ce(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}
function button(label: string, onClick: () => void, opts: { secondary?: boolean; testid?: string } = {}): HTMLElement {
  const b = ce('vscode-button', opts.testid ? { 'data-testid': opts.testid } : {}, label);
  if (opts.secondary) b.setAttribute('secondary', '');
  b.addEventListener('click', onClick);
  return b;
}

function basename(p: string): string {
  const parts = p.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? p;
}

function relativeTo(root: string, p: string): string {
  const r = root.replace(/[\\/]+$/, '');
  return p.startsWith(r + '/') || p.startsWith(r + '\\') ? p.slice(r.length + 1) : p;
}

function formatNumber(n: number, digits = 3): string {
  if (n === 0) return '0';
  if (Math.abs(n) < 0.001) return n.toExponential(2);
  return Number(n.toPrecision(digits)).toString();
}

// ---- rendering --------------------------------------------------------------------------------

const STAGES: { stage: SuggestStage; label: string; doing: string }[] = [
  { stage: 'scan', label: 'Scan dataset', doing: 'Scanning the dataset…' },
  { stage: 'devices', label: 'Read devices', doing: 'Reading device memory…' },
  { stage: 'model', label: 'Describe model', doing: 'Describing the model…' },
  { stage: 'plan', label: 'Plan memory', doing: 'Planning memory…' },
  { stage: 'probe', label: 'Probe', doing: 'Confirming with real training steps…' },
];

let current: SuggestViewState = { kind: 'idle', seq: 0 };
let renderedSeq = -1;
let renderedKind = '';

function header(target: string | undefined, actions: Node[]): HTMLElement {
  return h(
    'header',
    { class: 'top' },
    h('div', { class: 'title' }, h('h1', {}, 'Batch size suggestion'), target ? h('div', { class: 'target', title: target }, target) : null),
    h('div', { class: 'actions' }, ...actions),
  );
}

function renderWorking(s: Extract<SuggestViewState, { kind: 'working' }>): void {
  const idx = STAGES.findIndex((x) => x.stage === s.stage);
  // Update in place while working (progress ticks many times a second): no flicker, no re-layout.
  const doing = STAGES[idx]?.doing ?? 'Working…';
  if (renderedKind === 'working') {
    const title = app.querySelector('[data-testid="progress-stage"]');
    if (title) title.textContent = doing;
    const msg = app.querySelector('[data-testid="progress-message"]');
    if (msg) msg.textContent = s.message;
    app.querySelectorAll('.stages li').forEach((li, i) => {
      li.className = i < idx ? 'done' : i === idx ? 'active' : '';
    });
    updateProbeProgress(s);
    return;
  }
  app.replaceChildren(
    header(s.target, [button('Cancel', () => post({ type: 'cancel' }), { secondary: true, testid: 'cancel' })]),
    h(
      'section',
      { class: 'card working', 'data-testid': 'state-working' },
      h(
        'div',
        { class: 'working-row' },
        ce('vscode-progress-ring', {}),
        h(
          'div',
          {},
          h('div', { class: 'progress-stage', 'data-testid': 'progress-stage' }, doing),
          h('div', { class: 'muted', 'data-testid': 'progress-message' }, s.message),
        ),
      ),
      h('ol', { class: 'stages' }, ...STAGES.map((x, i) => h('li', { class: i < idx ? 'done' : i === idx ? 'active' : '' }, x.label))),
      h('div', { class: 'probe-live', 'data-testid': 'probe-live' }),
    ),
  );
  updateProbeProgress(s);
}

function trialText(t: ProbeTrialResult): string {
  const batch = `${t.batchSize}${t.accumulationSteps > 1 ? ` × ${t.accumulationSteps}` : ''}`;
  return t.ok ? `batch ${batch}: trained, peak ${formatBytes(t.peakBytes)}, ${formatNumber(t.imagesPerSec)} images/s` : `batch ${batch}: ${t.failure ?? 'failed'}${t.error ? ` (${t.error})` : ''}`;
}

/** While probing: the trials so far, and a way to skip the rest. */
function updateProbeProgress(s: Extract<SuggestViewState, { kind: 'working' }>): void {
  const box = app.querySelector('[data-testid="probe-live"]');
  if (!box) return;
  if (s.stage !== 'probe') return box.replaceChildren();
  const trials = s.trials ?? [];
  box.replaceChildren(
    h('p', { class: 'muted small' }, `Each trial trains a few real steps in its own process. ${plural(trials.length, 'trial')} done.`),
    h('ul', { class: 'trials', 'data-testid': 'probe-trials' }, ...trials.map((t) => h('li', { class: t.ok ? 'ok' : 'failed' }, trialText(t)))),
    button('Skip probe', () => post({ type: 'skip-probe' }), { secondary: true, testid: 'skip-probe' }),
  );
}

/** "Throughput: 32 → 390/s · 64 → 410/s · …" from the batches timed by the plan's own trial. */
function throughputLine(trials: ProbeTrialResult[]): HTMLElement | string {
  const timed = trials.flatMap((t) => (t.throughput?.length ? [{ batchSize: t.batchSize, imagesPerSec: t.imagesPerSec }, ...t.throughput] : []));
  if (!timed.length) return '';
  const text = timed.sort((a, b) => a.batchSize - b.batchSize).map((q) => `${q.batchSize} → ${formatNumber(q.imagesPerSec)}/s`).join(' · ');
  return h('p', { class: 'muted small', 'data-testid': 'throughput' }, `Throughput (images/s by batch size): ${text}`);
}

/** Predicted time to the target per batch, the chosen one marked, and how robust the choice is to the noise scale's range. */
function objectiveSection(o: ObjectiveReport | undefined): HTMLElement | string {
  if (!o) return '';
  const canvas = h('canvas', { 'aria-label': 'Predicted time to the target accuracy per batch size, relative to the chosen batch', role: 'img' });
  const planned = o.bNoiseMeasured !== undefined && o.bNoise !== undefined && o.bNoise > o.bNoiseMeasured ? `, planned for the upper end of its range; measured ${formatNumber(o.bNoiseMeasured)}, it grows as the loss falls` : '';
  const how = o.basis === 'noise-scale' ? `(batch + noise scale ${formatNumber(o.bNoise ?? NaN)}${planned}) ÷ images per second` : 'batch ÷ images per second (no usable noise scale: the smallest batch within 95% of the best throughput)';
  const range = o.bNoiseRange && o.choiceInRange ? (o.choiceInRange[0] === o.choiceInRange[1] ? ` The choice holds across the noise scale's range (${formatNumber(o.bNoiseRange[0])}–${o.bNoiseRange[1] === null ? '∞' : formatNumber(o.bNoiseRange[1])}).` : ` Within the noise scale's range (${formatNumber(o.bNoiseRange[0])}–${o.bNoiseRange[1] === null ? '∞' : formatNumber(o.bNoiseRange[1])}) the choice would be ${formatCount(o.choiceInRange[0])}–${formatCount(o.choiceInRange[1])}.`) : '';
  const el = h(
    'div',
    { class: 'objective', 'data-testid': 'objective' },
    h('h3', {}, 'Predicted time to the target, per batch size'),
    h('p', { class: 'muted small', 'data-testid': 'objective-note' }, `Batch ${formatCount(o.chosen)} is predicted to reach the target soonest: time ∝ ${how}.${range}`),
    h('div', { class: 'chart-box short' }, canvas),
  );
  renderObjectiveChart(canvas, o);
  return el;
}

function renderProbe(report: SuggestReport): HTMLElement | null {
  const p = report.probe;
  if (!p) return null;
  const canvas = h('canvas', { 'aria-label': 'Predicted and measured memory, and throughput, per batch size tried', role: 'img' });
  const g = report.gradientNoiseScale;
  const err = p.modelError === null ? '—' : `${p.modelError >= 0 ? '+' : '−'}${Math.round(Math.abs(p.modelError) * 100)}%`;
  const el = h(
    'section',
    { class: 'card probe', 'data-testid': 'probe' },
    h('h2', {}, 'Probe: real training steps'),
    h(
      'div',
      { class: 'stats' },
      p.maxSearched
        ? stat('Largest that trained', formatCount(p.maxBatchSize), 'probe-max', p.atCap ? 'enough for the plan; larger batches were not tried' : p.stop)
        : stat('Largest confirmed', formatCount(p.maxBatchSize), 'probe-max', `the device's maximum was not searched: ${p.stop}`),
      stat('Trials', formatCount(p.processes), 'probe-trials-count', p.cache?.hit ? `none ran: ${formatCount(p.cache.reused)} reused from the probe cache` : 'trial processes started'),
      stat('Model error', err, 'probe-model-error', 'predicted − measured, at the largest batch that trained'),
      stat('Margin', `${Math.round(p.margin * 100)}%`, 'probe-margin'),
      g ? stat('Noise scale', g.bSimple !== undefined ? formatNumber(g.bSimple) : '—', 'noise-scale', g.note) : '',
    ),
    objectiveSection(p.objective),
    h('div', { class: 'chart-box' }, canvas),
    h('ul', { class: 'trials small' }, ...p.trials.map((t) => h('li', { class: t.ok ? 'ok' : 'failed' }, trialText(t)))),
    throughputLine(p.trials),
    g ? h('p', { class: 'muted small', 'data-testid': 'noise-note' }, `Gradient noise scale: ${g.note}.`) : '',
  );
  // Memory trials, then batches only timed by the plan's own trial (the throughput curve).
  const points: ProbePoint[] = p.trials
    .filter((t) => t.accumulationSteps === 1 || t.batchSize === report.plan.microBatchSize)
    .map((t) => ({ batchSize: t.batchSize, predictedBytes: t.predictedBytes ?? null, measuredBytes: t.peakBytes > 0 ? t.peakBytes : null, imagesPerSec: t.ok ? t.imagesPerSec : null, ok: t.ok }));
  for (const t of p.trials) {
    for (const q of t.throughput ?? []) {
      if (!points.some((x) => x.batchSize === q.batchSize)) points.push({ batchSize: q.batchSize, predictedBytes: null, measuredBytes: null, imagesPerSec: q.imagesPerSec, ok: true });
    }
  }
  renderProbeChart(canvas, points, report.plan.microBatchSize);
  return el;
}

function renderCancelled(s: Extract<SuggestViewState, { kind: 'cancelled' }>): void {
  app.replaceChildren(
    header(s.target, [button('Run again', () => post({ type: 'rerun' }), { testid: 'rerun' })]),
    h('section', { class: 'card notice', 'data-testid': 'state-cancelled' }, h('p', { class: 'big-text' }, 'Cancelled.'), h('p', { class: 'muted' }, 'Nothing was changed. Run the suggestion again when you are ready.')),
  );
}

function renderError(s: Extract<SuggestViewState, { kind: 'error' }>): void {
  app.replaceChildren(
    header(s.target, [button('Run again', () => post({ type: 'rerun' }), { testid: 'rerun' })]),
    h(
      'section',
      { class: 'card error', 'data-testid': 'state-error', role: 'alert' },
      h('h2', {}, 'Cannot suggest a batch size'),
      h('p', { class: 'error-message', 'data-testid': 'error-message' }, s.message),
      s.hint ? h('p', { class: 'muted' }, s.hint) : null,
    ),
  );
}

function renderIdle(): void {
  app.replaceChildren(
    header(undefined, [button('Suggest batch size…', () => post({ type: 'rerun' }))]),
    h('section', { class: 'card notice' }, h('p', {}, 'Run "Batch Advisor: Suggest Batch Size" on a dataset folder or a *.train.json config.')),
  );
}

/** A labelled figure; `wrap` for a value in words (a loss, a device name) that must not be cut to "…". */
function stat(label: string, value: string, testid?: string, title?: string, wrap = false): HTMLElement {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, label), h('div', { class: wrap ? 'stat-value wrap' : 'stat-value', ...(testid ? { 'data-testid': testid } : {}), ...(title ? { title } : {}) }, value));
}

function section(title: string, ...children: Child[]): HTMLElement {
  return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

function renderRecommendation(report: SuggestReport): HTMLElement {
  const r = report.recommendation;
  const lr = r.learningRate;
  const lrRule = lr.rule === 'linear' ? 'linear scaling' : lr.rule === 'sqrt' ? 'square-root scaling' : 'unchanged';
  return h(
    'section',
    { class: 'card hero', 'data-testid': 'recommendation' },
    h(
      'div',
      { class: 'hero-top' },
      h(
        'div',
        { class: 'hero-main' },
        h('div', { class: 'stat-label' }, 'Recommended batch size'),
        h('div', { class: 'hero-number', 'data-testid': 'batch-size' }, String(r.batchSize)),
        h('div', { class: 'muted' }, r.maxBatchSize > 0 ? (report.probe && !report.probe.maxSearched ? `Largest confirmed: ${formatCount(r.maxBatchSize)} (larger not tried)` : `Largest that fits: ${formatCount(r.maxBatchSize)}`) : 'Not even batch 1 fits the budget'),
      ),
      h(
        'div',
        { class: 'stats hero-stats' },
        stat('Learning rate', formatNumber(lr.recommended), 'learning-rate', `${formatNumber(lr.base)} at batch ${lr.baseBatchSize}, ${lrRule}`),
        stat('Warmup', r.warmupSteps > 0 ? plural(r.warmupSteps, 'step') : 'none', 'warmup', r.warmupSteps > 0 ? `${Math.round((r.warmupSteps / (r.stepsPerEpoch * report.plan.epochs)) * 100)}% of the run's ${formatCount(r.stepsPerEpoch * report.plan.epochs)} optimizer steps` : undefined),
        stat('Accumulation', r.accumulationSteps > 1 ? `${r.accumulationSteps} steps` : 'none', 'accumulation'),
        stat('Effective batch', formatCount(r.effectiveBatchSize), 'effective-batch'),
        stat('Steps / epoch', formatCount(r.stepsPerEpoch)),
        stat('Loading', r.loading.strategy === 'preload' ? 'Preload' : 'Stream', 'loading', r.loading.reason),
        report.plan.loss ? stat('Loss', report.plan.loss, 'loss', undefined, true) : '',
      ),
    ),
    report.plan.dataParallel ? h('p', { class: 'muted', 'data-testid': 'data-parallel' }, report.plan.dataParallel.note) : null,
    report.torchrun ? h('p', { 'data-testid': 'torchrun-plan' }, report.torchrun.note) : null,
    h('h3', {}, 'Why'),
    h('ul', { class: 'reasons', 'data-testid': 'reasons' }, ...r.reasons.map((x) => h('li', {}, x)), h('li', {}, r.loading.reason)),
    r.warnings.length ? h('div', { class: 'warnings', role: 'note' }, ...r.warnings.map((w) => h('p', {}, '⚠ ', w))) : null,
  );
}

function renderDataset(report: SuggestReport): HTMLElement {
  const d = report.dataset;
  const formats = Object.entries(d.formats)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${formatCount(v)}`)
    .join(' · ');
  const sizeText = d.totalImages ? `${d.width.median}×${d.height.median}` : '–';
  const sizeRange = d.totalImages ? `width ${d.width.min}–${d.width.max}, height ${d.height.min}–${d.height.max}` : '';
  const classCanvas = h('canvas', { 'aria-label': 'Images per class', role: 'img' });
  const sizeCanvas = h('canvas', { 'aria-label': 'Image size histogram', role: 'img' });
  const oneSize = d.totalImages > 0 && d.width.min === d.width.max && d.height.min === d.height.max;
  const sizeFigure = oneSize
    ? h('figure', {}, h('figcaption', {}, 'Image sizes (pixels)'), h('div', { class: 'chart-box one-size' }, h('div', { class: 'one-size-value' }, `${d.width.min}×${d.height.min}`), h('div', { class: 'muted' }, `All ${formatCount(d.totalImages)} images have the same size; resized to ${d.decoded.imageSize[1]}×${d.decoded.imageSize[0]} for the model.`)))
    : h('figure', {}, h('figcaption', {}, 'Image sizes (pixels)'), h('div', { class: 'chart-box' }, sizeCanvas));
  const el = h(
    'section',
    { class: 'card', 'data-testid': 'dataset' },
    h('h2', {}, 'Dataset'),
    h(
      'button',
      { class: 'link path', title: 'Reveal in Explorer', 'data-testid': 'dataset-root' },
      d.root,
    ),
    h(
      'div',
      { class: 'stats' },
      stat('Classes', formatCount(d.classes.length), 'class-count'),
      stat('Images', formatCount(d.totalImages), 'image-count'),
      stat('Train / validation', `${formatCount(d.train)} / ${formatCount(d.validation)}`),
      stat('Formats', formats || '–', 'formats'),
      stat('Median size', sizeText, 'median-size', sizeRange),
      stat('On disk', formatBytes(d.bytesOnDisk)),
      stat('Decoded (float32)', formatBytes(d.decoded.float32Bytes), undefined, `${d.decoded.imageSize[0]}×${d.decoded.imageSize[1]}×${d.decoded.channels}`),
      stat('Imbalance', d.imbalanceRatio === null ? '–' : `${formatNumber(d.imbalanceRatio, 2)}×`, undefined, 'largest class / smallest class'),
    ),
    h(
      'div',
      { class: 'charts' },
      h('figure', {}, h('figcaption', {}, 'Images per class'), h('div', { class: 'chart-box' }, classCanvas)),
      sizeFigure,
    ),
  );
  el.querySelector('[data-testid="dataset-root"]')?.addEventListener('click', () => post({ type: 'reveal', path: d.root }));
  renderClassChart(classCanvas, d);
  if (!oneSize) renderSizeChart(sizeCanvas, d);
  return el;
}

function renderProblems(report: SuggestReport): HTMLElement | null {
  const d = report.dataset;
  const total = Object.values(d.problemCounts).reduce((a, b) => a + (b ?? 0), 0);
  if (total === 0) return null;
  const counts = Object.entries(d.problemCounts)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([k, n]) => `${k} ${formatCount(n ?? 0)}`)
    .join(' · ');
  const list = h(
    'ul',
    { class: 'problems', 'data-testid': 'problems' },
    ...d.problems.map((p) => {
      const item = h(
        'li',
        {},
        h('span', { class: `kind kind-${p.kind}` }, p.kind),
        h('button', { class: 'link path', title: `Open ${p.path}` }, relativeTo(d.root, p.path)),
        h('span', { class: 'muted' }, p.message),
      );
      item.querySelector('button')?.addEventListener('click', () => post({ type: 'reveal', path: p.path }));
      return item;
    }),
  );
  const collapsible = ce('vscode-collapsible', { heading: `Problems (${formatCount(total)})`, description: counts }, h('div', { class: 'collapsible-body' }, list, d.problems.length < total ? h('p', { class: 'muted small' }, `Showing the first ${formatCount(d.problems.length)}.`) : null));
  if (total <= 20) collapsible.setAttribute('open', '');
  return h('section', { class: 'card flush' }, collapsible);
}

function renderMemory(report: SuggestReport): HTMLElement {
  const m = report.memory;
  const b = m.breakdown;
  const canvas = h('canvas', { 'aria-label': 'Predicted memory by batch size', role: 'img' });
  const el = h(
    'section',
    { class: 'card memory', 'data-testid': 'memory' },
    h('h2', {}, 'Memory by batch size'),
    h(
      'div',
      { class: 'stats' },
      stat('Budget', formatBytes(m.budgetBytes), 'memory-budget', `free memory × (1 − ${m.headroom} headroom)`),
      stat('Fixed', formatBytes(m.fixedBytes), undefined, 'weights, gradients, optimizer slots, overhead'),
      stat('Per sample', formatBytes(m.perSampleBytes), undefined, 'activations kept for backward + the input'),
    ),
    h('div', { class: 'chart-box tall' }, canvas),
    h(
      'div',
      { class: 'legend small' },
      h('span', { class: 'swatch recommended' }),
      'recommended',
      h('span', { class: 'swatch fits' }),
      'fits',
      h('span', { class: 'swatch no-fit' }),
      'does not fit',
      h('span', { class: 'swatch budget' }),
      'budget',
    ),
    h(
      'p',
      { class: 'muted small' },
      `Weights ${formatBytes(b.weightsBytes)} · gradients ${formatBytes(b.gradientsBytes)} · optimizer (${report.optimizer}) ${formatBytes(b.optimizerBytes)} · overhead ${formatBytes(b.overheadBytes)} · activations ${formatBytes(b.activationBytesPerSample)}/sample · input ${formatBytes(b.inputBytesPerSample)}/sample`,
    ),
  );
  renderMemoryChart(canvas, m, report.recommendation.batchSize);
  return el;
}

function renderDevices(report: SuggestReport): HTMLElement {
  const chosen = report.device;
  const same = (d: { name: string; kind: string }) => d.name === chosen.name && d.kind === chosen.kind;
  const rows = report.devices.some(same) ? report.devices : [chosen, ...report.devices];
  const table = h(
    'table',
    { class: 'devices', 'data-testid': 'devices' },
    h('thead', {}, h('tr', {}, ...['Device', 'Total', 'Free', 'Source'].map((c, i) => h('th', i > 0 && i < 3 ? { class: 'num' } : {}, c)))),
    h(
      'tbody',
      {},
      ...rows.map((d) =>
        h(
          'tr',
          same(d) ? { class: 'chosen' } : {},
          h('td', {}, h('span', { class: 'device-name' }, `${d.kind.toUpperCase()} · ${d.name}`), same(d) ? ce('vscode-badge', { class: 'planned' }, 'planned for') : null),
          h('td', { class: 'num' }, formatBytes(d.memoryTotalBytes)),
          h('td', { class: 'num' }, formatBytes(d.memoryFreeBytes)),
          h('td', { class: 'muted' }, d.source),
        ),
      ),
    ),
  );
  return section(
    'Devices',
    h(
      'div',
      { class: 'stats' },
      stat('Planned for', chosen.name, 'device-name', chosen.name, true),
      stat('Device memory', formatBytes(chosen.memoryTotalBytes), 'device-memory'),
      stat('Free', formatBytes(chosen.memoryFreeBytes), 'device-free'),
    ),
    chosen.source === 'override' ? h('p', { class: 'muted small' }, 'Memory set by batchAdvisor.deviceMemoryGiB (or the config\'s deviceMemoryGiB): the plan is for that device, not a detected one.') : null,
    table,
  );
}

function renderModel(report: SuggestReport): HTMLElement {
  const m = report.model;
  return section(
    'Model',
    h(
      'div',
      { class: 'stats' },
      stat('Model', m.name, 'model-name', report.config.model),
      stat('Parameters', formatCount(m.totalParams), 'model-params', `${formatCount(m.trainableParams)} trainable`),
      stat('Input', m.inputShape.join('×')),
      stat('Classes', formatCount(m.numClasses)),
      stat('Layers', formatCount(m.layers.length)),
      stat('Optimizer', report.optimizer),
    ),
  );
}

function renderResult(s: Extract<SuggestViewState, { kind: 'result' }>): void {
  destroyCharts();
  const r = s.report;
  const notes = s.notes.length ? h('section', { class: 'card note', 'data-testid': 'notes' }, ...s.notes.map((n) => h('p', {}, n))) : null;
  app.replaceChildren(
    header(s.target, [button('Run again', () => post({ type: 'rerun' }), { secondary: true, testid: 'rerun' })]),
    notes ?? '',
    // The recommendation and its memory chart side by side (stacked in a narrow panel): both in the first view.
    h('div', { class: 'grid-top' }, renderRecommendation(r), renderMemory(r)),
    h('div', { class: 'grid-pair' }, renderDevices(r), renderModel(r)),
    renderProbe(r) ?? '',
    renderDataset(r),
    renderProblems(r) ?? '',
    h('footer', { class: 'muted small' }, `Scanned ${plural(r.dataset.totalImages, 'image')} in ${formatCount(Math.round(r.dataset.scanMs))} ms · ${basename(s.target)}`),
  );
}

function render(state: SuggestViewState): void {
  if (state.seq === renderedSeq && state.kind === renderedKind) return;
  if (state.kind !== 'working' || renderedKind !== 'working') destroyCharts();
  document.body.dataset.state = state.kind;
  switch (state.kind) {
    case 'idle':
      renderIdle();
      break;
    case 'working':
      renderWorking(state);
      break;
    case 'result':
      renderResult(state);
      break;
    case 'cancelled':
      renderCancelled(state);
      break;
    case 'error':
      renderError(state);
      break;
  }
  renderedSeq = state.seq;
  renderedKind = state.kind;
}

function apply(state: SuggestViewState): void {
  current = state;
  render(state);
  // Persist only settled states often; working ticks are cheap to skip.
  vscode.setState({ version: 1, state });
}

const host = connectHost(SUGGEST_CHANNEL, vscode, (m) => apply(m.state));

// Canvas charts cannot use CSS variables: redraw them with the new theme's colours.
watchTheme();

const persisted = vscode.getState();
if (isPersistedState(persisted)) {
  current = persisted.state;
  render(current);
}
host.ready();
