/**
 * Early freeing during the backward pass (src/trainer/kernels/backprop-memory.ts): the same
 * gradients as tfjs's own backward pass, a lower peak, no leaks, and nothing of the caller's freed.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/trainer/tf';
import { initBackend } from '../../src/trainer/backend';
import { backpropMemory } from '../../src/trainer/kernels/backprop-memory';
import { mobilenetV2, resnetSmall } from '../../src/trainer/models/zoo';

before(async () => {
  await initBackend('wasm');
});

/** Gradients of all trainable weights. */
async function weightGrads(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, freeEarly: boolean): Promise<{ grads: Float32Array[] }> {
  backpropMemory.freeEarly = freeEarly;
  try {
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const ts = tf.tidy(() => {
      const { grads, value } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
      value.dispose();
      return vars.map((v) => grads[v.name]!);
    });
    const grads = await Promise.all(ts.map(async (t) => (await t.data()) as Float32Array));
    tf.dispose(ts);
    return { grads };
  } finally {
    backpropMemory.freeEarly = true;
  }
}

/** Bytes of the wasm heap (it grows to the peak of what was ever alive and never shrinks). */
function heapBytes(): number {
  return (tf.backend() as unknown as { wasm: { wasmMemory: WebAssembly.Memory } }).wasm.wasmMemory.buffer.byteLength;
}

describe('freeing activations and gradients during the backward pass', () => {
  it('mobilenet-v2: bit-identical weight gradients, no tensor leaked, a smaller wasm heap', async () => {
    await tf.setBackend('wasm');
    const model = mobilenetV2([64, 64, 3], 4, 0.5);
    const x = tf.randomUniform([16, 64, 64, 3], 0, 255, 'float32', 3);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0], 'int32'), 4);
    // Early freeing first: the heap grows to its peak; then tfjs's own backward has to grow it further.
    const heap0 = heapBytes();
    const tensors = tf.memory().numTensors;
    const got = await weightGrads(model, x, y, true);
    assert.equal(tf.memory().numTensors, tensors, 'tensors leaked');
    const heap1 = heapBytes();
    const ref = await weightGrads(model, x, y, false);
    const heap2 = heapBytes();
    const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
    console.log(`  wasm heap ${mib(heap0)} MiB → ${mib(heap1)} MiB with early freeing → ${mib(heap2)} MiB without`);
    assert.ok(heap2 - heap0 > 1.25 * (heap1 - heap0), 'the heap grew less with early freeing');
    assert.equal(got.grads.length, ref.grads.length);
    got.grads.forEach((g, i) => assert.deepEqual(g, ref.grads[i], `gradient ${i}`));
    tf.dispose([x, y]);
    model.dispose();
  });

  it('resnet-small (Add, Concatenate-free residuals): bit-identical weight gradients, no tensor leaked', async () => {
    await tf.setBackend('wasm');
    const model = resnetSmall([16, 16, 3], 4, 1);
    const x = tf.randomUniform([4, 16, 16, 3], 0, 255, 'float32', 3);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 4);
    const ref = await weightGrads(model, x, y, false);
    const tensors = tf.memory().numTensors;
    const got = await weightGrads(model, x, y, true);
    assert.equal(tf.memory().numTensors, tensors, 'tensors leaked');
    got.grads.forEach((g, i) => assert.deepEqual(g, ref.grads[i], `gradient ${i}`));
    tf.dispose([x, y]);
    model.dispose();
  });

  it("leaves the caller's dy and inputs alone, and gradient functions that pass dy or a saved tensor on", async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor([1, -2, 3, 4], [2, 2]);
    const dy = tf.tensor([1, 2, 3, 4], [2, 2]);
    // A customGrad whose gradient is dy itself (identity), then one that returns a saved tensor.
    type Args = (tf.Tensor | tf.GradSaveFunc)[];
    const ident = tf.customGrad(((...[a]: Args) => ({ value: tf.mul(a as tf.Tensor, 1), gradFunc: (g: tf.Tensor) => g })) as Parameters<typeof tf.customGrad>[0]);
    const savedGrad = tf.customGrad(((...[a, save]: Args) => {
      const two = tf.fill((a as tf.Tensor).shape, 2);
      (save as tf.GradSaveFunc)([two]);
      return { value: tf.mul(a as tf.Tensor, two), gradFunc: (_g: tf.Tensor, saved: tf.Tensor[]) => saved[0]! };
    }) as Parameters<typeof tf.customGrad>[0]);
    const tensors = tf.memory().numTensors;
    const [g] = tf.grads((a: tf.Tensor) => tf.relu(savedGrad(ident(tf.square(a)) as tf.Tensor) as tf.Tensor))([x], dy);
    // d/da relu(2·a²) = 4a where a² > 0, times dy... except savedGrad's gradient ignores dy: 2 · 2a
    assert.deepEqual(Array.from(await g!.data()), [4, -8, 12, 16]);
    assert.deepEqual(Array.from(await dy.data()), [1, 2, 3, 4], "caller's dy still readable");
    assert.deepEqual(Array.from(await x.data()), [1, -2, 3, 4]);
    g!.dispose();
    assert.equal(tf.memory().numTensors, tensors, 'tensors leaked');
    tf.dispose([x, dy]);
  });
});
