/**
 * How the gradient noise scale B_simple grows during a real run — the measurement behind the
 * probe's warm-up before it measures the noise scale, and behind planning for the upper end of the
 * measured range (src/core/probe/probe.ts planningNoiseScale). McCandlish et al. (2018, fig. 5)
 * report that the noise scale grows as the loss falls; this prints it for our trainer's own model,
 * data and gradients.
 *
 * Trains the zoo's tutorial CNN with Adam at the square-root-scaled rate on a real dataset (the MNIST
 * sample by default) for `--epochs`, and every `--every` steps measures B_simple as the probe does
 * (noise.ts: 8-image chunks of `--samples` fresh 64-image batches, not applied), printing the step,
 * the epoch, the training loss (moving average) and the estimate with its 80% bootstrap range.
 *
 *   node --import tsx bench/noise-over-training.ts [--dataset samples/mnist] [--batch 64] [--epochs 3] [--every 50] [--samples 8]
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { listDatasetFiles } from '../src/core/dataset/list';
import { estimateNoiseScale } from '../src/core/probe/noise';
import { makeSample } from '../src/cli/make-sample';
import { initBackend } from '../src/trainer/backend';
import { decodeImage } from '../src/trainer/data/decode';
import { splitFiles } from '../src/trainer/data/split';
import { tutorialCnn } from '../src/trainer/models/zoo';
import { tf } from '../src/trainer/tf';
import { cpuLine, flag } from './util';

const PX = 28 * 28;
const CLASSES = 10;

async function main(): Promise<void> {
  const folder = resolve(flag('dataset') ?? resolve(__dirname, '../samples/mnist'));
  const batch = Number(flag('batch') ?? 64);
  const epochs = Number(flag('epochs') ?? 3);
  const every = Number(flag('every') ?? 50);
  const samples = Number(flag('samples') ?? 8);
  if (!flag('dataset')) await makeSample(folder);
  const backend = await initBackend('wasm');
  console.log(`CPU: ${cpuLine()}; backend ${backend.name}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  const listing = await listDatasetFiles(folder);
  const { train } = splitFiles(listing.files, 0.2, 1337);
  const n = train.length;
  const x = new Float32Array(n * PX);
  for (let i = 0; i < n; i++) x.set(await decodeImage(train[i]!.path, { imageSize: [28, 28], channels: 1 }), i * PX);
  const y = Int32Array.from(train.map((f) => f.label));

  const model = tutorialCnn([28, 28, 1], CLASSES);
  const lr = 0.001 * Math.sqrt(batch / 32);
  const optimizer = tf.train.adam(lr);
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const lossOf = (xs: tf.Tensor, ys: tf.Tensor): tf.Scalar => tf.losses.softmaxCrossEntropy(tf.oneHot(ys as tf.Tensor1D, CLASSES), model.apply(xs, { training: true }) as tf.Tensor) as tf.Scalar;
  const batchAt = (start: number, size: number): { xs: tf.Tensor4D; ys: tf.Tensor1D } => {
    const xb = new Float32Array(size * PX);
    const yb = new Int32Array(size);
    for (let i = 0; i < size; i++) {
      const j = (start + i) % n;
      xb.set(x.subarray(j * PX, (j + 1) * PX), i * PX);
      yb[i] = y[j]!;
    }
    return { xs: tf.tensor4d(xb, [size, 28, 28, 1]), ys: tf.tensor1d(yb, 'int32') };
  };
  const squared = (g: Record<string, tf.Tensor>): number => tf.tidy(() => tf.addN(Object.values(g).map((t) => tf.sum(tf.square(t))))).dataSync()[0]!;

  /** B_simple as the probe measures it (8-image chunks of 64-image batches), without applying the gradients. */
  const measure = (at: number): ReturnType<typeof estimateNoiseScale> => {
    const small: number[] = [];
    const big: number[] = [];
    for (let r = 0; r < samples; r++) {
      const { xs, ys } = batchAt(at + r * 64 * 7, 64);
      let smallSum = 0;
      let sum: Record<string, tf.Tensor> | null = null;
      for (let c = 0; c < 8; c++) {
        const xc = tf.slice(xs, [c * 8, 0, 0, 0], [8, 28, 28, 1]);
        const yc = tf.slice(ys, [c * 8], [8]);
        const { value, grads } = tf.variableGrads(() => lossOf(xc, yc), vars);
        smallSum += squared(grads);
        const next: Record<string, tf.Tensor> = {};
        for (const [k, g] of Object.entries(grads)) next[k] = sum ? tf.add(sum[k]!, tf.div(g, 8)) : tf.div(g, 8);
        if (sum) tf.dispose(sum);
        tf.dispose(grads);
        tf.dispose([value, xc, yc]);
        sum = next;
      }
      small.push(smallSum / 8);
      big.push(squared(sum!));
      tf.dispose(sum!);
      tf.dispose([xs, ys]);
    }
    return estimateNoiseScale({ smallBatch: 8, bigBatch: 64, small, big });
  };

  const steps = Math.floor(n / batch) * epochs;
  console.log(`${n} training images, batch ${batch}, Adam lr ${lr.toPrecision(3)}, ${steps} steps; B_simple from ${samples} × 64 images every ${every} steps\n`);
  console.log('| step | epoch | training loss (avg) | B_simple | 80% range |');
  console.log('|---|---|---|---|---|');
  let loss = NaN;
  for (let s = 0; s <= steps; s++) {
    if (s % every === 0 || s === 10 || s === 25) {
      const g = measure(s * batch + 12_345);
      const range = g.range ? `${g.range[0].toFixed(0)}–${g.range[1] === null ? '∞' : g.range[1].toFixed(0)}` : '—';
      console.log(`| ${s} | ${((s * batch) / n).toFixed(2)} | ${Number.isFinite(loss) ? loss.toFixed(3) : '—'} | ${g.bSimple !== undefined ? g.bSimple.toFixed(1) : 'not usable'} | ${range} |`);
    }
    if (s === steps) break;
    const { xs, ys } = batchAt(s * batch, batch);
    const l = optimizer.minimize(() => lossOf(xs, ys), true, vars)!;
    const v = l.dataSync()[0]!;
    loss = Number.isFinite(loss) ? 0.9 * loss + 0.1 * v : v;
    tf.dispose([xs, ys, l]);
  }
  console.log(`\nload average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
