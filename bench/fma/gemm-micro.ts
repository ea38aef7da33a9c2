/**
 * Feasibility of FMA (WebAssembly relaxed SIMD) for the Conv2D filter gradient's matrix product:
 * our AssemblyScript GEMM microkernels (./gen.mjs) with f32x4.relaxed_madd and with mul+add,
 * against XNNPACK's BatchMatMul (tf.matMul on the wasm backend), on the tutorial CNN's
 * filter-gradient shapes at 64×64 batch 32, interleaved in one process. Threads for XNNPACK from
 * BATCH_ADVISOR_WASM_THREADS (ours is single-threaded).
 *
 *   node --import tsx bench/fma/gemm-micro.ts [--reps N] [--variants 4x2,6x2,...]
 */
import v8 from 'node:v8';
import { initBackend } from '../../src/trainer/backend';
import { runtimeFromEnv, setRuntime } from '../../src/trainer/runtime';
import { tf } from '../../src/trainer/tf';
import { flag } from '../util';

if (!process.execArgv.includes('--experimental-wasm-relaxed-simd')) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
setRuntime(runtimeFromEnv(process.env));

const SHAPES: [number, number, number][] = [
  [27, 131072, 16],
  [288, 32768, 32],
  [288, 8192, 64],
];

type Gemm = (a: number, b: number, c: number, m: number, k: number, n: number) => void;

async function main(): Promise<void> {
  const reps = Number(flag('reps') ?? '5');
  const variants = (flag('variants') ?? '4x2a512,2x4a512').split(',').map((v) => {
    const [, R, V, order, KC] = /^(\d+)x(\d+)([ab])(\d+)$/.exec(v)!;
    return [Number(R), Number(V), order!, Number(KC)] as const;
  });
  tf.enableProdMode();
  const be = await initBackend('wasm');
  const backend = tf.backend() as unknown as { wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory: WebAssembly.Memory } }; typedArrayFromHeap(t: tf.TensorInfo): Float32Array };
  const memory = (backend.wasm.wasmMemory ?? backend.wasm.asm?.memory)!;
  const shared = memory.buffer instanceof SharedArrayBuffer;
  const { source, compile } = await import('./gen.mjs');
  const src = source(variants);
  const common = shared ? ['--sharedMemory', '--enable', 'threads'] : [];
  const mods: Record<string, Record<string, Gemm>> = {};
  for (const [tag, extra] of [['fma', ['--enable', 'relaxed-simd']], ['muladd', []]] as const) {
    const bin = await compile(src, [...common, ...extra]);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bin), { env: { memory } });
    mods[tag] = inst.exports as unknown as Record<string, Gemm>;
  }
  console.log(`backend ${JSON.stringify(be)} threads=${process.env.BATCH_ADVISOR_WASM_THREADS ?? 'default'} shared=${shared}`);
  for (const [m, k, n] of SHAPES) {
    const A = tf.randomUniform([m, k], -1, 1);
    const B = tf.randomUniform([k, n], -1, 1);
    const ref = tf.matMul(A, B);
    const refData = ref.dataSync();
    const C = tf.zeros([m, n]);
    const off = (t: tf.Tensor): number => backend.typedArrayFromHeap(t as unknown as tf.TensorInfo).byteOffset;
    const flops = 2 * m * k * n;
    const times = new Map<string, number[]>();
    const add = (key: string, ms: number): void => void (times.get(key) ?? times.set(key, []).get(key)!).push(ms);
    const ours = (tag: string, name: string): number => {
      const cv = backend.typedArrayFromHeap(C as unknown as tf.TensorInfo);
      cv.fill(0);
      const t0 = performance.now();
      mods[tag]![name]!(off(A), off(B), off(C), m, k, n);
      const ms = performance.now() - t0;
      const out = backend.typedArrayFromHeap(C as unknown as tf.TensorInfo);
      let err = 0;
      for (let i = 0; i < out.length; i++) err = Math.max(err, Math.abs(out[i]! - refData[i]!) / (1 + Math.abs(refData[i]!)));
      if (err > 1e-3) throw new Error(`${tag} ${name} wrong: ${err}`);
      return ms;
    };
    for (let r = 0; r < reps + 1; r++) {
      // Interleaved: XNNPACK, then each of ours, every repetition (the first is a warm-up).
      const t0 = performance.now();
      const g = tf.matMul(A, B);
      g.dataSync();
      const xms = performance.now() - t0;
      g.dispose();
      if (r > 0) add('xnnpack', xms);
      for (const [R, V, order, KC] of variants) {
        for (const tag of ['fma', 'muladd']) {
          const ms = ours(tag, `gemm_${R}x${V}${order}${KC}`);
          if (r > 0) add(`${tag} ${R}x${4 * V}${order}${KC}`, ms);
        }
      }
    }
    const med = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1]!;
    const x = med(times.get('xnnpack')!);
    console.log(`\nM=${m} K=${k} N=${n} (${(flops / 1e6).toFixed(0)} MFLOP), median of ${reps}`);
    for (const [key, ts] of times) {
      const t = med(ts);
      console.log(`  ${key.padEnd(14)} ${t.toFixed(2).padStart(8)} ms  ${(flops / t / 1e6).toFixed(1).padStart(6)} GFLOP/s  ${(x / t).toFixed(2)}× xnnpack`);
    }
    tf.dispose([A, B, ref, C]);
  }
}

void main();
