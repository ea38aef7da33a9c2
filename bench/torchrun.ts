/**
 * The torchrun engine against our own trainer on the same job (issue 20): `batch-advisor train` on
 * the MNIST sample, tutorial-cnn, one epoch of 8,000 images at a global batch of 32, learning rate
 * 0.002, the same split and initial weights, no probe — our trainer on wasm at batch 32, torchrun
 * with 2 processes (16 per device × 2, Gloo) and with 1 process (batch 32, PyTorch's own CPU
 * kernels). Interleaved (ours, torchrun 2, torchrun 1, ours, …), each a fresh `train` command.
 *
 *   npm run build && node --import tsx bench/torchrun.ts [--repeat 2]
 *
 * Prints per run the epoch's time (the epoch event's durationMs: training, validation and save),
 * the whole command's wall time, the validation accuracy, and the medians with the ratio against
 * ours; with the CPU and the load average (the point of the engine is many GPUs, not 2 cores).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cpuLine, flag, median } from './util';

const CLI = resolve(__dirname, '..', 'dist', 'cli.js');
const SAMPLE = resolve(__dirname, '..', 'samples', 'mnist');

interface Setup {
  name: string;
  batchSize: number;
  args: string[];
}

const SETUPS: Setup[] = [
  { name: 'ours (wasm), batch 32', batchSize: 32, args: [] },
  { name: 'torchrun, 2 processes × 16', batchSize: 16, args: ['--engine', 'torchrun', '--nproc-per-node', '2'] },
  { name: 'torchrun, 1 process × 32', batchSize: 32, args: ['--engine', 'torchrun', '--nproc-per-node', '1'] },
];

interface Measured {
  epochS: number;
  wallS: number;
  valAccuracy: number;
}

function once(ws: string, s: Setup, i: number): Measured {
  const config = join(ws, `run-${i}.train.json`);
  writeFileSync(config, JSON.stringify({ name: `bench-${i}`, dataset: 'mnist', imageSize: [28, 28], channels: 1, validationSplit: 0.2, seed: 1337, model: 'tutorial-cnn', optimizer: 'adam', learningRate: 0.002, warmupSteps: 0, batchSize: s.batchSize, epochs: 1, probe: false }));
  const t0 = performance.now();
  execFileSync(process.execPath, [CLI, 'train', config, ...s.args], { cwd: ws, stdio: ['ignore', 'ignore', 'inherit'] });
  const wallS = (performance.now() - t0) / 1000;
  const runs = join(ws, '.batch-advisor', 'runs');
  const dir = readdirSync(runs).filter((d) => d.endsWith(`bench-${i}`))[0]!;
  const events = readFileSync(join(runs, dir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { type: string; durationMs?: number; valAccuracy?: number });
  const epoch = events.find((e) => e.type === 'epoch');
  if (!epoch) throw new Error(`${s.name}: no epoch in ${dir}`);
  return { epochS: epoch.durationMs! / 1000, wallS, valAccuracy: epoch.valAccuracy ?? NaN };
}

function main(): void {
  const repeat = Number(flag('repeat') ?? '2');
  const ws = mkdtempSync(join(tmpdir(), 'ba-bench-torchrun-'));
  writeFileSync(join(ws, 'package.json'), '{}');
  cpSync(SAMPLE, join(ws, 'mnist'), { recursive: true });
  const torch = execFileSync('/usr/bin/python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim();
  console.log(`CPU: ${cpuLine()}; torch ${torch}; load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const results = new Map<string, Measured[]>(SETUPS.map((s) => [s.name, []]));
  let i = 0;
  try {
    for (let r = 0; r < repeat; r++) {
      for (const s of SETUPS) {
        const m = once(ws, s, i++);
        results.get(s.name)!.push(m);
        console.log(`${s.name}: epoch ${m.epochS.toFixed(1)} s, whole command ${m.wallS.toFixed(1)} s, val acc ${(100 * m.valAccuracy).toFixed(1)}%; load ${loadavg()[0]!.toFixed(2)}`);
      }
    }
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
  const ours = median(results.get(SETUPS[0]!.name)!.map((m) => m.epochS));
  const oursWall = median(results.get(SETUPS[0]!.name)!.map((m) => m.wallS));
  console.log('\n| engine | epoch (median) | vs ours | whole command | val acc |\n|---|---|---|---|---|');
  for (const s of SETUPS) {
    const ms = results.get(s.name)!;
    const e = median(ms.map((m) => m.epochS));
    const w = median(ms.map((m) => m.wallS));
    console.log(`| ${s.name} | ${e.toFixed(1)} s | ${(ours / e).toFixed(2)}× | ${w.toFixed(1)} s (${(oursWall / w).toFixed(2)}×) | ${ms.map((m) => (100 * m.valAccuracy).toFixed(1)).join(', ')}% |`);
  }
  console.log(`\nload average at end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

main();
