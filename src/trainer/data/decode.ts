/**
 * Decodes and resizes one image into uint8 HWC pixels (0–255) with 1 (grayscale), 3 (RGB) or 4
 * (RGBA) channels: small PNGs in JS (./png-fast, ~10× faster than sharp's per-image setup, same
 * pixels ±1), everything else with sharp (libvips, runs on its own threads).
 *
 * Images larger than `maxPixels` are refused from their header, before any pixel is decoded
 * (sharp's `limitInputPixels`). GIFs give their first frame (Keras semantics).
 */
import { decode as decodeBmpData } from 'bmp-ts';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isMainThread } from 'node:worker_threads';
import sharp from 'sharp';
import { decodeSmallPng } from './png-fast';
import { describeFsError } from '../../core/fs-errors';
import { MAX_IMAGE_PIXELS } from '../../core/shared/dataset-types';

/** 50 megapixels (the inspection reports larger images as too large with the same limit). */
export const DEFAULT_MAX_PIXELS = MAX_IMAGE_PIXELS;

export interface DecodeOptions {
  /** [height, width] */
  imageSize: [number, number];
  channels: 1 | 3 | 4;
  maxPixels?: number;
}

/** A file that cannot be used; the pipeline skips and reports it. */
export class SkipFileError extends Error {
  override readonly name = 'SkipFileError';
}

let configured = false;

/** sharp's operation cache only helps when the same file is read twice in a row: keep memory flat. */
function configureSharp(): void {
  if (configured) return;
  configured = true;
  sharp.cache(false);
}

