/**
 * Test fixtures: real image files of chosen sizes (sharp encodes PNG, JPEG, GIF, WebP and TIFF; a
 * tiny writer below makes 24-bit BMP, which sharp cannot write), plus broken files, in temp folders.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';

export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'webp' | 'tiff' | 'bmp';

/** A fresh temp folder and a function that removes it. */
export function tempDir(prefix = 'batch-advisor-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic pixels: a gradient with a seed-dependent tint. */
function pixels(width: number, height: number, channels: number, seed: number): Buffer {
  const px = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) px[(y * width + x) * channels + c] = (x * 7 + y * 3 + c * 50 + seed * 31) & 255;
    }
  }
  return px;
}

/** A valid uncompressed 24-bit BMP (BITMAPINFOHEADER, bottom-up rows padded to 4 bytes). */
export function bmpBytes(width: number, height: number, seed = 0): Buffer {
  const rowBytes = Math.ceil((width * 3) / 4) * 4;
  const dataSize = rowBytes * height;
  const b = Buffer.alloc(54 + dataSize);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(54 + dataSize, 2);
  b.writeUInt32LE(54, 10); // pixel data offset
  b.writeUInt32LE(40, 14); // info header size
  b.writeInt32LE(width, 18);
  b.writeInt32LE(height, 22);
  b.writeUInt16LE(1, 26); // planes
  b.writeUInt16LE(24, 28); // bits per pixel
  b.writeUInt32LE(0, 30); // BI_RGB
  b.writeUInt32LE(dataSize, 34);
  b.writeInt32LE(2835, 38); // 72 dpi
  b.writeInt32LE(2835, 42);
  const px = pixels(width, height, 3, seed);
  for (let y = 0; y < height; y++) {
    const row = 54 + (height - 1 - y) * rowBytes;
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      b[row + x * 3] = px[i + 2] as number; // BGR
      b[row + x * 3 + 1] = px[i + 1] as number;
      b[row + x * 3 + 2] = px[i] as number;
    }
  }
  return b;
}

/** Encoded bytes of a width × height image. */
export interface ImageOptions {
  channels?: 1 | 3 | 4;
  seed?: number;
  /** JPEG only: an EXIF description of this many characters (a big APP1 segment before the frame header). */
  exifChars?: number;
}

export async function imageBytes(format: ImageFormat, width: number, height: number, opts: ImageOptions = {}): Promise<Buffer> {
  const seed = opts.seed ?? 0;
  if (format === 'bmp') return bmpBytes(width, height, seed);
  const channels = opts.channels ?? 3;
  const img = sharp(pixels(width, height, channels, seed), { raw: { width, height, channels } });
  switch (format) {
    case 'png':
      return img.png().toBuffer();
    case 'jpeg':
      return (opts.exifChars ? img.withExif({ IFD0: { ImageDescription: 'x'.repeat(opts.exifChars) } }) : img).jpeg({ quality: 80 }).toBuffer();
    case 'gif':
      return img.gif().toBuffer();
    case 'webp':
      return img.webp().toBuffer();
    case 'tiff':
      return img.tiff().toBuffer();
  }
}

function writeWithDirs(path: string, data: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

/** Writes a real image file (folders created as needed) and returns its bytes. */
export async function writeImage(path: string, format: ImageFormat, width: number, height: number, opts: ImageOptions = {}): Promise<Buffer> {
  const bytes = await imageBytes(format, width, height, opts);
  writeWithDirs(path, bytes);
  return bytes;
}

/** Deterministic pseudo-random bytes (not an image of any kind for the seeds used in tests). */
export function randomBytes(length: number, seed = 1): Buffer {
  const b = Buffer.alloc(length);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    b[i] = s & 255;
  }
  return b;
}

/** Random bytes under an image name. */
export function writeCorrupt(path: string, length = 2048, seed = 1): void {
  writeWithDirs(path, randomBytes(length, seed));
}

/** The first `keep` bytes of a real PNG: a header cut short. */
export async function writeTruncatedPng(path: string, keep = 10): Promise<void> {
  const png = await imageBytes('png', 16, 16);
  writeWithDirs(path, png.subarray(0, keep));
}

export function writeEmpty(path: string): void {
  writeWithDirs(path, new Uint8Array(0));
}

/** Writes `format` bytes under a name whose extension says otherwise (e.g. JPEG data in x.png). */
export async function writeMismatched(path: string, format: ImageFormat, width: number, height: number): Promise<Buffer> {
  return writeImage(path, format, width, height);
}

/** Writes `count` copies of one small PNG into each class folder: quick large datasets. */
export async function writeManyCopies(root: string, classes: string[], perClass: number, width = 8, height = 8): Promise<number> {
  const png = await imageBytes('png', width, height);
  for (const c of classes) {
    mkdirSync(join(root, c), { recursive: true });
    for (let i = 0; i < perClass; i++) writeFileSync(join(root, c, `img_${String(i).padStart(6, '0')}.png`), png);
  }
  return classes.length * perClass;
}
