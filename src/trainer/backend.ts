/**
 * Picks and initialises the tfjs backend the trainer runs on.
 *
 * Preference order for 'auto':
 *   1. tensorflow-gpu  @tensorflow/tfjs-node-gpu, when it loads AND TensorFlow sees a CUDA GPU
 *   2. tensorflow      @tensorflow/tfjs-node (libtensorflow on the CPU)
 *   3. wasm            tfjs-backend-wasm (XNNPACK, SIMD) plus our training kernels (./kernels)
 *   4. cpu             tfjs-backend-cpu (pure JS; always there, very slow convolution gradients)
 *
 * tfjs-node(-gpu) are native packages the extension cannot bundle (they download libtensorflow at
 * install time). They are resolved, in order, from the user's workspace node_modules (as
 * vscode-eslint resolves the user's eslint), from the extension's own node_modules, then from an
 * explicit path setting. Every backend passed over is reported with a one-line reason.
 *
 * GPU memory: the host starts the trainer child with TF_FORCE_GPU_ALLOW_GROWTH=true in its
 * environment, so TensorFlow grows its GPU pool as needed instead of reserving the whole card
 * (tfjs has no memory-fraction API). The entry point (main.ts) sets it too, before tfjs-node-gpu
 * can load, in case the trainer was started some other way.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import type { BackendName, ResolvedBackend } from '../core/shared/protocol';
import { BACKEND_NAMES } from '../core/shared/constants';
import { availableParallelism } from 'node:os';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { runtimeSettings } from './runtime';
import { tf } from './tf';
import { registerWasmTrainingKernels } from './kernels';
import { installPthreadWorkers, unrefPthreads, withReportedCores } from './kernels/wasm-threads';

/** The extension's own require (dist/ when bundled, src/trainer/ from sources). */
const ownRequire = createRequire(__filename);

export type BackendChoice = 'auto' | BackendName;

export interface BackendOptions {
  /** The user's workspace folder: its node_modules is searched first for tfjs-node(-gpu). */
  workspaceFolder?: string;
  /** Explicit path (setting) to a tfjs-node or tfjs-node-gpu package folder or its entry file. */
  tfjsNodePath?: string;
}

export type BackendResult = ResolvedBackend;

const ORDER: readonly BackendName[] = BACKEND_NAMES;

const PACKAGE: Record<'tensorflow-gpu' | 'tensorflow', string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

/** A backend that could not be used, with the one-line reason shown to the user. */
class Unavailable extends Error {}

/**
 * The backend `choice` gets here, for the host to plan for (a model description asks): undefined
 * when an explicit choice cannot load (the run then ends saying why).
 */
export async function resolveBackend(req: BackendOptions & { choice: BackendChoice }): Promise<ResolvedBackend | undefined> {
  const { choice, ...where } = req;
  try {
    return await initBackend(choice, where);
  } catch {
    return undefined;
  }
}

