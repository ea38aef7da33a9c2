/**
 * `batch-advisor … | head`: when the reader closes the pipe, the CLI stops quietly (no EPIPE stack
 * trace on stderr) with the command's own exit code.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { makeTinyDataset } from '../helpers/tiny-dataset';

const CLI = resolve(__dirname, '../../dist/cli.js');
let root: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ba-pipe-'));
  await makeTinyDataset(join(root, 'ds'), { classes: 2, perClass: 5, size: 16 });
});
after(() => rmSync(root, { recursive: true, force: true }));

test('the reader closes stdout before the report is written → exit 0, nothing on stderr', async () => {
  const child = spawn(process.execPath, [CLI, 'suggest', join(root, 'ds'), '--no-probe', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // as `| head -c 0` would: every write from now on meets a closed pipe
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  assert.doesNotMatch(stderr, /EPIPE|at .*\(|Error/, stderr);
  assert.equal(code, 0);
});
