/**
 * A run's own metadata, kept beside what ran: `<run folder>/meta.json` (`{ "name": "…" }`), written
 * when a person renames a run. The folder keeps its name (the run id: resume, the CLI and every
 * panel refer to a run by it) and config.json keeps the config that ran; the name here is only
 * what the runs view and the panels call the run.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const RUN_META_FILE = 'meta.json';

export interface RunMeta {
  /** The name a person gave the run (shown instead of the config's name). */
  name?: string;
}

export const RUN_NAME_MAX = 100;

/** Why `name` cannot be a run's name, or undefined when it can (for the input box and the writer). */
export function runNameProblem(name: string): string | undefined {
  const t = name.trim();
  if (!t) return 'A run name cannot be empty.';
  if (t.length > RUN_NAME_MAX) return `A run name has at most ${RUN_NAME_MAX} characters (this one has ${t.length}).`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(t)) return 'A run name cannot contain line breaks or control characters.';
  return undefined;
}

/** The run's metadata; a missing or unreadable meta.json is no metadata (the run still lists). */
export function readRunMeta(dir: string): RunMeta {
  const file = join(dir, RUN_META_FILE);
  if (!existsSync(file)) return {};
  try {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (typeof raw !== 'object' || raw === null) return {};
    const name = (raw as { name?: unknown }).name;
    return typeof name === 'string' && runNameProblem(name) === undefined ? { name: name.trim() } : {};
  } catch {
    return {};
  }
}

/** Gives the run a name (meta.json, replaced atomically); returns the name as stored. Throws on a name runNameProblem refuses. */
export function renameRun(dir: string, name: string): string {
  const problem = runNameProblem(name);
  if (problem) throw new Error(problem);
  const meta: RunMeta = { ...readRunMeta(dir), name: name.trim() };
  const file = join(dir, RUN_META_FILE);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(meta, null, 2) + '\n');
  renameSync(tmp, file);
  return meta.name!;
}
