/**
 * Our wasm training kernels (src/trainer/kernels) against the cpu backend's reference kernels,
 * across strides, paddings, dilations, channel multipliers and odd sizes; then a tiny conv net
 * that must train on wasm without leaking tensors.
 *
 * Error measure: max |wasm − cpu| / max |cpu| over the whole output (element-wise relative error
 * is meaningless where the reference is ~0).
 *
 * Dilated references: the cpu backend's gradient kernels ignore dilations, so a dilated filter is
 * emulated by the equivalent undilated one with (d−1) zeros between taps: its input gradient is
 * the same, and its filter gradient sampled every d taps is the dilated filter's gradient.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/trainer/tf';
import { availableParallelism } from 'node:os';
import * as wasmBackend from '@tensorflow/tfjs-backend-wasm';
import { initBackend, wasmThreads } from '../../src/trainer/backend';
import { batchNormTrainOp } from '../../src/trainer/kernels/batch-norm';
import { filterGradTuning } from '../../src/trainer/kernels/conv2d-backprop-filter';
import { mobilenetV2, resnetSmall, tutorialCnn } from '../../src/trainer/models/zoo';
import { simdKernels } from '../../src/trainer/simd';
import { runtimeFromEnv, setRuntime } from '../../src/trainer/runtime';

// In-process, as the trainer's entry point does: the environment's settings (simd.test.ts runs this file with BATCH_ADVISOR_WASM_THREADS=1 and BATCH_ADVISOR_SIMD=0).
setRuntime(runtimeFromEnv(process.env));

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
interface Case {
  n: number;
  h: number;
  w: number;
  c: number;
  k: [number, number];
  s: number;
  d: number;
  pad: Pad;
  /** output channels (conv) or channel multiplier (depthwise) */
  o: number;
}

const TOL = 1e-4;
let maxErrSeen = 0;

function rand(n: number, seed: number): Float32Array {
  let x = seed >>> 0 || 1;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    a[i] = ((x >>> 0) / 0xffffffff) * 2 - 1;
  }
  return a;
}

function relErr(got: Float32Array, want: Float32Array): number {
  assert.equal(got.length, want.length, 'output sizes differ');
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i]! - want[i]!));
    den = Math.max(den, Math.abs(want[i]!));
  }
  const e = den === 0 ? num : num / den;
  maxErrSeen = Math.max(maxErrSeen, e);
  return e;
}

/** Runs kernel `name` on backend `backend` with fresh tensors from the given arrays. */
async function run(backend: 'cpu' | 'wasm', name: string, inputs: Record<string, [Float32Array, number[]]>, attrs: Record<string, unknown>): Promise<{ values: Float32Array; shape: number[] }> {
  await tf.setBackend(backend);
  const ts: Record<string, tf.Tensor> = {};
  for (const [k, [v, s]] of Object.entries(inputs)) ts[k] = tf.tensor(v, s);
  const out = tf.engine().runKernel(name, ts as unknown as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor;
  const values = (await out.data()) as Float32Array;
  const shape = out.shape;
  tf.dispose([out, ...Object.values(ts)]);
  return { values, shape };
}

/** A [kh,kw,…] filter with (d−1) zero taps between its taps (dilation made explicit). */
function dilateFilter(f: Float32Array, shape: number[], d: number): [Float32Array, number[]] {
  const [kh, kw, a, b] = shape as [number, number, number, number];
  const eh = (kh - 1) * d + 1;
  const ew = (kw - 1) * d + 1;
  const out = new Float32Array(eh * ew * a * b);
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) out.set(f.subarray((i * kw + j) * a * b, (i * kw + j + 1) * a * b), (i * d * ew + j * d) * a * b);
  return [out, [eh, ew, a, b]];
}

function undilateGrad(g: Float32Array, bigShape: number[], d: number, kh: number, kw: number): Float32Array {
  const [, ew, a, b] = bigShape as [number, number, number, number];
  const out = new Float32Array(kh * kw * a * b);
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) out.set(g.subarray((i * d * ew + j * d) * a * b, (i * d * ew + j * d + 1) * a * b), (i * kw + j) * a * b);
  return out;
}

function outSize(c: Case): [number, number] {
  const info = tf.backend_util.computeConv2DInfo([c.n, c.h, c.w, c.c], [c.k[0], c.k[1], c.c, c.o], c.s, c.d, c.pad, undefined, false, 'channelsLast');
  return [info.outHeight, info.outWidth];
}

