/**
 * End-to-end: the live training panel reads at a glance (issue 19 part 3), in a real VS Code
 * (code-server), in dark, light and high contrast — and the Suggest panel's memory chart is whole
 * at a common window size. Asserts what a person sees without hovering: each chart's y-axis title,
 * distinct legend colours for train raw / smoothed / validation, legend values at the latest point,
 * whole-number step ticks, one batch fact, a progress bar that is there and stands out, an ETA that
 * counts validation, and the memory chart's step peak and budget equal to the run's own figures.
 *
 *   npm run package --silent && E2E_SKIP_PACKAGE=1 node --import tsx --test --test-concurrency=1 test/e2e/panel.test.ts
 *
 * Screenshots land in test-results/panel-*.png; E2E_UPDATE_SCREENSHOTS=1 also refreshes
 * media/screenshot-train-{dark,light,high-contrast,memory-dark}.png.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { Frame } from 'playwright-core';
import { makeSample } from '../../src/cli/make-sample';
import { parseMetrics } from '../../src/core/run-folder/runs';
import { formatBytes } from '../../src/core/shared/format';
import type { BatchEvent, RunStartEvent } from '../../src/core/shared/protocol';
import { contrastRatio } from '../../src/webview/shared/colour';
import { SAMPLE_WORKSPACE, ensureSample } from './fixtures';
import { ROOT, buildVsix, e2eAvailable, withVSCode, waitFor } from './harness';

const available = e2eAvailable();
const skip = available.ok ? false : available.reason;
const CONFIG_NAME = 'glance.train.json';
const CHARTS = ['loss', 'accuracy', 'lr', 'throughput', 'step-time', 'memory'];

/** 1,000 real digits (800 to train: 25 steps of 8 × 4 per epoch), long enough to stay live through three themes. */
async function glanceWorkspace(): Promise<string> {
  const ws = mkdtempSync(join(tmpdir(), 'ba-e2e-panel-'));
  await makeSample(join(ws, 'digits'), { perDigit: 100 });
  // Far more epochs than the test watches (it stops the run): on a fast machine 40 epochs of these
  // 800 images were nearly over by the theme checks ("ETA 1s", the last validation pass too short to show).
  const config = { name: 'digits-glance', dataset: 'digits', imageSize: [28, 28], channels: 1, model: 'tutorial-cnn', optimizer: 'adam', batchSize: 8, accumulationSteps: 4, warmupSteps: 50, epochs: 120, probe: false };
  writeFileSync(join(ws, CONFIG_NAME), JSON.stringify(config, null, 2) + '\n');
  return ws;
}

function runEvents(ws: string) {
  const root = join(ws, '.batch-advisor', 'runs');
  const dir = existsSync(root) ? readdirSync(root)[0] : undefined;
  return dir ? parseMetrics(readFileSync(join(root, dir, 'metrics.jsonl'), 'utf8')).events : [];
}

interface LegendItem {
  label: string;
  value: string;
  marker: string;
}

/** A chart's legend as shown: each series' label, value and marker colour. */
function legend(frame: Frame, chart: string): Promise<LegendItem[]> {
  return frame.locator(`[data-testid="chart-${chart}"] .u-legend .u-series`).evaluateAll((rows) =>
    rows.slice(1).map((r) => ({
      label: (r.querySelector('.u-label')?.textContent ?? '').trim(),
      value: (r.querySelector('.u-value')?.textContent ?? '').trim(),
      marker: r.querySelector<HTMLElement>('.u-marker') ? getComputedStyle(r.querySelector<HTMLElement>('.u-marker')!).backgroundColor : '',
    })),
  );
}

