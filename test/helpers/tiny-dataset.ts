/**
 * Tiny image datasets for the trainer's tests, generated with sharp: `root/<class>/<i>.png`.
 * Class k is a learnable pattern (brightness and stripe direction) plus seeded noise.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import zlib from 'node:zlib';

export interface TinyDatasetOptions {
  classes?: number;
  perClass?: number;
  /** Square side in pixels. Default 16. */
  size?: number;
  /** Channels stored in the PNG: 1, 3 or 4. Default 3. */
  channels?: 1 | 3 | 4;
  seed?: number;
}

/** A small seeded generator (mulberry32): the same numbers for the same seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Raw pixels of one image of class `k`. */
export function patternPixels(k: number, size: number, channels: number, rand: () => number): Buffer {
  const buf = Buffer.alloc(size * size * channels);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const stripe = (k % 2 === 0 ? x : y) % 4 < 2 ? 1 : 0;
      const base = 40 + ((k * 97) % 160) + stripe * 50;
      for (let c = 0; c < channels; c++) {
        const v = c === 3 ? 255 : base + (c * 30 * k) % 60 + Math.floor(rand() * 30) - 15;
        buf[(y * size + x) * channels + c] = Math.max(0, Math.min(255, v));
      }
    }
  }
  return buf;
}

/** Writes the dataset and returns the list of files with their labels (classes sorted by name). */
export async function makeTinyDataset(root: string, opts: TinyDatasetOptions = {}): Promise<{ root: string; files: { path: string; label: number }[]; classNames: string[] }> {
  const classes = opts.classes ?? 2;
  const perClass = opts.perClass ?? 10;
  const size = opts.size ?? 16;
  const channels = opts.channels ?? 3;
  const rand = rng(opts.seed ?? 7);
  const classNames = Array.from({ length: classes }, (_, k) => `class_${k}`);
  const files: { path: string; label: number }[] = [];
  for (let k = 0; k < classes; k++) {
    const dir = join(root, classNames[k]!);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const path = join(dir, `${String(i).padStart(4, '0')}.png`);
      await sharp(patternPixels(k, size, channels, rand), { raw: { width: size, height: size, channels } })
        .png()
        .toFile(path);
      files.push({ path, label: k });
    }
  }
  return { root, files, classNames };
}

/** A file with an image extension whose content is not an image. */
export function writeCorruptImage(path: string): void {
  writeFileSync(path, Buffer.from('this is not a png at all, just text pretending to be one'));
}

/**
 * A PNG whose header claims width×height but whose pixel data is a few bytes: refusing it "before
 * decoding" is then visible (decoding it would fail as corrupt, not as too large).
 */
export function writeHugeHeaderPng(path: string, width: number, height: number): void {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  writeFileSync(path, Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]));
}
