/**
 * Input-pipeline benchmarks on the MNIST sample (samples/mnist/<digit>/*.png, 10,000 28×28 gray):
 *
 *   (b) the fraction of step time the training loop waits for data, with lazy loading (images
 *       decoded from disk while training), for the tutorial CNN at 28×28×1, batch 32, on the best
 *       available backend. Target < 5%.
 *   (c) the wall time of one epoch (8,000 training + 2,000 validation images).
 *
 *   node --import tsx bench/pipeline.ts [--steps 100] [--loading stream|preload] [--backend auto]
 *                                        [--no-epoch] [--dataset samples/mnist]
 *                                        [--prefetch 4] [--concurrency 64]   (pipeline depth, for comparison)
 *
 * The sample is generated first if missing (the `make-sample` command's code). Runs go through the
 * real training loop (src/trainer/train/run.ts) in this process, into a temporary run folder.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { makeSample } from '../src/cli/make-sample';
import { configForFolder, type BackendChoice, type TrainConfig } from '../src/core/config';
import type { BatchEvent, EpochEvent, RunStartEvent, TrainerMessage } from '../src/core/shared/protocol';
import { fallbackPlan } from '../src/core/planning/plan';
import { createRunDir } from '../src/core/run-folder/runs';
import { runTraining } from '../src/trainer/train/run';
import { flag } from './util';
import { backendLocation, buildRunSpec } from '../src/core/planning/run-spec';
import { PROTOCOL_VERSION } from '../src/core/shared/protocol';

interface RunResult {
  start: RunStartEvent;
  batches: BatchEvent[];
  epochs: EpochEvent[];
  wallMs: number;
  firstBatchMs: number;
}

const pipeline = {
  ...(flag('prefetch') ? { prefetchBatches: Number(flag('prefetch')) } : {}),
  ...(flag('concurrency') ? { concurrency: Number(flag('concurrency')) } : {}),
};

async function trainRun(config: TrainConfig, maxSteps: number | undefined, ws: string): Promise<RunResult> {
  const plan = fallbackPlan(config, { train: 0, validation: 0 }, 'benchmark');
  const runDir = createRunDir(ws, config, plan);
  const batches: BatchEvent[] = [];
  const epochs: EpochEvent[] = [];
  let start: RunStartEvent | undefined;
  let failure: string | undefined;
  let firstBatchMs = 0;
  const t0 = performance.now();
  const send = (m: TrainerMessage): void => {
    if (m.type === 'batch') {
      if (batches.length === 0) firstBatchMs = performance.now() - t0;
      batches.push(m);
    } else if (m.type === 'epoch') epochs.push(m);
    else if (m.type === 'run-start') start = m;
    else if (m.type === 'run-end' && m.status !== 'completed') failure = `${m.status}: ${m.message ?? ''}`;
    else if (m.type === 'backend') console.log(`backend: ${m.name}`);
  };
  await runTraining({ v: PROTOCOL_VERSION, type: 'train', id: 1, spec: buildRunSpec(config, plan, { runDir, location: backendLocation(config), ...(maxSteps ? { maxSteps } : {}) }) }, send, new AbortController().signal, { pipeline });
  if (failure || !start) throw new Error(`run did not complete: ${failure ?? 'no run-start'}`);
  return { start, batches, epochs, wallMs: performance.now() - t0, firstBatchMs };
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function pct(p: number, xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
}

async function main(): Promise<void> {
  const dataset = resolve(flag('dataset') ?? 'samples/mnist');
  const loading = (flag('loading') ?? 'stream') as 'stream' | 'preload';
  const backend = (flag('backend') ?? 'auto') as BackendChoice;
  const steps = Number(flag('steps') ?? 100);
  if (!existsSync(join(dataset, '.complete')) && !existsSync(join(dataset, '0'))) {
    console.log(`generating the MNIST sample in ${dataset} …`);
    await makeSample(dataset);
  }
  const ws = mkdtempSync(join(tmpdir(), 'ba-bench-pipeline-'));
  const config = configForFolder(dataset, { name: 'bench', imageSize: [28, 28], channels: 1, model: 'tutorial-cnn', optimizer: 'adam', epochs: 1, loading, backend });
  console.log(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}); dataset ${dataset}; loading ${loading}; pipeline ${JSON.stringify(pipeline)}`);
  try {
    // (b) data wait.
    const b = await trainRun(config, steps, ws);
    const measured = b.batches.slice(1); // the first step includes warm-up and an empty queue
    const wait = sum(measured.map((x) => x.dataWaitMs));
    const step = sum(measured.map((x) => x.stepMs));
    const ips = sum(measured.map(() => 32)) / ((wait + step) / 1000);
    console.log(`\n(b) data wait, tutorial-cnn 28×28×1, batch 32, ${b.start.backend}, ${b.start.plan.loading.strategy}, ${measured.length} steps after the first:`);
    console.log(`    data wait ${((wait / (wait + step)) * 100).toFixed(2)}% of step time (total ${wait.toFixed(0)} ms of ${(wait + step).toFixed(0)} ms; per step median ${pct(0.5, measured.map((x) => x.dataWaitMs)).toFixed(2)} ms, p95 ${pct(0.95, measured.map((x) => x.dataWaitMs)).toFixed(2)} ms)`);
    console.log(`    step median ${pct(0.5, measured.map((x) => x.stepMs)).toFixed(1)} ms; ${ips.toFixed(0)} images/s; first batch after ${(b.firstBatchMs / 1000).toFixed(2)} s`);

    // (c) one epoch.
    if (!process.argv.includes('--no-epoch')) {
      const c = await trainRun(config, undefined, ws);
      const e = c.epochs[0]!;
      const w = sum(c.batches.map((x) => x.dataWaitMs));
      const s = sum(c.batches.map((x) => x.stepMs));
      console.log(`\n(c) one epoch on ${c.start.trainImages} + ${c.start.validationImages} images (${c.batches.length} steps of 32, ${c.start.backend}, ${c.start.plan.loading.strategy}):`);
      console.log(`    epoch ${(e.durationMs / 1000).toFixed(1)} s (training + validation + model save); whole run ${(c.wallMs / 1000).toFixed(1)} s incl. backend, listing, model build`);
      console.log(`    data wait ${((w / (w + s)) * 100).toFixed(2)}% over the epoch; loss ${e.loss.toFixed(4)}, acc ${e.accuracy.toFixed(3)}, val loss ${e.valLoss?.toFixed(4)}, val acc ${e.valAccuracy?.toFixed(3)}`);
    }
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
