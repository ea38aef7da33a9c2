/** One classification of failures for the host, the CLI and the trainer (core/shared/errors.ts, oom.ts). */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { classifyError } from '../../src/core/shared/errors';
import { classifyTrainerError, BadInputError, DivergedError } from '../../src/trainer/errors';

describe('one classifyError', () => {
  test('out of memory, as any backend says it, is oom on both sides', () => {
    for (const text of ['OOM when allocating tensor with shape[32]', 'Aborted(). Build with -sASSERTIONS for more info.', 'RangeError: Array buffer allocation failed']) {
      assert.equal(classifyError(new Error(text)).kind, 'oom', text);
      assert.equal(classifyTrainerError(new Error(text)).kind, 'oom', text);
    }
    assert.equal(classifyError(new RangeError('Maximum call stack size exceeded')).kind, 'internal');
  });

  test('the trainer keeps the whole message and an internal error\'s stack; the host shows the first line', () => {
    const bad = new BadInputError('tfjsNodePath: nothing found\nlooked in /x/node_modules/@tensorflow/tfjs-node');
    assert.deepEqual(classifyTrainerError(bad), { kind: 'bad-input', message: bad.message });
    assert.deepEqual(classifyError(bad), { kind: 'bad-input', message: 'tfjsNodePath: nothing found' });
    assert.equal(classifyTrainerError(new DivergedError('Training diverged', 3)).kind, 'diverged');
    const internal = classifyTrainerError(new TypeError('x is undefined'));
    assert.equal(internal.kind, 'internal');
    assert.match(internal.message, /TypeError: x is undefined\n\s+at /);
    const full = Object.assign(new Error('no space left on device'), { name: 'FsResourceError' });
    assert.deepEqual(classifyTrainerError(full), { kind: 'internal', message: 'no space left on device' });
  });
});
