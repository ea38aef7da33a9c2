/**
 * End-to-end: training in a real VS Code (code-server) — the Train lens, the live training panel,
 * Stop, the runs view (reopen, compare, CSV), reload mid-run and the out-of-memory Retry.
 *
 *   npm run build && flock /tmp/e2e.lock node --import tsx --test --test-concurrency=1 test/e2e/train.test.ts
 *
 * Screenshots land in test-results/ (the README's media/screenshot-train-*.png come from panel.test.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Frame } from 'playwright-core';
import { parseMetrics } from '../../src/core/run-folder/runs';
import type { SuggestReport } from '../../src/core/shared/report';
import type { BatchEvent, RunStartEvent } from '../../src/core/shared/protocol';
import { makeSample } from '../../src/cli/make-sample';
import { SAMPLE_DATASET, ensureSample } from './fixtures';
import { ROOT, VSCode, buildVsix, e2eAvailable, withVSCode, waitText } from './harness';
import { plannedFor } from '../../src/core/shared/plan';

const available = e2eAvailable();
const skip = available.ok ? false : available.reason;

const CONFIG_NAME = 'auto.train.json';

/**
 * A workspace with a config on 2,000 of the bundled digits (200 a class, so an epoch ends in seconds even
 * on a loaded machine; the whole sample at the plan's micro-batch 2 took minutes): "batchSize": "auto",
 * no learning rate (planned).
 */
async function trainWorkspace(epochs: number): Promise<string> {
  const ws = mkdtempSync(join(tmpdir(), 'ba-e2e-train-'));
  await makeSample(join(ws, 'digits'), { perDigit: 200 });
  const config = { name: 'mnist-auto', dataset: 'digits', imageSize: [28, 28], channels: 1, model: 'tutorial-cnn', optimizer: 'adam', batchSize: 'auto', epochs };
  writeFileSync(join(ws, CONFIG_NAME), JSON.stringify(config, null, 2) + '\n');
  return ws;
}

function cliSuggest(configPath: string, deviceGiB: number): SuggestReport {
  return JSON.parse(
    // The memory model's plan (the probe's own scenario is plan.test.ts i); the window below has the probe off too.
    execFileSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'suggest', configPath, '--json', '--no-probe', '--device-memory', String(deviceGiB)], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }),
  ) as SuggestReport;
}

/**
 * Device memory (GiB) small enough that only 12 images fit per pass: the planner then trains on
 * micro-batches with gradient accumulation. From the memory model's fixed and per-image bytes.
 */
function accumulationDeviceGiB(configPath: string): number {
  const m = cliSuggest(configPath, 4).memory;
  return Number(((m.fixedBytes + 12 * m.perSampleBytes) / (1 - m.headroom) / 2 ** 30).toFixed(5));
}

function runDirs(ws: string): string[] {
  const root = join(ws, '.batch-advisor', 'runs');
  return existsSync(root) ? readdirSync(root).sort().map((d) => join(root, d)) : [];
}

function events(runDir: string) {
  const file = join(runDir, 'metrics.jsonl');
  return existsSync(file) ? parseMetrics(readFileSync(file, 'utf8')).events : [];
}

/** The training panel's frame (the one holding `[data-testid="run"]`), waiting for it. */
async function panelFrame(vsc: VSCode, selector = '[data-testid="run"]'): Promise<Frame> {
  return (await vsc.findInWebview(selector, { timeoutMs: 60_000 })).frame;
}

/** Opens the config from the Explorer (Quick Open's file search can lag on a loaded machine). */
async function openConfig(vsc: VSCode): Promise<void> {
  await vsc.runCommand('View: Show Explorer');
  await vsc.page.locator('.explorer-folders-view .monaco-list-row', { hasText: CONFIG_NAME }).first().click();
  await vsc.page.locator('.tab', { hasText: CONFIG_NAME }).first().waitFor({ state: 'visible', timeout: 15_000 });
}

