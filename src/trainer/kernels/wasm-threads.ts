/**
 * Runs tfjs-backend-wasm's threaded-SIMD build in Node, so XNNPACK's convolutions and matrix
 * products use every core (tfjs turns threads off in Node: tfjs issue #3830).
 *
 * The threaded build is an Emscripten pthreads module. Three things stop it in Node, each fixed here:
 *  1. The flag WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false in Node: we set it to true.
 *  2. Its pthread workers are started from `blob:` URLs, which Node's worker_threads refuse (and
 *     blob: URLs do not resolve across threads). Our Worker class starts such a worker from a small
 *     bootstrap (below) that receives the Blob itself (Blobs are cloneable), evaluates its text, and
 *     loads the module's glue file where the worker would evaluate the main script.
 *  3. The module sizes XNNPACK's thread pool at start-up as min(requested, logical cores / 2), the
 *     cores read from os.cpus() (halved for hyper-threading, which we do not assume): while the module
 *     starts, os.cpus() reports twice the cores we want, then is restored.
 * Emscripten assigns `global.Worker` when the module starts; the property defined here keeps our
 * class in place. Anything failing here makes the caller fall back to the single-threaded build.
 */
import { resolveObjectURL } from 'node:buffer';
import { createRequire } from 'node:module';
import { Worker as NodeWorker, type WorkerOptions } from 'node:worker_threads';

/**
 * Bootstrap of one pthread worker (CommonJS, evaluated by worker_threads): evaluates Emscripten's
 * worker script (the Blob), and makes its importScripts() of the main script load the module's
 * glue file instead (the main script arrives as a Blob holding a function whose text refers to
 * bundler-renamed imports, so it cannot be evaluated on its own). Messages are handled in order,
 * after the worker script.
 */
const BOOTSTRAP = `
const { workerData, parentPort } = require('node:worker_threads');
const listen = parentPort.on.bind(parentPort);
let handler = null;
parentPort.on = (ev, fn) => { if (ev === 'message') { handler = fn; return parentPort; } return listen(ev, fn); };
let chain = workerData.script.text().then((code) => {
  (0, eval)(code);
  globalThis.importScripts = () => { globalThis.WasmBackendModuleThreadedSimd = require(workerData.glue); };
});
listen('message', (data) => {
  chain = chain.then(() => {
    if (data && data.cmd === 'load') data.urlOrBlob = workerData.glue;
    handler(data);
  });
});
`;

let gluePath = '';

class PthreadWorker extends NodeWorker {
  constructor(url: string | URL, opts?: WorkerOptions) {
    const href = String(url);
    const script = href.startsWith('blob:') ? resolveObjectURL(href) : undefined;
    if (script) super(BOOTSTRAP, { ...opts, eval: true, workerData: { script, glue: gluePath } });
    else super(url, opts);
  }
}

let installed = false;

/**
 * Makes Emscripten start its pthread workers through PthreadWorker; `glue` is the threaded
 * build's JS file (tfjs-backend-wasm-threaded-simd.js), which each worker loads.
 */
export function installPthreadWorkers(glue: string): void {
  gluePath = glue;
  if (installed) return;
  Object.defineProperty(globalThis, 'Worker', { configurable: true, get: () => PthreadWorker, set: () => undefined });
  installed = true;
}

interface PthreadRegistry {
  PThread?: { runningWorkers?: { unref(): void }[]; unusedWorkers?: { unref(): void }[] };
}

/**
 * Lets the process exit while XNNPACK's pool threads wait for work: Emscripten keeps a running
 * pthread's worker referenced, so a finished script (a test file, the CLI) would never end.
 */
export function unrefPthreads(module: unknown): void {
  const reg = (module as PthreadRegistry | undefined)?.PThread;
  for (const w of [...(reg?.runningWorkers ?? []), ...(reg?.unusedWorkers ?? [])]) w.unref();
}

/**
 * Runs `start` (the backend's initialisation) while os.cpus() reports 2 × `threads` cores, so the
 * module's start-up sizes its thread pool to `threads`.
 */
export async function withReportedCores<T>(threads: number, start: () => Promise<T>): Promise<T> {
  // The module object Emscripten's require('os') returns (an ES namespace import would be a copy).
  const os = createRequire(__filename)('node:os') as { cpus: () => unknown[] };
  const real = os.cpus;
  const fake = Array.from({ length: 2 * threads }, () => real()[0]!);
  try {
    os.cpus = () => fake;
  } catch {
    return start(); // a frozen module namespace: the pool keeps its default size
  }
  try {
    return await start();
  } finally {
    os.cpus = real;
  }
}
