/**
 * The CLI as a user runs it: the built dist/cli.js in a child process, its exit codes, its one-line
 * errors, and the JSON contract of `inspect --json` and `suggest --json`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';

const CLI = resolve(__dirname, '../../dist/cli.js');
let root: string;
let dataset: string;

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ba-cli-'));
  dataset = join(root, 'shapes');
  const counts: Record<string, number> = { circle: 12, square: 9, triangle: 6 };
  for (const [cls, n] of Object.entries(counts)) {
    mkdirSync(join(dataset, cls), { recursive: true });
    for (let i = 0; i < n; i++) {
      const pixels = Buffer.alloc(32 * 24 * 3, (i * 37) % 256);
      await sharp(pixels, { raw: { width: 32, height: 24, channels: 3 } }).png().toFile(join(dataset, cls, `${i}.png`));
    }
  }
  mkdirSync(join(root, 'empty'));
  writeFileSync(join(root, 'bad-field.train.json'), JSON.stringify({ dataset: 'shapes', optimizer: 'adamw' }));
  writeFileSync(join(root, 'not-json.train.json'), '{ "dataset": ');
  writeFileSync(join(root, 'good.train.json'), JSON.stringify({ dataset: 'shapes', imageSize: [24, 32], channels: 3, optimizer: 'sgd' }));
});

after(() => rmSync(root, { recursive: true, force: true }));

describe('batch-advisor inspect', () => {
  it('prints the dataset part of the contract with --json', () => {
    const r = run('inspect', dataset, '--json');
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(d.root, dataset);
    assert.deepEqual(d.classes, [
      { name: 'circle', count: 12 },
      { name: 'square', count: 9 },
      { name: 'triangle', count: 6 },
    ]);
    assert.equal(d.totalImages, 27);
    assert.deepEqual(d.formats, { png: 27 });
    assert.deepEqual(d.width, { min: 32, median: 32, p95: 32, max: 32 });
    assert.deepEqual(d.height, { min: 24, median: 24, p95: 24, max: 24 });
    assert.deepEqual(d.problems, []);
    // Keras: validation = floor(0.2 × 27) = 5
    assert.equal(d.validation, 5);
    assert.equal(d.train, 22);
  });

  it('prints a readable report for people', () => {
    const r = run('inspect', dataset);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Found 27 files belonging to 3 classes/);
    assert.match(r.stdout, /22 train \/ 5 validation/);
  });

  it('exits 2 with one line naming a missing folder', () => {
    const missing = join(root, 'nope');
    const r = run('inspect', missing);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.ok(r.stderr.includes(missing), r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});

describe('batch-advisor suggest', () => {
  it('prints the whole JSON contract for a folder', () => {
    const r = run('suggest', dataset, '--json', '--image-size', '24x32');
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as {
      dataset: { totalImages: number; classes: unknown[]; train: number; validation: number; problems: unknown[] };
      devices: { kind: string; name: string; memoryTotalBytes: number; memoryFreeBytes: number }[];
      memory: { budgetBytes: number; perSampleBytes: number; fixedBytes: number; table: { batchSize: number; bytes: number }[]; breakdown: { workspaceBytesPerSample?: number; workspaceRestBytesPerSample?: number; workspaceCapBytes?: number; workspaces?: { cappedBytesPerSample: number; restBytesPerSample: number }[] } };
      recommendation: { batchSize: number; maxBatchSize: number; reasons: string[] };
    };
    assert.equal(s.dataset.totalImages, 27);
    assert.equal(s.dataset.classes.length, 3);
    assert.ok(s.devices.length >= 1);
    for (const d of s.devices) {
      assert.ok(d.kind === 'gpu' || d.kind === 'cpu');
      assert.equal(typeof d.name, 'string');
      assert.ok(d.memoryTotalBytes > 0 && d.memoryFreeBytes > 0 && d.memoryFreeBytes <= d.memoryTotalBytes);
    }
    assert.ok(s.memory.budgetBytes > 0 && s.memory.perSampleBytes > 0 && s.memory.fixedBytes > 0);
    assert.ok(s.memory.table.length > 0);
    // Grows with the batch by perSampleBytes per image (plus the optimizer update's scratch at tiny batches).
    for (const t of s.memory.table) assert.ok(t.bytes >= s.memory.fixedBytes + t.batchSize * s.memory.perSampleBytes);
    // From batch 64 on: perSampleBytes per image, plus what the largest of the wasm conv kernels' workspaces (per image, up to its cap) adds.
    const { workspaceBytesPerSample: ws = 0, workspaceRestBytesPerSample: rest = 0, workspaceCapBytes: cap = Infinity } = s.memory.breakdown;
    const list = s.memory.breakdown.workspaces ?? [{ cappedBytesPerSample: ws, restBytesPerSample: rest }];
    const workspace = (n: number) => Math.max(0, ...list.map((w) => Math.min(n * w.cappedBytesPerSample, cap) + n * w.restBytesPerSample));
    const big = s.memory.table.filter((t) => t.batchSize >= 64);
    for (let i = 1; i < big.length; i++) {
      const [a, b] = [big[i - 1]!, big[i]!];
      assert.equal(b.bytes - a.bytes, (b.batchSize - a.batchSize) * s.memory.perSampleBytes + workspace(b.batchSize) - workspace(a.batchSize));
    }
    const rec = s.recommendation;
    assert.ok(Number.isInteger(rec.batchSize) && rec.batchSize >= 1);
    assert.ok(rec.batchSize <= rec.maxBatchSize);
    // Never more than the training set (22 images here).
    assert.ok(rec.batchSize <= s.dataset.train, `batch ${rec.batchSize} > train ${s.dataset.train}`);
    assert.ok(rec.reasons.length > 0);
  });

  it('plans for a device the user does not have with --device-memory', () => {
    const r = run('suggest', join(root, 'good.train.json'), '--json', '--device-memory', '12');
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { device: { kind: string; name: string; memoryTotalBytes: number; source: string }; memory: { budgetBytes: number }; plan: { backend: { planned: string } } };
    assert.equal(s.device.source, 'override');
    assert.equal(s.device.memoryTotalBytes, 12 * 1024 ** 3);
    // The plan is made for the backend that runs here: a GPU of that size only for tensorflow-gpu;
    // on any other backend it is host memory of that size (and wasm's 4 GiB heap bounds it).
    if (s.plan.backend.planned === 'tensorflow-gpu') {
      assert.deepEqual([s.device.kind, s.device.name], ['gpu', 'Planned GPU (12 GiB)']);
      assert.equal(s.memory.budgetBytes, Math.floor(12 * 1024 ** 3 * 0.9));
    } else {
      assert.deepEqual([s.device.kind, s.device.name], ['cpu', 'Planned host memory (12 GiB)']);
      if (s.plan.backend.planned === 'wasm') assert.ok(s.memory.budgetBytes < 4 * 1024 ** 3, `wasm's heap bounds the budget: ${s.memory.budgetBytes}`);
      else assert.equal(s.memory.budgetBytes, Math.floor(12 * 1024 ** 3 * 0.9));
    }
  });

  it('prints the recommendation for people', () => {
    const r = run('suggest', join(root, 'good.train.json'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Recommended batch size: \d+/);
    assert.match(r.stdout, /Learning rate/);
  });

  const badInputs: [string, () => string[], RegExp][] = [
    ['a missing folder', () => ['suggest', join(root, 'missing')], /missing: no such file or folder/],
    ['a folder without images', () => ['suggest', join(root, 'empty')], /No images found in .*empty/],
    ['an unknown model', () => ['suggest', dataset, '--model', 'vgg1000'], /vgg1000/],
    ['a config with an invalid field', () => ['suggest', join(root, 'bad-field.train.json')], /bad-field\.train\.json: field "optimizer"/],
    ['a config that is not JSON', () => ['suggest', join(root, 'not-json.train.json')], /not-json\.train\.json: not valid JSON/],
    ['a bad option value', () => ['suggest', dataset, '--image-size', 'big'], /HxW/],
  ];
  for (const [what, args, message] of badInputs) {
    it(`exits 2 with a one-line message for ${what}`, () => {
      const r = run(...args());
      assert.equal(r.code, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }
});
