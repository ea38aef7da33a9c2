/**
 * Reliability against hostile cases (docs/RELIABILITY.md, issue 21): every fault ends quickly in a
 * message naming the true cause, with the exit code a person would see — a plan that cannot fit,
 * a step that never ends, a read-only or full file system, a dataset whose every image is
 * unusable, a probe trial over the wasm heap; the stop signals and bad flags of `train`.
 * Times are measured only as generous ceilings (a hang, not a speed).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, mock, test } from 'node:test';
import { configForFolder } from '../../src/core/config';
import { cannotFitEnd, planCannotFit } from '../../src/core/planning/fit-gate';
import { describeFsError, FsResourceError, trueMkdirError } from '../../src/core/fs-errors';
import { WASM_HEAP_MAX } from '../../src/core/planning/memory';
import { isOutOfMemoryText } from '../../src/core/shared/oom';
import { searchMaxBatch } from '../../src/core/probe/search';
import { TrialPace } from '../../src/core/probe/trial-pace';
import { createRunDir, readRun, RunDirError, runsRoot, type RunDirFs } from '../../src/core/run-folder/runs';
import { classifyError, EXIT_CODES } from '../../src/core/shared/errors';
import type { ProbeTrialResult } from '../../src/core/shared/probe';
import { PROTOCOL_VERSION, type BatchEvent, type RunStartEvent, type TrainEvent } from '../../src/core/shared/protocol';
import { StepWatchdog, stallEnd } from '../../src/core/process/step-watchdog';
import { classifyTrainerError } from '../../src/trainer/errors';
import { isOutOfMemoryError as isOutOfMemory } from '../../src/core/shared/oom';
import { RunFiles } from '../../src/trainer/train/run-files';
import type { tf } from '../../src/trainer/tf';
import { planFor } from '../helpers/plan';
import { runTrainCli } from '../helpers/run-train-cli';
import { makeTinyDataset } from '../helpers/tiny-dataset';

const ROOT = resolve(__dirname, '..', '..');
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ba-rel-faults-'));
  writeFileSync(join(dir, 'package.json'), '{}');
  await makeTinyDataset(join(dir, 'ds'), { classes: 2, perClass: 20, size: 16 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, body: Record<string, unknown>): string {
  const path = join(dir, `${name}.train.json`);
  writeFileSync(path, JSON.stringify({ name, dataset: 'ds', imageSize: [16, 16], batchSize: 4, learningRate: 0.003, backend: 'wasm', model: 'tutorial-cnn', ...body }));
  return path;
}

function runFolder(name: string): string {
  const runs = readdirSync(join(dir, '.batch-advisor', 'runs')).filter((d) => d.endsWith(`-${name}`));
  assert.equal(runs.length, 1, runs.join(', '));
  return join(dir, '.batch-advisor', 'runs', runs[0]!);
}

function lastEnd(runDir: string): Extract<TrainEvent, { type: 'run-end' }> {
  const ends = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as TrainEvent).filter((e) => e.type === 'run-end');
  assert.ok(ends.length >= 1, 'no run-end in metrics.jsonl');
  return ends.at(-1) as Extract<TrainEvent, { type: 'run-end' }>;
}

/** A hang ceiling, not a speed bound: far above what these runs take even on a loaded machine. */
const HANG_CEILING_MS = 90_000;

