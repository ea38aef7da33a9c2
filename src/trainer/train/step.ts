/**
 * One optimizer step with gradient accumulation, the loss, and the optimizers.
 *
 * Gradient accumulation: each micro-batch's gradients (tf.variableGrads) are weighted by its share
 * of the step's images (1/k for k equal micro-batches), summed, and applied once — the same update
 * as one batch of k × batch images (BatchNormalization still sees the micro-batch).
 */
import type { Head } from '../../core/shared/head';
import type { OptimizerName } from '../../core/shared/model';
import { logitsOf } from '../models/head';
import { tf } from '../tf';

/**
 * What the step's loss is computed for: a Head (../../core/shared/head.ts), or a number of classes
 * for a model that outputs logits (the zoo models; tests and benchmarks).
 */
export type LossHead = Head | number;

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

/**
 * Binary cross-entropy from one logit per image (labels 0/1), mean over the batch, in the stable
 * form max(z, 0) − z·y + log(1 + e^−|z|) (TensorFlow's sigmoid_cross_entropy_with_logits).
 */
export function sigmoidCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const z = tf.reshape(logits, [-1]);
    const y = tf.cast(labels, 'float32');
    return tf.mean(tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))))) as tf.Scalar;
  });
}

/** The loss of the head from its logits (see logitsOf): the one loss the run, validation and the probe use. */
export function headLoss(head: LossHead, logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  if (typeof head !== 'number' && head.loss === 'binary') return sigmoidCrossEntropy(logits, labels);
  return sparseSoftmaxCrossEntropy(logits, labels, typeof head === 'number' ? head : head.units);
}

/** Images classified correctly: argmax of the logits, or logit > 0 (probability > 0.5) for one unit. */
function correctCount(head: LossHead, logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const predicted = typeof head !== 'number' && head.loss === 'binary' ? tf.cast(tf.greater(tf.reshape(logits, [-1]), 0), 'int32') : tf.argMax(logits, -1);
    return tf.sum(tf.cast(tf.equal(predicted, tf.cast(labels, 'int32')), 'float32')) as tf.Scalar;
  });
}

/** The model's logits for the head: its output, or its last layer's before the softmax/sigmoid. */
export function forward(model: tf.LayersModel, head: LossHead, x: tf.Tensor, training: boolean): tf.Tensor {
  return logitsOf(model, typeof head === 'number' ? undefined : head, x, training);
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
  /** With `measureNoise`: |G_micro|² averaged over the micro-batches and |G_step|² of their average (the noise scale's inputs). */
  gradientNorms?: { small: number; big: number };
}

function squaredNorm(grads: Record<string, tf.Tensor>): number {
  return tf.tidy(() => tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))).dataSync()[0]!;
}

/** The trainable tf.Variables of a model (what the optimizer updates). */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/**
 * Forward + backward over each micro-batch, gradients averaged (weighted by images), one
 * optimizer.applyGradients. Disposes every intermediate tensor; the caller owns (and disposes)
 * the micro-batch tensors. `measureNoise` also returns the squared gradient norms of the
 * micro-batches and of the step (McCandlish et al.'s two batch sizes, from gradients it has anyway).
 */
export async function trainStep(model: tf.LayersModel, optimizer: tf.Optimizer, micro: MicroBatch[], head: LossHead, measureNoise = false): Promise<StepResult> {
  const total = micro.reduce((n, m) => n + (m.x.shape[0] ?? 0), 0);
  const vars = trainableVariables(model);
  let acc: Record<string, tf.Tensor> | null = null;
  const lossParts: tf.Scalar[] = [];
  const correctParts: tf.Scalar[] = [];
  let smallSum = 0;
  try {
    for (const { x, y } of micro) {
      const weight = (x.shape[0] ?? 0) / total;
      let correct: tf.Scalar | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const logits = forward(model, head, x, true);
        correct = tf.keep(correctCount(head, logits, y));
        return headLoss(head, logits, y);
      }, vars);
      correctParts.push(correct!);
      lossParts.push(tf.tidy(() => tf.mul(value, weight)));
      value.dispose();
      if (measureNoise) smallSum += squaredNorm(grads);
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
    const gradientNorms = measureNoise && acc ? { small: smallSum / micro.length, big: squaredNorm(acc) } : undefined;
    if (acc) optimizer.applyGradients(acc as tf.NamedTensorMap);
    const [lossT, correctT] = tf.tidy(() => [tf.addN(lossParts), tf.addN(correctParts)]);
    const [lossV, correctV] = await Promise.all([lossT!.data(), correctT!.data()]);
    tf.dispose([lossT!, correctT!]);
    return { loss: lossV[0]!, accuracy: correctV[0]! / total, images: total, ...(gradientNorms ? { gradientNorms } : {}) };
  } finally {
    if (acc) tf.dispose(acc);
    tf.dispose(lossParts);
    tf.dispose(correctParts);
  }
}

/** Loss and correct count of one batch without training (validation). */
export async function evaluateBatch(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, head: LossHead): Promise<{ lossSum: number; correct: number; images: number }> {
  const [l, c] = tf.tidy(() => {
    const logits = forward(model, head, x, false);
    return [headLoss(head, logits, y), correctCount(head, logits, y)];
  });
  const [lv, cv] = await Promise.all([l!.data(), c!.data()]);
  tf.dispose([l!, c!]);
  const n = x.shape[0] ?? 0;
  return { lossSum: lv[0]! * n, correct: cv[0]!, images: n };
}