async function checkConv(c: Case, depthwise: boolean): Promise<void> {
  const filterShape = [c.k[0], c.k[1], c.c, c.o];
  const outC = depthwise ? c.c * c.o : c.o;
  const [oh, ow] = outSize(c);
  const xShape = [c.n, c.h, c.w, c.c];
  const dyShape = [c.n, oh, ow, outC];
  const x = rand(c.n * c.h * c.w * c.c, 1 + c.h * 7 + c.s);
  const f = rand(filterShape.reduce((a, b) => a * b), 99 + c.k[0]);
  const dy = rand(dyShape.reduce((a, b) => a * b), 5 + c.o);
  const [bigF, bigShape] = dilateFilter(f, filterShape, c.d);
  const [kIn, kFilter] = depthwise ? ['DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter'] : ['Conv2DBackpropInput', 'Conv2DBackpropFilter'];
  const common = { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC' };

  const refIn = await run('cpu', kIn, { dy: [dy, dyShape], filter: [bigF, bigShape] }, { ...common, dilations: 1, inputShape: xShape });
  const gotIn = await run('wasm', kIn, { dy: [dy, dyShape], filter: [f, filterShape] }, { ...common, dilations: c.d, inputShape: xShape });
  assert.deepEqual(gotIn.shape, xShape);
  const eIn = relErr(gotIn.values, refIn.values);
  assert.ok(eIn < TOL, `${kIn} ${JSON.stringify(c)}: rel err ${eIn}`);

  const refF = await run('cpu', kFilter, { x: [x, xShape], dy: [dy, dyShape] }, { ...common, dilations: 1, filterShape: bigShape });
  const gotF = await run('wasm', kFilter, { x: [x, xShape], dy: [dy, dyShape] }, { ...common, dilations: c.d, filterShape });
  assert.deepEqual(gotF.shape, filterShape);
  const eF = relErr(gotF.values, undilateGrad(refF.values, bigShape, c.d, c.k[0], c.k[1]));
  assert.ok(eF < TOL, `${kFilter} ${JSON.stringify(c)}: rel err ${eF}`);
}

function cases(multipliers: number[]): Case[] {
  const out: Case[] = [];
  const pads: Pad[] = ['same', 'valid', [[0, 0], [1, 2], [0, 1], [0, 0]]];
  for (const s of [1, 2]) {
    for (const d of [1, 2]) {
      for (const pad of pads) {
        for (const o of multipliers) {
          out.push({ n: 2, h: 9, w: 7, c: 3, k: [3, 3], s, d, pad, o });
          out.push({ n: 3, h: 8, w: 11, c: 2, k: [2, 3], s, d, pad, o: o + 1 });
        }
      }
    }
  }
  out.push({ n: 2, h: 5, w: 5, c: 4, k: [1, 1], s: 2, d: 1, pad: 'valid', o: 3 });
  out.push({ n: 3, h: 5, w: 4, c: 6, k: [1, 1], s: 1, d: 1, pad: 'same', o: 5 });
  out.push({ n: 2, h: 5, w: 3, c: 9, k: [1, 1], s: 1, d: 1, pad: 'valid', o: 19 }); // 1×1: SIMD tiles and both tails
  out.push({ n: 2, h: 7, w: 8, c: 3, k: [3, 3], s: 2, d: 1, pad: 'same', o: 9 }); // ≥ 8 channels per strided pixel
  out.push({ n: 1, h: 6, w: 6, c: 2, k: [5, 5], s: 1, d: 1, pad: 'same', o: 2 });
  return out;
}

before(async () => {
  await initBackend('wasm');
  await tf.setBackend('cpu');
});

describe('wasm training kernels match the cpu backend', () => {
  it('runs the threaded build with one XNNPACK thread per core (these checks run on it; BATCH_ADVISOR_WASM_THREADS=1 selects the single-threaded build)', () => {
    assert.equal(wasmBackend.getThreadsCount(), wasmThreads());
    const threads = (env: Record<string, string>): number => wasmThreads(runtimeFromEnv(env).wasmThreads ?? 0); // 0: no setting, every core
    assert.equal(threads({}), Math.min(availableParallelism(), 8));
    assert.equal(threads({ BATCH_ADVISOR_WASM_THREADS: '1' }), 1);
    assert.equal(threads({ BATCH_ADVISOR_WASM_THREADS: '3' }), 3);
    assert.equal(threads({ BATCH_ADVISOR_WASM_THREADS: 'lots' }), Math.min(availableParallelism(), 8));
  });

  it('registers the kernels missing from tfjs-backend-wasm', () => {
    for (const k of ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput']) {
      assert.ok(tf.getKernel(k, 'wasm'), k);
    }
  });

  it('Conv2DBackpropInput / Conv2DBackpropFilter', async () => {
    for (const c of cases([1, 4])) await checkConv(c, false);
  });

  it('Conv2DBackpropFilter: batch split into chunks, and the convolution route', async () => {
    const saved = { ...filterGradTuning };
    try {
      filterGradTuning.patchBudget = 9 * 3 * 9 * 7; // one image per chunk
      filterGradTuning.maxChunks = Number.POSITIVE_INFINITY;
      for (const c of cases([1])) await checkConv(c, false);
      filterGradTuning.patchBudget = 0; // never the matrix route
      for (const c of cases([1, 4])) await checkConv(c, false);
    } finally {
      Object.assign(filterGradTuning, saved);
    }
  });

  it('Conv2DBackpropFilter on our fused multiply-add product (relaxed SIMD) and on XNNPACK', async () => {
    // Output channels with 16-column tiles and the 4-column tail; an odd number of rows (kh·kw·ci).
    const fma: Case[] = [
      { n: 2, h: 9, w: 7, c: 3, k: [3, 3], s: 1, d: 1, pad: 'same', o: 20 },
      { n: 3, h: 8, w: 11, c: 5, k: [2, 3], s: 2, d: 2, pad: 'valid', o: 16 },
      { n: 2, h: 7, w: 8, c: 3, k: [3, 3], s: 2, d: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]], o: 36 },
      { n: 1, h: 6, w: 6, c: 2, k: [5, 5], s: 1, d: 1, pad: 'same', o: 4 },
    ];
    const saved = { ...filterGradTuning };
    try {
      for (const on of [true, false]) {
        filterGradTuning.fmaGemm = on;
        for (const c of fma) await checkConv(c, false);
        filterGradTuning.patchBudget = 9 * 3 * 9 * 7; // one image per chunk: the chunks accumulate into dw
        filterGradTuning.maxChunks = Number.POSITIVE_INFINITY;
        for (const c of fma) await checkConv(c, false);
        Object.assign(filterGradTuning, saved);
      }
    } finally {
      Object.assign(filterGradTuning, saved);
    }
  });

  it('loads the relaxed-SIMD build (fused multiply-add) where the runtime accepts it, unless BATCH_ADVISOR_RELAXED_SIMD=0', () => {
    const simd = simdKernels(tf.findBackend('wasm')!);
    if (!simd) return; // BATCH_ADVISOR_SIMD=0
    // Node 20 (V8 11.3) accepts it behind the flag our loader sets.
    assert.equal(simd.fma, process.env['BATCH_ADVISOR_RELAXED_SIMD'] !== '0');
  });

  it('DepthwiseConv2dNativeBackpropInput / DepthwiseConv2dNativeBackpropFilter', async () => {
    for (const c of cases([1, 2])) await checkConv(c, true);
    // 13 channels, multiplier 1: the SIMD filter gradient's 8- and 4-channel blocks and its tail.
    for (const c of cases([1])) await checkConv({ ...c, c: 13 }, true);
  });

  it('loads our SIMD kernels on the backend heap (unless BATCH_ADVISOR_SIMD=0)', () => {
    assert.equal(simdKernels(tf.findBackend('wasm')!) !== undefined, process.env['BATCH_ADVISOR_SIMD'] !== '0');
  });

  it('MaxPoolGrad (2×2 fast path, ties, odd sizes, padding, overlapping windows)', async () => {
    const shapes: [number[], number, number, 'same' | 'valid'][] = [
      [[2, 8, 6, 5], 2, 2, 'valid'],
      [[3, 4, 6, 9], 2, 2, 'valid'], // two SIMD blocks and a tail
      [[2, 7, 9, 3], 2, 2, 'valid'],
      [[2, 7, 9, 3], 2, 2, 'same'],
      [[1, 9, 9, 4], 3, 2, 'same'],
      [[1, 9, 9, 4], 3, 1, 'valid'],
    ];
    for (const [shape, f, s, pad] of shapes) {
      // Rounded, ReLU-like values: many ties (and zeros) inside windows.
      const x = rand(shape.reduce((a, b) => a * b), shape[1]! * 13 + f).map((v) => Math.max(0, Math.round(v * 3)));
      await tf.setBackend('cpu');
      const y = tf.maxPool(tf.tensor4d(x, shape as [number, number, number, number]), f, s, pad);
      const yv = (await y.data()) as Float32Array;
      const dy = rand(yv.length, 77);
      const inputs = { dy: [dy, y.shape], input: [x, shape], output: [yv, y.shape] } as Record<string, [Float32Array, number[]]>;
      y.dispose();
      const attrs = { filterSize: f, strides: s, pad };
      const ref = await run('cpu', 'MaxPoolGrad', inputs, attrs);
      const got = await run('wasm', 'MaxPoolGrad', inputs, attrs);
      assert.deepEqual(got.shape, shape);
      assert.ok(relErr(got.values, ref.values) < TOL, `MaxPoolGrad ${JSON.stringify([shape, f, s, pad])}`);
    }
  });

  it('ReLU, ReLU6 and ClipByValue gradients (one BaMaskGrad pass on wasm), values on the bounds too', async () => {
    // Values on a 0.5 grid from −2 to 8: many exactly at 0, 6 and the clip bounds.
    const x = rand(2 * 7 * 5 * 3, 5).map((v) => Math.round(v * 10) / 2 + 3);
    x[7] = Number.NaN; // a diverged activation: ReLU's gradient stays NaN there (tfjs: step(NaN) = NaN)
    const dy = rand(x.length, 11);
    const ops: [string, (t: tf.Tensor) => tf.Tensor][] = [
      ['relu', (t) => tf.relu(t)],
      ['relu6', (t) => tf.relu6(t)],
      ['clipByValue(0, 6)', (t) => tf.clipByValue(t, 0, 6)],
      ['clipByValue(-1.5, 2.5)', (t) => tf.clipByValue(t, -1.5, 2.5)],
    ];
    for (const [name, f] of ops) {
      const grads: Float32Array[] = [];
      for (const backend of ['cpu', 'wasm'] as const) {
        await tf.setBackend(backend);
        const kernels = new Set<string>();
        const xt = tf.tensor(x, [2, 7, 5, 3]);
        const g = tf.tidy(() => {
          const [gx] = tf.grads((t: tf.Tensor) => f(t))([xt], tf.tensor(dy, [2, 7, 5, 3]));
          return gx!;
        });
        if (backend === 'wasm') {
          const p = await tf.profile(() => tf.grads((t: tf.Tensor) => f(t))([xt], tf.tensor(dy, [2, 7, 5, 3])));
          tf.dispose(p.result as tf.Tensor[]);
          for (const k of p.kernels) kernels.add(k.name);
          assert.ok(kernels.has('BaMaskGrad'), `${name}: fused kernel used (${[...kernels].join(', ')})`);
          assert.ok(!kernels.has('Select') && !kernels.has('Step'), `${name}: no element-wise composition`);
        }
        grads.push((await g.data()) as Float32Array);
        tf.dispose([xt, g]);
      }
      assert.equal(Number.isNaN(grads[1]![7]), Number.isNaN(grads[0]![7]), `${name}: NaN input handled as on cpu`);
      grads.forEach((g) => (g[7] = 0));
      assert.equal(relErr(grads[1]!, grads[0]!), 0, `${name}: same gradient as the cpu backend`);
    }
  });

  it('the ReLU layer with maxValue 6 is one Relu6 op: same outputs and gradients as Relu then ClipByValue, also at 0 and 6', async () => {
    const x = rand(2 * 7 * 5 * 3, 9).map((v) => Math.round(v * 10) / 2 + 3); // a 0.5 grid over [−2, 8]
    const dy = rand(x.length, 13);
    const shape = [2, 7, 5, 3];
    const layer = tf.layers.reLU({ maxValue: 6 });
    const out: Float32Array[] = [];
    for (const backend of ['cpu', 'wasm'] as const) {
      await tf.setBackend(backend);
      const xt = tf.tensor(x, shape);
      const dyt = tf.tensor(dy, shape);
      // cpu: tfjs-layers' own composition, written out; wasm: the layer.
      const f = backend === 'cpu' ? (t: tf.Tensor) => tf.clipByValue(tf.relu(t), 0, 6) : (t: tf.Tensor) => layer.apply(t) as tf.Tensor;
      const p = await tf.profile(() => tf.grads(f)([xt], dyt));
      const names = p.kernels.map((k) => k.name);
      if (backend === 'wasm') assert.ok(names.includes('Relu6') && !names.includes('ClipByValue') && !names.includes('Relu'), names.join(', '));
      const [g] = p.result as tf.Tensor[];
      const y = f(xt);
      out.push((await y.data()) as Float32Array, (await g!.data()) as Float32Array);
      tf.dispose([xt, dyt, g!, y]);
    }
    assert.equal(relErr(out[2]!, out[0]!), 0, 'outputs');
    assert.equal(relErr(out[3]!, out[1]!), 0, 'gradients');
    // Other caps keep tfjs-layers' Relu then ClipByValue.
    const p3 = await tf.profile(() => tf.layers.reLU({ maxValue: 3 }).apply(tf.tensor(x, shape)) as tf.Tensor);
    assert.deepEqual(p3.kernels.map((k) => k.name).filter((n) => n !== 'TensorData'), ['Relu', 'ClipByValue']);
    tf.dispose(p3.result as tf.Tensor);
  });

  it('Tile (all axes, bool and int32 too)', async () => {
    for (const [shape, reps, dtype] of [
      [[1, 1, 1, 5], [3, 4, 6, 1], 'float32'],
      [[2, 3], [2, 3], 'float32'],
      [[2, 1, 3], [1, 5, 2], 'int32'],
      [[3], [4], 'bool'],
      [[2, 2], [1, 1], 'float32'],
    ] as [number[], number[], 'float32' | 'int32' | 'bool'][]) {
      const size = shape.reduce((a, b) => a * b, 1);
      const vals = Array.from(rand(size, size + 3), (v) => (dtype === 'bool' ? Number(v > 0) : dtype === 'int32' ? Math.round(v * 100) : v));
      const outs: number[][] = [];
      for (const backend of ['cpu', 'wasm']) {
        await tf.setBackend(backend);
        const t = tf.tensor(vals, [...shape], dtype);
        const r = tf.tile(t, [...reps]);
        outs.push(Array.from(await r.data()));
        assert.deepEqual(r.shape, shape.map((d, i) => d * reps[i]!));
        tf.dispose([t, r]);
      }
      assert.deepEqual(outs[1], outs[0], `Tile ${JSON.stringify([shape, reps, dtype])}`);
    }
  });

  it('Sum and Mean over leading axes (bias gradients, BatchNorm moments) and other reductions', async () => {
    for (const [shape, axis, keepDims] of [
      [[32, 16, 16, 8], [0, 1, 2], false],
      [[4, 33, 31, 5], [0, 1, 2], true],
      [[2048, 10], [0], false],
      [[2053, 3], 0, false],
      [[6, 7, 8], [1, 2], false],
      [[6, 7, 8], [1], false],
    ] as const) {
      const size = shape.reduce((a, b) => a * b, 1);
      const inputs = { x: [rand(size, size % 97), [...shape]] } as Record<string, [Float32Array, number[]]>;
      const attrs = { axis, keepDims };
      for (const kernel of ['Sum', 'Mean']) {
        const ref = await run('cpu', kernel, inputs, attrs);
        const got = await run('wasm', kernel, inputs, attrs);
        assert.deepEqual(got.shape, ref.shape);
        assert.ok(relErr(got.values, ref.values) < TOL, `${kernel} ${JSON.stringify([shape, axis, keepDims])}`);
      }
    }
  });

  it('BatchMatMul with transposed operands', async () => {
    for (const [m, k, n] of [
      [5, 7, 3],
      [32, 300, 20],
      [3, 40, 200],
    ] as const) {
      for (const [ta, tb] of [
        [false, true],
        [true, false],
        [true, true],
      ] as const) {
        const aShape = ta ? [k, m] : [m, k];
        const bShape = tb ? [n, k] : [k, n];
        const inputs = { a: [rand(m * k, m + k), aShape], b: [rand(k * n, k + n + 1), bShape] } as Record<string, [Float32Array, number[]]>;
        const attrs = { transposeA: ta, transposeB: tb };
        const ref = await run('cpu', 'BatchMatMul', inputs, attrs);
        const got = await run('wasm', 'BatchMatMul', inputs, attrs);
        assert.deepEqual(got.shape, [m, n]);
        assert.ok(relErr(got.values, ref.values) < TOL, `matMul ${m}×${k}×${n} ${ta} ${tb}`);
      }
    }
  });

  it('BatchNormalization in training: one fused kernel each way on wasm, same outputs, moving averages and gradients as tfjs-layers on cpu', async () => {
    // Rank 4 and 2; one input far from zero (mean ≫ std: the moments must not cancel).
    for (const [shape, offset] of [[[3, 5, 4, 6], 0], [[7, 9], 0], [[2, 4, 3, 5], 300]] as [number[], number][]) {
      const size = shape.reduce((a, b) => a * b, 1);
      const c = shape.at(-1)!;
      const x = rand(size, size).map((v, i) => v * (1 + (i % c)) + offset);
      const dy = rand(size, 7);
      const results: Float32Array[][] = [];
      for (const backend of ['cpu', 'wasm'] as const) {
        await tf.setBackend(backend);
        const layer = tf.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-3, gammaInitializer: 'randomNormal', betaInitializer: 'randomNormal' });
        const xt = tf.tensor(x, shape);
        layer.apply(xt, { training: false }); // builds the weights
        const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable); // γ, β
        layer.setWeights([tf.tensor(rand(c, 3), [c]), tf.tensor(rand(c, 4), [c]), tf.zeros([c]), tf.ones([c])]);
        const f = (t: tf.Tensor): tf.Scalar => tf.sum(tf.mul(layer.apply(t, { training: true }) as tf.Tensor, tf.tensor(dy, shape)));
        const p = await tf.profile(() => tf.variableGrads(() => f(xt), vars));
        const names = new Set(p.kernels.map((k) => k.name));
        const { grads, value } = p.result as { grads: tf.NamedTensorMap; value: tf.Scalar };
        tf.dispose(value);
        tf.dispose(grads);
        if (backend === 'wasm') {
          assert.ok(names.has('BaBatchNormTrain') && names.has('BaBatchNormTrainGrad'), `fused kernels used (${[...names].join(', ')})`);
          assert.ok(!names.has('FusedBatchNorm') && !names.has('Tile'), `no unfused BatchNorm ops (${[...names].join(', ')})`);
        }
        // Fresh weights again: the profiled call above moved the moving averages once.
        layer.setWeights([tf.tensor(rand(c, 3), [c]), tf.tensor(rand(c, 4), [c]), tf.zeros([c]), tf.ones([c])]);
        const y = layer.apply(xt, { training: true }) as tf.Tensor;
        const [gx, gw] = tf.tidy(() => {
          const [a] = tf.grads((t: tf.Tensor) => f(t))([xt]);
          const { grads: g, value } = tf.variableGrads(() => f(xt), vars);
          value.dispose();
          return [a!, vars.map((t) => g[t.name]!)];
        });
        const weights = layer.getWeights();
        results.push(await Promise.all([y, gx, ...gw, ...weights].map(async (t) => (await t.data()) as Float32Array)));
        tf.dispose([xt, y, gx, ...gw]);
        layer.dispose();
      }
      const what = ['y', 'dx', 'dγ', 'dβ', 'γ', 'β', 'moving mean', 'moving variance'];
      results[0]!.forEach((want, i) => {
        const e = relErr(results[1]![i]!, want);
        assert.ok(e < TOL, `${what[i]} of ${JSON.stringify(shape)} + ${offset}: rel err ${e}`);
      });
    }
  });

  it('BaBatchNormTrain: gradients that reach the batch mean and variance too (vs tf.moments + batchNorm on cpu)', async () => {
    const shape = [4, 3, 5, 6];
    const x = rand(360, 17).map((v, i) => v * (1 + (i % 6)) + 2);
    const [g, b, w, u, v] = [rand(6, 1), rand(6, 2), rand(360, 3), rand(6, 4), rand(6, 5)];
    const out: Float32Array[][] = [];
    for (const backend of ['cpu', 'wasm'] as const) {
      await tf.setBackend(backend);
      const loss = (xt: tf.Tensor, gt: tf.Tensor, bt: tf.Tensor): tf.Scalar => {
        let y: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor;
        if (backend === 'wasm') {
          [y, mean, variance] = batchNormTrainOp(xt, gt, bt, 1e-3);
        } else {
          ({ mean, variance } = tf.moments(xt, [0, 1, 2]));
          y = tf.batchNorm(xt, mean, variance, bt, gt, 1e-3);
        }
        return tf.addN([tf.sum(tf.mul(y, tf.tensor(w, shape))), tf.sum(tf.mul(mean, tf.tensor(u))), tf.sum(tf.mul(variance, tf.tensor(v)))]) as tf.Scalar;
      };
      const ts = [tf.tensor(x, shape), tf.tensor(g), tf.tensor(b)];
      const grads = tf.grads(loss as (...a: tf.Tensor[]) => tf.Tensor)(ts);
      out.push(await Promise.all(grads.map(async (t) => (await t.data()) as Float32Array)));
      tf.dispose([...ts, ...grads]);
    }
    ['dx', 'dγ', 'dβ'].forEach((what, i) => assert.ok(relErr(out[1]![i]!, out[0]![i]!) < TOL, what));
  });

  it('gradients of a conv → depthwise → dense chain match (tf.grads)', async () => {
    const xv = rand(2 * 10 * 10 * 3, 3);
    const grads = async (backend: 'cpu' | 'wasm'): Promise<Float32Array[]> => {
      await tf.setBackend(backend);
      const x = tf.tensor4d(xv, [2, 10, 10, 3]);
      const w1 = tf.tensor4d(rand(3 * 3 * 3 * 8, 4), [3, 3, 3, 8]);
      const w2 = tf.tensor4d(rand(3 * 3 * 8 * 2, 5), [3, 3, 8, 2]);
      const w3 = tf.tensor2d(rand(5 * 5 * 16 * 4, 6), [5 * 5 * 16, 4]);
      const f = (x: tf.Tensor4D, a: tf.Tensor4D, b: tf.Tensor4D, c: tf.Tensor2D): tf.Scalar => {
        const h1 = tf.relu(tf.conv2d(x, a, 1, 'same'));
        const h2 = tf.depthwiseConv2d(h1, b, 2, 'same');
        return tf.sum(tf.square(tf.matMul(tf.reshape(h2, [2, -1]), c)));
      };
      const gs = tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([x, w1, w2, w3]);
      const vals = await Promise.all(gs.map((g) => g.data() as Promise<Float32Array>));
      tf.dispose([...gs, x, w1, w2, w3]);
      return vals;
    };
    const ref = await grads('cpu');
    const got = await grads('wasm');
    for (let i = 0; i < ref.length; i++) assert.ok(relErr(got[i]!, ref[i]!) < TOL, `grad ${i}`);
  });
  it('Adam: one BaAdam kernel per variable on wasm, same weights, moments and saved state as tfjs on cpu', async () => {
    // Sizes with a SIMD tail; the second variable gets no gradient in the last step (its moments
    // and value stay); float32 everywhere.
    const sizes = [[3, 5, 7], [9]] as const;
    const results: Float32Array[][] = [];
    for (const backend of ['cpu', 'wasm'] as const) {
      await tf.setBackend(backend);
      const vars = sizes.map((shape, i) => tf.variable(tf.tensor(rand(shape.reduce((a, b) => a * b, 1), 40 + i), [...shape]), true, `adam-test-${backend}-${i}`));
      const opt = tf.train.adam(0.01, 0.9, 0.999, 1e-7);
      for (let step = 0; step < 4; step++) {
        const grads = vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(rand(v.size, 100 * step + i), v.shape) }));
        const used = step === 3 ? grads.slice(0, 1) : grads;
        const before = tf.memory().numTensors;
        const p = await tf.profile(() => opt.applyGradients(used));
        if (backend === 'wasm') {
          const names = new Set(p.kernels.map((k) => k.name));
          // (BATCH_ADVISOR_SIMD=0: tfjs's own update, checked by simd.test.ts)
          if (process.env['BATCH_ADVISOR_SIMD'] !== '0') assert.ok(names.has('BaAdam') && !names.has('Sqrt'), `fused update used (${[...names].join(', ')})`);
          assert.equal(tf.memory().numTensors, before + (step === 0 ? 4 : 0), 'tensors leaked (step 0 creates the 4 moments)');
        }
        tf.dispose(grads.map((g) => g.tensor));
      }
      const saved = await opt.getWeights();
      assert.deepEqual(saved.map((w) => w.name.replace(backend, '')), ['iter', ...sizes.map((_, i) => `adam-test--${i}/m`), ...sizes.map((_, i) => `adam-test--${i}/v`)]);
      results.push([...vars.map((v) => v.dataSync() as Float32Array), ...saved.slice(1).map((w) => w.tensor.dataSync() as Float32Array)]);
      opt.dispose();
      tf.dispose(vars);
    }
    const [ref, got] = results as [Float32Array[], Float32Array[]];
    for (let i = 0; i < ref.length; i++) assert.ok(relErr(got[i]!, ref[i]!) < 1e-5, `tensor ${i}: rel err ${relErr(got[i]!, ref[i]!)}`);
  });
});

