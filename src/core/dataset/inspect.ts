/**
 * Dataset inspector: what Keras `image_dataset_from_directory` would load from a folder, with
 * sizes, formats, distributions and the problems a person should fix — from file headers only.
 *
 * Scale: files are probed in batches of 256 (open, one small read, close; see probe.ts), in this
 * thread between yields to the event loop (so progress and cancellation work) and, for datasets
 * past ~4,000 images, also in a worker thread (pool.ts) to use a second core. At most MAX_QUEUE
 * batches are in flight. Per-image data lives in growable typed arrays (8 bytes an image); the
 * walker holds one directory's names at a time (plus, for nested class folders, a bounded cache).
 *
 * Measured (bench/scan.ts, 50,000 small PNG/JPEG, 2 CPUs, warm cache, quiet machine): best
 * 233-258 ms with the worker, 463 ms on one thread, against 1,256 ms for a Python PIL
 * `Image.open(p).size` loop (4.9-5.4× and 2.7×); CPU time ~450-520 ms either way.
 */
import { join, resolve, sep } from 'node:path';
import { CORRUPT, DENIED, IO_ERROR, OK, Prober, TYPE_NAMES, ZERO_BYTE, probeBatch, type BatchResult, type ProbeFs } from './probe';
import { MAX_IMAGE_PIXELS, type DatasetProblem, type DatasetReport, type Distribution, type HistogramBin, type InspectOptions, type ProblemKind } from '../shared/dataset-types';
import { SUPPORTED_EXTENSIONS, UNSUPPORTED_IMAGE_EXTENSIONS, abortError, extensionOf, nodeWalkFs, readRoot, walkClass, type WalkFs } from './walk';
import { ScanPool } from './pool';
import { IMAGE_EXTENSIONS_TEXT } from '../shared/constants';

/** Test and tuning seams, not part of the public contract. */
export interface InternalInspectOptions extends InspectOptions {
  /** Directory-reading layer (tests inject EACCES here). */
  fs?: WalkFs;
  /** File-probing layer (tests inject EACCES here); forces in-thread probing. */
  probeFs?: ProbeFs;
  /** Worker threads to probe with besides the main thread, started at once. Default: ScanPool.defaultCount() (1 on ≥ 2 CPUs), started past 4,096 files. */
  workers?: number;
  /**
   * A pause (ms) at every yield to the event loop. Test hook for the end-to-end "cancel during a
   * long scan" scenario: it makes a scan reliably slower than the UI that cancels it.
   */
  yieldDelayMs?: number;
}

const BATCH = 256;
/**
 * Default mode considers a worker at this many batches (4,096 files, ~40 ms of probing): smaller
 * scans don't pay its start-up (~30 ms from the bundle) and second JIT warm-up.
 */
const WORKER_AFTER_BATCHES = 16;
/** Batches queued at each worker. */
const WORKER_DEPTH = 6;
/** Batches probed but not yet folded into the report, at most. */
const MAX_QUEUE = 32;
/** Longest synchronous stretch before yielding to the event loop. */
const SLICE_MS = 8;
const PROGRESS_MS = 100;

/** Image types Keras (tf.io.decode_image) decodes. */
const DECODABLE = new Set(['png', 'jpg', 'gif', 'bmp']);
/** Types whose signature is strong enough to say "this file is really X"; others (e.g. TGA, no magic) count as corrupt. */
const RECOGNISABLE = new Set(['webp', 'tiff', 'heif', 'jp2', 'j2c', 'jxl', 'jxl-stream', 'psd', 'ico', 'cur', 'icns', 'dds', 'ktx', 'pnm', 'svg']);
const TYPE_LABEL: Record<string, string> = { jpg: 'JPEG', 'jxl-stream': 'JPEG XL', jxl: 'JPEG XL', heif: 'HEIF/AVIF', jp2: 'JPEG 2000', j2c: 'JPEG 2000' };

function typeLabel(t: string): string {
  return TYPE_LABEL[t] ?? t.toUpperCase();
}

