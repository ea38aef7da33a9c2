/**
 * The lazy pthread pool (src/trainer/kernels/wasm-threads.ts): the module's pool workers cost
 * nothing until a thread runs on one, and then behave as the real worker would.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { LazyPthread } from '../../src/trainer/kernels/wasm-threads';

/** A stand-in for Emscripten's worker script: answers load with loaded (after a delay) and echoes the rest in order. */
const ECHO = `
const { parentPort } = require('node:worker_threads');
let loaded = false;
parentPort.on('message', (m) => {
  if (m.cmd === 'load') setTimeout(() => { loaded = true; parentPort.postMessage({ cmd: 'loaded' }); }, 50);
  else parentPort.postMessage({ cmd: 'echo', of: m.cmd, n: m.n, afterLoad: loaded });
});
`;

function next(w: LazyPthread): Promise<{ cmd: string; of?: string; n?: number; afterLoad?: boolean }> {
  return new Promise((r) => w.once('message', r));
}

describe('LazyPthread', () => {
  test('answers "load" at once without starting a thread', async () => {
    let starts = 0;
    const w = new LazyPthread(() => {
      starts++;
      return new Worker(ECHO, { eval: true });
    });
    const reply = next(w);
    w.postMessage({ cmd: 'load' });
    assert.deepEqual(await reply, { cmd: 'loaded' });
    assert.equal(starts, 0);
    assert.equal(w.started, false);
    assert.equal(await w.terminate(), 0);
  });

  test('the first real message starts the worker, which gets the load first and every message after it, in order; its own "loaded" is not seen twice', async () => {
    let starts = 0;
    const w = new LazyPthread(() => {
      starts++;
      return new Worker(ECHO, { eval: true });
    });
    const seen: { cmd: string; of?: string; n?: number; afterLoad?: boolean }[] = [];
    w.on('message', (m: (typeof seen)[number]) => seen.push(m));
    w.postMessage({ cmd: 'load' });
    await new Promise((r) => setImmediate(r));
    for (let n = 0; n < 3; n++) w.postMessage({ cmd: 'run', n });
    while (seen.length < 4) await new Promise((r) => setTimeout(r, 20));
    assert.equal(starts, 1);
    assert.deepEqual(seen, [
      { cmd: 'loaded' },
      { cmd: 'echo', of: 'run', n: 0, afterLoad: true },
      { cmd: 'echo', of: 'run', n: 1, afterLoad: true },
      { cmd: 'echo', of: 'run', n: 2, afterLoad: true },
    ]);
    await w.terminate();
  });

  test('unref before the start carries over to the real worker: a waiting pool thread never keeps the process alive', () => {
    // A child process starts a lazy worker that would run forever, unref'd before it started: the child must exit by itself.
    const code = `
      const { Worker } = require('node:worker_threads');
      const { LazyPthread } = require(${JSON.stringify(require.resolve('../../src/trainer/kernels/wasm-threads'))});
      const w = new LazyPthread(() => new Worker('setInterval(() => {}, 1000)', { eval: true }));
      w.unref();
      w.postMessage({ cmd: 'run' });
      setTimeout(() => console.log(w.started ? 'started' : 'not started'), 100);
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', code], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(out.trim(), 'started');
  });
});
