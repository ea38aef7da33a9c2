/** The trainer protocol's typed descriptors: each side refuses unknown or malformed messages, naming the field. */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { parseMessage, message } from '../../src/core/shared/ipc';
import { learningRateAt, describeBatch } from '../../src/core/shared/plan';
import { parseHostMessage, parseTrainerMessage, PROTOCOL_VERSION } from '../../src/core/shared/protocol';

describe('protocol descriptors', () => {
  test('a train request carries a RunSpec alone; one without it, or of another version, is refused with the reason', () => {
    assert.ok(parseHostMessage({ v: PROTOCOL_VERSION, type: 'train', id: 1, spec: {} }).ok, "the spec's fields are the trainer's to check (run-spec.test.ts)");
    const old = parseHostMessage({ v: 2, type: 'train', id: 1, config: {}, runDir: '/r', plan: {} });
    assert.deepEqual(old, { ok: false, error: `protocol version 2, expected ${PROTOCOL_VERSION}` });
    assert.deepEqual(parseHostMessage({ v: PROTOCOL_VERSION, type: 'train', id: 1, config: {}, runDir: '/r', plan: {} }), { ok: false, error: '"train" message: field "spec" must be object' });
    assert.deepEqual(parseHostMessage({ v: PROTOCOL_VERSION, type: 'rm -rf' }), { ok: false, error: 'unknown message type "rm -rf"' });
    assert.deepEqual(parseHostMessage(null), { ok: false, error: 'not an object' });
    assert.deepEqual(parseHostMessage({ v: PROTOCOL_VERSION, type: 'probe', id: 1, config: {}, trial: {} }), { ok: false, error: '"probe" message: field "setup" must be object' });
  });

  test('trainer events: a batch without its learning rate, or with a step that is not a number, is refused', () => {
    const batch = { v: PROTOCOL_VERSION, type: 'batch', time: 't', epoch: 1, step: 1, stepsPerEpoch: 2, globalStep: 1, loss: 0.5, accuracy: 0.5, learningRate: 0.001, imagesPerSec: 1, stepMs: 1, dataWaitMs: 0, tensorBytes: 1, etaSec: 0 };
    assert.ok(parseTrainerMessage(batch).ok);
    const { learningRate: _lr, ...noLr } = batch;
    assert.equal((parseTrainerMessage(noLr) as { error: string }).error, '"batch" message: field "learningRate" must be number');
    assert.equal((parseTrainerMessage({ ...batch, step: '1' }) as { error: string }).error, '"batch" message: field "step" must be integer');
    assert.ok(parseTrainerMessage({ v: PROTOCOL_VERSION, type: 'run-end', time: 't', status: 'completed' }).ok);
  });

  test('generic descriptors check arrays, booleans and optional fields', () => {
    const d = [message<{ type: 'x'; a: number[]; b?: boolean }>('x', { a: 'array', b: 'boolean?' })];
    assert.ok(parseMessage({ type: 'x', a: [] }, d).ok);
    assert.ok(!parseMessage({ type: 'x', a: {} }, d).ok);
    assert.ok(!parseMessage({ type: 'x', a: [], b: 'yes' }, d).ok);
  });
});

describe('plan helpers', () => {
  const plan = { learningRate: { value: 0.004, base: 0.001, baseBatchSize: 32, rule: 'linear' as const }, warmup: { steps: 4, epochs: 1, startLearningRate: 0.001 } };
  test('learningRateAt ramps linearly from the start rate to the target over the warmup steps', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 100].map((s) => Number(learningRateAt(plan, s).toPrecision(6))), [0.00175, 0.0025, 0.00325, 0.004, 0.004, 0.004]);
    assert.equal(learningRateAt({ ...plan, warmup: { steps: 0, epochs: 0, startLearningRate: 0 } }, 1), 0.004);
  });
  test('describeBatch', () => {
    assert.equal(describeBatch({ microBatchSize: 4, accumulationSteps: 8, effectiveBatchSize: 32, dataParallelDevices: 1 }), '4 × 8 accumulated = 32');
    assert.equal(describeBatch({ microBatchSize: 32, accumulationSteps: 1, effectiveBatchSize: 32, dataParallelDevices: 1 }), '32');
    assert.equal(describeBatch({ microBatchSize: 16, accumulationSteps: 1, effectiveBatchSize: 64, dataParallelDevices: 4 }), '16 per device × 4 devices = 64');
  });
});