/** What a person sees at a glance, checked in the current theme. */
async function assertGlance(frame: Frame, theme: string, opts: { validated: boolean }): Promise<void> {
  // Every chart has its y-axis title (with the unit), visible inside its card.
  for (const id of CHARTS) {
    const title = frame.locator(`[data-testid="chart-${id}"] [data-testid="y-title"]`);
    assert.match((await title.textContent()) ?? '', /\S/, `${theme}: ${id} has a y-axis title`);
    assert.ok(await title.isVisible(), `${theme}: ${id}'s y-axis title is visible`);
  }
  assert.equal(await frame.locator('[data-testid="chart-loss"] [data-testid="y-title"]').textContent(), 'cross-entropy (nats)');
  assert.equal(await frame.locator('[data-testid="chart-memory"] [data-testid="y-title"]').textContent(), 'bytes (log scale)');

  // Loss legend: three series in three colours, each with a value before any hover.
  const loss = await legend(frame, 'loss');
  assert.deepEqual(loss.map((l) => l.label), ['train loss (raw)', 'train loss (smoothed)', 'validation loss'], `${theme}: loss legend`);
  assert.equal(new Set(loss.map((l) => l.marker)).size, 3, `${theme}: distinct legend colours ${loss.map((l) => l.marker).join(' | ')}`);
  for (const l of loss.slice(0, opts.validated ? 3 : 2)) assert.match(l.value, /^\d/, `${theme}: ${l.label} shows "${l.value}" without hover`);
  for (const l of await legend(frame, 'accuracy')) if (opts.validated || !l.label.startsWith('validation')) assert.match(l.value, /^\d+(\.\d)?%$/, `${theme}: ${l.label} "${l.value}"`);

  // Whole-number step ticks on every chart's x axis.
  for (const id of CHARTS) {
    const ticks = ((await frame.locator(`[data-testid="chart-${id}"]`).getAttribute('data-x-ticks')) ?? '').split(',').filter(Boolean).map(Number);
    assert.ok(ticks.length >= 2 && ticks.every(Number.isInteger), `${theme}: ${id} step ticks ${ticks.join(', ')}`);
  }

  // One batch fact; no separate micro-batch / accumulation facts.
  assert.match((await frame.locator('[data-testid="plan-batch"]').textContent()) ?? '', /^8 × 4 = 32 · lr [\d.e-]+ · (warmup [\d,]+ steps|no warmup)$/);
  const labels = await frame.locator('.fact .label').allTextContents();
  assert.ok(!labels.includes('Micro-batch') && !labels.includes('Accumulation'), `${theme}: facts ${labels.join(', ')}`);

  // The progress bar: there, wider than nothing, and standing out from the panel's background.
  // (Read at once: the header is redrawn with each batch.)
  const progress = await frame.locator('[data-testid="progress"]').evaluate((bar) => {
    // No named helpers in here: the test's compiler would wrap them in a function the page lacks.
    const fill = bar.querySelector('[data-testid="progress-fill"]')!;
    const [b, f] = [bar.getBoundingClientRect(), fill.getBoundingClientRect()];
    return { bar: { width: b.width, height: b.height }, fill: { width: f.width, height: f.height }, fillColour: getComputedStyle(fill).backgroundColor, page: getComputedStyle(document.body).backgroundColor };
  });
  assert.ok(progress.bar.height >= 6 && progress.fill.width > 0 && progress.fill.width <= progress.bar.width, `${theme}: progress ${JSON.stringify(progress)}`);
  const ratio = contrastRatio(progress.fillColour, progress.page);
  assert.ok(ratio !== undefined && ratio >= 3, `${theme}: progress fill ${progress.fillColour} on ${progress.page}: contrast ${ratio}`);
  assert.match((await frame.locator('[data-testid="progress-pct"]').textContent()) ?? '', /^\d+%$/);

  // ETA counts validation once a pass is due.
  assert.match((await frame.locator('[data-testid="eta"]').textContent()) ?? '', /^ETA \S+.*\(validation \S+/);

  // Memory: the step's peak and the plan's budget, with values.
  const memory = await legend(frame, 'memory');
  const names = memory.map((m) => m.label);
  for (const want of ['step peak (tensors)', 'budget']) assert.ok(names.includes(want), `${theme}: memory legend ${names.join(', ')}`);
  for (const m of memory) assert.match(m.value, /\d/, `${theme}: ${m.label} "${m.value}"`);
}

describe('The training panel at a glance (code-server)', { skip, timeout: 900_000 }, () => {
  before(() => {
    buildVsix();
    ensureSample();
  });

  test('a live run reads without hovering in dark, light and high contrast: axis titles, distinct series, legend values, integer steps, one batch fact, progress, ETA with validation, step peak against the budget', { timeout: 480_000 }, async () => {
    const ws = await glanceWorkspace();
    try {
      await withVSCode({ name: 'panel', workspace: ws, viewport: { width: 1500, height: 1000 }, settings: { 'workbench.colorTheme': 'Default Dark Modern', 'batchAdvisor.deviceMemoryGiB': 4, 'batchAdvisor.probe': false, 'git.openRepositoryInParentFolders': 'never' } }, async (vsc) => {
        await vsc.runCommand('View: Show Explorer');
        await vsc.page.locator('.explorer-folders-view .monaco-list-row', { hasText: CONFIG_NAME }).first().click();
        const lens = vsc.page.locator('.codelens-decoration a', { hasText: 'Train with this config' }).first();
        await lens.waitFor({ state: 'visible', timeout: 90_000 });
        await lens.click();
        await vsc.findInWebview('[data-testid="run"][data-status="running"] [data-testid="step"]', { timeoutMs: 120_000 });
        // The side bar and the config's editor make room: the panel alone, as a person watching a run would have it.
        await vsc.runCommand('View: Close Primary Side Bar');
        await vsc.page.locator('.tab', { hasText: CONFIG_NAME }).first().click();
        await vsc.runCommand('View: Close Editor');
        await vsc.page.locator('.tab', { hasText: 'Training: digits-glance' }).first().click();
        await vsc.page.waitForTimeout(1000);
        const { frame } = await vsc.findInWebview('[data-testid="run"][data-status="running"] [data-testid="step"]', { timeoutMs: 60_000 });

        // A short run so far (a handful of steps): its step ticks are still whole numbers, its legend shows values.
        await waitFor('a few steps', async () => Number(((await frame.locator('[data-testid="step"]').textContent()) ?? '0/0').split('/')[0]) >= 4 || !/^1\//.test((await frame.locator('[data-testid="epoch"]').textContent()) ?? ''));
        await vsc.page.waitForTimeout(500);
        const early = await legend(frame, 'loss');
        assert.match(early[1]!.value, /^\d/, `after the first batches the smoothed loss shows "${early[1]!.value}"`);
        const earlyTicks = ((await frame.locator('[data-testid="chart-loss"]').getAttribute('data-x-ticks')) ?? '').split(',').map(Number);
        assert.ok(earlyTicks.every(Number.isInteger), `early step ticks ${earlyTicks.join(', ')}`);
        await vsc.screenshot('early-dark');

        // Two validation passes in: markers to see, validation values in the legend.
        await waitFor('epoch 3', async () => Number(((await frame.locator('[data-testid="epoch"]').textContent()) ?? '0/').split('/')[0]) >= 3, 240_000);
        await vsc.page.waitForTimeout(1000);
        const shots: Record<string, string> = {};
        await assertGlance(frame, 'dark', { validated: true });
        shots['dark'] = await vsc.screenshot('live-dark');
        await vsc.scrollWebviewTo('[data-testid="chart-throughput"]');
        shots['memory-dark'] = await vsc.screenshot('live-dark-memory');
        await vsc.scrollWebviewTo('[data-testid="run"]');

        for (const [label, name] of [['Light Modern', 'light'], ['Dark High Contrast', 'high-contrast']] as const) {
          await vsc.setColorTheme(label);
          const themed = (await vsc.findInWebview(`body.${name === 'light' ? 'vscode-light' : 'vscode-high-contrast'} [data-testid="chart-memory"] canvas`, { timeoutMs: 30_000 })).frame;
          await vsc.page.waitForTimeout(1200);
          await assertGlance(themed, name, { validated: true });
          shots[name] = await vsc.screenshot(`live-${name}`);
          await vsc.scrollWebviewTo('[data-testid="chart-throughput"]');
          await vsc.screenshot(`live-${name}-memory`);
          await vsc.scrollWebviewTo('[data-testid="run"]');
        }
        if (process.env.E2E_UPDATE_SCREENSHOTS === '1') {
          for (const [name, path] of Object.entries(shots)) copyFileSync(path, join(ROOT, 'media', `screenshot-train-${name}.png`));
        }

        // Stopped: the memory chart's latest step peak and budget are the run's own figures.
        await frame.locator('[data-testid="stop"]').click();
        await waitFor('the run to stop', async () => ((await frame.locator('[data-testid="run-status"]').textContent()) ?? '').includes('stopped'));
        await vsc.page.waitForTimeout(800);
        const events = runEvents(ws);
        const start = events.find((e): e is RunStartEvent => e.type === 'run-start')!;
        const last = events.filter((e): e is BatchEvent => e.type === 'batch').at(-1)!;
        assert.ok(last.peakTensorBytes! > last.tensorBytes, `the step peak ${last.peakTensorBytes} is above the bytes after the step ${last.tensorBytes}`);
        const memory = Object.fromEntries((await legend(frame, 'memory')).map((m) => [m.label, m.value]));
        assert.equal(memory['step peak (tensors)'], formatBytes(last.peakTensorBytes!));
        assert.equal(memory['budget'], formatBytes(start.plan.budgetBytes));
        assert.equal(await frame.locator('[data-testid="tensor-peak"]').textContent(), formatBytes(last.peakTensorBytes!));
        await vsc.screenshot('stopped-high-contrast');
      });
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });

  test('the Suggest panel at 1280×800: the memory chart is whole in the first view and when scrolled to — its x-axis labels inside the window', { timeout: 240_000 }, async () => {
    await withVSCode({ name: 'panel-suggest', workspace: SAMPLE_WORKSPACE, viewport: { width: 1280, height: 800 }, settings: { 'workbench.colorTheme': 'Default Dark Modern', 'batchAdvisor.deviceMemoryGiB': 4, 'batchAdvisor.probe': false, 'git.openRepositoryInParentFolders': 'never' } }, async (vsc) => {
      await vsc.openFile('mnist.train.json');
      await vsc.runCommand('Batch Advisor: Suggest Batch Size');
      await vsc.findInWebview('[data-testid="batch-size"]', { timeoutMs: 120_000 });
      // The panel gets the whole window (config editor and side bar closed): the memory card then sits beside the devices and model cards.
      await vsc.page.locator('.tab', { hasText: 'mnist.train.json' }).first().click();
      await vsc.runCommand('View: Close Editor');
      await vsc.runCommand('View: Close Primary Side Bar');
      await vsc.findInWebview('[data-testid="memory"] canvas', { timeoutMs: 30_000 });
      await vsc.page.waitForTimeout(1000);
      const { frame } = await vsc.findInWebview('[data-testid="memory"] canvas');
      const canvasBox = () =>
        frame.locator('[data-testid="memory"] canvas').evaluate((c) => {
          const r = c.getBoundingClientRect();
          return { top: Math.round(r.top), bottom: Math.round(r.bottom), height: Math.round(r.height), viewport: window.innerHeight };
        });
      // The canvas holds the x-axis labels and title along its bottom: all of it inside the window,
      // in the first view (beside the recommendation) and when scrolled to.
      const first = await canvasBox();
      await vsc.screenshot('top');
      assert.ok(first.height >= 180, `the chart is tall enough to read (${first.height}px)`);
      assert.ok(first.top >= 0 && first.bottom <= first.viewport, `first view: the memory chart spans ${first.top}–${first.bottom}px of a ${first.viewport}px window`);
      await vsc.scrollWebviewTo('[data-testid="memory"]');
      const scrolled = await canvasBox();
      await vsc.screenshot('memory-chart');
      assert.ok(scrolled.top >= 0 && scrolled.bottom <= scrolled.viewport, `scrolled to: the memory chart spans ${scrolled.top}–${scrolled.bottom}px of a ${scrolled.viewport}px window`);
    });
  });
});
