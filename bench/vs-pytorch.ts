/**
 * Training on the CPU, ours (wasm backend + src/trainer/kernels, threaded) vs PyTorch (Debian's
 * python3-torch + python3-torchvision), row by row, interleaved (ours, PyTorch, ours, …) so both
 * see the same machine load. Each measurement runs in its own process: bench/vs-pytorch-ours.ts
 * and bench/vs_pytorch.py.
 *
 *   flock /tmp/bench.lock node --import tsx bench/vs-pytorch.ts [--rows cnn-64-32,pipeline] [--repeat 1]
 *                                         [--steps 10] [--seconds 20] [--no-install]
 *
 * Rows: tutorial-CNN training steps (64×64×3 batch 32 and 128, 180×180×3 batch 32, Adam),
 * MobileNetV2 α=1 96×96×3 batch 16 (also its peak RSS), one epoch on the MNIST sample (8,000 +
 * 2,000 images, batch 32, validation and save: ours is the whole run's wall time), and the data
 * pipeline alone (sample PNGs → 64×64×3 float batches of 32). PyTorch uses as many threads (and
 * DataLoader workers) as there are cores, and once more with 1 thread (columns "PyTorch 1
 * thread"; --no-single leaves them out). The header names the CPU and its vector extensions and
 * PyTorch's CPU capability (figures differ between CPU classes: issue 22). PyTorch is installed
 * with apt-get when missing and this runs as root; otherwise its column is skipped with a message.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { makeSample } from '../src/cli/make-sample';
import { flag, cpuLine } from './util';

const PYTHON = '/usr/bin/python3';
const ALL_ROWS = ['cnn-64-32', 'cnn-64-128', 'cnn-180-32', 'mobilenet-96-16', 'mnist-epoch', 'pipeline'];
const LABEL: Record<string, string> = {
  'cnn-64-32': 'tutorial CNN step 64×64×3 batch 32 (img/s)',
  'cnn-64-128': 'tutorial CNN step 64×64×3 batch 128 (img/s)',
  'cnn-180-32': 'tutorial CNN step 180×180×3 batch 32 (img/s)',
  'mobilenet-96-16': 'MobileNetV2 α=1 step 96×96×3 batch 16 (img/s)',
  'mnist-epoch': 'MNIST-sample epoch 8,000+2,000, batch 32 (s)',
  pipeline: 'data pipeline PNG → 64×64×3 batches (img/s)',
};

interface Result {
  value: number;
  unit: string;
  detail: string;
  peakRssMiB: number;
  threads: number;
}

function torchAvailable(): boolean {
  return spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
}

/** PyTorch from Debian, installed when missing (needs root and apt-get); a reason when unavailable. */
function ensureTorch(): string | undefined {
  if (existsSync(PYTHON) && torchAvailable()) return undefined;
  if (process.argv.includes('--no-install')) return 'PyTorch not installed (--no-install)';
  if (process.getuid?.() !== 0 || spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) {
    return 'PyTorch not installed, and apt-get install python3-torch python3-torchvision needs root on Debian/Ubuntu';
  }
  console.log('installing python3-torch python3-torchvision with apt-get …');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', 'python3-torch', 'python3-torchvision'], { stdio: 'inherit', env });
  if (r.status !== 0 || !torchAvailable()) return 'apt-get could not install python3-torch python3-torchvision';
  return undefined;
}

/** PyTorch's version and the vector code its kernels use ("1.13.0, CPU capability usage: AVX2, oneDNN v2.6.3"). */
function torchCapability(): string {
  const r = spawnSync(PYTHON, ['-c', "import torch; c = torch.__config__.show().splitlines(); print(torch.__version__ + ', ' + ', '.join(l.strip(' -') for l in c if 'CPU capability' in l or 'MKL-DNN' in l or 'oneDNN' in l))"], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'version unknown';
}

function runJson(cmd: string, args: string[]): Result | string {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 24 });
    const line = out.trim().split('\n').pop() ?? '';
    return JSON.parse(line) as Result;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return `failed: ${(err.stderr ?? err.message).trim().split('\n').pop()}`;
  }
}

const fmt = (r: Result | string | undefined): string => (r === undefined ? 'skipped' : typeof r === 'string' ? r : r.value.toFixed(r.unit === 's' ? 1 : 1));

/** Ours ÷ PyTorch as a speed ratio (>1: we are faster), for rates and for times alike. */
function ratio(ours: Result | string | undefined, torch: Result | string | undefined): string {
  if (typeof ours !== 'object' || typeof torch !== 'object') return '–';
  const r = ours.unit === 's' ? torch.value / ours.value : ours.value / torch.value;
  return `${r.toFixed(2)}×`;
}