export async function decodeImage(path: string, opts: DecodeOptions): Promise<Uint8Array> {
  configureSharp();
  const [height, width] = opts.imageSize;
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  // sharp (libvips) has no BMP loader; Keras decodes BMP, so BMP data (by content, as Keras) is
  // decoded with bmp-ts and handed to sharp as raw RGBA.
  const format = await sniffFormat(path);
  // Keras (tf.io.decode_image) decodes these four only, by content; the inspection counts the same.
  if (format === undefined) throw new SkipFileError('cannot be decoded: not a PNG, JPEG, GIF or BMP image (unrecognised content)');
  const bmp = format === 'BMP' ? await readBmp(path, maxPixels) : undefined;
  let input: string | Buffer = path;
  if (format === 'PNG') {
    // Small PNGs are decoded in JS (./png-fast); the bytes read go to sharp otherwise.
    try {
      input = await readSmall(path);
    } catch (e) {
      throw await explain(path, e, maxPixels, format);
    }
    const fast = fastPng(input, opts);
    if (fast) return fast;
  }
  let img = (bmp ?? sharp(input, { limitInputPixels: maxPixels, pages: 1, failOn: 'error' })).resize(width, height, { fit: 'fill', kernel: 'linear' });
  if (opts.channels === 1) img = img.removeAlpha().toColourspace('b-w');
  else if (opts.channels === 3) img = img.removeAlpha().toColourspace('srgb');
  else img = img.ensureAlpha().toColourspace('srgb');
  let out: { data: Buffer; info: sharp.OutputInfo };
  try {
    out = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true }); // 16-bit inputs → 8-bit
  } catch (e) {
    throw await explain(path, e, maxPixels, format);
  }
  const { data, info } = out;
  if (info.channels !== opts.channels || info.width !== width || info.height !== height || data.length !== width * height * opts.channels) {
    throw new SkipFileError(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${width}×${height}×${opts.channels}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Reads a (usually small) file: blocking in a decode worker, where nothing else waits and one
 * read() beats libuv's four round trips (open, stat, read, close); asynchronous elsewhere.
 */
const readSmall = isMainThread ? readFile : (path: string): Promise<Buffer> => Promise.resolve().then(() => readFileSync(path));

/** The JS path for small PNGs (null: not one it handles, use sharp). */
function fastPng(buf: Buffer, opts: DecodeOptions): Uint8Array | null {
  try {
    return decodeSmallPng(buf, opts.imageSize[0], opts.imageSize[1], opts.channels, opts.maxPixels ?? DEFAULT_MAX_PIXELS);
  } catch {
    throw new SkipFileError('cannot be decoded: the PNG data is truncated or corrupt');
  }
}

async function explain(path: string, e: unknown, maxPixels: number, format?: string): Promise<SkipFileError> {
  const message = e instanceof Error ? e.message : String(e);
  if (/pixel limit/i.test(message)) {
    try {
      const m = await sharp(path, { limitInputPixels: false }).metadata();
      if (m.width && m.height) {
        return new SkipFileError(`too large: ${m.width}×${m.height} = ${((m.width * m.height) / 1e6).toFixed(1)} MP, over the ${(maxPixels / 1e6).toFixed(0)} MP limit (not decoded)`);
      }
    } catch {
      /* fall through */
    }
    return new SkipFileError(`too large: over the ${(maxPixels / 1e6).toFixed(0)} MP limit (not decoded)`);
  }
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new SkipFileError('file disappeared');
  if (code === 'EACCES' || code === 'EPERM') return new SkipFileError('permission denied');
  // Any other file-system code (EMFILE, EIO, ELOOP…) is the true cause, never "corrupt".
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return new SkipFileError(`cannot be read: ${describeFsError(e)}`);
  // libvips' error text is per thread and can read "Unknown error" when decodes run at once:
  // the reason is said from what is known for sure, the format the file starts with.
  if (format === undefined) return new SkipFileError('cannot be decoded: not a PNG, JPEG, GIF or BMP image (unrecognised content)');
  return new SkipFileError(`cannot be decoded: the ${format} data is truncated or corrupt`);
}

/** The format a file's first bytes say (as Keras decodes by content), or undefined. Opening it also surfaces permission and vanished-file errors with their code. */
async function sniffFormat(path: string): Promise<'PNG' | 'JPEG' | 'GIF' | 'BMP' | undefined> {
  // Synchronous: 4 bytes of a file the decode reads next anyway (cheaper than three thread-pool round trips).
  const b = Buffer.alloc(4);
  let bytesRead: number;
  try {
    const fd = openSync(path, 'r');
    try {
      bytesRead = readSync(fd, b, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw await explain(path, e, 0);
  }
  if (bytesRead === 0) throw new SkipFileError('empty file (0 bytes)');
  if (bytesRead >= 4 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'PNG';
  if (bytesRead >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'JPEG';
  if (bytesRead >= 3 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) return 'GIF';
  if (bytesRead >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'BMP';
  return undefined;
}

/**
 * A sharp input of raw RGBA pixels for a BMP file. The pixel limit
 * is checked from the header before decoding. 24-bit and palette BMPs have no alpha (opaque).
 */
async function readBmp(path: string, maxPixels: number): Promise<sharp.Sharp> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (e) {
    throw await explain(path, e, maxPixels);
  }
  if (data.length < 26) throw new SkipFileError('cannot be decoded: truncated BMP header');
  const w = Math.abs(data.readInt32LE(18));
  const h = Math.abs(data.readInt32LE(22));
  if (w * h > maxPixels) throw new SkipFileError(`too large: ${w}×${h} = ${((w * h) / 1e6).toFixed(1)} MP, over the ${(maxPixels / 1e6).toFixed(0)} MP limit (not decoded)`);
  let bmp: ReturnType<typeof decodeBmpData>;
  try {
    bmp = decodeBmpData(data, { toRGBA: true });
  } catch (e) {
    throw new SkipFileError(`cannot be decoded: not a readable BMP (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})`);
  }
  const width = bmp.width;
  const height = Math.abs(bmp.height);
  const rgba = bmp.data;
  if (!(width > 0 && height > 0) || rgba.length < width * height * 4) throw new SkipFileError('cannot be decoded: truncated or malformed BMP pixel data');
  // Only 32-bit BMPs carry alpha, and many of those leave it 0: then the image is opaque too.
  let hasAlpha = false;
  if (bmp.bitPP === 32) for (let i = 3; i < width * height * 4 && !hasAlpha; i += 4) hasAlpha = rgba[i] !== 0;
  if (!hasAlpha) for (let i = 3; i < width * height * 4; i += 4) rgba[i] = 255;
  return sharp(rgba.subarray(0, width * height * 4), { raw: { width, height, channels: 4 } });
}
