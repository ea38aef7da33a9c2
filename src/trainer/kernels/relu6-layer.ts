/**
 * tfjs-layers' ReLU layer with maxValue 6 (MobileNetV2's activation, `tf.layers.reLU({ maxValue: 6 })`)
 * runs Relu then ClipByValue: two full passes and a temporary forward, two mask passes backward.
 * min(max(x, 0), 6) is exactly tf.relu6(x), and its gradient (dy where 0 < x ≤ 6) is the product of
 * the two masks, so the layer runs the one Relu6 kernel instead (on every backend: same values,
 * same gradients, also at x = 0 and x = 6). Other maxValues keep tfjs-layers' code (a single clip
 * would differ from ReLU's gradient at x = 0).
 */
import { serialization, tf, type Tensor } from '../tf';

type CallFn = (this: { maxValue?: number }, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>) => Tensor | Tensor[];

let patched = false;

/** Makes (once) `tf.layers.reLU({ maxValue: 6 })` one Relu6 op. */
export function registerRelu6Layer(): void {
  if (patched) return;
  const entry = serialization.SerializationMap.getMap().classNameMap['ReLU'];
  if (!entry) throw new Error('tfjs-layers has no ReLU class registered');
  const proto = (entry[0] as unknown as { prototype: { call: CallFn } }).prototype;
  const original = proto.call;
  proto.call = function (inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (this.maxValue !== 6 || !x || (Array.isArray(inputs) && inputs.length !== 1)) return original.call(this, inputs, kwargs);
    return tf.relu6(x);
  };
  patched = true;
}