function normalisedExt(ext: string): string {
  return ext === 'jpeg' ? 'jpg' : ext;
}

class GrowableU32 {
  data = new Uint32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Uint32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  view(): Uint32Array {
    return this.data.subarray(0, this.length);
  }
}

/** Quantile with linear interpolation between closest ranks (numpy's default), to 6 decimals. `sorted` ascending, non-empty. */
function quantile(sorted: ArrayLike<number>, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  // Rounded to 1e-6 so that e.g. 80 + 20 × 0.7 reads 94, not 93.99999999999999.
  return Math.round((a + (b - a) * (pos - lo)) * 1e6) / 1e6;
}

function distribution(sorted: ArrayLike<number>): Distribution {
  if (sorted.length === 0) return { min: 0, median: 0, p95: 0, max: 0 };
  return { min: sorted[0] as number, median: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), max: sorted[sorted.length - 1] as number };
}

/**
 * At most 20 bins of equal width 1, 2 or 5 × 10^k (at least 1: dimensions are integers), edges
 * multiples of the width; the last bin includes its upper edge.
 */
export function histogram(values: ArrayLike<number>, min: number, max: number, maxBins = 20): HistogramBin[] {
  if (values.length === 0) return [];
  if (min === max) return [{ from: min, to: max, count: values.length }];
  let step = 1;
  for (let k = 1; ; k *= 10) {
    const s = [k, 2 * k, 5 * k].find((c) => Math.ceil((max - Math.floor(min / c) * c) / c) <= maxBins);
    if (s !== undefined) {
      step = s;
      break;
    }
  }
  const from = Math.floor(min / step) * step;
  const bins = Math.max(1, Math.ceil((max - from) / step));
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) {
    const b = Math.min(bins - 1, Math.floor(((values[i] as number) - from) / step));
    counts[b] = (counts[b] as number) + 1;
  }
  return counts.map((count, i) => ({ from: from + i * step, to: from + (i + 1) * step, count }));
}

function checkOptions(o: InspectOptions): { split: number; size: [number, number]; channels: number; maxProblems: number } {
  const split = o.validationSplit ?? 0.2;
  if (!(split >= 0 && split < 1)) throw new RangeError(`validationSplit must be at least 0 and below 1, got ${split}.`);
  const size = o.imageSize ?? [256, 256];
  if (size.length !== 2 || !size.every((v) => Number.isInteger(v) && v > 0)) throw new RangeError(`imageSize must be two positive integers [height, width], got ${JSON.stringify(size)}.`);
  const channels = o.channels ?? 3;
  if (!(Number.isInteger(channels) && channels > 0)) throw new RangeError(`channels must be a positive integer, got ${channels}.`);
  const maxProblems = o.maxProblems ?? 1000;
  if (!(Number.isInteger(maxProblems) && maxProblems >= 0)) throw new RangeError(`maxProblems must be a non-negative integer, got ${maxProblems}.`);
  return { split, size: [size[0], size[1]], channels, maxProblems };
}

/**
 * Inspects the dataset folder `rootArg` (layout root/<class>/...; resolved to an absolute path,
 * which the report and its problems use). Dataset problems are listed in
 * the report, never thrown. Throws DatasetInputError when root is missing, a file or unreadable;
 * RangeError for bad options; rejects with an error named "AbortError" when `signal` aborts.
 */
export async function inspectDataset(rootArg: string, options: InternalInspectOptions = {}): Promise<DatasetReport> {
  const t0 = performance.now();
  const root = resolve(rootArg); // problems name absolute paths
  const checked = checkOptions(options);
  if (options.signal?.aborted) throw abortError();
  const scan = new Scan(root, options, checked.maxProblems);
  try {
    const classNames = await scan.walkRoot();
    for (let cls = 0; cls < classNames.length; cls++) await scan.walkClassFolder(cls, classNames[cls] as string);
    await scan.finish();
    return summarize(root, classNames, scan.tally, checked, performance.now() - t0);
  } finally {
    scan.close();
  }
}