describe('an explicit plan that cannot fit fails before training', () => {
  test('1024×1024 images at batch 16 (not even batch 1 fits): exit 1, the figures and "a smaller imageSize", no hang', async () => {
    const t0 = performance.now();
    const r = await runTrainCli([writeConfig('huge', { imageSize: [1024, 1024], batchSize: 16, model: 'mobilenet-v2', deviceMemoryGiB: 0.5 })]);
    const ms = performance.now() - t0;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Out of memory \(predicted, not started\): batch \d+ at image size 1024×1024 cannot train on .*Not even one image fits: batch 1 needs [\d.]+ [KMG]iB but the budget is [\d.]+ [KMG]iB/);
    assert.match(r.stderr, /Run again with a smaller "imageSize" in .*huge\.train\.json/);
    assert.doesNotMatch(r.stdout, /Training on/);
    const end = lastEnd(runFolder('huge'));
    assert.equal(end.status, 'failed');
    assert.equal(end.error, 'oom');
    assert.ok(ms < HANG_CEILING_MS, `took ${Math.round(ms)} ms`);
  });

  test('batch 32 predicted at over 2× the budget: exit 1 with the largest batch that fits; the run-end carries it for "Retry at batch N"', async () => {
    const r = await runTrainCli([writeConfig('far', { imageSize: [256, 256], batchSize: 32, deviceMemoryGiB: 0.6 })]);
    assert.equal(r.code, 1, r.stderr);
    const m = /Out of memory \(predicted, not started\): batch 32 needs [\d.]+ [KMG]iB but the budget is [\d.]+ [KMG]iB \([\d.]+×\); the largest batch that fits is (\d+)\./.exec(r.stderr);
    assert.ok(m, r.stderr);
    const fits = Number(m[1]);
    assert.ok(fits >= 1 && fits < 32);
    assert.match(r.stderr, new RegExp(`Run again with "batchSize": ${fits} in .*far\\.train\\.json \\(or --batch-size ${fits}\\)`));
    const end = lastEnd(runFolder('far'));
    assert.equal(end.error, 'oom');
    assert.equal(end.suggestedBatchSize, fits);
  });

  test('the rule: not even 1, more than 2× the budget, or (wasm) over the 4 GiB heap; a plan within 2× trains', () => {
    const cfg = configForFolder(join(dir, 'ds'), { name: 'x', imageSize: [16, 16] });
    const base = planFor({ ...cfg, batchSize: 64 }, { budgetBytes: 1e9, maxMicroBatchSize: 40, predictedBytes: 1.5e9 });
    assert.equal(planCannotFit({ ...base, basis: { kind: 'suggestion' } }), undefined, 'within 2×: the watchdog guards it');
    const far = planCannotFit({ ...base, basis: { kind: 'suggestion' }, predictedBytes: 2.5e9 });
    assert.equal(far?.suggestedBatchSize, 40);
    const heap = planCannotFit({ ...base, basis: { kind: 'suggestion' }, budgetBytes: 3e9, predictedBytes: WASM_HEAP_MAX + 1, backend: { preference: 'auto', planned: 'wasm' } });
    assert.match(heap?.message ?? '', /beyond the wasm backend's 4 GiB heap/);
    assert.equal(planCannotFit({ ...base, basis: { kind: 'fallback', why: 'x' }, predictedBytes: 9e9 }), undefined, 'a fallback plan was never checked');
    const none = planCannotFit({ ...base, basis: { kind: 'suggestion' }, maxMicroBatchSize: 0 });
    assert.equal(none?.suggestedBatchSize, undefined);
    const ws = join(dir, 'gate-ws');
    const runDir = createRunDir(ws, cfg, base);
    const end = cannotFitEnd(runDir, far!);
    assert.equal(readRun(runDir).events.at(-1)?.type, 'run-end');
    assert.equal(end.suggestedBatchSize, 40);
  });
});

