/**
 * Starting and ending the worker threads of our pools (dataset scan, image decode). A worker's
 * entry is `<dir>/<name>.js` next to the bundle, or `<dir>/<name>.ts` when run from the sources
 * under tsx (tests, benchmarks): then tsx's require hook is loaded in the worker first, resolved at
 * run time so that bundles never reference tsx. No entry → undefined (the pool works in-thread).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

export function startWorker(dir: string, name: string, workerData?: unknown): Worker | undefined {
  const js = join(dir, `${name}.js`);
  if (existsSync(js)) return new Worker(js, { execArgv: [], workerData });
  const ts = join(dir, `${name}.ts`);
  if (!existsSync(ts)) return undefined;
  let tsx: string;
  try {
    tsx = createRequire(__filename).resolve('tsx/cjs');
  } catch {
    return undefined;
  }
  return new Worker(`require(${JSON.stringify(tsx)}); require(${JSON.stringify(ts)});`, { eval: true, execArgv: [], workerData });
}

/** Ends workers without their exit or error reaching the pool's failure handling. */
export function endWorkers(workers: Worker[]): void {
  for (const w of workers.splice(0)) {
    w.removeAllListeners('exit');
    w.removeAllListeners('error');
    w.on('error', () => undefined);
    void w.terminate();
  }
}
