/**
 * Training-step benchmark: the Keras-tutorial CNN (src/trainer/models/zoo.ts) at 64×64×3,
 * batch 32, 10 classes, random data, Adam, softmax cross-entropy on logits.
 *
 *   node --import tsx bench/train-step.ts [--steps 10] [--stock-steps 1] [--stock-seconds 90]
 *                                          [--no-stock] [--profile]
 *
 * Measures, after warm-up (wasm steps and forward passes alternate, so both see the same load):
 *   (a) a full training step (forward + backward + Adam update, model.trainOnBatch) on our wasm
 *       path (tfjs-backend-wasm + src/trainer/kernels),
 *   (b) the same step on the stock `@tensorflow/tfjs` cpu backend — in a child process
 *       (bench/train-step-stock.ts): the umbrella package registers its own backends and kernels,
 *       which must not mix with ours. The child gets the exact model topology as JSON. One warm-up
 *       step, then few steps and a time bound: at this size one stock step takes 1.5–2.5 minutes
 *       (its conv filter gradients are plain JS loops), so the whole run takes ~5 minutes,
 *   (c) the forward pass (model.predict) on wasm.
 * --profile prints where a wasm training step spends its time, per kernel.
 *
 * Measured here (2 cores shared with other jobs, so medians move with the load): wasm step
 * 137–180 ms (180–230 images/s), forward 35–41 ms, step/forward 3.7–4.4×; stock cpu step 70–138 s
 * (0.2–0.5 images/s) → wasm/stock 290–770× in the same run.
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { tf } from '../src/trainer/tf';
import { initBackend } from '../src/trainer/backend';
import { runtimeFromEnv, setRuntime } from '../src/trainer/runtime';
import { tutorialCnn } from '../src/trainer/models/zoo';
import { arg, batch, BATCH, CLASSES, compile, median, SHAPE, timeForward, timeSteps, type ModelLike, type StockResult, type TfLike } from './train-step-common';

// A benchmark is an entry point: the trainer's settings from this process's environment (BATCH_ADVISOR_WASM_THREADS, BATCH_ADVISOR_SIMD).
setRuntime(runtimeFromEnv(process.env));

async function runStock(topology: object, steps: number, seconds: number): Promise<StockResult> {
  const child = fork(join(__dirname, 'train-step-stock.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  child.send({ topology, steps, seconds });
  return new Promise((res, rej) => {
    child.once('message', (m) => {
      res(m as StockResult);
      child.kill();
    });
    child.once('exit', (code) => rej(new Error(`stock-cpu child exited with ${code}`)));
  });
}

async function profileStep(model: ModelLike, x: unknown, y: unknown): Promise<void> {
  const p = await tf.profile(async () => {
    await model.trainOnBatch(x, y);
  });
  const byName = new Map<string, { ms: number; n: number }>();
  for (const k of p.kernels) {
    const e = byName.get(k.name) ?? { ms: 0, n: 0 };
    e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    e.n++;
    byName.set(k.name, e);
  }
  const total = [...byName.values()].reduce((a, b) => a + b.ms, 0);
  console.log(`\nprofile of one wasm training step (sum of kernel times ${total.toFixed(1)} ms):`);
  for (const [name, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) {
    console.log(`  ${name.padEnd(36)} ${e.ms.toFixed(1).padStart(8)} ms  ×${e.n}`);
  }
}

async function main(): Promise<void> {
  const steps = arg('steps', 10);
  const stockSteps = arg('stock-steps', 1);
  const stockSeconds = arg('stock-seconds', 90);
  const backend = await initBackend('wasm');
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  console.log(`tutorial CNN ${SHAPE.join('×')}, batch ${BATCH}, ${CLASSES} classes, Adam — backend ${backend.name} (SIMD ${simd}, ${getThreadsCount()} XNNPACK threads; BATCH_ADVISOR_WASM_THREADS=1 for one)`);

  const model = tutorialCnn(SHAPE, CLASSES) as unknown as ModelLike & { toJSON(a: null, b: boolean): object };
  compile(tf as unknown as TfLike, model);
  const { x, y } = batch(tf as unknown as TfLike);

  // Steps and forward passes alternate, so both see the same machine load (2 shared cores).
  await timeSteps(model, x, y, 3, 0);
  await timeForward(model, x, 3, 0);
  const stepTimes: number[] = [];
  const fwdTimes: number[] = [];
  const tensorsBefore = tf.memory().numTensors;
  for (let i = 0; i < steps; i++) {
    stepTimes.push(...(await timeSteps(model, x, y, 0, 1)));
    fwdTimes.push(...(await timeForward(model, x, 0, 1)));
  }
  const leaked = (tf.memory().numTensors - tensorsBefore) / steps;
  const stepMs = median(stepTimes);
  const fwdMs = median(fwdTimes);
  const best = (xs: number[]): string => Math.min(...xs).toFixed(1);
  console.log(`wasm   training step  ${stepMs.toFixed(1).padStart(9)} ms   ${((BATCH * 1000) / stepMs).toFixed(1).padStart(8)} images/s   (median of ${steps}, best ${best(stepTimes)} ms; leaked tensors/step: ${leaked})`);
  console.log(`wasm   forward pass   ${fwdMs.toFixed(1).padStart(9)} ms   ${((BATCH * 1000) / fwdMs).toFixed(1).padStart(8)} images/s   (median of ${steps}, best ${best(fwdTimes)} ms)`);
  console.log(`wasm   step / forward ${(stepMs / fwdMs).toFixed(2).padStart(9)}×   (medians; ${(Math.min(...stepTimes) / Math.min(...fwdTimes)).toFixed(2)}× on best times)`);
  if (process.argv.includes('--profile')) await profileStep(model, x, y);

  if (!process.argv.includes('--no-stock')) {
    const topology = model.toJSON(null, false);
    const stock = await runStock(topology, stockSteps, stockSeconds);
    const stockMs = median(stock.stepMs);
    console.log(`stock  training step  ${stockMs.toFixed(1).padStart(9)} ms   ${((BATCH * 1000) / stockMs).toFixed(1).padStart(8)} images/s   (@tensorflow/tfjs cpu backend, ${stock.stepMs.length} step(s) after a ${(stock.warmupMs / 1000).toFixed(1)} s warm-up)`);
    console.log(`ratio  wasm / stock-cpu throughput ${(stockMs / stepMs).toFixed(1)}×`);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
