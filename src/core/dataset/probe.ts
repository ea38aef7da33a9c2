/**
 * Header probe for one file: size on disk, image type and dimensions, read with as few bytes and
 * system calls as possible (open, one read, close; fstat only for files larger than the first read).
 * Used by the in-thread scanner and by scan-worker.ts. Dimensions come from `image-size`.
 */
import * as nodeFs from 'node:fs';
import { imageSize, types as imageSizeTypes } from 'image-size';
import { MAX_IMAGE_PIXELS } from '../shared/dataset-types';

/** Probe outcome. */
export const OK = 0;
export const ZERO_BYTE = 1;
export const CORRUPT = 2;
export const DENIED = 3;
/** Any other I/O error (vanished file, EIO, ...): reported as corrupt with the error code. */
export const IO_ERROR = 4;

/** Synchronous calls the probe makes: a seam for tests. */
export interface ProbeFs {
  openSync(path: string, flags: string): number;
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  fstatSync(fd: number): { size: number };
  closeSync(fd: number): void;
}

export const nodeProbeFs: ProbeFs = nodeFs;

/** image-size type names; a probe's `typeIndex` is 1 + the index here (0 = none). */
export const TYPE_NAMES: readonly string[] = imageSizeTypes;

/** First read: small files are read whole, which gives their size without an fstat call. */
const FIRST_READ = 4096;
/** First attempt: PNG, GIF and BMP headers and most JPEG headers fit; image-size then copies less. */
const FIRST_TRY = 512;
/** Retry read for headers past the first read (JPEG with big EXIF/ICC segments). */
const MAX_HEADER_READ = 4 << 20;
const DECODABLE_TYPES = new Set(['png', 'jpg', 'gif', 'bmp']);

/**
 * image-size reads through `new DataView(input.buffer, input.byteOffset + offset)`: past the end of
 * a view it would read whatever follows in the ArrayBuffer. So bytes handed to it are first moved
 * to the very end of a scratch buffer (a memmove, no allocation): out-of-range reads then throw.
 */
function endAligned(scratch: Uint8Array, src: Uint8Array, length: number): Uint8Array {
  const at = scratch.length - length;
  scratch.set(src.subarray(0, length), at);
  return scratch.subarray(at);
}

export class Prober {
  private readonly buf = new Uint8Array(FIRST_READ);
  private readonly scratch = new Uint8Array(FIRST_READ);
  private big: Uint8Array | undefined;
  /** Results of the last probe. */
  status = OK;
  size = 0;
  width = 0;
  height = 0;
  typeIndex = 0;
  errorCode = '';

  constructor(private readonly fs: ProbeFs = nodeProbeFs) {}

  probe(path: string): number {
    this.size = 0;
    this.width = 0;
    this.height = 0;
    this.typeIndex = 0;
    this.errorCode = '';
    let fd: number;
    try {
      fd = this.fs.openSync(path, 'r');
    } catch (e) {
      return this.fail(e);
    }
    try {
      const buf = this.buf;
      const n = this.fs.readSync(fd, buf, 0, FIRST_READ, 0);
      if (n === 0) {
        // An empty read at offset 0 of a regular file: the file is empty.
        return (this.status = ZERO_BYTE);
      }
      const whole = n < FIRST_READ;
      this.size = whole ? n : this.fs.fstatSync(fd).size;
      if (n > FIRST_TRY && this.measure(endAligned(this.scratch, buf, FIRST_TRY), true)) return (this.status = OK);
      if (this.measure(endAligned(this.scratch, buf, n), false)) return (this.status = OK);
      if (whole || this.size <= n) return (this.status = CORRUPT);
      const want = Math.min(this.size, MAX_HEADER_READ);
      if (!this.big || this.big.length < want) this.big = new Uint8Array(Math.max(want, 64 << 10));
      const big = this.big;
      // Read into the end of the buffer so the data is end-aligned already.
      const m = this.fs.readSync(fd, big, big.length - want, want, 0);
      if (m < want) big.copyWithin(big.length - m, big.length - want, big.length - want + m);
      return (this.status = this.measure(big.subarray(big.length - m), false) ? OK : CORRUPT);
    } catch (e) {
      return this.fail(e);
    } finally {
      try {
        this.fs.closeSync(fd);
      } catch {
        // nothing to do
      }
    }
  }

  /** Runs image-size; `prefix` → only trust a Keras-decodable type (others may need more bytes). */
  private measure(data: Uint8Array, prefix: boolean): boolean {
    try {
      const r = imageSize(data);
      const w = r.width;
      const h = r.height;
      if (!(w > 0 && h > 0 && Number.isFinite(w) && Number.isFinite(h))) return false;
      if (prefix && !(r.type && DECODABLE_TYPES.has(r.type))) return false;
      this.width = w;
      this.height = h;
      this.typeIndex = r.type ? TYPE_NAMES.indexOf(r.type) + 1 : 0;
      return true;
    } catch {
      return false;
    }
  }

  private fail(e: unknown): number {
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    this.errorCode = typeof code === 'string' ? code : e instanceof Error ? e.message : String(e);
    return (this.status = code === 'EACCES' || code === 'EPERM' ? DENIED : IO_ERROR);
  }
}

/** Probe results for a batch of files, in plain typed arrays (transferable from a worker). */
export interface BatchResult {
  status: Uint8Array;
  width: Uint32Array;
  height: Uint32Array;
  size: Float64Array;
  typeIndex: Uint8Array;
  /** Index in the batch → error code, for IO_ERROR/DENIED entries only. */
  errors: [number, string][];
}

export function probeBatch(prober: Prober, paths: readonly string[]): BatchResult {
  const n = paths.length;
  const r: BatchResult = {
    status: new Uint8Array(n),
    width: new Uint32Array(n),
    height: new Uint32Array(n),
    size: new Float64Array(n),
    typeIndex: new Uint8Array(n),
    errors: [],
  };
  for (let i = 0; i < n; i++) {
    const s = prober.probe(paths[i] as string);
    r.status[i] = s;
    r.width[i] = prober.width;
    r.height[i] = prober.height;
    r.size[i] = prober.size;
    r.typeIndex[i] = prober.typeIndex;
    if (s === IO_ERROR || s === DENIED) r.errors.push([i, prober.errorCode]);
  }
  return r;
}

/**
 * Why the last probe's file is not an image training uses, or undefined when it is: the one rule
 * behind both the inspection's counts and the trainer's file list (they must agree).
 */
export function unusableReason(p: Prober): string | undefined {
  if (p.status === ZERO_BYTE) return 'empty file (0 bytes)';
  if (p.status === DENIED) return 'permission denied';
  if (p.status === IO_ERROR) return p.errorCode === 'ENOENT' ? 'file disappeared' : `cannot be read (${p.errorCode})`;
  if (p.status === CORRUPT) return 'not a readable image (unreadable or truncated header)';
  const type = TYPE_NAMES[p.typeIndex - 1] ?? '';
  if (!DECODABLE_TYPES.has(type)) return `${type ? `${type.toUpperCase()} data` : 'unrecognised content'}: not a PNG, JPEG, GIF or BMP image`;
  if (p.width * p.height > MAX_IMAGE_PIXELS) return `too large: ${p.width}×${p.height} = ${((p.width * p.height) / 1e6).toFixed(1)} MP, over the ${MAX_IMAGE_PIXELS / 1e6} MP limit (not decoded)`;
  return undefined;
}
