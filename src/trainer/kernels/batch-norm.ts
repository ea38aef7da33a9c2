/**
 * BatchNormalization in training as two kernels on the wasm heap, instead of tfjs-layers' ~30 small
 * ops per layer and step: its training path runs tf.moments (Mean, Sub, Square, Mean) and
 * FusedBatchNorm, whose tfjs-core gradient is a dozen element-wise ops with Tile, Sum and
 * broadcasts, plus the moments' own gradients; MobileNetV2's 52 BatchNorm layers spent ~25% of a
 * step there (Multiply alone ~20%) and kept ~3 activation-sized temporaries each alive for the
 * backward pass.
 *
 * Per channel c, over the M = N·H·W values x of that channel (biased variance, as tfjs):
 *   forward   mean = Σx/M,  var = Σ(x−mean)²/M,  r = 1/√(var+ε),  y = γ·r·(x−mean) + β
 *   backward  Σdy, Σdy·(x−mean)  (one pass), then (second pass)
 *             dβ = Σdy,  dγ = r·Σdy·(x−mean)
 *             dx = γr·dy − γr·Σdy/M − γr³·Σdy(x−mean)/M·(x−mean) + dmean/M + 2·dvar·(x−mean)/M
 * (dmean, dvar: gradients reaching the batch moments themselves; zero when, as in tfjs-layers,
 * they only feed the moving averages.) Sums are taken in float64, shifted by the channel's first
 * value so that large means do not cancel.
 *
 * BaBatchNormTrain (x, γ, β → y, mean, var) and BaBatchNormTrainGrad exist on wasm only.
 * `registerFusedBatchNorm` makes tfjs-layers' BatchNormalization use them in training when the
 * active backend has them (channels-last axis, float32, scale and center on: Keras's defaults);
 * anything else runs tfjs-layers' own code.
 */
import { engine, getBackend, getKernel, registerGradient, serialization, tidy, type GradConfig, type KernelConfig, type KernelFunc, type NamedAttrMap, type Tensor, type TensorInfo } from '../tf';
import { tf } from '../tf';
import { simdKernels, type SimdKernels } from '../simd';
import { heapOffset, release, sizeOf, type WasmBackendLike } from './util';

export const BN_TRAIN = 'BaBatchNormTrain';
export const BN_TRAIN_GRAD = 'BaBatchNormTrainGrad';

interface BnAttrs {
  epsilon: number;
}

/**
 * Per-channel float64 sums Σa and Σa·(b − shift) over the rows of two [M, C] arrays (b = a for the
 * moments). Four rows at a time: the per-channel accumulators are then loaded and stored once per
 * four values (measured ~1.5× faster than row by row).
 */
function channelSums(a: Float32Array, b: Float32Array, shift: Float64Array, c: number, s: Float64Array, q: Float64Array): void {
  const rows = a.length / c;
  const end4 = (rows - (rows % 4)) * c;
  let base = 0;
  for (; base < end4; base += 4 * c) {
    for (let j = 0; j < c; j++) {
      const p = base + j;
      const k = shift[j]!;
      const a0 = a[p]!;
      const a1 = a[p + c]!;
      const a2 = a[p + 2 * c]!;
      const a3 = a[p + 3 * c]!;
      s[j] = s[j]! + (a0 + a1 + (a2 + a3));
      q[j] = q[j]! + (a0 * (b[p]! - k) + a1 * (b[p + c]! - k) + (a2 * (b[p + 2 * c]! - k) + a3 * (b[p + 3 * c]! - k)));
    }
  }
  for (; base < a.length; base += c) {
    for (let j = 0; j < c; j++) {
      const v = a[base + j]!;
      s[j] = s[j]! + v;
      q[j] = q[j]! + v * (b[base + j]! - shift[j]!);
    }
  }
}

/** channelSums in JS (where the SIMD kernel is unavailable). */
function jsSums(a: Float32Array, b: Float32Array, shift: Float32Array, c: number): { s: Float64Array; q: Float64Array } {
  const s = new Float64Array(c);
  const q = new Float64Array(c);
  channelSums(a, b, Float64Array.from(shift), c, s, q);
  return { s, q };
}

