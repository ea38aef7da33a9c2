/**
 * One optimizer step with gradient accumulation, the loss, and the optimizers.
 *
 * Gradient accumulation: each micro-batch's gradients (tf.variableGrads) are weighted by its share
 * of the step's images (1/k for k equal micro-batches), summed, and applied once — the same update
 * as one batch of k × batch images (BatchNormalization still sees the micro-batch).
 */
import type { OptimizerName } from '../../core/shared/model';
import { tf } from '../tf';

export function makeOptimizer(name: OptimizerName, learningRate: number): tf.Optimizer {
  switch (name) {
    case 'sgd':
      return tf.train.sgd(learningRate);
    case 'momentum':
      return tf.train.momentum(learningRate, 0.9);
    case 'adam':
      return tf.train.adam(learningRate);
    case 'rmsprop':
      return tf.train.rmsprop(learningRate);
  }
}

/** Sparse softmax cross-entropy from logits, mean over the batch. */
export function sparseSoftmaxCrossEntropy(logits: tf.Tensor, labels: tf.Tensor, numClasses: number): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, numClasses);
    const logp = tf.logSoftmax(logits as tf.Tensor2D);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logp), -1))) as tf.Scalar;
  });
}

function correctCount(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), tf.cast(labels, 'int32')), 'float32')) as tf.Scalar);
}

export interface MicroBatch {
  /** [n, h, w, c] float32 */
  x: tf.Tensor;
  /** [n] int32 class indices */
  y: tf.Tensor;
}

export interface StepResult {
  /** Mean loss over the step's images. */
  loss: number;
  /** Fraction of the step's images classified correctly (before the update). */
  accuracy: number;
  images: number;
}

/** The trainable tf.Variables of a model (what the optimizer updates). */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/**
 * Forward + backward over each micro-batch, gradients averaged (weighted by images), one
 * optimizer.applyGradients. Disposes every intermediate tensor; the caller owns (and disposes)
 * the micro-batch tensors.
 */
export async function trainStep(model: tf.LayersModel, optimizer: tf.Optimizer, micro: MicroBatch[], numClasses: number): Promise<StepResult> {
  const total = micro.reduce((n, m) => n + (m.x.shape[0] ?? 0), 0);
  const vars = trainableVariables(model);
  let acc: Record<string, tf.Tensor> | null = null;
  const lossParts: tf.Scalar[] = [];
  const correctParts: tf.Scalar[] = [];
  try {
    for (const { x, y } of micro) {
      const weight = (x.shape[0] ?? 0) / total;
      let correct: tf.Scalar | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const logits = model.apply(x, { training: true }) as tf.Tensor;
        correct = tf.keep(correctCount(logits, y));
        return sparseSoftmaxCrossEntropy(logits, y, numClasses);
      }, vars);
      correctParts.push(correct!);
      lossParts.push(tf.tidy(() => tf.mul(value, weight)));
      value.dispose();
      if (acc === null && micro.length === 1) {
        acc = grads; // one micro-batch: weight is 1
        continue;
      }
      const prev: Record<string, tf.Tensor> | null = acc;
      const next: Record<string, tf.Tensor> = {};
      for (const [name, g] of Object.entries(grads)) {
        next[name] = tf.tidy(() => (prev?.[name] ? tf.add(prev[name], tf.mul(g, weight)) : tf.mul(g, weight)));
      }
      tf.dispose(grads);
      if (prev) tf.dispose(prev);
      acc = next;
    }
    if (acc) optimizer.applyGradients(acc as tf.NamedTensorMap);
    const [lossT, correctT] = tf.tidy(() => [tf.addN(lossParts), tf.addN(correctParts)]);
    const [lossV, correctV] = await Promise.all([lossT!.data(), correctT!.data()]);
    tf.dispose([lossT!, correctT!]);
    return { loss: lossV[0]!, accuracy: correctV[0]! / total, images: total };
  } finally {
    if (acc) tf.dispose(acc);
    tf.dispose(lossParts);
    tf.dispose(correctParts);
  }
}

/** Loss and correct count of one batch without training (validation). */
export async function evaluateBatch(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, numClasses: number): Promise<{ lossSum: number; correct: number; images: number }> {
  const [l, c] = tf.tidy(() => {
    const logits = model.apply(x, { training: false }) as tf.Tensor;
    return [sparseSoftmaxCrossEntropy(logits, y, numClasses), correctCount(logits, y)];
  });
  const [lv, cv] = await Promise.all([l!.data(), c!.data()]);
  tf.dispose([l!, c!]);
  const n = x.shape[0] ?? 0;
  return { lossSum: lv[0]! * n, correct: cv[0]!, images: n };
}
