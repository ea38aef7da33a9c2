/**
 * Adam's update as one SIMD kernel per variable on wasm, instead of tfjs-core's ~12 element-wise
 * kernels per variable (Mul, Add, Square, Div, Sqrt… : MobileNetV2's 158 variables made ~1,600
 * kernel calls and ~12% of a step). tfjs-core also runs the whole update in one `tidy`, so every
 * variable's ~11 temporaries stay alive until the last variable is done (11× the model's weights
 * at the update's peak); here each variable's three new buffers replace its old ones before the
 * next variable starts (3× the largest weight).
 *
 * Same arithmetic as tfjs-core 4.22's AdamOptimizer.applyGradients, in the same float32 order (see
 * ../simd/assembly/kernels.ts `adam`); the moment variables, their names, accBeta1/2 and the
 * iteration count are the optimizer's own, so getWeights/setWeights and saved models are unchanged.
 * Anything the kernel does not cover (another backend, non-float32 tensors) runs tfjs's own code.
 */
import { AdamOptimizer, engine, getBackend, getKernel, sub, mul, tidy, zerosLike, type KernelConfig, type KernelFunc, type NamedAttrMap, type NamedTensorMap, type Tensor, type TensorInfo, type Variable } from '../tf';
import { simdKernels } from '../simd';
import { heapOffset, sizeOf, type WasmBackendLike } from './util';

export const ADAM = 'BaAdam';

interface AdamAttrs {
  b1: number;
  c1: number;
  b2: number;
  c2: number;
  ob1: number;
  ob2: number;
  nlr: number;
  eps: number;
}

export const adamKernel: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { x, m, v, g } = inputs as Record<'x' | 'm' | 'v' | 'g', TensorInfo>;
  const a = attrs as unknown as AdamAttrs;
  const simd = simdKernels(backend);
  if (!simd) throw new Error(`${ADAM} needs the SIMD kernels`);
  const xOut = backend.makeOutput(x.shape, 'float32');
  const mOut = backend.makeOutput(x.shape, 'float32');
  const vOut = backend.makeOutput(x.shape, 'float32');
  simd.adam(heapOffset(backend, x), heapOffset(backend, m), heapOffset(backend, v), heapOffset(backend, g), heapOffset(backend, xOut), heapOffset(backend, mOut), heapOffset(backend, vOut), sizeOf(x.shape), a.b1, a.c1, a.b2, a.c2, a.ob1, a.ob2, a.nlr, a.eps);
  return [xOut, mOut, vOut];
};

export const adamConfig: KernelConfig = { kernelName: ADAM, backendName: 'wasm', kernelFunc: adamKernel };

/** tfjs-core's AdamOptimizer internals that the fused update reads and writes. */
interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: Variable;
  accBeta2: Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: Variable } | undefined)[];
  incrementIterations(): void;
}
type Gradients = NamedTensorMap | { name: string; tensor: Tensor }[];
type Apply = (this: AdamInternals, grads: Gradients) => void;

let patched = false;

/** Makes (once) AdamOptimizer use the fused kernel where the active backend has it. */
export function registerFusedAdam(): void {
  if (patched) return;
  const proto = AdamOptimizer.prototype as unknown as { applyGradients: Apply };
  const original = proto.applyGradients;
  proto.applyGradients = function (this: AdamInternals, grads: Gradients) {
    const names = Array.isArray(grads) ? grads.map((g) => g.name) : Object.keys(grads);
    const gradient = (i: number): Tensor | undefined => (Array.isArray(grads) ? grads[i]?.tensor : grads[names[i]!]);
    const variables = names.map((n) => engine().registeredVariables[n]);
    const fusable = getKernel(ADAM, getBackend()) !== undefined && simdKernels(engine().backend) !== undefined && variables.every((v, i) => v && v.dtype === 'float32' && (gradient(i)?.dtype ?? 'float32') === 'float32');
    if (!fusable) return original.call(this, grads);
    // 1 − β^t as tfjs computes it (sub(1, accBeta) in float32).
    const ob1 = tidy(() => sub(1, this.accBeta1).dataSync()[0]!);
    const ob2 = tidy(() => sub(1, this.accBeta2).dataSync()[0]!);
    const attrs: AdamAttrs = { b1: this.beta1, c1: 1 - this.beta1, b2: this.beta2, c2: 1 - this.beta2, ob1, ob2, nlr: -this.learningRate, eps: this.epsilon };
    names.forEach((name, i) => {
      const value = variables[i]!;
      this.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tidy(() => zerosLike(value).variable(false)) };
      this.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tidy(() => zerosLike(value).variable(false)) };
      const g = gradient(i);
      if (g == null) return;
      const m = this.accumulatedFirstMoment[i]!.variable;
      const v = this.accumulatedSecondMoment[i]!.variable;
      tidy(() => {
        const [x2, m2, v2] = engine().runKernel(ADAM, { x: value, m, v, g }, attrs as unknown as NamedAttrMap) as Tensor[];
        m.assign(m2!);
        v.assign(v2!);
        value.assign(x2!);
      });
    });
    tidy(() => {
      this.accBeta1.assign(mul(this.accBeta1, this.beta1));
      this.accBeta2.assign(mul(this.accBeta2, this.beta2));
    });
    this.incrementIterations();
  };
  patched = true;
}
