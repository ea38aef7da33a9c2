/**
 * `batch-advisor train` without the commander entry, for tests that need a real process (signals):
 *   node --import tsx test/helpers/train-cli.ts <config> [--json] [--max-steps N] [--epochs N]
 */
import { join } from 'node:path';
import { trainCommand, type TrainOptions } from '../../src/cli/train';
import { runTestFromEnv } from '../../src/core/planning/run-spec';
import { watchdogOptionsFromEnv } from '../../src/core/process/step-watchdog';

const args = process.argv.slice(2);
const opts: TrainOptions = {};
const config = args[0] ?? '';
for (let i = 1; i < args.length; i++) {
  const a = args[i];
  if (a === '--json') opts.json = true;
  else if (a === '--max-steps') opts.maxSteps = Number(args[++i]);
  else if (a === '--epochs') opts.epochs = Number(args[++i]);
  else if (a === '--batch-size') opts.batchSize = Number(args[++i]);
  else if (a === '--backend') opts.backend = args[++i];
}
// An entry point like src/cli/main.ts: test faults and watchdog limits come from the environment.
const test = runTestFromEnv(process.env);
void trainCommand(config, opts, { trainerScript: join(__dirname, '..', '..', 'src', 'trainer', 'main.ts'), stdout: process.stdout, stderr: process.stderr, watchdog: watchdogOptionsFromEnv(process.env), ...(test ? { test } : {}) }).then((code) => {
  process.exitCode = code;
});
