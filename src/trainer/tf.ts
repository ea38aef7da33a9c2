/**
 * The one place the trainer imports TensorFlow.js. Everything else in src/trainer writes
 *
 *   import { tf } from '../tf';        // or: import * as tf from '../tf';
 *
 * and gets tfjs-core + tfjs-layers under one namespace, with the pure-JS cpu backend registered
 * and every gradient registered. We deliberately avoid the '@tensorflow/tfjs' umbrella package: it
 * pulls in the WebGL backend, tfjs-converter and tfjs-data, none of which a Node child process
 * can use. Other backends (wasm, tfjs-node) are loaded on demand by the code that picks them.
 *
 * Notes for Node (package "main" = the prebuilt CommonJS bundles):
 *  - tfjs-layers' bundle registers all gradients itself.
 *  - Chained ops (`x.square()`, `x.add(y)`) are NOT registered by tfjs-core's Node bundle, and
 *    registering them would load a second (ESM) copy of tfjs-core. Use the functional forms:
 *    `tf.square(x)`, `tf.add(x, y)`.
 */
// Registers the cpu backend and its kernels as an import side effect. The package marks its Node
// bundle side-effect free, so esbuild.mjs sets `ignoreAnnotations` to keep such imports.
import '@tensorflow/tfjs-backend-cpu';
import { env } from '@tensorflow/tfjs-core';
import { layers as tfLayers } from '@tensorflow/tfjs-layers';

// Production mode from the first import on, before any tensor exists: tfjs's console banner ("Hi,
// looks like you are running TensorFlow.js in Node.js…", printed at the cpu backend's first write)
// and its other console warnings never reach what a person reads (the CLI forwards the child's
// stderr). Every entry that imports tfjs through here — the trainer, a probe trial, a benchmark —
// gets it. Nothing else depends on the flag.
env().set('PROD', true);

export * from '@tensorflow/tfjs-core';
export * from '@tensorflow/tfjs-layers';
// Self re-export so `import { tf } from '../tf'` works as well as `import * as tf from '../tf'`.
export * as tf from './tf';

/**
 * tfjs-layers 4.22's Resizing layer reports its output shape without the batch dimension and with
 * the input's width as its channels ([h, w, W] for an input [null, H, W, C]), so no layer can follow
 * it, and its call hands the list of inputs a model passes it to the resize op, which fails (Keras's
 * Resizing works: models people convert have it). CenterCrop computes its output shape by writing
 * into its input's shape, so the layer before it reports the cropped size. All three are fixed
 * here, once, for every such layer built or loaded; the computations (bilinear or nearest resize
 * with gradients, the crop) are tfjs's.
 */
function fixPreprocessingLayers(): void {
  type Call = (inputs: unknown, kwargs: unknown) => unknown;
  const proto = Object.getPrototypeOf(tfLayers.resizing({ height: 1, width: 1 })) as { computeOutputShape: (s: Shape | Shape[]) => Shape; call: Call };
  const call = proto.call;
  proto.call = function (this: unknown, inputs: unknown, kwargs: unknown): unknown {
    return call.call(this, Array.isArray(inputs) ? inputs[0] : inputs, kwargs);
  };
  proto.computeOutputShape = function (this: { height: number; width: number }, inputShape: Shape | Shape[]): Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    return [...s.slice(0, -3), this.height, this.width, s[s.length - 1] ?? null];
  };
  const crop = Object.getPrototypeOf(tfLayers.centerCrop({ height: 1, width: 1 })) as { computeOutputShape: (s: Shape | Shape[]) => Shape };
  const cropShape = crop.computeOutputShape;
  crop.computeOutputShape = function (this: unknown, inputShape: Shape | Shape[]): Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    return cropShape.call(this, [...s]);
  };
}
type Shape = (number | null)[];
fixPreprocessingLayers();
