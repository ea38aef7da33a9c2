/**
 * The torchrun engine end to end: `batch-advisor train --engine torchrun --nproc-per-node 2` on part
 * of the MNIST sample (CPU, Gloo), one epoch, against our own trainer on the same plan, the same
 * split and the same initial weights (the torchrun run's model-init/); the metrics file in our
 * protocol (an image that cannot be decoded reported, not fatal); the model it writes back
 * evaluated by our trainer; Stop mid-run; the cluster exports.
 * Needs Python with torch (Debian's python3-torch; CI installs it): those parts skip, saying so,
 * without it. The exports need no torch.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatSuggest } from '../../src/cli/report';
import { trainCommand, type TrainOptions } from '../../src/cli/train';
import { loadConfigFile } from '../../src/core/config';
import { suggest } from '../../src/core/process/suggest';
import { makeSample } from '../../src/cli/make-sample';
import { TrainerClient } from '../../src/core/process/trainer-client';
import { metricsCsv, readRun, runsRoot } from '../../src/core/run-folder/runs';
import { parseTrainerMessage, type BatchEvent, type EpochEvent, type EvaluationEvent, type RunEndEvent, type RunStartEvent, type TrainEvent } from '../../src/core/shared/protocol';
import type { EvaluationResult } from '../../src/core/shared/evaluation';
import { findTorchPython } from '../../src/core/torchrun/python';
import type { TorchrunRunJson } from '../../src/core/torchrun/run-json';
import { Capture } from '../helpers/capture';

const TRAINER = join(__dirname, '..', '..', 'src', 'trainer', 'main.ts');
/** 300 digits of each class: 2,400 to train on, 600 to validate on. */
// 6,000 digits (4,800 to train, 1,200 to validate) over 2 epochs: the accuracy comparison is past
// the first epoch's noise (one epoch on 2,400 differed by 0.5 to 2.2 points between runs).
const PER_DIGIT = 600;
const EPOCHS = 2;

let ws: string;
const CORRUPT = (): string => join(ws, 'mnist', '3', '3-0007.png');
let torchWhy: string | undefined;

/** stdout that hands each complete line to `onLine` as it arrives (the --json events). */
class Lines extends Capture {
  private seen = 0;
  constructor(private readonly onLine: (line: string) => void) {
    super();
  }
  override _write(chunk: Buffer, enc: string, cb: () => void): void {
    super._write(chunk, enc, cb);
    const lines = this.text.split('\n');
    for (; this.seen < lines.length - 1; this.seen++) this.onLine(lines[this.seen]!);
  }
}

async function train(config: string, opts: TrainOptions, signals?: EventEmitter, onLine?: (line: string) => void): Promise<{ code: number; out: string; err: string; runDir: string }> {
  const stdout = onLine ? new Lines(onLine) : new Capture();
  const stderr = new Capture();
  const before = new Set(listRuns());
  const code = await trainCommand(config, opts, { trainerScript: TRAINER, stdout, stderr, workspaceRoot: ws, ...(signals ? { signals } : {}) });
  const made = listRuns().filter((r) => !before.has(r));
  return { code, out: stdout.text, err: stderr.text, runDir: made.length ? join(runsRoot(ws), made[0]!) : '' };
}

function listRuns(): string[] {
  try {
    return readdirSync(runsRoot(ws));
  } catch {
    return [];
  }
}

function writeConfig(name: string, fields: Record<string, unknown>): string {
  const path = join(ws, `${name}.train.json`);
  writeFileSync(path, JSON.stringify({ name, dataset: 'mnist', imageSize: [28, 28], channels: 1, seed: 1337, model: 'tutorial-cnn', optimizer: 'adam', learningRate: 0.002, warmupSteps: 0, epochs: 1, probe: false, ...fields }));
  return path;
}

const events = (runDir: string): TrainEvent[] => readRun(runDir).events;
const lastEpoch = (runDir: string): EpochEvent => events(runDir).filter((e): e is EpochEvent => e.type === 'epoch').at(-1)!;