describe('a step that never ends', () => {
  test('the host watchdog ends it as out of memory: exit 1, "Run again with batchSize N", the run folder records oom with the batch', async () => {
    const t0 = performance.now();
    const r = await runTrainCli([writeConfig('stuck', { epochs: 3 })], () => undefined, { BATCH_ADVISOR_FAULT: 'spin@3', BATCH_ADVISOR_STALL_FLOOR_MS: '5000' });
    const ms = performance.now() - t0;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Out of memory at batch size 4: (the step after|validation after) step \d+ made no progress for [\d.]+ s .*so the trainer was ended: memory is most likely exhausted/);
    assert.match(r.stderr, /Run again with "batchSize": 2 in .*stuck\.train\.json/);
    const end = lastEnd(runFolder('stuck'));
    assert.equal(end.error, 'oom');
    assert.equal(end.suggestedBatchSize, 2);
    assert.ok(ms < HANG_CEILING_MS, `took ${Math.round(ms)} ms`);
  });

  test('the deadline: the floor, FACTOR × the typical step, validation after an epoch\'s last step, the first step its own bound', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      let t = 0;
      const stalls: string[] = [] as string[];
      const w = new StepWatchdog({ floorMs: 1000, factor: 10, firstStepMs: 60_000, now: () => t }, (s) => stalls.push(`${s.awaiting}@${s.stepsDone}`));
      const start = { v: PROTOCOL_VERSION, type: 'run-start', validationImages: 8, plan: { validationBatchSize: 4 } } as unknown as RunStartEvent;
      const batch = (step: number): BatchEvent => ({ v: PROTOCOL_VERSION, type: 'batch', epoch: 1, step, stepsPerEpoch: 4, globalStep: step }) as BatchEvent;
      w.event(start);
      mock.timers.tick(59_000);
      t = 59_000;
      assert.equal(stalls.length, 0, 'the first step has its own, long bound');
      w.event(batch(1));
      for (let s = 2; s <= 3; s++) {
        mock.timers.tick(500);
        t += 500;
        w.event(batch(s));
      }
      assert.equal(w.typicalMs, 500);
      mock.timers.tick(4900); // 10 × 500 ms = 5 s
      assert.equal(stalls.length, 0);
      mock.timers.tick(200);
      assert.deepEqual(stalls, ['step@3']);
      let t2 = 0;
      const v = new StepWatchdog({ floorMs: 1000, factor: 10, now: () => t2 }, (s) => stalls.push(`${s.awaiting}@${s.stepsDone}`));
      v.event(start);
      t2 = 1000;
      mock.timers.tick(1000);
      v.event(batch(4)); // the epoch's last step (1 s): validation (2 batches) follows, allowed 10 × 1 s × (1 + 2)
      mock.timers.tick(29_000);
      assert.equal(stalls.length, 1, 'validation is allowed for');
      mock.timers.tick(2000);
      assert.deepEqual(stalls, ['step@3', 'validation@4']);
      v.stop();
    } finally {
      mock.timers.reset();
    }
  });

  test('the stall\'s advice keeps within what the plan says fits, or asks for a smaller image at batch 1', () => {
    const e = stallEnd({ stepsDone: 0, waitedMs: 600_000, typicalMs: undefined, awaiting: 'first step' }, { microBatchSize: 471, accumulationSteps: 1, maxMicroBatchSize: 200 });
    assert.equal(e.error, 'oom');
    assert.equal(e.suggestedBatchSize, 200);
    assert.match(e.message ?? '', /^Out of memory at batch size 471: the first step did not finish within 600 s/);
    const one = stallEnd({ stepsDone: 3, waitedMs: 30_000, typicalMs: 100, awaiting: 'step' }, { microBatchSize: 1, accumulationSteps: 1, maxMicroBatchSize: 0 });
    assert.equal(one.suggestedBatchSize, undefined);
    assert.match(one.message ?? '', /even batch size 1 does not train on this device.*smaller imageSize/);
  });
});

describe('probe trials over the wasm heap fail fast', () => {
  const trial = (batch: number, ok: boolean, durationMs = 1000): ProbeTrialResult => ({ batchSize: batch, accumulationSteps: 1, ok, ...(ok ? {} : { failure: 'oom' as const }), peakBytes: 0, tensorPeakBytes: 0, rssBytes: 0, imagesPerSec: 1, steps: 3, durationMs });

  test('"table index is out of bounds" (the wasm heap exhausted) is out of memory: not retried as a flaky error', () => {
    const e = new WebAssembly.RuntimeError('table index is out of bounds');
    assert.ok(isOutOfMemoryText(`RuntimeError: ${e.message}`));
    assert.ok(isOutOfMemory(e));
    assert.equal(classifyTrainerError(e).kind, 'oom');
  });

  test('a trial predicted over the wasm heap is never started', async () => {
    const tried: number[] = [];
    const r = await searchMaxBatch({
      predictedBytes: (b) => b * 1e8,
      budgetBytes: 3e9, // 2× the budget would allow batch 60
      hardLimitBytes: 4e9, // the heap: batch 40
      predictedMax: 30,
      cap: 1000,
      trial: async (b) => {
        tried.push(b);
        return trial(b, true);
      },
    });
    assert.ok(tried.length > 0);
    assert.ok(tried.every((b) => b * 1e8 <= 4e9), tried.join(', '));
    assert.ok((r.maxBatchSize ?? 0) <= 40);
  });

  test('after a trial trained, a slower one is ended at its pace, not the 180 s timeout', () => {
    const pace = new TrialPace(6, 30_000);
    assert.equal(pace.limitMs(64, 180_000), 180_000, 'nothing measured yet');
    pace.record(trial(32, true, 8000));
    assert.equal(pace.limitMs(32, 180_000), 48_000);
    assert.equal(pace.limitMs(48, 180_000), 72_000);
    assert.equal(pace.limitMs(1000, 180_000), 180_000, 'never above the timeout');
    pace.record(trial(16, true, 100));
    assert.equal(pace.limitMs(16, 180_000), 48_000, 'the largest trained batch sets the pace');
  });
});