describe('training on wasm', () => {
  it('a tiny conv net learns and leaks no tensors', async () => {
    await tf.setBackend('wasm');
    tf.util.assert(tf.getBackend() === 'wasm', () => 'not on wasm');
    const inp = tf.input({ shape: [12, 12, 2] });
    let h = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }).apply(inp) as tf.SymbolicTensor;
    h = tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'relu' }).apply(h) as tf.SymbolicTensor;
    h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3 }).apply(h) as tf.SymbolicTensor;
    const model = tf.model({ inputs: inp, outputs: out });
    model.compile({ optimizer: tf.train.adam(0.05), loss: 'meanSquaredError' });
    const x = tf.tensor4d(rand(8 * 12 * 12 * 2, 11), [8, 12, 12, 2]);
    const y = tf.tensor2d(rand(8 * 3, 12), [8, 3]);
    const losses: number[] = [];
    let before = 0;
    let beforeData = 0;
    for (let step = 0; step < 15; step++) {
      losses.push(Number(await model.trainOnBatch(x, y)));
      if (step === 1) {
        // after the optimizer created its slots
        before = tf.memory().numTensors;
        beforeData = tf.backend().numDataIds();
      }
    }
    assert.equal(tf.memory().numTensors, before, 'tensors leaked during training steps');
    // Our kernels work below the engine: their intermediates show only in the backend's count.
    assert.equal(tf.backend().numDataIds(), beforeData, 'wasm buffers leaked during training steps');
    assert.ok(losses.at(-1)! < losses[0]! * 0.8, `loss did not decrease: ${losses.map((l) => l.toFixed(4)).join(' ')}`);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('the zoo models train on wasm with Adam, SGD and RMSprop (no missing kernel, no leak)', async () => {
    await tf.setBackend('wasm');
    const builders = [() => tutorialCnn([16, 16, 3], 3), () => mobilenetV2([32, 32, 3], 3, 0.35), () => resnetSmall([16, 16, 3], 3, 1)];
    for (const build of builders) {
      for (const optimizer of [tf.train.adam(1e-3), tf.train.sgd(0.01), tf.train.rmsprop(1e-3)]) {
        const model = build();
        model.compile({ optimizer, loss: 'categoricalCrossentropy' });
        const [h, w] = model.inputs[0]!.shape.slice(1, 3) as [number, number];
        const x = tf.randomUniform([2, h, w, 3], 0, 255);
        const y = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3);
        await model.trainOnBatch(x, y);
        const before = tf.memory().numTensors;
        const beforeData = tf.backend().numDataIds();
        const loss = Number(await model.trainOnBatch(x, y));
        assert.ok(Number.isFinite(loss), `${model.name}: loss ${loss}`);
        assert.equal(tf.memory().numTensors, before, `${model.name}: tensors leaked`);
        assert.equal(tf.backend().numDataIds(), beforeData, `${model.name}: wasm buffers leaked`);
        tf.dispose([x, y]);
        model.dispose();
      }
    }
  });

  it('resnet-small: all weight gradients on wasm match the cpu backend', async () => {
    await tf.setBackend('cpu');
    const model = resnetSmall([12, 12, 3], 4, 1);
    const x = tf.tensor4d(rand(2 * 12 * 12 * 3, 21).map((v) => (v + 1) * 127), [2, 12, 12, 3]);
    const y = tf.oneHot(tf.tensor1d([1, 3], 'int32'), 4);
    const grads = async (): Promise<Record<string, Float32Array>> => {
      const { grads: g, value } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
      const out: Record<string, Float32Array> = {};
      for (const [k, t] of Object.entries(g)) out[k] = (await t.data()) as Float32Array;
      tf.dispose([value, ...Object.values(g)]);
      return out;
    };
    const ref = await grads();
    await tf.setBackend('wasm');
    const got = await grads();
    assert.ok(Object.keys(ref).length > 10);
    for (const k of Object.keys(ref)) assert.ok(relErr(got[k]!, ref[k]!) < TOL, `gradient of ${k}`);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('reports the largest error seen', () => {
    console.log(`  max relative error vs cpu: ${maxErrSeen.toExponential(2)}`);
    assert.ok(maxErrSeen < TOL);
  });
});
