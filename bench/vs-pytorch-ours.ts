/**
 * Our side of bench/vs-pytorch.ts: one measurement per process (so peak RSS is this row's),
 * printed as one JSON line. The rows mirror bench/vs_pytorch.py.
 *
 *   node --import tsx bench/vs-pytorch-ours.ts ROW [--steps N] [--seconds S] [--dataset DIR]
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { configForFolder } from '../src/core/config';
import { fallbackPlan } from '../src/core/planning/plan';
import type { EpochEvent, TrainerMessage } from '../src/core/shared/protocol';
import { createRunDir } from '../src/core/run-folder/runs';
import { initBackend } from '../src/trainer/backend';
import { runtimeFromEnv, setRuntime } from '../src/trainer/runtime';
import { ImagePipeline, type LabeledFile } from '../src/trainer/data/pipeline';
import { mobilenetV2, tutorialCnn } from '../src/trainer/models/zoo';
import { tf } from '../src/trainer/tf';
import { runTraining } from '../src/trainer/train/run';
import { flag, median } from './util';
import { backendLocation, buildRunSpec } from '../src/core/planning/run-spec';
import { PROTOCOL_VERSION } from '../src/core/shared/protocol';

// A benchmark is an entry point: the trainer's settings from this process's environment (BATCH_ADVISOR_WASM_THREADS, BATCH_ADVISOR_SIMD).
setRuntime(runtimeFromEnv(process.env));

export interface RowResult {
  value: number;
  unit: string;
  detail: string;
  peakRssMiB: number;
  threads: number;
}

/** Images/s of training steps (median step after 3 warm-up steps). */
async function stepRow(model: tf.LayersModel, shape: [number, number, number], batch: number): Promise<Omit<RowResult, 'peakRssMiB' | 'threads'>> {
  const steps = Number(flag('steps') ?? '10');
  const seconds = Number(flag('seconds') ?? '20');
  model.compile({ optimizer: tf.train.adam(1e-3), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
  const x = tf.randomUniform([batch, ...shape], 0, 255);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), 'int32'), 10);
  for (let i = 0; i < 3; i++) await model.trainOnBatch(x, y);
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < steps && performance.now() - start < seconds * 1000; i++) {
    const t0 = performance.now();
    await model.trainOnBatch(x, y); // returns the loss value: a sync point
    times.push(performance.now() - t0);
  }
  const med = median(times);
  return { value: (batch * 1000) / med, unit: 'img/s', detail: `median step ${med.toFixed(1)} ms of ${times.length}` };
}

function listFiles(dataset: string): LabeledFile[] {
  const classes = readdirSync(dataset).filter((d) => statSync(join(dataset, d)).isDirectory()).sort();
  return classes.flatMap((c, label) => readdirSync(join(dataset, c)).sort().map((f) => ({ path: join(dataset, c, f), label })));
}

/** sample PNGs → 64×64×3 float batches of 32, one shuffled pass, streamed from disk. */
async function pipelineRow(dataset: string): Promise<Omit<RowResult, 'peakRssMiB' | 'threads'>> {
  const files = listFiles(dataset);
  const t0 = performance.now();
  const p = await ImagePipeline.create(files, { imageSize: [64, 64], channels: 3, batchSize: 32, seed: 1, loading: 'stream' });
  let n = 0;
  for await (const b of p.epoch(1)) n += b.size;
  const s = (performance.now() - t0) / 1000;
  return { value: n / s, unit: 'img/s', detail: `${n} images in ${s.toFixed(2)} s` };
}

/** One epoch of the tutorial CNN through the real training loop, streamed from disk as PyTorch's DataLoader does; the value is the whole run's wall time. */
async function mnistEpochRow(dataset: string): Promise<Omit<RowResult, 'peakRssMiB' | 'threads'>> {
  const ws = mkdtempSync(join(tmpdir(), 'ba-vs-pytorch-'));
  try {
    const config = configForFolder(dataset, { name: 'bench', imageSize: [28, 28], channels: 1, model: 'tutorial-cnn', optimizer: 'adam', learningRate: 1e-3, batchSize: 32, epochs: 1, loading: 'stream', backend: 'wasm' });
    const plan = fallbackPlan(config, { train: 0, validation: 0 }, 'benchmark');
    const runDir = createRunDir(ws, config, plan);
    let epoch: EpochEvent | undefined;
    let failure: string | undefined;
    const send = (m: TrainerMessage): void => {
      if (m.type === 'epoch') epoch = m;
      else if (m.type === 'run-end' && m.status !== 'completed') failure = `${m.status}: ${m.message ?? ''}`;
    };
    const t0 = performance.now();
    await runTraining({ v: PROTOCOL_VERSION, type: 'train', id: 1, spec: buildRunSpec(config, plan, { runDir, location: backendLocation(config) }) }, send, new AbortController().signal);
    const s = (performance.now() - t0) / 1000;
    if (failure || !epoch) throw new Error(`run did not complete: ${failure ?? 'no epoch'}`);
    return { value: s, unit: 's', detail: `whole run (backend start, listing, decoding, epoch ${(epoch.durationMs / 1000).toFixed(1)} s incl. validation and save); val acc ${epoch.valAccuracy?.toFixed(3)}` };
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

const ROWS: Record<string, (dataset: string) => Promise<Omit<RowResult, 'peakRssMiB' | 'threads'>>> = {
  'cnn-64-32': () => stepRow(tutorialCnn([64, 64, 3], 10), [64, 64, 3], 32),
  'cnn-64-128': () => stepRow(tutorialCnn([64, 64, 3], 10), [64, 64, 3], 128),
  'cnn-180-32': () => stepRow(tutorialCnn([180, 180, 3], 10), [180, 180, 3], 32),
  'mobilenet-96-16': () => stepRow(mobilenetV2([96, 96, 3], 10, 1), [96, 96, 3], 16),
  'mnist-epoch': mnistEpochRow,
  pipeline: pipelineRow,
};

async function main(): Promise<void> {
  const row = process.argv[2] ?? '';
  const run = ROWS[row];
  if (!run) throw new Error(`unknown row '${row}'; one of ${Object.keys(ROWS).join(', ')}`);
  tf.enableProdMode();
  if (row !== 'pipeline' && row !== 'mnist-epoch') await initBackend('wasm');
  const out = await run(resolve(flag('dataset') ?? 'samples/mnist'));
  const threads = row === 'pipeline' ? 0 : wasm.getThreadsCount();
  const result: RowResult = { ...out, peakRssMiB: process.resourceUsage().maxRSS / 1024, threads };
  console.log(JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);
