/**
 * End-to-end: the runs view and Compare in a real VS Code (code-server), on two short runs trained
 * beforehand with the CLI (different batch sizes and learning rates). Rows that are not cut; two runs
 * compared (the hyper-parameter table marks the fields that differ, the metric table's values are
 * the runs' own); a chart saved as PNG through the save dialog; a run renamed (meta.json, the
 * folder keeps its name; the panel says the new name); a run deleted (folder, row and panel gone).
 * Screenshots in dark and light land in test-results/runs-*.png.
 *
 *   npm run package --silent && E2E_SKIP_PACKAGE=1 node --import tsx --test --test-concurrency=1 test/e2e/runs.test.ts
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, before } from 'node:test';
import type { Frame } from 'playwright-core';
import { makeSample } from '../../src/cli/make-sample';
import { parseMetrics } from '../../src/core/run-folder/runs';
import type { EpochEvent } from '../../src/core/shared/protocol';
import { RESULTS, ROOT, buildVsix, e2eAvailable, withVSCode, type VSCode, waitFor } from './harness';

const available = e2eAvailable();
const skip = available.ok ? false : available.reason;

const RUNS = [
  { file: 'small.train.json', name: 'digits-small', batchSize: 8, learningRate: 0.001 },
  { file: 'large.train.json', name: 'digits-large', batchSize: 16, learningRate: 0.002 },
];

/** Two finished runs of two epochs on 160 real digits, trained with the CLI. */
async function runsWorkspace(): Promise<{ ws: string; dirs: Record<string, string> }> {
  const ws = mkdtempSync(join(tmpdir(), 'ba-e2e-runs-'));
  await makeSample(join(ws, 'digits'), { perDigit: 16 });
  const dirs: Record<string, string> = {};
  for (const r of RUNS) {
    const config = { name: r.name, dataset: 'digits', imageSize: [28, 28], channels: 1, model: 'tutorial-cnn', optimizer: 'adam', batchSize: r.batchSize, learningRate: r.learningRate, epochs: 2, probe: false };
    writeFileSync(join(ws, r.file), JSON.stringify(config, null, 2) + '\n');
    execFileSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'train', join(ws, r.file), '--json'], { cwd: ws, stdio: ['ignore', 'ignore', 'inherit'] });
    const root = join(ws, '.batch-advisor', 'runs');
    dirs[r.name] = join(root, readdirSync(root).find((d) => d.endsWith(`-${r.name}`))!);
  }
  return { ws, dirs };
}

function epochs(dir: string): EpochEvent[] {
  return parseMetrics(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).events.filter((e): e is EpochEvent => e.type === 'epoch');
}

function runsPane(vsc: VSCode) {
  return vsc.page.locator('.pane', { has: vsc.page.locator('.pane-header', { hasText: 'Batch Advisor Runs' }) });
}

function row(vsc: VSCode, text: string | RegExp) {
  return runsPane(vsc).locator('.monaco-list-row', { hasText: text }).first();
}

async function contextMenu(vsc: VSCode, rowText: string | RegExp, action: string): Promise<void> {
  await vsc.contextMenu(row(vsc, rowText), action);
}

/** The values of a table row, one per run (the header cells and the stat label left out). */
async function cells(frame: Frame, selector: string): Promise<string[]> {
  return frame.locator(`${selector} td:not(.stat)`).allTextContents();
}

