/** The training panel's pure parts and the run-folder actions behind the runs view. */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { configForFolder } from '../../src/core/config';
import { createRunDir, deleteRun, listRuns, markRunInterrupted, metricsCsv, readRun } from '../../src/core/run-folder/runs';
import { PROTOCOL_VERSION, type BatchEvent, type EpochEvent, type TrainEvent } from '../../src/core/shared/protocol';
import { parseMessage } from '../../src/core/shared/ipc';
import { SUGGEST_CHANNEL } from '../../src/core/shared/webview-protocol';
import { TRAIN_CHANNEL, statusFromEnd } from '../../src/core/shared/train-webview-protocol';

const isTrainWebviewToHost = (m: unknown): boolean => parseMessage(m, TRAIN_CHANNEL.fromWebview).ok;
import { ema, minMaxDownsample } from '../../src/webview/train/downsample';
import { addEvent, emptySeries, epochXOf, xOf } from '../../src/webview/train/series';
import { planFor } from '../helpers/plan';

const ws = mkdtempSync(join(tmpdir(), 'ba-panel-'));
after(() => rmSync(ws, { recursive: true, force: true }));

function batch(globalStep: number, loss: number | null, extra: Partial<BatchEvent> = {}): BatchEvent {
  return {
    v: PROTOCOL_VERSION, type: 'batch', time: new Date(Date.UTC(2026, 0, 1, 0, 0, globalStep)).toISOString(), epoch: Math.ceil(globalStep / 10), step: ((globalStep - 1) % 10) + 1, stepsPerEpoch: 10,
    globalStep, loss: loss as number, accuracy: 0.5, learningRate: 0.001, imagesPerSec: 100, stepMs: 50, dataWaitMs: 5, tensorBytes: 1000, etaSec: 10, ...extra,
  };
}
const epoch = (n: number, valLoss: number | null): EpochEvent => ({ v: PROTOCOL_VERSION, type: 'epoch', time: new Date(Date.UTC(2026, 0, 1, 0, 0, n * 10)).toISOString(), epoch: n, loss: 1, accuracy: 0.5, valLoss, valAccuracy: 0.6, durationMs: 1000, savedModel: 'm' });

test('minMaxDownsample keeps the extremes of each bucket in x order and never more than 2 per bucket', () => {
  const n = 100_000;
  const xs = Float64Array.from({ length: n }, (_, i) => i);
  const ys = Float64Array.from({ length: n }, (_, i) => (i === 54_321 ? 99 : i === 12_345 ? -99 : Math.sin(i / 100)));
  const r = minMaxDownsample(xs, ys, 500);
  assert.ok(r.x.length <= 1000 && r.x.length >= 500, `${r.x.length} points`);
  assert.ok(r.y.includes(99) && r.y.includes(-99), 'spikes survive');
  for (let i = 1; i < r.x.length; i++) assert.ok(r.x[i]! > r.x[i - 1]!, 'x stays sorted');
  // Short series are returned as they are; non-finite values never chosen as extremes.
  assert.deepEqual(minMaxDownsample([1, 2, 3], [3, 2, 1], 10), { x: [1, 2, 3], y: [3, 2, 1] });
  const withNull = minMaxDownsample([0, 1, 2, 3, 4, 5], [1, null, 3, 4, NaN, 6], 1);
  assert.deepEqual(withNull, { x: [0, 5], y: [1, 6] });
});

test('ema: 0 is the raw series, debiased from the first point, nulls passed through', () => {
  assert.deepEqual(ema([1, 2, 3], 0), [1, 2, 3]);
  const s = ema([2, 2, 2, null, 2], 0.9);
  assert.deepEqual(s.map((v) => (v === null ? null : Number(v.toFixed(6)))), [2, 2, 2, null, 2]);
  const t = ema([0, 10], 0.5);
  assert.ok(t[1]! > 5 && t[1]! < 10, `smoothed ${t[1]}`);
});

test('series: steps, epoch fraction, wall time, compute vs data wait; a NaN loss (null in JSON) is found', () => {
  const s = emptySeries();
  for (let i = 1; i <= 12; i++) addEvent(s, batch(i, i === 7 ? null : 2 / i));
  addEvent(s, epoch(1, 0.5));
  assert.deepEqual(xOf(s, 'step').slice(0, 3), [1, 2, 3]);
  assert.equal(xOf(s, 'epoch')[9], 1);
  assert.equal(xOf(s, 'time')[1]! - xOf(s, 'time')[0]!, 1);
  assert.equal(s.computeMs[0], 45);
  assert.equal(s.firstBadLossStep, 7);
  assert.deepEqual(epochXOf(s, 'step'), [12]);
  assert.equal(s.lastEpoch, 2);
  assert.equal(s.lastStep, 2);
});

