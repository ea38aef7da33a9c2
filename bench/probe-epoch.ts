/**
 * "A full epoch at the recommended plan never runs out of memory": for the models × budgets of
 * bench/probe.ts, the real `suggest --probe --device-memory` (trials in fresh trainer processes)
 * recommends a plan, then the real trainer trains one full epoch with it (validation and model
 * save included) on a small synthetic dataset, the budget enforced as the probe enforces it for a
 * device given by size: a live-tensor peak above it is out of memory (the RunSpec's test.memoryLimitBytes).
 *
 *   flock /tmp/bench.lock node --import tsx bench/probe-epoch.ts     # all, ~5–10 min on 2 cores
 *   node --import tsx bench/probe-epoch.ts --only vgg-small
 *
 * The budget of each row is the one bench/probe.ts uses (between the peaks of two batch sizes,
 * measured here in-process), so a plan at the true maximum would be one image from failing.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { configForFolder, type TrainConfig } from '../src/core/config';
import { FIXED_OVERHEAD, GPU_RUNTIME_OVERHEAD } from '../src/core/planning/memory';
import { formatBytes } from '../src/core/shared/format';
import { suggest } from '../src/core/process/suggest';
import { TrainFlow } from '../src/core/process/train-flow';
import { initBackend } from '../src/trainer/backend';
import { fileSaveHandler } from '../src/trainer/model-io';
import { trackBuffers } from '../src/trainer/probe/peak';
import { makeTinyDataset } from '../test/helpers/tiny-dataset';
import { CASES, CLASSES, Oracle, SHAPE, type Case } from './probe-models';
import { cpuLine } from './util';

const TRAINER = resolve(__dirname, '../src/trainer/main.ts');
const GIB = 2 ** 30;
// 4,000 images, 3,200 for training: enough that the batch is not capped by the dataset (at most 64 keeps
// 50 steps an epoch) below the memory maximum of most rows.
const PER_CLASS = 400;

/** The model as the config names it: a zoo name, or a model.json saved from the case's builder. */
async function modelSpec(c: Case, dir: string): Promise<Partial<Pick<TrainConfig, 'model' | 'widthMultiplier'>>> {
  if (c.name === 'mobilenet-v2-0.35') return { model: 'mobilenet-v2', widthMultiplier: 0.35 };
  if (c.name === 'tutorial-cnn' || c.name === 'resnet-small') return { model: c.name };
  const folder = join(dir, c.name);
  mkdirSync(folder, { recursive: true });
  const model = await c.build();
  await model.save(fileSaveHandler(folder));
  model.dispose();
  return { model: join(folder, 'model.json') };
}

/** Budgets between the peaks at `target` and `target + 1` (as bench/probe.ts), measured in this process. */
async function budgets(c: Case): Promise<number[]> {
  const tracker = trackBuffers();
  if (!tracker) throw new Error('the backend cannot be tracked');
  const oracle = await Oracle.create(c, tracker);
  const out: number[] = [];
  for (const t of c.targets) out.push(((await oracle.peak(t)) + (await oracle.peak(t + 1))) / 2);
  oracle.dispose();
  tracker.restore();
  return out;
}

interface Row {
  name: string;
  limit: number;
  plan: string;
  trials: number;
  status: string;
  peak?: number;
}

async function runCase(c: Case, limit: number, dataset: string, dir: string): Promise<Row> {
  const base = configForFolder(dataset, { name: c.name, imageSize: [SHAPE[0], SHAPE[1]], channels: 3, epochs: 1, optimizer: c.optimizer, backend: 'wasm', validationSplit: 0.2, probe: true });
  const config: TrainConfig = { ...base, ...(await modelSpec(c, dir)) };
  // A device given by size whose trial limit (free − CUDA runtime − overhead) is the budget.
  const deviceMemoryGiB = (limit + GPU_RUNTIME_OVERHEAD + FIXED_OVERHEAD) / GIB;
  const report = await suggest({ config }, { trainerScript: TRAINER, deviceMemoryGiB, probe: true });
  const p = report.plan;
  const plan = `${p.microBatchSize}${p.accumulationSteps > 1 ? `×${p.accumulationSteps}` : ''} (${p.sources.batchSize})`;
  const trials = report.probe?.processes ?? 0;
  let peak: number | undefined;
  const flow = new TrainFlow({
    config,
    trainerScript: TRAINER,
    workspaceRoot: join(dir, 'ws'),
    test: { memoryLimitBytes: Math.floor(limit) },
    makePlan: async () => p,
    onLog: (_level, line) => {
      const m = /tensors peaked at (\d+) bytes/.exec(line);
      if (m) peak = Number(m[1]);
    },
  });
  const r = await flow.run();
  const status = r.end.status === 'completed' ? 'completed' : `${r.end.status}${r.end.error ? ` (${r.end.error})` : ''}: ${r.end.message ?? ''}`;
  return { name: c.name, limit, plan, trials, status, ...(peak !== undefined ? { peak } : {}) };
}

async function main(): Promise<void> {
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
  console.log(`bench/probe-epoch.ts — wasm, CPU: ${cpuLine()}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'ba-probe-epoch-'));
  try {
    const { root } = await makeTinyDataset(join(dir, 'ds'), { classes: CLASSES, perClass: PER_CLASS, size: SHAPE[0], channels: 3 });
    await initBackend('wasm');
    console.log(`dataset: ${CLASSES * PER_CLASS} synthetic ${SHAPE[0]}×${SHAPE[1]} PNGs, 20% validation; one epoch each`);
    console.log('model               budget    plan           probe | epoch at the plan          peak');
    const rows: Row[] = [];
    for (const c of CASES.filter((x) => !only || x.name === only)) {
      for (const limit of await budgets(c)) {
        const row = await runCase(c, limit, root, dir);
        rows.push(row);
        console.log(`${row.name.padEnd(19)} ${formatBytes(row.limit).padStart(9)} ${row.plan.padEnd(14)} ${String(row.trials).padStart(5)} | ${row.status.slice(0, 120).padEnd(26)} ${row.peak !== undefined ? formatBytes(row.peak) : '–'}`);
      }
    }
    const failed = rows.filter((r) => r.status !== 'completed').length;
    console.log(`\nfull epochs at the recommended plan that failed: ${failed}/${rows.length}`);
    console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    if (failed > 0) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
