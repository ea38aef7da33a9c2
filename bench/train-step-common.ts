/**
 * Helpers shared by bench/train-step.ts (our wasm path) and bench/train-step-stock.ts (the stock
 * @tensorflow/tfjs cpu baseline, in its own process). No tfjs import here: each side passes its own.
 */
export const BATCH = 32;
export const SHAPE: [number, number, number] = [64, 64, 3];
export const CLASSES = 10;

export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} wants a positive number`);
  return v;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// Only the API both tfjs copies share, so one helper serves both processes.
export interface TfLike {
  randomUniform(shape: number[], min: number, max: number): unknown;
  oneHot(indices: unknown, depth: number): unknown;
  tensor1d(values: number[], dtype: 'int32'): unknown;
  losses: { softmaxCrossEntropy(y: unknown, p: unknown): unknown };
  train: { adam(lr: number): unknown };
  memory(): { numTensors: number };
}
export interface ModelLike {
  compile(c: { optimizer: unknown; loss: (y: unknown, p: unknown) => unknown }): void;
  trainOnBatch(x: unknown, y: unknown): Promise<number | number[]>;
  predict(x: unknown): { data(): Promise<unknown>; dispose(): void };
}

export function batch(tf: TfLike): { x: unknown; y: unknown } {
  const labels = Array.from({ length: BATCH }, (_, i) => i % CLASSES);
  return { x: tf.randomUniform([BATCH, ...SHAPE], 0, 255), y: tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES) };
}

export function compile(tf: TfLike, model: ModelLike): void {
  model.compile({ optimizer: tf.train.adam(1e-3), loss: (y, p) => tf.losses.softmaxCrossEntropy(y, p) });
}

/** Times `steps` training steps after `warm` warm-up steps, stopping early past `budgetMs`. */
export async function timeSteps(model: ModelLike, x: unknown, y: unknown, warm: number, steps: number, budgetMs = Infinity): Promise<number[]> {
  for (let i = 0; i < warm; i++) await model.trainOnBatch(x, y);
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await model.trainOnBatch(x, y); // returns the loss value: a sync point
    times.push(performance.now() - t0);
    if (performance.now() - start > budgetMs) break;
  }
  return times;
}

export async function timeForward(model: ModelLike, x: unknown, warm: number, steps: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < warm + steps; i++) {
    const t0 = performance.now();
    const p = model.predict(x);
    await p.data();
    p.dispose();
    if (i >= warm) times.push(performance.now() - t0);
  }
  return times;
}

export interface StockResult {
  stepMs: number[];
  warmupMs: number;
}

export interface StockRequest {
  topology: object;
  steps: number;
  seconds: number;
}
