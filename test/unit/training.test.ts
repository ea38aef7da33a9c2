import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configForFolder, type TrainConfig } from '../../src/core/config';
import type { TrainEvent, TrainerMessage } from '../../src/core/shared/protocol';
import { createRunDir, readRun } from '../../src/core/run-folder/runs';
import { initBackend } from '../../src/trainer/backend';
import { loadLayersModelFromFile } from '../../src/trainer/model-io';
import { buildModel } from '../../src/trainer/models/zoo';
import { tf } from '../../src/trainer/tf';
import { oomMessage, runTraining, type RunHooks } from '../../src/trainer/train/run';
import { makeOptimizer, trainStep } from '../../src/trainer/train/step';
import type { TrainingPlan } from '../../src/core/shared/plan';
import { planFor } from '../helpers/plan';
import { makeTinyDataset } from '../helpers/tiny-dataset';
import { trainRequest } from '../helpers/run-spec';

let dir: string;
let dataset: string;

before(async () => {
  // wasm (with the project's training kernels) when it initialises; the cpu backend otherwise.
  await initBackend('wasm').catch(() => initBackend('cpu'));
  dir = mkdtempSync(join(tmpdir(), 'ba-training-'));
  dataset = (await makeTinyDataset(join(dir, 'ds'), { classes: 2, perClass: 30, size: 16, channels: 3 })).root;
});
after(() => rmSync(dir, { recursive: true, force: true }));

function config(overrides: Partial<TrainConfig> = {}): TrainConfig {
  return configForFolder(dataset, { name: 'tiny', imageSize: [16, 16], channels: 3, epochs: 2, learningRate: 0.003, backend: tf.getBackend() as TrainConfig['backend'], ...overrides });
}

async function run(cfg: TrainConfig, batchSize: number, opts: { maxSteps?: number; hooks?: RunHooks; onEvent?: (e: TrainEvent, ac: AbortController) => void; plan?: Partial<TrainingPlan> } = {}): Promise<{ events: TrainEvent[]; runDir: string }> {
  const plan = planFor({ ...cfg, batchSize }, opts.plan);
  const runDir = createRunDir(join(dir, 'ws'), cfg, plan);
  const events: TrainEvent[] = [];
  const ac = new AbortController();
  const send = (m: TrainerMessage): void => {
    events.push(m as TrainEvent);
    opts.onEvent?.(m as TrainEvent, ac);
  };
  await runTraining(trainRequest(cfg, runDir, plan, opts.maxSteps ? { maxSteps: opts.maxSteps } : {}), send, ac.signal, opts.hooks ?? {});
  return { events, runDir };
}

function ofType<T extends TrainEvent['type']>(events: TrainEvent[], type: T): Extract<TrainEvent, { type: T }>[] {
  return events.filter((e): e is Extract<TrainEvent, { type: T }> => e.type === type);
}

describe('gradient accumulation', () => {
  test('4 micro-batches × 8 give the same update as one batch of 32 (SGD, no BatchNorm)', async () => {
    const shape: [number, number, number] = [8, 8, 1];
    const a = await buildModel({ model: 'tutorial-cnn' }, shape, 3);
    const b = await buildModel({ model: 'tutorial-cnn' }, shape, 3);
    b.setWeights(a.getWeights());
    const before = a.getWeights().map((w) => w.dataSync().slice());
    const x = tf.randomUniform([32, ...shape], 0, 255, 'float32', 1);
    const y = tf.tensor1d(
      Array.from({ length: 32 }, (_, i) => i % 3),
      'int32',
    );
    const micro = Array.from({ length: 4 }, (_, i) => ({ x: tf.slice(x, [i * 8, 0, 0, 0], [8, ...shape]), y: tf.slice(y, [i * 8], [8]) }));
    const optA = makeOptimizer('sgd', 0.5);
    const optB = makeOptimizer('sgd', 0.5);
    const ra = await trainStep(a, optA, micro, 3);
    const rb = await trainStep(b, optB, [{ x, y }], 3);
    assert.ok(Math.abs(ra.loss - rb.loss) < 1e-5, `loss ${ra.loss} vs ${rb.loss}`);
    assert.equal(ra.accuracy, rb.accuracy);
    assert.equal(ra.images, 32);
    let maxDiff = 0;
    let maxChange = 0;
    a.getWeights().forEach((w, i) => {
      const wa = w.dataSync();
      const wb = b.getWeights()[i]!.dataSync();
      for (let j = 0; j < wa.length; j++) {
        maxDiff = Math.max(maxDiff, Math.abs(wa[j]! - wb[j]!));
        maxChange = Math.max(maxChange, Math.abs(wa[j]! - before[i]![j]!));
      }
    });
    assert.ok(maxChange > 1e-4, `the step changed the weights (max change ${maxChange})`);
    assert.ok(maxDiff < 1e-5, `accumulated and full-batch weights differ by ${maxDiff}`);

    // Memory hygiene: repeated steps leave the number of live tensors unchanged.
    await trainStep(a, optA, micro, 3);
    const n = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await trainStep(a, optA, micro, 3);
    assert.equal(tf.memory().numTensors, n);
    tf.dispose([x, y, ...micro.flatMap((m) => [m.x, m.y])]);
    optA.dispose();
    optB.dispose();
    a.dispose();
    b.dispose();
  });
});

