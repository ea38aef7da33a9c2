/**
 * tfjs's console banner ("Hi, looks like you are running TensorFlow.js in Node.js…") never reaches
 * what a person reads: not the CLI's `suggest` or `train` output (the built dist/cli.js and
 * dist/trainer.js, the cpu backend that prints it at its first tensor), not the log events made
 * from a trainer child's stderr.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { PROTOCOL_VERSION, type LogEvent } from '../../src/core/shared/protocol';
import { isTfjsBanner, TrainerClient } from '../../src/core/process/trainer-client';
import { makeTinyDataset } from '../helpers/tiny-dataset';
import { until } from '../helpers/wait';

const CLI = resolve(__dirname, '../../dist/cli.js');
const BANNER = /looks like you are running TensorFlow\.js|^\s*={8,}\s*$/m;
let dir: string;
let configPath: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ba-banner-'));
  const { root } = await makeTinyDataset(join(dir, 'ds'), { classes: 2, perClass: 12, size: 16, channels: 3 });
  configPath = join(dir, 'tiny.train.json');
  writeFileSync(configPath, JSON.stringify({ name: 'tiny', dataset: root, imageSize: [16, 16], channels: 3, model: 'tutorial-cnn', batchSize: 4, epochs: 1 }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout + r.stderr;
}

test('the CLI suggest and train (cpu backend, whose first tensor prints the banner) print no banner', () => {
  const suggest = cli('suggest', configPath, '--no-probe');
  assert.match(suggest, /batch/i);
  assert.doesNotMatch(suggest, BANNER);
  const train = cli('train', configPath, '--backend', 'cpu', '--max-steps', '2');
  assert.match(train, /Backend: cpu/);
  assert.doesNotMatch(train, BANNER);
});

test("a trainer child that prints the banner on stderr (e.g. a workspace's own tfjs copy): no log event carries it", async () => {
  const script = join(dir, 'banner-trainer.js');
  const banner = '\\n============================\\nHi, looks like you are running TensorFlow.js in Node.js. To speed things up dramatically, install our node backend, visit https://github.com/tensorflow/tfjs-node for more details. \\n============================';
  writeFileSync(
    script,
    `process.on('disconnect', () => process.exit(0));
     console.warn('${banner}');
     process.stderr.write('a real warning\\n');
     process.on('message', (m) => { if (m.type === 'describe') process.send({ v: ${PROTOCOL_VERSION}, type: 'error', id: m.id, kind: 'bad-input', message: 'no model' }); });
     setTimeout(() => process.send({ v: ${PROTOCOL_VERSION}, type: 'ready', pid: process.pid }), 100);`,
  );
  const logs: LogEvent[] = [];
  const c = new TrainerClient({ trainerScript: script, onLog: (e) => logs.push(e) });
  await assert.rejects(c.describe({ model: 'tutorial-cnn' }, [16, 16, 3], 2));
  await until(() => logs.some((l) => /a real warning/.test(l.message)), 'the child\'s stderr line arrives');
  c.dispose();
  assert.ok(logs.some((l) => /a real warning/.test(l.message)), 'other stderr lines still come through');
  for (const l of logs) assert.doesNotMatch(l.message, BANNER);
  assert.equal(isTfjsBanner('============================'), true);
  assert.equal(isTfjsBanner('loss 0.5'), false);
});
