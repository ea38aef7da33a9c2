// AssemblyScript, compiled to WebAssembly SIMD by scripts/build-simd.mjs (not TypeScript: tsc and
// eslint skip this folder). The module has no memory of its own: it imports tfjs-backend-wasm's
// heap, so every pointer below is a byte offset into the tensors the backend already holds. It
// has no data segments, no globals and allocates nothing; scratch space comes from the caller.
//
// Layout: NHWC float32, channels last and contiguous; a "row" is one pixel's c channels. Channels
// go four to a v128; the c % 4 tail is handled by scalar code.

@inline function f32at(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}

@inline function vat(p: usize, i: i32): v128 {
  return v128.load(p + (<usize>i << 2));
}

/**
 * a·b + c. Fused (one rounding, vfmadd on x64) in the relaxed-SIMD build (scripts/build-simd.mjs
 * compiles this file with and without --enable relaxed-simd); plain mul + add otherwise.
 */
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Adds the four lanes of an f32x4 partial sum into four f64 accumulators at `dst`. */
@inline function flush(dst: usize, acc: v128): void {
  v128.store(dst, f64x2.add(v128.load(dst), f64x2.promote_low_f32x4(acc)));
  v128.store(dst + 16, f64x2.add(v128.load(dst + 16), f64x2.promote_low_f32x4(v128.shuffle<f32>(acc, acc, 2, 3, 0, 1))));
}

/**
 * Per-channel sums over `rows` rows of two [rows, c] arrays:
 *   s[j] += Σ (a[r, j] − ashift[j])        q[j] += Σ (a[r, j] − ashift[j])·(b[r, j] − bshift[j])
 * s and q are float64 (c each, accumulated into); the shifts are float32. Partial sums are float32
 * over blocks of at most 64 rows, then added in float64; the shifts keep the summands small (for
 * the moments, both are a value of the channel: Σx in float32 would lose the variance of a
 * channel whose mean is large against its spread).
 */
export function channelSums(a: usize, ashift: usize, b: usize, bshift: usize, c: i32, rows: i32, s: usize, q: usize): void {
  const c4 = c & ~3;
  for (let r0 = 0; r0 < rows; r0 += 64) {
    const r1 = min(rows, r0 + 64);
    for (let j = 0; j < c4; j += 4) {
      const ka = vat(ashift, j);
      const k = vat(bshift, j);
      let s0 = f32x4.splat(0);
      let s1 = f32x4.splat(0);
      let q0 = f32x4.splat(0);
      let q1 = f32x4.splat(0);
      let r = r0;
      for (; r + 2 <= r1; r += 2) {
        const i0 = r * c + j;
        const i1 = i0 + c;
        const a0 = f32x4.sub(vat(a, i0), ka);
        const a1 = f32x4.sub(vat(a, i1), ka);
        s0 = f32x4.add(s0, a0);
        s1 = f32x4.add(s1, a1);
        q0 = f32x4.add(q0, f32x4.mul(a0, f32x4.sub(vat(b, i0), k)));
        q1 = f32x4.add(q1, f32x4.mul(a1, f32x4.sub(vat(b, i1), k)));
      }
      if (r < r1) {
        const i0 = r * c + j;
        const a0 = f32x4.sub(vat(a, i0), ka);
        s0 = f32x4.add(s0, a0);
        q0 = f32x4.add(q0, f32x4.mul(a0, f32x4.sub(vat(b, i0), k)));
      }
      flush(s + (<usize>j << 3), f32x4.add(s0, s1));
      flush(q + (<usize>j << 3), f32x4.add(q0, q1));
    }
    for (let j = c4; j < c; j++) {
      const ka = <f64>f32at(ashift, j);
      const k = <f64>f32at(bshift, j);
      let ss: f64 = 0;
      let qq: f64 = 0;
      for (let r = r0; r < r1; r++) {
        const v = <f64>f32at(a, r * c + j) - ka;
        ss += v;
        qq += v * (<f64>f32at(b, r * c + j) - k);
      }
      store<f64>(s + (<usize>j << 3), load<f64>(s + (<usize>j << 3)) + ss);
      store<f64>(q + (<usize>j << 3), load<f64>(q + (<usize>j << 3)) + qq);
    }
  }
}

