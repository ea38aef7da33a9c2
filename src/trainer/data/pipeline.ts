/**
 * The input pipeline: files → decoded uint8 images → float32 batches [n, h, w, c] (0–255; the
 * model's Rescaling layer scales), ahead of the training loop.
 *
 * - Loading: 'preload' decodes every image once into memory as uint8; 'stream' decodes from disk
 *   each epoch. 'auto' preloads when N×H×W×C bytes fit in half the available memory.
 * - Decoding runs in worker threads (./decode-pool: small PNGs in JS, the rest with sharp), at
 *   most `concurrency` images in flight; ready batches wait
 *   in a bounded queue (`prefetchBatches`), so training does not wait on decoding when decoding
 *   keeps up.
 * - Each epoch has its own seeded order (same seed → same orders); the last batch may be partial.
 * - A file that cannot be decoded (corrupt, too large, gone) is skipped, reported once through
 *   `onSkip`, and left out of later epochs; it is never fatal.
 */
import { cpus, freemem } from 'node:os';
import { DEFAULT_MAX_PIXELS, SkipFileError, type DecodeOptions } from './decode';
import { DecodePool } from './decode-pool';
import { epochOrder } from './prng';
import { BoundedQueue } from './queue';
import type { LabeledFile } from './split';
import { PRELOAD_FRACTION } from '../../core/planning/recommend';

export type { LabeledFile } from './split';

export interface Batch {
  /** Float32 pixels, 0–255, NHWC. Length size×h×w×c. */
  x: Float32Array;
  /** Class indices. */
  y: Int32Array;
  /** Images in this batch (the last one of an epoch may be smaller). */
  size: number;
  /** [size, h, w, c] */
  shape: [number, number, number, number];
  /** 0-based index of the batch within its epoch. */
  index: number;
  paths: string[];
}

export interface PipelineOptions {
  /** [height, width] */
  imageSize: [number, number];
  channels: 1 | 3 | 4;
  batchSize: number;
  seed: number;
  /** Default 'auto'. */
  loading?: 'auto' | 'preload' | 'stream';
  /** Ready batches held ahead of the consumer. Default 4. */
  prefetchBatches?: number;
  /**
   * Decodes in flight (handed to sharp's thread pool). Default max(4 × cores, 2 × batchSize), capped
   * at 512. It must exceed the images one training step consumes: the main thread (busy training)
   * launches new decodes only between steps.
   */
  concurrency?: number;
  /** Pixel limit checked on the header before decoding. Default 50 MP. */
  maxPixels?: number;
  /** Bytes 'auto' compares the preload estimate with. Default: available memory now. */
  availableMemoryBytes?: number;
  onSkip?: (path: string, reason: string) => void;
  /** Test seam: replaces the decoder (e.g. to make decoding slow). */
  decode?: (path: string, opts: DecodeOptions) => Promise<Uint8Array>;
  signal?: AbortSignal;
}

export interface LoadingDecision {
  loading: 'preload' | 'stream';
  estimateBytes: number;
  availableBytes: number;
  reason: string;
}

/** Memory the process can still use: the OS's available memory, capped by a cgroup limit. */
export function availableMemory(): number {
  const free = freemem();
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  if (constrained && constrained > 0 && constrained < Number.MAX_SAFE_INTEGER) {
    return Math.min(free, Math.max(0, constrained - process.memoryUsage().rss));
  }
  return free;
}

/**
 * Preload when the uint8 images (N×H×W×C bytes) fit in the planner's share of available memory
 * (PRELOAD_FRACTION, core/planning/recommend.ts). A run never decides here: its RunSpec's plan says preload
 * or stream; "auto" is for callers without a plan (benchmarks).
 */