/** The report from the tallies of a finished scan. */
function summarize(root: string, classNames: string[], t: Tally, o: ReturnType<typeof checkOptions>, scanMs: number): DatasetReport {
  const n = t.widths.length;
  const ws = t.widths.view().slice().sort();
  const hs = t.heights.view().slice().sort();
  const aspect = new Float64Array(n);
  const wv = t.widths.view();
  const hv = t.heights.view();
  for (let i = 0; i < n; i++) aspect[i] = (wv[i] as number) / (hv[i] as number);
  aspect.sort();
  const width = distribution(ws);
  const height = distribution(hs);
  const nonEmpty = t.classCounts.filter((c) => c > 0);
  const validation = Math.floor(o.split * n);
  const [h, w] = o.size;
  const uint8Bytes = n * h * w * o.channels;
  return {
    root,
    classes: classNames.map((name, i) => ({ name, count: t.classCounts[i] as number })),
    totalImages: n,
    formats: t.formats,
    bytesOnDisk: t.bytesOnDisk,
    width,
    height,
    widthHistogram: histogram(ws, width.min, width.max),
    heightHistogram: histogram(hs, height.min, height.max),
    aspectRatio: distribution(aspect),
    // image-size reports no colour information, so channels are unknown from headers alone.
    channels: n > 0 ? { unknown: n } : {},
    imbalanceRatio: classNames.length > 0 && nonEmpty.length === classNames.length ? Math.max(...nonEmpty) / Math.min(...nonEmpty) : null,
    validationSplit: o.split,
    train: n - validation,
    validation,
    decoded: { imageSize: [h, w], channels: o.channels, uint8Bytes, float32Bytes: uint8Bytes * 4 },
    problems: t.problems,
    problemCounts: t.problemCounts,
    scanMs,
  };
}

/** What a scan counts. */
interface Tally {
  problems: DatasetProblem[];
  problemCounts: Partial<Record<ProblemKind, number>>;
  widths: GrowableU32;
  heights: GrowableU32;
  formats: Record<string, number>;
  classCounts: number[];
  bytesOnDisk: number;
}

/**
 * Everything that can add to the report is consumed in submission order, so the report, and which
 * problems survive the cap, never depend on timing: probed batches (result here already, or from a
 * worker later) and notes from the walk (problems, class ends) queue up together.
 */
interface Entry {
  /** Worker batch id (for taking it back). */
  id?: number;
  paths?: string[];
  exts?: string[];
  cls?: number;
  result?: BatchResult;
  done?: Promise<void>;
  apply?: () => void;
}

/** One scan in progress: the walk, the probing (here and in workers), cancellation, progress and the tallies. */
class Scan {
  readonly tally: Tally = { problems: [], problemCounts: {}, widths: new GrowableU32(), heights: new GrowableU32(), formats: {}, classCounts: [], bytesOnDisk: 0 };
  private readonly fs: WalkFs;
  private readonly signal: AbortSignal | undefined;
  private readonly aborted: Promise<never>;
  private readonly onAbort: () => void;
  private readonly queue: Entry[] = [];
  private readonly prober: Prober;
  /** Workers: an explicit count starts now; by default one starts (ScanPool.defaultCount) once the dataset proves big enough to gain from it. */
  private readonly explicitWorkers: number | undefined;
  private pool: ScanPool | undefined;
  private batches = 0;
  private sliceStart = performance.now();
  private filesSeen = 0;
  private imagesFound = 0;
  private lastProgress = performance.now();

