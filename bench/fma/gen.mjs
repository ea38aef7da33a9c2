// Generates the AssemblyScript source of the GEMM microkernels for bench/fma/gemm-micro.ts:
// C[M,N] += A[M,K]·B[K,N], row-major f32, R rows × V vectors (4 columns each) of C in registers,
// K in blocks of KC. madd is f32x4.relaxed_madd when compiled with --enable relaxed-simd, else mul+add.
export function source(variants) {
  let s = `@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
`;
  for (const [R, V, order = 'a', KC = 512] of variants) s += kernel(R, V, KC, order);
  return s;
}
function block(R, V, pre, order) {
  const L = [];
  const rs = [...Array(R).keys()], vs = [...Array(V).keys()];
  for (const r of rs) L.push(`const pc${r} = c + <usize>(i + ${r}) * ldb + (<usize>j << 2); const pa${r} = a + <usize>(i + ${r}) * lda;`);
  for (const r of rs) for (const v of vs) L.push(`let c${r}_${v} = v128.load(pc${r}, ${16 * v});`);
  L.push(`let pb = b + <usize>k0 * ldb + (<usize>j << 2);`);
  L.push(`for (let kk = k0; kk < k1; kk++) {`);
  L.push(`  const ko = <usize>kk << 2;`);
  if (order === 'b') {
    // the row splats first, then one column vector at a time: R + 1 registers besides the accumulators
    for (const r of rs) L.push(`  const a${r} = v128.load32_splat(pa${r} + ko);`);
    for (const v of vs) {
      L.push(`  const b${v} = v128.load(pb, ${16 * v});`);
      for (const r of rs) L.push(`  c${r}_${v} = madd(a${r}, b${v}, c${r}_${v});`);
    }
  } else {
    for (const v of vs) L.push(`  const b${v} = v128.load(pb, ${16 * v});`);
    for (const r of rs) {
      L.push(`  const a${r} = v128.load32_splat(pa${r} + ko);`);
      for (const v of vs) L.push(`  c${r}_${v} = madd(a${r}, b${v}, c${r}_${v});`);
    }
  }
  L.push(`  pb += ldb;`);
  L.push(`}`);
  for (const r of rs) for (const v of vs) L.push(`v128.store(pc${r}, c${r}_${v}, ${16 * v});`);
  return L.map((l) => pre + l).join('\n');
}
function kernel(R, V, KC, order) {
  return `
export function gemm_${R}x${V}${order}${KC}(a: usize, b: usize, c: usize, m: i32, k: i32, n: i32): void {
  const lda = <usize>k << 2;
  const ldb = <usize>n << 2;
  for (let k0 = 0; k0 < k; k0 += ${KC}) {
    const k1 = min(k, k0 + ${KC});
    let i = 0;
    for (; i + ${R} <= m; i += ${R}) {
      for (let j = 0; j < n; j += ${4 * V}) {
${block(R, V, '        ', order)}
      }
    }
    for (; i < m; i++) {
      for (let j = 0; j < n; j += ${4 * V}) {
${block(1, V, '        ', order)}
      }
    }
  }
}
`;
}

/** Compiles AssemblyScript source (in memory) with the options of scripts/build-simd.mjs plus `extra`. */
export async function compile(src, extra) {
  const asc = (await import('assemblyscript/asc')).default;
  let binary;
  const err = [];
  const { error } = await asc.main(['k.ts', '-O3', '--runtime', 'stub', '--noAssert', '--use', 'abort=', '--enable', 'simd', '--importMemory', '--initialMemory', '1', '--maximumMemory', '65536', ...extra, '--outFile', 'k.wasm'], {
    readFile: (name) => (name === 'k.ts' ? src : null),
    writeFile: (name, contents) => {
      if (name.endsWith('.wasm')) binary = contents;
    },
    stdout: { write: () => true },
    stderr: { write: (s) => (err.push(String(s)), true) },
  });
  if (error || !binary) throw new Error(`asc: ${error?.message}\n${err.join('')}`);
  return binary;
}
