/**
 * Child process of bench/train-step.ts: the same training step on the stock `@tensorflow/tfjs`
 * cpu backend. Kept apart because the umbrella package registers its own backends and kernels,
 * which must not mix with the trainer's (wasm + our kernels). Receives the model topology (JSON)
 * over IPC and answers with the step times.
 */
import * as tf from '@tensorflow/tfjs';
import { batch, compile, timeSteps, type ModelLike, type StockRequest, type StockResult, type TfLike } from './train-step-common';

/** Child: the stock @tensorflow/tfjs cpu backend. */
async function stockChild(): Promise<void> {
  const { topology, steps, seconds } = await new Promise<StockRequest>((res) => process.once('message', res as (m: unknown) => void));
  await tf.setBackend('cpu');
  const model = (await tf.models.modelFromJSON({ modelTopology: topology } as never)) as unknown as ModelLike;
  compile(tf as unknown as TfLike, model);
  const { x, y } = batch(tf as unknown as TfLike);
  const t0 = performance.now();
  await model.trainOnBatch(x, y); // warm-up: one step only, it is slow
  const warmupMs = performance.now() - t0;
  const stepMs = await timeSteps(model, x, y, 0, steps, seconds * 1000);
  process.send!({ stepMs, warmupMs } satisfies StockResult);
}


if (!process.send) {
  console.error('bench/train-step-stock.ts is started by bench/train-step.ts');
  process.exit(2);
}
stockChild().catch((e) => {
  console.error(e);
  process.exit(1);
});
