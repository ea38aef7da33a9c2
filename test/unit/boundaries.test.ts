/** The architecture's import boundaries are enforced by ESLint: prove each rule fires. */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const eslint = new ESLint({ cwd: resolve(__dirname, '../..') });

async function violations(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: resolve(__dirname, '../..', file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('import boundaries', () => {
  const cases: [string, string, boolean][] = [
    ['src/core/x.ts', "import * as vscode from 'vscode'; export const a = vscode;", true],
    ['src/core/x.ts', "import * as tf from '@tensorflow/tfjs-core'; export const a = tf;", true],
    ['src/core/x.ts', "import { a } from '../trainer/tf'; export const b = a;", true],
    ['src/core/x.ts', "import { readFileSync } from 'node:fs'; export const a = readFileSync;", false],
    ['src/trainer/x.ts', "import * as tf from '@tensorflow/tfjs-core'; export const a = tf;", false],
    ['src/trainer/x.ts', "import * as vscode from 'vscode'; export const a = vscode;", true],
    ['src/extension/x.ts', "import * as vscode from 'vscode'; export const a = vscode;", false],
    ['src/extension/x.ts', "import * as tf from '@tensorflow/tfjs-layers'; export const a = tf;", true],
    ['src/extension/x.ts', "import { run } from '../trainer/train/run'; export const a = run;", true],
    ['src/webview/x.ts', "import { readFileSync } from 'node:fs'; export const a = readFileSync;", true],
    ['src/webview/x.ts', "import * as path from 'path'; export const a = path;", true],
    ['src/webview/x.ts', "import * as vscode from 'vscode'; export const a = vscode;", true],
    ['src/webview/suggest/x.ts', "import type { SuggestReport } from '../../core/shared/report'; export type A = SuggestReport;", false],
    ['src/webview/suggest/x.ts', "import { suggest } from '../../core/process/suggest'; export const a = suggest;", true],
    ['src/webview/suggest/x.ts', "import { loadConfigFile } from '../../core/config'; export const a = loadConfigFile;", true],
    ['src/webview/suggest/x.ts', "import { inspectDataset } from '../../core/dataset/inspect'; export const a = inspectDataset;", true],
    ['src/core/shared/x.ts', "import { readFileSync } from 'node:fs'; export const a = readFileSync;", true],
    ['src/core/shared/x.ts', "import Ajv from 'ajv'; export const a = Ajv;", true],
    ['src/core/shared/x.ts', "import { loadConfigFile } from '../config'; export const a = loadConfigFile;", true],
    ['src/core/shared/x.ts', "import { formatBytes } from './format'; export const a = formatBytes;", false],
    ['src/cli/x.ts', "import * as tf from '@tensorflow/tfjs-core'; export const a = tf;", true],
  ];
  for (const [file, code, forbidden] of cases) {
    it(`${forbidden ? 'forbids' : 'allows'} in ${file}: ${code.split(';')[0]}`, async () => {
      const found = await violations(file, code);
      assert.equal(found.length > 0, forbidden, found.join('; ') || 'no violation reported');
    });
  }
});

/** Settings and test hooks reach product code as arguments: only the entry points read the environment. */
describe('environment reads', () => {
  async function envViolations(file: string, code: string): Promise<number> {
    const [result] = await eslint.lintText(code, { filePath: resolve(__dirname, '../..', file) });
    return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-properties').length;
  }
  for (const [file, forbidden] of [
    ['src/trainer/train/x.ts', true],
    ['src/core/x.ts', true],
    ['src/extension/x.ts', true],
    ['src/trainer/main.ts', false],
    ['src/cli/main.ts', false],
    ['src/extension/extension.ts', false],
  ] as const) {
    it(`${forbidden ? 'forbids' : 'allows'} process.env in ${file}`, async () => {
      assert.equal((await envViolations(file, "export const a = process.env['X'];")) > 0, forbidden);
    });
  }
  it('no product file outside the entry points reads process.env (the whole of src/ lints clean for the rule)', async () => {
    const results = await eslint.lintFiles(['src/**/*.ts']);
    const reads = results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-properties').map((m) => `${r.filePath}:${m.line}`));
    assert.deepEqual(reads, []);
  });
});
