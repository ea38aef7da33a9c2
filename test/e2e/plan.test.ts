/**
 * End-to-end, issue "One training plan": in the real VS Code, a config with "batchSize": "auto" on a
 * small planned device trains with exactly the plan `batch-advisor suggest --json` gives for it —
 * micro-batch, accumulation, learning rate, warmup, loading — as recorded in the run's run-start
 * event and plan.json; and a second Train while the first is planning is refused with a message.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, before } from 'node:test';
import { bytesForBatch } from '../../src/core/planning/memory';
import { DEFAULT_HEADROOM } from '../../src/core/shared/constants';
import type { TrainingPlan } from '../../src/core/shared/plan';
import type { RunStartEvent } from '../../src/core/shared/protocol';
import type { SuggestReport } from '../../src/core/shared/report';
import { makeTinyDataset } from '../helpers/tiny-dataset';
import { SAMPLE_DATASET, ensureSample } from './fixtures';
import { ROOT, buildVsix, e2eAvailable, withVSCode } from './harness';

let available = e2eAvailable();
if (!available.ok && process.env.E2E_NO_SETUP !== '1') {
  execFileSync('bash', [join(ROOT, 'test', 'e2e', 'setup.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  available = e2eAvailable();
}
const skip = available.ok ? false : available.reason;
const CLI = join(ROOT, 'dist', 'cli.js');

function suggestJson(config: string, deviceGiB: number): SuggestReport {
  // The memory model's plan: this scenario is about accumulation; scenario i is the probe's.
  return JSON.parse(execFileSync(process.execPath, [CLI, 'suggest', config, '--json', '--no-probe', '--device-memory', String(deviceGiB)], { encoding: 'utf8' })) as SuggestReport;
}

/** The numbers a run executes (reasons mention free host RAM, which moves between two readings). */
function numbers(p: TrainingPlan): unknown {
  return { micro: p.microBatchSize, k: p.accumulationSteps, effective: p.effectiveBatchSize, lr: p.learningRate, warmup: p.warmup, loading: p.loading.strategy, epochs: p.epochs, stepsPerEpoch: p.stepsPerEpoch, budget: p.budgetBytes, predicted: p.predictedBytes, sources: p.sources };
}

