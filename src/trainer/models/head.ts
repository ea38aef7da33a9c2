/**
 * The model's head as the trainer sees it: the last layer read from a built model, the decision
 * (../../core/shared/head.ts) turned into a BadInputError when it fails, and the logits the losses
 * take — the model's output, or the last layer's output before its softmax/sigmoid.
 */
import { decideHead, type Head, type LastLayer } from '../../core/shared/head';
import { BadInputError } from '../errors';
import { tf } from '../tf';

/** The layer that makes the model's (single) output; a nested model's own last layer. */
function outputLayer(model: tf.LayersModel): tf.layers.Layer {
  const layer = (model.outputs[0] as tf.SymbolicTensor | undefined)?.sourceLayer as tf.layers.Layer | undefined;
  if (!layer) return model.layers[model.layers.length - 1] as tf.layers.Layer;
  return layer instanceof tf.LayersModel ? outputLayer(layer) : layer;
}

/** What the head decision needs to know about the model's last layer. */
export function lastLayerOf(model: tf.LayersModel): LastLayer {
  const layer = outputLayer(model);
  const config = layer.getConfig();
  const shape = (model.outputs[0] as tf.SymbolicTensor).shape;
  return {
    name: layer.name,
    className: layer.getClassName(),
    ...(typeof config.activation === 'string' ? { activation: config.activation } : {}),
    units: shape[shape.length - 1] ?? 0,
    rank: shape.length - 1,
  };
}

/** The head of a built model, or a BadInputError naming `source` (the model file or zoo name). */
export function headOf(model: tf.LayersModel, numClasses: number, fileLoss: unknown, source: string): { head: Head; warnings: string[] } {
  const d = decideHead(lastLayerOf(model), numClasses, fileLoss, source);
  if ('error' in d) throw new BadInputError(d.error);
  return d;
}

/** tfjs layers call `activation.apply` and fuse by `getClassName()`: a linear stand-in. */
const LINEAR = { apply: (x: tf.Tensor) => x, getClassName: () => 'linear' };

/**
 * The logits for `x`: with a softmax/sigmoid head, the last layer's activation is replaced by the
 * identity for this one call (synchronous, so nothing else sees it) — the saved model keeps it.
 */
export function logitsOf(model: tf.LayersModel, head: Head | undefined, x: tf.Tensor, training: boolean): tf.Tensor {
  if (!head || head.logits === 'output') return model.apply(x, { training }) as tf.Tensor;
  const last = outputLayer(model);
  const layer = last as unknown as Record<string, unknown>;
  // A Softmax layer keeps its function as `softmax`; Dense, Conv2D and Activation as `activation`.
  const field = last.getClassName() === 'Softmax' ? 'softmax' : 'activation';
  const saved = layer[field];
  layer[field] = field === 'softmax' ? LINEAR.apply : LINEAR;
  try {
    return model.apply(x, { training }) as tf.Tensor;
  } finally {
    layer[field] = saved;
  }
}
