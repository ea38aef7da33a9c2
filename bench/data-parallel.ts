/**
 * Data-parallel training across worker threads vs the threaded wasm build (issue 11, item 1:
 * "measure both, keep the faster"). Each configuration runs in its own process, interleaved:
 *
 *   threads-1   one process, single-threaded wasm build, whole batch           (1 core)
 *   threads-2   one process, threaded wasm build, 2 XNNPACK threads             (2 cores; what ships)
 *   workers-2   2 worker threads, each a single-threaded wasm backend on half the batch;
 *               gradients are averaged in the main thread and both apply the same Adam update
 *               (weights stay identical; BatchNorm sees half-batch statistics, as in PyTorch DDP)
 *
 *   node --import tsx bench/data-parallel.ts [--steps 6] [--rounds 2] [--models cnn,mobilenet]
 *
 * Prints the median step per configuration, the 1→2 core scaling of both ways, and the load average.
 * The trainer ships the threaded build; data-parallel workers are only worth integrating if they win
 * clearly here.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { initBackend } from '../src/trainer/backend';
import { runtimeFromEnv, setRuntime } from '../src/trainer/runtime';
import { mobilenetV2, tutorialCnn } from '../src/trainer/models/zoo';
import { tf } from '../src/trainer/tf';
import { flag, median, cpuLine } from './util';

type ModelName = 'cnn' | 'mobilenet';
const SETUPS: Record<ModelName, { shape: [number, number, number]; batch: number; label: string }> = {
  cnn: { shape: [64, 64, 3], batch: 32, label: 'tutorial CNN 64×64×3 batch 32' },
  mobilenet: { shape: [96, 96, 3], batch: 16, label: 'MobileNetV2 96×96×3 batch 16' },
};

async function wasmWith(threads: number): Promise<void> {
  setRuntime({ ...runtimeFromEnv(process.env), wasmThreads: threads });
  await initBackend('wasm');
}

function build(model: ModelName): tf.LayersModel {
  const { shape } = SETUPS[model];
  return model === 'cnn' ? tutorialCnn(shape, 10) : mobilenetV2(shape, 10, 1);
}

function data(model: ModelName, n: number): { x: tf.Tensor; y: tf.Tensor } {
  const { shape } = SETUPS[model];
  return { x: tf.randomUniform([n, ...shape], 0, 255), y: tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % 10), 'int32'), 10) };
}

/** threads-1 / threads-2: one process, the whole batch, model.trainOnBatch. */
async function singleProcess(model: ModelName, threads: number, steps: number): Promise<number[]> {
  await wasmWith(threads);
  const m = build(model);
  m.compile({ optimizer: tf.train.adam(1e-3), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
  const { x, y } = data(model, SETUPS[model].batch);
  for (let i = 0; i < 3; i++) await m.trainOnBatch(x, y);
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await m.trainOnBatch(x, y);
    times.push(performance.now() - t0);
  }
  return times;
}

/** One data-parallel worker: gradients of its half batch out, averaged gradients in, Adam step. */
async function workerMain(): Promise<void> {
  const { model } = workerData as { model: ModelName };
  await wasmWith(1);
  const m = build(model);
  const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = tf.train.adam(1e-3);
  const { x, y } = data(model, SETUPS[model].batch / 2);
  const port = parentPort!;
  port.on('message', (msg: { type: 'grads' } | { type: 'apply'; grads: Float32Array[] } | { type: 'weights'; values: Float32Array[] }) => {
    if (msg.type === 'weights') {
      vars.forEach((v, i) => v.assign(tf.tensor(msg.values[i]!, v.shape)));
      port.postMessage({ type: 'ready' });
    } else if (msg.type === 'grads') {
      const { grads, value } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
      const out = vars.map((v) => grads[v.name]!.dataSync() as Float32Array);
      tf.dispose([value, ...Object.values(grads)]);
      port.postMessage({ type: 'grads', grads: out }, out.map((a) => a.buffer as ArrayBuffer));
    } else {
      const named = vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(msg.grads[i]!, v.shape) }));
      opt.applyGradients(named);
      tf.dispose(named.map((g) => g.tensor));
      port.postMessage({ type: 'applied' });
    }
  });
  port.postMessage({ type: 'started' });
}

