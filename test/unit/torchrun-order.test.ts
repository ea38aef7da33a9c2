/**
 * The torchrun script walks our trainer's epoch order: its port of the seeded shuffle
 * (src/core/torchrun/template/train.py `epoch_order`) gives, bit for bit, the order of
 * src/trainer/data/prng.ts `epochOrder`, and its sampler gives each global step the images of our
 * batch of world × micro-batch.
 *
 * Needs Python with torch (train.py imports it; Debian's python3-torch, CI installs it): skipped, saying so, without it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { before, describe, it } from 'node:test';
import { findTorchPython, type TorchPython } from '../../src/core/torchrun/python';
import { templatePath } from '../../src/core/torchrun/template-files';
import { epochOrder } from '../../src/trainer/data/prng';

let py: TorchPython | undefined;
let why: string | undefined;
before(async () => {
  try {
    py = await findTorchPython();
  } catch (e) {
    why = (e as Error).message;
  }
});

/** Runs `code` in Python with train.py importable; returns its stdout parsed as JSON. */
function python(code: string): unknown {
  const script = `import sys, json\nsys.path.insert(0, ${JSON.stringify(dirname(templatePath('train.py')))})\nimport train\n${code}`;
  return JSON.parse(execFileSync(py!.python, ['-c', script], { encoding: 'utf8', timeout: 120_000 }));
}

describe('torchrun: the same image order as our trainer', () => {
  const cases: [n: number, seed: number, epoch: number][] = [[1, 42, 1], [10, 42, 1], [4800, 42, 1], [4800, 42, 2], [1000, 0, 3], [257, 0xffffffff, 7], [3000, 123456789, 1]];

  it('epoch_order equals epochOrder for sizes, seeds and epochs (including a seed of 2³² − 1)', (t) => {
    if (why) return t.skip(why);
    const got = python(`print(json.dumps([train.epoch_order(n, s, e) for n, s, e in ${JSON.stringify(cases)}]))`) as number[][];
    cases.forEach(([n, seed, epoch], i) => assert.deepEqual(got[i], epochOrder(n, seed, epoch), `n ${n}, seed ${seed}, epoch ${epoch}`));
  });

  it('2 ranks × 16 per step hold the images of our batch of 32, step by step; an odd count is padded from the start as DistributedSampler pads', (t) => {
    if (why) return t.skip(why);
    for (const n of [4800, 101]) {
      const ranks = python(`s=[train.EpochOrderSampler(${n}, 42, r, 2) for r in range(2)]\nfor x in s: x.set_epoch(2)\nprint(json.dumps([list(x) for x in s]))`) as number[][];
      const ours = epochOrder(n, 42, 2);
      const padded = [...ours, ...ours.slice(0, ranks[0]!.length * 2 - n)];
      assert.equal(ranks[0]!.length, Math.ceil(n / 2));
      for (let step = 0; step * 16 < ranks[0]!.length; step++) {
        const global = [0, 1].flatMap((r) => ranks[r]!.slice(step * 16, step * 16 + 16)).sort((a, b) => a - b);
        assert.deepEqual(global, padded.slice(step * 32, step * 32 + 32).sort((a, b) => a - b), `n ${n}, step ${step + 1}`);
      }
    }
  });
});