describe('the advised plan is the plan that runs (VS Code)', { skip, timeout: 600_000 }, () => {
  before(() => {
    if (process.env.E2E_SKIP_PACKAGE !== '1') buildVsix();
    ensureSample();
  });

  test('i. Suggest with the probe (on by default), then the Train lens: the run trains the plan the panel showed, field by field, without probing again', { timeout: 400_000 }, async () => {
    const ws = mkdtempSync(join(tmpdir(), 'ba-e2e-probe-plan-'));
    try {
      writeFileSync(join(ws, 'probed.train.json'), JSON.stringify({ name: 'probed', dataset: SAMPLE_DATASET, imageSize: [28, 28], channels: 1, model: 'tutorial-cnn', optimizer: 'adam', batchSize: 'auto', epochs: 1 }, null, 2));
      const shown: Record<string, string> = {};
      await withVSCode({ name: 'i-probe-plan', workspace: ws, settings: {} }, async (vsc) => {
        await vsc.openFile('probed.train.json');
        await vsc.runCommand('Batch Advisor: Suggest Batch Size');
        await vsc.webviewText('[data-testid="batch-size"]', 240_000);
        const fields = ['batch-size', 'learning-rate', 'warmup', 'accumulation', 'effective-batch', 'loading', 'loss', 'probe-trials-count'];
        for (const f of fields) shown[f] = await vsc.webviewText(`[data-testid="${f}"]`);
        assert.match(shown['probe-trials-count']!, /^[1-9]\d*$/, 'the probe ran real trials');
        await vsc.findInWebview('[data-testid="objective"]');
        await vsc.scrollWebviewTo('[data-testid="objective"]');
        await vsc.page.waitForTimeout(800);
        await vsc.screenshot('suggest-objective');

        const lens = vsc.page.locator('.codelens-decoration a', { hasText: 'Train with this config' }).first();
        await lens.waitFor({ state: 'visible', timeout: 60_000 });
        await lens.click();
        await vsc.page.locator('.notification-toast', { hasText: /training (finished|stopped)/ }).first().waitFor({ state: 'visible', timeout: 240_000 });
        await vsc.screenshot('trained');
        // Only the Suggest panel's trials ran: Train's planning reused every one from the probe cache.
        const trials = vsc.extensionLog().split('\n').filter((l) => /probe trial \d+ \(/.test(l));
        const fresh = trials.filter((l) => !l.includes('(from the probe cache)'));
        assert.equal(fresh.length, Number(shown['probe-trials-count']), fresh.join('\n'));
        assert.ok(trials.length > fresh.length, 'Train reused the Suggest panel\'s trials');
      });
      const runsDir = join(ws, '.batch-advisor', 'runs');
      const [run] = readdirSync(runsDir);
      const start = readFileSync(join(runsDir, run!, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string })
        .find((e): e is RunStartEvent => e.type === 'run-start');
      assert.ok(start, 'the run started');
      const p = start.plan;
      const fmt = (n: number): string => (Math.abs(n) < 0.001 ? n.toExponential(2) : Number(n.toPrecision(3)).toString());
      assert.deepEqual(
        {
          'batch-size': shown['batch-size'],
          'learning-rate': shown['learning-rate'],
          warmup: shown.warmup,
          accumulation: shown.accumulation,
          'effective-batch': shown['effective-batch'],
          loading: shown.loading,
          loss: shown.loss,
        },
        {
          'batch-size': String(p.microBatchSize),
          'learning-rate': fmt(p.learningRate.value),
          warmup: p.warmup.steps > 0 ? `${p.warmup.steps} step${p.warmup.steps === 1 ? '' : 's'}` : 'none',
          accumulation: p.accumulationSteps > 1 ? `${p.accumulationSteps} steps` : 'none',
          'effective-batch': String(p.effectiveBatchSize),
          loading: p.loading.strategy === 'preload' ? 'Preload' : 'Stream',
          loss: p.loss,
        },
      );
      assert.equal(p.sources.batchSize, 'probe');
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });

  test('h. "batchSize": "auto" with a small deviceMemoryGiB setting: the Train lens runs the suggested micro-batch × accumulation; a second Train is refused', { timeout: 300_000 }, async () => {
    const ws = mkdtempSync(join(tmpdir(), 'ba-e2e-plan-'));
    try {
      await makeTinyDataset(join(ws, 'ds'), { classes: 2, perClass: 20, size: 32 });
      const configPath = join(ws, 'auto.train.json');
      writeFileSync(configPath, JSON.stringify({ name: 'auto', dataset: 'ds', imageSize: [32, 32], model: 'resnet-small', batchSize: 'auto', epochs: 1, backend: 'wasm' }, null, 2));
      // A device that holds about 4 images: the planner must accumulate.
      const big = suggestJson(configPath, 8);
      const gib = Number(((bytesForBatch(big.memory, 4) + big.memory.breakdown.gradientsBytes) / (1 - DEFAULT_HEADROOM) / 2 ** 30).toFixed(6));
      const advised = suggestJson(configPath, gib).plan;
      assert.ok(advised.accumulationSteps > 1, `expected accumulation at ${gib} GiB: ${JSON.stringify(numbers(advised))}`);

      await withVSCode({ name: 'h-plan', workspace: ws, settings: { 'batchAdvisor.deviceMemoryGiB': gib, 'batchAdvisor.probe': false } }, async (vsc) => {
        await vsc.openFile('auto.train.json');
        const lens = vsc.page.locator('.codelens-decoration a', { hasText: 'Train with this config' }).first();
        await lens.waitFor({ state: 'visible', timeout: 30_000 });
        await lens.click();
        // At once, a second Train from the command palette: refused while the first plans.
        await vsc.runCommand('Batch Advisor: Train with Config');
        await vsc.page.locator('.notification-toast', { hasText: 'already being prepared or in progress' }).first().waitFor({ state: 'visible', timeout: 30_000 });
        await vsc.screenshot('second-train-refused');
        await vsc.page.locator('.notification-toast', { hasText: /training (finished|stopped)/ }).first().waitFor({ state: 'visible', timeout: 200_000 });
        await vsc.screenshot('finished');
        assert.match(vsc.extensionLog(), new RegExp(`Train: plan batch ${advised.microBatchSize} × ${advised.accumulationSteps} accumulated = ${advised.effectiveBatchSize}`));
      });

      const runsDir = join(ws, '.batch-advisor', 'runs');
      const runs = readdirSync(runsDir);
      assert.equal(runs.length, 1, `one run, not two: ${runs.join(', ')}`);
      const runDir = join(runsDir, runs[0]!);
      const start = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string })
        .find((e): e is RunStartEvent => e.type === 'run-start');
      assert.ok(start, 'the run started');
      assert.deepEqual(numbers(start.plan), numbers(advised));
      assert.deepEqual(JSON.parse(readFileSync(join(runDir, 'plan.json'), 'utf8')), start.plan);
      const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')) as { batchSize: unknown; accumulationSteps: unknown };
      assert.deepEqual([config.batchSize, config.accumulationSteps], [advised.microBatchSize, advised.accumulationSteps]);
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });
});