/**
 * The BatchNormalization forward pass, per channel j:
 *   y[r, j] = ((x[r, j] − mh[j]) − ml[j])·scale[j] + beta[j]
 * with the mean split in two float32s (mh + ml): x·scale + (beta − mean·scale) would cancel in
 * float32 when the mean is large against the spread.
 */
export function normalize(x: usize, y: usize, mh: usize, ml: usize, scale: usize, beta: usize, c: i32, rows: i32): void {
  const c4 = c & ~3;
  for (let r = 0; r < rows; r++) {
    const base = r * c;
    let j = 0;
    for (; j < c4; j += 4) {
      const d = f32x4.sub(f32x4.sub(vat(x, base + j), vat(mh, j)), vat(ml, j));
      v128.store(y + (<usize>(base + j) << 2), f32x4.add(f32x4.mul(d, vat(scale, j)), vat(beta, j)));
    }
    for (; j < c; j++) {
      store<f32>(y + (<usize>(base + j) << 2), (f32at(x, base + j) - f32at(mh, j) - f32at(ml, j)) * f32at(scale, j) + f32at(beta, j));
    }
  }
}

/**
 * The BatchNormalization input gradient, per channel j:
 *   dx[r, j] = a[j]·dy[r, j] + k[j]·(x[r, j] − mu[j]) + e[j]          (float32 a, k, mu, e)
 */
export function bnGradApply(dy: usize, x: usize, dx: usize, a: usize, k: usize, mu: usize, e: usize, c: i32, rows: i32): void {
  const c4 = c & ~3;
  for (let r = 0; r < rows; r++) {
    const base = r * c;
    let j = 0;
    for (; j < c4; j += 4) {
      const t = f32x4.add(f32x4.mul(vat(a, j), vat(dy, base + j)), f32x4.mul(vat(k, j), f32x4.sub(vat(x, base + j), vat(mu, j))));
      v128.store(dx + (<usize>(base + j) << 2), f32x4.add(t, vat(e, j)));
    }
    for (; j < c; j++) {
      store<f32>(dx + (<usize>(base + j) << 2), f32at(a, j) * f32at(dy, base + j) + f32at(k, j) * (f32at(x, base + j) - f32at(mu, j)) + f32at(e, j));
    }
  }
}

/**
 * out[i] = dy[i] where x[i] lies in the range, else 0 (as dy·mask, so a NaN or infinite dy outside
 * the range still gives NaN, as tfjs's products do). loExclusive: lo < x ≤ hi, and a NaN x gives
 * NaN (tfjs's step(NaN)); otherwise lo ≤ x ≤ hi.
 */
export function maskGrad(dy: usize, x: usize, out: usize, n: i32, lo: f32, hi: f32, loExclusive: bool): void {
  const n4 = n & ~3;
  const vlo = f32x4.splat(lo);
  const vhi = f32x4.splat(hi);
  const one = f32x4.splat(1);
  const nan = f32x4.splat(NaN);
  let i = 0;
  if (loExclusive) {
    for (; i < n4; i += 4) {
      const v = vat(x, i);
      const m = v128.and(v128.and(f32x4.gt(v, vlo), f32x4.le(v, vhi)), one);
      const g = f32x4.mul(vat(dy, i), m);
      v128.store(out + (<usize>i << 2), v128.bitselect(g, nan, f32x4.eq(v, v)));
    }
    for (; i < n; i++) {
      const v = f32at(x, i);
      store<f32>(out + (<usize>i << 2), v != v ? NaN : f32at(dy, i) * (v > lo && v <= hi ? 1 : 0));
    }
  } else {
    for (; i < n4; i += 4) {
      const v = vat(x, i);
      const m = v128.and(v128.and(f32x4.ge(v, vlo), f32x4.le(v, vhi)), one);
      v128.store(out + (<usize>i << 2), f32x4.mul(vat(dy, i), m));
    }
    for (; i < n; i++) {
      const v = f32at(x, i);
      store<f32>(out + (<usize>i << 2), f32at(dy, i) * (v >= lo && v <= hi ? 1 : 0));
    }
  }
}

