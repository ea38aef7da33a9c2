/**
 * Where a training step's time goes, per kernel: runs a few steps of a zoo model on the wasm
 * backend (with our kernels) under tf.profile and prints each kernel's share of the step.
 *
 *   node --import tsx bench/profile-step.ts [mobilenet|cnn64|cnn180] [--batch N] [--steps N]
 */
import { loadavg } from 'node:os';
import { initBackend } from '../src/trainer/backend';
import { runtimeFromEnv, setRuntime } from '../src/trainer/runtime';
import { mobilenetV2, tutorialCnn } from '../src/trainer/models/zoo';
import { tf } from '../src/trainer/tf';
import { flag, cpuLine } from './util';

// A benchmark is an entry point: the trainer's settings from this process's environment (BATCH_ADVISOR_WASM_THREADS, BATCH_ADVISOR_SIMD).
setRuntime(runtimeFromEnv(process.env));

const MODELS: Record<string, { shape: [number, number, number]; build: () => tf.LayersModel; batch: number }> = {
  mobilenet: { shape: [96, 96, 3], build: () => mobilenetV2([96, 96, 3], 10, 1), batch: 16 },
  cnn64: { shape: [64, 64, 3], build: () => tutorialCnn([64, 64, 3], 10), batch: 32 },
  cnn180: { shape: [180, 180, 3], build: () => tutorialCnn([180, 180, 3], 10), batch: 32 },
};

async function main(): Promise<void> {
  const name = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'mobilenet';
  const m = MODELS[name];
  if (!m) throw new Error(`unknown model '${name}'; one of ${Object.keys(MODELS).join(', ')}`);
  const batch = Number(flag('batch') ?? m.batch);
  const steps = Number(flag('steps') ?? '3');
  tf.enableProdMode();
  await initBackend('wasm');
  const model = m.build();
  model.compile({ optimizer: tf.train.adam(1e-3), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
  const x = tf.randomUniform([batch, ...m.shape], 0, 255);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), 'int32'), 10);
  for (let i = 0; i < 3; i++) await model.trainOnBatch(x, y);
  const byKernel = new Map<string, { ms: number; calls: number }>();
  let wall = 0;
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    const info = await tf.profile(async () => {
      await model.trainOnBatch(x, y);
    });
    wall += performance.now() - t0;
    for (const k of info.kernels) {
      const key = `${k.name} ${k.inputShapes.map((sh) => `[${(sh ?? []).join(',')}]`).join('')}`;
      const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
      e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      e.calls += 1;
      byKernel.set(k.name, e);
      if (flag('shapes')) {
        const f = byKernel.get(key) ?? { ms: 0, calls: 0 };
        f.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        f.calls += 1;
        byKernel.set(key, f);
      }
    }
  }
  const rows = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.filter(([k]) => !k.includes(' ')).reduce((a, [, v]) => a + v.ms, 0);
  console.log(`${name} batch ${batch}: step ${(wall / steps).toFixed(1)} ms under the profiler, kernels ${(total / steps).toFixed(1)} ms; CPU: ${cpuLine()}; load average ${loadavg().map((l: number) => l.toFixed(2)).join(' ')}`);
  for (const [k, v] of rows.slice(0, Number(flag('top') ?? '30'))) {
    console.log(`${(v.ms / steps).toFixed(2).padStart(8)} ms ${((100 * v.ms) / total).toFixed(1).padStart(5)}%  ${String(v.calls / steps).padStart(5)}×  ${k}`);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? e.stack : String(e));
    process.exit(1);
  },
);
