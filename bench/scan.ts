/**
 * Dataset scan benchmark: our inspectDataset against a Python PIL `Image.open(p).size` loop over
 * the same files, warm cache, plus memory at two dataset sizes.
 *
 *   node --import tsx bench/scan.ts [--files 50000] [--runs 3] [--no-python]
 *
 * Three variants of ours: the default (one worker on ≥ 2 CPUs, started past 4,096 files), a worker
 * started at once, and the main thread only. Wall times depend on what else runs on the machine
 * (the load average is printed); CPU times (user + system, all threads) much less so.
 * The dataset is generated once (a handful of distinct PNG/JPEG images encoded with sharp, written
 * as copies, ~10 classes) and cached in bench/.data/scan-<files>/ (git-ignored).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { listDatasetFiles } from '../src/core/dataset/list';
import { inspectDataset } from '../src/core/dataset/inspect';
import { median, cpuLine } from './util';

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

/** Wall and CPU (user + system, all threads) milliseconds of one inspectDataset call. */
async function timeOurs(dir: string, workers: number | undefined): Promise<{ wall: number; cpu: number; images: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await inspectDataset(dir, workers === undefined ? {} : { workers });
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000, images: r.totalImages };
}

const PIL_LOOP = [
  'import sys, time',
  'from PIL import Image',
  'paths = open(sys.argv[1]).read().split("\\n")',
  'c = time.process_time()',
  't = time.perf_counter()',
  'for p in paths:',
  '    with Image.open(p) as im: s = im.size',
  'print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000, len(paths))',
].join('\n');

function pilMissing(): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import PIL'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    return `PIL is not importable by ${PYTHON}: install Debian's python3-pil (\`apt-get install -y python3-pil\`) to compare. ${probe.error?.message ?? probe.stderr.trim().split('\n').at(-1) ?? ''}`;
  }
  return undefined;
}

function timePil(listFile: string): { wall: number; cpu: number } {
  const out = execFileSync(PYTHON, ['-c', PIL_LOOP, listFile], { encoding: 'utf8' }).trim().split(/\s+/);
  return { wall: Number(out[0]), cpu: Number(out[1]) };
}

/** Peak RSS of a fresh process that scans `dir` once (child mode of this script). */
function childPeakRss(dir: string): { maxRss: number; images: number } {
  const out = execFileSync(process.execPath, [...process.execArgv, __filename, '--child', dir], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1) as string) as { maxRss: number; images: number };
}

async function child(dir: string): Promise<void> {
  const r = await inspectDataset(dir);
  console.log(JSON.stringify({ maxRss: process.resourceUsage().maxRSS * 1024, images: r.totalImages }));
}

const best = (xs: number[]): number => Math.min(...xs);

async function main(): Promise<void> {
  const files = arg('files', 50000);
  const runs = arg('runs', 3);
  const withPython = !process.argv.includes('--no-python');
  const dir = await ensureDataset(files);
  const list = await listDatasetFiles(dir);
  const n = list.files.length;
  const listFile = join(dir, '..', `scan-${files}.list`);
  writeFileSync(listFile, list.files.map((f) => f.path).join('\n'));
  const pilNote = withPython ? pilMissing() : 'Python comparison skipped (--no-python).';

  console.log(`dataset: ${n} images in ${list.classNames.length} classes (${dir}); ${runs} interleaved runs, warm cache`);
  await inspectDataset(dir); // warm-up: page cache and JIT
  if (!pilNote) timePil(listFile);
  const ours: { wall: number[]; cpu: number[] } = { wall: [], cpu: [] };
  const oursWorker: { wall: number[]; cpu: number[] } = { wall: [], cpu: [] };
  const oursNoWorker: { wall: number[]; cpu: number[] } = { wall: [], cpu: [] };
  const load0 = loadavg()[0] ?? 0;
  const pil: { wall: number[]; cpu: number[] } = { wall: [], cpu: [] };
  for (let i = 0; i < runs; i++) {
    const a = await timeOurs(dir, undefined);
    ours.wall.push(a.wall);
    ours.cpu.push(a.cpu);
    const w = await timeOurs(dir, 1);
    oursWorker.wall.push(w.wall);
    oursWorker.cpu.push(w.cpu);
    const b = await timeOurs(dir, 0);
    oursNoWorker.wall.push(b.wall);
    oursNoWorker.cpu.push(b.cpu);
    if (!pilNote) {
      const p = timePil(listFile);
      pil.wall.push(p.wall);
      pil.cpu.push(p.cpu);
    }
  }
  const line = (name: string, t: { wall: number[]; cpu: number[] }): void => {
    console.log(
      `${name.padEnd(42)} wall best ${best(t.wall).toFixed(0).padStart(5)} ms, median ${median(t.wall).toFixed(0).padStart(5)} ms (${Math.round(n / (best(t.wall) / 1000))} images/s); CPU best ${best(t.cpu).toFixed(0)} ms`,
    );
  };
  console.log(`CPU: ${cpuLine()}; load average (1 min) ${load0.toFixed(2)} at start, ${(loadavg()[0] ?? 0).toFixed(2)} at end, ${availableParallelism()} CPUs`);
  line('ours, default', ours);
  line('ours, worker from the start (workers: 1)', oursWorker);
  line('ours, main thread only (workers: 0)', oursNoWorker);
  if (!pilNote) {
    line('PIL Image.open(p).size loop', pil);
    const ratio = (f: (xs: number[]) => number, key: 'wall' | 'cpu'): string =>
      `default ${(f(pil[key]) / f(ours[key])).toFixed(2)}×, 1 worker ${(f(pil[key]) / f(oursWorker[key])).toFixed(2)}×, main thread only ${(f(pil[key]) / f(oursNoWorker[key])).toFixed(2)}×`;
    console.log(`speed-up vs PIL, wall (best/best):     ${ratio(best, 'wall')}`);
    console.log(`speed-up vs PIL, wall (median/median): ${ratio(median, 'wall')}`);
    console.log(`CPU time ratio (PIL / ours, best):     ${ratio(best, 'cpu')}`);
  } else console.log(pilNote);

  // Memory: peak RSS of fresh processes scanning an empty folder, 10k files, and the full set.
  const empty = resolve(__dirname, '.data', 'empty');
  mkdirSync(empty, { recursive: true });
  const base = childPeakRss(empty);
  const tenK = childPeakRss(await ensureDataset(Math.min(10000, files)));
  const full = childPeakRss(dir);
  console.log(`peak RSS of a fresh process: empty folder ${mib(base.maxRss)}, ${tenK.images} images ${mib(tenK.maxRss)}, ${full.images} images ${mib(full.maxRss)}`);
}

if (require.main === module) {
  const c = process.argv.indexOf('--child');
  (c >= 0 ? child(process.argv[c + 1] as string) : main()).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
