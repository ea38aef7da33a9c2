/**
 * The trainer does not run in the host's working folder: a workspace whose package.json is empty
 * (or broken) made the trainer's wasm backend hang while starting its threads — suggest and train
 * waited 120 s, then blamed the model. Now the description answers as anywhere else.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { TrainerClient } from '../../src/core/process/trainer-client';

const TRAINER = resolve(__dirname, '../../dist/trainer.js');
const home = process.cwd();
const ws = mkdtempSync(join(tmpdir(), 'ba-cwd-'));
after(() => {
  process.chdir(home);
  rmSync(ws, { recursive: true, force: true });
});

test('an empty package.json in the working folder: the model is described (no 120 s hang)', async () => {
  writeFileSync(join(ws, 'package.json'), '');
  process.chdir(ws);
  const client = new TrainerClient({ trainerScript: TRAINER });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 60 s: the trainer hung')), 60_000)));
    const r = await Promise.race([client.describeOn({ model: 'tutorial-cnn', widthMultiplier: 1 }, [28, 28, 1], 2, { choice: 'wasm', workspaceFolder: ws }), hang]);
    assert.ok(r.description.totalParams > 0, 'the model was described');
    assert.equal(r.backend?.name, 'wasm');
  } finally {
    clearTimeout(timer);
    client.dispose();
    process.chdir(home);
  }
});
