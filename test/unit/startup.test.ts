/**
 * Start-up (issue #12): the built CLI and extension load only what a command needs.
 * `--version` prints package.json's version; `--help` and the extension's activation load none of
 * the heavy modules (sharp, systeminformation); the config validator ships precompiled (no ajv
 * compiler in the bundles). Module loads are read from require.cache of a real `node dist/…` process.
 */
import assert from 'node:assert/strict';
import { fork, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PROTOCOL_VERSION } from '../../src/core/shared/protocol';
import { writeImage } from '../helpers/images';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'dist', 'cli.js');
const EXTENSION = join(ROOT, 'dist', 'extension.js');
const TRAINER = join(ROOT, 'dist', 'trainer.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** Files that must not be loaded at start: native sharp and the systeminformation bundle. */
const HEAVY = [/[\\/]node_modules[\\/]sharp[\\/]/, /[\\/]node_modules[\\/]@img[\\/]/, /systeminformation/];

let tmp: string;

/** Preload: on exit, write every module file this process loaded to $MODULE_LOG. */
const MODULE_LOG_PRELOAD = `
process.on('exit', () => {
  require('node:fs').writeFileSync(process.env.MODULE_LOG, JSON.stringify(Object.keys(require.cache)));
});
`;

/**
 * Preload: a stand-in for the \`vscode\` module with what activation touches, then loads
 * dist/extension.js, activates it, and reports the activation time, the registered commands, the log
 * and the loaded modules as JSON on stdout.
 */
const ACTIVATE_SCRIPT = `
const Module = require('node:module');
const log = [];
const registered = [];
const disposable = { dispose() {} };
class EventEmitter { constructor() { this.event = () => disposable; } fire() {} dispose() {} }
class CodeLens { constructor(range) { this.range = range; } }
class Range { constructor(...a) { this.a = a; } }
const vscode = {
  EventEmitter, CodeLens, Range,
  window: {
    createOutputChannel: () => ({ info: (m) => log.push(m), warn: (m) => log.push(m), error: (m) => log.push(m), debug: () => {}, show() {}, dispose() {} }),
    registerWebviewPanelSerializer: () => disposable,
    createTreeView: () => ({ selection: [], dispose() {} }),
  },
  workspace: {
    isTrusted: true, onDidGrantWorkspaceTrust: () => disposable, onDidChangeConfiguration: () => disposable, textDocuments: [],
    onDidOpenTextDocument: () => disposable, onDidChangeTextDocument: () => disposable, onDidCloseTextDocument: () => disposable,
    createFileSystemWatcher: () => ({ onDidCreate: () => disposable, onDidDelete: () => disposable, dispose() {} }),
  },
  languages: { registerCodeLensProvider: () => disposable, createDiagnosticCollection: () => ({ set() {}, delete() {}, dispose() {} }) },
  commands: { registerCommand: (id) => { registered.push(id); return disposable; } },
};
const load = Module._load;
Module._load = function (request, ...rest) { return request === 'vscode' ? vscode : load.call(this, request, ...rest); };
const t0 = performance.now();
const ext = require(process.argv[2]);
const loaded = performance.now();
const subscriptions = [];
ext.activate({ subscriptions, extension: { packageJSON: { version: '0.0.0-test' } }, extensionUri: { fsPath: '/ext' } });
const activated = performance.now();
process.stdout.write(JSON.stringify({ loadMs: loaded - t0, activateMs: activated - loaded, registered, log, modules: Object.keys(require.cache) }));
ext.deactivate();
`;

function node(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const clean = { ...process.env, ...env };
  delete clean.NODE_OPTIONS;
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: clean, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs dist/cli.js with `args`; returns its result and the module files it loaded. */
function cliModules(...args: string[]): { code: number | null; stdout: string; stderr: string; modules: string[] } {
  const logFile = join(tmp, `modules-${Math.random().toString(36).slice(2)}.json`);
  const r = node(['--require', join(tmp, 'module-log.js'), CLI, ...args], { MODULE_LOG: logFile });
  return { ...r, modules: JSON.parse(readFileSync(logFile, 'utf8')) as string[] };
}

function heavyIn(modules: string[]): string[] {
  return modules.filter((m) => HEAVY.some((h) => h.test(m)));
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'ba-startup-'));
  writeFileSync(join(tmp, 'module-log.js'), MODULE_LOG_PRELOAD);
  writeFileSync(join(tmp, 'activate.js'), ACTIVATE_SCRIPT);
  for (const cls of ['a', 'b']) {
    mkdirSync(join(tmp, 'data', cls), { recursive: true });
    for (let i = 0; i < 3; i++) await writeImage(join(tmp, 'data', cls, `${i}.png`), 'png', 16, 12);
  }
});

after(() => rmSync(tmp, { recursive: true, force: true }));

