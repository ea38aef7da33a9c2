/**
 * The model zoo: models the trainer builds by name, plus user models loaded from a tfjs Layers
 * model.json. Every zoo model takes raw pixel values (0–255, float32) and rescales them itself,
 * and ends in a Dense layer that outputs logits (no softmax): train with a from-logits loss.
 * User models keep their own head (softmax, sigmoid or logits): `buildClassifier` decides its loss.
 */
import type { Head } from '../../core/shared/head';
import { ZOO_MODELS, type ModelSpec } from '../../core/shared/model';
import { BadInputError } from '../errors';
import { loadModelFile } from '../model-io';
import { tf } from '../tf';
import { headOf } from './head';

export type InputShape = [number, number, number];

type Sym = tf.SymbolicTensor;

function checkArgs(inputShape: InputShape, numClasses: number): void {
  if (inputShape.length !== 3 || !inputShape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new BadInputError(`input shape must be [height, width, channels] with positive integers; got ${JSON.stringify(inputShape)}`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new BadInputError(`number of classes must be a positive integer; got ${numClasses}`);
}

function apply(layer: tf.layers.Layer, x: Sym | Sym[]): Sym {
  return layer.apply(x) as Sym;
}

/** The Keras image-classification tutorial CNN (tensorflow.org/tutorials/images/classification). */
export function tutorialCnn(inputShape: InputShape, numClasses: number): tf.LayersModel {
  const m = tf.sequential({ name: 'tutorial_cnn' });
  m.add(tf.layers.rescaling({ scale: 1 / 255, inputShape, name: 'rescaling' }));
  for (const [i, filters] of [16, 32, 64].entries()) {
    m.add(tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu', name: `conv2d_${i + 1}` }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2, name: `max_pooling2d_${i + 1}` }));
  }
  m.add(tf.layers.flatten({ name: 'flatten' }));
  m.add(tf.layers.dense({ units: 128, activation: 'relu', name: 'dense_1' }));
  m.add(tf.layers.dense({ units: numClasses, name: 'logits' }));
  return m;
}

/** Keras `_make_divisible`: round channels to a multiple of `divisor`, never dropping below 90%. */
export function makeDivisible(v: number, divisor = 8): number {
  let n = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

/** (expansion t, output channels c, repeats n, first stride s): the MobileNetV2 paper's Table 2. */
const MOBILENET_V2_STAGES: [number, number, number, number][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

function bn(name: string): tf.layers.Layer {
  // Keras applications' settings for MobileNetV2.
  return tf.layers.batchNormalization({ axis: -1, epsilon: 1e-3, momentum: 0.999, name });
}

function relu6(name: string): tf.layers.Layer {
  return tf.layers.reLU({ maxValue: 6, name });
}

/**
 * MobileNetV2 (Sandler et al. 2018) with width multiplier alpha, layer for layer as Keras
 * `applications.MobileNetV2` builds it (same channel rounding, no conv biases, BN eps 1e-3),
 * so at 224×224×3 with 1000 classes it has Keras's 3,538,984 parameters. The full stage table is
 * kept at every input size: small inputs just end with a 1×1 feature map before pooling.
 * Stride-2 depthwise convs use 'same' padding instead of Keras's explicit ZeroPadding2D (same shapes
 * for even sizes, no parameters).
 */
export function mobilenetV2(inputShape: InputShape, numClasses: number, alpha = 1): tf.LayersModel {
  if (!(alpha > 0) || !Number.isFinite(alpha)) throw new BadInputError(`widthMultiplier must be a positive number; got ${alpha}`);
  const input = tf.input({ shape: inputShape, name: 'input' });
  let x = apply(tf.layers.rescaling({ scale: 1 / 127.5, offset: -1, name: 'rescaling' }), input);
  x = apply(tf.layers.conv2d({ filters: makeDivisible(32 * alpha), kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'Conv1' }), x);
  x = apply(bn('bn_Conv1'), x);
  x = apply(relu6('Conv1_relu'), x);
  let blockId = 0;
  for (const [t, c, n, s] of MOBILENET_V2_STAGES) {
    for (let i = 0; i < n; i++) {
      x = invertedResidual(x, { expansion: t, filters: makeDivisible(Math.floor(c * alpha)), stride: i === 0 ? s : 1, blockId });
      blockId++;
    }
  }
  const lastFilters = alpha > 1 ? makeDivisible(1280 * alpha) : 1280;
  x = apply(tf.layers.conv2d({ filters: lastFilters, kernelSize: 1, useBias: false, name: 'Conv_1' }), x);
  x = apply(bn('Conv_1_bn'), x);
  x = apply(relu6('out_relu'), x);
  x = apply(tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }), x);
  const output = apply(tf.layers.dense({ units: numClasses, name: 'logits' }), x);
  return tf.model({ inputs: input, outputs: output, name: `mobilenetv2_${alpha}` });
}

function invertedResidual(input: Sym, o: { expansion: number; filters: number; stride: number; blockId: number }): Sym {
  const inChannels = input.shape[input.shape.length - 1] as number;
  const prefix = o.blockId === 0 ? 'expanded_conv_' : `block_${o.blockId}_`;
  let x = input;
  if (o.blockId > 0) {
    x = apply(tf.layers.conv2d({ filters: o.expansion * inChannels, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}expand` }), x);
    x = apply(bn(`${prefix}expand_BN`), x);
    x = apply(relu6(`${prefix}expand_relu`), x);
  }
  x = apply(tf.layers.depthwiseConv2d({ kernelSize: 3, strides: o.stride, padding: 'same', useBias: false, name: `${prefix}depthwise` }), x);
  x = apply(bn(`${prefix}depthwise_BN`), x);
  x = apply(relu6(`${prefix}depthwise_relu`), x);
  x = apply(tf.layers.conv2d({ filters: o.filters, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}project` }), x);
  x = apply(bn(`${prefix}project_BN`), x);
  if (inChannels === o.filters && o.stride === 1) x = apply(tf.layers.add({ name: `${prefix}add` }), [input, x]);
  return x;
}

/** Basic blocks per stage: 3 gives ResNet-20 (He et al. 2016, §4.2: 6n+2 layers, n = 3). */
export const RESNET_SMALL_BLOCKS = 3;
const RESNET_SMALL_WIDTHS = [16, 32, 64];

/**
 * resnet-small: the CIFAR-style ResNet-20 of He et al. (2016): 3×3 conv stem (16) + BN + ReLU, three
 * stages of 3 basic blocks (16, 32, 64 channels; stride 2 at the start of stages 2 and 3), a 1×1
 * conv + BN projection shortcut where the shape changes (option B), global average pooling, Dense.
 */
export function resnetSmall(inputShape: InputShape, numClasses: number, blocksPerStage = RESNET_SMALL_BLOCKS): tf.LayersModel {
  const conv = (filters: number, kernelSize: number, strides: number, name: string): tf.layers.Layer =>
    tf.layers.conv2d({ filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: 'heNormal', name });
  const norm = (name: string): tf.layers.Layer => tf.layers.batchNormalization({ axis: -1, name });
  const input = tf.input({ shape: inputShape, name: 'input' });
  let x = apply(tf.layers.rescaling({ scale: 1 / 255, name: 'rescaling' }), input);
  x = apply(conv(RESNET_SMALL_WIDTHS[0] as number, 3, 1, 'conv1'), x);
  x = apply(norm('conv1_bn'), x);
  x = apply(tf.layers.reLU({ name: 'conv1_relu' }), x);
  for (const [stage, width] of RESNET_SMALL_WIDTHS.entries()) {
    for (let b = 0; b < blocksPerStage; b++) {
      const name = `stage${stage + 1}_block${b + 1}`;
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const inChannels = x.shape[x.shape.length - 1] as number;
      let y = apply(conv(width, 3, stride, `${name}_conv1`), x);
      y = apply(norm(`${name}_bn1`), y);
      y = apply(tf.layers.reLU({ name: `${name}_relu1` }), y);
      y = apply(conv(width, 3, 1, `${name}_conv2`), y);
      y = apply(norm(`${name}_bn2`), y);
      let shortcut = x;
      if (stride !== 1 || inChannels !== width) {
        shortcut = apply(conv(width, 1, stride, `${name}_proj`), x);
        shortcut = apply(norm(`${name}_proj_bn`), shortcut);
      }
      x = apply(tf.layers.add({ name: `${name}_add` }), [shortcut, y]);
      x = apply(tf.layers.reLU({ name: `${name}_out` }), x);
    }
  }
  x = apply(tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }), x);
  const output = apply(tf.layers.dense({ units: numClasses, name: 'logits' }), x);
  return tf.model({ inputs: input, outputs: output, name: `resnet${6 * blocksPerStage + 2}` });
}

function shapeText(shape: (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** A built model with the head its loss is computed for, and notes for the run log. */
export interface Classifier {
  model: tf.LayersModel;
  head: Head;
  notes: string[];
}

/** Loads a user model.json and checks it takes [h, w, c] images and has a head for numClasses classes. */
async function loadUserModel(path: string, inputShape: InputShape, numClasses: number): Promise<Classifier> {
  const { model, loss, notes } = await loadModelFile(path);
  try {
    if (model.inputs.length !== 1 || model.outputs.length !== 1) {
      throw new BadInputError(`${path}: the model has ${model.inputs.length} inputs and ${model.outputs.length} outputs; expected one image input and one output`);
    }
    const inShape = (model.inputs[0] as Sym).shape;
    const want = [null, ...inputShape];
    if (inShape.length !== 4 || inShape.slice(1).some((d, i) => d !== null && d !== want[i + 1])) {
      throw new BadInputError(
        `${path}: the model expects input ${shapeText(inShape.slice(1))} (height, width, channels) but the config gives ${shapeText(inputShape)}; change imageSize/channels or the model`,
      );
    }
    const { head, warnings } = headOf(model, numClasses, loss, path);
    return { model, head, notes: [...notes, ...warnings] };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Builds (or loads) the model a spec names, with its head. Compile nothing: the trainer brings its optimizer and loss. */
export async function buildClassifier(spec: ModelSpec, inputShape: InputShape, numClasses: number): Promise<Classifier> {
  checkArgs(inputShape, numClasses);
  if (/\.json$/i.test(spec.model)) return loadUserModel(spec.model, inputShape, numClasses);
  const model = buildZooModel(spec, inputShape, numClasses);
  return { model, head: headOf(model, numClasses, undefined, spec.model).head, notes: [] };
}

/** Builds (or loads) the model a spec names. Compile it yourself. */
export async function buildModel(spec: ModelSpec, inputShape: InputShape, numClasses: number): Promise<tf.LayersModel> {
  return (await buildClassifier(spec, inputShape, numClasses)).model;
}

function buildZooModel(spec: ModelSpec, inputShape: InputShape, numClasses: number): tf.LayersModel {
  const name = spec.model;
  switch (name) {
    case 'tutorial-cnn':
      return tutorialCnn(inputShape, numClasses);
    case 'mobilenet-v2':
      return mobilenetV2(inputShape, numClasses, spec.widthMultiplier ?? 1);
    case 'resnet-small':
      return resnetSmall(inputShape, numClasses);
    default:
      throw new BadInputError(`unknown model "${name}": use one of ${ZOO_MODELS.join(', ')}, or a path to a tfjs Layers model.json`);
  }
}
