// Bundles the separate entry points: extension host (node/cjs, `vscode` external),
// trainer child process, CLI, and the webview (browser).
//
// Start-up cost is kept out of the CLI and the extension (issue #12):
// - the config schema's validator is generated here by ajv (standalone code), so neither loads ajv;
// - systeminformation (~730 KB) is its own file, dist/vendor/systeminformation.js, required only when
//   devices are read (src/core/devices/devices.ts imports it with `import()`);
// - commands import their modules with `import()`: esbuild keeps them in the bundle but runs them
//   only when first used (sharp, a native module, is external and required at that point).
import * as esbuild from 'esbuild';
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { standaloneConfigValidator } from './scripts/config-validator.mjs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

/** Native or optional modules that cannot be bundled: resolved at run time. */
const nodeExternals = ['vscode', 'sharp', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'];

const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'warning',
  legalComments: 'none',
};

/** Replaces src/core/config-validate.ts (ajv at run time) with the validator ajv generates now. */
const precompiledConfigValidator = {
  name: 'precompiled-config-validator',
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]core[\\/]config-validate\.ts$/ }, (args) => ({
      contents: standaloneConfigValidator(),
      loader: 'js',
      resolveDir: join(args.path, '..'),
    }));
  },
};

/** Packages loaded with `import()` that get a file of their own in dist/vendor/ instead of a place in each bundle. */
const VENDOR = { systeminformation: 'node_modules/systeminformation/lib/index.js' };
const vendorFiles = {
  name: 'vendor-files',
  setup(build) {
    const names = new RegExp(`^(${Object.keys(VENDOR).join('|')})$`);
    build.onResolve({ filter: names }, (args) => (args.kind === 'dynamic-import' ? { path: `./vendor/${args.path}.js`, external: true } : undefined));
  },
};

const nodeEntries = {
  ...common,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: nodeExternals,
  plugins: [precompiledConfigValidator, vendorFiles],
  // `import()` of a vendor file or an external module becomes require(): no ES-module loader at start,
  // and the extension host resolves it like any other require.
  supported: { 'dynamic-import': false },
  // tfjs packages register backends and kernels as import side effects, but their package.json
  // "sideEffects" lists omit the CommonJS bundles esbuild resolves for Node: honour every import.
  ignoreAnnotations: true,
  // jsonc-parser's default (UMD) build requires its parts dynamically, which a bundle cannot hold.
  alias: { 'jsonc-parser': 'jsonc-parser/lib/esm/main.js' },
  entryPoints: {
    extension: 'src/extension/extension.ts',
    trainer: 'src/trainer/main.ts',
    'scan-worker': 'src/core/dataset/scan-worker.ts',
    'decode-worker': 'src/trainer/data/decode-worker.ts',
  },
  outdir: 'dist',
};

/** The CLI gets a shebang so `bin` works after `npm link` / `npx`. */
const cliEntry = { ...nodeEntries, entryPoints: { cli: 'src/cli/main.ts' }, banner: { js: '#!/usr/bin/env node' } };

/** dist/vendor/<name>.js: one CommonJS bundle per vendor package. */
const vendorEntries = {
  ...common,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  entryPoints: Object.fromEntries(Object.entries(VENDOR).map(([name, path]) => [`vendor/${name}`, path])),
  outdir: 'dist',
};

const webEntries = {
  ...common,
  platform: 'browser',
  format: 'iife',
  target: 'es2022',
  entryPoints: { 'webview/suggest': 'src/webview/suggest/main.ts', 'webview/train': 'src/webview/train/main.ts' },
  outdir: 'dist',
  loader: { '.css': 'text' },
};

function copyWasm() {
  // tfjs-backend-wasm loads its .wasm binaries from disk at run time.
  const src = 'node_modules/@tensorflow/tfjs-backend-wasm/dist';
  mkdirSync('dist/wasm', { recursive: true });
  for (const f of readdirSync(src)) if (f.endsWith('.wasm')) cpSync(join(src, f), join('dist/wasm', f));
  // The threaded build's pthread workers load its JS glue from disk (src/trainer/kernels/wasm-threads.ts).
  const glue = 'tfjs-backend-wasm-threaded-simd.js';
  cpSync(join(src, '..', 'wasm-out', glue), join('dist/wasm', glue));
}

/** The torchrun engine's Python files: a run folder gets copies (src/core/torchrun/template-files.ts looks in dist/torchrun/). */
function copyTorchrunTemplates() {
  const src = 'src/core/torchrun/template';
  mkdirSync('dist/torchrun', { recursive: true });
  for (const f of readdirSync(src)) if (f.endsWith('.py')) cpSync(join(src, f), join('dist/torchrun', f));
}

copyWasm();
copyTorchrunTemplates();
if (watch) {
  const ctxs = await Promise.all([nodeEntries, cliEntry, vendorEntries, webEntries].map((e) => esbuild.context(e)));
  await Promise.all(ctxs.map((c) => c.watch()));
} else {
  await Promise.all([nodeEntries, cliEntry, vendorEntries, webEntries].map((e) => esbuild.build(e)));
}
