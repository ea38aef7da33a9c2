/** Checks of *.train.json beyond the schema, on the exact value's range. */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { checkConfig } from '../../src/extension/config/checks';
import { startingConfig } from '../../src/extension/config/starting-config';

const ws = mkdtempSync(join(tmpdir(), 'ba-checks-'));
after(() => rmSync(ws, { recursive: true, force: true }));
mkdirSync(join(ws, 'good', 'cats'), { recursive: true });
mkdirSync(join(ws, 'flat'), { recursive: true });
writeFileSync(join(ws, 'flat', 'a.png'), '');
writeFileSync(join(ws, 'graph.json'), JSON.stringify({ format: 'graph-model', modelTopology: {} }));
writeFileSync(join(ws, 'layers.json'), JSON.stringify({ format: 'layers-model', modelTopology: { class_name: 'Sequential' } }));
const cfg = join(ws, 'x.train.json');

function valueAt(text: string, p: { offset: number; length: number }): string {
  return text.slice(p.offset, p.offset + p.length);
}

test('dataset: missing folder, a folder without class subfolders, a good one', () => {
  const missing = '{\n  "dataset": "nope",\n  "batchSize": 32\n}';
  const [p] = checkConfig(missing, cfg);
  assert.equal(valueAt(missing, p!), '"nope"');
  assert.match(p!.message, /Dataset folder not found: .*nope/);
  assert.equal(p!.severity, 'error');
  const flat = '{ "dataset": "flat" }';
  assert.match(checkConfig(flat, cfg)[0]!.message, /no class subfolders/);
  assert.deepEqual(checkConfig('{ "dataset": "good" }', cfg), []);
  assert.deepEqual(checkConfig(`{ "dataset": ${JSON.stringify(join(ws, 'good'))} }`, cfg), [], 'absolute paths too');
});

test('model: missing file, a graph model, a Layers model, a zoo name', () => {
  const text = '{ "dataset": "good", "model": "missing/model.json" }';
  const [p] = checkConfig(text, cfg);
  assert.equal(valueAt(text, p!), '"missing/model.json"');
  assert.match(p!.message, /Model file not found/);
  assert.match(checkConfig('{ "dataset": "good", "model": "graph.json" }', cfg)[0]!.message, /graph model/);
  assert.deepEqual(checkConfig('{ "dataset": "good", "model": "layers.json" }', cfg), []);
  assert.deepEqual(checkConfig('{ "dataset": "good", "model": "tutorial-cnn" }', cfg), []);
});

test('an explicit batch predicted not to fit: a warning on the batchSize value; none for "auto"', () => {
  const text = '{ "dataset": "good",\n  "batchSize": 4096 }';
  const [p] = checkConfig(text, cfg, ['Batch 4096 is predicted to need 9 GiB, more than the 4 GiB budget.']);
  assert.equal(valueAt(text, p!), '4096');
  assert.equal(p!.severity, 'warning');
  assert.deepEqual(checkConfig('{ "dataset": "good", "batchSize": "auto" }', cfg, ['Batch 4096 is predicted…']), []);
  assert.deepEqual(checkConfig('{ "dataset": "good", "batchSize": 256 }', cfg, ['Batch 4096 is predicted…']), [], 'a warning about another value is stale');
  assert.deepEqual(checkConfig('{ "dataset": ', cfg), [], 'half-typed JSON is left to the JSON language service');
});

test('New Training Config: a starting config with the dataset relative to the config', () => {
  const c = startingConfig(ws, join(ws, 'good'));
  assert.equal(c['dataset'], 'good');
  assert.equal(c['batchSize'], 'auto');
  assert.deepEqual(checkConfig(JSON.stringify(c), cfg), []);
});