describe('file systems: the true cause, and the exit code it deserves', () => {
  const config = configForFolder(join(tmpdir(), 'x'), { name: 'r' });
  const plan = planFor({ ...config, batchSize: 4 });
  const err = (code: string): Error => Object.assign(new Error(`${code}: injected`), { code });

  /** Mounts a tmpfs at `at` (root only); false where mounting is not possible. */
  function mountTmpfs(at: string, opts: string): boolean {
    mkdirSync(at, { recursive: true });
    return spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', at], { stdio: 'ignore' }).status === 0;
  }
  const umount = (at: string): void => void spawnSync('umount', [at], { stdio: 'ignore' });

  test('a read-only file system (real tmpfs remounted read-only): "read-only (EROFS)", never "a parent folder is missing (ENOENT)"', (t) => {
    const at = join(dir, 'ro-mount');
    if (!mountTmpfs(at, 'size=1m')) return t.skip('cannot mount a tmpfs here');
    try {
      if (spawnSync('mount', ['-o', 'remount,ro', at], { stdio: 'ignore' }).status !== 0) return t.skip('cannot remount read-only');
      assert.throws(() => createRunDir(at, config, plan), (e: Error) => {
        assert.ok(e instanceof RunDirError, String(e));
        assert.equal(e.message, `cannot create the runs folder ${runsRoot(at)}: the file system is read-only (EROFS): choose a writable workspace`);
        assert.equal(EXIT_CODES[classifyError(e).kind], 2);
        return true;
      });
    } finally {
      umount(at);
    }
  });

  test('a recursive mkdir that says ENOENT (injected) is asked again one folder at a time: EROFS or EACCES comes out', () => {
    for (const code of ['EROFS', 'EACCES']) {
      const fs: RunDirFs = {
        mkdirSync: (_p, o) => {
          throw err(o?.recursive ? 'ENOENT' : code);
        },
        writeFileSync: () => undefined,
      };
      assert.throws(() => createRunDir(join(dir, 'no-such', 'ws'), config, plan, new Date(), fs), (e: Error) => e instanceof RunDirError && e.message.includes(`(${code})`) && !e.message.includes('ENOENT'));
    }
    // A truly missing root stays ENOENT.
    assert.equal((trueMkdirError('/', err('ENOENT')) as NodeJS.ErrnoException).code, 'ENOENT');
  });

  test('a full disk (real tmpfs, filled): the run folder is removed, "the disk is full (ENOSPC)", exit 1 — not 2', (t) => {
    const at = join(dir, 'full-mount');
    if (!mountTmpfs(at, 'size=64k')) return t.skip('cannot mount a tmpfs here');
    try {
      mkdirSync(join(at, '.batch-advisor', 'runs'), { recursive: true });
      try {
        writeFileSync(join(at, 'filler'), Buffer.alloc(1024 * 1024));
      } catch {
        /* full now */
      }
      assert.throws(() => createRunDir(at, config, plan), (e: Error) => {
        assert.ok(e instanceof FsResourceError, String(e));
        assert.match(e.message, /^cannot (write|create) the run folder .*: the disk is full \(ENOSPC\): free some space$/);
        assert.equal(EXIT_CODES[classifyError(e).kind], 1);
        return true;
      });
      assert.deepEqual(readdirSync(join(at, '.batch-advisor', 'runs')), []);
    } finally {
      umount(at);
    }
  });

  test('every code in the class: input to fix (exit 2) or a failure while working (exit 1), each with its own words', () => {
    const cases: [string, RegExp, number][] = [
      ['ENOENT', /missing/, 2],
      ['EACCES', /permission denied \(EACCES\)/, 2],
      ['EROFS', /read-only \(EROFS\)/, 2],
      ['ENOSPC', /disk is full \(ENOSPC\)/, 1],
      ['EDQUOT', /quota/, 1],
      ['EMFILE', /too many open files \(EMFILE\)/, 1],
      ['ENFILE', /too many open files \(ENFILE\)/, 1],
      ['EIO', /input\/output error \(EIO\)/, 1],
    ];
    for (const [code, words, exit] of cases) {
      assert.match(describeFsError(err(code)), words, code);
      for (const when of ['mkdir', 'write'] as const) {
        const fs: RunDirFs = {
          mkdirSync: (p, o) => {
            if (when === 'mkdir') throw err(code);
            return mkdirSync(p, o);
          },
          writeFileSync: () => {
            throw err(code);
          },
        };
        assert.throws(
          () => createRunDir(join(dir, `codes-${code}-${when}`), config, plan, new Date(), fs),
          (e: Error) => EXIT_CODES[classifyError(e).kind] === exit && e.message.includes(describeFsError(err(code))),
          `${code} at ${when}`,
        );
      }
    }
  });

  test('a full disk while saving the model: exit 1 (a failure while working), the message unchanged; a read-only one stays input to fix', async () => {
    for (const [code, kind] of [['ENOSPC', 'internal'], ['EMFILE', 'internal'], ['EROFS', 'bad-input']] as const) {
      const runDir = join(dir, `save-${code}`);
      const files = new RunFiles(runDir);
      try {
        const failing = { save: async (): Promise<never> => Promise.reject(err(code)) } as unknown as tf.LayersModel;
        await assert.rejects(files.saveModel(failing), (e: Error) => {
          assert.equal(e.message, `could not save the model to ${join(runDir, 'model')}: ${describeFsError(err(code))}`);
          const c = classifyTrainerError(e);
          assert.equal(c.kind, kind, code);
          assert.ok(!c.message.includes('\n    at '), 'no stack');
          return true;
        });
      } finally {
        files.close();
      }
    }
  });
});

