/**
 * The probe is part of every plan by default, and a plan measured once is reused: `suggest` and
 * `train` with "batchSize": "auto" and no flags run the probe (real trial processes) and train the
 * plan it made (source "probe"); a second suggestion on the same inputs runs no trial (cache hit,
 * in the text and the JSON); changing the model file or the dataset invalidates the cache;
 * "probe": false gives the memory-model plan at Keras's default batch.
 */
import { strict as assert } from 'node:assert';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatSuggest } from '../../src/cli/report';
import { trainCommand } from '../../src/cli/train';
import { loadConfigFile } from '../../src/core/config';
import { PROBE_CACHE_FOLDER, probeCacheKey } from '../../src/core/probe/cache';
import type { TrainingPlan } from '../../src/core/shared/plan';
import type { RunStartEvent, TrainEvent } from '../../src/core/shared/protocol';
import { suggest } from '../../src/core/process/suggest';
import { Capture } from '../helpers/capture';
import { makeTinyDataset } from '../helpers/tiny-dataset';

const TRAINER = resolve(__dirname, '../../src/trainer/main.ts');
let root: string;
let cacheDir: string;

/** The numbers a run executes (the reasons mention free host RAM, which moves between readings). */
function numbers(p: TrainingPlan): unknown {
  return { micro: p.microBatchSize, k: p.accumulationSteps, lr: p.learningRate, warmup: p.warmup, epochs: p.epochs, stepsPerEpoch: p.stepsPerEpoch, max: p.maxMicroBatchSize, sources: p.sources, loading: p.loading.strategy };
}

function writeConfig(name: string, body: Record<string, unknown>): string {
  const path = join(root, `${name}.train.json`);
  writeFileSync(path, JSON.stringify({ dataset: 'ds', imageSize: [16, 16], channels: 1, backend: 'wasm', epochs: 1, model: 'tutorial-cnn', ...body }));
  return path;
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ba-probe-default-'));
  writeFileSync(join(root, 'package.json'), '{}');
  cacheDir = join(root, PROBE_CACHE_FOLDER);
  // 4,000 images: 3,200 for training, so the dataset allows batch 64 (50 steps per epoch).
  await makeTinyDataset(join(root, 'ds'), { classes: 2, perClass: 2000, size: 16, channels: 1 });
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('the probe by default, and its cache', { timeout: 600_000 }, () => {
  test('suggest with "auto" and no flags probes; the same inputs again reuse the trials (no process); train runs that plan', async () => {
    const configPath = writeConfig('auto', { batchSize: 'auto' });
    const config = loadConfigFile(configPath);
    const first = await suggest({ config }, { trainerScript: TRAINER, probeCacheDir: cacheDir });
    assert.ok(first.probe, 'the probe ran without being asked');
    assert.ok(first.probe.processes >= 1 && first.probe.processes <= 4, `${first.probe.processes} trial processes`);
    assert.equal(first.probe.cache?.hit, false);
    assert.equal(first.plan.sources.batchSize, 'probe');
    assert.ok(first.probe.objective, 'the batch was chosen by the time-to-target objective');
    assert.equal(first.plan.microBatchSize, first.probe.objective.chosen);
    assert.equal(readdirSync(cacheDir).length, 1, 'one cache file');

    const again = await suggest({ config }, { trainerScript: TRAINER, probeCacheDir: cacheDir });
    assert.equal(again.probe?.processes, 0, 'no trial ran the second time');
    assert.equal(again.probe?.cache?.hit, true);
    assert.ok(again.probe!.cache!.reused >= 1);
    assert.deepEqual(numbers(again.plan), numbers(first.plan));
    const text = formatSuggest(again).join('\n');
    assert.match(text, /Probe {4}0 trial processes — reused \d+ trials? from the probe cache \(.*probe-cache.*\.json\), no trial ran/);
    assert.match(text, /reused from the probe cache .*: no trial ran/);

    // `train` with no flags: the probe's plan (from the cache), source "probe".
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await trainCommand(configPath, { json: true, maxSteps: 2 }, { trainerScript: TRAINER, stdout, stderr });
    assert.equal(code, 0, stderr.text);
    const events = stdout.text.trim().split('\n').map((l) => JSON.parse(l) as TrainEvent);
    const start = events.find((e): e is RunStartEvent => e.type === 'run-start')!;
    assert.deepEqual(numbers(start.plan), numbers(first.plan));
    assert.equal(start.plan.sources.batchSize, 'probe');
  });

  test('the cache key changes with the model file and with the dataset', async () => {
    const config = loadConfigFile(writeConfig('keyed', { batchSize: 'auto' }));
    const report = await suggest({ config }, { trainerScript: TRAINER, probe: false });
    const base = { config, dataset: report.dataset, device: report.device, plannedBackend: 'wasm' as const, headroom: 0.1 };
    const k0 = probeCacheKey(base);
    assert.equal(probeCacheKey({ ...base }), k0, 'stable');
    const modelPath = join(root, 'm.json');
    writeFileSync(modelPath, '{"a":1}');
    const withFile = { ...base, config: { ...config, model: modelPath } };
    const k1 = probeCacheKey(withFile);
    writeFileSync(modelPath, '{"a":2}');
    assert.notEqual(probeCacheKey(withFile), k1, 'the model file content is in the key');
    assert.notEqual(probeCacheKey({ ...base, dataset: { ...report.dataset, totalImages: report.dataset.totalImages + 1, train: report.dataset.train + 1 } }), k0);
    assert.notEqual(probeCacheKey({ ...base, config: { ...config, imageSize: [20, 20] } }), k0);
    assert.notEqual(probeCacheKey({ ...base, config: { ...config, optimizer: 'sgd' } }), k0);
    assert.notEqual(probeCacheKey({ ...base, headroom: 0.2 }), k0);
  });

  test('adding an image to the dataset measures again', async () => {
    const config = loadConfigFile(writeConfig('auto', { batchSize: 'auto' }));
    const cached = await suggest({ config }, { trainerScript: TRAINER, probeCacheDir: cacheDir });
    assert.equal(cached.probe?.processes, 0);
    const cls = join(root, 'ds', readdirSync(join(root, 'ds'))[0]!);
    copyFileSync(join(cls, readdirSync(cls)[0]!), join(cls, 'extra-copy.png'));
    const fresh = await suggest({ config }, { trainerScript: TRAINER, probeCacheDir: cacheDir });
    assert.ok(fresh.probe!.processes >= 1, 'the changed dataset is probed anew');
    assert.equal(fresh.probe?.cache?.hit, false);
  });

  test('"probe": false: the memory-model plan keeps Keras\'s batch 32 and says the probe would choose by measurement', async () => {
    const config = loadConfigFile(writeConfig('noprobe', { batchSize: 'auto', probe: false }));
    const r = await suggest({ config }, { trainerScript: TRAINER, probeCacheDir: cacheDir });
    assert.equal(r.probe, undefined);
    assert.equal(r.plan.microBatchSize, 32);
    assert.equal(r.plan.sources.batchSize, 'planned');
    assert.match(r.plan.reasons[0]!, /Keras's default.*the probe would choose by measurement/);
  });
});
