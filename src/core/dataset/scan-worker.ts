/**
 * Worker thread entry that probes batches of files for the inspector (see pool.ts). Bundled by
 * esbuild to dist/scan-worker.js; run from source under tsx in tests.
 */
import { parentPort } from 'node:worker_threads';
import { Prober, probeBatch } from './probe';

export interface ScanRequest {
  id: number;
  paths: string[];
}

const prober = new Prober();
parentPort?.on('message', (req: ScanRequest) => {
  const result = probeBatch(prober, req.paths);
  parentPort?.postMessage({ id: req.id, result }, [result.status.buffer, result.width.buffer, result.height.buffer, result.size.buffer, result.typeIndex.buffer] as ArrayBuffer[]);
});
