/**
 * The live training panel at a glance (issue 19 part 3), its pure parts: the ETA with validation,
 * whole-number step ticks and byte ticks, the one batch fact, the progress fraction, and what the
 * charts draw (three distinct colours for train raw / smoothed / validation, the memory chart's
 * step peak against the plan's budget, legend values at the latest point).
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { epochEndsLeft, estimateEta, validationPassSec, VALIDATION_SPEEDUP, type EtaInput } from '../../src/core/shared/eta';
import { PROTOCOL_VERSION, parseTrainerMessage, type BatchEvent, type RunStartEvent } from '../../src/core/shared/protocol';
import type { TrainingPlan } from '../../src/core/shared/plan';
import { CHARTS, latestValue, memoryLines, type ChartRun, type Palette } from '../../src/webview/train/chart-defs';
import { batchFact, batchFactTitle, progressFraction } from '../../src/webview/train/facts';
import { addEvent, emptySeries } from '../../src/webview/train/series';
import { integerTicks, logByteRange, logByteTicks } from '../../src/webview/train/ticks';
import { contrastRatio, parseColour, withAlpha } from '../../src/webview/shared/colour';
import { configForFolder } from '../../src/core/config';
import { planFor } from '../helpers/plan';

const base: EtaInput = { epoch: 1, step: 5, stepsPerEpoch: 10, epochs: 2, globalStep: 5, plannedSteps: 20, secPerStep: 1, validationImages: 300, validationSec: [], trainImagesPerSec: 100 };

describe('ETA with validation', () => {
  test('before any validation pass: each pass estimated from the training throughput (forward only, ~3× as fast)', () => {
    const e = estimateEta(base);
    assert.equal(e.trainSec, 15);
    // This epoch's end, the next epoch's end, then the evaluation on the validation split.
    assert.equal(e.validationPasses, 3);
    assert.equal(validationPassSec(base), 300 / (100 * VALIDATION_SPEEDUP));
    assert.equal(e.validationSec, 3 * 1);
    assert.equal(e.totalSec, 18);
    // What the ETA used to be: the training steps alone.
    assert.ok(e.totalSec > (base.plannedSteps - base.globalStep) * base.secPerStep);
  });

  test('measured passes replace the estimate; epoch-end saving counts at each epoch end', () => {
    const e = estimateEta({ ...base, epoch: 2, step: 2, globalStep: 12, validationSec: [4, 6], epochEndSec: 0.5 });
    assert.equal(e.trainSec, 8);
    assert.equal(e.validationPasses, 2); // epoch 2's end and the final evaluation
    assert.equal(e.validationSec, 2 * 5 + 1 * 0.5);
    assert.equal(e.totalSec, 18.5);
  });

  test('the last step: only validation and the final evaluation are left; without a validation split nothing is', () => {
    const last = { ...base, epoch: 2, step: 10, globalStep: 20, validationSec: [2] };
    assert.deepEqual(estimateEta(last), { totalSec: 4, trainSec: 0, validationSec: 4, validationPasses: 2 });
    assert.deepEqual(estimateEta({ ...last, validationImages: 0 }), { totalSec: 0, trainSec: 0, validationSec: 0, validationPasses: 0 });
    assert.equal(estimateEta({ ...last, finalEvaluation: false }).validationPasses, 1);
  });

  test('epoch ends left follow the planned steps (maxSteps ends a run mid-plan), never past the plan\'s epochs', () => {
    assert.equal(epochEndsLeft(base), 2);
    assert.equal(epochEndsLeft({ ...base, plannedSteps: 8 }), 1); // stops inside epoch 1
    assert.equal(epochEndsLeft({ ...base, plannedSteps: 12 }), 2);
    assert.equal(epochEndsLeft({ ...base, epochs: 5, plannedSteps: 50 }), 5);
    assert.equal(epochEndsLeft({ ...base, epochs: 1, plannedSteps: 50 }), 1);
    assert.equal(epochEndsLeft({ ...base, step: 10, globalStep: 10 }), 2); // epoch 1 just ended: its validation is still to come
  });
});

describe('ticks', () => {
  test('step ticks are whole numbers, 1, 2 or 5 × 10^k apart, at most as many as asked', () => {
    assert.deepEqual(integerTicks(1, 10, 10), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(integerTicks(1, 10, 5), [2, 4, 6, 8, 10]);
    assert.deepEqual(integerTicks(1, 263, 6), [50, 100, 150, 200, 250]);
    // A short run: uPlot's own ticks were 2.5, 5, 7.5; and a single step.
    assert.deepEqual(integerTicks(1, 8, 8), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(integerTicks(0.5, 1.5, 5), [1]);
    for (const [a, b, n] of [[1, 3, 7], [3, 977, 9], [0, 123_456, 4], [1.2, 9.7, 3]] as const) {
      const t = integerTicks(a, b, n);
      assert.ok(t.length >= 1 && t.length <= n, `${a}…${b}: ${t.join(',')}`);
      assert.ok(t.every((v) => Number.isInteger(v) && v >= a && v <= b), `${a}…${b}: ${t.join(',')}`);
    }
    assert.deepEqual(integerTicks(NaN, 3, 4), []);
  });

  test('memory: a log range bounded at powers of two, ticked at powers of two (every 2nd, 4th … when wide)', () => {
    assert.deepEqual(logByteRange(3 * 2 ** 20, 300 * 2 ** 20), [2 ** 20, 2 ** 29]);
    assert.deepEqual(logByteRange(2 ** 20, 2 ** 20), [2 ** 19, 2 ** 21]);
    assert.deepEqual(logByteRange(4.5 * 2 ** 20, 2.5 * 2 ** 30), [2 ** 21, 2 ** 32]);
    assert.deepEqual(logByteTicks(2 ** 21, 2 ** 32, 6), [2 ** 22, 2 ** 24, 2 ** 26, 2 ** 28, 2 ** 30, 2 ** 32]);
    assert.deepEqual(logByteTicks(2 ** 21, 2 ** 29, 5), [2 ** 21, 2 ** 23, 2 ** 25, 2 ** 27, 2 ** 29]);
    assert.deepEqual(logByteTicks(2 ** 20, 2 ** 22, 5), [2 ** 20, 2 ** 21, 2 ** 22]);
    const wide = logByteTicks(2 ** 10, 2 ** 32, 5);
    assert.ok(wide.length <= 5 && wide.at(-1) === 2 ** 32, wide.join(','));
  });
});

describe('header facts', () => {
  const plan = (o: Partial<TrainingPlan>) => ({ ...planFor(configForFolder('/x', { batchSize: 8 })), ...o });
  const text = (p: TrainingPlan) => batchFact(p).map((x) => x.text).join('');

  test('one batch fact: micro-batch × accumulation = images per step, lr and warmup, each value findable', () => {
    const p = plan({ microBatchSize: 8, accumulationSteps: 4, effectiveBatchSize: 32, learningRate: { value: 0.001, base: 0.001, baseBatchSize: 32, rule: 'sqrt' }, warmup: { steps: 120, epochs: 1, startLearningRate: 0.0001 } });
    assert.equal(text(p), '8 × 4 = 32 · lr 0.001 · warmup 120 steps');
    const ids = Object.fromEntries(batchFact(p).filter((x) => x.testid).map((x) => [x.testid, x.text]));
    assert.deepEqual(ids, { 'plan-micro-batch': '8', 'plan-accumulation': '4', 'plan-lr': '0.001', 'plan-warmup': '120 steps' });
    assert.match(batchFactTitle(p), /micro-batch 8 × 4 accumulation steps = 32 images per optimizer step; learning rate 0.001 \(sqrt scaling from 0.001 at batch 32\); warmup over 120 optimizer steps from 0.0001/);
  });

  test('without accumulation or warmup the fact says just that; several devices are named', () => {
    assert.equal(text(plan({ microBatchSize: 32, accumulationSteps: 1, effectiveBatchSize: 32, learningRate: { value: 0.0023456, base: 0.001, baseBatchSize: 32, rule: 'none' }, warmup: { steps: 0, epochs: 0, startLearningRate: 0.001 } })), '32 · lr 0.002346 · no warmup');
    assert.equal(text(plan({ microBatchSize: 16, accumulationSteps: 2, dataParallelDevices: 2, effectiveBatchSize: 64, warmup: { steps: 1500, epochs: 1, startLearningRate: 0.001 } })).split(' · ')[0], '16 × 2 × 2 devices = 64');
    assert.equal(text(plan({ microBatchSize: 16, accumulationSteps: 1, dataParallelDevices: 2, effectiveBatchSize: 32 })).split(' · ')[0], '16 per device × 2 devices = 32', 'no "× 1" without accumulation');
  });

  test('progress: the fraction of the run\'s steps done, within 0…1', () => {
    assert.equal(progressFraction({ epoch: 1, step: 5, stepsPerEpoch: 10, epochs: 2 }), 0.25);
    assert.equal(progressFraction({ epoch: 2, step: 10, stepsPerEpoch: 10, epochs: 2 }), 1);
    assert.equal(progressFraction({ epoch: 0, step: 0, stepsPerEpoch: 0, epochs: 2 }), 0);
    assert.equal(progressFraction({ epoch: 3, step: 10, stepsPerEpoch: 10, epochs: 2 }), 1);
  });
});

describe('what the charts draw', () => {
  const palette: Palette = { blue: '#3794ff', orange: '#d18616', green: '#89d185', purple: '#b180d7', red: '#f14c4c', yellow: '#cca700', neutral: '#cccccc', run: (i) => ['#3794ff', '#d18616'][i % 2]! };
  const opts = { axis: 'step' as const, smoothing: 0.6, logScale: false };
  const plan = { ...planFor(configForFolder('/x', { batchSize: 8 })), budgetBytes: 300 * 2 ** 20, predictedBytes: 12 * 2 ** 20 };
  const start: RunStartEvent = { v: PROTOCOL_VERSION, type: 'run-start', time: '2026-01-01T00:00:00.000Z', runDir: '/r', backend: 'wasm', plan, stepsPerEpoch: 10, trainImages: 80, validationImages: 20, params: 1 };
  const batch = (i: number, extra: Partial<BatchEvent> = {}): BatchEvent => ({
    v: PROTOCOL_VERSION, type: 'batch', time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), epoch: 1, step: i, stepsPerEpoch: 10, globalStep: i, loss: 2 / i, accuracy: 0.1 * i, learningRate: 0.001,
    imagesPerSec: 100, stepMs: 50, dataWaitMs: 5, tensorBytes: 1_000_000, etaSec: 10, ...extra,
  });
  function run(events: (BatchEvent | RunStartEvent)[]): ChartRun {
    const series = emptySeries();
    for (const e of events) addEvent(series, e);
    return { id: 'a', name: 'a', series, colour: 0 };
  }

  test('one run: train raw, train smoothed and validation in three distinct theme colours; validation has markers', () => {
    const r = run([start, ...[1, 2, 3].map((i) => batch(i))]);
    addEvent(r.series, { v: PROTOCOL_VERSION, type: 'epoch', time: '2026-01-01T00:00:03.000Z', epoch: 1, loss: 1, accuracy: 0.2, valLoss: 0.9, valAccuracy: 0.3, durationMs: 1, savedModel: 'm' });
    const loss = CHARTS.find((c) => c.id === 'loss')!;
    const lines = loss.lines([r], opts, palette);
    assert.deepEqual(lines.map((l) => l.label), ['train loss (raw)', 'train loss (smoothed)', 'validation loss']);
    assert.equal(new Set(lines.map((l) => parseColour(l.colour)!.join())).size, 3, lines.map((l) => l.colour).join(' '));
    assert.equal(lines[2]!.points, true);
    assert.deepEqual(Array.from(lines[2]!.y), [0.9]);
    assert.equal(latestValue(lines[0]!.y), 2 / 3);
    // Every chart names its y axis with a unit or quantity.
    for (const c of CHARTS) assert.match(c.yLabel, /\S/, c.id);
    assert.equal(CHARTS.find((c) => c.id === 'memory')!.yLabel, 'bytes (log scale)');
  });

  test('memory: each step\'s peak (not the bytes after it) against the plan\'s budget and prediction', () => {
    const r = run([start, ...[1, 2, 3].map((i) => batch(i, { peakTensorBytes: 5_000_000 + i, wasmHeapBytes: 16 * 2 ** 20, rssBytes: 200 * 2 ** 20 }))]);
    const lines = memoryLines([r], opts, palette).filter((l) => latestValue(l.y) !== null);
    const by = Object.fromEntries(lines.map((l) => [l.label, l]));
    assert.deepEqual(Object.keys(by), ['step peak (tensors)', 'wasm heap', 'process RSS', 'predicted peak', 'budget']);
    assert.deepEqual(Array.from(by['step peak (tensors)']!.y), [5_000_001, 5_000_002, 5_000_003]);
    assert.deepEqual(Array.from(by['budget']!.y), [plan.budgetBytes, plan.budgetBytes]);
    assert.deepEqual(Array.from(by['budget']!.x), [1, 3]);
    // A run recorded before peaks were measured: the bytes after each step, named as such.
    const old = memoryLines([run([start, batch(1)])], opts, palette);
    assert.equal(old[0]!.label, 'tensors after step');
  });

  test('the batch event\'s new fields are optional: older trainers\' events still parse, the new ones too', () => {
    const e = { ...batch(1), peakTensorBytes: 5, wasmHeapBytes: 6, rssBytes: 7, etaValidationSec: 1 };
    assert.equal(parseTrainerMessage(e).ok, true);
    assert.equal(parseTrainerMessage(batch(1)).ok, true);
    assert.equal(parseTrainerMessage({ ...batch(1), peakTensorBytes: 'x' }).ok, false);
  });

  test('colours: alpha on theme colours; contrast ratio as WCAG 2 computes it', () => {
    assert.equal(withAlpha('#3794ff', 0.5), 'rgba(55, 148, 255, 0.5)');
    assert.equal(withAlpha('rgb(1, 2, 3)', 0.2), 'rgba(1, 2, 3, 0.2)');
    assert.equal(withAlpha('#abc', 1), 'rgba(170, 187, 204, 1)');
    assert.equal(contrastRatio('#000000', '#ffffff'), 21);
    assert.ok(Math.abs(contrastRatio('#0078d4', '#1f1f1f')! - 3.6) < 0.2);
    assert.equal(contrastRatio('red', '#fff'), undefined);
  });
});