describe('Runs view and Compare in VS Code (code-server)', { skip, timeout: 600_000 }, () => {
  before(() => buildVsix());

  test('rows are not cut; Compare tabulates hyper-parameters and metrics; a chart is saved as PNG; a run is renamed and deleted', { timeout: 480_000 }, async () => {
    const { ws, dirs } = await runsWorkspace();
    try {
      await withVSCode({ name: 'runs', workspace: ws, viewport: { width: 1500, height: 1000 }, settings: { 'workbench.colorTheme': 'Default Dark Modern', 'batchAdvisor.probe': false } }, async (vsc) => {
        await vsc.runCommand('Explorer: Focus on Batch Advisor Runs View');
        for (const r of RUNS) await row(vsc, r.name).waitFor({ state: 'visible', timeout: 60_000 });

        // Each row shows its status and headline metric in full (nothing cut off with an ellipsis).
        for (const r of RUNS) {
          const last = epochs(dirs[r.name]!).at(-1)!;
          const text = ((await row(vsc, r.name).textContent()) ?? '').trim();
          assert.equal(text, `${r.name}val acc ${(last.valAccuracy! * 100).toFixed(1)}%`, 'a completed run: the check icon says so, the row its headline metric');
          const cut = await row(vsc, r.name).locator('.monaco-icon-label-container').evaluate((el) => el.scrollWidth > el.clientWidth);
          assert.equal(cut, false, `the row of ${r.name} is not cut`);
        }
        // The tooltip holds the rest: status, the last epoch's metrics, the run's folder.
        const firstId = dirs[RUNS[0]!.name]!.split('/').pop()!;
        await row(vsc, RUNS[0]!.name).hover();
        const hover = vsc.page.locator('.monaco-hover, .workbench-hover', { hasText: `run ${firstId}` }).first();
        await hover.waitFor({ state: 'visible', timeout: 20_000 });
        assert.match((await hover.textContent()) ?? '', new RegExp(`${RUNS[0]!.name} — completed.*epoch 2 · loss [\\d.]+ · accuracy [\\d.]+% · val loss [\\d.]+ · val accuracy [\\d.]+%`, 's'));
        await vsc.screenshot('rows');
        await vsc.page.mouse.move(900, 500);

        // Compare the two: hyper-parameters side by side, the differing ones marked.
        await row(vsc, RUNS[0]!.name).click();
        await vsc.findInWebview('[data-testid="run"]', { timeoutMs: 60_000 });
        await row(vsc, RUNS[1]!.name).click({ modifiers: ['Control'] });
        await contextMenu(vsc, RUNS[1]!.name, 'Compare Runs');
        await vsc.findInWebview('[data-testid="compare"] [data-testid="param-table"]', { timeoutMs: 60_000 });
        // One editor group, the Compare panel in it (the first click opened the run beside).
        await vsc.runCommand('View: Single Column Editor Layout');
        await vsc.page.locator('.tab', { hasText: 'Compare: ' }).first().click();
        const { frame } = await vsc.findInWebview('[data-testid="compare"] [data-testid="param-table"]', { timeoutMs: 30_000, state: 'visible' });
        const columns = (await frame.locator('[data-testid="param-table"] thead th.run-col .run-name').allTextContents()).map((t) => t.trim());
        assert.deepEqual([...columns].sort(), RUNS.map((r) => r.name).sort());
        const params = await frame.locator('[data-testid="param-row"]').evaluateAll((els) =>
          els.map((e) => ({ key: e.getAttribute('data-key')!, differs: e.hasAttribute('data-differs'), values: [...e.querySelectorAll('td')].map((td) => td.textContent) })),
        );
        for (const p of params) assert.equal(p.differs, p.values[0] !== p.values[1], `${p.key}: marked exactly when its values differ (${p.values.join(' vs ')})`);
        const differing = params.filter((p) => p.differs).map((p) => p.key);
        for (const k of ['batchSize', 'effectiveBatch', 'learningRate']) assert.ok(differing.includes(k), `${k} differs (${differing.join(', ')})`);
        assert.ok(!differing.includes('model') && !differing.includes('optimizer'));
        assert.match((await frame.locator('[data-testid="param-summary"]').textContent()) ?? '', new RegExp(`^${differing.length} of ${params.length} differ: ${differing.join(', ')}$`));
        const byName = (name: string) => RUNS.find((r) => r.name === name)!;
        assert.deepEqual(await cells(frame, '[data-testid="param-row"][data-key="batchSize"]'), columns.map((c) => String(byName(c).batchSize)));
        assert.deepEqual(await cells(frame, '[data-testid="param-row"][data-key="model"]'), ['tutorial-cnn', 'tutorial-cnn']);

        // Metrics: each run's last and best validation accuracy from its own metrics.jsonl; the best run in bold.
        const last = columns.map((c) => epochs(dirs[c]!).at(-1)!.valAccuracy!);
        assert.deepEqual(await cells(frame, '[data-testid="metric-row"][data-metric="valAccuracy"][data-stat="last"]'), last.map((v) => String(Number(v.toPrecision(4)))));
        const best = columns.map((c) => epochs(dirs[c]!).reduce((b, e) => (e.valAccuracy! > b.valAccuracy! ? e : b)));
        assert.deepEqual(
          await cells(frame, '[data-testid="metric-row"][data-metric="valAccuracy"][data-stat="best"]'),
          best.map((e) => `${Number(e.valAccuracy!.toPrecision(4))} (epoch ${e.epoch})`),
        );
        const winners = await frame.locator('[data-testid="metric-row"][data-metric="valLoss"][data-stat="last"] td').evaluateAll((els) => els.filter((e) => !e.classList.contains('stat')).map((e) => e.classList.contains('winner')));
        const lastLoss = columns.map((c) => epochs(dirs[c]!).at(-1)!.valLoss!);
        if (lastLoss[0] !== lastLoss[1]) assert.deepEqual(winners, lastLoss.map((v) => v === Math.min(...lastLoss)));
        await vsc.scrollWebviewTo('[data-testid="param-table"]');
        await vsc.screenshot('compare-dark');
        await vsc.setColorTheme('Light Modern');
        await frame.locator('body.vscode-light [data-testid="compare"]').waitFor({ timeout: 15_000 });
        await vsc.screenshot('compare-light');
        await vsc.scrollWebviewTo('[data-testid="metric-table"]');
        await vsc.screenshot('compare-metrics-light');

        // Save the loss chart as PNG: the save dialog offers compare-loss.png in a run's folder; Enter saves it.
        await frame.locator('[data-testid="export-png-loss"]').click();
        const input = vsc.page.locator('.quick-input-widget .quick-input-box input');
        await input.waitFor({ state: 'visible', timeout: 15_000 });
        // The simple file dialog shows the folder first and adds the file name once it has listed the folder.
        const inRunFolder = /\.batch-advisor\/runs\/[^/]+\/compare-loss\.png$/;
        let offered = '';
        await waitFor('the save dialog to offer compare-loss.png in a run folder', async () => inRunFolder.test((offered = await input.inputValue())), 15_000).catch(() => undefined);
        assert.match(offered, inRunFolder);
        await vsc.page.keyboard.press('Enter');
        const png = Object.values(dirs).map((d) => join(d, 'compare-loss.png')).find((p) => offered.endsWith(p.slice(ws.length)))!;
        await waitFor('the PNG to be written', () => existsSync(png) && readFileSync(png).length > 1000);
        const bytes = readFileSync(png);
        assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG file');
        assert.ok(bytes.readUInt32BE(16) > 300 && bytes.readUInt32BE(20) > 200, `a chart-sized image (${bytes.readUInt32BE(16)} × ${bytes.readUInt32BE(20)})`);
        await vsc.page.locator('.notification-toast', { hasText: 'saved the compare-loss chart' }).first().waitFor({ state: 'visible', timeout: 15_000 });
        copyFileSync(png, join(RESULTS, 'runs-chart-compare-loss.png'));

        // Rename: the name goes to meta.json, the folder keeps its name, the row and the panel say it.
        await vsc.runCommand('View: Close All Editors');
        const small = dirs[RUNS[0]!.name]!;
        await contextMenu(vsc, RUNS[0]!.name, 'Rename Run…');
        await input.waitFor({ state: 'visible', timeout: 15_000 });
        assert.equal(await input.inputValue(), RUNS[0]!.name);
        await input.fill('baseline batch 8');
        await vsc.page.keyboard.press('Enter');
        await row(vsc, 'baseline batch 8').waitFor({ state: 'visible', timeout: 15_000 });
        assert.ok(existsSync(small), 'the folder keeps its name');
        assert.equal((JSON.parse(readFileSync(join(small, 'meta.json'), 'utf8')) as { name: string }).name, 'baseline batch 8');
        await row(vsc, 'baseline batch 8').click();
        const reopened = (await vsc.findInWebview('[data-testid="run-name"]', { timeoutMs: 60_000 })).frame;
        assert.equal(await reopened.locator('[data-testid="run-name"]').textContent(), 'baseline batch 8');
        await vsc.page.locator('.tab', { hasText: 'Run: baseline batch 8' }).first().waitFor({ state: 'visible', timeout: 15_000 });
        await vsc.screenshot('renamed-light');

        // Delete (confirmed in the modal dialog): the folder, its row and its panel are gone; the other run stays.
        await contextMenu(vsc, 'baseline batch 8', 'Delete Run');
        await vsc.page.locator('.monaco-dialog-box', { hasText: 'Delete run "baseline batch 8"' }).waitFor({ state: 'visible', timeout: 15_000 });
        await vsc.page.locator('.monaco-dialog-box .monaco-button', { hasText: /^Delete$/ }).click();
        await waitFor('the run folder to be deleted', () => !existsSync(small));
        await row(vsc, 'baseline batch 8').waitFor({ state: 'detached', timeout: 15_000 });
        await vsc.page.locator('.tab', { hasText: 'Run: baseline batch 8' }).first().waitFor({ state: 'detached', timeout: 15_000 });
        assert.ok(existsSync(dirs[RUNS[1]!.name]!), 'the other run is kept');
        await row(vsc, RUNS[1]!.name).waitFor({ state: 'visible', timeout: 5_000 });
        await vsc.screenshot('deleted');
      });
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });
});