export async function initBackend(choice: BackendChoice, opts: BackendOptions = {}): Promise<BackendResult> {
  const skipped: BackendResult['skipped'] = [];
  const candidates = choice === 'auto' ? ORDER : [choice];
  for (const name of candidates) {
    try {
      await TRY[name](opts);
      return { name, skipped, ...(name.startsWith('tensorflow') && loadedFrom ? { from: loadedFrom } : {}) };
    } catch (e) {
      const reason = oneLine(e);
      if (choice !== 'auto') throw new Error(`backend '${name}' is not available: ${reason}`);
      skipped.push({ name, reason });
    }
  }
  // Unreachable: the cpu backend is bundled.
  throw new Error(`no tfjs backend could be initialised: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

const TRY: Record<BackendName, (opts: BackendOptions) => Promise<void>> = {
  'tensorflow-gpu': async (opts) => {
    // See the header: TensorFlow must not grab the whole card (the entry point sets TF_FORCE_GPU_ALLOW_GROWTH).
    loadTfjsNode('tensorflow-gpu', opts);
    await activate('tensorflow');
    if (!cudaGpuVisible()) throw new Unavailable('no CUDA GPU visible');
  },
  tensorflow: async (opts) => {
    // tfjs-node-gpu, if it loaded above, also runs on the CPU: reuse it rather than look for tfjs-node.
    if (!tf.findBackendFactory('tensorflow')) loadTfjsNode('tensorflow', opts);
    await activate('tensorflow');
  },
  wasm: async () => {
    registerWasmTrainingKernels();
    setWasmPaths(wasmDir());
    const threads = wasmThreads();
    if (threads > 1) {
      try {
        await activateThreadedWasm(threads);
        return;
      } catch {
        // Fall back to the single-threaded build below.
        tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
        setThreadsCount(1);
      }
    }
    await activate('wasm');
  },
  cpu: async () => {
    await activate('cpu');
  },
};

/**
 * Threads for the wasm backend: the runtime's setting (BATCH_ADVISOR_WASM_THREADS, read by the
 * entry point; 1 = the single-threaded build), else every core the process may use.
 */
export function wasmThreads(requested: number | undefined = runtimeSettings().wasmThreads): number {
  if (requested !== undefined && Number.isInteger(requested) && requested >= 1) return Math.min(requested, 8);
  return Math.min(availableParallelism(), 8);
}

/** The threaded-SIMD wasm build with `threads` XNNPACK threads (see ./kernels/wasm-threads). */
async function activateThreadedWasm(threads: number): Promise<void> {
  installPthreadWorkers(threadedGlue());
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  setThreadsCount(threads);
  await withReportedCores(threads, () => activate('wasm'));
  unrefPthreads((tf.backend() as unknown as { wasm?: unknown }).wasm);
}

async function activate(tfName: string): Promise<void> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(tfName);
  } catch (e) {
    throw new Unavailable(`failed to initialise: ${oneLine(e)}`);
  }
  if (!ok || tf.getBackend() !== tfName) throw new Unavailable('failed to initialise');
  await tf.ready();
}

/**
 * Loads tfjs-node(-gpu), which registers the 'tensorflow' backend with the tfjs-core instance it
 * imports. That must be our instance: a workspace copy resolving its own tfjs-core would register
 * with another engine, so we check that the backend appeared in ours.
 */
/** The tfjs-node(-gpu) file that loaded (reported with the backend). */
let loadedFrom: string | undefined;

function loadTfjsNode(name: 'tensorflow-gpu' | 'tensorflow', opts: BackendOptions): void {
  const pkg = PACKAGE[name];
  const where: string[] = [];
  const attempts: { from: string; resolve: () => string }[] = [];
  if (opts.workspaceFolder) {
    const req = createRequire(join(opts.workspaceFolder, 'package.json'));
    attempts.push({ from: join(opts.workspaceFolder, 'node_modules'), resolve: () => req.resolve(pkg) });
    where.push(`${join(opts.workspaceFolder, 'node_modules')}`);
  }
  attempts.push({ from: 'the extension', resolve: () => ownRequire.resolve(pkg) });
  where.push('the extension');
  if (opts.tfjsNodePath) {
    // The setting names the folder holding node_modules (documented); its node_modules folder or the package folder itself work too.
    const p = opts.tfjsNodePath;
    const parent = basename(p) === 'node_modules' ? dirname(p) : p;
    attempts.push({ from: p, resolve: () => createRequire(join(parent, 'package.json')).resolve(pkg) });
    attempts.push({ from: p, resolve: () => createRequire(join(p, 'package.json')).resolve(p) });
    where.push(`${p} (looked for ${join(parent, 'node_modules', pkg)} and for the package in ${p} itself)`);
  }
  for (const a of attempts) {
    let file: string;
    try {
      file = a.resolve();
    } catch {
      continue; // not installed there
    }
    try {
      ownRequire(file);
    } catch (e) {
      throw new Unavailable(`${pkg} installed but failed to load: ${oneLine(e)}`);
    }
    if (!tf.findBackendFactory('tensorflow')) {
      throw new Unavailable(`${pkg} (${file}) loaded but registered no 'tensorflow' backend with this tfjs-core (version mismatch?)`);
    }
    loadedFrom = file;
    return;
  }
  throw new Unavailable(`${pkg} not installed in ${where.join(' or ')}`);
}

/** True when TensorFlow (through tfjs-node-gpu) lists a GPU device. */
function cudaGpuVisible(): boolean {
  try {
    const backend = tf.backend() as unknown as { binding?: { isUsingGpuDevice?: () => boolean } };
    const using = backend.binding?.isUsingGpuDevice?.();
    if (typeof using === 'boolean') return using;
  } catch {
    // fall through to the driver check
  }
  // Older bindings lack isUsingGpuDevice: the NVIDIA driver's device nodes are the next best sign.
  return existsSync('/dev/nvidia0') || existsSync('/proc/driver/nvidia/gpus');
}

/**
 * Folder holding tfjs-backend-wasm's .wasm binaries. The build copies them to dist/wasm/, next to
 * the bundles (dist/trainer.js); run from sources (tests, tsx) they are in node_modules.
 */
export function wasmDir(): string {
  const bundled = join(__dirname, 'wasm');
  if (existsSync(join(bundled, 'tfjs-backend-wasm-simd.wasm'))) return `${bundled}/`;
  const pkgJson = ownRequire.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return `${join(pkgJson, '..', 'dist')}/`;
}

/** tfjs-backend-wasm's threaded-build JS, which its pthread workers load (copied next to the .wasm files by the build). */
function threadedGlue(): string {
  const name = 'tfjs-backend-wasm-threaded-simd.js';
  const bundled = join(__dirname, 'wasm', name);
  if (existsSync(bundled)) return bundled;
  return ownRequire.resolve(`@tensorflow/tfjs-backend-wasm/wasm-out/${name}`);
}

function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split('\n').find((l) => l.trim() !== '') ?? msg).trim();
}
