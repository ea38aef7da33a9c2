/** A model as the trainer describes it, without training: enough for the memory model. */
import type { Head } from './head';

export interface LayerDescription {
  name: string;
  /** tfjs/Keras class name, e.g. "Conv2D", "BatchNormalization". */
  className: string;
  /** Output shape without the batch dimension, e.g. [26, 26, 16]. Multiple outputs are not used by the zoo. */
  outputShape: number[];
  params: number;
  trainableParams: number;
  /** Keras activation of the layer itself ("relu", "linear", …) when it has one. Used by the memory model. */
  activation?: string;
  /** Whether the layer adds a bias (Conv2D, Dense, …). Used by the memory model. */
  useBias?: boolean;
  /** Strides [height, width] of a convolution or pooling layer. Used by the memory model (wasm's strided input gradient). */
  strides?: number[];
  /** Elements of its (first) input without the batch dimension. Used by the memory model for layers whose backward keeps a tensor of their input's size. */
  inputElements?: number;
}

export interface ModelDescription {
  name: string;
  /** [height, width, channels] */
  inputShape: [number, number, number];
  numClasses: number;
  layers: LayerDescription[];
  totalParams: number;
  trainableParams: number;
  /**
   * The head and loss the trainer computes for it (./head.ts). Absent: a logits head of numClasses
   * units. Used by the memory model: a softmax/sigmoid is not computed in training (the loss takes
   * the logits), and a binary loss takes one label per image.
   */
  head?: Head;
}

/** Models the trainer can build by name. */
export const ZOO_MODELS = ['tutorial-cnn', 'mobilenet-v2', 'resnet-small'] as const;
export type ZooModelName = (typeof ZOO_MODELS)[number];

export interface ModelSpec {
  /** A zoo name, or a path to a tfjs Layers model.json. */
  model: string;
  /** MobileNetV2 width multiplier (alpha). Default 1. */
  widthMultiplier?: number;
}

export const OPTIMIZERS = ['sgd', 'momentum', 'adam', 'rmsprop'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

export function isZooModel(name: string): name is ZooModelName {
  return (ZOO_MODELS as readonly string[]).includes(name);
}