export const batchNormTrain: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const { epsilon } = attrs as unknown as BnAttrs;
  const c = x.shape[x.shape.length - 1]!;
  const y = backend.makeOutput(x.shape, 'float32');
  const meanOut = backend.makeOutput([c], 'float32');
  const varOut = backend.makeOutput([c], 'float32');
  const simd = simdKernels(backend);
  const scratch = simd ? backend.makeOutput([6 * c], 'float32') : undefined;
  // Views after the allocations (growing wasm memory detaches older views).
  const xv = backend.typedArrayFromHeap(x) as Float32Array;
  const g = backend.typedArrayFromHeap(gamma) as Float32Array;
  const b = backend.typedArrayFromHeap(beta) as Float32Array;
  const m = xv.length / c;
  // Σ(x − k) and Σ(x − k)², shifted by k = the first row: unshifted sums would cancel when the
  // mean is large against the spread.
  const k = xv.slice(0, c);
  let sk: Float64Array;
  let sq: Float64Array;
  if (simd && scratch) {
    ({ s: sk, q: sq } = simdSums(backend, simd, scratch, x, k, x, k, c));
  } else {
    const { s, q } = jsSums(xv, xv, k, c); // Σx and Σx(x − k)
    sk = s.map((v, j) => v - m * k[j]!);
    sq = q.map((v, j) => v - k[j]! * sk[j]!); // Σ(x − k)² = Σx(x − k) − k·Σ(x − k)
  }
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let j = 0; j < c; j++) {
    const d = sk[j]! / m;
    mean[j] = k[j]! + d;
    variance[j] = Math.max(0, sq[j]! / m - d * d);
  }
  (backend.typedArrayFromHeap(meanOut) as Float32Array).set(mean);
  (backend.typedArrayFromHeap(varOut) as Float32Array).set(variance);
  // y = x·scale + shift
  const scale = new Float64Array(c);
  const shift = new Float64Array(c);
  for (let j = 0; j < c; j++) {
    scale[j] = g[j]! / Math.sqrt(variance[j]! + epsilon);
    shift[j] = b[j]! - mean[j]! * scale[j]!;
  }
  if (simd && scratch) {
    const sv = backend.typedArrayFromHeap(scratch) as Float32Array;
    const mh = Float32Array.from(mean);
    sv.set(mh, 0);
    for (let j = 0; j < c; j++) sv[c + j] = mean[j]! - mh[j]!;
    sv.set(scale, 2 * c);
    sv.set(b, 3 * c);
    const p = sv.byteOffset;
    simd.normalize(heapOffset(backend, x), heapOffset(backend, y), p, p + 4 * c, p + 8 * c, p + 12 * c, c, m);
    release(backend, scratch);
  } else {
    const yv = backend.typedArrayFromHeap(y) as Float32Array;
    for (let base = 0; base < xv.length; base += c) {
      for (let j = 0; j < c; j++) yv[base + j] = xv[base + j]! * scale[j]! + shift[j]!;
    }
  }
  return [y, meanOut, varOut];
};

export const batchNormTrainGrad: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { dy, x, gamma, mean, variance, dmean, dvariance } = inputs as Record<string, TensorInfo>;
  const { epsilon } = attrs as unknown as BnAttrs;
  const c = x!.shape[x!.shape.length - 1]!;
  const dx = backend.makeOutput(x!.shape, 'float32');
  const dgOut = backend.makeOutput([c], 'float32');
  const dbOut = backend.makeOutput([c], 'float32');
  const simd = simdKernels(backend);
  const scratch = simd ? backend.makeOutput([8 * c], 'float32') : undefined;
  const xv = backend.typedArrayFromHeap(x!) as Float32Array;
  const gv = backend.typedArrayFromHeap(dy!) as Float32Array;
  const g = backend.typedArrayFromHeap(gamma!) as Float32Array;
  const muF = backend.typedArrayFromHeap(mean!) as Float32Array;
  const va = backend.typedArrayFromHeap(variance!) as Float32Array;
  const dmu = backend.typedArrayFromHeap(dmean!) as Float32Array;
  const dva = backend.typedArrayFromHeap(dvariance!) as Float32Array;
  const m = xv.length / c;
  const { s: sdy, q: sdyx } = simd && scratch ? simdSums(backend, simd, scratch, dy!, new Float32Array(c), x!, muF, c) : jsSums(gv, xv, muF, c);
  // dx = a·dy + k·(x − mean) + e
  const a = new Float64Array(c);
  const k = new Float64Array(c);
  const e = new Float64Array(c);
  const dg = backend.typedArrayFromHeap(dgOut) as Float32Array;
  const db = backend.typedArrayFromHeap(dbOut) as Float32Array;
  for (let j = 0; j < c; j++) {
    const r = 1 / Math.sqrt(va[j]! + epsilon);
    a[j] = g[j]! * r;
    k[j] = (-a[j]! * r * r * sdyx[j]! + 2 * dva[j]!) / m;
    e[j] = (-a[j]! * sdy[j]! + dmu[j]!) / m;
    dg[j] = sdyx[j]! * r;
    db[j] = sdy[j]!;
  }
  if (simd && scratch) {
    const sv = backend.typedArrayFromHeap(scratch) as Float32Array;
    sv.set(a, 0);
    sv.set(k, c);
    sv.set(muF, 2 * c);
    sv.set(e, 3 * c);
    const p = sv.byteOffset;
    simd.bnGradApply(heapOffset(backend, dy!), heapOffset(backend, x!), heapOffset(backend, dx), p, p + 4 * c, p + 8 * c, p + 12 * c, c, m);
    release(backend, scratch);
  } else {
    const dxv = backend.typedArrayFromHeap(dx) as Float32Array;
    for (let base = 0; base < xv.length; base += c) {
      for (let j = 0; j < c; j++) dxv[base + j] = a[j]! * gv[base + j]! + k[j]! * (xv[base + j]! - muF[j]!) + e[j]!;
    }
  }
  return [dx, dgOut, dbOut];
};

