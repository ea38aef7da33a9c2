/**
 * Settings, read in one place and sanitized before use (as vscode-eslint does): a hand-edited
 * settings.json can hold any JSON, so every value is checked and out-of-range values fall back to
 * the default instead of reaching the engine.
 */
import * as vscode from 'vscode';
import { BACKENDS, type BackendChoice } from '../core/config';

export const SECTION = 'batchAdvisor';

export interface Settings {
  /** Absolute path of the dataset folder to use when no config is open, or undefined. */
  datasetFolder: string | undefined;
  /** Plan for a device with this much memory instead of the one detected. */
  deviceMemoryGiB: number | undefined;
  /** Fraction of free memory kept free, 0 ≤ h < 0.9. */
  headroom: number;
  backend: BackendChoice;
  /** Folder holding a user-installed @tensorflow/tfjs-node(-gpu), or undefined. */
  tfjsNodePath: string | undefined;
}

export const DEFAULT_HEADROOM = 0.1;

function nonEmptyString(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/** Resolves `${workspaceFolder}`, `~` and relative paths against the first workspace folder. */
function resolvePath(p: string | undefined, scope: vscode.WorkspaceFolder | undefined): string | undefined {
  if (!p) return undefined;
  const folder = scope ?? vscode.workspace.workspaceFolders?.[0];
  let out = p;
  if (folder) out = out.replace(/\$\{workspaceFolder\}/g, folder.uri.fsPath);
  if (out.startsWith('~/') && process.env.HOME) out = vscode.Uri.joinPath(vscode.Uri.file(process.env.HOME), out.slice(2)).fsPath;
  if (!/^([a-zA-Z]:)?[\\/]/.test(out)) {
    if (!folder) return undefined;
    out = vscode.Uri.joinPath(folder.uri, out).fsPath;
  }
  return out;
}

/** Pure part of the sanitizing, testable without VS Code. */
export function sanitize(raw: {
  datasetFolder?: unknown;
  deviceMemoryGiB?: unknown;
  headroom?: unknown;
  backend?: unknown;
  tfjsNodePath?: unknown;
}): Omit<Settings, 'datasetFolder' | 'tfjsNodePath'> & { datasetFolder: string | undefined; tfjsNodePath: string | undefined } {
  const mem = raw.deviceMemoryGiB;
  const head = raw.headroom;
  return {
    datasetFolder: nonEmptyString(raw.datasetFolder),
    deviceMemoryGiB: typeof mem === 'number' && Number.isFinite(mem) && mem > 0 && mem <= 4096 ? mem : undefined,
    headroom: typeof head === 'number' && Number.isFinite(head) && head >= 0 && head < 0.9 ? head : DEFAULT_HEADROOM,
    backend: typeof raw.backend === 'string' && (BACKENDS as readonly string[]).includes(raw.backend) ? (raw.backend as BackendChoice) : 'auto',
    tfjsNodePath: nonEmptyString(raw.tfjsNodePath),
  };
}

export function readSettings(scope?: vscode.WorkspaceFolder): Settings {
  const c = vscode.workspace.getConfiguration(SECTION, scope);
  const s = sanitize({
    datasetFolder: c.get('datasetFolder'),
    deviceMemoryGiB: c.get('deviceMemoryGiB'),
    headroom: c.get('headroom'),
    backend: c.get('backend'),
    tfjsNodePath: c.get('tfjsNodePath'),
  });
  return { ...s, datasetFolder: resolvePath(s.datasetFolder, scope), tfjsNodePath: resolvePath(s.tfjsNodePath, scope) };
}
