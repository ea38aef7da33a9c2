/** Small helpers every benchmark uses. */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** The value after `--name` on the command line, if any. */
export function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** The median (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The vector extensions that matter to the kernels here, in the order people name them. */
const VECTOR_FLAGS = ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile', 'amx_bf16', 'amx_int8', 'asimd', 'sve'] as const;

/**
 * The CPU every figure was measured on, as a line for a benchmark's header: its model name from
 * /proc/cpuinfo, its cores and its vector extensions ("AMD EPYC, 2 cores; avx avx2 fma avx512f …;
 * no amx"). Figures from two CPU classes differ (issue 22), so each benchmark prints it.
 */
export function cpuLine(): string {
  let model = cpus()[0]?.model ?? 'unknown CPU';
  let flags = new Set<string>();
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? model;
    flags = new Set((/^(?:flags|Features)\s*:\s*(.+)$/m.exec(text)?.[1] ?? '').split(/\s+/));
  } catch {
    // not Linux: the model name from Node is all there is
  }
  const have = VECTOR_FLAGS.filter((f) => flags.has(f));
  const amx = flags.size ? (have.some((f) => f.startsWith('amx')) ? '' : '; no amx') : '';
  return `${model}, ${cpus().length} cores${have.length ? `; ${have.join(' ')}` : ''}${amx}`;
}