  constructor(
    private readonly root: string,
    private readonly options: InternalInspectOptions,
    private readonly maxProblems: number,
  ) {
    this.fs = options.fs ?? nodeWalkFs;
    this.signal = options.signal;
    // Cancellation: every await races the abort, so the scan's promise rejects promptly.
    let rejectAbort: ((e: Error) => void) | undefined;
    this.aborted = new Promise<never>((_, reject) => {
      rejectAbort = reject;
    });
    this.aborted.catch(() => undefined);
    this.onAbort = (): void => rejectAbort?.(abortError());
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.explicitWorkers = options.probeFs ? 0 : options.workers;
    this.pool = this.explicitWorkers !== undefined && this.explicitWorkers > 0 ? ScanPool.acquire(this.explicitWorkers) : undefined;
    this.prober = new Prober(options.probeFs);
  }

  close(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.pool?.release();
  }

  private race<T>(p: Promise<T>): Promise<T> {
    return this.signal ? Promise.race([p, this.aborted]) : p;
  }

  private checkAbort(): void {
    if (this.signal?.aborted) throw abortError();
  }

  private problem(kind: ProblemKind, path: string, message: string): void {
    const t = this.tally;
    t.problemCounts[kind] = (t.problemCounts[kind] ?? 0) + 1;
    if (t.problems.length < this.maxProblems) t.problems.push({ path, kind, message });
  }

  private progress(force = false): void {
    const { onProgress } = this.options;
    if (!onProgress) return;
    const now = performance.now();
    if (!force && now - this.lastProgress < PROGRESS_MS) return;
    this.lastProgress = now;
    onProgress({ filesSeen: this.filesSeen, imagesFound: this.imagesFound });
  }

  /** Lists the class folders; reports files and links at the root, and no or one class. */
  async walkRoot(): Promise<string[]> {
    const { root } = this;
    const listing = await this.race(readRoot(root, this.fs));
    const { classNames } = listing;
    for (const name of listing.rootFiles) {
      this.filesSeen++;
      const ext = extensionOf(name);
      if (SUPPORTED_EXTENSIONS.has(ext) || UNSUPPORTED_IMAGE_EXTENSIONS.has(ext)) {
        this.problem('root-file', join(root, name), `${join(root, name)} is directly in the dataset folder, outside any class folder, so Keras ignores it: move it into a class folder.`);
      }
    }
    for (const name of listing.rootSymlinks) {
      const p = join(root, name);
      this.problem('symlink-skipped', p, `${p} is a symbolic link directly in the dataset folder that does not lead to a folder, so it is not a class (Keras ignores it): move it into a class folder or remove it.`);
    }
    if (classNames.length === 0) {
      this.problem('no-classes', root, `${root} has no class subfolders: put the images in one subfolder per class (${join(root, '<class>', '<image>.png')}).`);
    } else if (classNames.length === 1) {
      this.problem('single-class', join(root, classNames[0] as string), `${root} has only one class folder (${classNames[0]}): a classifier needs at least two, so add one subfolder per class.`);
    }
    this.tally.classCounts = new Array<number>(classNames.length).fill(0);
    return classNames;
  }

  /** Folds one probed batch into the report, in submission order. */
  private consume(paths: string[], exts: string[], cls: number, r: BatchResult): void {
    const errs = r.errors.length > 0 ? new Map(r.errors) : undefined;
    for (let i = 0; i < paths.length; i++) {
      const p = paths[i] as string;
      const st = r.status[i];
      const ext = exts[i] as string;
      if (st === OK) this.consumeImage(p, ext, cls, r, i);
      else if (st === ZERO_BYTE) this.problem('zero-byte', p, `${p} is empty (0 bytes): delete it or replace it with the real image.`);
      else if (st === CORRUPT) this.problem('corrupt', p, `${p} is not a readable ${ext.toUpperCase()} image (unreadable or truncated header): re-export it or remove it.`);
      else if (st === DENIED) this.problem('permission-denied', p, `${p} cannot be read (permission denied): fix its permissions (e.g. chmod a+r) or remove it.`);
      else if (st === IO_ERROR && errs?.get(i) === 'ENOENT') {
        this.problem('vanished', p, `${p} disappeared during the scan (deleted or moved while it was read), so it is not counted: scan again once the folder is settled.`);
      } else if (st === IO_ERROR) this.problem('corrupt', p, `${p} could not be read (${errs?.get(i) ?? 'I/O error'}): check the file and re-copy it.`);
    }
  }