describe('training run', () => {
  test('a short run learns (loss goes down), saves a loadable model each epoch, writes metrics.jsonl', async () => {
    const tensorsBefore = tf.memory().numTensors;
    const { events, runDir } = await run(config({ epochs: 3, optimizer: 'adam', accumulationSteps: 2 }), 4);
    const end = events.at(-1)!;
    assert.equal(end.type, 'run-end');
    assert.equal((end as { status: string }).status, 'completed');
    const start = ofType(events, 'run-start')[0]!;
    assert.equal(start.trainImages, 48);
    assert.equal(start.validationImages, 12);
    assert.equal(start.plan.accumulationSteps, 2);
    assert.equal(start.stepsPerEpoch, 6); // 12 micro-batches of 4, 2 per step
    const batches = ofType(events, 'batch');
    assert.equal(batches.length, 18);
    for (const b of batches) {
      assert.ok(b.imagesPerSec > 0 && b.stepMs > 0 && b.dataWaitMs >= 0 && b.tensorBytes > 0 && b.etaSec >= 0);
      assert.equal(b.gpuMemoryUsedBytes, undefined);
    }
    // The last step leaves no training, only the last validation pass and the final evaluation (the ETA counts them).
    assert.equal(batches.at(-1)!.etaSec, batches.at(-1)!.etaValidationSec);
    assert.ok(batches.at(-1)!.etaSec > 0);
    // numTensors stable across steps: the live tensor bytes do not grow.
    assert.equal(batches[3]!.tensorBytes, batches.at(-1)!.tensorBytes);
    const epochs = ofType(events, 'epoch');
    assert.equal(epochs.length, 3);
    assert.ok(epochs[2]!.loss < epochs[0]!.loss, `loss ${epochs.map((e) => e.loss.toFixed(3)).join(' → ')}`);
    assert.ok(epochs[2]!.valLoss! < 0.69, `val loss ${epochs[2]!.valLoss}`);
    assert.ok(epochs.every((e) => e.savedModel === join(runDir, 'model', 'model.json')));

    // The run folder alone replays the run.
    const rec = readRun(runDir);
    assert.deepEqual(rec.events, JSON.parse(JSON.stringify(events)));
    assert.equal(rec.truncated, false);
    assert.equal(rec.runEnd?.status, 'completed');
    assert.match(readFileSync(join(runDir, 'train.log'), 'utf8'), /Found 60 files belonging to 2 classes/);

    const loaded = await loadLayersModelFromFile(epochs[2]!.savedModel);
    const shape = tf.tidy(() => (loaded.predict(tf.zeros([1, 16, 16, 3])) as tf.Tensor).shape);
    assert.deepEqual(shape, [1, 2]);
    loaded.dispose();
    assert.equal(tf.memory().numTensors, tensorsBefore, 'the run disposed its model, optimizer and batches');
  });

  test('maxSteps ends the run early, still with an epoch event and a saved model', async () => {
    const { events } = await run(config({ epochs: 5 }), 8, { maxSteps: 2 });
    assert.equal(ofType(events, 'batch').length, 2);
    assert.equal(ofType(events, 'epoch').length, 1);
    assert.equal((events.at(-1) as { status: string }).status, 'completed');
  });

  test('stop mid-run → run-end stopped within one batch; metrics.jsonl intact', async () => {
    let stoppedAt = -1;
    let seen = 0;
    const { events, runDir } = await run(config({ epochs: 5 }), 4, {
      onEvent: (e, ac) => {
        seen++;
        if (e.type === 'batch' && e.globalStep === 3) {
          stoppedAt = seen;
          ac.abort();
        }
      },
    });
    const after = events.slice(stoppedAt);
    assert.equal(ofType(after, 'batch').length, 0, 'no step after the stop');
    const end = events.at(-1)!;
    assert.equal(end.type, 'run-end');
    assert.equal((end as { status: string }).status, 'stopped', JSON.stringify(end));
    const rec = readRun(runDir);
    assert.equal(rec.truncated, false);
    assert.equal(rec.badLines, 0);
    assert.equal(rec.runEnd?.status, 'stopped');
    assert.equal(rec.events.length, events.length);
  });

  test('out of memory → run-end failed, error oom, suggested batch = half, clear message', async () => {
    const hooks: RunHooks = {
      beforeStep: (step) => {
        if (step === 2) throw new Error('OOM when allocating tensor with shape[8,16,16,16] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc');
      },
    };
    const { events, runDir } = await run(config(), 8, { hooks });
    const end = events.at(-1)!;
    assert.ok(end.type === 'run-end');
    assert.equal(end.status, 'failed');
    assert.equal(end.error, 'oom');
    assert.equal(end.suggestedBatchSize, 4);
    assert.match(end.message!, /^Out of memory at batch size 8: try 4/);
    assert.equal(readRun(runDir).runEnd?.error, 'oom');
    assert.equal(oomMessage(1, 1, 'OOM').suggestedBatchSize, undefined);
    assert.match(oomMessage(1, 1, 'OOM').message, /even batch size 1 does not fit/);
    assert.match(oomMessage(128, 1, 'OOM').message, /^Out of memory at batch size 128: try 64, or 64 with accumulationSteps 2 to keep the effective batch of 128/);
  });

  test('a missing dataset is bad input, reported as run-end failed', async () => {
    const { events } = await run(config({ dataset: join(dir, 'nope') }), 8);
    const end = events.at(-1)!;
    assert.ok(end.type === 'run-end');
    assert.equal(end.status, 'failed');
    assert.equal(end.error, 'bad-input');
  });
});
