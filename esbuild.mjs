// Bundles the separate entry points: extension host (node/cjs, `vscode` external),
// trainer child process, CLI, and the webview (browser).
import * as esbuild from 'esbuild';
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

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

const nodeEntries = {
  ...common,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: nodeExternals,
  // tfjs packages register backends and kernels as import side effects, but their package.json
  // "sideEffects" lists omit the CommonJS bundles esbuild resolves for Node: honour every import.
  ignoreAnnotations: true,
  entryPoints: {
    extension: 'src/extension/extension.ts',
    trainer: 'src/trainer/main.ts',
    'scan-worker': 'src/core/dataset/scan-worker.ts',
  },
  outdir: 'dist',
};

/** The CLI gets a shebang so `bin` works after `npm link` / `npx`. */
const cliEntry = { ...nodeEntries, entryPoints: { cli: 'src/cli/main.ts' }, banner: { js: '#!/usr/bin/env node' } };

const webEntries = {
  ...common,
  platform: 'browser',
  format: 'iife',
  target: 'es2022',
  entryPoints: { 'webview/suggest': 'src/webview/suggest/main.ts' },
  outdir: 'dist',
  loader: { '.css': 'text' },
};

function copyWasm() {
  // tfjs-backend-wasm loads its .wasm binaries from disk at run time.
  const src = 'node_modules/@tensorflow/tfjs-backend-wasm/dist';
  mkdirSync('dist/wasm', { recursive: true });
  for (const f of readdirSync(src)) if (f.endsWith('.wasm')) cpSync(join(src, f), join('dist/wasm', f));
}

copyWasm();
if (watch) {
  const ctxs = await Promise.all([nodeEntries, cliEntry, webEntries].map((e) => esbuild.context(e)));
  await Promise.all(ctxs.map((c) => c.watch()));
} else {
  await Promise.all([nodeEntries, cliEntry, webEntries].map((e) => esbuild.build(e)));
}
