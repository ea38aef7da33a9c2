/**
 * Our WebAssembly SIMD kernels (src/trainer/simd): the committed binary is what its AssemblyScript
 * source compiles to, and the kernel checks against the cpu backend (kernels.test.ts) also pass on
 * tfjs's single-threaded build (a plain, unshared heap), with SIMD off (the JS fallbacks) and
 * without the relaxed-SIMD build (the default run, kernels.test.ts itself, uses it where the runtime
 * accepts it).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(__dirname, '../..');

function run(args: string[], env: Record<string, string> = {}): { code: number | null; out: string } {
  // Without NODE_TEST_CONTEXT: the child is a test run of its own, not a subtest of this one.
  const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
  const r = spawnSync(process.execPath, args, { cwd: root, env: { ...parent, ...env }, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

describe('SIMD kernels', () => {
  it('src/trainer/simd/binary.ts is a fresh compile of src/trainer/simd/assembly/kernels.ts', () => {
    const r = run(['scripts/build-simd.mjs', '--check']);
    assert.equal(r.code, 0, r.out);
  });

  for (const [what, env] of [
    ["on tfjs's single-threaded build (unshared heap)", { BATCH_ADVISOR_WASM_THREADS: '1' }],
    ['with SIMD off (the JS fallbacks)', { BATCH_ADVISOR_SIMD: '0' }],
    ['without relaxed SIMD (the plain SIMD build, XNNPACK for the filter gradient\'s product)', { BATCH_ADVISOR_RELAXED_SIMD: '0' }],
  ] as const) {
    it(`the kernels match the cpu backend ${what}`, () => {
      const r = run(['--import', 'tsx', '--test', '--test-reporter=tap', 'test/unit/kernels.test.ts'], env);
      assert.equal(r.code, 0, r.out.slice(-3000));
      assert.match(r.out, /# fail 0/);
    });
  }
});