describe('datasets whose every image is unusable', () => {
  test('suggest and train say the images are there but unreadable (not "No images found"), exit 2', async () => {
    const ds = join(dir, 'corrupt');
    for (const c of ['cats', 'dogs']) {
      mkdirSync(join(ds, c), { recursive: true });
      for (let i = 0; i < 3; i++) writeFileSync(join(ds, c, `${i}.png`), Buffer.from('not an image at all, just bytes'));
    }
    writeFileSync(join(ds, 'dogs', 'empty.jpg'), '');
    const cli = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'cli-main.ts'), 'suggest', ds], { cwd: ROOT, encoding: 'utf8', timeout: HANG_CEILING_MS });
    assert.equal(cli.status, 2, cli.stderr);
    assert.match(cli.stderr, /None of the 7 image files in .*corrupt can be used: 6 corrupt, 1 empty \(0 bytes\)/);
    assert.doesNotMatch(cli.stderr, /No images found/);
    const r = await runTrainCli([writeConfig('corrupt', { dataset: 'corrupt' })]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /None of the 7 image files in .*corrupt can be used/);
  });
});

describe('train: stop signals and bad flags', () => {
  test('SIGHUP (the terminal closed) mid-run: exit 130, the run folder records stopped', async () => {
    const r = await runTrainCli([writeConfig('hup', { epochs: 50 }), '--json'], (out) => (out.includes('"type":"batch"') ? 'SIGHUP' : undefined));
    assert.ok(r.sent, r.stderr);
    assert.equal(r.code, 130, r.stderr);
    const end = lastEnd(runFolder('hup'));
    assert.equal(end.status, 'stopped');
  });

  test('--epochs 0 and an unknown --backend as flags: exit 2, one line naming the flag, nothing created', async () => {
    const path = writeConfig('flags', {});
    const epochs = await runTrainCli([path, '--epochs', '0']);
    assert.equal(epochs.code, 2);
    assert.equal(epochs.stderr.trim(), 'batch-advisor: --epochs must be a positive whole number');
    const backend = await runTrainCli([path, '--backend', 'tpu']);
    assert.equal(backend.code, 2);
    assert.match(backend.stderr.trim(), /^batch-advisor: --backend must be one of .*; got "tpu"$/);
    assert.equal(backend.stderr.trim().split('\n').length, 1);
    assert.ok(!readdirSync(join(dir, '.batch-advisor', 'runs')).some((d) => d.endsWith('-flags')));
  });
});
