/**
 * Worker thread of the decode pool (./decode-pool.ts): decodes the images of each request with
 * decodeImage and answers with their pixels (transferred, not copied) or why each was skipped.
 * Bundled by esbuild to dist/decode-worker.js; run from source under tsx in tests.
 */
import { parentPort } from 'node:worker_threads';
import { decodeImage, SkipFileError } from './decode';
import type { DecodeReady, DecodeRequest, DecodeResponse, DecodeResult } from './decode-pool';

async function decodeOne(job: DecodeRequest['jobs'][number]): Promise<DecodeResult> {
  try {
    const px = await decodeImage(job.path, job.opts);
    // sharp may hand out views of a larger pooled buffer: transfer only buffers the view owns.
    return { px: px.byteOffset === 0 && px.byteLength === px.buffer.byteLength ? px : px.slice() };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return e instanceof SkipFileError ? { skip: message } : { error: message };
  }
}

parentPort?.on('message', (req: DecodeRequest) => {
  void Promise.all(req.jobs.map(decodeOne)).then((results) => {
    const res: DecodeResponse = { id: req.id, results };
    const transfer = results.flatMap((r) => (r.px ? [r.px.buffer as ArrayBuffer] : []));
    parentPort?.postMessage(res, transfer);
  });
});

const ready: DecodeReady = { ready: true };
parentPort?.postMessage(ready);
