/**
 * Backend selection (src/trainer/backend.ts). tfjs-node(-gpu) cannot be installed here, which is
 * exactly the situation to check: 'auto' must fall through to wasm with one-line reasons, and an
 * explicit choice that cannot be honoured must throw that reason instead of falling back.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { tf } from '../../src/trainer/tf';
import { initBackend, wasmDir } from '../../src/trainer/backend';

describe('initBackend', () => {
  it("'auto' without tfjs-node picks wasm and says why the others were skipped", async () => {
    const ws = mkdtempSync(join(tmpdir(), 'ba-ws-'));
    try {
      const r = await initBackend('auto', { workspaceFolder: ws });
      assert.equal(r.name, 'wasm');
      assert.equal(tf.getBackend(), 'wasm');
      assert.deepEqual(
        r.skipped.map((s) => s.name),
        ['tensorflow-gpu', 'tensorflow'],
      );
      for (const s of r.skipped) {
        assert.match(s.reason, /not installed in .*node_modules or the extension/);
        assert.ok(!s.reason.includes('\n'));
      }
      assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'), 'training kernels registered');
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });

  it('an explicit choice that fails throws its reason (no silent fallback)', async () => {
    await assert.rejects(initBackend('tensorflow'), /backend 'tensorflow' is not available: @tensorflow\/tfjs-node not installed/);
    await assert.rejects(initBackend('tensorflow-gpu'), /@tensorflow\/tfjs-node-gpu not installed/);
  });

  it('a workspace copy that fails to load is reported as such', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'ba-ws-'));
    try {
      const pkg = join(ws, 'node_modules', '@tensorflow', 'tfjs-node');
      mkdirSync(pkg, { recursive: true });
      writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-node', main: 'index.js' }));
      writeFileSync(join(pkg, 'index.js'), "throw new Error('libtensorflow.so.2: cannot open shared object file\\nmore detail');");
      await assert.rejects(initBackend('tensorflow', { workspaceFolder: ws }), (e: Error) => {
        assert.match(e.message, /installed but failed to load: libtensorflow\.so\.2: cannot open shared object file$/);
        return true;
      });
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });

  it('batchAdvisor.tfjsNodePath: the documented layout (a folder holding node_modules/@tensorflow/tfjs-node) is found and said; a wrong path says what was looked for', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ba-tfjs-node-'));
    const g = globalThis as { __baTf?: typeof tf };
    try {
      const pkg = join(dir, 'node_modules', '@tensorflow', 'tfjs-node');
      mkdirSync(pkg, { recursive: true });
      writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-node', main: 'index.js' }));
      // A stand-in that registers a 'tensorflow' backend (a cpu backend under that name) with our tfjs-core.
      writeFileSync(join(pkg, 'index.js'), "const tf = globalThis.__baTf; const Cpu = tf.findBackend('cpu').constructor; tf.registerBackend('tensorflow', () => new Cpu());");
      g.__baTf = tf;
      await initBackend('cpu');
      for (const setting of [dir, join(dir, 'node_modules'), pkg]) {
        const r = await initBackend('tensorflow', { tfjsNodePath: setting });
        assert.equal(r.name, 'tensorflow', setting);
        assert.equal(r.from, join(pkg, 'index.js'), `said where it was found (setting ${setting})`);
        tf.removeBackend('tensorflow');
        delete createRequire(__filename).cache[join(pkg, 'index.js')]; // loaded afresh for the next layout
        await initBackend('cpu');
      }
      const wrong = mkdtempSync(join(tmpdir(), 'ba-no-tfjs-node-'));
      await assert.rejects(initBackend('tensorflow', { tfjsNodePath: wrong }), (e: Error) => {
        assert.match(e.message, new RegExp(`not installed in .* or ${wrong.replace(/[/\\]/g, '.')} \\(looked for ${join(wrong, 'node_modules', '@tensorflow', 'tfjs-node').replace(/[/\\]/g, '.')} and for the package in ${wrong.replace(/[/\\]/g, '.')} itself\\)`));
        return true;
      });
      rmSync(wrong, { recursive: true, force: true });
    } finally {
      delete g.__baTf;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('explicit cpu and wasm work, and the wasm binaries are found', async () => {
    assert.equal((await initBackend('cpu')).name, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assert.equal((await initBackend('wasm')).name, 'wasm');
    assert.match(wasmDir(), /tfjs-backend-wasm[\\/]dist[\\/]$|wasm[\\/]$/);
    assert.ok(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'), 'SIMD build expected on Node 20');
  });
});