async function clickLens(vsc: VSCode, text: string): Promise<void> {
  const lens = vsc.page.locator('.codelens-decoration a', { hasText: text }).first();
  // The extension host starts slowly on a loaded machine: the lenses come with its activation.
  await lens.waitFor({ state: 'visible', timeout: 90_000 });
  await lens.click();
}

/** The runs view's row for a run folder name (the view lives in the Explorer). */
function runRow(vsc: VSCode, text: string | RegExp) {
  return vsc.page.locator('.pane', { has: vsc.page.locator('.pane-header', { hasText: 'Batch Advisor Runs' }) }).locator('.monaco-list-row', { hasText: text });
}

async function showRunsView(vsc: VSCode): Promise<void> {
  await vsc.runCommand('Explorer: Focus on Batch Advisor Runs View');
  await vsc.page.locator('.pane-header', { hasText: 'Batch Advisor Runs' }).first().waitFor({ state: 'visible', timeout: 15_000 });
}

describe('Training in VS Code (code-server)', { skip, timeout: 1_200_000 }, () => {
  before(() => {
    buildVsix();
    ensureSample();
  });
  after(() => undefined);

  test('Train lens → live panel (plan = CLI, loss falls, epochs advance) → Stop → runs view: reopen, compare, CSV', { timeout: 600_000 }, async () => {
    const ws = await trainWorkspace(4);
    const configPath = join(ws, CONFIG_NAME);
    const deviceGiB = accumulationDeviceGiB(configPath);
    const cli = cliSuggest(configPath, deviceGiB).plan;
    assert.ok(cli.accumulationSteps > 1, `the device memory ${deviceGiB} GiB makes a plan with accumulation (got ${cli.accumulationSteps})`);
    try {
      await withVSCode({ name: 'train-a', workspace: ws, settings: { 'workbench.colorTheme': 'Default Dark Modern', 'batchAdvisor.deviceMemoryGiB': deviceGiB, 'batchAdvisor.probe': false } }, async (vsc) => {
        await openConfig(vsc);
        await clickLens(vsc, 'Train with this config');
        const frame = await panelFrame(vsc);
        await waitText(frame, '[data-testid="run-status"]', /running/);

        // The panel's plan header, the run-start event and plan.json all equal `suggest --json`.
        assert.equal(await frame.locator('[data-testid="plan-micro-batch"]').textContent(), String(cli.microBatchSize));
        assert.equal(await frame.locator('[data-testid="plan-accumulation"]').textContent(), String(cli.accumulationSteps));
        assert.equal(await frame.locator('[data-testid="plan-lr"]').textContent(), String(Number(cli.learningRate.value.toPrecision(4))));
        assert.equal(await frame.locator('[data-testid="plan-warmup"]').textContent(), cli.warmup.steps > 0 ? `${cli.warmup.steps.toLocaleString('en-US')} steps` : 'no warmup');
        const [dir] = runDirs(ws);
        assert.ok(dir, 'a run folder was created');
        const planJson = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as typeof cli;
        const start = events(dir).find((e) => e.type === 'run-start') as RunStartEvent;
        for (const p of [planJson, start.plan]) {
          assert.deepEqual(
            [p.microBatchSize, p.accumulationSteps, p.effectiveBatchSize, p.learningRate.value, p.warmup.steps, p.warmup.startLearningRate],
            [cli.microBatchSize, cli.accumulationSteps, cli.effectiveBatchSize, cli.learningRate.value, cli.warmup.steps, cli.warmup.startLearningRate],
          );
        }

        // Status bar item while the run is live.
        await vsc.page.locator('.statusbar-item', { hasText: 'Training mnist-auto' }).first().waitFor({ state: 'visible', timeout: 30_000 });

        // Epoch advances and the loss falls (panel and metrics.jsonl agree).
        // A hang ceiling, not a speed: the wait lasts as long as batches keep arriving (a loaded machine).
        await waitText(frame, '[data-testid="epoch"]', /^2\/4$/, 120_000, () => events(dir).filter((e) => e.type === 'batch').length);
        await vsc.page.waitForTimeout(1500);
        await vsc.screenshot('training-dark');
        const batches = events(dir).filter((e): e is BatchEvent => e.type === 'batch');
        const firstLoss = batches[0]!.loss;
        const shownLoss = Number(await frame.locator('[data-testid="loss"]').textContent());
        assert.ok(shownLoss < firstLoss, `loss fell from ${firstLoss} to ${shownLoss}`);
        const drawn = Number(await frame.locator('[data-testid="charts"]').getAttribute('data-redraw-ms'));
        assert.ok(drawn >= 0 && Number.isFinite(drawn), 'the charts were drawn');

        await frame.locator('[data-testid="stop"]').click();
        await waitText(frame, '[data-testid="run-status"]', /stopped/, 60_000);
        assert.equal(await frame.locator('[data-testid="stop"]').count(), 0, 'no Stop button once stopped');
        await vsc.page.locator('.statusbar-item', { hasText: 'Training mnist-auto' }).first().waitFor({ state: 'hidden', timeout: 15_000 });
        await vsc.screenshot('stopped-dark');

        // The runs view lists it with its status and metrics; reopen it after closing the panel.
        await vsc.runCommand('View: Close All Editors');
        await showRunsView(vsc);
        const row = runRow(vsc, 'mnist-auto').first();
        await row.waitFor({ state: 'visible', timeout: 20_000 });
        assert.match((await row.textContent()) ?? '', /stopped · val acc [\d.]+%/);
        await row.click();
        const reopened = await panelFrame(vsc);
        await waitText(reopened, '[data-testid="run-status"]', /stopped/, 30_000);
        assert.equal(await reopened.locator('[data-testid="run-id"]').textContent(), dir.split('/').pop());

        // Export CSV: one row per step and per epoch end.
        await reopened.locator('[data-testid="export-csv"]').click();
        await vsc.page.locator('.tab', { hasText: 'metrics.csv' }).first().waitFor({ state: 'visible', timeout: 20_000 });
        const csv = readFileSync(join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
        const all = events(dir);
        assert.match(csv[0]!, /^time,epoch,step,globalStep,loss,accuracy,valLoss,valAccuracy,learningRate/);
        assert.equal(csv.length - 1, all.filter((e) => e.type === 'batch' || e.type === 'epoch').length);

        // A second run (a few steps), then both compared on the same charts.
        await openConfig(vsc);
        await clickLens(vsc, 'Train with this config');
        const second = await panelFrame(vsc, '[data-testid="run"][data-status="running"] [data-testid="step"]');
        await second.locator('[data-testid="stop"]').click();
        await waitText(second, '[data-testid="run-status"]', /stopped/, 60_000);
        await vsc.runCommand('View: Close All Editors');
        await showRunsView(vsc);
        await runRow(vsc, 'mnist-auto').nth(1).waitFor({ state: 'visible', timeout: 20_000 });
        await runRow(vsc, 'mnist-auto').nth(0).click();
        await runRow(vsc, 'mnist-auto').nth(1).click({ modifiers: ['Control'] });
        await vsc.contextMenu(runRow(vsc, 'mnist-auto').nth(1), 'Compare Runs');
        const compare = (await vsc.findInWebview('[data-testid="run"] + [data-testid="run"]', { timeoutMs: 180_000 })).frame;
        assert.equal(await compare.locator('[data-testid="run"]').count(), 2);
        await vsc.page.waitForTimeout(1000);
        await vsc.screenshot('compare-dark');

        await vsc.setColorTheme('Light Modern');
        await vsc.page.waitForTimeout(1000);
        await vsc.screenshot('compare-light');
        await runRow(vsc, 'mnist-auto').nth(1).click();
        await vsc.page.waitForTimeout(1500);
        await vsc.screenshot('run-light');

        // High contrast: the panel takes the theme's colours (its body gets VS Code's theme class) and redraws.
        await vsc.setColorTheme('Dark High Contrast');
        // The charts sit beside the run header, not inside it; the compare panel is open too, so look for a frame with both.
        const hc = await panelFrame(vsc, 'body.vscode-high-contrast:has([data-testid="run"]) [data-testid="charts"] canvas');
        assert.ok(await hc.locator('canvas').count(), 'charts drawn in high contrast');
        await vsc.page.waitForTimeout(1500);
        await vsc.screenshot('run-high-contrast');
      });
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });

  test('Reloading the window mid-run stops the run and says so; the run keeps its metrics', { timeout: 240_000 }, async () => {
    const ws = await trainWorkspace(20);
    try {
      await withVSCode({ name: 'train-reload', workspace: ws, settings: { 'batchAdvisor.deviceMemoryGiB': 4, 'batchAdvisor.probe': false } }, async (vsc) => {
        await openConfig(vsc);
        await clickLens(vsc, 'Train with this config');
        const frame = await panelFrame(vsc, '[data-testid="run"][data-status="running"] [data-testid="step"]');
        assert.ok(frame);
        await vsc.runCommand('Developer: Reload Window');
        await vsc.page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
        await vsc.page.waitForTimeout(3000);
        const [dir] = runDirs(ws);
        const all = events(dir!);
        const end = [...all].reverse().find((e) => e.type === 'run-end');
        assert.ok(end && end.type === 'run-end' && end.status === 'stopped', 'the run ends "stopped"');
        assert.match(end.message ?? '', /closed or reloaded while training/);
        assert.ok(all.some((e) => e.type === 'batch'), 'its metrics are kept');
        await showRunsView(vsc);
        await runRow(vsc, /mnist-auto.*stopped/).first().waitFor({ state: 'visible', timeout: 20_000 });
        await runRow(vsc, 'mnist-auto').first().click();
        const replay = await panelFrame(vsc);
        await waitText(replay, '[data-testid="run-message"]', /closed or reloaded while training/, 30_000);
        await vsc.screenshot('after-reload');
      });
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });

  test('Out of memory: the panel says so and "Retry at batch N" trains again with the smaller batch', { timeout: 240_000 }, async () => {
    const ws = await trainWorkspace(1);
    try {
      // The trainer's test fault hook: an out-of-memory error before optimizer step 6 of any run.
      await withVSCode({ name: 'train-oom', workspace: ws, settings: { 'batchAdvisor.deviceMemoryGiB': 4, 'batchAdvisor.probe': false }, env: { BATCH_ADVISOR_FAULT: 'oom@6' } }, async (vsc) => {
        await openConfig(vsc);
        await clickLens(vsc, 'Train with this config');
        const frame = await panelFrame(vsc, '[data-testid="run"][data-status="failed"]');
        assert.match(await frame.locator('[data-testid="run-message"]').textContent() ?? '', /Out of memory at batch size \d+/);
        const retry = frame.locator('[data-testid="retry"]');
        const label = (await retry.textContent()) ?? '';
        const n = Number(/Retry at batch (\d+)/.exec(label)?.[1]);
        assert.ok(n >= 1, `retry offers a batch (${label})`);
        await vsc.screenshot('oom');
        await retry.click();
        // The retried run: a new run folder whose plan trains on batches of n, and it trains.
        const deadline = Date.now() + 120_000;
        while (!(runDirs(ws).length === 2 && events(runDirs(ws)[1]!).some((e) => e.type === 'batch'))) {
          assert.ok(Date.now() < deadline, 'the retried run trains');
          await new Promise((r) => setTimeout(r, 500));
        }
        const second = runDirs(ws)[1]!;
        const start = events(second).find((e) => e.type === 'run-start') as RunStartEvent;
        assert.equal(start.plan.microBatchSize, n);
        const runSel = `[data-testid="run"][data-run-id="${second.split('/').pop()}"]`;
        const again = await panelFrame(vsc, `${runSel} [data-testid="plan-micro-batch"]`);
        assert.equal(await again.locator('[data-testid="plan-micro-batch"]').first().textContent(), String(n));
        // The header's two facts agree: the backend that runs, and the plan made for that backend on its memory
        // (the device memory setting is host memory when the run trains on wasm, never "Planned GPU").
        await waitText(again, `${runSel} [data-testid="backend"]`, new RegExp(`^${start.backend}$`));
        assert.equal(await again.locator(`${runSel} [data-testid="plan-device"]`).textContent(), plannedFor(start.plan));
        assert.ok(plannedFor(start.plan).startsWith(`${start.backend} on `));
        if (start.backend !== 'tensorflow-gpu') assert.doesNotMatch(plannedFor(start.plan), /GPU/);
        await vsc.screenshot('retried');
      });
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });
});

describe('Editing a training config in VS Code (code-server)', { skip, timeout: 300_000 }, () => {
  test('diagnostics on the right line; "Suggested: N, lr … — apply" changes batchSize and Undo restores it', { timeout: 240_000 }, async () => {
    const ws = mkdtempSync(join(tmpdir(), 'ba-e2e-config-'));
    // Line 3 holds the missing dataset.
    writeFileSync(join(ws, 'broken.train.json'), '{\n  "name": "broken",\n  "dataset": "no-such-folder",\n  "batchSize": "auto"\n}\n');
    writeFileSync(join(ws, 'big.train.json'), JSON.stringify({ name: 'big', dataset: SAMPLE_DATASET, imageSize: [28, 28], channels: 1, model: 'tutorial-cnn', batchSize: 4096, epochs: 1 }, null, 2) + '\n');
    try {
      // The probe (scenario g) is off: this scenario is about editing, and its trials take minutes on a loaded machine.
      await withVSCode({ name: 'config-edit', workspace: ws, settings: { 'batchAdvisor.deviceMemoryGiB': 0.5, 'batchAdvisor.probe': false } }, async (vsc) => {
        await vsc.runCommand('View: Show Explorer');
        await vsc.page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'broken.train.json' }).first().click();
        await vsc.runCommand('View: Focus Problems');
        const problem = vsc.page.locator('.markers-panel .monaco-list-row', { hasText: 'Dataset folder not found' }).first();
        await problem.waitFor({ state: 'visible', timeout: 30_000 });
        assert.match((await problem.textContent()) ?? '', /Ln 3, Col 14/);
        await vsc.screenshot('diagnostic');

        await vsc.page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'big.train.json' }).first().click();
        await vsc.page.locator('.tab', { hasText: 'big.train.json' }).first().waitFor({ state: 'visible', timeout: 15_000 });
        await clickLens(vsc, 'Suggest batch size');
        await vsc.findInWebview('[data-testid="batch-size"]', { timeoutMs: 120_000 });
        await vsc.page.locator('.tab', { hasText: 'big.train.json' }).first().click();
        const apply = vsc.page.locator('.codelens-decoration a', { hasText: /Suggested: \d+, lr [\d.e-]+(, warmup \d+)? — apply/ }).first();
        await apply.waitFor({ state: 'visible', timeout: 30_000 });
        const n = Number(/Suggested: (\d+)/.exec((await apply.textContent()) ?? '')?.[1]);
        assert.ok(n >= 1 && n < 4096, `a batch that fits is suggested (${n})`);
        const warning = vsc.page.locator('.markers-panel .monaco-list-row', { hasText: 'Batch 4096 is predicted' }).first();
        await warning.waitFor({ state: 'visible', timeout: 30_000 });
        const batchLine = readFileSync(join(ws, 'big.train.json'), 'utf8').split('\n').findIndex((l) => l.includes('"batchSize"')) + 1;
        assert.match((await warning.textContent()) ?? '', new RegExp(`Ln ${batchLine}, Col \\d+`));
        await vsc.screenshot('apply-lens');
        await apply.click();
        const line = vsc.page.locator('.view-line', { hasText: '"batchSize"' }).first();
        // Monaco renders spaces as U+00A0.
        const editorShows = (want: string) =>
          vsc.page.waitForFunction((w) => [...document.querySelectorAll('.view-line')].some((l) => (l.textContent ?? '').replace(/\u00a0/g, ' ').includes(`"batchSize": ${w}`)), want, { timeout: 15_000 });
        await editorShows(String(n));
        await vsc.screenshot('applied');
        await vsc.page.locator('.editor-group-container .monaco-editor .view-line', { hasText: '"name"' }).first().click();
        await vsc.page.keyboard.press('Control+z');
        await editorShows('4096');
        assert.match((await line.textContent()) ?? '', /4096/);
        await vsc.screenshot('undone');
      });
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });

  test('an accumulated plan applied with the lens (batch × accumulation, lr, warmup in one edit): the config trains that plan, field by field; one Undo restores the file', { timeout: 300_000 }, async () => {
    const ws = await trainWorkspace(1);
    const configPath = join(ws, CONFIG_NAME);
    const original = readFileSync(configPath, 'utf8');
    const deviceGiB = accumulationDeviceGiB(configPath);
    const advised = cliSuggest(configPath, deviceGiB).plan;
    assert.ok(advised.accumulationSteps > 1, `an accumulated plan at ${deviceGiB} GiB`);
    try {
      await withVSCode({ name: 'apply-plan', workspace: ws, settings: { 'batchAdvisor.deviceMemoryGiB': deviceGiB, 'batchAdvisor.probe': false } }, async (vsc) => {
        await openConfig(vsc);
        await clickLens(vsc, 'Suggest batch size');
        await vsc.findInWebview('[data-testid="batch-size"]', { timeoutMs: 120_000 });
        await vsc.page.locator('.tab', { hasText: CONFIG_NAME }).first().click();
        const apply = vsc.page.locator('.codelens-decoration a', { hasText: /Suggested: \d+ × \d+, lr/ }).first();
        await apply.waitFor({ state: 'visible', timeout: 30_000 });
        const title = (await apply.textContent()) ?? '';
        const lr = Number(advised.learningRate.value.toPrecision(3));
        assert.ok(title.includes(`Suggested: ${advised.microBatchSize} × ${advised.accumulationSteps}, lr ${lr}`), `lens "${title}" vs plan ${advised.microBatchSize} × ${advised.accumulationSteps}, lr ${lr}`);
        await vsc.screenshot('apply-plan-lens');
        await apply.click();
        await vsc.page.waitForFunction(() => [...document.querySelectorAll('.view-line')].some((l) => (l.textContent ?? '').includes('"accumulationSteps"')), undefined, { timeout: 15_000 });
        await vsc.runCommand('File: Save');
        await vsc.page.waitForTimeout(500);
        const applied = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
        assert.deepEqual([applied.batchSize, applied.accumulationSteps, applied.learningRate, applied.warmupSteps], [advised.microBatchSize, advised.accumulationSteps, advised.learningRate.value, advised.warmup.steps]);
        await vsc.screenshot('apply-plan-applied');

        // The applied config trains the suggestion's plan.
        const out = execFileSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'train', configPath, '--json', '--max-steps', '2', '--device-memory', String(deviceGiB)], { cwd: ws, encoding: 'utf8' });
        const start = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string }).find((e): e is RunStartEvent => e.type === 'run-start')!;
        const p = start.plan;
        assert.deepEqual(
          [p.microBatchSize, p.accumulationSteps, p.effectiveBatchSize, p.learningRate.value, p.warmup.steps, p.loading.strategy],
          [advised.microBatchSize, advised.accumulationSteps, advised.effectiveBatchSize, advised.learningRate.value, advised.warmup.steps, advised.loading.strategy],
        );

        // One Undo restores every field.
        await vsc.page.locator('.editor-group-container .monaco-editor .view-line', { hasText: '"name"' }).first().click();
        await vsc.page.keyboard.press('Control+z');
        await vsc.runCommand('File: Save');
        await vsc.page.waitForTimeout(500);
        assert.equal(readFileSync(configPath, 'utf8'), original);
      });
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });
});
