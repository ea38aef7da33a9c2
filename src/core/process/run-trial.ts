/**
 * Runs one probe trial in a fresh trainer child process and always returns a result: a child that
 * dies (V8 or wasm out of memory, a crash) or hangs past the timeout becomes a failed trial. The
 * child is killed when the trial ends, times out or is cancelled, so nothing a trial allocated
 * outlives it (peers that probe in-process leak it: Lightning #6570, #7335).
 */
import { abortError } from '../shared/errors';
import type { RunSetup } from '../shared/run-spec';
import type { ProbeTrialResult, ProbeTrialSpec, TrialRunner } from '../shared/probe';
import { TrainerClient } from './trainer-client';
import { firstLine, isOutOfMemoryText } from '../shared/oom';
import { TrialPace } from '../probe/trial-pace';

/** Default time a trial may take before it is killed and counted as a failure. */
export const DEFAULT_TRIAL_TIMEOUT_MS = 180_000;

export interface TrialRunnerOptions {
  trainerScript: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
  log?: (message: string) => void;
}


function failed(spec: ProbeTrialSpec, failure: ProbeTrialResult['failure'], error: string, durationMs: number): ProbeTrialResult {
  return { batchSize: spec.microBatchSize, accumulationSteps: spec.accumulationSteps, ok: false, failure, error, peakBytes: 0, tensorPeakBytes: 0, rssBytes: 0, imagesPerSec: 0, steps: 0, durationMs };
}

/** Kills the child for good: a trial stuck in a synchronous kernel does not answer SIGTERM. */
function kill(client: TrainerClient): void {
  const pid = client.pid;
  client.dispose();
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

export function childTrialRunner(setup: RunSetup, opts: TrialRunnerOptions): TrialRunner {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TRIAL_TIMEOUT_MS;
  const pace = new TrialPace();
  return async (spec) => {
    if (opts.signal?.aborted) throw abortError();
    const limitMs = pace.limitMs(spec.microBatchSize, timeoutMs);
    const t0 = performance.now();
    const client = new TrainerClient({ trainerScript: opts.trainerScript, ...(opts.env ? { env: opts.env } : {}), ...(opts.log ? { onLog: (e: { message: string }) => opts.log?.(e.message) } : {}) });
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const outcome = await Promise.race([
        client.probe(setup, spec).then((r) => ({ kind: 'result' as const, r })),
        new Promise<{ kind: 'timeout' }>((resolve) => {
          timer = setTimeout(() => resolve({ kind: 'timeout' }), limitMs);
        }),
        new Promise<{ kind: 'abort' }>((resolve) => {
          onAbort = () => resolve({ kind: 'abort' });
          opts.signal?.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
      if (outcome.kind === 'abort') throw abortError();
      if (outcome.kind === 'timeout') return failed(spec, 'timeout', `the trial did not finish within ${Math.round(limitMs / 1000)} s and was killed${limitMs < timeoutMs ? ` (${pace.why(spec.microBatchSize)})` : ''}`, performance.now() - t0);
      pace.record(outcome.r);
      return outcome.r;
    } catch (e) {
      if (opts.signal?.aborted) throw abortError();
      const text = e instanceof Error ? e.message : String(e);
      return failed(spec, isOutOfMemoryText(text) ? 'oom' : 'error', firstLine(e), performance.now() - t0);
    } finally {
      if (timer) clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
      kill(client);
    }
  };
}
