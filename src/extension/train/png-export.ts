/**
 * Saves a chart the training panel drew as a PNG: the webview sends the picture as a data URL (see
 * chart-export.ts), this asks where to save it (starting in the run's folder) and writes it.
 */
import { join } from 'node:path';
import * as vscode from 'vscode';
import { classifyError } from '../../core/shared/errors';
import { PNG_PREFIX } from '../../core/shared/train-webview-protocol';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The PNG's bytes, or null when the data URL does not hold a PNG. */
export function pngBytes(dataUrl: string): Uint8Array | null {
  if (!dataUrl.startsWith(PNG_PREFIX)) return null;
  const bytes = Buffer.from(dataUrl.slice(PNG_PREFIX.length), 'base64');
  return PNG_SIGNATURE.every((b, i) => bytes[i] === b) ? new Uint8Array(bytes) : null;
}

/** Asks where to save `<chart>.png` (offered in `dir`), writes it and offers to open it; false when nothing was saved. */
export async function saveChartPng(dir: string | undefined, chart: string, dataUrl: string): Promise<boolean> {
  const bytes = pngBytes(dataUrl);
  if (!bytes) {
    void vscode.window.showErrorMessage(`Batch Advisor: the ${chart} chart could not be saved: the panel sent no PNG image.`);
    return false;
  }
  const base = dir ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const target = await vscode.window.showSaveDialog({
    title: `Save the ${chart} chart as PNG`,
    saveLabel: 'Save PNG',
    filters: { 'PNG image': ['png'] },
    ...(base ? { defaultUri: vscode.Uri.file(join(base, `${chart}.png`)) } : {}),
  });
  if (!target) return false;
  try {
    await vscode.workspace.fs.writeFile(target, bytes);
  } catch (e) {
    void vscode.window.showErrorMessage(`Batch Advisor: could not write ${target.fsPath}: ${classifyError(e).message}`);
    return false;
  }
  void vscode.window.showInformationMessage(`Batch Advisor: saved the ${chart} chart to ${target.fsPath}.`, 'Open').then((a) => {
    if (a === 'Open') void vscode.commands.executeCommand('vscode.open', target);
  });
  return true;
}
