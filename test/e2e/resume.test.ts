/**
 * End-to-end: Resume Run from the runs view in a real VS Code (code-server). A run that ended after
 * epoch 1 of 2 is resumed from its row's context menu: the panel opens with its first epoch already
 * drawn, trains epoch 2 live and completes, and the run folder holds one metrics.jsonl with both
 * parts. Resumed again, a run that trained every epoch asks how many epochs in all. After a window
 * reload the panel is restored from the run folder.
 *
 *   npm run package --silent && E2E_SKIP_PACKAGE=1 node --import tsx --test --test-concurrency=1 test/e2e/resume.test.ts
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { Frame } from 'playwright-core';
import { parseMetrics } from '../../src/core/run-folder/runs';
import type { BatchEvent, EpochEvent, RunStartEvent, TrainEvent } from '../../src/core/shared/protocol';
import { makeTinyDataset } from '../helpers/tiny-dataset';
import { ROOT, VSCode, buildVsix, e2eAvailable, withVSCode, waitFor } from './harness';

const available = e2eAvailable();
const skip = available.ok ? false : available.reason;

function events(runDir: string): TrainEvent[] {
  const file = join(runDir, 'metrics.jsonl');
  return existsSync(file) ? parseMetrics(readFileSync(file, 'utf8')).events : [];
}

function runRow(vsc: VSCode, text: string) {
  return vsc.page.locator('.pane', { has: vsc.page.locator('.pane-header', { hasText: 'Batch Advisor Runs' }) }).locator('.monaco-list-row', { hasText: text });
}

async function resumeFromRow(vsc: VSCode): Promise<void> {
  await vsc.runCommand('Explorer: Focus on Batch Advisor Runs View');
  const row = runRow(vsc, 'resumable').first();
  await row.waitFor({ state: 'visible', timeout: 60_000 });
  await vsc.contextMenu(row, 'Resume Run');
}

async function panelStatus(frame: Frame, pattern: RegExp, timeoutMs: number): Promise<string> {
  return waitFor(`the run status to match ${String(pattern)}`, async () => {
    const t = ((await frame.locator('[data-testid="run-status"]').first().textContent({ timeout: 5_000 }).catch(() => '')) ?? '').trim();
    return pattern.test(t) ? t : undefined;
  }, timeoutMs);
}

describe('Resume Run in VS Code (code-server)', { skip, timeout: 900_000 }, () => {
  before(() => buildVsix());

  test('runs view → Resume Run: the panel continues the curves, epoch 2 trains live, one metrics.jsonl; a finished run asks for more epochs', { timeout: 600_000 }, async () => {
    const ws = mkdtempSync(join(tmpdir(), 'ba-e2e-resume-'));
    try {
      await makeTinyDataset(join(ws, 'ds'), { classes: 2, perClass: 60, size: 16 });
      const config = join(ws, 'resumable.train.json');
      writeFileSync(config, JSON.stringify({ name: 'resumable', dataset: 'ds', imageSize: [16, 16], batchSize: 8, epochs: 2, probe: false, backend: 'wasm' }));
      // The run to resume: it ends after epoch 1 of 2 (12 steps an epoch: 96 training images at batch 8).
      execFileSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'train', config, '--max-steps', '12'], { cwd: ws, stdio: ['ignore', 'ignore', 'inherit'] });
      const root = join(ws, '.batch-advisor', 'runs');
      const [id] = readdirSync(root);
      const dir = join(root, id!);
      assert.deepEqual(events(dir).filter((e): e is EpochEvent => e.type === 'epoch').map((e) => e.epoch), [1]);

      await withVSCode({ name: 'resume', workspace: ws }, async (vsc) => {
        await resumeFromRow(vsc);
        // The live panel (a small run may already have finished by the time it is found).
        const panel = (await vsc.findInWebview(`[data-testid="run"][data-run-id="${id}"]`, { timeoutMs: 120_000 })).frame;
        await panelStatus(panel, /finished/, 240_000);
        const all = events(dir);
        const starts = all.filter((e): e is RunStartEvent => e.type === 'run-start');
        assert.equal(starts.length, 2, 'the resumed run appended to the same metrics.jsonl');
        assert.deepEqual(starts[1]!.resumed, { afterEpoch: 1, globalStep: 12 });
        assert.deepEqual(all.filter((e): e is EpochEvent => e.type === 'epoch').map((e) => e.epoch), [1, 2]);
        const steps = all.filter((e): e is BatchEvent => e.type === 'batch').map((b) => b.globalStep);
        assert.deepEqual(steps, Array.from({ length: 24 }, (_, i) => i + 1), 'the step count continued from 12');
        // The panel shows the run as a whole: epoch 2 of 2, with the loss curve over both parts.
        assert.match((await panel.locator('[data-testid="epoch"]').first().textContent()) ?? '', /2\s*\/\s*2/);
        await vsc.screenshot('resumed-dark');

        // Every epoch is trained now: Resume Run asks how many in all.
        await resumeFromRow(vsc);
        const input = vsc.page.locator('.quick-input-widget input');
        await input.waitFor({ state: 'visible', timeout: 30_000 });
        assert.match((await vsc.page.locator('.quick-input-widget').textContent()) ?? '', /Every epoch of this run \(2\) is trained/);
        await input.fill('3');
        await input.press('Enter');
        await waitFor('epoch 3 in metrics.jsonl', () => events(dir).some((e) => e.type === 'epoch' && e.epoch === 3), 240_000);
        assert.equal(JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')).epochs, 3);
        assert.equal(readdirSync(root).length, 1, 'no new run folder');
        // The second Resume's live panel took the place of the first one's.
        const again = (await vsc.findInWebview(`[data-testid="run"][data-run-id="${id}"]`, { timeoutMs: 120_000 })).frame;
        await panelStatus(again, /finished/, 240_000);

        // After a window reload VS Code restores the panel, read again from the run folder.
        await vsc.runCommand('Developer: Reload Window');
        await vsc.page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
        const restored = (await vsc.findInWebview(`[data-testid="run"] [data-testid="run-id"]`, { timeoutMs: 120_000 })).frame;
        assert.equal((await restored.locator('[data-testid="run-id"]').first().textContent())?.trim(), id);
        assert.match((await restored.locator('[data-testid="epoch"]').first().textContent()) ?? '', /3\s*\/\s*3/);
        await vsc.screenshot('restored-after-reload');
        assert.equal(await vsc.page.locator('.tab', { hasText: 'resumable' }).count(), 1, 'one panel for the run: the second Resume replaced the first one\'s panel');
      });
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });
});
