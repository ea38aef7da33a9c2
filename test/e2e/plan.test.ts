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
import { bytesForBatch } from '../../src/core/memory';
import { DEFAULT_HEADROOM } from '../../src/core/shared/constants';
import type { TrainingPlan } from '../../src/core/shared/plan';
import type { RunStartEvent } from '../../src/core/shared/protocol';
import type { SuggestReport } from '../../src/core/shared/report';
import { makeTinyDataset } from '../helpers/tiny-dataset';
import { ROOT, buildVsix, e2eAvailable, withVSCode } from './harness';

let available = e2eAvailable();
if (!available.ok && process.env.E2E_NO_SETUP !== '1') {
  execFileSync('bash', [join(ROOT, 'test', 'e2e', 'setup.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  available = e2eAvailable();
}
const skip = available.ok ? false : available.reason;
const CLI = join(ROOT, 'dist', 'cli.js');

function suggestJson(config: string, deviceGiB: number): SuggestReport {
  return JSON.parse(execFileSync(process.execPath, [CLI, 'suggest', config, '--json', '--device-memory', String(deviceGiB)], { encoding: 'utf8' })) as SuggestReport;
}

/** The numbers a run executes (reasons mention free host RAM, which moves between two readings). */
function numbers(p: TrainingPlan): unknown {
  return { micro: p.microBatchSize, k: p.accumulationSteps, effective: p.effectiveBatchSize, lr: p.learningRate, warmup: p.warmup, loading: p.loading.strategy, epochs: p.epochs, stepsPerEpoch: p.stepsPerEpoch, budget: p.budgetBytes, predicted: p.predictedBytes, sources: p.sources };
}

describe('the advised plan is the plan that runs (VS Code)', { skip, timeout: 600_000 }, () => {
  before(() => {
    if (process.env.E2E_SKIP_PACKAGE !== '1') buildVsix();
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

      await withVSCode({ name: 'h-plan', workspace: ws, settings: { 'batchAdvisor.deviceMemoryGiB': gib } }, async (vsc) => {
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
