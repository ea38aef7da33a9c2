/**
 * Fashion-MNIST (Zalando Research: 60,000 training + 10,000 test 28×28 greyscale photos of clothing
 * in 10 classes) as a Keras image folder, from Debian's `dataset-fashion-mnist` package
 * (/usr/share/datasets/fashion-mnist/*.gz, IDX files): <out>/<class>/<index>.png. A real dataset
 * for the benchmarks; generated on demand into bench/.data, never committed.
 *
 *   node --import tsx bench/fashion-mnist.ts [--out bench/.data/fashion-mnist] [--split train|test]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import { flag } from './util';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot'];

function idx(path: string): Buffer {
  if (!existsSync(path)) throw new Error(`${path} not found: install Debian's package (apt-get install dataset-fashion-mnist)`);
  return gunzipSync(readFileSync(path));
}

/** Writes the folder unless a complete one is there; returns its path and image count. */
export async function writeFashionMnist(out: string, split: 'train' | 'test' = 'train'): Promise<{ folder: string; images: number }> {
  const marker = join(out, '.complete');
  if (existsSync(marker)) return { folder: out, images: Number(readFileSync(marker, 'utf8')) };
  const prefix = split === 'train' ? 'train' : 't10k';
  const images = idx(join(FASHION_MNIST_DIR, `${prefix}-images-idx3-ubyte.gz`));
  const labels = idx(join(FASHION_MNIST_DIR, `${prefix}-labels-idx1-ubyte.gz`));
  if (images.readUInt32BE(0) !== 2051 || labels.readUInt32BE(0) !== 2049) throw new Error('not IDX image/label files');
  const n = images.readUInt32BE(4);
  const [h, w] = [images.readUInt32BE(8), images.readUInt32BE(12)];
  for (const c of FASHION_CLASSES) mkdirSync(join(out, c), { recursive: true });
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        const i = next++;
        const px = images.subarray(16 + i * h * w, 16 + (i + 1) * h * w);
        const file = join(out, FASHION_CLASSES[labels[8 + i]!]!, `${String(i).padStart(5, '0')}.png`);
        await sharp(px, { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').png().toFile(file);
      }
    }),
  );
  writeFileSync(marker, String(n));
  return { folder: out, images: n };
}

if (require.main === module) {
  const out = resolve(flag('out') ?? 'bench/.data/fashion-mnist');
  const split = flag('split') === 'test' ? 'test' : 'train';
  void writeFashionMnist(out, split).then((r) => console.log(`${r.images} images in ${r.folder}`));
}
