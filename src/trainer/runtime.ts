/**
 * Settings of the trainer process that come from its environment, read once by its entry point
 * (main.ts; tests and benchmarks that load the trainer in-process call `runtimeFromEnv` themselves).
 * What a run needs (its backend and where its package lives) comes in its RunSpec instead.
 * Product code asks `runtimeSettings()`, never `process.env` (a lint rule keeps it so).
 */
export interface TrainerRuntime {
  /** XNNPACK threads for the wasm backend (BATCH_ADVISOR_WASM_THREADS; 1 = the single-threaded build); absent: every core. */
  wasmThreads?: number;
  /** Our SIMD kernels (BATCH_ADVISOR_SIMD=0 turns them off, a debugging switch). */
  simd: boolean;
  /**
   * Their relaxed-SIMD build (fused multiply-add, and the filter gradient's matrix product on our
   * kernel), where the runtime accepts it (BATCH_ADVISOR_RELAXED_SIMD=0 turns it off, a debugging
   * switch); absent: on.
   */
  relaxedSimd?: boolean;
}

let current: TrainerRuntime = { simd: true };

export function runtimeFromEnv(env: Readonly<Record<string, string | undefined>>): TrainerRuntime {
  const threads = Number(env['BATCH_ADVISOR_WASM_THREADS']);
  return {
    ...(Number.isInteger(threads) && threads >= 1 ? { wasmThreads: threads } : {}),
    simd: env['BATCH_ADVISOR_SIMD'] !== '0',
    relaxedSimd: env['BATCH_ADVISOR_RELAXED_SIMD'] !== '0',
  };
}

export function setRuntime(r: TrainerRuntime): void {
  current = r;
}

export function runtimeSettings(): TrainerRuntime {
  return current;
}
