/**
 * Axis ticks for the training panel's charts. Pure: unit-tested in Node.
 *
 * Steps are whole numbers: a short run's step axis gets 1, 2, 3 … (or 2, 4 …, 5, 10 …), never
 * uPlot's 2.5 and 7.5. Memory is drawn on a log scale bounded at powers of two, ticked at powers of
 * two (or of 4, 16 … when the range is wide), which format as whole KiB / MiB / GiB.
 */

/** Whole-number ticks in [min, max], 1, 2 or 5 × 10^k apart, at most `maxTicks` of them. */
export function integerTicks(min: number, max: number, maxTicks: number): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max < min) [min, max] = [max, min];
  const most = Math.max(1, Math.floor(maxTicks));
  const count = (step: number): number => Math.floor(max / step) - Math.ceil(min / step) + 1;
  let step = 1;
  search: for (let mag = 1; mag < 1e15; mag *= 10) {
    for (const m of [1, 2, 5]) {
      step = m * mag;
      if (count(step) <= most) break search;
    }
  }
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max; v += step) out.push(v);
  return out;
}

/**
 * The log-scale range for bytes: from a power of two below the data (one more, so the lowest line
 * does not lie on the axis) to the power of two at or above it; at least two powers wide.
 */
export function logByteRange(min: number, max: number): [number, number] {
  const lo = Number.isFinite(min) && min > 0 ? min : 1;
  const hi = Number.isFinite(max) && max >= lo ? max : lo;
  const a = Math.floor(Math.log2(lo)) - 1;
  const b = Math.max(Math.ceil(Math.log2(hi)), a + 2);
  return [2 ** a, 2 ** b];
}

/** Powers of two in [min, max], every 2nd, 4th … power when there are more than `maxTicks`. */
export function logByteTicks(min: number, max: number, maxTicks: number): number[] {
  if (!(min > 0) || !(max >= min)) return [];
  const a = Math.ceil(Math.log2(min) - 1e-9);
  const b = Math.floor(Math.log2(max) + 1e-9);
  let every = 1;
  while (Math.floor((b - a) / every) + 1 > Math.max(2, maxTicks)) every *= 2;
  const out: number[] = [];
  // Anchored at the top power (the budget and the peaks are near it), down to the range's bottom.
  for (let e = b; e >= a; e -= every) out.unshift(2 ** e);
  return out;
}