/**
 * Depthwise convolution filter gradient, channel multiplier 1:
 *   dw[a, b, ch] = Σ_{n,i,j} x[n, i·sh + a·dh − pT, j·sw + b·dw − pL, ch] · dy[n, i, j, ch]
 * x: [n, h, w, c], dy: [n, oh, ow, c], out: [kh, kw, c] (overwritten).
 */
export function depthwiseFilterGrad(
  x: usize, dy: usize, out: usize,
  n: i32, h: i32, w: i32, c: i32, oh: i32, ow: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pT: i32, pL: i32,
): void {
  memory.fill(out, 0, <usize>(kh * kw * c) << 2);
  const c4 = c & ~3;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const o = (a * kw + b) * c;
      // Output columns j whose input column j·sw + b·dw − pL lies inside [0, w).
      const off = b * dw - pL;
      let j0 = 0;
      while (j0 < ow && j0 * sw + off < 0) j0++;
      let j1 = ow;
      while (j1 > j0 && (j1 - 1) * sw + off >= w) j1--;
      if (j0 >= j1) continue;
      for (let bn = 0; bn < n; bn++) {
        for (let i = 0; i < oh; i++) {
          const hh = i * sh + a * dh - pT;
          if (hh < 0 || hh >= h) continue;
          const xRow = ((bn * h + hh) * w + off) * c; // + j·sw·c
          const dyRow = (bn * oh + i) * ow * c; // + j·c
          const xStep = sw * c;
          let ch = 0;
          for (; ch + 8 <= c4; ch += 8) {
            let acc0 = vat(out, o + ch);
            let acc1 = vat(out, o + ch + 4);
            let xi = xRow + j0 * xStep + ch;
            let di = dyRow + j0 * c + ch;
            for (let j = j0; j < j1; j++) {
              acc0 = f32x4.add(acc0, f32x4.mul(vat(x, xi), vat(dy, di)));
              acc1 = f32x4.add(acc1, f32x4.mul(vat(x, xi + 4), vat(dy, di + 4)));
              xi += xStep;
              di += c;
            }
            v128.store(out + (<usize>(o + ch) << 2), acc0);
            v128.store(out + (<usize>(o + ch + 4) << 2), acc1);
          }
          for (; ch < c4; ch += 4) {
            let acc0 = vat(out, o + ch);
            let xi = xRow + j0 * xStep + ch;
            let di = dyRow + j0 * c + ch;
            for (let j = j0; j < j1; j++) {
              acc0 = f32x4.add(acc0, f32x4.mul(vat(x, xi), vat(dy, di)));
              xi += xStep;
              di += c;
            }
            v128.store(out + (<usize>(o + ch) << 2), acc0);
          }
          for (; ch < c; ch++) {
            let acc = f32at(out, o + ch);
            for (let j = j0; j < j1; j++) acc += f32at(x, xRow + j * xStep + ch) * f32at(dy, dyRow + j * c + ch);
            store<f32>(out + (<usize>(o + ch) << 2), acc);
          }
        }
      }
    }
  }
}

/**
 * MaxPoolGrad of a 2×2, stride-2 pool without padding over even h and w: each input position is in
 * exactly one window, so every dx value is written (no zero fill). dy goes to the window's first
 * maximum in row-major order (ties to the earlier position, as tfjs's cpu backend):
 *   i01 = a1 > a0,  j23 = a3 > a2,  m01 = max(a0, a1),  m23 = max(a2, a3),  pick = m23 > m01
 * x: [n, h, w, c], dy: [n, h/2, w/2, c], dx: [n, h, w, c].
 */