export function decideLoading(
  choice: 'auto' | 'preload' | 'stream',
  numImages: number,
  imageSize: [number, number],
  channels: number,
  availableBytes = availableMemory(),
): LoadingDecision {
  const estimateBytes = numImages * imageSize[0] * imageSize[1] * channels;
  const gib = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (choice !== 'auto') return { loading: choice, estimateBytes, availableBytes, reason: `loading "${choice}" set in the config` };
  const fits = estimateBytes <= PRELOAD_FRACTION * availableBytes;
  return {
    loading: fits ? 'preload' : 'stream',
    estimateBytes,
    availableBytes,
    reason: `decoded images take ${gib(estimateBytes)} as uint8; ${gib(availableBytes)} available → ${fits ? `preload (fits in ${PRELOAD_FRACTION * 100}%)` : `stream from disk (more than ${PRELOAD_FRACTION * 100}%)`}`,
  };
}

export class ImagePipeline {
  readonly loading: 'preload' | 'stream';
  private readonly skipped = new Map<string, string>();
  private readonly images: (Uint8Array | null)[] = [];
  private readonly decodeOpts: DecodeOptions;
  private readonly concurrency: number;
  private readonly prefetch: number;
  private readonly pixelsPerImage: number;

  private constructor(
    private readonly files: readonly LabeledFile[],
    private opts: PipelineOptions,
    loading: 'preload' | 'stream',
  ) {
    this.loading = loading;
    this.decodeOpts = { imageSize: opts.imageSize, channels: opts.channels, maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS };
    this.concurrency = Math.max(1, opts.concurrency ?? Math.min(512, Math.max(4 * cpus().length, 2 * opts.batchSize)));
    this.prefetch = Math.max(1, opts.prefetchBatches ?? 4);
    this.pixelsPerImage = opts.imageSize[0] * opts.imageSize[1] * opts.channels;
    if (!(opts.batchSize >= 1)) throw new RangeError('batchSize must be ≥ 1');
  }

  /** Builds the pipeline; with preload, decodes every image now (`onProgress` after each). */
  static async create(files: readonly LabeledFile[], opts: PipelineOptions, onProgress?: (done: number, total: number) => void): Promise<ImagePipeline> {
    const choice = opts.loading ?? 'auto';
    const loading = choice === 'auto' ? decideLoading('auto', files.length, opts.imageSize, opts.channels, opts.availableMemoryBytes).loading : choice;
    const p = new ImagePipeline(files, opts, loading);
    if (!opts.decode) DecodePool.shared(); // start the decode workers now
    if (loading === 'preload') await p.preloadAll(onProgress);
    return p;
  }

  /** Files not (yet) known to be unusable. */
  get size(): number {
    return this.files.length - this.skipped.size;
  }

  /** Files skipped so far, with the reason. */
  get skippedFiles(): ReadonlyMap<string, string> {
    return this.skipped;
  }

  /** Trains later epochs at another batch size (batch growth; between epochs). */
  setBatchSize(n: number): void {
    if (!(Number.isInteger(n) && n >= 1)) throw new RangeError('batchSize must be a positive integer');
    this.opts = { ...this.opts, batchSize: n };
  }

  /** Batches the next epoch will have (ceil(size / batchSize)). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.size / this.opts.batchSize);
  }

  private async decodeFile(i: number): Promise<Uint8Array | null> {
    const f = this.files[i]!;
    if (this.skipped.has(f.path)) return null;
    if (this.loading === 'preload' && this.images.length === this.files.length) return this.images[i] ?? null;
    try {
      if (this.opts.decode) return await this.opts.decode(f.path, this.decodeOpts);
      return await DecodePool.shared().decode(f.path, this.decodeOpts);
    } catch (e) {
      if (this.opts.signal?.aborted) throw e;
      const reason = e instanceof SkipFileError ? e.message : `cannot be decoded: ${e instanceof Error ? e.message : String(e)}`;
      if (!this.skipped.has(f.path)) {
        this.skipped.set(f.path, reason);
        this.opts.onSkip?.(f.path, reason);
      }
      return null;
    }
  }

  private async preloadAll(onProgress?: (done: number, total: number) => void): Promise<void> {
    const n = this.files.length;
    const out: (Uint8Array | null)[] = new Array<Uint8Array | null>(n).fill(null);
    let next = 0;
    let done = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        this.opts.signal?.throwIfAborted();
        const i = next++;
        const img = await this.decodeFile(i);
        // Own the bytes: sharp may hand out views of a larger pooled buffer.
        out[i] = img ? (img.byteOffset === 0 && img.byteLength === img.buffer.byteLength ? img : img.slice()) : null;
        onProgress?.(++done, n);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, n) }, worker));
    this.images.push(...out);
  }

  /** The indices of usable files in the order of `epoch` (seeded shuffle), or in file order. */
  private order(epoch: number | null): number[] {
    const base = epoch === null ? this.files.map((_, i) => i) : epochOrder(this.files.length, this.opts.seed, epoch);
    return this.skipped.size ? base.filter((i) => !this.skipped.has(this.files[i]!.path)) : base;
  }

