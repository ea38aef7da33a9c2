/**
 * Each step's peak memory, as the trainer reports it and the panel draws it (issue 19 part 3): a
 * real optimizer step on the wasm (or cpu) backend holds more live tensor bytes at its peak than
 * after it — its input, the activations kept for backward, the gradients — and the batch events of
 * a real run carry that peak, which is what the memory chart's line is made of.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configForFolder, type TrainConfig } from '../../src/core/config';
import { createRunDir } from '../../src/core/run-folder/runs';
import type { BatchEvent, EpochEvent, TrainEvent, TrainerMessage } from '../../src/core/shared/protocol';
import { initBackend } from '../../src/trainer/backend';
import { buildModel } from '../../src/trainer/models/zoo';
import { tf } from '../../src/trainer/tf';
import { MemoryLimit, RunMemory } from '../../src/trainer/train/memory-limit';
import { runTraining } from '../../src/trainer/train/run';
import { makeOptimizer, trainStep } from '../../src/trainer/train/step';
import { memoryLines } from '../../src/webview/train/chart-defs';
import { addEvent, emptySeries } from '../../src/webview/train/series';
import { planFor } from '../helpers/plan';
import { trainRequest } from '../helpers/run-spec';
import { makeTinyDataset } from '../helpers/tiny-dataset';

let dir: string;
let dataset: string;

before(async () => {
  await initBackend('wasm').catch(() => initBackend('cpu'));
  dir = mkdtempSync(join(tmpdir(), 'ba-step-memory-'));
  dataset = (await makeTinyDataset(join(dir, 'ds'), { classes: 2, perClass: 30, size: 16, channels: 3 })).root;
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('per-step peak memory', () => {
  test('a real step peaks above what is live after it, by at least its input batch', async () => {
    const memory = new RunMemory();
    try {
      const model = await buildModel({ model: 'tutorial-cnn' }, [16, 16, 3], 2);
      const optimizer = makeOptimizer('adam', 0.001);
      const peaks: { peak: number; after: number; input: number }[] = [];
      for (let s = 0; s < 2; s++) {
        memory.startStep();
        const x = tf.randomUniform([16, 16, 16, 3], 0, 255, 'float32', s);
        const y = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 2), 'int32');
        const input = x.size * 4;
        await trainStep(model, optimizer, [{ x, y }], 2);
        tf.dispose([x, y]);
        const m = memory.stepMemory();
        peaks.push({ peak: m.peakTensorBytes, after: tf.memory().numBytes, input });
        assert.ok(m.rssBytes > 0);
        assert.equal(m.wasmHeapBytes !== undefined, tf.getBackend() === 'wasm');
      }
      for (const [i, p] of peaks.entries()) assert.ok(p.peak > p.after, `step ${i + 1} (${tf.getBackend()}): peak ${p.peak} > after ${p.after}`);
      // The second step (Adam's slots already made): the peak holds the weights and slots, the input and more.
      const second = peaks[1]!;
      assert.ok(second.peak >= second.after + second.input, `peak ${second.peak} ≥ after ${second.after} + input ${second.input}`);
      // The run's peak is the highest window's.
      assert.equal(memory.peakBytes, Math.max(...peaks.map((p) => p.peak)));
      const limit = new MemoryLimit(second.after, memory);
      assert.throws(() => limit.check('step 2'), /out of memory: tensors peaked at/);
      optimizer.dispose();
      model.dispose();
    } finally {
      memory.restore();
    }
  });

  test('a run\'s batch events carry each step\'s peak, the panel\'s memory chart draws exactly it, and the ETA includes validation', async () => {
    const cfg: TrainConfig = configForFolder(dataset, { name: 'tiny', imageSize: [16, 16], channels: 3, epochs: 2, learningRate: 0.003, backend: tf.getBackend() as TrainConfig['backend'] });
    const plan = { ...planFor({ ...cfg, batchSize: 8 }), budgetBytes: 64 * 2 ** 20, predictedBytes: 4 * 2 ** 20 };
    const runDir = createRunDir(join(dir, 'ws'), cfg, plan);
    const events: TrainEvent[] = [];
    await runTraining(trainRequest(cfg, runDir, plan), (m: TrainerMessage) => events.push(m as TrainEvent), new AbortController().signal);
    const batches = events.filter((e): e is BatchEvent => e.type === 'batch');
    assert.ok(batches.length >= 6, `${batches.length} steps`);
    for (const b of batches) {
      assert.ok(b.peakTensorBytes! > b.tensorBytes, `step ${b.globalStep}: peak ${b.peakTensorBytes} > after ${b.tensorBytes}`);
      assert.ok(b.rssBytes! > 0);
      assert.equal(b.wasmHeapBytes !== undefined, tf.getBackend() === 'wasm');
    }

    const series = emptySeries();
    for (const e of events) addEvent(series, e);
    const peak = memoryLines([{ id: 'r', name: 'r', series, colour: 0 }], { axis: 'step', smoothing: 0.6, logScale: false }, { blue: 'b', orange: 'o', green: 'g', purple: 'p', red: 'r', yellow: 'y', neutral: 'n', run: () => 'b' })[0]!;
    assert.equal(peak.label, 'step peak (tensors)');
    assert.deepEqual(Array.from(peak.y), batches.map((b) => b.peakTensorBytes));

    // ETA: validation passes are counted (measured after the first epoch end); the last step leaves only them.
    const epochs = events.filter((e): e is EpochEvent => e.type === 'epoch');
    assert.ok(epochs.every((e) => e.validationMs! > 0 && e.validationMs! < e.durationMs));
    for (const b of batches) assert.ok(b.etaValidationSec! > 0 && b.etaSec >= b.etaValidationSec!, `step ${b.globalStep}: eta ${b.etaSec}, validation ${b.etaValidationSec}`);
    const last = batches.at(-1)!;
    assert.equal(last.etaSec, last.etaValidationSec);
  });
});