/**
 * Σ(a − ashift) and Σ(a − ashift)·(b − bshift) per channel on the SIMD kernel. `scratch` (≥ 6c
 * floats on the wasm heap) holds the float64 sums (its first 4c floats) and the two float32
 * shifts (the next 2c). Returns copies of the sums.
 */
function simdSums(backend: WasmBackendLike, simd: SimdKernels, scratch: TensorInfo, a: TensorInfo, ashift: Float32Array, b: TensorInfo, bshift: Float32Array, c: number): { s: Float64Array; q: Float64Array } {
  const sv = backend.typedArrayFromHeap(scratch) as Float32Array;
  const p = sv.byteOffset; // tfjs's allocator aligns to ≥ 8 bytes: a valid Float64Array offset
  const sums = new Float64Array(sv.buffer, p, 2 * c);
  sums.fill(0);
  sv.set(ashift, 4 * c);
  sv.set(bshift, 5 * c);
  simd.channelSums(heapOffset(backend, a), p + 16 * c, heapOffset(backend, b), p + 20 * c, c, sizeOf(a.shape) / c, p, p + 8 * c);
  return { s: sums.slice(0, c), q: sums.slice(c) };
}

export const batchNormTrainConfig: KernelConfig = { kernelName: BN_TRAIN, backendName: 'wasm', kernelFunc: batchNormTrain };
export const batchNormTrainGradConfig: KernelConfig = { kernelName: BN_TRAIN_GRAD, backendName: 'wasm', kernelFunc: batchNormTrainGrad };

const batchNormTrainGradient: GradConfig = {
  kernelName: BN_TRAIN,
  inputsToSave: ['x', 'gamma'],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved, attrs) => {
    const [dy, dmean, dvariance] = dys as Tensor[];
    const [x, gamma, mean, variance] = saved;
    // One kernel gives all three gradients, run here rather than in the closures: the engine runs
    // each closure in its own tidy, which would dispose the other two.
    const outs = engine().runKernel(BN_TRAIN_GRAD, { dy: dy!, x: x!, gamma: gamma!, mean: mean!, variance: variance!, dmean: dmean!, dvariance: dvariance! }, attrs) as Tensor[];
    const get = (i: number) => (): Tensor => outs[i]!;
    return { x: get(0), gamma: get(1), beta: get(2) };
  },
};

/** y, mean, variance of a training-mode batch normalization over all axes but the last. */
export function batchNormTrainOp(x: Tensor, gamma: Tensor, beta: Tensor, epsilon: number): [Tensor, Tensor, Tensor] {
  return engine().runKernel(BN_TRAIN, { x, gamma, beta }, { epsilon } as unknown as NamedAttrMap) as unknown as [Tensor, Tensor, Tensor];
}

/** The parts of tfjs-layers' BatchNormalization that the fused training path uses. */
interface BatchNormLayerLike {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma?: { read(): Tensor };
  beta?: { read(): Tensor };
  movingMean: { read(): Tensor; write(t: Tensor): void };
  movingVariance: { read(): Tensor; write(t: Tensor): void };
}
type CallFn = (this: BatchNormLayerLike, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>) => Tensor | Tensor[];

function fusable(layer: BatchNormLayerLike, x: Tensor): boolean {
  const axis = layer.axis < 0 ? layer.axis + x.rank : layer.axis;
  return axis === x.rank - 1 && x.rank >= 2 && x.dtype === 'float32' && layer.scale && layer.center && getKernel(BN_TRAIN, getBackend()) != null;
}

/** As tfjs-layers: moving ← moving − (moving − value)·(1 − momentum). */
function movingAverage(v: BatchNormLayerLike['movingMean'], value: Tensor, momentum: number): void {
  tidy(() => {
    const orig = v.read();
    v.write(tf.sub(orig, tf.mul(tf.sub(orig, value), 1 - momentum)));
  });
}

let patched = false;

/** Makes (once) tfjs-layers' BatchNormalization run its training path on the two kernels above where they exist. */
export function registerFusedBatchNorm(): void {
  if (patched) return;
  registerGradient(batchNormTrainGradient);
  const entry = serialization.SerializationMap.getMap().classNameMap['BatchNormalization'];
  if (!entry) throw new Error('tfjs-layers has no BatchNormalization class registered');
  const proto = (entry[0] as unknown as { prototype: { call: CallFn } }).prototype;
  const original = proto.call;
  proto.call = function (this: BatchNormLayerLike, inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (kwargs['training'] !== true || !x || (Array.isArray(inputs) && inputs.length !== 1) || !fusable(this, x)) return original.call(this, inputs, kwargs);
    return tidy(() => {
      const [y, mean, variance] = batchNormTrainOp(x, this.gamma!.read(), this.beta!.read(), this.epsilon);
      movingAverage(this.movingMean, mean, this.momentum);
      movingAverage(this.movingVariance, variance, this.momentum);
      return y;
    });
  };
  patched = true;
}