function next(w: Worker, type: string): Promise<{ type: string; grads?: Float32Array[] }> {
  return new Promise((res, rej) => {
    const on = (m: { type: string }): void => {
      if (m.type !== type) return;
      w.off('message', on);
      w.off('error', rej);
      res(m);
    };
    w.on('message', on);
    w.on('error', rej);
  });
}

/** workers-2: two workers, each half the batch; averaged gradients, identical Adam updates. */
async function dataParallel(model: ModelName, steps: number): Promise<number[]> {
  // A worker cannot start from a .ts file: load tsx's require hook first (as src/trainer/data/decode-pool.ts).
  const src = `require(${JSON.stringify(createRequire(__filename).resolve('tsx/cjs'))}); require(${JSON.stringify(__filename)});`;
  const workers = [0, 1].map(() => new Worker(src, { eval: true, workerData: { model }, execArgv: [] }));
  await Promise.all(workers.map((w) => next(w, 'started')));
  // Same initial weights in both: those of a model built here.
  await wasmWith(1);
  const values = build(model).trainableWeights.map((w) => w.read().dataSync() as Float32Array);
  await Promise.all(workers.map((w) => (w.postMessage({ type: 'weights', values }), next(w, 'ready'))));
  const step = async (): Promise<void> => {
    const parts = await Promise.all(workers.map((w) => (w.postMessage({ type: 'grads' }), next(w, 'grads'))));
    const [a, b] = parts.map((p) => p.grads!) as [Float32Array[], Float32Array[]];
    for (let i = 0; i < a.length; i++) {
      const ai = a[i]!;
      const bi = b[i]!;
      for (let j = 0; j < ai.length; j++) ai[j] = (ai[j]! + bi[j]!) / 2;
    }
    await Promise.all(workers.map((w) => (w.postMessage({ type: 'apply', grads: a }), next(w, 'applied'))));
  };
  for (let i = 0; i < 3; i++) await step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  await Promise.all(workers.map((w) => w.terminate()));
  return times;
}

async function child(config: string, model: ModelName, steps: number): Promise<void> {
  const times = config === 'workers-2' ? await dataParallel(model, steps) : await singleProcess(model, config === 'threads-1' ? 1 : 2, steps);
  console.log(JSON.stringify({ median: median(times), rssMiB: process.resourceUsage().maxRSS / 1024 }));
}

function parent(): void {
  const steps = Number(flag('steps') ?? '6');
  const rounds = Number(flag('rounds') ?? '2');
  const models = (flag('models') ?? 'cnn,mobilenet').split(',') as ModelName[];
  const configs = ['threads-1', 'threads-2', 'workers-2'];
  console.log(`CPU: ${cpuLine()}; load average before: ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  for (const model of models) {
    const res: Record<string, number[]> = Object.fromEntries(configs.map((c) => [c, []]));
    const rss: Record<string, number[]> = Object.fromEntries(configs.map((c) => [c, []]));
    for (let r = 0; r < rounds; r++) {
      for (const c of configs) {
        const out = execFileSync(process.execPath, ['--import', 'tsx', __filename, '--child', c, model, String(steps)], { encoding: 'utf8', env: { ...process.env, BATCH_ADVISOR_WASM_THREADS: '' } });
        const { median: med, rssMiB } = JSON.parse(out.trim().split('\n').pop()!) as { median: number; rssMiB: number };
        res[c]!.push(med);
        rss[c]!.push(rssMiB);
      }
    }
    const { label, batch } = SETUPS[model];
    const m = (c: string): number => median(res[c]!);
    console.log(`\n${label}, Adam (median of ${rounds} interleaved processes × ${steps} steps):`);
    for (const c of configs) console.log(`  ${c.padEnd(10)} ${m(c).toFixed(1).padStart(8)} ms/step  ${((batch * 1000) / m(c)).toFixed(1).padStart(7)} img/s  peak RSS ${median(rss[c]!).toFixed(0)} MiB`);
    console.log(`  1→2 cores: threaded build ${(m('threads-1') / m('threads-2')).toFixed(2)}×, data-parallel workers ${(m('threads-1') / m('workers-2')).toFixed(2)}×`);
  }
  console.log(`\nload average after: ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
}

if (!isMainThread) {
  void workerMain();
} else if (process.argv.includes('--child')) {
  const i = process.argv.indexOf('--child');
  child(process.argv[i + 1]!, process.argv[i + 2] as ModelName, Number(process.argv[i + 3])).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
} else {
  parent();
}
