/**
 * Decodes and resizes one image with sharp (libvips, runs on its own threads) into uint8 HWC
 * pixels (0–255) with 1 (grayscale), 3 (RGB) or 4 (RGBA) channels.
 *
 * Images larger than `maxPixels` are refused from their header, before any pixel is decoded
 * (sharp's `limitInputPixels`). GIFs give their first frame (Keras semantics).
 */
import sharp from 'sharp';

/** 50 megapixels: a 7071×7071 image, 200 MB as RGBA. */
export const DEFAULT_MAX_PIXELS = 50_000_000;

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
  let img = sharp(path, { limitInputPixels: maxPixels, pages: 1, failOn: 'error' }).resize(width, height, { fit: 'fill', kernel: 'linear' });
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
