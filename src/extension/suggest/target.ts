/**
 * What to analyse when "Suggest Batch Size" runs, in this order:
 *  1. a Uri passed by a CodeLens / menu (a `*.train.json` file or a folder);
 *  2. the `*.train.json` config in the active editor;
 *  3. the setting `batchAdvisor.datasetFolder`;
 *  4. a workspace folder that itself looks like a dataset (class subfolders holding images);
 *  5. a `*.train.json` config found in the workspace (picked from a list when several);
 *  6. a folder the user picks (showOpenDialog).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { CONFIG_SUFFIX, IMAGE_EXTENSIONS } from '../../core/shared/constants';
import type { Settings } from '../settings';

export type SuggestTarget = { kind: 'config'; path: string } | { kind: 'folder'; path: string };

const IMAGE_EXTENSION_SET: ReadonlySet<string> = new Set(IMAGE_EXTENSIONS.map((e) => `.${e}`));

export function isConfigPath(p: string): boolean {
  return p.toLowerCase().endsWith(CONFIG_SUFFIX);
}

/** A target from a path whose kind is implied by its name (used to re-run a restored panel). */
export function targetFromPath(p: string): SuggestTarget {
  return isConfigPath(p) ? { kind: 'config', path: p } : { kind: 'folder', path: p };
}

function extOf(name: string): string {
  const i = name.lastIndexOf('.');
  return i < 0 ? '' : name.slice(i).toLowerCase();
}

/**
 * Cheap check (a few directory reads): does `folder` hold class subfolders with images?
 * Looks at up to 8 subfolders and up to 50 entries in each.
 */
export async function looksLikeDataset(folder: string): Promise<boolean> {
  try {
    const entries = await readdir(folder, { withFileTypes: true });
    const dirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules').slice(0, 8);
    for (const d of dirs) {
      const inner = await readdir(join(folder, d.name), { withFileTypes: true });
      if (inner.slice(0, 50).some((f) => f.isFile() && IMAGE_EXTENSION_SET.has(extOf(f.name)))) return true;
    }
  } catch {
    // unreadable: not a dataset
  }
  return false;
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** The target for the command, or undefined when the user dismissed the folder picker. */
export async function resolveTarget(arg: unknown, settings: Settings): Promise<SuggestTarget | undefined> {
  if (arg instanceof vscode.Uri && arg.scheme === 'file') {
    if (isConfigPath(arg.fsPath)) return { kind: 'config', path: arg.fsPath };
    if (await isDirectory(arg.fsPath)) return { kind: 'folder', path: arg.fsPath };
  }

  const active = vscode.window.activeTextEditor?.document;
  if (active && active.uri.scheme === 'file' && isConfigPath(active.uri.fsPath)) {
    if (active.isDirty) await active.save();
    return { kind: 'config', path: active.uri.fsPath };
  }

  if (settings.datasetFolder) return { kind: 'folder', path: settings.datasetFolder };

  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    if (folder.uri.scheme === 'file' && (await looksLikeDataset(folder.uri.fsPath))) return { kind: 'folder', path: folder.uri.fsPath };
  }

  const configs = await vscode.workspace.findFiles(`**/*${CONFIG_SUFFIX}`, '**/{node_modules,.git,.batch-advisor}/**', 20);
  const files = configs.filter((u) => u.scheme === 'file').sort((a, b) => a.fsPath.localeCompare(b.fsPath));
  if (files.length === 1) return { kind: 'config', path: files[0]!.fsPath };
  if (files.length > 1) {
    const pick = await vscode.window.showQuickPick(
      files.map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u })),
      { title: 'Batch Advisor: which training config?', placeHolder: 'Pick a *.train.json config to analyse' },
    );
    return pick ? { kind: 'config', path: pick.uri.fsPath } : undefined;
  }

  const picked = await vscode.window.showOpenDialog({
    canSelectFiles: false,
    canSelectFolders: true,
    canSelectMany: false,
    title: 'Batch Advisor: pick the dataset folder (one subfolder per class)',
    openLabel: 'Analyse this dataset',
  });
  const uri = picked?.[0];
  return uri ? { kind: 'folder', path: uri.fsPath } : undefined;
}
