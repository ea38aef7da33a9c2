// Flat config. Besides the usual rules it enforces the architecture's import boundaries:
//   src/core     pure logic: no `vscode`, no tfjs
//   src/core/shared  the browser-safe part of core (types, protocols, formatting) that webviews may
//                import: no Node built-ins, no ajv, nothing outside src/core/shared
//   src/trainer  the only place that imports tfjs; no `vscode`
//   src/extension the only place that imports `vscode`; no tfjs (training runs in a child process)
//   src/webview  browser code: no Node built-ins, no `vscode`, no tfjs
//   src/cli      no `vscode`
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { builtinModules } from 'node:module';

const tfjs = { group: ['@tensorflow/*'], message: 'Only src/trainer may import tfjs (it runs in a child process).' };
const vscode = { name: 'vscode', message: "Only src/extension may import 'vscode'." };
const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)].map((name) => ({
  name,
  message: 'Webview code runs in a browser: no Node built-ins.',
}));
const intoExtension = { group: ['**/extension/**', '**/extension'], message: 'Nothing may depend on src/extension.' };

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'test-results/**', 'samples/mnist/**', 'bench/.data/**', '**/*.mjs', 'src/trainer/simd/assembly/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // Settings and test hooks reach product code as arguments: only the three entry points read the environment.
    files: ['src/**/*.ts'],
    ignores: ['src/trainer/main.ts', 'src/cli/main.ts', 'src/extension/extension.ts'],
    rules: { 'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Only the entry points (src/trainer/main.ts, src/cli/main.ts, src/extension/extension.ts) read process.env; pass what you need as an argument.' }] },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [vscode], patterns: [tfjs, intoExtension, { group: ['**/trainer/**', '**/cli/**', '**/webview/**'], message: 'src/core depends on nothing else in src.' }] }] },
  },
  {
    files: ['src/trainer/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [vscode], patterns: [intoExtension, { group: ['**/cli/**', '**/webview/**'], message: 'src/trainer may depend on src/core only.' }] }] },
  },
  {
    files: ['src/extension/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [tfjs, { group: ['**/trainer/**', '**/cli/**', '**/webview/**'], message: 'The extension talks to the trainer over IPC; import src/core only.' }] }] },
  },
  {
    files: ['src/cli/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [vscode], patterns: [tfjs, intoExtension, { group: ['**/webview/**'], message: 'The CLI does not use webview code.' }] }] },
  },
  {
    files: ['src/core/shared/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [vscode, ...nodeBuiltins.map((p) => ({ ...p, message: 'src/core/shared is imported by webviews: no Node built-ins.' }))],
          patterns: [tfjs, intoExtension, { group: ['ajv', 'ajv/*'], message: 'src/core/shared is imported by webviews: validate on the host (src/core/config.ts).' }, { group: ['../*', '!../shared/*'], message: 'src/core/shared imports only from src/core/shared.' }],
        },
      ],
    },
  },
  {
    files: ['src/webview/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
    rules: { 'no-restricted-imports': ['error', { paths: [vscode, ...nodeBuiltins], patterns: [tfjs, intoExtension, { group: ['**/trainer/**', '**/cli/**'], message: 'Webview code may import src/core/shared only.' }, { group: ['**/core/*', '!**/core/shared', '**/core/*/**', '!**/core/shared/**'], message: 'Webview code may import src/core/shared only (the rest of core is host-side Node).' }] }] },
  },
);
