/**
 * Gradients of ReLU, ReLU6 and ClipByValue as one pass on the wasm heap, instead of tfjs-core's
 * element-wise compositions: ClipByValue's gradient is GreaterEqual, LessEqual, LogicalAnd,
 * ZerosLike and Select (five kernels, four temporaries), ReLU's Step and Multiply, ReLU6's
 * LessEqual, Step, Multiply, Cast and Multiply. MobileNetV2's ReLU6 layers (ReLU then clip) spent
 * ~15% of a training step there (measured: 35 layers, ~560 ms of a ~3.6 s step).
 *
 * All three are "dy where x lies in a range, else 0":
 *   Relu:         0 <  x            (tfjs: dy · step(x), step(0) = 0)
 *   Relu6:        0 <  x ≤ 6        (tfjs: dy · (x ≤ 6) · step(x))
 *   ClipByValue:  lo ≤ x ≤ hi       (tfjs: x ≥ lo && x ≤ hi ? dy : 0)
 * The kernel BaMaskGrad computes that for float32 tensors on wasm, as one SIMD pass (../simd; a JS
 * loop where SIMD is unavailable). The gradients registered here
 * use it when the active backend is wasm and fall back to tfjs-core's originals anywhere else.
 */
import { getBackend, getGradient, getKernel, registerGradient, type GradConfig, type KernelConfig, type KernelFunc, type NamedAttrMap, type Tensor, type TensorInfo } from '../tf';
import { engine } from '../tf';
import { simdKernels } from '../simd';
import { heapOffset, sizeOf, type WasmBackendLike } from './util';

export const MASK_GRAD = 'BaMaskGrad';

interface MaskAttrs {
  lo: number;
  hi: number;
  /** true: x must be > lo (ReLU's step); false: x ≥ lo. */
  loExclusive: boolean;
}

export const maskGrad: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as WasmBackendLike;
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  const { lo, hi, loExclusive } = attrs as unknown as MaskAttrs;
  const out = backend.makeOutput(x.shape, 'float32');
  const simd = simdKernels(backend);
  if (simd) {
    simd.maskGrad(heapOffset(backend, dy), heapOffset(backend, x), heapOffset(backend, out), sizeOf(x.shape), lo, hi, loExclusive ? 1 : 0);
    return out;
  }
  // Views after the allocation (growing wasm memory detaches older views).
  const xv = backend.typedArrayFromHeap(x) as Float32Array;
  const gv = backend.typedArrayFromHeap(dy) as Float32Array;
  const ov = backend.typedArrayFromHeap(out) as Float32Array;
  const n = ov.length;
  // Branch-free (a multiply by the 0/1 mask): on real activations the comparison is unpredictable
  // and the branchy loop measured ~7× slower. ReLU/ReLU6 keep tfjs's NaN for a NaN input
  // (step(NaN) = NaN: a diverged run must stay detectable; that test is always predicted right).
  // ClipByValue differs from tfjs's select only where dy is ±Infinity or NaN outside the range.
  if (loExclusive) {
    for (let i = 0; i < n; i++) {
      const v = xv[i]!;
      ov[i] = v === v ? gv[i]! * (+(v > lo) * +(v <= hi)) : Number.NaN;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = xv[i]!;
      ov[i] = gv[i]! * (+(v >= lo) * +(v <= hi));
    }
  }
  return out;
};

export const maskGradConfig: KernelConfig = { kernelName: MASK_GRAD, backendName: 'wasm', kernelFunc: maskGrad };

function fused(dy: Tensor, x: Tensor, attrs: MaskAttrs): Tensor | undefined {
  if (dy.dtype !== 'float32' || x.dtype !== 'float32' || !getKernel(MASK_GRAD, getBackend())) return undefined;
  return engine().runKernel(MASK_GRAD, { dy, x }, attrs as unknown as NamedAttrMap) as Tensor;
}

function override(kernelName: string, mask: (attrs: NamedAttrMap) => MaskAttrs): void {
  const original = getGradient(kernelName);
  if (!original || (original as { baFused?: true }).baFused) return;
  const config: GradConfig & { baFused: true } = {
    kernelName,
    inputsToSave: ['x'],
    baFused: true,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as Tensor[];
      const d = dy as Tensor;
      return { x: () => fused(d, x!, mask(attrs)) ?? (original.gradFunc(dy, saved, attrs)['x']!() as Tensor) };
    },
  };
  registerGradient(config);
}

/** Replaces (once) the gradients of Relu, Relu6 and ClipByValue with ones that use BaMaskGrad on wasm. */
export function registerMaskGradients(): void {
  override('Relu', () => ({ lo: 0, hi: Number.POSITIVE_INFINITY, loExclusive: true }));
  override('Relu6', () => ({ lo: 0, hi: 6, loExclusive: true }));
  override('ClipByValue', (a) => ({ lo: Number(a['clipValueMin']), hi: Number(a['clipValueMax']), loExclusive: false }));
}
