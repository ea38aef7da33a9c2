import { strict as assert } from 'node:assert';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { configForFolder } from '../../src/core/config';
import { createRunDir, listRuns, parseMetrics, readRun, sanitizeRunName } from '../../src/core/run-folder/runs';
import { planFor } from '../helpers/plan';

const ws = mkdtempSync(join(tmpdir(), 'ba-runs-'));
after(() => rmSync(ws, { recursive: true, force: true }));

test('createRunDir: <ws>/.batch-advisor/runs/<YYYYMMDD-HHMMSS>-<name>/config.json, unique', () => {
  const config = configForFolder(join(ws, 'data'), { name: 'my run/1' });
  const when = new Date(2026, 0, 23, 10, 15, 0);
  const plan = planFor(config, { microBatchSize: 16, accumulationSteps: 2 });
  const a = createRunDir(ws, config, plan, when);
  const b = createRunDir(ws, config, plan, when);
  assert.equal(a, join(ws, '.batch-advisor', 'runs', '20260123-101500-my-run-1'));
  assert.equal(basename(b), '20260123-101500-my-run-1-2');
  // config.json records what ran: the plan's numbers in place of "auto"; plan.json the whole plan.
  const { explicit: _e, ...written } = config;
  assert.deepEqual(JSON.parse(readFileSync(join(a, 'config.json'), 'utf8')), { ...written, batchSize: 16, accumulationSteps: 2, learningRate: plan.learningRate.value, warmupSteps: 0, loading: plan.loading.strategy });
  assert.deepEqual(JSON.parse(readFileSync(join(a, 'plan.json'), 'utf8')), plan);
  assert.equal(sanitizeRunName('../..'), 'run');
});

test('readRun tolerates a truncated last line; listRuns is newest first with status', () => {
  const config = configForFolder(join(ws, 'data'), { name: 'r' });
  const older = createRunDir(ws, config, planFor(config), new Date(2026, 0, 1, 0, 0, 0));
  const newer = createRunDir(ws, config, planFor(config), new Date(2026, 0, 2, 0, 0, 0));
  const ev = (o: object): string => JSON.stringify({ v: 2, time: 't', ...o }) + '\n';
  writeFileSync(join(older, 'metrics.jsonl'), ev({ type: 'epoch', epoch: 1 }) + ev({ type: 'run-end', status: 'completed' }));
  writeFileSync(join(newer, 'metrics.jsonl'), ev({ type: 'epoch', epoch: 1 }) + ev({ type: 'epoch', epoch: 2 }));
  appendFileSync(join(newer, 'metrics.jsonl'), '{"v":1,"type":"batch","loss":0.1'); // killed mid-write
  const rec = readRun(newer);
  assert.equal(rec.events.length, 2);
  assert.equal(rec.truncated, true);
  assert.equal(rec.badLines, 0);
  assert.equal(rec.runEnd, null);
  assert.equal(rec.config.name, 'r');
  const runs = listRuns(ws).filter((r) => r.name === 'r');
  assert.deepEqual(
    runs.map((r) => [r.dir, r.status, r.lastEpoch]),
    [
      [newer, 'running', 2],
      [older, 'completed', 1],
    ],
  );
  assert.equal(runs[0]!.startedAt?.getDate(), 2);
  assert.deepEqual(listRuns(join(ws, 'nothing-here')), []);
  assert.equal(parseMetrics('garbage\n{"type":"log"}\n').badLines, 1);
});
