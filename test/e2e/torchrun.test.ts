/**
 * End-to-end: a torchrun engine run started from the Train lens in a real VS Code (code-server),
 * shown live in the training panel: the config says "engine": "torchrun" and "nprocPerNode": 2, the
 * Suggest panel states the torchrun plan (16 per device × 2 devices = 32, its learning rate), the
 * panel shows the torch backend and the same global batch and learning rate, its step
 * count advances while the run trains, and the run ends completed with its metrics.jsonl written
 * by rank 0. Needs Python with torch: skipped, saying so, without it.
 *
 *   npm run package --silent && E2E_SKIP_PACKAGE=1 node --import tsx --test --test-concurrency=1 test/e2e/torchrun.test.ts
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { makeSample } from '../../src/cli/make-sample';
import { parseMetrics } from '../../src/core/run-folder/runs';
import { findTorchPython } from '../../src/core/torchrun/python';
import { buildVsix, e2eAvailable, withVSCode, waitText } from './harness';

const CONFIG_NAME = 'digits.train.json';
const available = e2eAvailable();

describe('A torchrun run in VS Code (code-server)', { timeout: 600_000 }, () => {
  let skip: string | undefined = available.ok ? undefined : available.reason;
  before(async () => {
    if (skip) return;
    try {
      await findTorchPython();
    } catch (e) {
      skip = (e as Error).message;
      return;
    }
    buildVsix();
  });

  test('the Train lens starts 2 torchrun processes and the panel shows the run live', { timeout: 480_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const ws = mkdtempSync(join(tmpdir(), 'ba-e2e-torchrun-'));
    try {
      await makeSample(join(ws, 'digits'), { perDigit: 100 }); // 800 to train on: 25 steps of 32 per epoch
      const config = { name: 'digits-ddp', dataset: 'digits', imageSize: [28, 28], channels: 1, model: 'tutorial-cnn', batchSize: 16, epochs: 3, probe: false, engine: 'torchrun', nprocPerNode: 2 };
      writeFileSync(join(ws, CONFIG_NAME), JSON.stringify(config, null, 2) + '\n');
      await withVSCode({ name: 'torchrun', workspace: ws, settings: { 'workbench.colorTheme': 'Default Dark Modern', 'batchAdvisor.probe': false } }, async (vsc) => {
        await vsc.runCommand('View: Show Explorer');
        await vsc.page.locator('.explorer-folders-view .monaco-list-row', { hasText: CONFIG_NAME }).first().click();
        // Suggest states the plan the torchrun processes will train at; the run's panel shows the same.
        await vsc.runCommand('Batch Advisor: Suggest Batch Size');
        const stated = await vsc.webviewText('[data-testid="torchrun-plan"]', 180_000);
        const m = /^torchrun on 2 processes: batch 16 per device × 2 devices = 32, learning rate (\S+) for the global batch, 25 steps per epoch/.exec(stated);
        assert.ok(m, stated);
        await vsc.scrollWebviewTo('[data-testid="torchrun-plan"]');
        await vsc.screenshot('suggest-torchrun');
        const lens = vsc.page.locator('.codelens-decoration a', { hasText: 'Train with this config' }).first();
        await lens.waitFor({ state: 'visible', timeout: 90_000 });
        await lens.click();
        const { frame } = await vsc.findInWebview('[data-testid="run"] [data-testid="backend"]', { timeoutMs: 240_000 });
        await waitText(frame, '[data-testid="backend"]', /^torch-gloo$/);
        const planBatch = (await frame.locator('[data-testid="plan-batch"]').textContent())?.trim() ?? '';
        assert.match(planBatch, /^16 per device × 2 devices = 32 · lr /);
        // The same rate (Suggest shows 3 significant digits, the panel 4).
        const shownLr = Number(/ · lr (\S+)/.exec(planBatch)?.[1]);
        assert.ok(Math.abs(shownLr - Number(m[1])) <= 0.005 * Number(m[1]), `the panel's "${planBatch}" has the learning rate Suggest stated (${m[1]})`);
        // Live: the step count moves while it trains (before the run ends).
        await waitText(frame, '[data-testid="step"]', /^\d+\/25$/, 120_000);
        await waitText(frame, '[data-testid="run-status"]', /running/, 60_000);
        await vsc.screenshot('live');
        // Hang ceilings, not speeds: each wait lasts as long as batches keep arriving (a loaded machine).
        const root = join(ws, '.batch-advisor', 'runs');
        const batches = () => readdirSync(root).reduce((n, d) => n + (existsSync(join(root, d, 'metrics.jsonl')) ? parseMetrics(readFileSync(join(root, d, 'metrics.jsonl'), 'utf8')).events.filter((e) => e.type === 'batch').length : 0), 0);
        await waitText(frame, '[data-testid="epoch"]', /^[23]\/3$/, 120_000, batches);
        await waitText(frame, '[data-testid="run-status"]', /finished/, 120_000, batches);
        const runDir = join(root, readdirSync(root)[0]!);
        const evs = parseMetrics(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')).events;
        assert.deepEqual([...new Set(evs.map((e) => e.type))], ['run-start', 'batch', 'epoch', 'run-end']);
        assert.equal(evs.filter((e) => e.type === 'batch').length, 75);
      });
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });
});
