/**
 * Start-up benchmark: whole processes, timed from spawn to exit as a person waits for them.
 *
 *   npm run build && flock /tmp/bench.lock node --import tsx bench/startup.ts [--runs 7] [--files 50000] [--baseline other/cli.js]
 *
 * Runs, interleaved round by round (one warm-up round first, not counted):
 *   node -e 0, python3 -c "import PIL.Image"    the floors: starting Node, starting Python with PIL
 *   batch-advisor --help / --version            dist/cli.js, as the `bin` runs it
 *   batch-advisor inspect <folder> --json       on bench/scan.ts's generated folder (50,000 small PNG/JPEG)
 *   python3 PIL loop                            walks the same folder, Image.open(p).size for each image
 * and prints best and median wall times, the inspect/PIL ratio, and the load average.
 * `--baseline` adds `--help` and `inspect --json` of another build of the CLI (e.g. an older commit's
 * dist/cli.js copied with its scan-worker.js into bench/.data/) to the same rounds, for a before/after.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureDataset } from './scan';
import { median } from './util';

const ROOT = resolve(__dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const PYTHON = '/usr/bin/python3';

/** The Python a person would write for "sizes of every image in this folder": walk, open, read size. */
const PIL_WALK = [
  'import os, sys',
  'from PIL import Image',
  'exts = {".bmp", ".gif", ".jpeg", ".jpg", ".png"}',
  'n = 0',
  'for d, _, files in os.walk(sys.argv[1]):',
  '    for f in files:',
  '        if os.path.splitext(f)[1].lower() in exts:',
  '            with Image.open(os.path.join(d, f)) as im: s = im.size',
  '            n += 1',
  'print(n)',
].join('\n');

interface Case {
  name: string;
  cmd: string;
  args: string[];
  /** Checks the output once (a benchmark of a failing command measures nothing). */
  check?: (stdout: string) => void;
}

/** The scan's own time as `inspect --json` reports it (the rest of the process's wall time is start-up and output). */
function scanMs(stdout: string): number {
  return (JSON.parse(stdout) as { scanMs: number }).scanMs;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} wants a positive whole number`);
  return v;
}

/** Children get a clean environment: no NODE_OPTIONS (e.g. a test runner's --import tsx). */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

/** Wall milliseconds of one whole process; throws when it fails. */
function time(c: Case): { ms: number; stdout: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(c.cmd, c.args, { encoding: 'utf8', env: childEnv(), maxBuffer: 256 * 2 ** 20, stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error || r.status !== 0) throw new Error(`${c.name} failed (exit ${r.status}): ${r.error?.message ?? r.stderr.trim().split('\n').at(-1) ?? ''}`);
  return { ms, stdout: r.stdout };
}

function stringArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function pilAvailable(): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import PIL'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return `PIL is not importable by ${PYTHON}: install Debian's python3-pil (\`apt-get install -y python3-pil\`) to compare.`;
  return undefined;
}

const best = (xs: number[]): number => Math.min(...xs);
const fmt = (ms: number): string => `${ms.toFixed(0).padStart(5)} ms`;
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first.`);
  const files = arg('files', 50000);
  const runs = arg('runs', 7);
  const dir = await ensureDataset(files);
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const pilNote = pilAvailable();

  const n = files.toLocaleString('en-US');
  const nodeFloor: Case = { name: 'node -e 0 (floor)', cmd: process.execPath, args: ['-e', '0'] };
  const help: Case = { name: 'batch-advisor --help', cmd: process.execPath, args: [CLI, '--help'], check: (s) => assertIncludes(s, 'Usage: batch-advisor') };
  const ver: Case = { name: 'batch-advisor --version', cmd: process.execPath, args: [CLI, '--version'], check: (s) => assertIncludes(s, version) };
  const inspect: Case = {
    name: `batch-advisor inspect --json (${n})`,
    cmd: process.execPath,
    args: [CLI, 'inspect', dir, '--json'],
    check: (s) => assertIncludes(String((JSON.parse(s) as { totalImages: number }).totalImages), String(files)),
  };
  const pyFloor: Case = { name: 'python3 -c "import PIL.Image" (floor)', cmd: PYTHON, args: ['-c', 'import PIL.Image'] };
  const pil: Case = { name: `python3 PIL Image.open(p).size walk (${n})`, cmd: PYTHON, args: ['-c', PIL_WALK, dir], check: (s) => assertIncludes(s, String(files)) };
  const cases = pilNote ? [nodeFloor, help, ver, inspect] : [nodeFloor, help, ver, inspect, pyFloor, pil];
  const baseline = stringArg('baseline');
  if (baseline) {
    const other = resolve(baseline);
    if (!existsSync(other)) throw new Error(`--baseline ${baseline}: no such file`);
    cases.push(
      { name: 'baseline --help', cmd: process.execPath, args: [other, '--help'], check: help.check },
      { name: `baseline inspect --json (${n})`, cmd: process.execPath, args: [other, 'inspect', dir, '--json'], check: inspect.check },
    );
  }

  console.log(`startup: ${runs} interleaved rounds of whole processes (+1 warm-up), ${availableParallelism()} CPUs, node ${process.version}`);
  console.log(`load average (1/5/15 min) at start: ${load()}`);
  const times = new Map<Case, number[]>(cases.map((c) => [c, []]));
  const scans: number[] = [];
  for (const c of cases) c.check?.(time(c).stdout); // warm-up round: page cache, checks
  for (let r = 0; r < runs; r++) {
    for (const c of cases) {
      const t = time(c);
      times.get(c)?.push(t.ms);
      if (c === inspect) scans.push(scanMs(t.stdout));
    }
  }

  const of = (c: Case): number[] => times.get(c) ?? [];
  for (const c of cases) console.log(`${c.name.padEnd(48)} best ${fmt(best(of(c)))}, median ${fmt(median(of(c)))}`);
  console.log(`inspect: the scan itself (its report's scanMs) median ${median(scans).toFixed(0)} ms; start-up, output and exit ≈ ${(median(of(inspect)) - median(scans)).toFixed(0)} ms`);
  console.log(`targets: --help median ${median(of(help)).toFixed(0)} ms (≤ 100), --version median ${median(of(ver)).toFixed(0)} ms (≤ 100)`);
  if (pilNote) console.log(pilNote);
  else {
    const [p, i] = [of(pil), of(inspect)];
    console.log(`inspect --json vs PIL, whole processes: ${(best(p) / best(i)).toFixed(2)}× best/best, ${(median(p) / median(i)).toFixed(2)}× median/median faster (target ≥ 3×)`);
  }
  console.log(`load average (1/5/15 min) at end: ${load()}`);
}

function assertIncludes(text: string, part: string): void {
  if (!text.includes(part)) throw new Error(`expected output to include ${JSON.stringify(part)}, got ${JSON.stringify(text.slice(0, 200))}`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
