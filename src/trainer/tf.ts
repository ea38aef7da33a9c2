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

export * from '@tensorflow/tfjs-core';
export * from '@tensorflow/tfjs-layers';
// Self re-export so `import { tf } from '../tf'` works as well as `import * as tf from '../tf'`.
export * as tf from './tf';
