/**
 * One classification of failures by kind, used by the CLI's exit codes, the extension's
 * messages and the trainer's error events alike. Errors are recognised by their `name` (and a TrainerError's `kind`), so this
 * browser-safe module needs none of the host modules that define them.
 */
import { isOutOfMemoryError } from './oom';

export type ErrorKind = 'bad-input' | 'oom' | 'diverged' | 'cancelled' | 'internal';

/** Exit code of the CLI for each kind. */
export const EXIT_CODES: Record<ErrorKind, number> = { 'bad-input': 2, oom: 1, diverged: 1, internal: 1, cancelled: 130 };

/** Errors a person fixes in their input (config, dataset, model file, workspace trust). */
export const INPUT_ERROR_NAMES: ReadonlySet<string> = new Set(['ConfigError', 'DatasetInputError', 'SuggestInputError', 'RestrictedModeError', 'BadInputError', 'FlowInputError', 'RunDirError', 'EvaluateInputError', 'ResumeError', 'TorchrunInputError', 'MissingTorchError']);

export interface Classified {
  kind: ErrorKind;
  /** One line for a person (no stack). */
  message: string;
}

/**
 * The kind of a failure and its message: its first line, or with `detail` the whole message (and,
 * for an internal error, its stack — what the trainer records). Out of memory is recognised by its
 * text as every backend says it (oom.ts); a full disk (FsResourceError) is internal.
 */
export function classifyError(e: unknown, opts: { detail?: boolean } = {}): Classified {
  const err = e instanceof Error ? e : undefined;
  const full = err ? err.message : String(e);
  const message = opts.detail ? full : (full.split('\n')[0] ?? '');
  if (err?.name === 'AbortError') return { kind: 'cancelled', message: message || 'cancelled' };
  if (err && INPUT_ERROR_NAMES.has(err.name)) return { kind: 'bad-input', message };
  if (err?.name === 'DivergedError') return { kind: 'diverged', message };
  const kind = (err as { kind?: unknown } | undefined)?.kind;
  if (kind === 'bad-input' || kind === 'oom' || kind === 'diverged' || kind === 'internal') return { kind, message };
  if (err?.name === 'FsResourceError') return { kind: 'internal', message };
  if (isOutOfMemoryError(e)) return { kind: 'oom', message };
  return { kind: 'internal', message: opts.detail && err?.stack ? err.stack : message };
}

export function abortError(message = 'Cancelled'): Error {
  const e = new Error(message);
  e.name = 'AbortError';
  return e;
}
