/**
 * The probe for real: trials on a small dataset (in-process and in fresh child processes), a trial
 * that hangs or crashes, `suggest` with the probe, and the probed plan being the one `train` runs.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configForFolder, type TrainConfig } from '../../src/core/config';
import { estimateNoiseScale } from '../../src/core/probe/noise';
import { childTrialRunner } from '../../src/core/process/run-trial';
import { suggest } from '../../src/core/process/suggest';
import { TrainFlow } from '../../src/core/process/train-flow';
import type { ProbeTrialSpec } from '../../src/core/shared/probe';
import type { TrainingPlan } from '../../src/core/shared/plan';
import { runProbeTrial } from '../../src/trainer/probe/trial';
import { makeTinyDataset } from '../helpers/tiny-dataset';
import { HANG_CEILING_MS, until } from '../helpers/wait';
import { setupFor } from '../helpers/run-spec';
import { PROTOCOL_VERSION } from '../../src/core/shared/protocol';

const TRAINER = resolve(__dirname, '../../src/trainer/main.ts');
let dir: string;
let dataset: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ba-probe-'));
  dataset = (await makeTinyDataset(join(dir, 'ds'), { classes: 2, perClass: 30, size: 16, channels: 3 })).root;
});
after(() => rmSync(dir, { recursive: true, force: true }));

function config(overrides: Partial<TrainConfig> = {}): TrainConfig {
  return configForFolder(dataset, { name: 'tiny', imageSize: [16, 16], channels: 3, epochs: 1, learningRate: 0.01, optimizer: 'sgd', backend: 'wasm', ...overrides });
}

const spec = (b: number, extra: Partial<ProbeTrialSpec> = {}): ProbeTrialSpec => ({ microBatchSize: b, accumulationSteps: 1, validationBatchSize: b, steps: 3, learningRate: 0.01, ...extra });

function fakeTrainer(name: string, body: string): string {
  const path = join(dir, `${name}.js`);
  writeFileSync(path, `process.on('disconnect', () => process.exit(0));\n${body}\nprocess.send({ v: ${PROTOCOL_VERSION}, type: 'ready', pid: process.pid });\n`);
  return path;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a probe trial', () => {
  test('runs 3 real steps (with accumulation) and a validation step, and reports memory, speed and gradient norms', async () => {
    const r = await runProbeTrial(setupFor(config()), spec(4, { accumulationSteps: 2, validationBatchSize: 6, noise: { smallBatch: 4, bigBatch: 8, steps: 2 } }));
    assert.equal(r.ok, true, r.error);
    assert.equal(r.steps, 3);
    assert.notEqual(r.lossFirst, r.lossLast);
    assert.equal(r.backend, 'wasm');
    assert.ok(r.tensorPeakBytes > 0 && r.peakBytes === r.tensorPeakBytes);
    assert.ok(r.wasmHeapBytes! >= r.tensorPeakBytes, 'the wasm heap holds the tensors');
    assert.ok(r.rssBytes > 0 && r.imagesPerSec > 0);
    assert.equal(r.gradientNorms?.small.length, 2);
    assert.equal(r.gradientNorms?.bigBatch, 8);
    // Bigger batches average out noise: the big batch's gradient is no longer than the small chunks' on average.
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean(r.gradientNorms!.big) < mean(r.gradientNorms!.small));
  });

  test('the noise scale is measured after ordinary training steps: as many as its own cap and the run’s share allow, said in its note', async () => {
    const noise = { smallBatch: 4, bigBatch: 8, steps: 2, warmMaxSteps: 10, warmMaxMs: 60_000 };
    // No run size given: only the spec's caps bound the warm-up (10 steps).
    const r = await runProbeTrial(setupFor(config()), spec(4, { noise }));
    assert.equal(r.ok, true, r.error);
    assert.equal(r.gradientNorms?.afterSteps, 3 + 10, 'the trial’s 3 steps, then 10 warm-up steps');
    assert.equal(r.gradientNorms?.lossFrom, r.lossFirst);
    assert.ok(Number.isFinite(r.gradientNorms?.lossTo));
    const g = estimateNoiseScale(r.gradientNorms!);
    if (g.bSimple !== undefined) assert.match(g.note, /after 13 training steps \(training loss \d+\.\d\d → \d+\.\d\d\)/);
    // A run of 40 images is predicted to take a few milliseconds: 2% of it leaves room for one warm-up step at most.
    const short = await runProbeTrial(setupFor(config()), spec(4, { noise, runImages: 40 }));
    assert.equal(short.ok, true, short.error);
    assert.ok(short.gradientNorms!.afterSteps! <= 3 + 1, `${short.gradientNorms!.afterSteps} steps before the measurement`);
    assert.equal(estimateNoiseScale({ smallBatch: 4, bigBatch: 8, small: [4, 5, 6], big: [3, 3.5, 4] }).note.includes('at the start of training'), true, 'no warm-up: said so');
  });

  test('a larger batch has a larger measured peak', async () => {
    const a = await runProbeTrial(setupFor(config()), spec(2));
    const b = await runProbeTrial(setupFor(config()), spec(16));
    assert.ok(a.ok && b.ok);
    assert.ok(b.tensorPeakBytes > a.tensorPeakBytes, `${a.tensorPeakBytes} vs ${b.tensorPeakBytes}`);
  });

  test('a trial that trains nothing (learning rate 0) is a failure', async () => {
    const r = await runProbeTrial(setupFor(config()), spec(4, { learningRate: 0 }));
    assert.equal(r.ok, false);
    assert.equal(r.failure, 'no-training');
    assert.match(r.error!, /trained nothing/);
  });

  test('a model file that cannot be built is an error, not out of memory', async () => {
    const r = await runProbeTrial(setupFor(config({ model: join(dir, 'missing.json') })), spec(4));
    assert.equal(r.ok, false);
    assert.equal(r.failure, 'error');
  });
});

describe('trials in child processes', () => {
  test('a trial that hangs is killed after the timeout and counted as a failure', async () => {
    let pid = 0;
    const script = fakeTrainer('hang', `process.on('message', (m) => { if (m.type === 'probe') { require('fs').writeFileSync(${JSON.stringify(join(dir, 'hang.pid'))}, String(process.pid)); for (;;) {} } });`);
    const t0 = Date.now();
    const r = await childTrialRunner(setupFor(config()), { trainerScript: script, timeoutMs: 1500 })(spec(8));
    assert.equal(r.ok, false);
    assert.equal(r.failure, 'timeout');
    assert.ok(Date.now() - t0 < HANG_CEILING_MS, 'a hang ceiling, not a speed bound');
    pid = Number((await import('node:fs')).readFileSync(join(dir, 'hang.pid'), 'utf8'));
    await until(() => !alive(pid), 'the hanging child was killed');
  });

  test('a child that dies with the wasm heap abort is out of memory', async () => {
    const script = fakeTrainer('abort', `process.on('message', (m) => { if (m.type === 'probe') { process.stderr.write('RuntimeError: Aborted(). Build with -sASSERTIONS for more info.\\n'); setTimeout(() => process.exit(7), 20); } });`);
    const r = await childTrialRunner(setupFor(config()), { trainerScript: script, timeoutMs: 10_000 })(spec(8));
    assert.equal(r.failure, 'oom');
    assert.match(r.error!, /Aborted\(\)/);
  });

  test('cancelling kills the trial', async () => {
    const script = fakeTrainer('slow', `process.on('message', () => {});`);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    await assert.rejects(childTrialRunner(setupFor(config()), { trainerScript: script, signal: ac.signal })(spec(8)), { name: 'AbortError' });
  });
});

describe('suggest --probe and train', () => {
  test('the probe confirms the plan with real trials and measures the noise scale', async () => {
    const seen: number[] = [];
    const report = await suggest({ config: config({ optimizer: 'adam', learningRate: 0.001 }) }, { trainerScript: TRAINER, probe: true, onProbeTrial: (r) => seen.push(r.batchSize) });
    const p = report.probe!;
    assert.ok(p, 'the report has a probe');
    assert.ok(p.trials.length >= 2 && p.trials.length <= 4, `${p.trials.length} trials`);
    assert.deepEqual(seen, p.trials.map((t) => t.batchSize));
    assert.ok(p.trials.every((t) => t.ok && t.steps === 3 && t.peakBytes > 0), JSON.stringify(p.trials.map((t) => t.error)));
    assert.equal(report.plan.sources.batchSize, 'probe');
    assert.ok(report.plan.microBatchSize <= p.usableBatchSize);
    assert.equal(p.trials.at(-1)!.batchSize, report.plan.microBatchSize, 'the last trial is the plan itself');
    assert.ok(typeof p.modelError === 'number' && Math.abs(p.modelError) < 0.5, `model error ${String(p.modelError)}`);
    assert.ok(report.gradientNoiseScale, 'the noise scale is reported');
    assert.ok(report.plan.reasons.some((r) => /Real training steps trained/.test(r)));
  });

  test('"probe": false (or no probe) keeps the memory model plan', async () => {
    const report = await suggest({ config: config({ probe: false }) }, { trainerScript: TRAINER });
    assert.equal(report.probe, undefined);
    assert.equal(report.plan.sources.batchSize, 'planned');
  });

  test('train with "probe": true runs the probed plan', async () => {
    let planned: TrainingPlan | undefined;
    const flow = new TrainFlow({ config: config({ probe: true }), trainerScript: TRAINER, workspaceRoot: join(dir, 'ws'), maxSteps: 1, onPlan: (p) => (planned = p) });
    const result = await flow.run();
    assert.equal(result.end.status, 'completed', result.end.message);
    assert.equal(planned?.sources.batchSize, 'probe');
    assert.equal(result.plan, planned);
  });
});