describe('batch-advisor --version', () => {
  for (const flag of ['--version', '-V']) {
    it(`${flag} prints package.json's version and exits 0`, () => {
      const r = node([CLI, flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${VERSION}\n`);
      assert.equal(r.stderr, '');
    });
  }

  it('--help lists --version', () => {
    const r = node([CLI, '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /-V, --version\s+print the version/);
  });
});

describe('what the CLI loads', () => {
  it('--help and --version load neither sharp nor systeminformation', () => {
    for (const flag of ['--help', '--version']) {
      const r = cliModules(flag);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(heavyIn(r.modules), [], `${flag} loaded heavy modules`);
    }
  });

  it('inspect reads headers without loading sharp or systeminformation', () => {
    const r = cliModules('inspect', join(tmp, 'data'), '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { totalImages: number }).totalImages, 6);
    assert.deepEqual(heavyIn(r.modules), []);
  });

  it('suggest loads systeminformation (from dist/vendor/) when it reads the devices', () => {
    const r = cliModules('suggest', join(tmp, 'data'), '--json', '--image-size', '16x16');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Array.isArray((JSON.parse(r.stdout) as { devices: unknown }).devices));
    assert.deepEqual(heavyIn(r.modules), [join(ROOT, 'dist', 'vendor', 'systeminformation.js')]);
  });

  it('the bundles carry the precompiled config validator, not the ajv compiler nor systeminformation', () => {
    // Strings that survive minification: the generated validator inlines the schema (its $id);
    // ajv's compiler and systeminformation have messages and commands of their own.
    const SCHEMA_ID = 'https://batch-advisor.dev/schemas/train-config.schema.json';
    const AJV_COMPILER = 'options.loadSchema should be a function';
    const SYSTEMINFORMATION = 'system_profiler SPHardwareDataType';
    assert.ok(readFileSync(join(ROOT, 'node_modules', 'ajv', 'dist', 'core.js'), 'utf8').includes(AJV_COMPILER));
    assert.ok(readFileSync(join(ROOT, 'dist', 'vendor', 'systeminformation.js'), 'utf8').includes(SYSTEMINFORMATION));
    for (const bundle of [CLI, EXTENSION]) {
      const text = readFileSync(bundle, 'utf8');
      assert.ok(text.includes(SCHEMA_ID), `${bundle}: no config validator`);
      assert.ok(!text.includes(AJV_COMPILER), `${bundle} bundles ajv's compiler`);
      assert.ok(!text.includes(SYSTEMINFORMATION), `${bundle} bundles systeminformation`);
    }
  });
});

describe('the trainer process', () => {
  it('describes a model (what suggest asks) without loading sharp', async () => {
    const logFile = join(tmp, 'trainer-modules.json');
    const env: NodeJS.ProcessEnv = { ...process.env, MODULE_LOG: logFile };
    delete env.NODE_OPTIONS;
    const child = fork(TRAINER, [], { execArgv: ['--require', join(tmp, 'module-log.js')], env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const described = await new Promise<{ type: string; message?: string; description?: { totalParams: number } }>((res, rej) => {
      child.on('error', rej);
      child.on('message', (m: { type: string }) => {
        if (m.type === 'ready') child.send({ v: PROTOCOL_VERSION, type: 'describe', id: 1, spec: { model: 'tutorial-cnn' }, inputShape: [28, 28, 1], numClasses: 10 });
        else res(m);
      });
    });
    const exited = new Promise((res) => child.on('exit', res));
    child.disconnect();
    await exited;
    assert.equal(described.type, 'described', described.message);
    assert.ok((described.description?.totalParams ?? 0) > 0);
    assert.deepEqual(heavyIn(JSON.parse(readFileSync(logFile, 'utf8')) as string[]), []);
  });
});

describe('extension activation', () => {
  it('registers the commands and loads nothing heavy (its time is printed, not asserted: a benchmark figure)', () => {
    const r = node([join(tmp, 'activate.js'), EXTENSION]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { loadMs: number; activateMs: number; registered: string[]; log: string[]; modules: string[] };
    for (const id of ['batchAdvisor.suggest', 'batchAdvisor.train', 'batchAdvisor.showLog', 'batchAdvisor.openRun', 'batchAdvisor.newTrainingConfig']) {
      assert.ok(out.registered.includes(id), `${id} registered (${out.registered.join(', ')})`);
    }
    assert.deepEqual(heavyIn(out.modules), []);
    assert.ok(out.log.some((l) => /^Activated in \d+\.\d ms$/.test(l)), `no activation time in the log: ${out.log.join(' | ')}`);
    console.log(`# dist/extension.js: loaded in ${out.loadMs.toFixed(1)} ms, activate() ${out.activateMs.toFixed(1)} ms`);
  });
});
