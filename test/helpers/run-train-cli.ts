/**
 * Runs `batch-advisor train` (./train-cli.ts) as a real process, for tests that need signals:
 * `when(stdout)` returns the signal to send, once, as output arrives. Killed after two minutes.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const HELPER = resolve(__dirname, 'train-cli.ts');
const ROOT = resolve(__dirname, '..', '..');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Whether `when` asked for a signal and it was sent. */
  sent: boolean;
}

export async function runTrainCli(args: string[], when: (stdout: string) => NodeJS.Signals | undefined = () => undefined, env: Record<string, string> = {}): Promise<CliResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', HELPER, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let sent = false;
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    const sig = sent ? undefined : when(stdout);
    if (sig) {
      sent = true;
      child.kill(sig);
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  clearTimeout(timer);
  return { code, stdout, stderr, sent };
}
