/**
 * Reliability of the file system (docs/RELIABILITY.md): symbolic links as Keras follows them,
 * oversized images, names that are not UTF-8, unreadable folders, a read-only or full disk for the
 * run folder and the model. Tests run as root, so faults are injected through the fs seams.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { configForFolder } from '../../src/core/config';
import { fallbackPlan } from '../../src/core/planning/plan';
import { inspectDataset } from '../../src/core/dataset/inspect';
import { listDatasetFiles, unreadableClassFolder } from '../../src/core/dataset/list';
import { nodeWalkFs, type WalkFs } from '../../src/core/dataset/walk';
import { createRunDir, RunDirError, runsRoot, type RunDirFs } from '../../src/core/run-folder/runs';
import { classifyError } from '../../src/core/shared/errors';
import { decodeImage, SkipFileError } from '../../src/trainer/data/decode';
import { ImagePipeline } from '../../src/trainer/data/pipeline';
import { loadLayersModelFromFile } from '../../src/trainer/model-io';
import { RunFiles } from '../../src/trainer/train/run-files';
import type { tf } from '../../src/trainer/tf';

let root: string;

async function png(path: string, side = 8, value = 100): Promise<void> {
  mkdirSync(join(path, '..'), { recursive: true });
  await sharp(Buffer.alloc(side * side * 3, value), { raw: { width: side, height: side, channels: 3 } }).png().toFile(path);
}

/** A real PNG whose IHDR (CRC fixed) claims width × height. */
async function pngClaiming(path: string, width: number, height: number): Promise<void> {
  const buf = Buffer.from(await sharp(Buffer.alloc(4 * 4 * 3, 50), { raw: { width: 4, height: 4, channels: 3 } }).png().toBuffer());
  buf.writeUInt32BE(width, 16);
  buf.writeUInt32BE(height, 20);
  buf.writeUInt32BE(zlib.crc32(buf.subarray(12, 29)) >>> 0, 29);
  writeFileSync(path, buf);
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'ba-rel-fs-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('symbolic links, as Keras follows them', () => {
  test('a linked image file is counted and trained; a linked class folder is a class; a link to a folder inside a class is not descended; a loop is safe', async () => {
    const ds = join(root, 'links');
    const elsewhere = join(root, 'elsewhere');
    await png(join(elsewhere, 'dogs', '0.png'));
    await png(join(elsewhere, 'dogs', '1.png'));
    await png(join(elsewhere, 'one.png'));
    await png(join(ds, 'cats', 'a.png'));
    mkdirSync(join(ds, 'cats', 'sub'), { recursive: true });
    symlinkSync(join(elsewhere, 'one.png'), join(ds, 'cats', 'b.png')); // a linked file: counted
    symlinkSync(join(elsewhere, 'dogs'), join(ds, 'dogs')); // a linked class folder: a class
    symlinkSync(ds, join(ds, 'cats', 'sub', 'loop')); // a link to an ancestor: not descended
    symlinkSync(join(root, 'nothing.png'), join(ds, 'cats', 'broken.png')); // broken: reported

    const list = await listDatasetFiles(ds);
    assert.deepEqual(list.classNames, ['cats', 'dogs']);
    assert.deepEqual(list.files.map((f) => [f.path.slice(ds.length + 1), f.label]), [
      ['cats/a.png', 0],
      ['cats/b.png', 0],
      ['dogs/0.png', 1],
      ['dogs/1.png', 1],
    ]);
    const report = await inspectDataset(ds);
    assert.equal(report.totalImages, 4, 'inspect counts what training lists');
    assert.deepEqual(report.classes, [{ name: 'cats', count: 2 }, { name: 'dogs', count: 2 }]);
    const links = report.problems.filter((p) => p.kind === 'symlink-skipped').map((p) => p.message);
    assert.equal(links.length, 2);
    assert.ok(links.some((m) => /cats\/sub\/loop is a symbolic link to a folder inside a class folder, which is not descended into/.test(m)));
    assert.ok(links.some((m) => /broken\.png is a symbolic link to nothing/.test(m)));
    const skipped: string[] = [];
    const p = await ImagePipeline.create(list.files, { imageSize: [8, 8], channels: 3, batchSize: 2, seed: 1, loading: 'preload', onSkip: (f) => skipped.push(f) });
    assert.deepEqual(skipped, []);
    assert.equal(p.size, 4);
  });
});

