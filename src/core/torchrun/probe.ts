/**
 * The probe on the engine that trains (issue 20, part 3): for a torchrun run, each probe trial runs
 * in a fresh Python process on PyTorch (template/probe.py), on the run's own model, files and head,
 * so the per-device micro-batch is measured where it will run — the peak from
 * torch.cuda.max_memory_allocated on a GPU, the resident set on the CPU; images/s and the gradient
 * noise scale from PyTorch's steps — not inferred from TensorFlow.js.
 *
 * The trials share one folder, prepared once as a run folder is (the trainer child lists and splits
 * the files and writes the initial model; run.json and the Python files beside it), and removed
 * when the probe ends. A trial that dies, hangs past its time or is killed by the system becomes a
 * failed trial, as the tfjs trials do (process/run-trial.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainConfig } from '../config';
import { buildRunSpec } from '../planning/run-spec';
import { TrainerClient } from '../process/trainer-client';
import { DEFAULT_TRIAL_TIMEOUT_MS } from '../process/run-trial';
import { abortError } from '../shared/errors';
import { isOutOfMemoryText } from '../shared/oom';
import type { TrainingPlan } from '../shared/plan';
import type { ProbeTrialResult, ProbeTrialSpec, TrialRunner } from '../shared/probe';
import type { BackendLocation } from '../shared/run-spec';
import type { TorchPython } from './python';
import { INITIAL_MODEL_FOLDER, RUN_JSON, writeRunJson } from './run-json';
import { copyTemplates, PROBE_SCRIPT } from './template-files';

export interface TorchTrialOptions {
  python: TorchPython;
  trainerScript: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
  log?: (message: string) => void;
}

export interface TorchTrials {
  runTrial: TrialRunner;
  /** The interpreter and torch version, for the plan's reasons. */
  describe: string;
  /** Removes the trials' folder. */
  dispose(): void;
}

function failed(spec: ProbeTrialSpec, failure: ProbeTrialResult['failure'], error: string, durationMs: number): ProbeTrialResult {
  return { batchSize: spec.microBatchSize, accumulationSteps: spec.accumulationSteps, ok: false, failure, error, peakBytes: 0, tensorPeakBytes: 0, rssBytes: 0, imagesPerSec: 0, steps: 0, durationMs };
}

/** The trials' folder, prepared as a run folder: the files and split, the head, the initial model, run.json, the Python files. */
async function prepareFolder(config: TrainConfig, plan: TrainingPlan, location: BackendLocation, opts: TorchTrialOptions): Promise<string> {
  const folder = mkdtempSync(join(tmpdir(), 'batch-advisor-torch-probe-'));
  const spec = buildRunSpec(config, plan, { runDir: folder, location });
  const client = new TrainerClient({ trainerScript: opts.trainerScript, ...(opts.env ? { env: opts.env } : {}), ...(opts.log ? { onLog: (e) => opts.log?.(e.message) } : {}) });
  const onAbort = (): void => {
    client.dispose();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const prepared = await client.prepareTorchrun(spec, INITIAL_MODEL_FOLDER);
    writeRunJson(spec, prepared);
    copyTemplates(folder);
    return folder;
  } catch (e) {
    rmSync(folder, { recursive: true, force: true });
    if (opts.signal?.aborted) throw abortError();
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    client.dispose();
  }
}

/** Probe trials on PyTorch for this config, in a folder prepared once. */
export async function torchTrials(config: TrainConfig, plan: TrainingPlan, location: BackendLocation, opts: TorchTrialOptions): Promise<TorchTrials> {
  const folder = await prepareFolder(config, plan, location, opts);
  let n = 0;
  const runTrial: TrialRunner = async (spec) => {
    if (opts.signal?.aborted) throw abortError();
    const file = join(folder, `trial-${++n}.json`);
    writeFileSync(file, JSON.stringify(spec));
    return runPython(opts, folder, file, spec);
  };
  const where = `torch ${opts.python.torchVersion} (${opts.python.python}) on ${opts.python.cuda ? 'CUDA' : 'the CPU'}`;
  return { runTrial, describe: where, dispose: () => rmSync(folder, { recursive: true, force: true }) };
}

/** One trial: probe.py in its own process; its one JSON line, or a failed trial saying why there was none. */
function runPython(opts: TorchTrialOptions, folder: string, trialFile: string, spec: ProbeTrialSpec): Promise<ProbeTrialResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TRIAL_TIMEOUT_MS;
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(opts.python.python, [join(folder, PROBE_SCRIPT), join(folder, RUN_JSON), trialFile], {
      cwd: folder,
      stdio: ['ignore', 'pipe', 'pipe'],
      // eslint-disable-next-line no-restricted-properties -- passed on to Python, not read here
      env: { ...process.env, PYTHONUNBUFFERED: '1', ...opts.env },
      // Its own process group: a kill reaches whatever it started (which would hold its output open).
      detached: process.platform !== 'win32',
    });
    const killAll = (): void => {
      try {
        if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    };
    let out = '';
    let err = '';
    let timedOut = false;
    let aborted = false;
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => {
      timedOut = true;
      killAll();
    }, timeoutMs);
    const onAbort = (): void => {
      aborted = true;
      killAll();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (code: number | null, sig: NodeJS.Signals | null, spawnError?: Error): void => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      const ms = performance.now() - t0;
      if (aborted) return reject(abortError());
      if (spawnError) return resolve(failed(spec, 'error', `${opts.python.python}: ${spawnError.message}`, ms));
      if (timedOut) return resolve(failed(spec, 'timeout', `the torch trial did not finish within ${Math.round(timeoutMs / 1000)} s and was killed`, ms));
      const line = out.trim().split('\n').pop() ?? '';
      try {
        if (line.startsWith('{')) return resolve({ ...(JSON.parse(line) as ProbeTrialResult), durationMs: ms });
      } catch {
        /* said below */
      }
      const last = err.trim().split('\n').pop() ?? '';
      // Killed by the system (the kernel's out-of-memory killer sends SIGKILL), or a Python that died on memory.
      if (sig === 'SIGKILL' || isOutOfMemoryText(err)) return resolve(failed(spec, 'oom', `the torch trial was killed (${sig ?? `exit ${code}`}): ${last || 'out of memory'}`, ms));
      resolve(failed(spec, 'error', `the torch trial ended without a result (${sig ?? `exit ${code}`}): ${last || 'no output'}`, ms));
    };
    child.on('error', (e) => done(null, null, e));
    child.on('close', (code, sig) => done(code, sig));
  });
}