export function maxPool2x2Grad(x: usize, dy: usize, dx: usize, n: i32, h: i32, w: i32, c: i32): void {
  const oh = h >> 1;
  const ow = w >> 1;
  const row = w * c;
  const c4 = c & ~3;
  const zero = f32x4.splat(0);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const p0 = ((b * h + 2 * i) * w + 2 * j) * c;
        const q0 = ((b * oh + i) * ow + j) * c;
        let k = 0;
        for (; k < c4; k += 4) {
          const p = p0 + k;
          const a0 = vat(x, p);
          const a1 = vat(x, p + c);
          const a2 = vat(x, p + row);
          const a3 = vat(x, p + row + c);
          const g = vat(dy, q0 + k);
          const i01 = f32x4.gt(a1, a0);
          const j23 = f32x4.gt(a3, a2);
          const pick = f32x4.gt(v128.bitselect(a3, a2, j23), v128.bitselect(a1, a0, i01));
          const first = v128.bitselect(zero, g, pick); // g where the first pair wins
          const second = v128.bitselect(g, zero, pick);
          v128.store(dx + (<usize>p << 2), v128.bitselect(zero, first, i01));
          v128.store(dx + (<usize>(p + c) << 2), v128.bitselect(first, zero, i01));
          v128.store(dx + (<usize>(p + row) << 2), v128.bitselect(zero, second, j23));
          v128.store(dx + (<usize>(p + row + c) << 2), v128.bitselect(second, zero, j23));
        }
        for (; k < c; k++) {
          const p = p0 + k;
          const a0 = f32at(x, p);
          const a1 = f32at(x, p + c);
          const a2 = f32at(x, p + row);
          const a3 = f32at(x, p + row + c);
          const g = f32at(dy, q0 + k);
          const i01 = a1 > a0;
          const j23 = a3 > a2;
          const pick = (j23 ? a3 : a2) > (i01 ? a1 : a0);
          store<f32>(dx + (<usize>p << 2), !pick && !i01 ? g : 0);
          store<f32>(dx + (<usize>(p + c) << 2), !pick && i01 ? g : 0);
          store<f32>(dx + (<usize>(p + row) << 2), pick && !j23 ? g : 0);
          store<f32>(dx + (<usize>(p + row + c) << 2), pick && j23 ? g : 0);
        }
      }
    }
  }
}

/**
 * The Conv2D filter gradient's patch matrix for images [n0, n0 + cnt):
 *   dst[(a, b, ch), (m, i, j)] = xc[ch, n0 + m, i·sh + a·dh − top, j·sw + b·dw − left]   (0 outside)
 * from xc, a channel-major copy of the layer input ([ci, n, h, w]). Rows of k = cnt·oh·ow floats;
 * stride-1 runs are one memory.copy each.
 */
export function patchMatrix(
  xc: usize, dst: usize, n: i32, h: i32, w: i32, ci: i32, n0: i32, cnt: i32, oh: i32, ow: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, top: i32, left: i32,
): void {
  const k = cnt * oh * ow;
  const rowBytes = <usize>ow << 2;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const c0 = b * dw - left;
      // Output columns [jLo, jHi) read inside the image: j·sw + c0 ∈ [0, w).
      const jLo = min(ow, c0 >= 0 ? 0 : (sw - 1 - c0) / sw);
      const jHi = max(jLo, min(ow, w - 1 - c0 < 0 ? 0 : (w - 1 - c0) / sw + 1));
      for (let ch = 0; ch < ci; ch++) {
        let o = ((a * kw + b) * ci + ch) * k;
        for (let img = n0; img < n0 + cnt; img++) {
          const plane = (ch * n + img) * h;
          for (let i = 0; i < oh; i++, o += ow) {
            const out = dst + (<usize>o << 2);
            const r = i * sh + a * dh - top;
            if (r < 0 || r >= h) {
              memory.fill(out, 0, rowBytes);
              continue;
            }
            const src = xc + (<usize>((plane + r) * w + c0) << 2);
            if (jLo > 0) memory.fill(out, 0, <usize>jLo << 2);
            if (sw == 1) {
              memory.copy(out + (<usize>jLo << 2), src + (<usize>jLo << 2), <usize>(jHi - jLo) << 2);
            } else {
              for (let j = jLo; j < jHi; j++) store<f32>(out + (<usize>j << 2), load<f32>(src + (<usize>(j * sw) << 2)));
            }
            if (jHi < ow) memory.fill(out + (<usize>jHi << 2), 0, <usize>(ow - jHi) << 2);
          }
        }
      }
    }
  }
}

