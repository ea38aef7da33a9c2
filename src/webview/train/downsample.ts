/**
 * Downsampling for drawing: every point is kept in memory, but a chart only needs about two
 * points per horizontal pixel. Min/max per bucket keeps spikes (a loss jump, a NaN-adjacent step)
 * visible, which averaging would hide. Pure: shared by the panel and its unit test and benchmark.
 */

/** Points [x, y] in x order reduced to at most 2 × buckets (min and max of each x bucket, in x order). */
export function minMaxDownsample(xs: ArrayLike<number>, ys: ArrayLike<number | null>, buckets: number): { x: number[]; y: (number | null)[] } {
  const n = xs.length;
  if (n <= buckets * 2 || buckets < 1) return { x: Array.from(xs), y: Array.from(ys) };
  const x0 = xs[0]!;
  const span = xs[n - 1]! - x0 || 1;
  const outX: number[] = [];
  const outY: (number | null)[] = [];
  let i = 0;
  for (let b = 0; b < buckets && i < n; b++) {
    const end = b === buckets - 1 ? Infinity : x0 + (span * (b + 1)) / buckets;
    let minI = -1;
    let maxI = -1;
    for (; i < n && xs[i]! < end; i++) {
      const y = ys[i];
      if (y === null || y === undefined || !Number.isFinite(y)) continue;
      if (minI < 0 || y < (ys[minI] as number)) minI = i;
      if (maxI < 0 || y > (ys[maxI] as number)) maxI = i;
    }
    if (minI < 0) continue;
    const [a, c] = minI <= maxI ? [minI, maxI] : [maxI, minI];
    outX.push(xs[a]!);
    outY.push(ys[a] as number);
    if (c !== a) {
      outX.push(xs[c]!);
      outY.push(ys[c] as number);
    }
  }
  return { x: outX, y: outY };
}

/**
 * Exponential moving average with TensorBoard's debiasing (the first points are not dragged
 * towards 0). `weight` 0 = raw, 0.99 = very smooth. Non-finite values are passed through as null.
 */
export function ema(ys: ArrayLike<number | null>, weight: number): (number | null)[] {
  const out: (number | null)[] = new Array<number | null>(ys.length);
  let last = 0;
  let count = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || y === undefined || !Number.isFinite(y)) {
      out[i] = null;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    count++;
    const debias = weight > 0 ? 1 - Math.pow(weight, count) : 1;
    out[i] = last / debias;
  }
  return out;
}
