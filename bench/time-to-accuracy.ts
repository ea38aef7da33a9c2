/**
 * Wall time to a target validation accuracy — the number a person training a model cares about —
 * for the default plan (the probe included in its time), the memory-only plan ("probe": false),
 * and fixed batches 32, 64, 128, 256 and the largest the plan allows (1,024), each at its
 * rule-scaled learning rate (the planner's rule: square root for Adam from 0.001 at batch 32, with
 * its warmup), and 64 also at the unscaled default rate. Real datasets: the MNIST sample (10,000
 * digits) and Fashion-MNIST (60,000 photos of clothing, Debian's dataset-fashion-mnist), with the
 * zoo's tutorial CNN and Adam. Every run is a real `batch-advisor train` process; runs are
 * interleaved (repeat by repeat) and the load average is printed before each.
 *
 * The target is 98% of the best validation accuracy any run reaches within the same epoch budget;
 * a run's time to it is the wall time from starting its process to the end of the first epoch
 * whose validation accuracy reaches it.
 *
 *   npm run build && node --import tsx bench/time-to-accuracy.ts [--datasets mnist,fashion]
 *       [--repeats 2] [--epochs-mnist 4] [--epochs-fashion 3] [--configs default,b32,...] [--cli dist/cli.js]
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makeSample } from '../src/cli/make-sample';
import type { TrainEvent } from '../src/core/shared/protocol';
import { writeFashionMnist } from './fashion-mnist';
import { flag, median, cpuLine } from './util';

const ROOT = resolve(__dirname, '..');
/** The CLI that trains (--cli: a copy of dist/ keeps a long run on one build while dist/ is rebuilt). */
const CLI = resolve(flag('cli') ?? join(ROOT, 'dist', 'cli.js'));

interface Setting {
  name: string;
  label: string;
  body: Record<string, unknown>;
  /** Run `suggest` on the same inputs first (untimed): the run's planning finds the probe cache. */
  warmCache?: boolean;
}

const SETTINGS: Setting[] = [
  { name: 'default', label: 'default plan (probe, auto)', body: { batchSize: 'auto' } },
  { name: 'default-cached', label: 'default plan, probe cached (a second Train)', body: { batchSize: 'auto' }, warmCache: true },
  { name: 'growth', label: 'default plan + batchGrowth', body: { batchSize: 'auto', batchGrowth: true } },
  { name: 'memory', label: 'memory-only plan (probe off)', body: { batchSize: 'auto', probe: false } },
  { name: 'b32', label: 'batch 32, lr 0.001', body: { batchSize: 32 } },
  { name: 'b64-default-lr', label: 'batch 64, lr 0.001 (unscaled)', body: { batchSize: 64, learningRate: 0.001 } },
  { name: 'b64', label: 'batch 64, scaled lr', body: { batchSize: 64 } },
  { name: 'b128', label: 'batch 128, scaled lr', body: { batchSize: 128 } },
  { name: 'b256', label: 'batch 256, scaled lr', body: { batchSize: 256 } },
  { name: 'b1024', label: 'batch 1,024 (largest allowed), scaled lr', body: { batchSize: 1024 } },
];

interface Dataset {
  name: string;
  folder: string;
  epochs: number;
  validationSplit: number;
}

interface RunResult {
  dataset: string;
  setting: string;
  repeat: number;
  loadBefore: number;
  batch: string;
  learningRate: number;
  warmupSteps: number;
  /** Seconds from the process start to the end of each epoch (validation and save included), and its validation accuracy. */
  epochs: { epoch: number; t: number; valAccuracy: number }[];
  totalSec: number;
  probeSec?: number;
  error?: string;
}

function runCli(args: string[]): Promise<void> {
  return new Promise((done) => spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' }).on('close', () => done()));
}

function runTrain(configPath: string): Promise<{ events: TrainEvent[]; t0: number; t1: number; stderr: string; code: number | null }> {
  return new Promise((done) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [CLI, 'train', configPath, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      const events = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as TrainEvent);
      done({ events, t0, t1: Date.now(), stderr: err, code });
    });
  });
}

async function one(ds: Dataset, s: Setting, repeat: number, work: string): Promise<RunResult> {
  const ws = join(work, `${ds.name}-${s.name}-${repeat}`);
  mkdirSync(ws, { recursive: true });
  writeFileSync(join(ws, 'package.json'), '{}'); // the workspace root: runs and the probe cache go here, fresh for every run
  const configPath = join(ws, `${s.name}.train.json`);
  writeFileSync(configPath, JSON.stringify({ name: s.name, dataset: ds.folder, imageSize: [28, 28], channels: 1, validationSplit: ds.validationSplit, seed: 1337, model: 'tutorial-cnn', optimizer: 'adam', backend: 'wasm', epochs: ds.epochs, ...s.body }));
  if (s.warmCache) await runCli(['suggest', configPath]);
  const loadBefore = loadavg()[0]!;
  const r = await runTrain(configPath);
  const start = r.events.find((e) => e.type === 'run-start');
  const epochs = r.events.flatMap((e) => (e.type === 'epoch' && e.valAccuracy !== null ? [{ epoch: e.epoch, t: (Date.parse(e.time) - r.t0) / 1000, valAccuracy: e.valAccuracy }] : []));
  const plan = start?.type === 'run-start' ? start.plan : undefined;
  const result: RunResult = {
    dataset: ds.name,
    setting: s.name,
    repeat,
    loadBefore,
    batch: plan ? `${plan.microBatchSize}${plan.accumulationSteps > 1 ? `×${plan.accumulationSteps}` : ''}` : '?',
    learningRate: plan?.learningRate.value ?? NaN,
    warmupSteps: plan?.warmup.steps ?? 0,
    epochs,
    totalSec: (r.t1 - r.t0) / 1000,
    ...(start ? { probeSec: (Date.parse(start.time) - r.t0) / 1000 } : {}),
    ...(r.code !== 0 ? { error: r.stderr.trim().split('\n').at(-1) ?? `exit ${r.code}` } : {}),
  };
  rmSync(ws, { recursive: true, force: true });
  return result;
}