/**
 * One Adam step for one variable, as tfjs-core 4.22's AdamOptimizer computes it (same order of
 * float32 operations), into new buffers:
 *   m' = m·β1 + g·(1 − β1)
 *   v' = v·β2 + g²·(1 − β2)
 *   x' = ((m' / ob1) / (√(v' / ob2) + ε))·(−lr) + x        ob1 = 1 − β1ᵗ, ob2 = 1 − β2ᵗ
 * The caller passes c1 = 1 − β1, c2 = 1 − β2 and nlr = −lr rounded as tfjs rounds its scalars.
 */
export function adam(
  x: usize, m: usize, v: usize, g: usize, xOut: usize, mOut: usize, vOut: usize, n: i32,
  b1: f32, c1: f32, b2: f32, c2: f32, ob1: f32, ob2: f32, nlr: f32, eps: f32,
): void {
  const vb1 = f32x4.splat(b1);
  const vb2 = f32x4.splat(b2);
  const vc1 = f32x4.splat(c1);
  const vc2 = f32x4.splat(c2);
  const vob1 = f32x4.splat(ob1);
  const vob2 = f32x4.splat(ob2);
  const veps = f32x4.splat(eps);
  const vnlr = f32x4.splat(nlr);
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const off = <usize>i << 2;
    const gi = v128.load(g + off);
    const mi = f32x4.add(f32x4.mul(v128.load(m + off), vb1), f32x4.mul(gi, vc1));
    const vi = f32x4.add(f32x4.mul(v128.load(v + off), vb2), f32x4.mul(f32x4.mul(gi, gi), vc2));
    const step = f32x4.div(f32x4.div(mi, vob1), f32x4.add(f32x4.sqrt(f32x4.div(vi, vob2)), veps));
    v128.store(mOut + off, mi);
    v128.store(vOut + off, vi);
    v128.store(xOut + off, f32x4.add(f32x4.mul(step, vnlr), v128.load(x + off)));
  }
  for (; i < n; i++) {
    const off = <usize>i << 2;
    const gi = load<f32>(g + off);
    const mi = load<f32>(m + off) * b1 + gi * c1;
    const vi = load<f32>(v + off) * b2 + gi * gi * c2;
    store<f32>(mOut + off, mi);
    store<f32>(vOut + off, vi);
    store<f32>(xOut + off, (mi / ob1 / (sqrt<f32>(vi / ob2) + eps)) * nlr + load<f32>(x + off));
  }
}

/**
 * The filter gradient of a 1×1, stride-1 convolution: a matrix product with a long inner dimension,
 *   out[i, o] = Σ_r x[r, i] · dy[r, o]        x: [rows, ci], dy: [rows, co], out: [ci, co]
 * read in place (no transposed copy of x, no packed copy of dy). Register tiles of 4 input × 8
 * output channels accumulate over all rows.
 */
export function pointwiseFilterGrad(x: usize, dy: usize, out: usize, rows: i32, ci: i32, co: i32): void {
  const ci4 = ci & ~3;
  const co8 = co & ~7;
  const co4 = co & ~3;
  const xs = <usize>ci << 2;
  const ds = <usize>co << 2;
  for (let i = 0; i < ci4; i += 4) {
    let o = 0;
    for (; o < co8; o += 8) {
      let a0 = f32x4.splat(0);
      let b0 = f32x4.splat(0);
      let a1 = f32x4.splat(0);
      let b1 = f32x4.splat(0);
      let a2 = f32x4.splat(0);
      let b2 = f32x4.splat(0);
      let a3 = f32x4.splat(0);
      let b3 = f32x4.splat(0);
      let px = x + (<usize>i << 2);
      let pd = dy + (<usize>o << 2);
      for (let r = 0; r < rows; r++) {
        const d0 = v128.load(pd);
        const d1 = v128.load(pd, 16);
        const x0 = f32x4.splat(load<f32>(px));
        const x1 = f32x4.splat(load<f32>(px, 4));
        const x2 = f32x4.splat(load<f32>(px, 8));
        const x3 = f32x4.splat(load<f32>(px, 12));
        a0 = madd(x0, d0, a0);
        b0 = madd(x0, d1, b0);
        a1 = madd(x1, d0, a1);
        b1 = madd(x1, d1, b1);
        a2 = madd(x2, d0, a2);
        b2 = madd(x2, d1, b2);
        a3 = madd(x3, d0, a3);
        b3 = madd(x3, d1, b3);
        px += xs;
        pd += ds;
      }
      const q = out + (<usize>(i * co + o) << 2);
      v128.store(q, a0);
      v128.store(q, b0, 16);
      v128.store(q + ds, a1);
      v128.store(q + ds, b1, 16);
      v128.store(q + 2 * ds, a2);
      v128.store(q + 2 * ds, b2, 16);
      v128.store(q + 3 * ds, a3);
      v128.store(q + 3 * ds, b3, 16);
    }
    for (; o < co; o++) {
      for (let k = 0; k < 4; k++) pointwiseOne(x, dy, out, rows, ci, co, i + k, o);
    }
  }
  for (let i = ci4; i < ci; i++) {
    let o = 0;
    for (; o < co4; o += 4) {
      let a = f32x4.splat(0);
      let px = x + (<usize>i << 2);
      let pd = dy + (<usize>o << 2);
      for (let r = 0; r < rows; r++) {
        a = f32x4.add(a, f32x4.mul(f32x4.splat(load<f32>(px)), v128.load(pd)));
        px += xs;
        pd += ds;
      }
      v128.store(out + (<usize>(i * co + o) << 2), a);
    }
    for (; o < co; o++) pointwiseOne(x, dy, out, rows, ci, co, i, o);
  }
}

