/**
 * Which tfjs Layers models the torchrun engine can train: the layer classes its translator
 * (template/tfjs_torch.py) builds in torch.nn, checked from model.json alone (core reads no tfjs),
 * before anything starts. The Python side checks each layer's settings again as it builds it.
 */
import { readFileSync } from 'node:fs';

/** The classes template/tfjs_torch.py translates (its BUILDERS, aliases aside). */
export const TORCH_LAYERS = [
  'Activation', 'Add', 'Average', 'AveragePooling2D', 'BatchNormalization', 'Concatenate', 'Conv2D', 'Dense', 'DepthwiseConv2D', 'Dropout', 'Flatten',
  'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'LeakyReLU', 'MaxPooling2D', 'Maximum', 'Minimum', 'Multiply', 'ReLU', 'ReLU6', 'Rescaling',
  'SeparableConv2D', 'Softmax', 'Subtract', 'ZeroPadding2D',
] as const;

const ALIASES: Record<string, string> = { Conv2d: 'Conv2D', MaxPool2D: 'MaxPooling2D', AvgPool2D: 'AveragePooling2D', GlobalAvgPool2D: 'GlobalAveragePooling2D' };
const KNOWN = new Set<string>([...TORCH_LAYERS, ...Object.keys(ALIASES), 'InputLayer']);

export interface TopologyLayer {
  name: string;
  className: string;
  config: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The layers of a parsed model.json (Sequential or functional; a Keras converter's model_config too). */
export function topologyLayers(modelJson: unknown): TopologyLayer[] {
  const topology = isObject(modelJson) && isObject(modelJson['modelTopology']) ? modelJson['modelTopology'] : {};
  const model = isObject(topology['model_config']) ? topology['model_config'] : topology;
  const body = model['config'];
  const list = Array.isArray(body) ? body : isObject(body) && Array.isArray(body['layers']) ? body['layers'] : [];
  return list.filter(isObject).map((l) => {
    const config = isObject(l['config']) ? l['config'] : {};
    const className = typeof l['class_name'] === 'string' ? l['class_name'] : '?';
    const name = typeof l['name'] === 'string' ? l['name'] : typeof config['name'] === 'string' ? config['name'] : className;
    return { name, className, config };
  });
}

/** Why the torchrun engine cannot train this model (the layer and its class named), or undefined. */
export function unsupportedLayer(modelJson: unknown, source: string): string | undefined {
  const layers = topologyLayers(modelJson);
  if (layers.length === 0) return `${source}: no layers found in modelTopology`;
  for (const l of layers) {
    if (!KNOWN.has(l.className)) {
      const nested = l.className === 'Sequential' || l.className === 'Model' || l.className === 'Functional' ? ' (a nested model: flatten it into one)' : '';
      return `${source}: layer "${l.name}" (${l.className}) is not supported by the torchrun engine${nested}; it translates ${TORCH_LAYERS.join(', ')}`;
    }
    const format = l.config['data_format'];
    if (format !== undefined && format !== 'channels_last') return `${source}: layer "${l.name}" (${l.className}) has data_format ${String(format)}; the torchrun engine supports channels_last only`;
  }
  return undefined;
}

/** Reads a model.json and checks it (a message naming the file for an unreadable or unsupported one). */
export function checkModelFile(path: string): string | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return `${path}: cannot be read as a model.json (${e instanceof Error ? e.message : String(e)})`;
  }
  return unsupportedLayer(raw, path);
}