function timeTo(r: RunResult, target: number): number {
  return r.epochs.find((e) => e.valAccuracy >= target)?.t ?? Infinity;
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(1) : 'not reached';
}

async function main(): Promise<void> {
  const names = (flag('datasets') ?? 'mnist,fashion').split(',');
  const repeats = Number(flag('repeats') ?? 2);
  const only = flag('configs')?.split(',');
  const settings = only ? SETTINGS.filter((s) => only.includes(s.name)) : SETTINGS;
  const datasets: Dataset[] = [];
  if (names.includes('mnist')) {
    const folder = resolve(ROOT, 'samples/mnist');
    await makeSample(folder);
    datasets.push({ name: 'mnist', folder, epochs: Number(flag('epochs-mnist') ?? 4), validationSplit: 0.2 });
  }
  if (names.includes('fashion')) {
    const folder = resolve(ROOT, 'bench/.data/fashion-mnist');
    await writeFashionMnist(folder);
    datasets.push({ name: 'fashion', folder, epochs: Number(flag('epochs-fashion') ?? 3), validationSplit: 0.1 });
  }
  console.log(`CPU: ${cpuLine()}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const work = mkdtempSync(join(tmpdir(), 'ba-tta-'));
  const results: RunResult[] = [];
  try {
    for (let rep = 1; rep <= repeats; rep++) {
      for (const ds of datasets) {
        for (const s of settings) {
          const r = await one(ds, s, rep, work);
          results.push(r);
          const accs = r.epochs.map((e) => `${e.valAccuracy.toFixed(4)}@${e.t.toFixed(0)}s`).join(' ');
          console.log(`[${ds.name} r${rep}] ${s.name.padEnd(15)} load ${r.loadBefore.toFixed(2)}  batch ${r.batch.padEnd(6)} lr ${r.learningRate.toPrecision(3)} warmup ${r.warmupSteps}  ${accs}  total ${r.totalSec.toFixed(0)} s${r.error ? `  ERROR ${r.error}` : ''}`);
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const summary: Record<string, unknown> = {};
  for (const ds of datasets) {
    const mine = results.filter((r) => r.dataset === ds.name);
    const best = Math.max(...mine.flatMap((r) => r.epochs.map((e) => e.valAccuracy)));
    const target = 0.98 * best;
    console.log(`\n### ${ds.name}: ${ds.epochs} epochs; target ${target.toFixed(4)} (98% of the best, ${best.toFixed(4)})\n`);
    console.log('| plan | batch | lr | warmup | best val acc | time to target (s), each repeat | median | vs fastest fixed |');
    console.log('|---|---|---|---|---|---|---|---|');
    const med = new Map<string, number>();
    for (const s of settings) {
      const rs = mine.filter((r) => r.setting === s.name);
      const ts = rs.map((r) => timeTo(r, target));
      med.set(s.name, ts.some((t) => !Number.isFinite(t)) ? Infinity : median(ts));
    }
    const fixed = settings.filter((s) => s.name.startsWith('b')).map((s) => med.get(s.name)!);
    const fastestFixed = Math.min(...fixed);
    for (const s of settings) {
      const rs = mine.filter((r) => r.setting === s.name);
      const m = med.get(s.name)!;
      const bestAcc = Math.max(...rs.flatMap((r) => r.epochs.map((e) => e.valAccuracy)));
      console.log(`| ${s.label} | ${[...new Set(rs.map((r) => r.batch))].join(', ')} | ${[...new Set(rs.map((r) => r.learningRate.toPrecision(3)))].join(', ')} | ${[...new Set(rs.map((r) => r.warmupSteps))].join(', ')} | ${bestAcc.toFixed(4)} | ${rs.map((r) => fmt(timeTo(r, target))).join(' / ')} | ${fmt(m)} | ${Number.isFinite(m) && Number.isFinite(fastestFixed) ? `${(m / fastestFixed).toFixed(2)}×` : '—'} |`);
    }
    summary[ds.name] = { target, best, medians: Object.fromEntries(med), fastestFixed };
  }
  const outDir = resolve(ROOT, 'bench/.data');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'time-to-accuracy.json'), JSON.stringify({ cpu: cpus()[0]?.model, results, summary }, null, 2));
  console.log(`\nload average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}; results in bench/.data/time-to-accuracy.json`);
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