function pointwiseOne(x: usize, dy: usize, out: usize, rows: i32, ci: i32, co: i32, i: i32, o: i32): void {
  let s: f32 = 0;
  for (let r = 0; r < rows; r++) s += load<f32>(x + (<usize>(r * ci + i) << 2)) * load<f32>(dy + (<usize>(r * co + o) << 2));
  store<f32>(out + (<usize>(i * co + o) << 2), s);
}

/**
 * Depthwise convolution input gradient, channel multiplier 1, gathered per input pixel:
 *   dx[n, y, x, ch] = Σ_{a,b} dy[n, i, j, ch] · w[a, b, ch]
 *   over the taps with i·sh = y + pT − a·dh and j·sw = x + pL − b·dw inside dy
 * dy: [n, oh, ow, c], w: [kh, kw, c], dx: [n, h, w, c] (every value written). No zero insertion
 * for strides: only the taps that exist are visited, each once per pixel (its checks outside the
 * channel loop); the pixel's c channels (a few KiB) are accumulated in place in dx.
 */
export function depthwiseInputGrad(
  dy: usize, wt: usize, dx: usize,
  n: i32, h: i32, w: i32, c: i32, oh: i32, ow: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pT: i32, pL: i32,
): void {
  const c4 = c & ~3;
  for (let bn = 0; bn < n; bn++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = dx + (<usize>(((bn * h + y) * w + x) * c) << 2);
        let first = true;
        for (let a = 0; a < kh; a++) {
          const t = y + pT - a * dh;
          if (t < 0 || t % sh != 0) continue;
          const i = t / sh;
          if (i >= oh) continue;
          for (let b = 0; b < kw; b++) {
            const u = x + pL - b * dw;
            if (u < 0 || u % sw != 0) continue;
            const j = u / sw;
            if (j >= ow) continue;
            const d = dy + (<usize>(((bn * oh + i) * ow + j) * c) << 2);
            const f = wt + (<usize>((a * kw + b) * c) << 2);
            let ch = 0;
            if (first) {
              for (; ch < c4; ch += 4) {
                const k = <usize>ch << 2;
                v128.store(o + k, f32x4.mul(v128.load(d + k), v128.load(f + k)));
              }
              for (; ch < c; ch++) {
                const k = <usize>ch << 2;
                store<f32>(o + k, load<f32>(d + k) * load<f32>(f + k));
              }
              first = false;
            } else {
              for (; ch < c4; ch += 4) {
                const k = <usize>ch << 2;
                v128.store(o + k, f32x4.add(v128.load(o + k), f32x4.mul(v128.load(d + k), v128.load(f + k))));
              }
              for (; ch < c; ch++) {
                const k = <usize>ch << 2;
                store<f32>(o + k, load<f32>(o + k) + load<f32>(d + k) * load<f32>(f + k));
              }
            }
          }
        }
        if (first) memory.fill(o, 0, <usize>c << 2);
      }
    }
  }
}

