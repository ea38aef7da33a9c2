/**
 * The runs view and Compare, their pure parts: the hyper-parameter table (differing fields), each
 * metric's last/best/worst, a row's short description and full tooltip, and renaming a run
 * (meta.json; the folder keeps its name).
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { configForFolder } from '../../src/core/config';
import { readRunMeta, renameRun, runNameProblem, RUN_META_FILE } from '../../src/core/run-folder/run-meta';
import { createRunDir, listRuns } from '../../src/core/run-folder/runs';
import { PROTOCOL_VERSION, type BatchEvent, type EpochEvent, type TrainEvent } from '../../src/core/shared/protocol';
import { bestRun, metricStats, METRICS, parameterRows, runParameters, showValue } from '../../src/core/shared/run-compare';
import { parseMessage } from '../../src/core/shared/ipc';
import { TRAIN_CHANNEL } from '../../src/core/shared/train-webview-protocol';

const isTrainWebviewToHost = (m: unknown): boolean => parseMessage(m, TRAIN_CHANNEL.fromWebview).ok;
import { rowDescription, rowTooltip } from '../../src/extension/train/run-row';
import { planFor } from '../helpers/plan';

const ws = mkdtempSync(join(tmpdir(), 'ba-compare-'));
after(() => rmSync(ws, { recursive: true, force: true }));

const metric = (id: string) => METRICS.find((m) => m.id === id)!;
const epoch = (n: number, loss: number, valLoss: number | null, valAccuracy: number | null): EpochEvent => ({
  v: PROTOCOL_VERSION, type: 'epoch', time: '2026-01-01T00:00:00.000Z', epoch: n, loss, accuracy: 0.5 + n / 10, valLoss, valAccuracy, durationMs: 1000, savedModel: 'm',
});
const batch = (globalStep: number, imagesPerSec: number): BatchEvent => ({
  v: PROTOCOL_VERSION, type: 'batch', time: '2026-01-01T00:00:00.000Z', epoch: 1, step: globalStep, stepsPerEpoch: 10, globalStep, loss: 1, accuracy: 0.5,
  learningRate: 0.001, imagesPerSec, stepMs: 50, dataWaitMs: 5, tensorBytes: 1000, etaSec: 10,
});

test('hyper-parameters: the fields that differ are marked, in a fixed order, shown as the table shows them', () => {
  const a = runParameters({ name: 'a', configPath: '/x/a.train.json', model: 'tutorial-cnn', optimizer: 'adam', batchSize: 32, learningRate: 0.001, imageSize: [28, 28], earlyStopping: { patience: 2, monitor: 'val_loss', minDelta: 0 } }, []);
  const b = runParameters({ name: 'b', configPath: '/x/b.train.json', model: 'tutorial-cnn', optimizer: 'adam', batchSize: 64, learningRate: 0.0014142135623, imageSize: [28, 28], earlyStopping: { patience: 3, monitor: 'val_loss', minDelta: 0 }, seed: 7 }, []);
  const rows = parameterRows([a, b]);
  const byKey = Object.fromEntries(rows.map((r) => [r.key, r]));
  // The name heads the column and the config's path is not what ran: neither is a row.
  assert.equal(byKey['name'], undefined);
  assert.equal(byKey['configPath'], undefined);
  assert.deepEqual(rows.filter((r) => r.differs).map((r) => r.key), ['batchSize', 'learningRate', 'seed', 'earlyStopping.patience']);
  assert.deepEqual(byKey['learningRate']!.values, ['0.001', '0.001414']);
  assert.deepEqual(byKey['imageSize']!.values, ['28 × 28', '28 × 28']);
  assert.deepEqual(byKey['seed']!.values, ['–', '7'], 'a field one run lacks shows a dash and differs');
  assert.equal(byKey['model']!.differs, false);
  assert.deepEqual(rows.slice(0, 4).map((r) => r.key), ['model', 'optimizer', 'batchSize', 'learningRate']);
  // Values equal once shown (4 significant digits) are not marked: the highlight always shows two different strings.
  assert.equal(parameterRows([{ learningRate: 0.00100001 }, { learningRate: 0.001 }])[0]!.differs, false);
  assert.equal(showValue({ a: 1 }), '{"a":1}');
});

test('hyper-parameters: the run-start adds the backend that ran and the effective batch', () => {
  const plan = planFor(configForFolder(join(ws, 'data'), { batchSize: 8, accumulationSteps: 4 }));
  const start = { v: PROTOCOL_VERSION, type: 'run-start', time: 't', runDir: '/r', backend: 'wasm', plan, stepsPerEpoch: 10, trainImages: 100, validationImages: 20, params: 1000 } as TrainEvent;
  const p = runParameters({ backend: 'auto', batchSize: 8 }, [start]);
  assert.equal(p['backendUsed'], 'wasm');
  assert.equal(p['effectiveBatch'], plan.effectiveBatchSize);
  assert.equal(p['backend'], 'auto');
});

test('metrics: last, best (with its epoch or step) and the other extreme; non-finite values skipped', () => {
  const events: TrainEvent[] = [batch(1, 40), batch(2, 120), batch(3, 90), epoch(1, 1.2, 0.9, 0.7), epoch(2, 0.8, 0.6, 0.85), epoch(3, 0.5, 0.7, 0.8), epoch(4, Number.NaN, null, null)];
  assert.deepEqual(metricStats(events, metric('valLoss')), { last: 0.7, best: 0.6, bestAt: 2, worst: 0.9 });
  assert.deepEqual(metricStats(events, metric('valAccuracy')), { last: 0.8, best: 0.85, bestAt: 2, worst: 0.7 });
  assert.deepEqual(metricStats(events, metric('loss')), { last: 0.5, best: 0.5, bestAt: 3, worst: 1.2 });
  assert.deepEqual(metricStats(events, metric('imagesPerSec')), { last: 90, best: 120, bestAt: 2, worst: 40 });
  assert.equal(metricStats([batch(1, 10)], metric('valAccuracy')), null, 'no epoch yet: no value');
});

test('bestRun: the run with the best value, lower or higher; none with fewer than two values', () => {
  assert.equal(bestRun([0.5, 0.3, 0.4], false), 1);
  assert.equal(bestRun([0.5, 0.3, 0.9], true), 2);
  assert.equal(bestRun([null, 0.3, 0.3], false), 1, 'first on ties');
  assert.equal(bestRun([null, 0.3], false), -1);
});

test('a runs-view row: a short description (one headline metric, the status unless completed), every detail in the tooltip', () => {
  const base = { id: '20260102-030405-mnist', dir: '/ws/.batch-advisor/runs/20260102-030405-mnist', name: 'mnist', startedAt: new Date(2026, 0, 2, 3, 4, 5), lastEpoch: 3, endMessage: 'Stopped by you.' };
  const run = { ...base, status: 'stopped' as const, lastEpochEvent: epoch(3, 0.1234, 0.2345, 0.9712) };
  assert.equal(rowDescription(run, false), 'stopped · val acc 97.1%');
  assert.equal(rowDescription({ ...run, status: 'running' }, true), 'training · val acc 97.1%');
  assert.equal(rowDescription({ ...run, status: 'running' }, false), 'interrupted · val acc 97.1%');
  assert.equal(rowDescription({ ...run, lastEpochEvent: epoch(1, 0.5, null, null) }, false), 'stopped · loss 0.500');
  assert.equal(rowDescription({ ...run, lastEpochEvent: null }, false), 'stopped');
  assert.equal(rowDescription({ ...run, status: 'completed' }, false), 'val acc 97.1%', 'a completed run: its icon says so');
  assert.equal(rowDescription({ ...run, status: 'completed', lastEpochEvent: null }, false), 'completed');
  assert.ok(rowDescription(run, false).length <= 30, 'fits the Explorer beside the name');
  const tip = rowTooltip(run, false).split('\n');
  assert.deepEqual(tip, [
    'mnist — stopped',
    'Stopped by you.',
    'epoch 3 · loss 0.1234 · accuracy 80.0% · val loss 0.2345 · val accuracy 97.1%',
    'started 2026-01-02 03:04:05',
    'run 20260102-030405-mnist',
    '/ws/.batch-advisor/runs/20260102-030405-mnist',
  ]);
});

test('rename: the name goes to meta.json, the folder keeps its name, listRuns shows it; bad names are refused with the reason', () => {
  const config = configForFolder(join(ws, 'data'), { name: 'mnist' });
  const dir = createRunDir(ws, config, planFor(config));
  const id = dir.split('/').pop()!;
  assert.equal(listRuns(ws)[0]!.name, 'mnist');
  assert.equal(renameRun(dir, '  baseline, lr 1e-3  '), 'baseline, lr 1e-3');
  assert.deepEqual(readdirSync(join(ws, '.batch-advisor', 'runs')), [id], 'the folder is not renamed');
  assert.ok(existsSync(join(dir, RUN_META_FILE)));
  assert.equal(listRuns(ws)[0]!.name, 'baseline, lr 1e-3');
  assert.equal(listRuns(ws)[0]!.id, id);
  assert.match(runNameProblem('   ') ?? '', /cannot be empty/);
  assert.match(runNameProblem('a\nb') ?? '', /line breaks/);
  assert.match(runNameProblem('x'.repeat(101)) ?? '', /at most 100 characters \(this one has 101\)/);
  assert.throws(() => renameRun(dir, ''), /cannot be empty/);
  assert.equal(listRuns(ws)[0]!.name, 'baseline, lr 1e-3', 'a refused name changes nothing');
  // A damaged meta.json is no name: the run lists under its folder's name.
  writeFileSync(join(dir, RUN_META_FILE), '{not json');
  assert.deepEqual(readRunMeta(dir), {});
  assert.equal(listRuns(ws)[0]!.name, 'mnist');
});

test('export-png messages from the webview: a PNG data URL and a plain chart id only', () => {
  const ok = { type: 'export-png', runId: 'r', chart: 'loss', dataUrl: 'data:image/png;base64,iVBORw0KGgo=' };
  assert.equal(isTrainWebviewToHost(ok), true);
  assert.equal(isTrainWebviewToHost({ ...ok, chart: '../../etc/passwd' }), false);
  assert.equal(isTrainWebviewToHost({ ...ok, dataUrl: 'data:text/html;base64,PGh0bWw+' }), false);
  assert.equal(isTrainWebviewToHost({ ...ok, runId: '' }), false);
});
