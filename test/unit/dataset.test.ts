import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as nodeFs from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { histogram, inspectDataset } from '../../src/core/dataset/inspect';
import { listDatasetFiles } from '../../src/core/dataset/list';
import { ScanPool } from '../../src/core/dataset/pool';
import type { ProbeFs } from '../../src/core/dataset/probe';
import { DatasetInputError, type DatasetReport, type ProblemKind } from '../../src/core/shared/dataset-types';
import { compareCodePoints, nodeWalkFs, sortByCodePoint, type WalkFs } from '../../src/core/dataset/walk';
import { tempDir, writeCorrupt, writeEmpty, writeImage, writeManyCopies, writeMismatched, writeTruncatedPng } from '../helpers/images';

function errnoError(code: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: operation not permitted, open '${path}'`), { code });
}

function problemsOf(r: DatasetReport, kind: ProblemKind): string[] {
  return r.problems.filter((p) => p.kind === kind).map((p) => p.path);
}

/**
 * Main fixture (known truth):
 *   cats/  a.png 40×30, b.jpg 64×48, c.JPEG 100×100, nested/e.bmp 30×60, nested/deeper/d.gif 20×10,
 *          f.webp, g.tiff (unsupported), notes.txt (ignored), link.png → missing (broken link), linkdir → nested (link to a folder: not descended)
 *   dogs/  a.png 50×50, mism.png (JPEG 80×60: counted, mismatch), webp.png (WebP 12×12: mismatch, not counted),
 *          zero.png (0 bytes), corrupt.png (random), trunc.png (10 bytes of a PNG)
 *   empty/ readme.txt only → empty-class
 *   root.png (root-file), README.md (ignored), .hidden/x.png (not a class)
 */
describe('dataset inspector on a mixed dataset', () => {
  const { dir: root, cleanup } = tempDir();
  const counted: string[] = [];
  let report: DatasetReport;

  before(async () => {
    const cats = join(root, 'cats');
    const dogs = join(root, 'dogs');
    await writeImage(join(cats, 'a.png'), 'png', 40, 30);
    await writeImage(join(cats, 'b.jpg'), 'jpeg', 64, 48);
    await writeImage(join(cats, 'c.JPEG'), 'jpeg', 100, 100);
    await writeImage(join(cats, 'nested', 'e.bmp'), 'bmp', 30, 60);
    await writeImage(join(cats, 'nested', 'deeper', 'd.gif'), 'gif', 20, 10);
    await writeImage(join(cats, 'f.webp'), 'webp', 16, 16);
    await writeImage(join(cats, 'g.tiff'), 'tiff', 16, 16);
    writeFileSync(join(cats, 'notes.txt'), 'not an image');
    symlinkSync(join(cats, 'missing.png'), join(cats, 'link.png')); // broken: reported, not listed (a link to an image is an image: see reliability-input)
    symlinkSync(join(cats, 'nested'), join(cats, 'linkdir'));
    await writeImage(join(dogs, 'a.png'), 'png', 50, 50);
    await writeMismatched(join(dogs, 'mism.png'), 'jpeg', 80, 60);
    await writeMismatched(join(dogs, 'webp.png'), 'webp', 12, 12);
    writeEmpty(join(dogs, 'zero.png'));
    writeCorrupt(join(dogs, 'corrupt.png'));
    await writeTruncatedPng(join(dogs, 'trunc.png'));
    mkdirSync(join(root, 'empty'));
    writeFileSync(join(root, 'empty', 'readme.txt'), 'nothing here');
    await writeImage(join(root, 'root.png'), 'png', 8, 8);
    writeFileSync(join(root, 'README.md'), '# data');
    await writeImage(join(root, '.hidden', 'x.png'), 'png', 8, 8);
    counted.push(
      ...['cats/a.png', 'cats/b.jpg', 'cats/c.JPEG', 'cats/nested/e.bmp', 'cats/nested/deeper/d.gif', 'dogs/a.png', 'dogs/mism.png'].map((p) => join(root, p)),
    );
    report = await inspectDataset(root);
  });
  after(cleanup);

  it('counts classes, images and formats (by extension, jpg and jpeg apart)', () => {
    assert.deepEqual(report.classes, [
      { name: 'cats', count: 5 },
      { name: 'dogs', count: 2 },
      { name: 'empty', count: 0 },
    ]);
    assert.equal(report.totalImages, 7);
    assert.deepEqual(report.formats, { png: 3, jpg: 1, jpeg: 1, gif: 1, bmp: 1 });
    assert.equal(report.root, root);
  });

  it('sums bytes on disk of the counted images only', () => {
    assert.equal(report.bytesOnDisk, counted.reduce((s, p) => s + statSync(p).size, 0));
  });

  it('gives width/height/aspect distributions (median and p95 interpolated like numpy, 6 decimals)', () => {
    // widths 20 30 40 50 64 80 100; heights 10 30 48 50 60 60 100; p95 at rank 0.95 × 6 = 5.7
    assert.deepEqual(report.width, { min: 20, median: 50, p95: 94, max: 100 });
    assert.deepEqual(report.height, { min: 10, median: 50, p95: 88, max: 100 });
    // aspects: 40/30 64/48 100/100 30/60 20/10 50/50 80/60 → 0.5 1 1 4/3 4/3 4/3 2
    assert.deepEqual(report.aspectRatio, { min: 0.5, median: 1.333333, p95: 1.8, max: 2 });
  });

  it('bins widths and heights into nice histograms that hold every image', () => {
    for (const h of [report.widthHistogram, report.heightHistogram]) {
      assert.ok(h.length >= 2 && h.length <= 20, `bins: ${h.length}`);
      assert.equal(h.reduce((s, b) => s + b.count, 0), 7);
      const step = (h[0]?.to ?? 0) - (h[0]?.from ?? 0);
      assert.ok([1, 2, 5, 10, 20, 50].includes(step));
      for (const b of h) assert.equal(b.from % step, 0);
    }
    // widths 20..100 with step 5 → 16 bins from 20; 100 lands in the last bin (upper edge included)
    assert.equal(report.widthHistogram[0]?.from, 20);
    assert.equal(report.widthHistogram.at(-1)?.to, 100);
  });

  it('reports channels as unknown: image-size does not read colour type', () => {
    assert.deepEqual(report.channels, { unknown: 7 });
  });

  it('has no imbalance ratio when a class is empty', () => {
    assert.equal(report.imbalanceRatio, null);
  });

  it('splits train/validation the Keras way and sizes the decoded dataset', () => {
    assert.equal(report.validationSplit, 0.2);
    assert.equal(report.validation, 1); // floor(0.2 × 7)
    assert.equal(report.train, 6);
    assert.deepEqual(report.decoded, { imageSize: [256, 256], channels: 3, uint8Bytes: 7 * 256 * 256 * 3, float32Bytes: 5_505_024 });
  });

  it('lists each problem kind with its path', () => {
    const j = (p: string): string => join(root, p);
    assert.deepEqual(problemsOf(report, 'zero-byte'), [j('dogs/zero.png')]);
    assert.deepEqual(problemsOf(report, 'corrupt').sort(), [j('dogs/corrupt.png'), j('dogs/trunc.png')]);
    assert.deepEqual(problemsOf(report, 'extension-mismatch').sort(), [j('dogs/mism.png'), j('dogs/webp.png')]);
    assert.deepEqual(problemsOf(report, 'unsupported-format').sort(), [j('cats/f.webp'), j('cats/g.tiff')]);
    assert.deepEqual(problemsOf(report, 'root-file'), [j('root.png')]);
    assert.deepEqual(problemsOf(report, 'empty-class'), [j('empty')]);
    assert.deepEqual(problemsOf(report, 'symlink-skipped').sort(), [j('cats/link.png'), j('cats/linkdir')]);
    assert.deepEqual(problemsOf(report, 'single-class'), []);
    assert.deepEqual(problemsOf(report, 'no-classes'), []);
    assert.deepEqual(report.problemCounts, {
      'zero-byte': 1,
      corrupt: 2,
      'extension-mismatch': 2,
      'unsupported-format': 2,
      'root-file': 1,
      'empty-class': 1,
      'symlink-skipped': 2,
    });
    for (const p of report.problems) {
      assert.ok(p.message.includes(p.path), `message names the path: ${p.message}`);
      assert.match(p.message, /^[^\n]+[.]$/, 'one sentence');
    }
    const mism = report.problems.find((p) => p.path === j('dogs/mism.png'));
    assert.match(mism?.message ?? '', /JPEG data.*named \.png.*still counted/);
    const webp = report.problems.find((p) => p.path === j('dogs/webp.png'));
    assert.match(webp?.message ?? '', /WEBP data.*not counted/);
  });

  it('gives the same report, problem order included, with a worker thread', async () => {
    const w = await inspectDataset(root, { workers: 1 });
    assert.deepEqual({ ...w, scanMs: 0 }, { ...report, scanMs: 0 });
  });

  it('caps the problem list but keeps exact counts', async () => {
    const r = await inspectDataset(root, { maxProblems: 3 });
    assert.equal(r.problems.length, 3);
    assert.equal(Object.values(r.problemCounts).reduce((s, n) => s + n, 0), 11);
    assert.equal(r.totalImages, 7);
  });

  it('uses the target size and channels for the decoded estimate', async () => {
    const r = await inspectDataset(root, { imageSize: [224, 160], channels: 1, validationSplit: 0.5 });
    assert.deepEqual(r.decoded, { imageSize: [224, 160], channels: 1, uint8Bytes: 7 * 224 * 160, float32Bytes: 7 * 224 * 160 * 4 });
    assert.equal(r.validation, 3);
    assert.equal(r.train, 4);
  });

  it('lists files with labels in Keras order (sorted walk, linked folders, broken links and unsupported skipped)', async () => {
    const r = await listDatasetFiles(root);
    assert.deepEqual(r.classNames, ['cats', 'dogs', 'empty']);
    assert.deepEqual(
      r.files.map((f) => [f.path.slice(root.length + 1), f.label]),
      [
        ['cats/a.png', 0],
        ['cats/b.jpg', 0],
        ['cats/c.JPEG', 0],
        ['cats/nested/e.bmp', 0],
        ['cats/nested/deeper/d.gif', 0],
        ['dogs/a.png', 1],
        ['dogs/corrupt.png', 1],
        ['dogs/mism.png', 1],
        ['dogs/trunc.png', 1],
        ['dogs/webp.png', 1],
        ['dogs/zero.png', 1],
      ],
    );
  });
});

describe('dataset inspector: splits, balance and layouts', () => {
  const { dir: base, cleanup } = tempDir();
  after(cleanup);

  it('splits 12 images 10/2 at 0.2 and 9/3 at 0.25; ratio 2 for 8 vs 4', async () => {
    const root = join(base, 'split');
    for (let i = 0; i < 8; i++) await writeImage(join(root, 'a', `${i}.png`), 'png', 10 + i, 10);
    for (let i = 0; i < 4; i++) await writeImage(join(root, 'b', `${i}.jpg`), 'jpeg', 10, 20);
    const r20 = await inspectDataset(root);
    assert.deepEqual([r20.train, r20.validation], [10, 2]);
    assert.equal(r20.imbalanceRatio, 2);
    // widths 10 ×5, 11..17: median at rank 5.5, p95 at rank 10.45
    assert.deepEqual(r20.width, { min: 10, median: 11.5, p95: 16.45, max: 17 });
    const r25 = await inspectDataset(root, { validationSplit: 0.25, imageSize: [224, 224] });
    assert.deepEqual([r25.train, r25.validation], [9, 3]);
    assert.equal(r25.decoded.uint8Bytes, 12 * 224 * 224 * 3);
    assert.equal(r25.decoded.float32Bytes, 7_225_344);
    assert.deepEqual(r25.problems, []);
  });

  it('reads JPEG frame headers behind big EXIF segments (past the first 512 B and 4 KiB reads)', async () => {
    const root = join(base, 'exif');
    const small = await writeImage(join(root, 'a', 'small-exif.jpg'), 'jpeg', 33, 21, { exifChars: 2000 });
    const big = await writeImage(join(root, 'b', 'big-exif.jpg'), 'jpeg', 45, 17, { exifChars: 20000 });
    assert.ok(small.length > 2000 && small.length < 4096 && big.length > 20000);
    const r = await inspectDataset(root);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.width, { min: 33, median: 39, p95: 44.4, max: 45 });
    assert.deepEqual([r.height.min, r.height.max], [17, 21]);
    assert.equal(r.bytesOnDisk, small.length + big.length);
  });

  it('flags a single class', async () => {
    const root = join(base, 'single');
    await writeImage(join(root, 'only', 'x.png'), 'png', 5, 5);
    const r = await inspectDataset(root);
    assert.deepEqual(problemsOf(r, 'single-class'), [join(root, 'only')]);
    assert.equal(r.imbalanceRatio, 1);
    assert.equal(r.totalImages, 1);
  });

  it('returns an empty report with no-classes for an empty folder (not an error)', async () => {
    const root = join(base, 'emptyroot');
    mkdirSync(root);
    const r = await inspectDataset(root);
    assert.equal(r.totalImages, 0);
    assert.deepEqual(r.classes, []);
    assert.deepEqual(problemsOf(r, 'no-classes'), [root]);
    assert.deepEqual(r.width, { min: 0, median: 0, p95: 0, max: 0 });
    assert.deepEqual(r.widthHistogram, []);
    assert.deepEqual(r.channels, {});
    assert.equal(r.imbalanceRatio, null);
    assert.deepEqual([r.train, r.validation], [0, 0]);
  });

  it('throws DatasetInputError naming the path for a missing root or a file', async () => {
    const missing = join(base, 'does-not-exist');
    await assert.rejects(inspectDataset(missing), (e: Error) => e instanceof DatasetInputError && e.message.includes(missing));
    await assert.rejects(listDatasetFiles(missing), (e: Error) => e instanceof DatasetInputError && e.message.includes(missing));
    const file = join(base, 'file.png');
    await writeImage(file, 'png', 4, 4);
    await assert.rejects(inspectDataset(file), (e: Error) => e.name === 'DatasetInputError' && e.message.includes(file));
  });

  it('resolves a relative root: report and problem paths are absolute', async () => {
    const root = join(base, 'relative');
    await writeImage(join(root, 'only', 'x.png'), 'png', 3, 3);
    const rel = relative(process.cwd(), root);
    const r = await inspectDataset(rel);
    assert.equal(r.root, root);
    assert.equal(r.problems[0]?.path, join(root, 'only'));
    const l = await listDatasetFiles(rel);
    assert.equal(l.files[0]?.path, join(root, 'only', 'x.png'));
  });

  it('rejects bad options with RangeError', async () => {
    await assert.rejects(inspectDataset(base, { validationSplit: 1 }), RangeError);
    await assert.rejects(inspectDataset(base, { imageSize: [0, 10] }), RangeError);
  });

  it('orders nested folders as Python sorts their paths ("sub" < "sub-x" < "sub/deeper")', async () => {
    const root = join(base, 'order');
    const png = (p: string): Promise<Buffer> => writeImage(join(root, p), 'png', 2, 2);
    await png('k/sub/z.png');
    await png('k/sub-x/y.png');
    await png('k/sub/deeper/q.png');
    await png('k/B.png');
    await png('k/a.png');
    await png('K2/m.PNG');
    const r = await listDatasetFiles(root);
    assert.deepEqual(r.classNames, ['K2', 'k']);
    assert.deepEqual(
      r.files.map((f) => `${f.label}:${f.path.slice(root.length + 1)}`),
      ['0:K2/m.PNG', '1:k/B.png', '1:k/a.png', '1:k/sub/z.png', '1:k/sub-x/y.png', '1:k/sub/deeper/q.png'],
    );
  });

  it('sorts names by code point like Python (astral after U+FFFF)', () => {
    assert.ok(compareCodePoints('\uffff', '\u{10000}') < 0);
    assert.ok('\uffff' > '\u{10000}', 'plain JS order differs');
    assert.deepEqual(sortByCodePoint(['\u{10000}', '\uffff', 'b', 'a']), ['a', 'b', '\uffff', '\u{10000}']);
  });

  it('makes nice histogram bins', () => {
    const v = [3, 7, 7, 250, 1000];
    const h = histogram(v, 3, 1000);
    assert.ok(h.length <= 20);
    assert.deepEqual([h[0]?.from, h.at(-1)?.to], [0, 1000]);
    assert.equal(h[0]?.to, 50);
    assert.equal(h.at(-1)?.count, 1, 'max sits in the last bin');
    assert.equal(h.reduce((s, b) => s + b.count, 0), 5);
    assert.deepEqual(histogram([5, 5], 5, 5), [{ from: 5, to: 5, count: 2 }]);
  });
});

describe('dataset inspector: permission denied', () => {
  const { dir: root, cleanup } = tempDir();
  before(async () => {
    await writeImage(join(root, 'a', 'ok.png'), 'png', 6, 6);
    await writeImage(join(root, 'a', 'secret.png'), 'png', 6, 6);
    await writeImage(join(root, 'b', 'ok.png'), 'png', 6, 6);
    await writeImage(join(root, 'b', 'locked', 'x.png'), 'png', 6, 6);
  });
  after(cleanup);

  it('reports unreadable files and folders through the fs seams (tests run as root)', async () => {
    const lockedDir = join(root, 'b', 'locked');
    const secret = join(root, 'a', 'secret.png');
    const fs: WalkFs = {
      ...nodeWalkFs,
      readdir: (p) => (p === lockedDir ? Promise.reject(errnoError('EACCES', p)) : nodeWalkFs.readdir(p)),
    };
    const probeFs: ProbeFs = {
      openSync: (p, flags) => {
        if (p === secret) throw errnoError('EACCES', p);
        return nodeFs.openSync(p, flags);
      },
      readSync: (fd, b, o, l, pos) => nodeFs.readSync(fd, b, o, l, pos),
      fstatSync: (fd) => nodeFs.fstatSync(fd),
      closeSync: (fd) => nodeFs.closeSync(fd),
    };
    const r = await inspectDataset(root, { fs, probeFs });
    assert.deepEqual(problemsOf(r, 'permission-denied').sort(), [secret, lockedDir].sort());
    assert.deepEqual(r.classes, [
      { name: 'a', count: 1 },
      { name: 'b', count: 1 },
    ]);
    const l = await listDatasetFiles(root, { fs });
    assert.equal(l.files.length, 3, 'unreadable folder skipped');
  });

  it('reports an unreadable class folder once (not also as empty)', async () => {
    const classB = join(root, 'b');
    const fs: WalkFs = { ...nodeWalkFs, readdir: (p) => (p === classB ? Promise.reject(errnoError('EPERM', p)) : nodeWalkFs.readdir(p)) };
    const r = await inspectDataset(root, { fs });
    assert.deepEqual(problemsOf(r, 'permission-denied'), [classB]);
    assert.deepEqual(problemsOf(r, 'empty-class'), []);
    assert.deepEqual(r.classes, [
      { name: 'a', count: 2 },
      { name: 'b', count: 0 },
    ]);
    assert.equal(r.imbalanceRatio, null);
  });

  it('throws DatasetInputError for an unreadable root', async () => {
    const fs: WalkFs = { ...nodeWalkFs, readdir: (p) => Promise.reject(errnoError('EACCES', p)) };
    await assert.rejects(inspectDataset(root, { fs }), (e: Error) => e instanceof DatasetInputError && e.message.includes(root) && /permission denied/.test(e.message));
  });

  it('reports real chmod 000 files', { skip: process.getuid?.() === 0 ? 'running as root: root reads every file, the seam test above covers it' : false }, async () => {
    const p = join(root, 'a', 'secret.png');
    chmodSync(p, 0o000);
    try {
      const r = await inspectDataset(root);
      assert.deepEqual(problemsOf(r, 'permission-denied'), [p]);
    } finally {
      chmodSync(p, 0o644);
    }
  });
});

describe('dataset inspector at scale: progress, cancellation, worker', () => {
  const { dir: root, cleanup } = tempDir();
  const classes = ['c0', 'c1', 'c2', 'c3'];
  let total = 0;
  before(async () => {
    total = await writeManyCopies(root, classes, 300);
  });
  after(cleanup);

  it('calls onProgress with growing counts and a final exact one', async () => {
    const seen: { filesSeen: number; imagesFound: number }[] = [];
    const r = await inspectDataset(root, { onProgress: (p) => seen.push({ ...p }), workers: 0 });
    assert.equal(r.totalImages, total);
    assert.ok(seen.length >= 1);
    assert.deepEqual(seen.at(-1), { filesSeen: total, imagesFound: total });
    for (let i = 1; i < seen.length; i++) assert.ok((seen[i]?.imagesFound ?? 0) >= (seen[i - 1]?.imagesFound ?? 0));
  });

  it('throttles onProgress to about one call per 100 ms on a slow disk', async () => {
    // A probe layer that spends 0.2 ms per open: the 1,200-file scan takes ≥ 240 ms.
    const probeFs: ProbeFs = {
      openSync: (p, flags) => {
        const until = performance.now() + 0.2;
        while (performance.now() < until);
        return nodeFs.openSync(p, flags);
      },
      readSync: (fd, b, o, l, pos) => nodeFs.readSync(fd, b, o, l, pos),
      fstatSync: (fd) => nodeFs.fstatSync(fd),
      closeSync: (fd) => nodeFs.closeSync(fd),
    };
    const times: number[] = [];
    const t0 = performance.now();
    await inspectDataset(root, { probeFs, onProgress: () => times.push(performance.now()) });
    const elapsed = performance.now() - t0;
    assert.ok(times.length >= 2, `${times.length} calls in ${elapsed.toFixed(0)} ms`);
    assert.ok(times.length <= Math.ceil(elapsed / 100) + 1, `${times.length} calls in ${elapsed.toFixed(0)} ms`);
    // All but the final (forced) call are at least 100 ms apart.
    for (let i = 1; i < times.length - 1; i++) assert.ok((times[i] as number) - (times[i - 1] as number) >= 99);
  });

  it('finishes the batches of a worker in the calling thread when the worker dies', async () => {
    const pool = ScanPool.acquire(1);
    try {
      const paths = classes.map((c) => join(root, c, 'img_000000.png'));
      const pending = pool.probe(paths);
      const workers = (pool as unknown as { workers: { terminate(): Promise<number> }[] }).workers;
      await workers[0]?.terminate();
      const r = await pending;
      assert.deepEqual([...r.width], [8, 8, 8, 8]);
      assert.equal(pool.size, 0);
      const after = await pool.probe(paths.slice(0, 1));
      assert.deepEqual([...after.height], [8]);
    } finally {
      pool.release();
    }
  });

  it('takes back a batch the worker has not started, and not one it has finished', async () => {
    const pool = ScanPool.acquire(1);
    try {
      const paths = classes.map((c) => join(root, c, 'img_000001.png'));
      const first = pool.submit(paths);
      // The worker is still starting (or busy): the batch is not claimed yet.
      assert.equal(pool.takeBack(first.id), true);
      assert.equal(pool.takeBack(first.id), false, 'only once');
      const second = pool.submit(paths.slice(0, 2));
      const r = await second.result;
      assert.deepEqual([...r.width], [8, 8]);
      assert.equal(pool.takeBack(second.id), false, 'finished batches stay finished');
      assert.equal(pool.pendingCount, 0);
    } finally {
      pool.release();
    }
  });

  it('gives the same report with a worker thread', async () => {
    const a = await inspectDataset(root, { workers: 0 });
    const b = await inspectDataset(root, { workers: 1 });
    assert.deepEqual({ ...b, scanMs: 0 }, { ...a, scanMs: 0 });
    assert.deepEqual(a.classes, classes.map((name) => ({ name, count: 300 })));
  });

  for (const workers of [0, 1]) {
    it(`rejects with AbortError when aborted mid-scan, reading no further folder (workers: ${workers})`, async () => {
      const ac = new AbortController();
      let abortedAt = 0;
      const readAfter: string[] = [];
      // Abort when the walker reaches the third class: classes c0 and c1 are being probed then.
      const fs: WalkFs = {
        ...nodeWalkFs,
        readdir: (p) => {
          if (abortedAt) readAfter.push(p);
          if (p === join(root, 'c2') && !abortedAt) {
            abortedAt = performance.now();
            ac.abort();
          }
          return nodeWalkFs.readdir(p);
        },
      };
      let seen = 0;
      await assert.rejects(inspectDataset(root, { workers, signal: ac.signal, fs, onProgress: (p) => (seen = p.filesSeen) }), (e: Error) => e.name === 'AbortError');
      assert.ok(abortedAt > 0, 'aborted mid-scan');
      assert.deepEqual(readAfter, [], 'no folder is read after the abort');
      assert.ok(seen < classes.length * 300, `the scan did not run to the end (${seen} files seen)`);
      // A hang ceiling only (the time is the scheduler's on a loaded machine).
      assert.ok(performance.now() - abortedAt < 30_000);
    });
  }

  it('rejects at once with an already aborted signal (also listDatasetFiles)', async () => {
    const ac = new AbortController();
    ac.abort(new Error('custom reason'));
    await assert.rejects(inspectDataset(root, { signal: ac.signal }), { name: 'AbortError' });
    await assert.rejects(listDatasetFiles(root, { signal: ac.signal }), { name: 'AbortError' });
  });
});
