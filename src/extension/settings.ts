/**
 * Settings, read in one place and sanitized before use (as vscode-eslint does): a hand-edited
 * settings.json can hold any JSON, so every value is checked and out-of-range values fall back to
 * the default instead of reaching the engine.
 */
import { homedir } from 'node:os';
import * as vscode from 'vscode';
import { sanitize, type Settings } from './settings-sanitize';

export type { Settings } from './settings-sanitize';

export const SECTION = 'batchAdvisor';

/** Resolves `${workspaceFolder}`, `~` and relative paths against the first workspace folder. */
function resolvePath(p: string | undefined, scope: vscode.WorkspaceFolder | undefined): string | undefined {
  if (!p) return undefined;
  const folder = scope ?? vscode.workspace.workspaceFolders?.[0];
  let out = p;
  if (folder) out = out.replace(/\$\{workspaceFolder\}/g, folder.uri.fsPath);
  if (out.startsWith('~/')) out = vscode.Uri.joinPath(vscode.Uri.file(homedir()), out.slice(2)).fsPath;
  if (!/^([a-zA-Z]:)?[\\/]/.test(out)) {
    if (!folder) return undefined;
    out = vscode.Uri.joinPath(folder.uri, out).fsPath;
  }
  return out;
}

/** The settings that apply to a file or folder: those of its workspace folder (multi-root workspaces). */
export function settingsFor(path: string): Settings {
  return readSettings(vscode.workspace.getWorkspaceFolder(vscode.Uri.file(path)));
}

/** Settings that change what a suggestion or a plan says. */
export const PLAN_SETTINGS = ['deviceMemoryGiB', 'headroom', 'backend', 'probe'] as const;

/** Whether a configuration change touches a setting that changes the plan for `path`. */
export function affectsPlan(e: vscode.ConfigurationChangeEvent, path: string): boolean {
  const uri = vscode.Uri.file(path);
  return PLAN_SETTINGS.some((k) => e.affectsConfiguration(`${SECTION}.${k}`, uri));
}

export function readSettings(scope?: vscode.WorkspaceFolder): Settings {
  const c = vscode.workspace.getConfiguration(SECTION, scope);
  const s = sanitize({
    datasetFolder: c.get('datasetFolder'),
    deviceMemoryGiB: c.get('deviceMemoryGiB'),
    headroom: c.get('headroom'),
    backend: c.get('backend'),
    tfjsNodePath: c.get('tfjsNodePath'),
    probe: c.get('probe'),
  });
  return { ...s, datasetFolder: resolvePath(s.datasetFolder, scope), tfjsNodePath: resolvePath(s.tfjsNodePath, scope) };
}
