/**
 * The probe on the torchrun engine (issue 20, part 3): a torchrun run's trials run on PyTorch in a
 * fresh Python process each (src/core/torchrun/probe.ts, template/probe.py), on the run's model and
 * images — the measured memory, speed and noise scale are PyTorch's. A trial that dies, is killed
 * by the system, hangs or prints nothing is a failed trial saying why; Cancel ends it.
 * Needs Python with torch (Debian's python3-torch; CI installs it): the torch parts skip without it.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeSample } from '../../src/cli/make-sample';
import { configForFolder, type TrainConfig } from '../../src/core/config';
import { fallbackPlan } from '../../src/core/planning/plan';
import { backendLocation } from '../../src/core/planning/run-spec';
import { suggest } from '../../src/core/process/suggest';
import type { ProbeTrialSpec } from '../../src/core/shared/probe';
import { torchTrials, type TorchTrials } from '../../src/core/torchrun/probe';
import { findTorchPython, type TorchPython } from '../../src/core/torchrun/python';

const TRAINER = join(__dirname, '..', '..', 'src', 'trainer', 'main.ts');

let ws: string;
let config: TrainConfig;
let python: TorchPython | undefined;
let torchWhy: string | undefined;

const trialSpec = (micro: number, more: Partial<ProbeTrialSpec> = {}): ProbeTrialSpec => ({ microBatchSize: micro, accumulationSteps: 1, validationBatchSize: micro, steps: 3, learningRate: 0.001, ...more });

/** A stand-in interpreter: a shell script that does what `body` says instead of running probe.py. */
function fakePython(name: string, body: string): TorchPython {
  const path = join(ws, `${name}.sh`);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return { python: path, torchVersion: 'fake', cuda: false, cudaDevices: 0 };
}

