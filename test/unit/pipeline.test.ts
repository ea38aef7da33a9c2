import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { decodeImage } from '../../src/trainer/data/decode';
import { DecodePool } from '../../src/trainer/data/decode-pool';
import { decodeSmallPng } from '../../src/trainer/data/png-fast';
import { decideLoading, ImagePipeline, type Batch } from '../../src/trainer/data/pipeline';
import { epochOrder, mulberry32 } from '../../src/trainer/data/prng';
import { splitFiles, validationCount } from '../../src/trainer/data/split';
import { makeTinyDataset, writeCorruptImage, writeHugeHeaderPng } from '../helpers/tiny-dataset';
import { until } from '../helpers/wait';

let dir: string;
let files: { path: string; label: number }[];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ba-pipeline-'));
  files = (await makeTinyDataset(join(dir, 'ds'), { classes: 3, perClass: 10, size: 16, channels: 3 })).files;
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function collect(it: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

const base = { imageSize: [16, 16] as [number, number], channels: 3 as const, batchSize: 8, seed: 42 };

describe('prng and split', () => {
  test('mulberry32 is deterministic and in [0, 1)', () => {
    const a = mulberry32(1);
    const b = mulberry32(1);
    for (let i = 0; i < 100; i++) {
      const v = a();
      assert.equal(v, b());
      assert.ok(v >= 0 && v < 1);
    }
  });

  test('split: same seed → same split, different seed → different; counts = floor(split × N)', () => {
    const items = Array.from({ length: 103 }, (_, i) => i);
    const s1 = splitFiles(items, 0.2, 7);
    const s2 = splitFiles(items, 0.2, 7);
    const s3 = splitFiles(items, 0.2, 8);
    assert.deepEqual(s1, s2);
    assert.notDeepEqual(s1.validation, s3.validation);
    assert.equal(s1.validation.length, 20); // floor(0.2 × 103)
    assert.equal(s1.train.length, 83);
    assert.deepEqual([...s1.train, ...s1.validation].sort((a, b) => a - b), items);
    assert.equal(validationCount(10, 0.3), 3); // 0.3 × 10 is 2.9999999999999996 in floats
    assert.equal(validationCount(10, 0), 0);
    assert.equal(splitFiles(items, 0, 1).validation.length, 0);
  });

  test('epoch order differs per epoch and is reproducible', () => {
    const e1 = epochOrder(50, 3, 1);
    assert.deepEqual(e1, epochOrder(50, 3, 1));
    assert.notDeepEqual(e1, epochOrder(50, 3, 2));
    assert.notDeepEqual(e1, epochOrder(50, 4, 1));
    assert.deepEqual([...e1].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  });
});

describe('decoding', () => {
  test('channels 1/3/4 give [h, w, c] uint8 pixels', async () => {
    for (const channels of [1, 3, 4] as const) {
      const px = await decodeImage(files[0]!.path, { imageSize: [12, 10], channels });
      assert.equal(px.length, 12 * 10 * channels);
      if (channels === 4) assert.equal(px[3], 255); // alpha added opaque
    }
    // 16-bit PNGs come out as 8-bit values.
    const png16 = join(dir, 'sixteen.png');
    await sharp(Buffer.from(new Uint16Array(8 * 8 * 3).fill(65535).buffer), { raw: { width: 8, height: 8, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toFile(png16);
    for (const channels of [1, 3, 4] as const) {
      const px = await decodeImage(png16, { imageSize: [4, 4], channels });
      assert.equal(px.length, 4 * 4 * channels);
      assert.equal(px[0], 255);
    }
    const p = await ImagePipeline.create(files.slice(0, 3), { ...base, channels: 1, loading: 'stream' });
    const [b] = await collect(p.sequential());
    assert.deepEqual(b!.shape, [3, 16, 16, 1]);
    assert.equal(b!.x.length, 3 * 16 * 16);
    assert.ok(b!.x.every((v) => v >= 0 && v <= 255));
    assert.ok(b!.x.some((v) => v > 1), 'pixels stay 0–255 (the model rescales)');
  });
});

describe('small-PNG fast path and decode pool', () => {
  /** Decodes `png` through sharp alone (a path sharp reads without the JS fast path). */
  async function viaSharp(png: Buffer, size: [number, number], channels: 1 | 3 | 4): Promise<Uint8Array> {
    let img = sharp(png).resize(size[1], size[0], { fit: 'fill', kernel: 'linear' });
    img = channels === 1 ? img.removeAlpha().toColourspace('b-w') : channels === 3 ? img.removeAlpha().toColourspace('srgb') : img.ensureAlpha().toColourspace('srgb');
    return new Uint8Array(await img.raw().toBuffer());
  }

  test('gives sharp\'s pixels (±1) for gray, RGB and RGBA PNGs, equal and enlarged sizes', async () => {
    const rand = mulberry32(7);
    for (const [srcChannels, channels] of [[1, 1], [1, 3], [1, 4], [3, 3], [3, 4], [4, 3], [4, 4], [2, 4]] as const) {
      const raw = Buffer.from(Array.from({ length: 9 * 7 * srcChannels }, () => Math.floor(rand() * 256)));
      const img = sharp(raw, { raw: { width: 7, height: 9, channels: srcChannels } });
      const png = await (srcChannels <= 2 ? img.toColourspace('b-w') : img).png().toBuffer();
      assert.equal(png[25], [0, 0, 4, 2, 6][srcChannels], 'PNG colour type'); // gray, gray+alpha, RGB, RGBA
      for (const size of [[9, 7], [20, 13], [64, 64]] as [number, number][]) {
        const fast = decodeSmallPng(png, size[0], size[1], channels);
        const translucentResize = srcChannels % 2 === 0 && size[0] !== 9;
        assert.equal(!fast, translucentResize, `${srcChannels}→${channels} ${size.join('×')}: fast path ${translucentResize ? 'not ' : ''}taken`);
        if (!fast) continue; // sharp resizes translucent images premultiplied
        const ref = await viaSharp(png, size, channels);
        assert.equal(fast.length, ref.length);
        const worst = fast.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i]!)), 0);
        assert.ok(worst <= 1, `${srcChannels}→${channels} ${size.join('×')}: max difference ${worst}`);
      }
    }
  });

  test('leaves shrinking, RGB→gray and ICC-profiled PNGs to sharp', async () => {
    const rgb = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#3366cc' } }).png().toBuffer();
    assert.equal(decodeSmallPng(rgb, 4, 4, 3), null, 'shrinking');
    assert.equal(decodeSmallPng(rgb, 16, 16, 1), null, 'RGB → gray');
    const icc = await sharp(rgb).withIccProfile('p3').png().toBuffer();
    assert.equal(decodeSmallPng(icc, 16, 16, 3), null, 'ICC profile');
    assert.ok(decodeSmallPng(rgb, 16, 16, 3));
  });

  test('the pool decodes like decodeImage, in worker threads, and reports skips', async () => {
    const pool = DecodePool.shared();
    assert.ok(pool.size >= 1, 'workers started');
    const opts = { imageSize: [20, 20] as [number, number], channels: 3 as const };
    const got = await Promise.all(files.slice(0, 10).map((f) => pool.decode(f.path, opts)));
    for (const [i, f] of files.slice(0, 10).entries()) assert.deepEqual(got[i], await decodeImage(f.path, opts));
    const bad = join(dir, 'pool-corrupt.png');
    writeCorruptImage(bad);
    await assert.rejects(pool.decode(bad, opts), (e: Error) => e.name === 'SkipFileError' && /cannot be decoded/.test(e.message));
    await assert.rejects(pool.decode(join(dir, 'missing.png'), opts), /file disappeared/);
  });
});

describe('pipeline', () => {
  test('batches cover the epoch once, last batch partial, labels follow files', async () => {
    const p = await ImagePipeline.create(files, { ...base, loading: 'stream' });
    assert.equal(p.batchesPerEpoch, 4);
    const batches = await collect(p.epoch(1));
    assert.deepEqual(
      batches.map((b) => b.size),
      [8, 8, 8, 6],
    );
    assert.deepEqual(batches[3]!.shape, [6, 16, 16, 3]);
    const seen = batches.flatMap((b) => b.paths);
    assert.deepEqual([...seen].sort(), files.map((f) => f.path).sort());
    const labelOf = new Map(files.map((f) => [f.path, f.label]));
    for (const b of batches) b.paths.forEach((path, i) => assert.equal(b.y[i], labelOf.get(path)));
    // The order is the epoch's seeded order; another epoch differs; the same epoch repeats.
    assert.deepEqual(
      seen,
      p.epochFiles(1).map((f) => f.path),
    );
    const again = (await collect(p.epoch(1))).flatMap((b) => b.paths);
    assert.deepEqual(again, seen);
    const e2 = (await collect(p.epoch(2))).flatMap((b) => b.paths);
    assert.notDeepEqual(e2, seen);
  });

  test('preload and stream give identical batches', async () => {
    const s = await ImagePipeline.create(files, { ...base, loading: 'stream' });
    const p = await ImagePipeline.create(files, { ...base, loading: 'preload' });
    assert.equal(s.loading, 'stream');
    assert.equal(p.loading, 'preload');
    for (const epoch of [1, 2]) {
      const a = await collect(s.epoch(epoch));
      const b = await collect(p.epoch(epoch));
      assert.equal(a.length, b.length);
      a.forEach((x, i) => {
        assert.deepEqual(x.paths, b[i]!.paths);
        assert.deepEqual(x.y, b[i]!.y);
        assert.deepEqual(x.x, b[i]!.x);
      });
    }
  });

  test('auto loading preloads when uint8 images fit in half the available memory', async () => {
    assert.equal(decideLoading('auto', 1000, [100, 100], 3, 60_000_000).loading, 'preload'); // 30 MB ≤ 30 MB
    assert.equal(decideLoading('auto', 1001, [100, 100], 3, 60_000_000).loading, 'stream');
    assert.equal(decideLoading('preload', 10 ** 9, [100, 100], 3, 1).loading, 'preload');
    assert.equal((await ImagePipeline.create(files, { ...base, availableMemoryBytes: 1000 })).loading, 'stream');
    assert.equal((await ImagePipeline.create(files, { ...base, availableMemoryBytes: 10 ** 9 })).loading, 'preload');
  });

  test('corrupt and oversized files are skipped, reported once, never fatal', async () => {
    const bad = join(dir, 'ds', 'class_0', 'zz-corrupt.png');
    const huge = join(dir, 'ds', 'class_1', 'zz-huge.png');
    writeCorruptImage(bad);
    writeHugeHeaderPng(huge, 10_000, 9_000); // 90 MP: over the 50 MP limit
    const all = [...files, { path: bad, label: 0 }, { path: huge, label: 1 }];
    for (const loading of ['stream', 'preload'] as const) {
      const skipped: [string, string][] = [];
      const p = await ImagePipeline.create(all, { ...base, loading, onSkip: (path, reason) => skipped.push([path, reason]) });
      const e1 = await collect(p.epoch(1));
      const e2 = await collect(p.epoch(2));
      assert.equal(
        e1.reduce((n, b) => n + b.size, 0),
        files.length,
      );
      assert.equal(
        e2.reduce((n, b) => n + b.size, 0),
        files.length,
      );
      assert.equal(skipped.length, 2, `${loading}: each reported once`);
      const reasons = new Map(skipped);
      assert.match(reasons.get(bad)!, /cannot be decoded/);
      // Refused from the header: the reason is the size, not a decode failure of its bogus pixel data.
      assert.match(reasons.get(huge)!, /too large: 10000×9000 = 90\.0 MP, over the 50 MP limit \(not decoded\)/);
      assert.equal(p.size, files.length);
      assert.equal(p.batchesPerEpoch, 4);
    }
    rmSync(bad);
    rmSync(huge);
  });

  test('prefetch decodes ahead of training: while a step runs, the next batches are already being decoded', async () => {
    // Decoding (in the decode pool's worker threads, as by default): ≥ 2 ms per image, 16 in
    // flight; a training step: 20 ms of synchronous work. The behaviour that keeps the data wait
    // small is that the producer runs ahead of the consumer by the prefetch depth; the share of
    // time spent waiting is reported (a benchmark's figure), not asserted: it depends on the load.
    let started = 0;
    const slowDecode = async (path: string, opts: Parameters<typeof decodeImage>[1]): Promise<Uint8Array> => {
      started++;
      const px = await DecodePool.shared().decode(path, opts);
      await new Promise((r) => setTimeout(r, 2));
      return px;
    };
    const many = [...files, ...files, ...files, ...files]; // 120 images, 15 batches
    const prefetch = 3;
    const p = await ImagePipeline.create(many, { ...base, loading: 'stream', concurrency: 16, prefetchBatches: prefetch, decode: slowDecode });
    let waitMs = 0;
    let stepMs = 0;
    let consumed = 0;
    const it = p.epoch(1);
    for (;;) {
      const t0 = performance.now();
      const r = await it.next();
      if (r.done) break;
      if (consumed > 0) waitMs += performance.now() - t0; // the first batch has nothing to overlap with
      consumed++;
      // Before the step: the producer has asked for images beyond this batch (it does not wait for the consumer).
      const ahead = Math.min(many.length, (consumed + 1) * base.batchSize);
      await until(() => started >= ahead, `decodes started for batch ${consumed + 1} while batch ${consumed} trains`);
      assert.ok(started <= Math.min(many.length, (consumed + prefetch + 1) * base.batchSize + 16), `never more than the prefetch depth ahead (${started} started after ${consumed} batches)`);
      const t1 = performance.now();
      while (performance.now() - t1 < 20) {
        /* a synchronous "training step", like the tfjs cpu backend */
      }
      await new Promise((r) => setImmediate(r)); // the train loop yields once per step
      stepMs += performance.now() - t1;
    }
    assert.equal(consumed, 15);
    console.log(`# prefetch: data wait ${waitMs.toFixed(1)} ms vs steps ${stepMs.toFixed(1)} ms (${((100 * waitMs) / Math.max(1, waitMs + stepMs)).toFixed(1)}%)`);
  });

  test('stopping early (break) ends the producer cleanly', async () => {
    const p = await ImagePipeline.create(files, { ...base, batchSize: 2, loading: 'stream', prefetchBatches: 2 });
    let n = 0;
    for await (const _b of p.epoch(1)) if (++n === 2) break;
    assert.equal(n, 2);
    const ac = new AbortController();
    n = 0;
    for await (const _b of p.epoch(2, ac.signal)) {
      n++;
      ac.abort();
    }
    assert.ok(n <= 3, `abort ends the epoch within the prefetched batches (got ${n})`);
  });
});
