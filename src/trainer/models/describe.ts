/** Describes a model for the memory model: per-layer output shapes and parameter counts. */
import type { Head } from '../../core/shared/head';
import type { LayerDescription, ModelDescription, ModelSpec } from '../../core/shared/model';
import { tf } from '../tf';
import { buildClassifier, type InputShape } from './zoo';

function count(weights: tf.LayerVariable[]): number {
  return weights.reduce((n, w) => n + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
}

function isContainer(layer: tf.layers.Layer): layer is tf.LayersModel {
  return layer instanceof tf.LayersModel;
}

/** The layer's (first) input shape with the batch dimension, when it has one inbound node. */
function inputShapeOf(layer: tf.layers.Layer): (number | null)[] | undefined {
  try {
    const s = layer.input;
    return (Array.isArray(s) ? s[0]?.shape : s.shape) as (number | null)[] | undefined;
  } catch {
    return undefined; // a layer shared by several inbound nodes
  }
}

/** Layers in order, nested models (e.g. a pretrained base inside a user model) flattened, input layers skipped. */
function describeLayers(layers: tf.layers.Layer[], prefix = ''): LayerDescription[] {
  const out: LayerDescription[] = [];
  for (const layer of layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    if (isContainer(layer)) {
      out.push(...describeLayers(layer.layers, `${prefix}${layer.name}/`));
      continue;
    }
    const shape = layer.outputShape;
    const first = (Array.isArray(shape[0]) ? shape[0] : shape) as (number | null)[];
    const config = layer.getConfig();
    const d: LayerDescription = {
      name: prefix + layer.name,
      className: layer.getClassName(),
      outputShape: first.slice(1).map((v) => v ?? 1),
      params: count(layer.weights),
      trainableParams: layer.trainable ? count(layer.trainableWeights) : 0,
    };
    if (typeof config.activation === 'string') d.activation = config.activation;
    // A ReLU layer with a ceiling (MobileNet's ReLU6) is a clip, which costs more memory than a plain ReLU.
    if (d.className === 'ReLU') d.activation = typeof config.maxValue === 'number' ? 'relu6' : 'relu';
    if (typeof config.useBias === 'boolean') d.useBias = config.useBias;
    if (Array.isArray(config.strides) && config.strides.every((v) => typeof v === 'number')) d.strides = config.strides as number[];
    const inShape = inputShapeOf(layer);
    if (inShape && inShape.length > 1) d.inputElements = inShape.slice(1).reduce((a: number, b) => a * (b ?? 1), 1);
    out.push(d);
  }
  return out;
}

/** Describes an already built model (does not dispose it), with the head its loss is computed for. */
export function describeModel(model: tf.LayersModel, name: string, inputShape: InputShape, numClasses: number, head?: Head): ModelDescription {
  const layers = describeLayers(model.layers);
  return {
    ...(head ? { head } : {}),
    name,
    inputShape: [...inputShape],
    numClasses,
    layers,
    totalParams: layers.reduce((n, l) => n + l.params, 0),
    trainableParams: layers.reduce((n, l) => n + l.trainableParams, 0),
  };
}

/** Builds the model a spec names on the cpu backend, describes it, and disposes it. */
export async function describeModelSpec(spec: ModelSpec, inputShape: [number, number, number], numClasses: number): Promise<ModelDescription> {
  if (!tf.engine().backendName) await tf.setBackend('cpu');
  const { model, head } = await buildClassifier(spec, inputShape, numClasses);
  try {
    const name = /\.json$/i.test(spec.model) ? spec.model : spec.model === 'mobilenet-v2' && (spec.widthMultiplier ?? 1) !== 1 ? `mobilenet-v2 (alpha ${spec.widthMultiplier})` : spec.model;
    return describeModel(model, name, inputShape, numClasses, head);
  } finally {
    model.dispose();
  }
}
