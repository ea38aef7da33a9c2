/**
 * One classification of failures by kind, used by the CLI's exit codes and the extension's
 * messages alike. Errors are recognised by their `name` (and a TrainerError's `kind`), so this
 * browser-safe module needs none of the host modules that define them.
 */
export type ErrorKind = 'bad-input' | 'oom' | 'diverged' | 'cancelled' | 'internal';

/** Exit code of the CLI for each kind. */
export const EXIT_CODES: Record<ErrorKind, number> = { 'bad-input': 2, oom: 1, diverged: 1, internal: 1, cancelled: 130 };

/** Errors a person fixes in their input (config, dataset, model file, workspace trust). */
export const INPUT_ERROR_NAMES: ReadonlySet<string> = new Set(['ConfigError', 'DatasetInputError', 'SuggestInputError', 'RestrictedModeError', 'BadInputError', 'FlowInputError', 'RunDirError', 'EvaluateInputError']);

export interface Classified {
  kind: ErrorKind;
  /** One line for a person (no stack). */
  message: string;
}

export function classifyError(e: unknown): Classified {
  const err = e instanceof Error ? e : undefined;
  const message = (err ? err.message : String(e)).split('\n')[0] ?? '';
  if (err?.name === 'AbortError') return { kind: 'cancelled', message: message || 'cancelled' };
  if (err && INPUT_ERROR_NAMES.has(err.name)) return { kind: 'bad-input', message };
  const kind = (err as { kind?: unknown } | undefined)?.kind;
  if (kind === 'bad-input' || kind === 'oom' || kind === 'diverged' || kind === 'internal') return { kind, message };
  return { kind: 'internal', message };
}

export function abortError(message = 'Cancelled'): Error {
  const e = new Error(message);
  e.name = 'AbortError';
  return e;
}
