/**
 * Decodes and resizes one image with sharp (libvips, runs on its own threads) into uint8 HWC
 * pixels (0–255) with 1 (grayscale), 3 (RGB) or 4 (RGBA) channels.
 *
 * Images larger than `maxPixels` are refused from their header, before any pixel is decoded
 * (sharp's `limitInputPixels`). GIFs give their first frame (Keras semantics).
 */
import { decode as decodeBmpData } from 'bmp-ts';
import { open, readFile } from 'node:fs/promises';
import sharp from 'sharp';
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
  const bmp = await readBmpIfBmp(path, maxPixels);
  let img = (bmp ?? sharp(path, { limitInputPixels: maxPixels, pages: 1, failOn: 'error' })).resize(width, height, { fit: 'fill', kernel: 'linear' });
  if (opts.channels === 1) img = img.removeAlpha().toColourspace('b-w');
  else if (opts.channels === 3) img = img.removeAlpha().toColourspace('srgb');
  else img = img.ensureAlpha().toColourspace('srgb');
  let out: { data: Buffer; info: sharp.OutputInfo };
  try {
    out = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true }); // 16-bit inputs → 8-bit
  } catch (e) {
    throw await explain(path, e, maxPixels);
  }
  const { data, info } = out;
  if (info.channels !== opts.channels || info.width !== width || info.height !== height || data.length !== width * height * opts.channels) {
    throw new SkipFileError(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${width}×${height}×${opts.channels}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

async function explain(path: string, e: unknown, maxPixels: number): Promise<SkipFileError> {
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
  return new SkipFileError(`cannot be decoded: ${message.split('\n')[0]}`);
}

/** The first bytes of a BMP file ("BM"). */
async function isBmp(path: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw await explain(path, e, 0);
  }
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x42 && b[1] === 0x4d;
  } finally {
    await fh.close();
  }
}

/**
 * A sharp input of raw RGBA pixels for a BMP file, or undefined for other formats. The pixel limit
 * is checked from the header before decoding. 24-bit and palette BMPs have no alpha (opaque).
 */
export async function readBmpIfBmp(path: string, maxPixels: number): Promise<sharp.Sharp | undefined> {
  if (!(await isBmp(path))) return undefined;
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
