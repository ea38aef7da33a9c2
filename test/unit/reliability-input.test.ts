/**
 * Reliability of inputs (docs/RELIABILITY.md): datasets and configs a person may have — BMP images,
 * a single class, a config saved with a BOM, an image passed where a config goes — end in training
 * or in one clear line naming the file, never a stack trace or binary bytes.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { ConfigError, loadConfigFile } from '../../src/core/config';
import { inspectDataset } from '../../src/core/dataset/inspect';
import { listDatasetFiles } from '../../src/core/dataset/list';
import { suggest, SuggestInputError } from '../../src/core/process/suggest';
import { checkDataset, FlowInputError } from '../../src/core/process/train-flow';
import { configForFolder } from '../../src/core/config';
import { decodeImage, SkipFileError } from '../../src/trainer/data/decode';
import { ImagePipeline } from '../../src/trainer/data/pipeline';
import { bmp24 } from '../helpers/bmp';

const CLI_MAIN = resolve(__dirname, '../helpers/cli-main.ts');
let root: string;

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI_MAIN, ...args], { encoding: 'utf8', timeout: 120_000, cwd: resolve(__dirname, '../..') });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const pattern = (x: number, y: number): [number, number, number] => [(x * 16) % 256, (y * 16) % 256, 128];

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ba-rel-input-'));
  // A BMP-only class next to a PNG class.
  mkdirSync(join(root, 'mixed', 'bmp'), { recursive: true });
  mkdirSync(join(root, 'mixed', 'png'), { recursive: true });
  for (let i = 0; i < 6; i++) {
    writeFileSync(join(root, 'mixed', 'bmp', `${i}.bmp`), bmp24(16, 16, pattern));
    const raw = Buffer.alloc(16 * 16 * 3);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) raw.set(pattern(x, y), (y * 16 + x) * 3);
    await sharp(raw, { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(join(root, 'mixed', 'png', `${i}.png`));
  }
  mkdirSync(join(root, 'single', 'cats'), { recursive: true });
  writeFileSync(join(root, 'single', 'cats', 'a.bmp'), bmp24(8, 8, pattern));
  writeFileSync(join(root, 'single', 'cats', 'b.bmp'), bmp24(8, 8, pattern));
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('BMP images (Keras decodes them)', () => {
  test('a BMP decodes to the same pixels as the PNG of the same image, in every channel count', async () => {
    for (const channels of [1, 3, 4] as const) {
      const a = await decodeImage(join(root, 'mixed', 'bmp', '0.bmp'), { imageSize: [16, 16], channels });
      const b = await decodeImage(join(root, 'mixed', 'png', '0.png'), { imageSize: [16, 16], channels });
      assert.deepEqual(Buffer.from(a), Buffer.from(b), `channels ${channels}`);
    }
  });

  test('inspect counts BMP and the trainer loads every one of them (counts agree)', async () => {
    const report = await inspectDataset(join(root, 'mixed'));
    const listing = await listDatasetFiles(join(root, 'mixed'));
    const skipped: string[] = [];
    const p = await ImagePipeline.create(listing.files, { imageSize: [16, 16], channels: 3, batchSize: 4, seed: 1, loading: 'preload', onSkip: (path, reason) => skipped.push(`${path}: ${reason}`) });
    assert.deepEqual(skipped, []);
    assert.equal(p.size, report.totalImages);
    assert.equal(report.formats['bmp'], 6);
  });

  test('a truncated or oversized BMP is skipped with a reason, not a crash', async () => {
    const full = bmp24(16, 16, pattern);
    writeFileSync(join(root, 'trunc.bmp'), full.subarray(0, 20));
    await assert.rejects(decodeImage(join(root, 'trunc.bmp'), { imageSize: [8, 8], channels: 3 }), (e: Error) => e instanceof SkipFileError && /BMP/.test(e.message));
    const huge = Buffer.from(full);
    huge.writeInt32LE(60000, 18);
    huge.writeInt32LE(60000, 22);
    writeFileSync(join(root, 'huge.bmp'), huge);
    await assert.rejects(decodeImage(join(root, 'huge.bmp'), { imageSize: [8, 8], channels: 3 }), (e: Error) => e instanceof SkipFileError && /too large: 60000×60000/.test(e.message));
  });
});

describe('images of every kind Keras reads', () => {
  test('CMYK JPEG, 16-bit PNG, palette PNG, RGBA PNG, grayscale PNG and an animated GIF (first frame) all decode to the asked shape', async () => {
    const raw = Buffer.alloc(8 * 16 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = i < raw.length / 2 ? 200 : 20;
    const half = { raw: { width: 8, height: 8, channels: 3 as const } };
    const d = join(root, 'kinds');
    mkdirSync(d, { recursive: true });
    const variants: [string, Buffer][] = [
      ['cmyk.jpg', await sharp(raw.subarray(0, 192), half).toColourspace('cmyk').jpeg().toBuffer()],
      ['16bit.png', await sharp(raw.subarray(0, 192), half).toColourspace('rgb16').png().toBuffer()],
      ['palette.png', await sharp(raw.subarray(0, 192), half).png({ palette: true }).toBuffer()],
      ['rgba.png', await sharp(raw.subarray(0, 192), half).ensureAlpha(0.5).png().toBuffer()],
      ['gray.png', await sharp(raw.subarray(0, 192), half).toColourspace('b-w').png().toBuffer()],
      ['animated.gif', await sharp(raw, { raw: { width: 8, height: 16, channels: 3, pageHeight: 8 } as never }).gif().toBuffer()],
    ];
    for (const [name, buf] of variants) {
      writeFileSync(join(d, name), buf);
      for (const channels of [1, 3, 4] as const) {
        const px = await decodeImage(join(d, name), { imageSize: [4, 4], channels });
        assert.equal(px.length, 4 * 4 * channels, `${name} × ${channels}`);
      }
    }
    // The animated GIF gives its first (bright) frame.
    const first = await decodeImage(join(d, 'animated.gif'), { imageSize: [4, 4], channels: 1 });
    assert.ok(first.every((v) => v > 150), `first frame: ${[...first].join(',')}`);
  });

  test('a truncated JPEG has one meaningful skip reason, even with many decodes at once; WebP named .png is skipped as inspect says', async () => {
    const d = join(root, 'trunc');
    mkdirSync(d, { recursive: true });
    const raw = Buffer.alloc(64 * 64 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 7) % 256;
    const jpg = await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
    const png = await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
    const jobs: Promise<string>[] = [];
    for (let i = 0; i < 40; i++) {
      const p = join(d, `${i}.jpg`);
      writeFileSync(p, i % 2 ? jpg.subarray(0, Math.floor(jpg.length * (0.2 + (i % 7) / 10))) : jpg);
      const q = join(d, `${i}.png`);
      writeFileSync(q, i % 2 ? png.subarray(0, Math.floor(png.length * 0.6)) : png);
      for (const f of [p, q]) jobs.push(decodeImage(f, { imageSize: [8, 8], channels: 3 }).then(() => 'ok', (e: Error) => e.message));
    }
    const reasons = new Set(await Promise.all(jobs));
    assert.deepEqual([...reasons].sort(), ['cannot be decoded: the JPEG data is truncated or corrupt', 'cannot be decoded: the PNG data is truncated or corrupt', 'ok']);
    const webp = join(d, 'webp.png');
    writeFileSync(webp, await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).webp().toBuffer());
    await assert.rejects(decodeImage(webp, { imageSize: [8, 8], channels: 3 }), /not a PNG, JPEG, GIF or BMP image/);
  });
});

describe('a single class is refused up front', () => {
  test('train (checkDataset) and suggest say so, naming the folder and the class', async () => {
    const config = configForFolder(join(root, 'single'));
    await assert.rejects(checkDataset(config), (e: Error) => e instanceof FlowInputError && /only one class folder \(cats\): a classifier needs at least two/.test(e.message));
    await assert.rejects(suggest({ config }, { trainerScript: '/nonexistent' }), (e: Error) => e instanceof SuggestInputError && /only one class folder \(cats\)/.test(e.message));
  });

  test('the CLI: suggest <single-class folder> exits 2 with one line', () => {
    const r = cli('suggest', join(root, 'single'));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^batch-advisor: .*only one class folder \(cats\)/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});

describe('configs', () => {
  test('a config saved with a UTF-8 BOM is accepted', () => {
    const path = join(root, 'bom.train.json');
    writeFileSync(path, '\ufeff' + JSON.stringify({ dataset: 'mixed', epochs: 2 }));
    const c = loadConfigFile(path);
    assert.equal(c.epochs, 2);
    assert.equal(c.dataset, join(root, 'mixed'));
  });

  test('an image passed as a config: one line, no binary bytes', async () => {
    const png = join(root, 'mixed', 'png', '0.png');
    const r = cli('suggest', png);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /is neither a dataset folder nor a \.train\.json config/);
    assert.doesNotMatch(r.stderr, /PNG|\ufffd/);
    assert.ok(![...r.stderr].some((ch) => ch.charCodeAt(0) < 9), 'no control bytes');
    const asJson = join(root, 'image.train.json');
    writeFileSync(asJson, await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).png().toBuffer());
    assert.throws(() => loadConfigFile(asJson), (e: Error) => e instanceof ConfigError && /not a config file \(binary content/.test(e.message) && !/PNG/.test(e.message));
  });
});
