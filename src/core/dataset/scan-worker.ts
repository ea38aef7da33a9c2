/**
 * Worker thread entry that probes batches of files for the inspector (see pool.ts). Bundled by
 * esbuild to dist/scan-worker.js; run from source under tsx in tests.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ScanRequest, ScanResponse, ScanWorkerData } from './pool';
import { Prober, probeBatch } from './probe';

const claims = new Int32Array((workerData as ScanWorkerData).claims);
const prober = new Prober();
parentPort?.on('message', (req: ScanRequest) => {
  // Claim the batch; the sender may have taken it back already.
  if (Atomics.compareExchange(claims, req.slot, 0, 1) !== 0) {
    const stolen: ScanResponse = { id: req.id, stolen: true };
    parentPort?.postMessage(stolen);
    return;
  }
  const result = probeBatch(prober, req.paths);
  const res: ScanResponse = { id: req.id, result };
  parentPort?.postMessage(res, [result.status.buffer, result.width.buffer, result.height.buffer, result.size.buffer, result.typeIndex.buffer] as ArrayBuffer[]);
});
