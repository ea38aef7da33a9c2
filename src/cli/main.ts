/**
 * `batch-advisor` — the same engine as the extension, in a terminal or CI.
 * Exit codes: 0 success, 1 a failure while working (e.g. training OOM), 2 bad input.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { version } from '../../package.json';
import type { TrainConfig } from '../core/config';
import { BACKENDS } from '../core/shared/config-types';
import { INPUT_ERROR_NAMES } from '../core/shared/errors';
import { OPTIMIZERS, type OptimizerName } from '../core/shared/model';

// Each command imports what it needs when it runs (`import()`): `--help` and `--version` load no
// dataset scanner, no config validator, no sharp and no systeminformation (issue #12).

/** Bad input: exit 2 with one line on stderr. */
class UsageError extends Error {}

/** dist/trainer.js next to dist/cli.js; the .ts entry when run from sources (tests, tsx). */
export function trainerScriptPath(): string {
  return __filename.endsWith('.ts') ? join(__dirname, '..', 'trainer', 'main.ts') : join(__dirname, 'trainer.js');
}

function parseImageSize(v: string): [number, number] {
  const m = /^(\d+)x(\d+)$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError('expected HxW, e.g. 224x224');
  const h = Number(m[1]);
  const w = Number(m[2]);
  if (h < 8 || w < 8 || h > 4096 || w > 4096) throw new InvalidArgumentError('height and width must be between 8 and 4096');
  return [h, w];
}
function parseFraction(v: string): number {
  const f = Number(v);
  if (!Number.isFinite(f) || f < 0 || f >= 1) throw new InvalidArgumentError('expected a number from 0 up to (not including) 1');
  return f;
}
function parsePositive(v: string): number {
  const f = Number(v);
  if (!Number.isFinite(f) || f <= 0) throw new InvalidArgumentError('expected a positive number');
  return f;
}
function parsePositiveInt(v: string): number {
  const f = Number(v);
  if (!Number.isInteger(f) || f <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return f;
}
function parseWholeNumber(v: string): number {
  const f = Number(v);
  if (!Number.isInteger(f) || f < 0) throw new InvalidArgumentError('expected a whole number (0 or more)');
  return f;
}
function parseChannels(v: string): 1 | 3 | 4 {
  if (v === '1' || v === '3' || v === '4') return Number(v) as 1 | 3 | 4;
  throw new InvalidArgumentError('expected 1, 3 or 4');
}

type TrainFlags = import('./train').TrainOptions & { json?: boolean };

interface SuggestFlags {
  json?: boolean;
  imageSize?: [number, number];
  channels?: 1 | 3 | 4;
  model?: string;
  optimizer?: OptimizerName;
  deviceMemory?: number;
  validationSplit?: number;
  headroom?: number;
  probe?: boolean;
}

/** A folder or a *.train.json, with the command-line overrides applied. */
async function configFromInput(input: string, flags: SuggestFlags): Promise<TrainConfig> {
  const path = resolve(input);
  if (!existsSync(path)) throw new UsageError(`${input}: no such file or folder`);
  const isFolder = statSync(path).isDirectory();
  if (!isFolder && !/\.json$/i.test(path)) throw new UsageError(`${input} is neither a dataset folder nor a .train.json config: pass the folder that holds one subfolder per class, or a *.train.json`);
  const { configForFolder, loadConfigFile } = await import('../core/config.js');
  const base = isFolder ? configForFolder(path) : loadConfigFile(path);
  return {
    ...base,
    ...(flags.imageSize ? { imageSize: flags.imageSize } : {}),
    ...(flags.channels ? { channels: flags.channels } : {}),
    ...(flags.model ? { model: /\.json$/i.test(flags.model) ? resolve(flags.model) : flags.model } : {}),
    ...(flags.optimizer ? { optimizer: flags.optimizer } : {}),
    ...(flags.validationSplit !== undefined ? { validationSplit: flags.validationSplit } : {}),
  };
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Progress for people on a terminal's stderr, erased when done; silent when piped. */
function progressLine(): { update: (s: string) => void; done: () => void } {
  const tty = process.stderr.isTTY;
  let last = 0;
  return {
    update: (s) => {
      const now = Date.now();
      if (!tty || now - last < 100) return;
      last = now;
      process.stderr.write(`\r\x1b[2K${s.slice(0, (process.stderr.columns ?? 80) - 1)}`);
    },
    done: () => {
      if (tty) process.stderr.write('\r\x1b[2K');
    },
  };
}

/**
 * The command table (commander): one declaration per command, its arguments, options and an action
 * that imports the command's module on first use. Longer than 80 lines because it is a table — each
 * action is a few lines handing over to src/cli/<command>.ts, where the work is.
 */
export function buildProgram(): Command {
  const program = new Command('batch-advisor')
    .description('Which batch size to use for your image dataset, device and model — and why.')
    .version(version, '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('inspect')
    .description('Inspect an image dataset folder (one subfolder per class)')
    .argument('<folder>', 'dataset folder')
    .option('--json', 'print one JSON document')
    .option('--validation-split <f>', 'fraction held out for validation', parseFraction, 0.2)
    .option('--image-size <HxW>', 'target size for the decoded-size estimate', parseImageSize)
    .addOption(new Option('--channels <n>', 'target channels (1, 3 or 4)').argParser(parseChannels))
    .action(async (folder: string, flags: { json?: boolean; validationSplit: number; imageSize?: [number, number]; channels?: 1 | 3 | 4 }) => {
      const [{ inspectDataset }, { formatDataset }] = await Promise.all([import('../core/dataset/inspect.js'), import('./report.js')]);
      const bar = progressLine();
      const report = await inspectDataset(resolve(folder), {
        validationSplit: flags.validationSplit,
        ...(flags.imageSize ? { imageSize: flags.imageSize } : {}),
        ...(flags.channels ? { channels: flags.channels } : {}),
        onProgress: (p) => bar.update(`Scanning… ${p.filesSeen.toLocaleString('en-US')} files`),
      });
      bar.done();
      out(flags.json ? JSON.stringify(report, null, 2) : formatDataset(report).join('\n'));
    });

  program
    .command('suggest')
    .description('Recommend a batch size (and learning rate, warmup, accumulation, loading) for a dataset folder or a *.train.json')
    .argument('<input>', 'dataset folder or *.train.json config')
    .option('--json', 'print one JSON document')
    .option('--image-size <HxW>', 'input size of the model', parseImageSize)
    .addOption(new Option('--channels <n>', 'input channels (1, 3 or 4)').argParser(parseChannels))
    .option('--model <name|model.json>', 'tutorial-cnn, mobilenet-v2, resnet-small, or a tfjs Layers model.json')
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(OPTIMIZERS))
    .option('--device-memory <GiB>', 'plan for a device with this much memory', parsePositive)
    .option('--validation-split <f>', 'fraction held out for validation', parseFraction)
    .option('--headroom <f>', 'fraction of free memory kept free, and the probe\'s margin (default 0.1)', parseFraction)
    .option('--probe', 'confirm the plan with real training steps (trials in child processes)')
    .option('--no-probe', 'do not probe, even when the config sets "probe": true')
    .action(async (input: string, flags: SuggestFlags) => {
      const config = await configFromInput(input, flags);
      const [{ suggest }, { formatSuggest }, { findWorkspaceRoot }, { PROBE_CACHE_FOLDER }, { backendLocation }] = await Promise.all([import('../core/process/suggest.js'), import('./report.js'), import('./train.js'), import('../core/probe/cache.js'), import('../core/planning/run-spec.js')]);
      const bar = progressLine();
      // The probe cache lives with the runs: the workspace of the config (or of the dataset folder).
      const workspace = findWorkspaceRoot(config.configPath ? dirname(config.configPath) : config.dataset);
      const report = await suggest(
        { config },
        {
          trainerScript: trainerScriptPath(),
          ...(flags.deviceMemory !== undefined ? { deviceMemoryGiB: flags.deviceMemory } : {}),
          ...(flags.headroom !== undefined ? { headroom: flags.headroom } : {}),
          ...(flags.probe !== undefined ? { probe: flags.probe } : {}),
          probeCacheDir: join(workspace, PROBE_CACHE_FOLDER),
          // Where `train` will look for tfjs-node: the plan is made for the backend found there.
          backendLocation: backendLocation(config, { workspaceRoot: workspace }),
          onProgress: (p) => bar.update(p.message),
        },
      );
      bar.done();
      out(flags.json ? JSON.stringify(report, null, 2) : formatSuggest(report).join('\n'));
    });

  program
    .command('train')
    .description('Train with a *.train.json config in a child process; the run is kept in .batch-advisor/runs/')
    .argument('[config]', '*.train.json config (leave out with --resume)')
    .option('--json', 'print each event as one JSON line')
    .option('--resume <run folder>', 'continue a run: its recorded config and plan, from the epoch after its last saved one, metrics appended')
    .option('--epochs <n>', 'override the number of epochs (with --resume: train to this many in all)', parsePositiveInt)
    .option('--max-steps <n>', 'stop after this many optimizer steps', parsePositiveInt)
    .option('--batch-size <n>', 'override the batch size', parsePositiveInt)
    .option('--device-memory <GiB>', 'plan for a device with this much memory', parsePositive)
    .option('--probe', 'measure the plan with real training steps (the default for "batchSize": "auto")')
    .option('--no-probe', 'plan from the memory model alone: batch 32 (or the config\'s) unless memory forces it lower')
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices([...BACKENDS]))
    .addOption(new Option('--lr-schedule <name>', 'learning-rate schedule after warmup').choices(['constant', 'cosine', 'step']))
    .addOption(new Option('--engine <name>', 'what trains: tfjs (our trainer) or torchrun (PyTorch DDP)').choices(['tfjs', 'torchrun']))
    .option('--nproc-per-node <n>', 'torchrun: processes (devices) on this node (default: the CUDA devices, else 1)', parsePositiveInt)
    .option('--nnodes <n>', 'torchrun: nodes in all (with --node-rank and --rdzv-endpoint)', parsePositiveInt)
    .option('--node-rank <r>', "torchrun: this node's rank, 0 … nnodes − 1", parseWholeNumber)
    .option('--rdzv-endpoint <host:port>', 'torchrun: the rendezvous address (the first node)')
    .addOption(new Option('--export <kind>', 'torchrun: write a Slurm batch script or a SkyPilot task into the run folder instead of launching').choices(['slurm', 'skypilot']))
    .option('--python <path>', 'torchrun: the Python interpreter with torch (default: python3, then /usr/bin/python3)')
    .action(async (configPath: string | undefined, flags: TrainFlags) => {
      const [{ trainCommand }, { watchdogOptionsFromEnv }, { runTestFromEnv }] = await Promise.all([import('./train.js'), import('../core/process/step-watchdog.js'), import('../core/planning/run-spec.js')]);
      const test = runTestFromEnv(process.env);
      const code = await trainCommand(configPath, flags, {
        trainerScript: trainerScriptPath(),
        watchdog: watchdogOptionsFromEnv(process.env),
        ...(test ? { test } : {}),
        stdout: process.stdout,
        stderr: process.stderr,
      });
      process.exitCode = code;
    });

  program
    .command('evaluate')
    .description('Evaluate a trained model on a folder of labelled images (one subfolder per class, matched by name with the model\'s classes)')
    .argument('<model>', 'a run folder (.batch-advisor/runs/<run>) or a tfjs Layers model.json')
    .argument('<folder>', 'image folder, one subfolder per class')
    .option('--json', 'print one JSON document')
    .option('--batch-size <n>', 'images per prediction batch (default 32)', parsePositiveInt)
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices([...BACKENDS]))
    .action(async (model: string, folder: string, flags: { json?: boolean; batchSize?: number; backend?: string }) => {
      const { evaluateCommand } = await import('./evaluate.js');
      process.exitCode = await evaluateCommand(model, folder, flags, { trainerScript: trainerScriptPath(), stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('make-sample')
    .description('Write the bundled MNIST digits as an image folder (one subfolder per digit)')
    .argument('[folder]', 'where to write it', 'samples/mnist')
    .option('--force', 'rewrite even if present')
    .action(async (folder: string, flags: { force?: boolean }) => {
      const { makeSample } = await import('./make-sample.js');
      const r = await makeSample(resolve(folder), flags);
      out(r.created ? `Wrote ${r.images.toLocaleString('en-US')} images to ${r.folder}` : `Sample already present: ${r.images.toLocaleString('en-US')} images in ${r.folder}`);
    });

  return program;
}

/** Errors about the user's input, recognised by name (core/shared/errors.ts): their modules load only with the commands that throw them. */
function isBadInput(e: unknown): boolean {
  if (e instanceof UsageError) return true;
  if (!(e instanceof Error)) return false;
  return INPUT_ERROR_NAMES.has(e.name) || (e.name === 'TrainerError' && (e as { kind?: unknown }).kind === 'bad-input');
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version (-V) exit 0; everything else commander rejects is bad usage.
      return e.exitCode === 0 ? 0 : 2;
    }
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`batch-advisor: ${message.split('\n')[0]}\n`);
    return isBadInput(e) ? 2 : 1;
  }
}

if (require.main === module) {
  // `batch-advisor … | head`: the reader closing the pipe ends the output, not with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
