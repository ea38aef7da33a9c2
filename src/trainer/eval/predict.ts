/**
 * The predictions of a model on labelled batches, with the loss computed as training computes it
 * (the head's loss from the logits, ../train/step.ts). A softmax/linear head predicts the argmax and
 * is as confident as its softmax probability; a one-unit (binary) head predicts class 1 when its
 * logit is > 0 and is as confident as sigmoid(z) or 1 − sigmoid(z).
 */
import type { Head } from '../../core/shared/head';
import type { Prediction } from '../../core/shared/evaluation';
import type { Batch } from '../data/pipeline';
import { tf } from '../tf';
import { forward, headLoss } from '../train/step';

export interface BatchPredictions {
  predictions: Prediction[];
  /** Σ of the per-image loss over the batch. */
  lossSum: number;
}

/** Predicted class and its probability for each image of a batch of logits. */
function classify(head: Head, logits: tf.Tensor): { predicted: tf.Tensor; confidence: tf.Tensor } {
  if (head.loss === 'binary') {
    const z = tf.reshape(logits, [-1]);
    const p = tf.sigmoid(z);
    const positive = tf.greater(z, 0);
    return { predicted: tf.cast(positive, 'int32'), confidence: tf.where(positive, p, tf.sub(1, p)) };
  }
  const probs = tf.softmax(logits as tf.Tensor2D);
  return { predicted: tf.argMax(probs, -1), confidence: tf.max(probs, -1) };
}

export async function predictBatch(model: tf.LayersModel, head: Head, b: Batch): Promise<BatchPredictions> {
  const [loss, predicted, confidence] = tf.tidy(() => {
    const x = tf.tensor4d(b.x, b.shape, 'float32');
    const y = tf.tensor1d(b.y, 'int32');
    const logits = forward(model, head, x, false);
    const c = classify(head, logits);
    return [headLoss(head, logits, y), c.predicted, c.confidence];
  });
  try {
    const [l, p, c] = await Promise.all([loss!.data(), predicted!.data(), confidence!.data()]);
    const predictions = b.paths.map((path, i) => ({ path, label: b.y[i]!, predicted: p[i]!, confidence: c[i]! }));
    return { predictions, lossSum: l[0]! * b.size };
  } finally {
    tf.dispose([loss!, predicted!, confidence!]);
  }
}