const trials = (p: TorchPython, more: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TorchTrials> =>
  torchTrials(config, fallbackPlan(config, { train: 320, validation: 80 }, 'test'), backendLocation(config), { python: p, trainerScript: TRAINER, ...more });

before(async () => {
  ws = mkdtempSync(join(tmpdir(), 'ba-torch-probe-'));
  writeFileSync(join(ws, 'package.json'), '{}');
  await makeSample(join(ws, 'mnist'), { perDigit: 40 });
  config = configForFolder(join(ws, 'mnist'), { name: 'torch-probe', imageSize: [28, 28], channels: 1, model: 'tutorial-cnn', optimizer: 'adam', learningRate: 0.001, batchSize: 'auto', epochs: 1, engine: 'torchrun', seed: 7 });
  try {
    python = await findTorchPython();
  } catch (e) {
    torchWhy = (e as Error).message;
  }
});

after(() => rmSync(ws, { recursive: true, force: true }));

describe('probe trials on PyTorch', () => {
  let t: TorchTrials | undefined;
  before(async () => {
    if (python) t = await trials(python);
  });
  after(() => t?.dispose());

  it('trains the run\'s model at the batch: PyTorch\'s peak, speed, the smaller batches\' speed and the gradient norms', async (ctx) => {
    if (!t) return ctx.skip(torchWhy);
    const r = await t.runTrial(trialSpec(16, { throughputBatches: [4, 8], noise: { smallBatch: 4, bigBatch: 16, steps: 2, warmMaxSteps: 5, warmMaxMs: 60_000 } }));
    assert.equal(r.ok, true, r.error);
    assert.equal(r.backend, 'torch-cpu');
    assert.equal(r.batchSize, 16);
    assert.equal(r.steps, 3);
    assert.notEqual(r.lossFirst, r.lossLast);
    assert.ok(r.peakBytes > 0 && r.rssBytes > r.peakBytes, `peak ${r.peakBytes}, RSS ${r.rssBytes}`);
    assert.ok(r.imagesPerSec > 0);
    // The smaller batches and the trial's own, timed alike.
    assert.deepEqual(r.throughput?.map((p) => p.batchSize), [4, 8, 16]);
    assert.ok(r.throughput!.every((p) => p.imagesPerSec > 0));
    assert.equal(r.gradientNorms?.smallBatch, 4);
    assert.equal(r.gradientNorms?.bigBatch, 16);
    assert.equal(r.gradientNorms?.small.length, 2);
    assert.ok(r.gradientNorms!.small.every((x, i) => x > 0 && r.gradientNorms!.big[i]! > 0));
    // Measured after the warm-up (5 ordinary steps) that follows the trial's 3 steps and the timed ones.
    assert.ok(r.gradientNorms!.afterSteps! >= 3 + 5, `after ${r.gradientNorms!.afterSteps} steps`);
    assert.equal(r.gradientNorms!.lossFrom, r.lossFirst);
    assert.ok(Number.isFinite(r.gradientNorms!.lossTo));
  });

  it('runs the plan\'s accumulation, and the peak grows with the batch', async (ctx) => {
    if (!t) return ctx.skip(torchWhy);
    const acc = await t.runTrial({ ...trialSpec(4), accumulationSteps: 2 });
    assert.equal(acc.ok, true, acc.error);
    assert.deepEqual([acc.batchSize, acc.accumulationSteps], [4, 2]);
    const big = await t.runTrial(trialSpec(256));
    assert.equal(big.ok, true, big.error);
    // 256 images of the tutorial CNN's activations at 28×28 are ~75 MiB more than 4 × 2.
    assert.ok(big.peakBytes > acc.peakBytes + 30 * 2 ** 20, `peak at 256 ${big.peakBytes}, at 4×2 ${acc.peakBytes}`);
  });
});

describe('a torch trial that cannot answer is a failed trial saying why', () => {
  it('killed by the system (the out-of-memory killer\'s SIGKILL): out of memory', async (ctx) => {
    if (!python) return ctx.skip(torchWhy);
    const t = await trials(fakePython('killed', 'echo "torch: allocating" >&2; kill -9 $$'));
    try {
      const r = await t.runTrial(trialSpec(8));
      assert.deepEqual([r.ok, r.failure], [false, 'oom']);
      assert.match(r.error!, /killed \(SIGKILL\)/);
    } finally {
      t.dispose();
    }
  });

  it('an exit without a result: the error is its last line of stderr', async (ctx) => {
    if (!python) return ctx.skip(torchWhy);
    const t = await trials(fakePython('broken', 'echo "Traceback (most recent call last):" >&2; echo "ImportError: numpy.core.multiarray failed to import" >&2; exit 1'));
    try {
      const r = await t.runTrial(trialSpec(8));
      assert.deepEqual([r.ok, r.failure], [false, 'error']);
      assert.match(r.error!, /exit 1\): ImportError: numpy\.core\.multiarray failed to import$/);
    } finally {
      t.dispose();
    }
  });

  it('a hang past the trial\'s time: killed, a timeout; Cancel rejects at once; the folder is removed', async (ctx) => {
    if (!python) return ctx.skip(torchWhy);
    const abort = new AbortController();
    const t = await trials(fakePython('hangs', 'sleep 60'), { timeoutMs: 1500, signal: abort.signal });
    const folder = readdirSync(tmpdir()).filter((d) => d.startsWith('batch-advisor-torch-probe-')).map((d) => join(tmpdir(), d));
    try {
      const r = await t.runTrial(trialSpec(8));
      assert.deepEqual([r.ok, r.failure], [false, 'timeout']);
      assert.match(r.error!, /did not finish within 2 s and was killed/);
      const pending = t.runTrial(trialSpec(8));
      const t0 = performance.now();
      setTimeout(() => abort.abort(), 200);
      await assert.rejects(pending, /Cancelled/);
      assert.ok(performance.now() - t0 < 1400, 'cancelled before the timeout');
    } finally {
      t.dispose();
    }
    assert.ok(folder.length > 0 && folder.some((f) => !existsSync(f)), 'the trials\' folder is gone');
  });
});

describe('suggest on a torchrun config', () => {
  it('probes on PyTorch and says so in the reasons; the trials are torch\'s', async (ctx) => {
    if (!python) return ctx.skip(torchWhy);
    const report = await suggest({ config: { ...config, explicit: [...config.explicit] } }, { trainerScript: TRAINER, probe: true, torchPython: python });
    assert.ok(report.probe && report.probe.trials.length > 0, 'the probe ran');
    for (const tr of report.probe.trials) assert.equal(tr.backend, 'torch-cpu', JSON.stringify(tr));
    assert.ok(report.plan.reasons.some((r) => /^The probe's trials ran on torch .* on the CPU, the engine this run trains on/.test(r)), report.plan.reasons.join('\n'));
    assert.ok(report.probe.trials.some((tr) => tr.ok && tr.batchSize === report.probe!.maxBatchSize));
    assert.ok(report.torchrun, 'the torchrun plan is stated');
  });
});