before(async () => {
  ws = mkdtempSync(join(tmpdir(), 'ba-torchrun-'));
  writeFileSync(join(ws, 'package.json'), '{}');
  await makeSample(join(ws, 'mnist'), { perDigit: PER_DIGIT });
  // A PNG whose header is fine and whose data is cut off: listed, then skipped by both engines when decoded.
  writeFileSync(CORRUPT(), readFileSync(CORRUPT()).subarray(0, 60));
  try {
    await findTorchPython();
  } catch (e) {
    torchWhy = (e as Error).message;
  }
});

after(() => rmSync(ws, { recursive: true, force: true }));

describe('train --engine torchrun (2 processes, CPU)', () => {
  let runDir = '';
  let out = '';

  before(async () => {
    if (torchWhy) return;
    const r = await train(writeConfig('ddp', { batchSize: 16, engine: 'torchrun', epochs: EPOCHS }), { nprocPerNode: 2 });
    assert.equal(r.code, 0, r.err + r.out);
    runDir = r.runDir;
    out = r.out;
  });

  it('trains the plan on 2 Gloo processes: global batch 32, and says so', (t) => {
    if (torchWhy) return t.skip(torchWhy);
    assert.match(out, /batch 16 per device × 2 devices = 32/);
    assert.match(out, /backend torch-gloo/);
    const start = events(runDir).find((e): e is RunStartEvent => e.type === 'run-start')!;
    assert.equal(start.engine?.worldSize, 2);
    assert.equal(start.engine?.distBackend, 'gloo');
    assert.equal(start.plan.effectiveBatchSize, 32);
    assert.equal(start.stepsPerEpoch, Math.ceil((PER_DIGIT * 10 * 0.8) / 32));
  });

  it('is the plan `suggest` states for the config on 2 processes (the Suggest panel shows the same note)', async (t) => {
    if (torchWhy) return t.skip(torchWhy);
    const config = { ...loadConfigFile(join(ws, 'ddp.train.json')), nprocPerNode: 2 };
    const report = await suggest({ config }, { trainerScript: TRAINER, probe: false });
    const start = events(runDir).find((e): e is RunStartEvent => e.type === 'run-start')!;
    const s = report.torchrun!;
    assert.ok(s, 'the report states the torchrun plan');
    assert.deepEqual(
      [s.processes, s.perDeviceBatchSize, s.accumulationSteps, s.globalBatchSize, s.learningRate, s.stepsPerEpoch, s.warmupSteps],
      [start.engine?.worldSize, start.plan.microBatchSize, start.plan.accumulationSteps, start.plan.effectiveBatchSize, start.plan.learningRate.value, start.stepsPerEpoch, start.plan.warmup.steps],
    );
    assert.ok(formatSuggest(report).some((l) => l.includes(s.note)), 'the CLI prints the note');
    assert.match(s.note, /^torchrun on 2 processes: batch 16 per device × 2 devices = 32, learning rate 0\.002 for the global batch/);
  });

  it('writes metrics.jsonl in our protocol: run-start, a batch per step, epoch, run-end; it replays and exports as CSV', (t) => {
    if (torchWhy) return t.skip(torchWhy);
    const lines = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.trim()); // the host's appended lines start on a line of their own
    for (const line of lines) assert.ok(parseTrainerMessage(JSON.parse(line)).ok, line);
    const evs = events(runDir);
    const start = evs.find((e): e is RunStartEvent => e.type === 'run-start')!;
    const batches = evs.filter((e): e is BatchEvent => e.type === 'batch');
    assert.deepEqual(batches.map((b) => b.globalStep), Array.from({ length: EPOCHS * start.stepsPerEpoch }, (_, i) => i + 1));
    assert.ok(batches.every((b) => b.loss > 0 && b.learningRate === 0.002 && b.imagesPerSec > 0));
    assert.equal(evs.filter((e) => e.type === 'epoch').length, EPOCHS);
    assert.equal(([...evs].reverse().find((e) => e.type === 'run-end') as RunEndEvent).status, 'completed');
    assert.equal(readRun(runDir).runEnd?.status, 'completed');
    assert.equal(evs.at(-1)?.type, 'evaluation', 'the run ends with its evaluation on the validation split, as our own runs do');
    assert.equal(metricsCsv(evs).trim().split('\n').length, 1 + EPOCHS * (start.stepsPerEpoch + 1));
    const skipped = evs.filter((e) => e.type === 'skipped-file');
    assert.deepEqual(skipped.map((e) => e.type === 'skipped-file' && e.path), [CORRUPT()], 'the undecodable image is reported once, whichever rank read it');
  });

  it('learns as our trainer does on the same plan, split and initial weights: validation accuracy within 1.5 points (the same images per step)', async (t) => {
    if (torchWhy) return t.skip(torchWhy);
    const ours = await train(writeConfig('tfjs', { batchSize: 32, epochs: EPOCHS, model: join(runDir, 'model-init', 'model.json') }), { backend: 'wasm' });
    assert.equal(ours.code, 0, ours.err + ours.out);
    const a = lastEpoch(runDir).valAccuracy!;
    const b = lastEpoch(ours.runDir).valAccuracy!;
    t.diagnostic(`validation accuracy: torchrun ${a.toFixed(4)}, tfjs ${b.toFixed(4)}`);
    assert.ok(a > 0.9, `torchrun learned: ${a}`);
    // The same initial weights, split, learning rate and images per global step (train.py walks our
    // epoch order: torchrun-order.test.ts), so only the two engines' arithmetic differs (and the one
    // undecodable image, which ours leaves out of its order and torch trains as a zero): the issue's
    // 1.5 points. (With DistributedSampler's own order the two differed as two runs do: 0.1–2.75 points.)
    const bound = 0.015;
    t.diagnostic(`difference ${(100 * Math.abs(a - b)).toFixed(2)} points; bound ${(100 * bound).toFixed(2)} points`);
    assert.ok(Math.abs(a - b) <= bound, `torchrun ${a} vs tfjs ${b}: more than ${(100 * bound).toFixed(2)} points apart`);
  });

  it('writes the trained model back as tfjs files that our trainer evaluates to the last validation accuracy', async (t) => {
    if (torchWhy) return t.skip(torchWhy);
    const run = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')) as TorchrunRunJson;
    const client = new TrainerClient({ trainerScript: TRAINER });
    try {
      const r = await client.evaluate({ modelPath: join(runDir, 'model', 'model.json'), classNames: run.classNames, files: run.validation.map(([path, label]) => ({ path, label })), imageSize: [28, 28], channels: 1, backend: 'cpu' });
      assert.equal(r.images + (r.skipped ?? 0), run.validation.length);
      assert.ok(Math.abs(r.accuracy - lastEpoch(runDir).valAccuracy!) < 1e-9, `evaluate ${r.accuracy} vs the run's ${lastEpoch(runDir).valAccuracy}`);
    } finally {
      client.dispose();
    }
  });

  it('ends with evaluation.json: the written-back model on the validation split, as a tfjs run does (matrix, per class, wrong examples)', (t) => {
    if (torchWhy) return t.skip(torchWhy);
    const file = JSON.parse(readFileSync(join(runDir, 'evaluation.json'), 'utf8')) as EvaluationResult;
    const ev = events(runDir).find((e): e is EvaluationEvent => e.type === 'evaluation')!;
    assert.deepEqual(ev.result, file);
    assert.ok(Math.abs(file.accuracy - lastEpoch(runDir).valAccuracy!) < 1e-9, `evaluation ${file.accuracy} vs the last epoch's ${lastEpoch(runDir).valAccuracy}`);
    assert.equal(file.confusionMatrix.flat().reduce((a, b) => a + b, 0), file.images);
    assert.match(out, /evaluation on the validation split: accuracy \d/);
  });

  it('Stop mid-run ends both ranks and records "stopped"', async (t) => {
    if (torchWhy) return t.skip(torchWhy);
    const signals = new EventEmitter();
    let sent = false;
    const r = await train(writeConfig('stop', { batchSize: 4, engine: 'torchrun' }), { nprocPerNode: 2, json: true }, signals, (line) => {
      const e = JSON.parse(line) as TrainEvent;
      if (!sent && e.type === 'batch' && e.globalStep >= 3) {
        sent = true;
        signals.emit('SIGINT');
      }
    });
    assert.equal(r.code, 130, r.err);
    const evs = events(r.runDir);
    const end = evs.at(-1) as RunEndEvent;
    assert.equal(end.status, 'stopped');
    assert.equal(end.message, 'stopped by request', 'rank 0 recorded it');
    const steps = evs.filter((e): e is BatchEvent => e.type === 'batch');
    assert.ok(steps.length < steps[0]!.stepsPerEpoch, `stopped mid-epoch after ${steps.length} steps`);
    let left = '';
    try {
      left = execFileSync('pgrep', ['-f', join(r.runDir, 'train.py')], { encoding: 'utf8' });
    } catch {
      /* pgrep exits 1 when nothing matches */
    }
    assert.equal(left.trim(), '', 'no rank is left running');
  });
});

