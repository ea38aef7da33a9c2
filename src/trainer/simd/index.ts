/**
 * Our WebAssembly SIMD kernels (./assembly/kernels.ts, compiled by scripts/build-simd.mjs into
 * ./binary.ts), instantiated on tfjs-backend-wasm's own memory: they read and write tensors where
 * the backend keeps them, by byte offset, with no copies. They do the training work XNNPACK has
 * no kernel for — BatchNormalization, the ReLU/ReLU6/clip gradients, the depthwise gradients, the
 * 2×2 max-pool gradient, the Conv2D filter gradient's patch matrix and 1×1 product, Adam's update —
 * which JS loops over the heap (or chains of small tfjs kernels) did several times slower.
 *
 * `simdKernels(backend)` returns undefined where they cannot run (a backend without a reachable
 * memory, or a runtime without WebAssembly SIMD, or BATCH_ADVISOR_SIMD=0); callers then keep their
 * JS path.
 *
 * Where the runtime accepts WebAssembly relaxed SIMD, the module is the relaxed build (`fma` true):
 * the same kernels with their multiply-adds fused (f32x4.relaxed_madd, vfmadd on x64 with FMA3).
 * Node 20 (V8 11.3) has relaxed SIMD behind --experimental-wasm-relaxed-simd: we set that flag at
 * run time (v8.setFlagsFromString, before compiling the module; it applies to modules compiled
 * afterwards), not on the trainer's command line, where a runtime whose V8 does not know the flag
 * (a later Node, or an editor's own runtime) would refuse to start ("bad option", exit 9). Anything
 * failing there keeps the plain SIMD build. BATCH_ADVISOR_RELAXED_SIMD=0 keeps it too.
 */
import { setFlagsFromString } from 'node:v8';
import { runtimeSettings } from '../runtime';
import { PLAIN, PLAIN_RELAXED, SHARED, SHARED_RELAXED } from './binary';

export interface SimdKernels {
  channelSums(a: number, ashift: number, b: number, bshift: number, c: number, rows: number, s: number, q: number): void;
  normalize(x: number, y: number, mh: number, ml: number, scale: number, beta: number, c: number, rows: number): void;
  bnGradApply(dy: number, x: number, dx: number, a: number, k: number, mu: number, e: number, c: number, rows: number): void;
  maskGrad(dy: number, x: number, out: number, n: number, lo: number, hi: number, loExclusive: number): void;
  patchMatrix(xc: number, dst: number, n: number, h: number, w: number, ci: number, n0: number, cnt: number, oh: number, ow: number, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number, top: number, left: number): void;
  adam(x: number, m: number, v: number, g: number, xOut: number, mOut: number, vOut: number, n: number, b1: number, c1: number, b2: number, c2: number, ob1: number, ob2: number, nlr: number, eps: number): void;
  pointwiseFilterGrad(x: number, dy: number, out: number, rows: number, ci: number, co: number): void;
  depthwiseInputGrad(dy: number, w: number, dx: number, n: number, h: number, wd: number, c: number, oh: number, ow: number, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number, pT: number, pL: number): void;
  maxPool2x2Grad(x: number, dy: number, dx: number, n: number, h: number, w: number, c: number): void;
  depthwiseFilterGrad(x: number, dy: number, out: number, n: number, h: number, w: number, c: number, oh: number, ow: number, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number, pT: number, pL: number): void;
  /** C[m, n] += A[m, k]·B[k, n], row-major, n a multiple of 4. */
  gemm(a: number, b: number, c: number, m: number, k: number, n: number): void;
  /** Whether this is the relaxed-SIMD build (fused multiply-add). */
  readonly fma: boolean;
}

/** The part of tfjs-backend-wasm's emscripten module we need. */
interface EmscriptenLike {
  wasmMemory?: WebAssembly.Memory;
  asm?: { memory?: WebAssembly.Memory };
}

const cache = new WeakMap<object, SimdKernels | null>();

export function simdKernels(backend: object): SimdKernels | undefined {
  const hit = cache.get(backend);
  if (hit !== undefined) return hit ?? undefined;
  const k = instantiate(backend);
  cache.set(backend, k ?? null);
  return k;
}

function instantiate(backend: object): SimdKernels | undefined {
  if (!runtimeSettings().simd) return undefined;
  const em = (backend as { wasm?: EmscriptenLike }).wasm;
  const memory = em?.wasmMemory ?? em?.asm?.memory;
  if (!em || !(memory instanceof WebAssembly.Memory)) return undefined;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  if (runtimeSettings().relaxedSimd !== false && enableRelaxedSimd(shared ? SHARED_RELAXED : PLAIN_RELAXED)) {
    try {
      return kernels(new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(shared ? SHARED_RELAXED : PLAIN_RELAXED, 'base64')), { env: { memory } }), true);
    } catch {
      // The plain build below.
    }
  }
  try {
    return kernels(new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(shared ? SHARED : PLAIN, 'base64')), { env: { memory } }), false);
  } catch {
    return undefined; // no SIMD in this runtime, or a memory whose limits we do not match
  }
}

// The exports are the kernels themselves (the interface above lists their signatures).
function kernels(instance: WebAssembly.Instance, fma: boolean): SimdKernels {
  return { ...(instance.exports as unknown as Omit<SimdKernels, 'fma'>), fma };
}

const RELAXED_FLAG = '--experimental-wasm-relaxed-simd';

/** Whether the runtime accepts the relaxed-SIMD module, after setting V8's flag where it does not yet. */
function enableRelaxedSimd(base64: string): boolean {
  const binary = Buffer.from(base64, 'base64');
  if (WebAssembly.validate(binary)) return true;
  // Only a V8 that knows the flag (an unknown one prints an error and is ignored).
  if (!process.versions.v8 || !/^11\./.test(process.versions.v8)) return false;
  try {
    setFlagsFromString(RELAXED_FLAG);
  } catch {
    return false;
  }
  return WebAssembly.validate(binary);
}
