/**
 * Resume (issue 19, part 2): a run folder's training continues where its last saved epoch left it —
 * the model's weights and the optimizer's state, the step count, the learning-rate schedule, the
 * metrics appended — and what cannot be resumed says why.
 */
import { strict as assert } from 'node:assert';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { trainCommand, type TrainOptions } from '../../src/cli/train';
import { readResumePoint, resumeState, ResumeError } from '../../src/core/run-folder/resume';
import { listRuns, parseMetrics } from '../../src/core/run-folder/runs';
import { learningRateAt } from '../../src/core/shared/plan';
import type { BatchEvent, EpochEvent, RunEndEvent, RunStartEvent, TrainEvent } from '../../src/core/shared/protocol';
import { addEvent, emptySeries } from '../../src/webview/train/series';
import { Capture } from '../helpers/capture';
import { makeTinyDataset } from '../helpers/tiny-dataset';

const TRAINER = resolve(__dirname, '../../src/trainer/main.ts');
let root: string;

async function cli(configPath: string | undefined, opts: TrainOptions = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await trainCommand(configPath, opts, { trainerScript: TRAINER, stdout, stderr, workspaceRoot: root });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

function config(name: string, body: Record<string, unknown>): string {
  const path = join(root, `${name}.train.json`);
  writeFileSync(path, JSON.stringify({ name, ...body }));
  return path;
}

function events(runDir: string): TrainEvent[] {
  return parseMetrics(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')).events;
}

function runDirOf(name: string): string {
  const r = listRuns(root).find((x) => x.name === name);
  assert.ok(r, `a run named ${name}`);
  return r.dir;
}

/** The Adam iteration count saved with a model (optimizer.json + optimizer.bin). */
function savedIterations(modelDir: string): number {
  const specs = JSON.parse(readFileSync(join(modelDir, 'optimizer.json'), 'utf8')) as { weights: { name: string; dtype: string }[] };
  assert.equal(specs.weights[0]!.name, 'iter');
  const bin = readFileSync(join(modelDir, 'optimizer.bin'));
  return bin.readInt32LE(0);
}

// A model file without dropout: two runs from it start from the same weights and train the same.
const tiny = { dataset: 'ds', imageSize: [16, 16], batchSize: 8, learningRate: 0.01, backend: 'wasm', probe: false, warmupSteps: 3, lrSchedule: 'cosine', optimizer: 'adam' };
const STEPS_PER_EPOCH = 4; // 40 images, 20% validation → 32 / 8

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ba-resume-'));
  writeFileSync(join(root, 'package.json'), '{}');
  await makeTinyDataset(join(root, 'ds'), { classes: 2, perClass: 20, size: 16 });
  // The starting weights: a model saved by a one-epoch run of the zoo's model.
  const seedRun = await cli(config('seed', { ...tiny, model: 'tutorial-cnn', epochs: 1 }));
  assert.equal(seedRun.code, 0, seedRun.stderr);
  cpSync(join(runDirOf('seed'), 'model'), join(root, 'start'), { recursive: true });
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('resume: a run continues as if it had not stopped', () => {
  test('a 3-epoch run that ended after epoch 1, resumed, ends with the same weights, steps and learning rates as 3 epochs in one go', async () => {
    const model = join(root, 'start', 'model.json');
    const whole = await cli(config('whole', { ...tiny, model, epochs: 3 }));
    assert.equal(whole.code, 0, whole.stderr);
    // --max-steps ends it after epoch 1 of the 3 planned (as a stop after epoch 1 would).
    const first = await cli(config('parts', { ...tiny, model, epochs: 3 }), { maxSteps: STEPS_PER_EPOCH });
    assert.equal(first.code, 0, first.stderr);
    const dir = runDirOf('parts');
    assert.equal(savedIterations(join(dir, 'model')), STEPS_PER_EPOCH, 'the optimizer state is saved with the model');
    const resumed = await cli(undefined, { resume: dir });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /Resuming after epoch 1 of 3 \(optimizer step 4\)/);

    const evs = events(dir);
    const starts = evs.filter((e): e is RunStartEvent => e.type === 'run-start');
    assert.equal(starts.length, 2, 'the resumed run appends to the same metrics.jsonl');
    assert.deepEqual(starts[1]!.resumed, { afterEpoch: 1, globalStep: STEPS_PER_EPOCH });
    const steps = evs.filter((e): e is BatchEvent => e.type === 'batch');
    assert.deepEqual(steps.map((b) => b.globalStep), Array.from({ length: 3 * STEPS_PER_EPOCH }, (_, i) => i + 1), 'the step count continues');
    assert.deepEqual(evs.filter((e): e is EpochEvent => e.type === 'epoch').map((e) => e.epoch), [1, 2, 3]);
    const wholeSteps = events(runDirOf('whole')).filter((e): e is BatchEvent => e.type === 'batch');
    // The schedule spans the run's 3 epochs in both: the learning rates of every step are the same.
    assert.deepEqual(steps.map((b) => b.learningRate), wholeSteps.map((b) => b.learningRate));
    const plan = starts[1]!.plan;
    assert.equal(steps.at(-1)!.learningRate, learningRateAt(plan, 3 * STEPS_PER_EPOCH));
    assert.equal(savedIterations(join(dir, 'model')), 3 * STEPS_PER_EPOCH, 'Adam counted every step, before and after the pause');
    // Weights and optimizer restored exactly: the same final weights as the uninterrupted run.
    const a = readFileSync(join(runDirOf('whole'), 'model', 'weights.bin'));
    const b = readFileSync(join(dir, 'model', 'weights.bin'));
    assert.ok(a.equals(b), 'the resumed run ends with the weights of the run that never stopped');
    assert.equal((evs.at(-1) as RunEndEvent).status, 'completed');
  });

  test('more epochs than planned: plan.json records them; the schedule keeps its course and the extra steps its last rate', async () => {
    const dir = runDirOf('parts');
    const r = await cli(undefined, { resume: dir, epochs: 4 });
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { epochs: number; scheduleEpochs: number };
    assert.equal(plan.epochs, 4);
    assert.equal(plan.scheduleEpochs, 3);
    const steps = events(dir).filter((e): e is BatchEvent => e.type === 'batch');
    assert.equal(steps.at(-1)!.globalStep, 4 * STEPS_PER_EPOCH);
    const floor = steps.find((b) => b.globalStep === 3 * STEPS_PER_EPOCH)!.learningRate;
    assert.ok(steps.filter((b) => b.globalStep > 3 * STEPS_PER_EPOCH).every((b) => b.learningRate === floor), 'the cosine floor, not a jump back up');
  });

  test('the panel series of a resumed run: the steps trained again replace the abandoned ones, time runs on', () => {
    const s = emptySeries();
    const start = (time: string, resumed?: RunStartEvent['resumed']): RunStartEvent => ({ v: 3, type: 'run-start', time, runDir: '/r', backend: 'wasm', plan: { epochs: 2 } as RunStartEvent['plan'], stepsPerEpoch: 2, trainImages: 4, validationImages: 0, params: 1, ...(resumed ? { resumed } : {}) });
    const batch = (time: string, epoch: number, step: number, globalStep: number): BatchEvent => ({ v: 3, type: 'batch', time, epoch, step, stepsPerEpoch: 2, globalStep, loss: 1 / globalStep, accuracy: 0.5, learningRate: 0.1, imagesPerSec: 1, stepMs: 1, dataWaitMs: 0, tensorBytes: 1, etaSec: 1 });
    const epoch = (time: string, e: number): EpochEvent => ({ v: 3, type: 'epoch', time, epoch: e, loss: 1, accuracy: 0.5, valLoss: 1, valAccuracy: 0.5, durationMs: 1, savedModel: '' });
    const evs: TrainEvent[] = [
      start('2026-01-01T00:00:00Z'),
      batch('2026-01-01T00:00:01Z', 1, 1, 1),
      batch('2026-01-01T00:00:02Z', 1, 2, 2),
      epoch('2026-01-01T00:00:03Z', 1),
      batch('2026-01-01T00:00:04Z', 2, 1, 3), // abandoned: the run stopped before epoch 2 ended
      { v: 3, type: 'run-end', time: '2026-01-01T00:00:05Z', status: 'stopped' },
      start('2026-01-02T00:00:00Z', { afterEpoch: 1, globalStep: 2 }),
      batch('2026-01-02T00:00:01Z', 2, 1, 3),
    ];
    for (const e of evs) addEvent(s, e);
    assert.deepEqual(s.step, [1, 2, 3]);
    assert.equal(s.loss.length, 3);
    assert.equal(s.valLoss.length, 1);
    assert.equal(s.end, null, 'the resumed run is running again');
    assert.deepEqual(s.timeSec, [1, 2, 3], 'time goes on from the last kept step, without the day in between');
  });
});

describe('resume: what cannot be resumed says why', () => {
  test('every epoch trained → exit 2 saying to pass more epochs; a plan flag → exit 2 naming it; no config and no --resume → exit 2', async () => {
    const path = config('done', { ...tiny, model: 'tutorial-cnn', epochs: 1 });
    assert.equal((await cli(path)).code, 0);
    const dir = runDirOf('done');
    const again = await cli(undefined, { resume: dir });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /every epoch of this run \(1\) is already trained; pass more epochs \(e\.g\. --epochs 2\)/);
    const fewer = await cli(undefined, { resume: dir, epochs: 1 });
    assert.match(fewer.stderr, /epochs 1 is not more than the 1 already trained/);
    const flag = await cli(undefined, { resume: dir, batchSize: 16 });
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /leave out --batch-size/);
    const both = await cli(path, { resume: dir });
    assert.match(both.stderr, /leave out .*done\.train\.json/);
    const none = await cli(undefined, {});
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--resume <run folder>/);
    const missing = await cli(undefined, { resume: join(root, 'nope') });
    assert.match(missing.stderr, /nope: no such run folder/);
  });

  test('a config\'s "resume" continues that run to the file\'s epochs', async () => {
    const dir = runDirOf('done');
    const rel = dir.slice(root.length + 1);
    const r = await cli(config('more', { dataset: 'ds', resume: rel, epochs: 2 }));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(events(dir).filter((e): e is EpochEvent => e.type === 'epoch').map((e) => e.epoch), [1, 2]);
    assert.equal(listRuns(root).filter((x) => x.name === 'more').length, 0, 'no new run folder');
  });

  test('a damaged optimizer state → exit 2 naming the file and what to do; nothing trained', async () => {
    const dir = `${runDirOf('done')}-damaged`;
    cpSync(runDirOf('done'), dir, { recursive: true });
    const bin = join(dir, 'model', 'optimizer.bin');
    writeFileSync(bin, readFileSync(bin).subarray(0, 10));
    const before = events(dir).length;
    const r = await cli(undefined, { resume: dir, epochs: 5 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /optimizer\.json: the optimizer state cannot be read \(optimizer\.bin holds 10 bytes, \d+ expected\); delete optimizer\.json and optimizer\.bin to resume with a fresh optimizer/);
    assert.equal(events(dir).filter((e) => e.type === 'batch').length, events(dir).slice(0, before).filter((e) => e.type === 'batch').length, 'no step was taken');
  });

  test('no finished epoch, or a missing model → ResumeError naming the folder', () => {
    const dir = mkdtempSync(join(root, 'bare-'));
    writeFileSync(join(dir, 'config.json'), '{}');
    writeFileSync(join(dir, 'plan.json'), JSON.stringify({ epochs: 2, microBatchSize: 8, learningRate: { value: 0.01 } }));
    writeFileSync(join(dir, 'metrics.jsonl'), '');
    assert.throws(() => readResumePoint(dir), (e: Error) => e instanceof ResumeError && /no epoch of this run finished/.test(e.message) && e.message.includes(dir));
    writeFileSync(join(dir, 'metrics.jsonl'), JSON.stringify({ v: 3, type: 'epoch', epoch: 1, loss: 1, accuracy: 0, valLoss: null, valAccuracy: null }) + '\n');
    assert.throws(() => readResumePoint(dir), /model\/model\.json\) is missing/);
    assert.ok(!existsSync(join(dir, 'model')));
  });

  test('resumeState: the last finished epoch, its step count, and the batch that batch growth left', () => {
    const plan = { microBatchSize: 8, learningRate: { value: 0.01, base: 0.01, baseBatchSize: 8, rule: 'linear' as const } };
    const evs = [
      { type: 'batch', epoch: 1, globalStep: 1 },
      { type: 'batch', epoch: 1, globalStep: 2 },
      { type: 'epoch', epoch: 1, loss: 1, accuracy: 0.5, valLoss: 0.9, valAccuracy: 0.6 },
      { type: 'batch-growth', epoch: 2, globalStep: 2, from: 8, to: 16, learningRate: 0.02 },
      { type: 'batch', epoch: 2, globalStep: 3 },
    ] as unknown as TrainEvent[];
    assert.deepEqual(resumeState(evs, plan), { epoch: 1, globalStep: 2, microBatchSize: 16, lrScale: 2, history: [{ epoch: 1, loss: 1, accuracy: 0.5, valLoss: 0.9, valAccuracy: 0.6 }] });
    assert.equal(resumeState(evs.slice(0, 2), plan), undefined);
  });
});
