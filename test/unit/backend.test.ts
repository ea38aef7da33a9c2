/**
 * Backend selection (src/trainer/backend.ts). tfjs-node(-gpu) cannot be installed here, which is
 * exactly the situation to check: 'auto' must fall through to wasm with one-line reasons, and an
 * explicit choice that cannot be honoured must throw that reason instead of falling back.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

  it('explicit cpu and wasm work, and the wasm binaries are found', async () => {
    assert.equal((await initBackend('cpu')).name, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assert.equal((await initBackend('wasm')).name, 'wasm');
    assert.match(wasmDir(), /tfjs-backend-wasm[\\/]dist[\\/]$|wasm[\\/]$/);
    assert.ok(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'), 'SIMD build expected on Node 20');
  });
});
