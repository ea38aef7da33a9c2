/**
 * The `*.train.json` config: its type, defaults, and validation against the JSON schema shipped in
 * `schemas/train-config.schema.json` (the same file VS Code uses through `jsonValidation`).
 */
import type { ErrorObject } from 'ajv';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { configValidator } from './config-validate';

export { BACKENDS, DEFAULTS, ENGINES, type EngineName, explicitFields, type BackendChoice, type ExplicitField, type LoadingChoice, type TrainConfig, type TrainConfigFile } from './shared/config-types';
import { DEFAULTS, explicitFields, type TrainConfig } from './shared/config-types';

/** Bad config: the message names the file and the field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function describeError(e: ErrorObject): string {
  const field = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '';
  if (e.keyword === 'additionalProperties') {
    return `unknown field "${String((e.params as { additionalProperty: string }).additionalProperty)}"`;
  }
  if (e.keyword === 'required') return `missing required field "${String((e.params as { missingProperty: string }).missingProperty)}"`;
  if (e.keyword === 'enum') {
    return `field "${field}" ${e.message ?? 'is invalid'}: ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return field ? `field "${field}" ${e.message ?? 'is invalid'}` : (e.message ?? 'is invalid');
}

/** Validates parsed JSON; throws ConfigError naming `source` and the first offending field. */
export function resolveConfig(raw: unknown, source: string): TrainConfig {
  const validate = configValidator();
  if (!validate(raw)) {
    const errors = (validate.errors ?? []).filter((e) => e.keyword !== 'if' && e.keyword !== 'anyOf');
    const first = errors[0] ?? validate.errors?.[0];
    throw new ConfigError(`${source}: ${first ? describeError(first) : 'invalid config'}`);
  }
  const c = raw;
  const base = dirname(resolve(source));
  const modelIsPath = c.model !== undefined && /\.json$/i.test(c.model);
  return {
    name: c.name ?? source.replace(/^.*[\\/]/, '').replace(/\.train\.json$|\.json$/i, ''),
    configPath: resolve(source),
    dataset: resolve(base, c.dataset),
    imageSize: c.imageSize ?? DEFAULTS.imageSize,
    channels: c.channels ?? DEFAULTS.channels,
    validationSplit: c.validationSplit ?? DEFAULTS.validationSplit,
    seed: c.seed ?? DEFAULTS.seed,
    model: modelIsPath ? resolve(base, c.model as string) : (c.model ?? DEFAULTS.model),
    widthMultiplier: c.widthMultiplier ?? DEFAULTS.widthMultiplier,
    optimizer: c.optimizer ?? DEFAULTS.optimizer,
    learningRate: c.learningRate ?? DEFAULTS.learningRate,
    batchSize: c.batchSize ?? DEFAULTS.batchSize,
    epochs: c.epochs ?? DEFAULTS.epochs,
    accumulationSteps: c.accumulationSteps ?? DEFAULTS.accumulationSteps,
    ...(c.warmupSteps !== undefined ? { warmupSteps: c.warmupSteps } : {}),
    ...(c.lrSchedule !== undefined ? { lrSchedule: c.lrSchedule } : {}),
    ...(c.checkpoint !== undefined ? { checkpoint: c.checkpoint } : {}),
    ...(c.earlyStopping !== undefined ? { earlyStopping: { patience: c.earlyStopping.patience, monitor: c.earlyStopping.monitor ?? 'val_loss', minDelta: c.earlyStopping.minDelta ?? 0 } } : {}),
    loading: c.loading ?? DEFAULTS.loading,
    backend: c.backend ?? DEFAULTS.backend,
    ...(c.engine !== undefined ? { engine: c.engine } : {}),
    ...(c.nprocPerNode !== undefined ? { nprocPerNode: c.nprocPerNode } : {}),
    ...(c.deviceMemoryGiB !== undefined ? { deviceMemoryGiB: c.deviceMemoryGiB } : {}),
    ...(c.nanPatience !== undefined ? { nanPatience: c.nanPatience } : {}),
    ...(c.probe !== undefined ? { probe: c.probe } : {}),
    ...(c.batchGrowth !== undefined ? { batchGrowth: c.batchGrowth } : {}),
    ...(c.resume !== undefined ? { resume: { runDir: resolve(base, c.resume), ...(c.epochs !== undefined ? { epochs: c.epochs } : {}) } } : {}),
    explicit: explicitFields(c),
  };
}

/** Control characters (other than tab, newlines, form feed) or undecodable bytes near the start: not a text file. */
function looksBinary(text: string): boolean {
  for (let i = 0; i < Math.min(text.length, 512); i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0c && c !== 0x0d) || c === 0xfffd) return true;
  }
  return false;
}

/** Reads, parses and validates a config file; every failure is a ConfigError naming the file. */
export function loadConfigFile(path: string): TrainConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === 'ENOENT' ? `${path}: no such file` : code === 'EISDIR' ? `${path}: is a folder, not a config file` : `${path}: cannot be read (${code ?? String(e)})`,
    );
  }
  // Editors on Windows may save UTF-8 with a byte order mark; JSON.parse rejects it, people cannot see it.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    // Never echo binary bytes (an image passed by mistake) to a terminal.
    if (looksBinary(text)) throw new ConfigError(`${path}: not a config file (binary content; a config is a *.train.json text file)`);
    throw new ConfigError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return resolveConfig(raw, path);
}

/** A config for a bare dataset folder (the CLI's `suggest <folder>` and the command without a config). */
export function configForFolder(folder: string, overrides: Partial<TrainConfig> = {}): TrainConfig {
  const dataset = resolve(folder);
  return {
    name: dataset.replace(/^.*[\\/]/, '') || 'dataset',
    dataset,
    imageSize: DEFAULTS.imageSize,
    channels: DEFAULTS.channels,
    validationSplit: DEFAULTS.validationSplit,
    seed: DEFAULTS.seed,
    model: DEFAULTS.model,
    widthMultiplier: DEFAULTS.widthMultiplier,
    optimizer: DEFAULTS.optimizer,
    learningRate: DEFAULTS.learningRate,
    batchSize: DEFAULTS.batchSize,
    epochs: DEFAULTS.epochs,
    accumulationSteps: DEFAULTS.accumulationSteps,
    loading: DEFAULTS.loading,
    backend: DEFAULTS.backend,
    ...overrides,
    explicit: explicitFields(overrides),
  };
}

/** The config with command-line overrides applied; overridden plan fields become explicit. */
export function withOverrides(config: TrainConfig, overrides: Partial<Omit<TrainConfig, 'explicit'>>): TrainConfig {
  const set = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return { ...config, ...set, explicit: [...new Set([...config.explicit, ...explicitFields(set)])] };
}
