/**
 * `batch-advisor train` end to end with the real trainer child process (src/trainer/main.ts run
 * through tsx): exit codes, --json events, out of memory, and Ctrl-C.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findWorkspaceRoot, progressLine, trainCommand, type TrainIo, type TrainOptions } from '../../src/cli/train';
import { PROTOCOL_VERSION, type TrainEvent } from '../../src/core/shared/protocol';
import { readRun } from '../../src/core/run-folder/runs';
import type { TrainConfig } from '../../src/core/config';
import type { TrainingPlan } from '../../src/core/shared/plan';
import { planFor } from '../helpers/plan';
import { Capture } from '../helpers/capture';
import { runTrainCli } from '../helpers/run-train-cli';
import { makeTinyDataset } from '../helpers/tiny-dataset';

const TRAINER = resolve(__dirname, '../../src/trainer/main.ts');
let root: string;


async function train(configPath: string, opts: TrainOptions = {}, io: Partial<TrainIo> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await trainCommand(configPath, opts, { trainerScript: TRAINER, stdout, stderr, ...io });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

function writeConfig(name: string, body: Record<string, unknown>): string {
  const path = join(root, `${name}.train.json`);
  writeFileSync(path, JSON.stringify(body));
  return path;
}

const tiny = { dataset: 'ds', imageSize: [16, 16], batchSize: 8, learningRate: 0.003, backend: 'wasm' };

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ba-train-cli-'));
  writeFileSync(join(root, 'package.json'), '{}'); // the workspace root
  await makeTinyDataset(join(root, 'ds'), { classes: 2, perClass: 20, size: 16 });
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('train command', () => {
  test('bad config → exit 2, one line naming the field', async () => {
    const r = await train(writeConfig('bad', { ...tiny, epochs: 0 }));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /epochs/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    const r2 = await train(writeConfig('typo', { ...tiny, batchsize: 8 }));
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /unknown field "batchsize"/);
    assert.equal((await train(join(root, 'missing.train.json'))).code, 2);
  });

  test('missing dataset or no images → exit 2', async () => {
    const r = await train(writeConfig('nods', { ...tiny, dataset: 'nope' }));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /does not exist: check the path/);
    mkdirSync(join(root, 'empty', 'a'), { recursive: true });
    mkdirSync(join(root, 'empty', 'b'), { recursive: true });
    const r2 = await train(writeConfig('empty', { ...tiny, dataset: 'empty' }));
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /no images/);
  });

  test('--json --max-steps: exit 0, one JSON event per line, run folder kept', async () => {
    const r = await train(writeConfig('ok', { ...tiny, epochs: 1 }), { json: true, maxSteps: 2 });
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TrainEvent);
    const types = events.map((e) => e.type);
    assert.ok(types.includes('backend') && types.includes('run-start'));
    assert.equal(types.filter((t) => t === 'batch').length, 2);
    assert.equal(types.filter((t) => t === 'epoch').length, 1);
    const end = events.at(-1)!;
    assert.ok(end.type === 'run-end' && end.status === 'completed');
    const start = events.find((e) => e.type === 'run-start');
    assert.ok(start?.type === 'run-start');
    assert.equal(resolve(start.runDir, '..', '..', '..'), root, 'runs live in the workspace root');
    const rec = readRun(start.runDir);
    assert.equal(rec.config.batchSize, 8);
    assert.equal(rec.runEnd?.status, 'completed');
    assert.ok(existsSync(join(start.runDir, 'model', 'model.json')));
  });

  test('"probe": true: the run trains the probed plan, and its plan.json says so', async () => {
    const { batchSize: _fixed, ...planned } = tiny; // a probe confirms a planned batch, not one the config sets
    const r = await train(writeConfig('probed', { ...planned, epochs: 1, probe: true, optimizer: 'sgd' }), { json: true, maxSteps: 1 });
    assert.equal(r.code, 0, r.stderr);
    const start = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TrainEvent)
      .find((e) => e.type === 'run-start');
    assert.ok(start?.type === 'run-start');
    const plan = JSON.parse(readFileSync(join(start.runDir, 'plan.json'), 'utf8')) as TrainingPlan;
    assert.equal(plan.sources.batchSize, 'probe');
    assert.ok(plan.reasons.some((x) => /Real training steps trained/.test(x)), plan.reasons.join('\n'));
    assert.equal(start.plan.microBatchSize, plan.microBatchSize, 'the trainer ran the plan in plan.json');
  });

  test('people output: the plan, progress and epoch lines', async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    const makePlan = (c: TrainConfig): Promise<TrainingPlan> => Promise.resolve(planFor(c, { microBatchSize: 4 }));
    const code = await trainCommand(writeConfig('auto', { ...tiny, batchSize: 'auto', epochs: 1 }), { maxSteps: 1 }, { trainerScript: TRAINER, stdout, stderr, makePlan });
    assert.equal(code, 0, stderr.text);
    assert.match(stdout.text, /Plan: batch 4 \(fallback\), learning rate 0\.003 \(from the config\)/);
    assert.match(stdout.text, /Epoch 1\/1 {2}1\/8 \[/);
    assert.match(stdout.text, /Epoch 1\/1: loss \d/);
    assert.match(stdout.text, /Done\. Model: /);
    const line = progressLine({ v: PROTOCOL_VERSION, type: 'batch', time: '', epoch: 2, step: 30, stepsPerEpoch: 60, globalStep: 90, loss: 0.5, accuracy: 0.75, learningRate: 0.001, imagesPerSec: 812.4, stepMs: 40, dataWaitMs: 1, tensorBytes: 0, etaSec: 62 }, 10, 200);
    assert.equal(line, 'Epoch 2/10  30/60 [=========>          ]  812 img/s  loss 0.5000  acc 0.750  ETA 1m 02s');
  });

  test('out of memory in the trainer → exit 1 with the suggested batch size', async () => {
    const r = await train(writeConfig('oom', { ...tiny, epochs: 1 }), {}, { test: { fault: 'oom@1' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Out of memory at batch size 8: try 4/);
    assert.match(r.stderr, /"batchSize": 4/);
  });

  test('workspace root: nearest folder with .git or package.json', () => {
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    assert.equal(findWorkspaceRoot(join(root, 'a', 'b')), root);
  });

  test('Ctrl-C (SIGINT) stops cleanly: run-end stopped, exit 130, run folder kept', async () => {
    const config = writeConfig('sigint', { ...tiny, epochs: 50 });
    const { code, stdout, stderr, sent } = await runTrainCli([config, '--json'], (out) => (out.includes('"type":"batch"') ? 'SIGINT' : undefined), { BATCH_ADVISOR_FAULT: 'delay@30' });
    assert.ok(sent, `no batch seen; stderr: ${stderr}`);
    assert.equal(code, 130, stderr);
    const events = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TrainEvent);
    const end = events.at(-1)!;
    assert.ok(end.type === 'run-end' && end.status === 'stopped', JSON.stringify(end));
    assert.ok(events.filter((e) => e.type === 'batch').length < 8 * 50);
    assert.match(stderr, /Stopped\. The run is kept in /);
    const runs = readdirSync(join(root, '.batch-advisor', 'runs')).filter((d) => d.endsWith('-sigint'));
    assert.equal(runs.length, 1);
    const rec = readRun(join(root, '.batch-advisor', 'runs', runs[0]!));
    assert.equal(rec.runEnd?.status, 'stopped');
    assert.equal(rec.truncated, false);
  });
});
