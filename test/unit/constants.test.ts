/** Names and limits written once in code (core/shared/constants.ts) and again in the manifest or schema must agree. */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BACKENDS } from '../../src/core/shared/config-types';
import { BACKEND_NAMES, COMMANDS, MAX_HEADROOM } from '../../src/core/shared/constants';

const root = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  contributes: { commands: { command: string }[]; configuration: { properties: Record<string, { maximum?: number; enum?: string[] }> } };
};
const schema = JSON.parse(readFileSync(join(root, 'schemas', 'train-config.schema.json'), 'utf8')) as { properties: { backend: { enum: string[] } } };

test('every command the manifest contributes is in COMMANDS, and every one of COMMANDS is contributed', () => {
  assert.deepEqual(pkg.contributes.commands.map((c) => c.command).sort(), Object.values(COMMANDS).sort());
});

test('the backend lists: the manifest setting and the config schema are BACKENDS ("auto" and BACKEND_NAMES in their order)', () => {
  assert.deepEqual(BACKENDS, ['auto', ...BACKEND_NAMES]);
  assert.deepEqual(pkg.contributes.configuration.properties['batchAdvisor.backend']?.enum, [...BACKENDS]);
  assert.deepEqual(schema.properties.backend.enum, [...BACKENDS]);
});

test("the headroom setting's maximum is MAX_HEADROOM", () => {
  assert.equal(pkg.contributes.configuration.properties['batchAdvisor.headroom']?.maximum, MAX_HEADROOM);
});