test('statusFromEnd: finished / stopped / failed with retry for OOM / interrupted without a run-end', () => {
  const end = (status: 'completed' | 'stopped' | 'failed', extra = {}) => ({ v: PROTOCOL_VERSION as typeof PROTOCOL_VERSION, type: 'run-end' as const, time: 't', status, ...extra });
  assert.equal(statusFromEnd(end('completed'), false).status, 'finished');
  assert.equal(statusFromEnd(end('stopped'), false).status, 'stopped');
  assert.deepEqual(statusFromEnd(end('failed', { error: 'oom', message: 'Out of memory', suggestedBatchSize: 16 }), false), { status: 'failed', message: 'Out of memory', retryBatchSize: 16 });
  assert.equal(statusFromEnd(end('failed', { error: 'internal', message: 'x', suggestedBatchSize: 16 }), false).retryBatchSize, undefined);
  assert.equal(statusFromEnd(null, true).status, 'running');
  assert.match(statusFromEnd(null, false).message ?? '', /metrics up to that point are kept/);
});

test('messages from the training webview are validated before use', () => {
  assert.ok(isTrainWebviewToHost({ type: 'ready' }));
  assert.ok(isTrainWebviewToHost({ type: 'stop', runId: '20260101-000000-a' }));
  assert.ok(!isTrainWebviewToHost({ type: 'stop' }));
  assert.ok(!isTrainWebviewToHost({ type: 'retry', runId: 42 }));
  assert.ok(!isTrainWebviewToHost({ type: 'export-csv', runId: 'x'.repeat(600) }));
  assert.ok(!isTrainWebviewToHost({ type: 'delete-everything', runId: 'a' }));
  assert.ok(!isTrainWebviewToHost(null));
  assert.ok(isTrainWebviewToHost({ type: 'csp-violation', directive: 'script-src', blocked: 'inline' }));
});

test('the training channel: thumbnails and open-file bounded, host messages parsed in the webview', () => {
  assert.ok(isTrainWebviewToHost({ type: 'thumbnails', runId: 'a', paths: ['/d/1.png'] }));
  assert.ok(!isTrainWebviewToHost({ type: 'thumbnails', runId: 'a', paths: Array.from({ length: 1001 }, () => '/d/1.png') }));
  assert.ok(!isTrainWebviewToHost({ type: 'thumbnails', runId: 'a', paths: [3] }));
  assert.ok(!isTrainWebviewToHost({ type: 'open-file', runId: 'a', path: '' }));
  const toWebview = (m: unknown): boolean => parseMessage(m, TRAIN_CHANNEL.toWebview).ok;
  assert.ok(toWebview({ type: 'reset', runs: [] }));
  assert.ok(toWebview({ type: 'events', runId: 'a', events: [] }));
  assert.ok(toWebview({ type: 'status', run: { id: 'a', name: 'a', status: 'running', live: true } }));
  assert.ok(!toWebview({ type: 'status', run: {} }));
  assert.ok(!toWebview({ type: 'events', runId: 'a' }));
  // Both panels share the handshake and the CSP report (one WebviewHost handles them).
  for (const t of ['ready', 'csp-violation']) assert.ok(TRAIN_CHANNEL.fromWebview.some((d) => d.type === t) && SUGGEST_CHANNEL.fromWebview.some((d) => d.type === t), t);
});

test('metricsCsv: one row per step and per epoch end, in order', () => {
  const events: TrainEvent[] = [batch(1, 2.3), batch(2, 2.1, { gpuMemoryUsedBytes: 5 }), epoch(1, 1.5)];
  const lines = metricsCsv(events).trim().split('\n');
  assert.equal(lines.length, 4);
  assert.equal(lines[0], 'time,epoch,step,globalStep,loss,accuracy,valLoss,valAccuracy,learningRate,imagesPerSec,stepMs,dataWaitMs,tensorBytes,gpuMemoryUsedBytes');
  assert.match(lines[2]!, /Z,1,2,2,2\.1,0\.5,,,0\.001,100,50,5,1000,5$/);
  assert.match(lines[3]!, /,1,,,1,0\.5,1\.5,0\.6,,,,,,$/);
});

test('deleteRun removes a run folder and refuses anything else; markRunInterrupted ends a run "stopped"', () => {
  const config = configForFolder(join(ws, 'data'), { name: 'gone' });
  const dir = createRunDir(ws, config, planFor(config), new Date(2026, 0, 2, 0, 0, 0));
  writeFileSync(join(dir, 'metrics.jsonl'), JSON.stringify(batch(1, 2)) + '\n{"v":2,"type":"bat'); // killed mid-line
  markRunInterrupted(dir, 'window reloaded');
  const run = readRun(dir);
  assert.equal(run.runEnd?.status, 'stopped');
  assert.equal(run.runEnd?.message, 'window reloaded');
  assert.equal(listRuns(ws).find((r) => r.dir === dir)?.status, 'stopped');
  assert.throws(() => deleteRun(ws, join(ws, 'data')), /not a run folder/);
  assert.throws(() => deleteRun(ws, join(dir, '..', '..')), /not a run folder/);
  deleteRun(ws, dir);
  assert.ok(!existsSync(dir));
});
