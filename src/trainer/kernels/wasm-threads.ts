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
 *  4. The module starts a pool of 8 pthread workers up front (PTHREAD_POOL_SIZE), each loading the
 *     glue and instantiating the module — ~0.5 s of CPU and ~80 MiB at every trainer start, while
 *     XNNPACK on 2 cores runs one. Each pool worker is a LazyPthread: it answers the module's
 *     "load" at once and starts a real worker only when a thread is run on it.
 * Emscripten assigns `global.Worker` when the module starts; the property defined here keeps our
 * class in place. Anything failing here makes the caller fall back to the single-threaded build.
 */
import { resolveObjectURL } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { Worker as NodeWorker, type TransferListItem, type WorkerOptions } from 'node:worker_threads';

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

interface PthreadMessage {
  cmd?: string;
}

/**
 * A pool worker that exists only on paper until a thread runs on it: the module's "load" is
 * answered with "loaded" at once and kept; the first other message starts the real worker, replays
 * the load (its own "loaded" is swallowed), then delivers what was queued meanwhile, in order. It
 * offers what Emscripten uses of a Node Worker: postMessage, on/once, ref/unref, terminate.
 */
export class LazyPthread extends EventEmitter {
  private real: NodeWorker | undefined;
  private loadMessage: PthreadMessage | undefined;
  private readonly queue: [unknown, readonly TransferListItem[] | undefined][] = [];
  private loaded = false;
  private referenced = true;
  private terminated = false;

  constructor(private readonly start: () => NodeWorker) {
    super();
  }

  /** Whether a real worker thread has been started. */
  get started(): boolean {
    return this.real !== undefined;
  }

  postMessage(message: unknown, transfer?: readonly TransferListItem[]): void {
    if (this.terminated) return;
    if (!this.real && this.loadMessage === undefined && (message as PthreadMessage | null)?.cmd === 'load') {
      this.loadMessage = message as PthreadMessage;
      setImmediate(() => this.emit('message', { cmd: 'loaded' }));
      return;
    }
    const real = this.real ?? this.boot();
    if (this.loaded) real.postMessage(message, transfer);
    else this.queue.push([message, transfer]);
  }

  ref(): void {
    this.referenced = true;
    this.real?.ref();
  }

  unref(): void {
    this.referenced = false;
    this.real?.unref();
  }

  async terminate(): Promise<number> {
    this.terminated = true;
    return this.real ? this.real.terminate() : 0;
  }

  private boot(): NodeWorker {
    const w = this.start();
    this.real = w;
    w.on('message', (m: PthreadMessage | null) => {
      if (!this.loaded && m?.cmd === 'loaded') {
        this.loaded = true;
        for (const [msg, transfer] of this.queue.splice(0)) w.postMessage(msg, transfer);
        return;
      }
      this.emit('message', m);
    });
    w.on('error', (e) => this.emit('error', e));
    w.on('exit', (code) => this.emit('exit', code));
    // After the listeners: adding a 'message' listener refs a worker again.
    if (!this.referenced) w.unref();
    if (this.loadMessage) w.postMessage(this.loadMessage);
    else this.loaded = true;
    return w;
  }
}

/**
 * What `new Worker(url)` gives Emscripten: a LazyPthread for its pthread workers (blob: URLs of
 * its worker script), a plain Node worker for anything else. A constructor returning an object.
 */
function PthreadWorker(url: string | URL, opts?: WorkerOptions): NodeWorker | LazyPthread {
  const href = String(url);
  const script = href.startsWith('blob:') ? resolveObjectURL(href) : undefined;
  if (!script) return new NodeWorker(url, opts);
  return new LazyPthread(() => new NodeWorker(BOOTSTRAP, { ...opts, eval: true, workerData: { script, glue: gluePath } }));
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
