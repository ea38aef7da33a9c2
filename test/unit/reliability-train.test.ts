/**
 * Reliability of a training run (docs/RELIABILITY.md): a stop that arrives before the trainer has
 * set up its run, non-finite losses (diverged runs keep the last finite model), out-of-memory
 * advice that fits (the wasm heap's abort), SIGTERM like Ctrl-C — with the real child process
 * where the fault is about processes.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configForFolder, type TrainConfig } from '../../src/core/config';
import { createRunDir, readRun } from '../../src/core/run-folder/runs';
import type { TrainEvent, TrainerMessage } from '../../src/core/shared/protocol';
import { inspectDataset } from '../../src/core/dataset/inspect';
import { classifyTrainerError } from '../../src/trainer/errors';
import { isOutOfMemoryError as isOutOfMemory } from '../../src/core/shared/oom';
import { initBackend } from '../../src/trainer/backend';
import { buildModel } from '../../src/trainer/models/zoo';
import { tf } from '../../src/trainer/tf';
import { oomMessage, runTraining, wasmFittingBatch, type RunHooks } from '../../src/trainer/train/run';
import type { TrainingPlan } from '../../src/core/shared/plan';
import { planFor } from '../helpers/plan';
import { runTrainCli } from '../helpers/run-train-cli';
import { makeTinyDataset } from '../helpers/tiny-dataset';
import { setupFor, trainRequest } from '../helpers/run-spec';

let dir: string;
let dataset: string;

before(async () => {
  await initBackend('wasm').catch(() => initBackend('cpu'));
  dir = mkdtempSync(join(tmpdir(), 'ba-rel-train-'));
  writeFileSync(join(dir, 'package.json'), '{}');
  dataset = (await makeTinyDataset(join(dir, 'ds'), { classes: 2, perClass: 20, size: 16 })).root;
});
after(() => rmSync(dir, { recursive: true, force: true }));

function config(overrides: Partial<TrainConfig> = {}): TrainConfig {
  return configForFolder(dataset, { name: 'tiny', imageSize: [16, 16], channels: 3, epochs: 2, learningRate: 0.003, backend: tf.getBackend() as TrainConfig['backend'], ...overrides });
}

async function run(cfg: TrainConfig, batchSize: number, hooks: RunHooks = {}, plan: Partial<TrainingPlan> = {}): Promise<{ events: TrainEvent[]; runDir: string }> {
  const p = planFor({ ...cfg, batchSize }, plan);
  const runDir = createRunDir(join(dir, 'ws'), cfg, p);
  const events: TrainEvent[] = [];
  await runTraining(trainRequest(cfg, runDir, p), (m: TrainerMessage) => events.push(m as TrainEvent), new AbortController().signal, hooks);
  return { events, runDir };
}

function runEnd(events: TrainEvent[]): Extract<TrainEvent, { type: 'run-end' }> {
  const end = events.at(-1)!;
  assert.ok(end.type === 'run-end', JSON.stringify(end));
  return end;
}

function writeConfig(name: string, body: Record<string, unknown>): string {
  const path = join(dir, `${name}.train.json`);
  writeFileSync(path, JSON.stringify({ dataset: 'ds', imageSize: [16, 16], batchSize: 8, learningRate: 0.003, backend: 'wasm', ...body }));
  return path;
}

function onlyRun(suffix: string): string {
  const runs = readdirSync(join(dir, '.batch-advisor', 'runs')).filter((d) => d.endsWith(suffix));
  assert.equal(runs.length, 1, runs.join(', '));
  return join(dir, '.batch-advisor', 'runs', runs[0]!);
}

describe('stop before the trainer has set up its run', () => {
  test('Ctrl-C right at "Run folder:" (real process) → stopped before training, exit 130, no epoch trained', async () => {
    const r = await runTrainCli([writeConfig('early-stop', { epochs: 30 })], (out) => (out.includes('Run folder:') ? 'SIGINT' : undefined));
    assert.ok(r.sent, r.stderr);
    assert.equal(r.code, 130, r.stdout + r.stderr);
    assert.match(r.stderr, /Stopping after the current batch/);
    assert.match(r.stdout, /Stopped\. The run is kept in /);
    assert.doesNotMatch(r.stdout, /Epoch 1\/30:/);
    const rec = readRun(onlyRun('-early-stop'));
    assert.equal(rec.runEnd?.status, 'stopped');
    assert.equal(rec.events.filter((e) => e.type === 'epoch').length, 0);
  });

  test('SIGTERM (timeout) mid-run → run-end stopped in the run folder, the CLI exits', async () => {
    const r = await runTrainCli([writeConfig('sigterm', { epochs: 50 }), '--json'], (out) => (out.includes('"type":"batch"') ? 'SIGTERM' : undefined), { BATCH_ADVISOR_FAULT: 'delay@30' });
    assert.ok(r.sent, r.stderr);
    assert.equal(r.code, 130, r.stderr);
    const rec = readRun(onlyRun('-sigterm'));
    assert.equal(rec.runEnd?.status, 'stopped');
    assert.equal(rec.truncated, false);
    assert.ok(rec.events.filter((e) => e.type === 'batch').length < 50 * 4);
  });
});

describe('inspect and training agree', () => {
  test('zero-byte, corrupt, WebP-as-PNG and too-large files: the run trains on exactly the images inspect counts, each left-out file reported', async () => {
    const ds = join(dir, 'mixed-bad');
    await makeTinyDataset(ds, { classes: 2, perClass: 10, size: 16 });
    writeFileSync(join(ds, 'class_0', 'zero.png'), '');
    writeFileSync(join(ds, 'class_0', 'random.png'), Buffer.from('not an image at all, just text'));
    const big = Buffer.from(await (await import('sharp')).default(Buffer.alloc(48, 9), { raw: { width: 4, height: 4, channels: 3 } }).png().toBuffer());
    big.writeUInt32BE(60000, 16);
    big.writeUInt32BE(60000, 20);
    big.writeUInt32BE((await import('node:zlib')).crc32(big.subarray(12, 29)) >>> 0, 29);
    writeFileSync(join(ds, 'class_1', 'huge.png'), big);
    const report = await inspectDataset(ds);
    const { events } = await run(configForFolder(ds, { name: 'agree', imageSize: [16, 16], epochs: 1, backend: tf.getBackend() as TrainConfig['backend'] }), 8);
    const start = events.find((e): e is Extract<TrainEvent, { type: 'run-start' }> => e.type === 'run-start');
    assert.ok(start, JSON.stringify(runEnd(events)));
    assert.equal(start.trainImages + start.validationImages, report.totalImages);
    assert.deepEqual([start.trainImages, start.validationImages], [report.train, report.validation]);
    const skipped = events.filter((e): e is Extract<TrainEvent, { type: 'skipped-file' }> => e.type === 'skipped-file').map((e) => `${e.path.slice(ds.length + 1)}: ${e.reason}`);
    assert.deepEqual(skipped.sort(), ['class_0/random.png: not a readable image (unreadable or truncated header)', 'class_0/zero.png: empty file (0 bytes)', 'class_1/huge.png: too large: 60000×60000 = 3600.0 MP, over the 50 MP limit (not decoded)']);
    assert.equal(runEnd(events).status, 'completed');
  });
});

describe('stop while preloading', () => {
  test('a stop that arrives while images are preloaded ends the run as stopped before any step', async () => {
    const cfg = config({ loading: 'preload' });
    const p = planFor({ ...cfg, batchSize: 8 });
    const runDir = createRunDir(join(dir, 'ws'), cfg, p);
    const ac = new AbortController();
    const events: TrainEvent[] = [];
    await runTraining(trainRequest(cfg, runDir, { ...p, loading: { strategy: 'preload', reason: 'test' } }), (m) => {
      const e = m as TrainEvent;
      events.push(e);
      if (e.type === 'log' && e.message.startsWith('loading: preload')) ac.abort(); // the pipeline starts decoding next
    }, ac.signal, { pipeline: { concurrency: 1 } });
    const end = runEnd(events);
    assert.equal(end.status, 'stopped', end.message);
    assert.equal(events.filter((e) => e.type === 'batch').length, 0);
    assert.equal(readRun(runDir).runEnd?.status, 'stopped');
  });
});

describe('non-finite loss', () => {
  test('SGD at a diverging learning rate → run-end failed "diverged" at the first non-finite step, no NaN model saved', async () => {
    const { events, runDir } = await run(config({ optimizer: 'sgd', epochs: 3 }), 8, {}, { learningRate: { value: 1e12, rule: 'none', base: 1e12, baseBatchSize: 8 } as TrainingPlan['learningRate'] });
    const end = runEnd(events);
    assert.equal(end.status, 'failed');
    assert.equal(end.error, 'diverged');
    const batches = events.filter((e): e is Extract<TrainEvent, { type: 'batch' }> => e.type === 'batch');
    const firstBad = batches.findIndex((b) => !Number.isFinite(b.loss));
    assert.ok(firstBad >= 0, 'a non-finite loss was seen');
    assert.equal(batches.length, firstBad + 1, 'stopped at the first non-finite loss');
    assert.equal(end.divergedAtStep, batches[firstBad]!.globalStep);
    assert.match(end.message!, /Training diverged: the loss became (NaN|infinite) at step \d+ .*Lower the learning rate/);
    // Nothing non-finite was saved.
    for (const ep of events.filter((e) => e.type === 'epoch')) assert.ok(Number.isFinite((ep as { loss: number }).loss));
    assert.equal(readRun(runDir).runEnd?.error, 'diverged');
  });

  test('NaN weights after epoch 1 → diverged; the epoch-1 model (finite) is kept, not overwritten', async () => {
    let perEpoch = 0;
    const hooks: RunHooks = {
      beforeStep: (step, model) => {
        if (perEpoch > 0 && step === perEpoch + 1) {
          const w = model.getWeights();
          model.setWeights(w.map((t) => (t.dtype === 'float32' ? tf.fill(t.shape, NaN) : t)));
        }
      },
    };
    const cfg = config({ epochs: 3 });
    const events: TrainEvent[] = [];
    const p = planFor({ ...cfg, batchSize: 8 });
    const runDir = createRunDir(join(dir, 'ws'), cfg, p);
    await runTraining(trainRequest(cfg, runDir, p), (m) => {
      const e = m as TrainEvent;
      if (e.type === 'run-start') perEpoch = e.stepsPerEpoch;
      events.push(e);
    }, new AbortController().signal, hooks);
    const end = runEnd(events);
    assert.equal(end.error, 'diverged', end.message);
    assert.equal(end.divergedAtStep, perEpoch + 1);
    assert.match(end.message!, /the model saved at epoch 1 \(the last finite one\) is kept/);
    assert.equal(events.filter((e) => e.type === 'epoch').length, 1);
    const weights = readFileSync(join(runDir, 'model', 'weights.bin'));
    const f = new Float32Array(weights.buffer, weights.byteOffset, weights.byteLength / 4);
    assert.ok(f.every(Number.isFinite), 'the saved model has finite weights');
    assert.ok(!existsSync(join(runDir, 'model.saving')));
  });

  test('nanPatience tolerates that many non-finite steps in a row; a NaN model is still never saved', async () => {
    const hot = { learningRate: { value: 1e12, rule: 'none', base: 1e12, baseBatchSize: 8 } as TrainingPlan['learningRate'] };
    const steps = (events: TrainEvent[]): Extract<TrainEvent, { type: 'batch' }>[] => events.filter((e): e is Extract<TrainEvent, { type: 'batch' }> => e.type === 'batch');
    // Patience 1: the second non-finite step in a row stops the run.
    const one = await run(config({ optimizer: 'sgd', epochs: 3, nanPatience: 1 }), 8, {}, hot);
    const b1 = steps(one.events);
    const first = b1.findIndex((b) => !Number.isFinite(b.loss));
    assert.equal(runEnd(one.events).error, 'diverged');
    assert.equal(b1.length, first + 2);
    assert.match(runEnd(one.events).message!, /for 2 steps in a row \(nanPatience 1\)/);
    // Huge patience: the epoch ends, but its NaN weights are not saved.
    const many = await run(config({ optimizer: 'sgd', epochs: 3, nanPatience: 100000 }), 8, {}, hot);
    const end = runEnd(many.events);
    assert.equal(end.error, 'diverged');
    assert.match(end.message!, /a model weight became NaN/);
    assert.equal(many.events.filter((e) => e.type === 'epoch').length, 0);
    assert.ok(!existsSync(join(many.runDir, 'model')), 'no model saved');
  });
});

describe('diverged run through the real CLI and trainer', () => {
  test('a run whose weights turn NaN at step 2: the host accepts the non-finite batch (loss null), exit 1, "Training diverged … Lower the learning rate"', async () => {
    // SGD at a huge learning rate diverges only most of the time (dead ReLUs can keep the loss finite): NaN weights always do.
    const r = await runTrainCli([writeConfig('diverge', { optimizer: 'sgd', learningRate: 10, epochs: 3 }), '--json'], () => undefined, { BATCH_ADVISOR_FAULT: 'nan@2' });
    assert.equal(r.code, 1, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as TrainEvent);
    const bad = events.filter((e): e is Extract<TrainEvent, { type: 'batch' }> => e.type === 'batch' && e.loss === null);
    assert.equal(bad.length, 1, 'the non-finite step reached the host');
    const end = events.at(-1)!;
    assert.ok(end.type === 'run-end' && end.error === 'diverged' && end.divergedAtStep === bad[0]!.globalStep, JSON.stringify(end));
    assert.doesNotMatch(r.stderr, /malformed|invalid message/i);
    const rec = readRun(onlyRun('-diverge'));
    assert.equal(rec.runEnd?.error, 'diverged');
    assert.ok(!existsSync(join(rec.dir, 'model')) || rec.events.some((e) => e.type === 'epoch'));
  });
});

describe('out of memory advice', () => {
  test("the wasm heap's bare abort is out of memory, not internal", () => {
    const abort = Object.assign(new Error('Aborted(). Build with -sASSERTIONS for more info.'), { name: 'RuntimeError' });
    assert.ok(isOutOfMemory(abort));
    assert.equal(classifyTrainerError(abort).kind, 'oom');
    const m = oomMessage(8, 1, abort.message, { fits: 3, imageSize: [1024, 1024] });
    assert.equal(m.suggestedBatchSize, 3);
    assert.match(m.message, /^Out of memory at batch size 8: try 3, or 3 with accumulationSteps 3 for an effective batch of 9 \(now 8\)/);
    assert.doesNotMatch(m.message, /ASSERTIONS/);
    const none = oomMessage(8, 1, abort.message, { fits: 0, imageSize: [4096, 4096] });
    assert.equal(none.suggestedBatchSize, undefined);
    assert.match(none.message, /even batch size 1 does not fit at image size 4096×4096 on this device .*: use a smaller imageSize/);
  });

  test('after a wasm OOM the advice is a batch the memory model fits in the 4 GiB heap, or a smaller image size', async () => {
    // resnet-small: at 512×512 the heap holds a few images' activations, at 2048×2048 not even one.
    for (const [side, check] of [
      [512, (fits: number): void => assert.ok(fits >= 1 && fits < 8, `fits ${fits}`)],
      [2048, (fits: number): void => assert.equal(fits, 0)],
    ] as const) {
      const cfg = config({ model: 'resnet-small', imageSize: [side, side] });
      const model = await buildModel({ model: 'resnet-small', widthMultiplier: 1 }, [side, side, 3], 2);
      try {
        const fits = wasmFittingBatch(model, setupFor(cfg), 'wasm', 1);
        assert.ok(fits !== undefined);
        check(fits);
        assert.equal(wasmFittingBatch(model, setupFor(cfg), 'cpu', 1), undefined, 'only the wasm heap has a known size');
        const m = oomMessage(16, 1, 'Aborted()', { fits, imageSize: [side, side] });
        if (fits === 0) assert.match(m.message, /even batch size 1 does not fit at image size 2048×2048/);
        else assert.equal(m.suggestedBatchSize, fits, 'not half (8), which would abort again');
      } finally {
        model.dispose();
      }
    }
  });

  test('a wasm OOM mid-run (injected abort) ends as oom with a fitting batch, never "internal"', async () => {
    const { events } = await run(config(), 8, {
      beforeStep: (step) => {
        if (step === 2) throw Object.assign(new Error('Aborted(). Build with -sASSERTIONS for more info.'), { name: 'RuntimeError' });
      },
    });
    const end = runEnd(events);
    assert.equal(end.error, 'oom', end.message);
    assert.equal(end.suggestedBatchSize, 4);
  });
});
