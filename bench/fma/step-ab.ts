/**
 * Whole training steps with the Conv2D filter gradient's product on our fused multiply-add gemm
 * (filterGradTuning.fmaGemm) and on XNNPACK's BatchMatMul, alternating step by step in one process
 * (A, B, A, B…: a shared machine's load hits both alike). Needs the relaxed-SIMD build (Node 20: our
 * loader sets V8's flag).
 *
 *   node --import tsx bench/fma/step-ab.ts [cnn64|mobilenet] [--steps N]
 */
import { initBackend } from '../../src/trainer/backend';
import { filterGradTuning } from '../../src/trainer/kernels/conv2d-backprop-filter';
import { mobilenetV2, tutorialCnn } from '../../src/trainer/models/zoo';
import { runtimeFromEnv, setRuntime } from '../../src/trainer/runtime';
import { simdKernels } from '../../src/trainer/simd';
import { tf } from '../../src/trainer/tf';
import { flag, median } from '../util';

setRuntime(runtimeFromEnv(process.env));

const MODELS: Record<string, { shape: [number, number, number]; build: () => tf.LayersModel; batch: number }> = {
  mobilenet: { shape: [96, 96, 3], build: () => mobilenetV2([96, 96, 3], 10, 1), batch: 16 },
  cnn64: { shape: [64, 64, 3], build: () => tutorialCnn([64, 64, 3], 10), batch: 32 },
};

async function main(): Promise<void> {
  const name = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'cnn64';
  const m = MODELS[name]!;
  const steps = Number(flag('steps') ?? '10');
  tf.enableProdMode();
  await initBackend('wasm');
  console.log(`relaxed-SIMD build: ${simdKernels(tf.backend())?.fma ?? false}`);
  const model = m.build();
  model.compile({ optimizer: tf.train.adam(1e-3), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
  const x = tf.randomUniform([m.batch, ...m.shape], 0, 255);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: m.batch }, (_, i) => i % 10), 'int32'), 10);
  for (let i = 0; i < 3; i++) await model.trainOnBatch(x, y);
  const t: Record<'fma' | 'xnnpack', number[]> = { fma: [], xnnpack: [] };
  for (let i = 0; i < 2 * steps; i++) {
    const which = i % 2 === 0 ? 'fma' : 'xnnpack';
    filterGradTuning.fmaGemm = which === 'fma';
    const t0 = performance.now();
    await model.trainOnBatch(x, y);
    t[which].push(performance.now() - t0);
  }
  const f = median(t.fma);
  const g = median(t.xnnpack);
  console.log(`${name} batch ${m.batch}: fma gemm ${f.toFixed(1)} ms (${((m.batch * 1000) / f).toFixed(1)} img/s), XNNPACK ${g.toFixed(1)} ms (${((m.batch * 1000) / g).toFixed(1)} img/s): ${(g / f).toFixed(3)}× (median of ${steps} each, alternating)`);
}

void main();
