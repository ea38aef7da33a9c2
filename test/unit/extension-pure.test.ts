/**
 * The extension's pure pieces, tested without VS Code: settings sanitizing and the webview
 * protocol's guards (messages from a webview are untrusted input).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMessage } from '../../src/core/shared/ipc';
import { SUGGEST_CHANNEL, isPersistedState } from '../../src/core/shared/webview-protocol';

/** The host's and the webview's parsing of the Suggest channel, through its descriptors. */
const isWebviewToHost = (m: unknown): boolean => parseMessage(m, SUGGEST_CHANNEL.fromWebview).ok;
const isHostToWebview = (m: unknown): boolean => parseMessage(m, SUGGEST_CHANNEL.toWebview).ok;
import { DEFAULT_HEADROOM, sanitize } from '../../src/extension/settings-sanitize';
import { applyTitle, planFieldsMatch, withPlanFields } from '../../src/extension/config/plan-edit';

describe('settings sanitize', () => {
  it('keeps valid values', () => {
    assert.deepEqual(sanitize({ datasetFolder: ' data/pets ', deviceMemoryGiB: 8, headroom: 0.2, backend: 'wasm', tfjsNodePath: '/opt/tfjs', probe: false }), {
      datasetFolder: 'data/pets',
      deviceMemoryGiB: 8,
      headroom: 0.2,
      backend: 'wasm',
      tfjsNodePath: '/opt/tfjs',
      probe: false,
    });
  });

  it('falls back to defaults for missing, mistyped or out-of-range values', () => {
    assert.deepEqual(sanitize({}), { datasetFolder: undefined, deviceMemoryGiB: undefined, headroom: DEFAULT_HEADROOM, backend: 'auto', tfjsNodePath: undefined, probe: true });
    const bad = sanitize({ datasetFolder: 42, deviceMemoryGiB: -1, headroom: 1.5, backend: 'cuda', tfjsNodePath: '   ', probe: 'no' });
    assert.deepEqual(bad, { datasetFolder: undefined, deviceMemoryGiB: undefined, headroom: DEFAULT_HEADROOM, backend: 'auto', tfjsNodePath: undefined, probe: true });
    assert.equal(sanitize({ deviceMemoryGiB: null }).deviceMemoryGiB, undefined);
    assert.equal(sanitize({ deviceMemoryGiB: Number.NaN }).deviceMemoryGiB, undefined);
    assert.equal(sanitize({ headroom: '0.2' }).headroom, DEFAULT_HEADROOM);
    assert.equal(sanitize({ headroom: 0 }).headroom, 0);
  });
});

describe('webview protocol guards', () => {
  it('accepts well-formed webview messages', () => {
    assert.ok(isWebviewToHost({ type: 'ready' }));
    assert.ok(isWebviewToHost({ type: 'cancel' }));
    assert.ok(isWebviewToHost({ type: 'skip-probe' }));
    assert.ok(isWebviewToHost({ type: 'rerun' }));
    assert.ok(isWebviewToHost({ type: 'reveal', path: '/data/cat/1.png' }));
    assert.ok(isWebviewToHost({ type: 'csp-violation', directive: 'style-src', blocked: 'inline' }));
  });

  it('rejects anything else', () => {
    for (const m of [null, undefined, 'ready', 42, {}, { type: 'run-shell' }, { type: 'reveal' }, { type: 'reveal', path: 1 }, { type: 'csp-violation', directive: 'x' }]) {
      assert.equal(isWebviewToHost(m), false, JSON.stringify(m));
    }
  });

  it('says which field is wrong (for the log), not only that the message was dropped', () => {
    const r = parseMessage({ type: 'reveal', path: 7 }, SUGGEST_CHANNEL.fromWebview);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error, /"reveal" message: field "path" must be string/);
    const long = parseMessage({ type: 'reveal', path: 'x'.repeat(5000) }, SUGGEST_CHANNEL.fromWebview);
    assert.match(long.ok ? '' : long.error, /shorter than 4096/);
    const unknown = parseMessage({ type: 'run-shell' }, SUGGEST_CHANNEL.fromWebview);
    assert.match(unknown.ok ? '' : unknown.error, /unknown message type "run-shell"/);
  });

  it('checks host messages and persisted state', () => {
    assert.ok(isHostToWebview({ type: 'state', state: { kind: 'idle', seq: 0 } }));
    assert.equal(isHostToWebview({ type: 'state' }), false);
    assert.equal(isHostToWebview({ type: 'state', state: {} }), false);
    assert.ok(isPersistedState({ version: 1, state: { kind: 'cancelled', seq: 3, target: '/x' } }));
    assert.equal(isPersistedState({ version: 2, state: { kind: 'idle', seq: 0 } }), false);
    assert.equal(isPersistedState(undefined), false);
  });
});

describe('the apply lens writes the whole plan', () => {
  const f = { batchSize: 8, accumulationSteps: 4, learningRate: 0.00141, warmupSteps: 12 };

  it('title: batch × accumulation, learning rate, warmup', () => {
    assert.equal(applyTitle(f), 'Suggested: 8 × 4, lr 0.00141, warmup 12 — apply');
    assert.equal(applyTitle({ batchSize: 64, accumulationSteps: 1, learningRate: 0.001, warmupSteps: 0 }), 'Suggested: 64, lr 0.001 — apply');
  });

  it('replaces the fields that are there and adds the missing ones, keeping comments and indentation; the lens then has nothing to apply', () => {
    const text = '{\n    // my run\n    "name": "x",\n    "batchSize": "auto",\n    "epochs": 2\n}\n';
    const out = withPlanFields(text, f);
    assert.match(out, /\/\/ my run/);
    assert.match(out, /\n {4}"batchSize": 8,/);
    assert.match(out, /\n {4}"accumulationSteps": 4/);
    assert.match(out, /\n {4}"learningRate": 0\.00141/);
    assert.match(out, /\n {4}"warmupSteps": 12/);
    assert.match(out, /"epochs": 2/);
    assert.equal(planFieldsMatch(text, f), false);
    assert.equal(planFieldsMatch(out, f), true);
    assert.equal(withPlanFields(out, f), out, 'applying twice changes nothing');
  });
});