describe('inspect and training agree', () => {
  test('a PNG whose header claims 60000×60000 is a too-large problem in the inspection (not counted) and skipped by training with the same limit', async () => {
    const ds = join(root, 'huge');
    await png(join(ds, 'a', '0.png'));
    await png(join(ds, 'b', '0.png'));
    await pngClaiming(join(ds, 'b', 'huge.png'), 60000, 60000);
    const report = await inspectDataset(ds);
    assert.equal(report.totalImages, 2);
    const tooLarge = report.problems.filter((p) => p.kind === 'too-large');
    assert.equal(tooLarge.length, 1);
    assert.match(tooLarge[0]!.message, /huge\.png is 60000×60000 = 3600\.0 MP, over the 50 MP limit: training skips it/);
    await assert.rejects(decodeImage(join(ds, 'b', 'huge.png'), { imageSize: [8, 8], channels: 3 }), (e: Error) => e instanceof SkipFileError && /too large: 60000×60000/.test(e.message));
  });

  test('file names that are not valid UTF-8 are reported as such and left out of both', async () => {
    const ds = join(root, 'names');
    await png(join(ds, 'a', 'ok.png'));
    await png(join(ds, 'b', 'ok.png'));
    const bad = Buffer.concat([Buffer.from(join(ds, 'b') + '/'), Buffer.from([0x66, 0xff, 0x2e, 0x70, 0x6e, 0x67])]); // "f\xff.png"
    writeFileSync(bad, Buffer.alloc(10));
    const report = await inspectDataset(ds);
    const problems = report.problems.filter((p) => p.kind === 'bad-file-name');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /has a name that is not valid UTF-8.*rename it/);
    assert.equal(report.problems.filter((p) => p.kind === 'corrupt').length, 0, 'not called corrupt');
    assert.equal((await listDatasetFiles(ds)).files.length, report.totalImages);
  });
});

describe('unreadable files and folders', () => {
  test('an unreadable class folder stops training with a message naming it (not a silent empty class)', async () => {
    const ds = join(root, 'unreadable');
    await png(join(ds, 'a', '0.png'));
    await png(join(ds, 'b', '0.png'));
    const fs: WalkFs = {
      ...nodeWalkFs,
      readdir: (p) => (p === join(ds, 'b') ? Promise.reject(Object.assign(new Error(`EACCES: permission denied, scandir '${p}'`), { code: 'EACCES' })) : nodeWalkFs.readdir(p)),
    };
    const list = await listDatasetFiles(ds, { fs });
    assert.match(unreadableClassFolder(list) ?? '', new RegExp(`Class folder ${join(ds, 'b')} cannot be read \\(permission denied: fix its permissions`));
  });

  test('a missing image says "file disappeared", not "unsupported image format"', async () => {
    await assert.rejects(decodeImage(join(root, 'gone.png'), { imageSize: [8, 8], channels: 3 }), (e: Error) => e instanceof SkipFileError && e.message === 'file disappeared');
  });
});