describe('train --engine torchrun, refused before anything is made', () => {
  it('a torchrun flag without the engine names the flag', async () => {
    const r = await train(writeConfig('flag', { batchSize: 8 }), { nprocPerNode: 2 });
    assert.equal(r.code, 2);
    assert.match(r.err, /--nproc-per-node is a torchrun setting: add --engine torchrun/);
  });

  it('no Python with torch: says what is missing and how to install it; no run folder', async () => {
    const r = await train(writeConfig('nopython', { batchSize: 8, engine: 'torchrun' }), { python: join(ws, 'no-such-python') });
    assert.equal(r.code, 2);
    assert.match(r.err, /the torchrun engine needs Python with torch: .*no-such-python: not found.*apt-get install python3-torch/);
    assert.equal(r.runDir, '');
  });

  it('several nodes without a rendezvous: names the flags', async () => {
    const r = await train(writeConfig('nodes', { batchSize: 8, engine: 'torchrun' }), { nnodes: 2 });
    assert.equal(r.code, 2);
    assert.match(r.err, /--nnodes 2 needs --node-rank R and --rdzv-endpoint HOST:PORT/);
  });
});

describe('train --engine torchrun --export', () => {
  it('slurm: an sbatch script that parses and holds the plan (2 nodes × 4 GPUs, global batch 16 × 8 = 128)', async () => {
    const r = await train(writeConfig('slurm', { batchSize: 16, engine: 'torchrun' }), { nprocPerNode: 4, nnodes: 2, export: 'slurm' });
    assert.equal(r.code, 0, r.err);
    const path = join(r.runDir, 'torchrun.sbatch');
    assert.match(r.out, /Wrote .*torchrun\.sbatch/);
    execFileSync('bash', ['-n', path]);
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^#SBATCH --nodes=2$/m);
    assert.match(text, /^#SBATCH --gpus-per-node=4$/m);
    assert.match(text, /^srun torchrun --nnodes 2 --nproc_per_node 4 .*--rdzv_backend c10d/m);
    assert.match(text, /global batch 128/);
    const run = JSON.parse(readFileSync(join(r.runDir, 'run.json'), 'utf8')) as TorchrunRunJson;
    assert.equal(run.microBatchSize, 16);
    assert.equal(run.plan.effectiveBatchSize, 128);
    assert.equal(run.stepsPerEpoch, Math.ceil(run.train.length / 128));
    assert.equal(run.train.length + run.validation.length, PER_DIGIT * 10);
    assert.equal(events(r.runDir).length, 0, 'nothing ran here');
  });

  it('skypilot: a task YAML that parses and holds the plan', async (t) => {
    const r = await train(writeConfig('sky', { batchSize: 16, engine: 'torchrun' }), { nprocPerNode: 8, nnodes: 3, export: 'skypilot' });
    assert.equal(r.code, 0, r.err);
    const path = join(r.runDir, 'torchrun.sky.yaml');
    let parsed: { num_nodes: number; resources: { accelerators: string }; run: string; file_mounts: Record<string, string> };
    try {
      parsed = JSON.parse(execFileSync('/usr/bin/python3', ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', path], { encoding: 'utf8' }));
    } catch (e) {
      return t.skip(`no Python with PyYAML to parse it (${(e as Error).message.split('\n')[0]})`);
    }
    assert.equal(parsed.num_nodes, 3);
    assert.equal(parsed.resources.accelerators, 'A100:8');
    assert.match(parsed.run, /torchrun --nnodes 3 --nproc_per_node 8 --node_rank "\$SKYPILOT_NODE_RANK"/);
    assert.ok(parsed.file_mounts[join(ws, 'mnist')], 'the dataset is mounted where run.json names it');
    assert.match(readFileSync(path, 'utf8'), /global batch 384/);
  });
});
