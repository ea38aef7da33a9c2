/**
 * End-to-end (issue #12): the extension's activation in a real VS Code (code-server) loads no
 * command module; a command loads its modules on first use. activate()'s time is measured and
 * reported here (target ≤ 50 ms), not asserted: a timing on a machine shared with code-server and
 * Chromium is a benchmark figure, not a pass/fail (one CI run saw 97 ms where others saw 3–4 ms).
 *
 *   flock /tmp/e2e.lock node --import tsx --test --test-concurrency=1 test/e2e/activation.test.ts
 *
 * Reads activate()'s own time from the Batch Advisor log and VS Code's figure (code loading +
 * activate call) from "Developer: Show Running Extensions"; writes both to
 * test-results/activation.json and prints them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SAMPLE_WORKSPACE, ensureSample } from './fixtures';
import { RESULTS, ROOT, VSCode, buildVsix, e2eAvailable, withVSCode } from './harness';

// First use on a fresh machine: install what the e2e tests need (as the other scenario files do).
let available = e2eAvailable();
if (!available.ok && process.env.E2E_NO_SETUP !== '1') {
  execFileSync('bash', [join(ROOT, 'test', 'e2e', 'setup.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  available = e2eAvailable();
}
const skip = available.ok ? false : available.reason;

/** activate() itself: registering commands, CodeLens and serializer (issue #12's target). */
const ACTIVATE_TARGET_MS = 50;

async function waitForLog(vsc: VSCode, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = pattern.exec(vsc.extensionLog());
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no ${pattern} in the Batch Advisor log within ${timeoutMs} ms:\n${vsc.extensionLog()}`);
    await vsc.page.waitForTimeout(250);
  }
}

/** "Developer: Show Running Extensions": the activation time VS Code shows for Batch Advisor, in ms. */
async function runningExtensionsTime(vsc: VSCode): Promise<number | undefined> {
  await vsc.runCommand('Developer: Show Running Extensions');
  const list = vsc.page.locator('.runtime-extensions-editor .monaco-list').first();
  const row = vsc.page.locator('.runtime-extensions-editor .monaco-list-row', { hasText: 'Batch Advisor' }).first();
  try {
    await list.waitFor({ state: 'visible', timeout: 15_000 });
    // The list is virtual and sorted by activation time: a quick extension is near the end.
    for (let i = 0; !(await row.isVisible()); i++) {
      if (i === 40) return undefined;
      await list.hover();
      await vsc.page.mouse.wheel(0, 300);
      await vsc.page.waitForTimeout(150);
    }
  } catch {
    return undefined;
  }
  await vsc.screenshot('running-extensions');
  const text = await row.locator('.activation-time').first().textContent({ timeout: 5_000 }).catch(() => null);
  const m = /(\d+)\s*ms/.exec(text ?? '');
  return m ? Number(m[1]) : undefined;
}

describe('Batch Advisor activation in VS Code (code-server)', { skip, timeout: 300_000 }, () => {
  test('activation registers everything and loads no command (its time is reported); Suggest loads on first use', { timeout: 240_000 }, async () => {
    buildVsix();
    ensureSample();
    // samples/ holds mnist.train.json: workspaceContains:**/*.train.json activates at start-up.
    await withVSCode({ name: 'activation', workspace: SAMPLE_WORKSPACE, settings: { 'batchAdvisor.deviceMemoryGiB': 4 } }, async (vsc) => {
      const activated = await waitForLog(vsc, /Activated in (\d+(?:\.\d+)?) ms/, 60_000);
      const activateMs = Number(activated[1]);
      assert.doesNotMatch(vsc.extensionLog(), /loaded on first use/, 'a command module was loaded at activation');
      const vscodeMs = await runningExtensionsTime(vsc);
      assert.ok(vscodeMs !== undefined, 'Batch Advisor is not in Developer: Show Running Extensions');

      await vsc.runCommand('Batch Advisor: Suggest Batch Size');
      const firstUse = await waitForLog(vsc, /Suggest: loaded on first use in (\d+(?:\.\d+)?) ms/, 60_000);
      const firstUseMs = Number(firstUse[1]);
      await vsc.webviewText('[data-testid="batch-size"]', 120_000);

      const figures = { activateMs, vscodeActivationMs: vscodeMs ?? null, suggestFirstUseMs: firstUseMs };
      mkdirSync(RESULTS, { recursive: true });
      writeFileSync(join(RESULTS, 'activation.json'), `${JSON.stringify(figures, null, 2)}\n`);
      console.log(
        `# activate() ${activateMs} ms (target ≤ ${ACTIVATE_TARGET_MS}); VS Code's activation time (code loading + activate) ${vscodeMs ?? 'not shown'} ms; Suggest's modules loaded on first use in ${firstUseMs} ms`,
      );
      assert.ok(Number.isFinite(activateMs) && activateMs > 0, 'activate() reported its time');
    });
  });
});