describe('run folder on a read-only or full disk', () => {
  const config = configForFolder(join(root, 'x'), { name: 'r' });
  const plan = (): ReturnType<typeof fallbackPlan> => fallbackPlan(config, { train: 10, validation: 2 }, 'test');
  const err = (code: string): Error => Object.assign(new Error(`${code}: injected`), { code });

  test('a read-only location: one line naming the folder and the cause, classified as input to fix', () => {
    const fs: RunDirFs = { mkdirSync: () => { throw err('EROFS'); }, writeFileSync: () => undefined };
    const ws = join(root, 'ro');
    assert.throws(() => createRunDir(ws, config, plan(), new Date(), fs), (e: Error) => {
      assert.ok(e instanceof RunDirError);
      assert.equal(e.message, `cannot create the runs folder ${runsRoot(ws)}: the file system is read-only (EROFS): choose a writable workspace`);
      assert.equal(classifyError(e).kind, 'bad-input');
      return true;
    });
  });

  test('a full disk while writing config.json: the half-made run folder is removed, the message names it', () => {
    const ws = join(root, 'full');
    const fs: RunDirFs = { mkdirSync: (p, o) => mkdirSync(p, o), writeFileSync: () => { throw err('ENOSPC'); } };
    assert.throws(() => createRunDir(ws, config, plan(), new Date(), fs), /cannot write the run folder .*-r \(removed\): the disk is full \(ENOSPC\): free some space/);
    assert.deepEqual(readdirSync(runsRoot(ws)), []);
  });

  test('a full disk while saving the model: model.saving is removed, the previous model kept, the message names the folder', async () => {
    const dir = join(root, 'run-save');
    const files = new RunFiles(dir);
    try {
      mkdirSync(join(dir, 'model'));
      writeFileSync(join(dir, 'model', 'model.json'), '{"previous":true}');
      const failing = {
        save: async (): Promise<never> => {
          mkdirSync(join(dir, 'model.saving'), { recursive: true });
          writeFileSync(join(dir, 'model.saving', 'weights.bin'), 'half');
          throw err('ENOSPC');
        },
      } as unknown as tf.LayersModel;
      await assert.rejects(files.saveModel(failing), (e: Error) => {
        assert.equal(e.message, `could not save the model to ${join(dir, 'model')}: the disk is full (ENOSPC): free some space; the previous epoch's model is kept`);
        return true;
      });
      assert.ok(!existsSync(join(dir, 'model.saving')));
      assert.ok(existsSync(join(dir, 'model', 'model.json')));
    } finally {
      files.close();
    }
  });
});

describe('files that change during a scan, and model files', () => {
  test('a file deleted between listing and probing is reported as vanished, not corrupt', async () => {
    const ds = join(root, 'vanish');
    await png(join(ds, 'a', '0.png'));
    await png(join(ds, 'b', '0.png'));
    await png(join(ds, 'b', 'gone.png'));
    const real = await import('node:fs');
    const probeFs = {
      openSync: (p: string, f: string): number => {
        if (p.endsWith('gone.png')) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' });
        return real.openSync(p, f);
      },
      readSync: real.readSync,
      fstatSync: real.fstatSync,
      closeSync: real.closeSync,
    };
    const report = await inspectDataset(ds, { probeFs });
    assert.equal(report.totalImages, 2);
    const v = report.problems.filter((p) => p.kind === 'vanished');
    assert.equal(v.length, 1);
    assert.match(v[0]!.message, /gone\.png disappeared during the scan/);
  });

  test('a huge model.json and a weight shard outside the model folder are refused with the file named', async () => {
    const d = join(root, 'models');
    mkdirSync(d, { recursive: true });
    const huge = join(d, 'huge.json');
    writeFileSync(huge, '');
    (await import('node:fs')).truncateSync(huge, 200 * 2 ** 20); // sparse: no disk used
    await assert.rejects(loadLayersModelFromFile(huge), /huge\.json: 200 MiB is too large for a model\.json/);
    const escaping = join(d, 'escape.json');
    writeFileSync(
      escaping,
      JSON.stringify({
        format: 'layers-model',
        modelTopology: { class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'Dense', config: { units: 2, batch_input_shape: [null, 3] } }] } },
        weightsManifest: [{ paths: ['../../../etc/passwd'], weights: [{ name: 'dense/kernel', shape: [3, 2], dtype: 'float32' }] }],
      }),
    );
    await assert.rejects(loadLayersModelFromFile(escaping), /weight shard "\.\.\/\.\.\/\.\.\/etc\/passwd" is outside the model's folder/);
  });
});

describe('huge and deep folders', () => {
  test('10,000 images in one class and an image 120 folders deep: inspect and the trainer listing agree', async () => {
    const ds = join(root, 'big');
    const bytes = await sharp(Buffer.alloc(8 * 8 * 3, 90), { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer();
    mkdirSync(join(ds, 'many'), { recursive: true });
    for (let i = 0; i < 10_000; i++) writeFileSync(join(ds, 'many', `${i}.png`), bytes);
    let deep = join(ds, 'deep');
    for (let i = 0; i < 120; i++) deep = join(deep, `d${i}`);
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'bottom.png'), bytes);
    const list = await listDatasetFiles(ds);
    const report = await inspectDataset(ds);
    assert.equal(list.files.length, 10_001);
    assert.equal(report.totalImages, 10_001);
    assert.deepEqual(report.classes, [{ name: 'deep', count: 1 }, { name: 'many', count: 10_000 }]);
    assert.ok(list.files[0]!.path.endsWith('bottom.png'));
  });
});
