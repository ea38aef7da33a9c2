/**
 * Security (docs/RELIABILITY.md): the Suggest panel's CSP (no 'unsafe-inline'/'unsafe-eval', every
 * script with the page's nonce), messages from the webview validated before use (a crafted
 * `reveal` cannot open an arbitrary path), child processes never through a shell, no network
 * access in the product's code, and run names that cannot leave the runs folder.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { configForFolder } from '../../src/core/config';
import { fallbackPlan } from '../../src/core/planning/plan';
import { createRunDir, runsRoot, sanitizeRunName } from '../../src/core/run-folder/runs';
import type { SuggestReport } from '../../src/core/shared/report';
import { parseMessage } from '../../src/core/shared/ipc';
import { SUGGEST_CHANNEL, revealablePaths, type SuggestViewState } from '../../src/core/shared/webview-protocol';

const isWebviewToHost = (m: unknown): boolean => parseMessage(m, SUGGEST_CHANNEL.fromWebview).ok;
import { panelHtml } from '../../src/extension/panel-page';

const SRC = resolve(__dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sourceFiles(p) : /\.ts$/.test(n) ? [p] : [];
  });
}

describe('Suggest panel HTML', () => {
  test('CSP: default-src none, scripts only by nonce, no unsafe-inline/unsafe-eval; every script carries the nonce; a new nonce each time', () => {
    const html = panelHtml({ title: 'Batch Advisor', cspSource: 'vscode-resource:', scriptUri: 'vscode-resource:/dist/webview/suggest.js' });
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1] ?? '';
    assert.match(csp, /^default-src 'none';/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    assert.ok(nonce && nonce.length >= 16);
    const scripts = [...html.matchAll(/<script\b([^>]*)>/g)];
    assert.ok(scripts.length >= 1);
    for (const s of scripts) assert.match(s[1]!, new RegExp(`nonce="${nonce.replace(/[+/=]/g, '\\$&')}"`));
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handlers');
    const again = panelHtml({ title: 'Batch Advisor', cspSource: 'vscode-resource:', scriptUri: 'x' });
    assert.notEqual(/script-src 'nonce-([^']+)'/.exec(again)?.[1], nonce);
  });
});

describe('messages from the webview', () => {
  const report = {
    config: { ...configForFolder('/ws/data'), configPath: '/ws/a.train.json' },
    dataset: { root: '/ws/data', problems: [{ path: '/ws/data/cats/bad.png', kind: 'corrupt', message: 'x' }] },
  } as unknown as SuggestReport;
  const state: SuggestViewState = { kind: 'result', seq: 3, target: '/ws/a.train.json', report, restricted: false, notes: [] };

  test('malformed messages are rejected by shape', () => {
    for (const m of [null, 'reveal', { type: 'reveal' }, { type: 'reveal', path: 42 }, { type: 'run-command', command: 'rm -rf /' }, { type: 'csp-violation', directive: 1 }]) assert.equal(isWebviewToHost(m), false, JSON.stringify(m));
  });

  test('reveal opens only paths the panel shows: a crafted path is refused', () => {
    const ok = revealablePaths(state);
    for (const p of ['/ws/data', '/ws/a.train.json', '/ws/data/cats/bad.png']) assert.ok(ok.has(p), p);
    for (const p of ['/etc/passwd', '/ws/data/../../etc/shadow', '/ws/data/cats/other.png', '']) assert.ok(!ok.has(p), p);
    assert.equal(revealablePaths({ kind: 'idle', seq: 0 }).size, 0);
  });
});

describe('processes and network', () => {
  test('no child process through a shell, no network module or fetch in the product code', () => {
    const offenders: string[] = [];
    for (const f of sourceFiles(SRC)) {
      const text = readFileSync(f, 'utf8');
      const rel = relative(SRC, f);
      if (/shell:\s*true/.test(text)) offenders.push(`${rel}: shell: true`);
      if (/\b(execSync|exec)\s*\(\s*['"`]/.test(text) || /import\s*\{[^}]*\bexec\b[^}]*\}\s*from\s*'node:child_process'/.test(text)) offenders.push(`${rel}: exec (runs a shell)`);
      if (/from\s*'(node:)?(http|https|net|tls|dgram)'/.test(text)) offenders.push(`${rel}: network module`);
      if (/\bfetch\s*\(|XMLHttpRequest|new WebSocket/.test(text)) offenders.push(`${rel}: network call`);
    }
    assert.deepEqual(offenders, []);
  });
});

describe('run names', () => {
  test('a config name cannot leave the runs folder', () => {
    for (const name of ['../../etc', '..', '/abs/path', 'a/../../b', '..\\\\..\\\\win', '\u0000x', '.hidden', '']) {
      const s = sanitizeRunName(name);
      assert.match(s, /^[A-Za-z0-9][A-Za-z0-9._-]*$|^run$/, `${JSON.stringify(name)} → ${s}`);
      assert.ok(s !== '.' && s !== '..' && !s.includes('/') && !s.includes('\\\\'), s); // a plain folder name, never a path
    }
    const ws = mkdtempSync(join(tmpdir(), 'ba-sec-'));
    try {
      const config = configForFolder(join(ws, 'd'), { name: '../../../escape' });
      const dir = createRunDir(ws, config, fallbackPlan(config, { train: 1, validation: 0 }, 'test'));
      assert.equal(dirname(dir), runsRoot(ws));
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });
});

describe('e2e setup', () => {
  const APT_WAIT = resolve(__dirname, '../e2e/apt-wait.sh');
  /** Runs apt_wait with a fake apt-get that reports a held lock `locked` times, then succeeds. */
  function aptWait(locked: number, timeout: number): { code: number | null; out: string; calls: number } {
    const dir = mkdtempSync(join(tmpdir(), 'ba-apt-'));
    try {
      const fake = join(dir, 'apt-get');
      writeFileSync(
        fake,
        `#!/usr/bin/env bash\nn=$(cat "${dir}/n" 2>/dev/null || echo 0); echo $((n+1)) > "${dir}/n"\nif [ "$n" -lt ${locked} ]; then echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 123 (apt-get)" >&2; exit 100; fi\necho done\n`,
      );
      chmodSync(fake, 0o755);
      const r = spawnSync('bash', ['-c', `log() { echo "[log] $*"; }; SUDO=""; source "${APT_WAIT}"; apt_wait install -y x`], {
        env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}`, APT_LOCK_TIMEOUT: String(timeout), APT_LOCK_POLL: '0.1' },
        encoding: 'utf8',
        timeout: 30_000,
      });
      return { code: r.status, out: r.stdout + r.stderr, calls: Number(readFileSync(join(dir, 'n'), 'utf8')) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('apt held by another process: setup waits and retries, then installs', () => {
    const r = aptWait(3, 60);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.calls, 4);
    assert.match(r.out, /apt is locked by another process; waiting/);
  });

  test('apt held past the timeout: setup fails with apt\'s own message', () => {
    const r = aptWait(1000, 1);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /Could not get lock/);
  });
});