/** Depth of the k blocks of gemm: a 2×16 tile's B block (KC × 16 floats, 32 KiB) stays in L1. */
const GEMM_KC = 512;

/**
 * C[m, n] += A[m, k] · B[k, n], all row-major float32, n a multiple of 4. The Conv2D filter
 * gradient's product (A its patch matrix, B dy, C the gradient: m = kh·kw·ci rows, n = co, k =
 * the batch's output positions, large). Tiles of 2 rows × 16 columns of C (8 accumulators) over
 * blocks of GEMM_KC, each step two broadcast loads of A and four loads of B; then 2 rows × 4
 * columns for n's tail. A last odd row runs as a pair with itself and is stored once. Measured
 * (bench/fma/gemm-micro.ts, one thread, the tutorial CNN's shapes) with madd fused: 1.3–1.6× XNNPACK's
 * BatchMatMul; with mul + add about XNNPACK's speed.
 */
export function gemm(a: usize, b: usize, c: usize, m: i32, k: i32, n: i32): void {
  const lda = <usize>k << 2;
  const ldb = <usize>n << 2;
  const n16 = n & ~15;
  for (let k0 = 0; k0 < k; k0 += GEMM_KC) {
    const k1 = min(k, k0 + GEMM_KC);
    for (let i = 0; i < m; i += 2) {
      const two = i + 1 < m;
      const pa0 = a + <usize>i * lda;
      const pa1 = two ? pa0 + lda : pa0;
      const row = c + <usize>i * ldb;
      let j = 0;
      for (; j < n16; j += 16) {
        const pc0 = row + (<usize>j << 2);
        const pc1 = two ? pc0 + ldb : pc0;
        let c00 = v128.load(pc0);
        let c01 = v128.load(pc0, 16);
        let c02 = v128.load(pc0, 32);
        let c03 = v128.load(pc0, 48);
        let c10 = v128.load(pc1);
        let c11 = v128.load(pc1, 16);
        let c12 = v128.load(pc1, 32);
        let c13 = v128.load(pc1, 48);
        let pb = b + <usize>k0 * ldb + (<usize>j << 2);
        for (let kk = k0; kk < k1; kk++) {
          const ko = <usize>kk << 2;
          const a0 = v128.load32_splat(pa0 + ko);
          const a1 = v128.load32_splat(pa1 + ko);
          let bv = v128.load(pb);
          c00 = madd(a0, bv, c00);
          c10 = madd(a1, bv, c10);
          bv = v128.load(pb, 16);
          c01 = madd(a0, bv, c01);
          c11 = madd(a1, bv, c11);
          bv = v128.load(pb, 32);
          c02 = madd(a0, bv, c02);
          c12 = madd(a1, bv, c12);
          bv = v128.load(pb, 48);
          c03 = madd(a0, bv, c03);
          c13 = madd(a1, bv, c13);
          pb += ldb;
        }
        // Row 1 first: a lone last row (pc1 = pc0) ends with row 0's identical sums.
        v128.store(pc1, c10);
        v128.store(pc1, c11, 16);
        v128.store(pc1, c12, 32);
        v128.store(pc1, c13, 48);
        v128.store(pc0, c00);
        v128.store(pc0, c01, 16);
        v128.store(pc0, c02, 32);
        v128.store(pc0, c03, 48);
      }
      for (; j < n; j += 4) {
        const pc0 = row + (<usize>j << 2);
        const pc1 = two ? pc0 + ldb : pc0;
        let c0 = v128.load(pc0);
        let c1 = v128.load(pc1);
        let pb = b + <usize>k0 * ldb + (<usize>j << 2);
        for (let kk = k0; kk < k1; kk++) {
          const ko = <usize>kk << 2;
          const bv = v128.load(pb);
          c0 = madd(v128.load32_splat(pa0 + ko), bv, c0);
          c1 = madd(v128.load32_splat(pa1 + ko), bv, c1);
          pb += ldb;
        }
        v128.store(pc1, c1);
        v128.store(pc0, c0);
      }
    }
  }
}
