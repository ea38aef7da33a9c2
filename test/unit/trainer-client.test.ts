/** TrainerClient against small fake trainers (plain .js scripts) and the real one (through tsx). */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import type { TrainingPlan } from '../../src/core/shared/plan';
import { PROTOCOL_VERSION, type TrainEvent } from '../../src/core/shared/protocol';
import type { RunSpec } from '../../src/core/shared/run-spec';
import { TrainerClient, TrainerError } from '../../src/core/process/trainer-client';
import { HANG_CEILING_MS, until } from '../helpers/wait';

const dir = mkdtempSync(join(tmpdir(), 'ba-client-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fake(name: string, body: string): string {
  const path = join(dir, `${name}.js`);
  writeFileSync(path, `process.on('disconnect', () => process.exit(0));\n${body}\n`);
  return path;
}

/** A spec the fake trainers never read (the real trainer's checks are in run-spec.test.ts). */
const params = (runDir: string): RunSpec => ({ runDir, plan: {} as TrainingPlan }) as unknown as RunSpec;

test('a trainer speaking another protocol version is refused', async () => {
  const c = new TrainerClient({ trainerScript: fake('v99', `process.send({ v: 99, type: 'ready', pid: process.pid });`) });
  await assert.rejects(c.describe({ model: 'tutorial-cnn' }, [28, 28, 1], 10), new RegExp(`protocol v99.*v${PROTOCOL_VERSION}`));
  c.dispose();
});

test('a crash mid-run becomes run-end failed (with stderr), also written to metrics.jsonl', async () => {
  const script = fake(
    'crash',
    `process.on('message', (m) => { if (m.type === 'train') { process.send({ v: ${PROTOCOL_VERSION}, type: 'batch', time: 't', epoch: 1, step: 1, stepsPerEpoch: 2, globalStep: 1, loss: 1, accuracy: 0, learningRate: 0.001, imagesPerSec: 1, stepMs: 1, dataWaitMs: 0, tensorBytes: 0, etaSec: 1 }); process.stderr.write('boom: segfault-ish\\n'); setTimeout(() => process.exit(3), 50); } });
     process.send({ v: ${PROTOCOL_VERSION}, type: 'ready', pid: process.pid });`,
  );
  const runDir = join(dir, 'run1');
  mkdirSync(runDir);
  const c = new TrainerClient({ trainerScript: script });
  const seen: TrainEvent[] = [];
  const end = await c.train(params(runDir), (e) => seen.push(e));
  assert.equal(end.status, 'failed');
  assert.equal(end.error, 'internal');
  assert.match(end.message!, /exited unexpectedly \(code 3\).*boom/);
  assert.deepEqual(
    seen.map((e) => e.type),
    ['batch', 'log', 'run-end'],
  );
  assert.match(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8'), /"status":"failed"/);
  assert.equal(c.training, false);
  c.dispose();
});

test('dispose(reason) mid-run (a window reloading): the run-end "stopped" with that reason is in metrics.jsonl before dispose returns, once', async () => {
  const script = fake(
    'long',
    `process.on('message', (m) => { if (m.type === 'train') { process.send({ v: ${PROTOCOL_VERSION}, type: 'batch', time: 't', epoch: 1, step: 1, stepsPerEpoch: 2, globalStep: 1, loss: 1, accuracy: 0, learningRate: 0.001, imagesPerSec: 1, stepMs: 1, dataWaitMs: 0, tensorBytes: 0, etaSec: 1 }); } });
     process.send({ v: ${PROTOCOL_VERSION}, type: 'ready', pid: process.pid });`,
  );
  const runDir = join(dir, 'run-reload');
  mkdirSync(runDir);
  writeFileSync(join(runDir, 'metrics.jsonl'), `{"v":${PROTOCOL_VERSION},"type":"batch","loss":1`); // the child cut off mid-line
  const c = new TrainerClient({ trainerScript: script });
  const seen: TrainEvent[] = [];
  let firstBatch: () => void = () => undefined;
  const batch = new Promise<void>((r) => (firstBatch = r));
  const done = c.train(params(runDir), (e) => {
    seen.push(e);
    if (e.type === 'batch') firstBatch();
  });
  await batch;
  const pid = c.pid;
  assert.equal(c.dispose('window reloaded'), true);
  const text = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8');
  const ends = text.split('\n').filter((l) => l.includes('"run-end"'));
  assert.equal(ends.length, 1, text);
  assert.match(ends[0]!, /^\{.*"status":"stopped".*"message":"window reloaded"/);
  const end = await done;
  assert.equal(end.message, 'window reloaded');
  // The child's exit adds no second run-end: wait until it has exited.
  await until(() => {
    if (pid === undefined) return true;
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }, 'the child exited');
  assert.equal(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"run-end"')).length, 1);
  assert.equal(c.dispose('again'), false);
});

test('an error message for the run ends it as failed; describe errors reject with the kind', async () => {
  const script = fake(
    'errors',
    `process.on('message', (m) => {
       if (m.type === 'train') process.send({ v: ${PROTOCOL_VERSION}, type: 'error', id: m.id, kind: 'bad-input', message: 'no such dataset' });
       if (m.type === 'describe') process.send({ v: ${PROTOCOL_VERSION}, type: 'error', id: m.id, kind: 'bad-input', message: 'unknown model' });
     });
     process.send({ v: ${PROTOCOL_VERSION}, type: 'ready', pid: process.pid });`,
  );
  const runDir = join(dir, 'run2');
  mkdirSync(runDir);
  const c = new TrainerClient({ trainerScript: script });
  const end = await c.train(params(runDir), () => {});
  assert.equal(end.status, 'failed');
  assert.equal(end.error, 'bad-input');
  await assert.rejects(c.describe({ model: 'x' }, [8, 8, 1], 2), (e: unknown) => e instanceof TrainerError && e.kind === 'bad-input' && /unknown model/.test(e.message));
  c.dispose();
});

test('a model that never finishes building: describe rejects after its timeout, as an input error, and the stuck child is ended', async () => {
  const pidFile = join(dir, 'stuck.pid');
  const script = fake('stuck', `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));\nprocess.on('message', () => { for (;;) {} });\nprocess.send({ v: ${PROTOCOL_VERSION}, type: 'ready', pid: process.pid });`);
  const c = new TrainerClient({ trainerScript: script, describeTimeoutMs: 800 });
  const t0 = Date.now();
  await assert.rejects(c.describe({ model: 'tutorial-cnn' }, [28, 28, 1], 10), (e: unknown) => e instanceof TrainerError && e.kind === 'bad-input' && /building the model took longer than 1 s/.test(e.message));
  assert.ok(Date.now() - t0 < HANG_CEILING_MS, 'a hang ceiling, not a speed bound');
  const pid = Number(readFileSync(pidFile, 'utf8'));
  await until(() => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }, 'the stuck trainer was killed');
  c.dispose();
});

test('missing trainer script: a clear error', async () => {
  const c = new TrainerClient({ trainerScript: join(dir, 'nope.js') });
  await assert.rejects(c.start(), /trainer not found/);
});

test('describe through the real trainer (tsx)', async () => {
  const c = new TrainerClient({ trainerScript: resolve(__dirname, '../../src/trainer/main.ts') });
  try {
    const d = await c.describe({ model: 'tutorial-cnn' }, [28, 28, 1], 10);
    assert.equal(d.numClasses, 10);
    assert.ok(d.totalParams > 0);
    assert.equal(d.layers.at(-1)?.outputShape.at(-1), 10);
  } finally {
    c.dispose();
  }
});

test('stop() while the trainer is still starting reaches it right after the train request', async () => {
  const script = fake(
    'stoppable',
    `let training = false;
     process.on('message', (m) => {
       if (m.type === 'train') training = true;
       if (m.type === 'stop' && training) process.send({ v: ${PROTOCOL_VERSION}, type: 'run-end', time: 't', status: 'stopped' });
     });
     setTimeout(() => process.send({ v: ${PROTOCOL_VERSION}, type: 'ready', pid: process.pid }), 100);`,
  );
  const runDir = join(dir, 'run3');
  mkdirSync(runDir);
  const c = new TrainerClient({ trainerScript: script });
  const p = c.train(params(runDir), () => {});
  c.stop();
  assert.equal((await p).status, 'stopped');
  c.dispose();
});