  /** Shuffled batches of one epoch; each epoch number has its own reproducible order. */
  epoch(epoch: number, signal?: AbortSignal): AsyncGenerator<Batch> {
    return this.batches(this.order(epoch), signal);
  }

  /** Batches in file order (validation, evaluation). */
  sequential(signal?: AbortSignal): AsyncGenerator<Batch> {
    return this.batches(this.order(null), signal);
  }

  /** The file order of one epoch (for tests and diagnostics). */
  epochFiles(epoch: number): LabeledFile[] {
    return this.order(epoch).map((i) => this.files[i]!);
  }

  private async *batches(order: number[], signal?: AbortSignal): AsyncGenerator<Batch> {
    const queue = new BoundedQueue<Batch>(this.prefetch);
    const stop = new AbortController();
    const producer = this.produce(order, queue, stop.signal, signal).catch((e: unknown) => queue.fail(e));
    try {
      for (;;) {
        const r = await queue.shift();
        if (r.done) break;
        yield r.value;
      }
    } finally {
      stop.abort();
      queue.close();
      await producer;
    }
  }

  private async produce(order: number[], queue: BoundedQueue<Batch>, stop: AbortSignal, signal?: AbortSignal): Promise<void> {
    const { batchSize, imageSize, channels } = this.opts;
    const [h, w] = imageSize;
    const px = this.pixelsPerImage;
    // Decodes run ahead of assembly in a window of `concurrency` images, in epoch order.
    const pending: Promise<Uint8Array | null>[] = [];
    let launched = 0;
    const launch = (upTo: number): void => {
      while (launched < order.length && launched < upTo) pending[launched] = this.decodeFile(order[launched++]!);
    };
    let pos = 0;
    let index = 0;
    while (pos < order.length) {
      const imgs: Uint8Array[] = [];
      const labels: number[] = [];
      const paths: string[] = [];
      const end = Math.min(order.length, pos + batchSize);
      for (; pos < end; pos++) {
        if (stop.aborted || signal?.aborted) return queue.close();
        // Refill the window in bursts (half of it at a time): the decode pool sends each burst as a
        // few grouped messages rather than one message per image.
        if (launched - pos <= this.concurrency >> 1) launch(pos + this.concurrency);
        const img = await pending[pos]!;
        delete pending[pos];
        if (!img) continue;
        const f = this.files[order[pos]!]!;
        imgs.push(img);
        labels.push(f.label);
        paths.push(f.path);
      }
      if (imgs.length === 0) continue;
      const x = new Float32Array(imgs.length * px);
      imgs.forEach((img, k) => x.set(img, k * px));
      const batch: Batch = { x, y: Int32Array.from(labels), size: imgs.length, shape: [imgs.length, h, w, channels], index: index++, paths };
      if (!(await queue.push(batch))) return;
    }
    // Let decodes still in flight finish before closing (their files may be reported as skipped).
    await Promise.all(pending.filter(Boolean));
    queue.close();
  }
}