  /** One image whose header was read: counted, or reported when training could not use it. */
  private consumeImage(p: string, ext: string, cls: number, r: BatchResult, i: number): void {
    const t = this.tally;
    const type = TYPE_NAMES[(r.typeIndex[i] as number) - 1] ?? '';
    if (!DECODABLE.has(type)) {
      if (RECOGNISABLE.has(type)) {
        this.problem('extension-mismatch', p, `${p} contains ${typeLabel(type)} data, which Keras cannot decode, but is named .${ext}: convert it to PNG or JPEG, or remove it (not counted).`);
      } else {
        this.problem('corrupt', p, `${p} is not a readable ${ext.toUpperCase()} image (unrecognised header): re-export it or remove it.`);
      }
      return;
    }
    const pixels = (r.width[i] as number) * (r.height[i] as number);
    if (pixels > MAX_IMAGE_PIXELS) {
      this.problem('too-large', p, `${p} is ${r.width[i]}×${r.height[i]} = ${(pixels / 1e6).toFixed(1)} MP, over the ${MAX_IMAGE_PIXELS / 1e6} MP limit: training skips it (not counted); downscale it to use it.`);
      return;
    }
    if (type !== normalisedExt(ext)) {
      this.problem('extension-mismatch', p, `${p} contains ${typeLabel(type)} data but is named .${ext}: rename it to .${type} (Keras decodes by content, so it is still counted).`);
    }
    t.classCounts[cls] = (t.classCounts[cls] as number) + 1;
    t.formats[ext] = (t.formats[ext] ?? 0) + 1;
    t.bytesOnDisk += r.size[i] as number;
    t.widths.push(r.width[i] as number);
    t.heights.push(r.height[i] as number);
    this.imagesFound++;
  }

  private consumeReady(): void {
    const q = this.queue;
    for (let head = q[0]; head && (head.apply || head.result); head = q[0]) {
      q.shift();
      if (head.apply) head.apply();
      else this.consume(head.paths as string[], head.exts as string[], head.cls as number, head.result as BatchResult);
    }
  }

  /** Applies `f` now when nothing is queued before it, else in its turn. */
  private later(f: () => void): void {
    if (this.queue.length === 0) f();
    else this.queue.push({ apply: f });
  }

  private note(kind: ProblemKind, path: string, message: string): void {
    this.later(() => this.problem(kind, path, message));
  }

  /** Yields to the event loop (progress, cancellation, worker answers) when the slice is used up. */
  private async maybeYield(force: boolean): Promise<void> {
    if (force || performance.now() - this.sliceStart > SLICE_MS) {
      const delay = this.options.yieldDelayMs ?? 0;
      await this.race(new Promise<void>((r) => (delay > 0 ? setTimeout(r, delay) : setImmediate(r))));
      this.checkAbort();
      this.sliceStart = performance.now();
    }
  }

  private async drainTo(limit: number): Promise<void> {
    this.consumeReady();
    while (this.queue.length > limit) {
      const head = this.queue[0] as Entry;
      // Rather than wait on a worker that has not started the batch (descheduled on a busy
      // machine), take it back and probe it here.
      if (this.pool && head.id !== undefined && this.pool.takeBack(head.id)) {
        head.result = probeBatch(this.prober, head.paths as string[]);
        this.consumeReady();
        await this.maybeYield(false);
        continue;
      }
      await this.race(head.done as Promise<void>);
      this.consumeReady();
    }
  }

