/**
 * A fast path for small PNGs (MNIST- and CIFAR-like datasets), where sharp's per-image setup
 * (~1.3–1.9 ms for a 28×28 PNG, measured) costs ~10× the decoding itself: pngjs (zlib in native
 * code, filters in JS, ~0.1 ms) plus a bilinear resize in JS.
 *
 * Only cases whose result matches sharp's path take it (anything else returns null and goes to
 * sharp): 8-bit grayscale, gray+alpha, RGB or RGBA (translucent ones only at their own size:
 * sharp resizes them premultiplied); no embedded ICC profile (libvips would convert
 * colours) and no tRNS chunk; at most SMALL_PIXELS; target size ≥ the image in both dimensions
 * (bilinear enlarging as sharp does it; shrinking needs sharp's antialiasing filter); and
 * no RGB → grayscale conversion (libvips' luminance weights are its own).
 */
import { PNG } from 'pngjs';

/** Larger images go to sharp: its setup is then small next to decoding. */
export const SMALL_PIXELS = 256 * 256;

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

interface PngHeader {
  width: number;
  height: number;
  /** True for grayscale (colour types 0 and 4). */
  gray: boolean;
  /** True with an alpha channel (colour types 4 and 6). */
  alpha: boolean;
  eligible: boolean;
}

/** IHDR plus a scan of chunk types, without decompressing anything. */
export function readPngHeader(buf: Uint8Array): PngHeader | null {
  if (buf.length < 33 || SIGNATURE.some((b, i) => buf[i] !== b)) return null;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  const bitDepth = buf[24]!;
  const colorType = buf[25]!;
  let eligible = bitDepth === 8 && (colorType === 0 || colorType === 2 || colorType === 4 || colorType === 6);
  for (let p = 8; eligible && p + 8 <= buf.length; ) {
    const len = dv.getUint32(p);
    const type = String.fromCharCode(buf[p + 4]!, buf[p + 5]!, buf[p + 6]!, buf[p + 7]!);
    if (type === 'iCCP' || type === 'tRNS') eligible = false;
    if (type === 'IDAT' || type === 'IEND') break; // colour chunks come before the image data
    p += 12 + len;
  }
  return { width, height, gray: colorType === 0 || colorType === 4, alpha: colorType === 4 || colorType === 6, eligible };
}

/**
 * Source index and weight of the lower neighbour for each target column/row. sharp's 'linear'
 * enlargement samples target d at source s = d·(src/dst) − 0.5, clamped to the image (measured on
 * ramps: 4 → 8 gives 0 0 50 100 150 200 125 50); equal sizes are copied.
 */
interface Axis {
  i0: Int32Array;
  i1: Int32Array;
  f: Float32Array;
}

const axes = new Map<string, Axis>();

function axis(src: number, dst: number): Axis {
  const key = `${src}:${dst}`;
  let a = axes.get(key);
  if (a) return a;
  a = { i0: new Int32Array(dst), i1: new Int32Array(dst), f: new Float32Array(dst) };
  const scale = src / dst;
  for (let d = 0; d < dst; d++) {
    const s = src === dst ? d : Math.min(src - 1, Math.max(0, d * scale - 0.5));
    const lo = Math.floor(s);
    a.i0[d] = lo;
    a.i1[d] = Math.min(src - 1, lo + 1);
    a.f[d] = s - lo;
  }
  if (axes.size > 64) axes.clear();
  axes.set(key, a);
  return a;
}

/**
 * Decodes `buf` to [height, width, channels] uint8 when it is a PNG the fast path handles exactly
 * like sharp; null otherwise (the caller uses sharp). Throws on a corrupt PNG.
 */
export function decodeSmallPng(buf: Uint8Array, height: number, width: number, channels: 1 | 3 | 4, maxPixels = SMALL_PIXELS): Uint8Array | null {
  const h = readPngHeader(buf);
  if (!h || !h.eligible || h.width * h.height > Math.min(SMALL_PIXELS, maxPixels) || h.width > width || h.height > height) return null;
  if (channels === 1 && !h.gray) return null;
  const png = PNG.sync.read(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
  // sharp resizes translucent images premultiplied by alpha: leave those to it.
  if (h.alpha && (h.width !== width || h.height !== height) && !opaque(png.data)) return null;
  return resizeRgba(png.data, png.width, png.height, height, width, channels);
}

function opaque(rgba: Uint8Array): boolean {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) return false;
  return true;
}

/** Bilinear resize of RGBA pixels to [height, width, channels] (1: the R channel of a gray image). */
export function resizeRgba(rgba: Uint8Array, sw: number, sh: number, height: number, width: number, channels: 1 | 3 | 4): Uint8Array {
  const out = new Uint8Array(height * width * channels);
  const ax = axis(sw, width);
  const ay = axis(sh, height);
  let o = 0;
  for (let y = 0; y < height; y++) {
    const r0 = ay.i0[y]! * sw * 4;
    const r1 = ay.i1[y]! * sw * 4;
    const fy = ay.f[y]!;
    for (let x = 0; x < width; x++) {
      const c0 = ax.i0[x]! * 4;
      const c1 = ax.i1[x]! * 4;
      const fx = ax.f[x]!;
      for (let c = 0; c < channels; c++) {
        const a = rgba[r0 + c0 + c]!;
        const b = rgba[r0 + c1 + c]!;
        const top = a + (b - a) * fx;
        const d = rgba[r1 + c0 + c]!;
        const e = rgba[r1 + c1 + c]!;
        const bottom = d + (e - d) * fx;
        out[o++] = Math.round(top + (bottom - top) * fy); // Uint8Array clamps
      }
    }
  }
  return out;
}
