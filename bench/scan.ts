/**
 * Dataset scan benchmark: our inspectDataset against a Python PIL `Image.open(p).size` loop over
 * the same files, warm cache, plus memory at two dataset sizes.
 *
 *   node --import tsx bench/scan.ts [--files 50000] [--runs 3] [--no-python]
 *
 * The dataset is generated once (a handful of distinct PNG/JPEG images encoded with sharp, written
 * as copies, ~10 classes) and cached in bench/.data/scan-<files>/ (git-ignored).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { listDatasetFiles } from '../src/core/dataset/list';
import { inspectDataset } from '../src/core/dataset/inspect';

const PYTHON = '/usr/bin/python3';
const CLASSES = 10;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} wants a positive number`);
  return v;
}

/** A smooth pattern with a little texture: compresses to a few KB like typical small datasets. */
async function encode(width: number, height: number, format: 'png' | 'jpeg', seed: number): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 3);
  let s = seed * 2654435761;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const i = (y * width + x) * 3;
      px[i] = (x * 255) / width + (s & 7);
      px[i + 1] = (y * 255) / height + ((s >> 3) & 7);
      px[i + 2] = ((x + y + seed * 17) * 3) & 255;
    }
  }
  const img = sharp(px, { raw: { width, height, channels: 3 } });
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 85 }).toBuffer();
}

export async function ensureDataset(files: number): Promise<string> {
  const dir = resolve(__dirname, '.data', `scan-${files}`);
  const marker = join(dir, '.complete');
  if (existsSync(marker) && Number(readFileSync(marker, 'utf8')) === files) return dir;
  rmSync(dir, { recursive: true, force: true });
  const t0 = performance.now();
  const sizes: [number, number][] = [[28, 28], [32, 32], [64, 48], [64, 64], [96, 96], [128, 96], [160, 120]];
  const blobs: { ext: string; data: Buffer }[] = [];
  for (let i = 0; i < sizes.length; i++) {
    const [w, h] = sizes[i] as [number, number];
    blobs.push({ ext: 'png', data: await encode(w, h, 'png', i) });
    blobs.push({ ext: 'jpg', data: await encode(w, h, 'jpeg', i) });
  }
  for (let c = 0; c < CLASSES; c++) mkdirSync(join(dir, `class_${String(c).padStart(2, '0')}`), { recursive: true });
  for (let i = 0; i < files; i++) {
    const b = blobs[(i * 7 + Math.floor(i / 13)) % blobs.length] as { ext: string; data: Buffer };
    writeFileSync(join(dir, `class_${String(i % CLASSES).padStart(2, '0')}`, `img_${String(i).padStart(6, '0')}.${b.ext}`), b.data);
  }
  writeFileSync(marker, String(files));
  console.log(`generated ${files} files in ${dir} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return dir;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(0)} MiB`;
}

async function timeOurs(dir: string): Promise<{ ms: number; images: number }> {
  const t0 = performance.now();
  const r = await inspectDataset(dir);
  return { ms: performance.now() - t0, images: r.totalImages };
}

function timePil(listFile: string): number | string {
  const probe = spawnSync(PYTHON, ['-c', 'import PIL'], { encoding: 'utf8' });
  if (probe.status !== 0) return `PIL is missing for ${PYTHON}: install it with \`apt-get install -y python3-pil\` (Debian) to compare.`;
  const code = [
    'import sys, time',
    'from PIL import Image',
    'paths = open(sys.argv[1]).read().split("\\n")',
    't = time.perf_counter()',
    'n = 0',
    'for p in paths:',
    '    with Image.open(p) as im: s = im.size',
    '    n += 1',
    'print((time.perf_counter() - t) * 1000, n)',
  ].join('\n');
  const out = execFileSync(PYTHON, ['-c', code, listFile], { encoding: 'utf8' }).trim().split(/\s+/);
  return Number(out[0]);
}

async function main(): Promise<void> {
  const files = arg('files', 50000);
  const runs = arg('runs', 3);
  const dir = await ensureDataset(files);
  const listFile = join(dir, '..', `scan-${files}.list`);
  const list = await listDatasetFiles(dir);
  writeFileSync(listFile, list.files.map((f) => f.path).join('\n'));

  // Memory flatness: a 10k subset first (same process, fresh peak is not possible, so report RSS after each).
  const small = await ensureDataset(Math.min(10000, files));
  global.gc?.();
  await inspectDataset(small);
  const rssSmall = process.memoryUsage().rss;

  await inspectDataset(dir); // warm-up: page cache and JIT
  const ours: number[] = [];
  for (let i = 0; i < runs; i++) ours.push((await timeOurs(dir)).ms);
  const rssLarge = process.memoryUsage().rss;
  const pil: number[] = [];
  let pilNote = '';
  for (let i = 0; i < runs; i++) {
    const r = timePil(listFile);
    if (typeof r === 'string') {
      pilNote = r;
      break;
    }
    pil.push(r);
  }
  const best = (xs: number[]): number => Math.min(...xs);
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const n = list.files.length;
  console.log(`files: ${n} images in ${list.classNames.length} classes (${dir})`);
  console.log(`ours (inspectDataset): best ${best(ours).toFixed(0)} ms, median ${median(ours).toFixed(0)} ms of ${runs} — ${Math.round(n / (best(ours) / 1000))} images/s`);
  if (pil.length > 0) {
    console.log(`PIL Image.open(p).size: best ${best(pil).toFixed(0)} ms, median ${median(pil).toFixed(0)} ms — ${Math.round(n / (best(pil) / 1000))} images/s`);
    console.log(`ratio (PIL / ours, best): ${(best(pil) / best(ours)).toFixed(2)}×; median: ${(median(pil) / median(ours)).toFixed(2)}×`);
  } else console.log(pilNote);
  console.log(`RSS after 10k scan: ${mib(rssSmall)}; after ${n} scans: ${mib(rssLarge)}; peak (maxRSS): ${mib(process.resourceUsage().maxRSS * 1024)}`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