  private async submit(paths: string[], exts: string[], cls: number): Promise<void> {
    this.checkAbort();
    if (this.explicitWorkers === undefined && ++this.batches === WORKER_AFTER_BATCHES) {
      const n = ScanPool.defaultCount();
      if (n > 0) this.pool = ScanPool.acquire(n);
    }
    const pool = this.pool;
    const workers = pool?.size ?? 0;
    const entry: Entry = { paths, exts, cls };
    this.queue.push(entry);
    if (pool && workers > 0 && pool.pendingCount < workers * WORKER_DEPTH) {
      // A worker has room: hand the batch over and go on walking.
      const sent = pool.submit(paths);
      entry.id = sent.id;
      entry.done = sent.result.then((r) => {
        entry.result = r;
      });
      await this.drainTo(MAX_QUEUE);
    } else {
      entry.result = probeBatch(this.prober, paths);
      await this.drainTo(MAX_QUEUE);
      // With workers, yield after every batch so their answers are received and they stay busy.
      await this.maybeYield(workers > 0);
    }
    this.progress();
  }

  /** Walks one class folder (recursively, as Keras), probing its images in batches. */
  async walkClassFolder(cls: number, className: string): Promise<void> {
    const classDir = join(this.root, className);
    let batch: string[] = [];
    let batchExts: string[] = [];
    let classUnreadable = false;
    const walker = walkClass(classDir, this.fs, this.signal);
    for (;;) {
      const next = await this.race(walker.next());
      if (next.done) break;
      const dir = next.value;
      if (dir.error) {
        if (dir.dir === classDir) classUnreadable = true;
        const code = dir.error.code;
        if (code === 'EACCES' || code === 'EPERM') {
          this.note('permission-denied', dir.dir, `Folder ${dir.dir} cannot be read (permission denied), so its images are skipped: fix its permissions (e.g. chmod a+rx).`);
        } else {
          this.note('corrupt', dir.dir, `Folder ${dir.dir} could not be read (${code ?? dir.error.message}), so its images are skipped: check the disk and the folder.`);
        }
        continue;
      }
      this.noteLinksAndNames(dir);
      for (const name of dir.files) {
        this.filesSeen++;
        const ext = extensionOf(name);
        if (SUPPORTED_EXTENSIONS.has(ext)) {
          batch.push(dir.dir + sep + name);
          batchExts.push(ext);
          if (batch.length >= BATCH) {
            await this.submit(batch, batchExts, cls);
            batch = [];
            batchExts = [];
          }
        } else if (UNSUPPORTED_IMAGE_EXTENSIONS.has(ext)) {
          const p = join(dir.dir, name);
          this.note('unsupported-format', p, `${p} is a .${ext} image, which Keras skips: convert it to PNG or JPEG to use it.`);
        }
      }
      this.progress();
    }
    if (batch.length > 0) await this.submit(batch, batchExts, cls);
    this.later(() => {
      // An unreadable class folder is reported as such above, not again as empty.
      if (this.tally.classCounts[cls] === 0 && !classUnreadable) {
        this.problem('empty-class', classDir, `Class folder ${classDir} contains no loadable images: add images (${IMAGE_EXTENSIONS_TEXT}) or remove the folder.`);
      }
    });
  }

  private noteLinksAndNames(dir: { dir: string; linkedDirs: readonly string[]; brokenLinks: readonly string[]; badNames: readonly string[] }): void {
    for (const name of dir.linkedDirs) {
      const p = join(dir.dir, name);
      this.note('symlink-skipped', p, `${p} is a symbolic link to a folder inside a class folder, which is not descended into (as Keras, follow_links=False): replace it with the real folder if its images belong to the dataset.`);
    }
    for (const name of dir.brokenLinks) {
      const p = join(dir.dir, name);
      this.note('symlink-skipped', p, `${p} is a symbolic link to nothing (its target is missing), so it is skipped: fix or remove the link.`);
    }
    for (const name of dir.badNames) {
      const p = join(dir.dir, name);
      this.note('bad-file-name', p, `${p} has a name that is not valid UTF-8 (shown with �), so it cannot be opened by name and is skipped: rename it.`);
    }
  }

  /** Waits for every batch in flight and reports the final progress. */
  async finish(): Promise<void> {
    await this.drainTo(0);
    this.checkAbort();
    this.progress(true);
  }
}