const best = (rs: Result[], unit: string): Result | undefined =>
  rs.length ? rs.reduce((a, b) => ((unit === 's' ? b.value < a.value : b.value > a.value) ? b : a)) : undefined;

async function main(): Promise<void> {
  const rows = (flag('rows') ?? ALL_ROWS.join(',')).split(',');
  for (const r of rows) if (!ALL_ROWS.includes(r)) throw new Error(`--rows: unknown row '${r}'; rows are ${ALL_ROWS.join(', ')}`);
  const repeat = Number(flag('repeat') ?? 1);
  const dataset = resolve(flag('dataset') ?? 'samples/mnist');
  const pass = ['--steps', flag('steps') ?? '10', '--seconds', flag('seconds') ?? '20', '--dataset', dataset];
  if (rows.some((r) => r === 'mnist-epoch' || r === 'pipeline')) await makeSample(dataset);
  const noTorch = ensureTorch();
  if (noTorch) console.log(`PyTorch column skipped: ${noTorch}`);
  const threads = String(cpus().length);
  console.log(`node ${process.version}; CPU: ${cpuLine()}; load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  // PyTorch with one thread as well (issue 22): where its oneDNN kernels, not its threading, make the difference.
  const single = !noTorch && threads !== '1' && !process.argv.includes('--no-single');
  if (!noTorch) console.log(`PyTorch: ${torchCapability()}`);
  const table: string[][] = [['row', 'ours', 'PyTorch', 'ours/PyTorch speed', ...(single ? ['PyTorch 1 thread', 'ours/PyTorch-1'] : []), 'load avg (1 min)']];
  let mobile: { ours?: Result; torch?: Result } = {};
  for (const row of rows) {
    const ours: Result[] = [];
    const torch: Result[] = [];
    const torch1: Result[] = [];
    let torch1Err: string | undefined;
    let oursErr: string | undefined;
    let torchErr: string | undefined;
    const loads: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const o = runJson(process.execPath, ['--import', 'tsx', join(__dirname, 'vs-pytorch-ours.ts'), row, ...pass]);
      if (typeof o === 'string') oursErr = o;
      else ours.push(o);
      loads.push(loadavg()[0]!);
      if (!noTorch) {
        const t = runJson(PYTHON, [join(__dirname, 'vs_pytorch.py'), row, '--threads', threads, ...pass]);
        if (typeof t === 'string') torchErr = t;
        else torch.push(t);
        loads.push(loadavg()[0]!);
      }
      if (single && row !== 'pipeline') {
        const t1 = runJson(PYTHON, [join(__dirname, 'vs_pytorch.py'), row, '--threads', '1', ...pass]);
        if (typeof t1 === 'string') torch1Err = t1;
        else torch1.push(t1);
        loads.push(loadavg()[0]!);
      }
    }
    const unit = ours[0]?.unit ?? torch[0]?.unit ?? '';
    const o = best(ours, unit) ?? oursErr;
    const t = noTorch ? undefined : (best(torch, unit) ?? torchErr);
    if (row === 'mobilenet-96-16') mobile = { ...(typeof o === 'object' ? { ours: o } : {}), ...(typeof t === 'object' ? { torch: t } : {}) };
    const t1 = single && row !== 'pipeline' ? (best(torch1, unit) ?? torch1Err) : undefined;
    table.push([LABEL[row]!, fmt(o), fmt(t), ratio(o, t), ...(single ? [fmt(t1), ratio(o, t1)] : []), (loads.reduce((a, b) => a + b, 0) / loads.length).toFixed(2)]);
    console.log(`${row}: ours ${typeof o === 'object' ? `${o.detail} (${o.threads} threads, peak RSS ${o.peakRssMiB.toFixed(0)} MiB)` : fmt(o)} | PyTorch ${typeof t === 'object' ? `${t.detail} (${t.threads} threads)` : fmt(t)}`);
    // Every repeat, in run order: the best of each side goes in the table, the spread shows here.
    if (repeat > 1) console.log(`  all runs (${unit}): ours ${ours.map((r) => fmt(r)).join(' / ')} | PyTorch ${torch.map((r) => fmt(r)).join(' / ')}`);
  }
  if (mobile.ours || mobile.torch) {
    const m = (r?: Result): string => (r ? r.peakRssMiB.toFixed(0) : '–');
    const rr = mobile.ours && mobile.torch ? `${(mobile.ours.peakRssMiB / mobile.torch.peakRssMiB).toFixed(2)}× (ours/PyTorch)` : '–';
    table.push(['peak RSS, MobileNetV2 step (MiB)', m(mobile.ours), m(mobile.torch), rr, ...(single ? ['', ''] : []), '']);
  }
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  console.log('');
  for (const r of table) console.log(`| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`);
  console.log(`\nload average at end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exitCode = 1;
});
