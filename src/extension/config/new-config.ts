/**
 * "Batch Advisor: New Training Config": asks for a dataset folder (or takes the Explorer's), writes
 * `<folder>.train.json` beside it in the workspace with a starting config ("batchSize": "auto",
 * the built-in tutorial CNN) and opens it. Never overwrites a file.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as vscode from 'vscode';
import { sanitizeRunName } from '../../core/run-folder/runs';
import type { FeatureHost } from '../host';
import { startingConfig } from './starting-config';
import { CONFIG_SUFFIX } from '../../core/shared/constants';

export async function newTrainingConfig(ctx: FeatureHost, arg?: unknown): Promise<void> {
  let folder = arg instanceof vscode.Uri && arg.scheme === 'file' ? arg : undefined;
  if (!folder) {
    const picked = await vscode.window.showOpenDialog({
      canSelectFolders: true,
      canSelectFiles: false,
      canSelectMany: false,
      openLabel: 'Use as dataset',
      title: 'Batch Advisor: dataset folder (one subfolder per class)',
      ...(vscode.workspace.workspaceFolders?.[0] ? { defaultUri: vscode.workspace.workspaceFolders[0].uri } : {}),
    });
    folder = picked?.[0];
  }
  if (!folder) return;
  const ws = vscode.workspace.getWorkspaceFolder(folder);
  const dir = ws && ws.uri.fsPath !== folder.fsPath ? dirname(folder.fsPath) : folder.fsPath;
  let path = join(dir, `${sanitizeRunName(basename(folder.fsPath))}${CONFIG_SUFFIX}`);
  for (let i = 2; existsSync(path); i++) path = join(dir, `${sanitizeRunName(basename(folder.fsPath))}-${i}${CONFIG_SUFFIX}`);
  const config = startingConfig(dir, folder.fsPath);
  writeFileSync(path, JSON.stringify(config, null, 2) + '\n', { flag: 'wx' });
  ctx.log.info(`New training config ${path}`);
  await vscode.window.showTextDocument(vscode.Uri.file(path));
}
