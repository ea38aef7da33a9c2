/**
 * The host side of the training panel's evaluation section: webview URIs for the thumbnails it
 * asks for, and opening an image it was clicked on — only for images the run's evaluation lists
 * (a crafted path from the webview is refused), from folders the panel may load
 * (localResourceRoots: the runs' dataset folders).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { RUN_FILES } from '../../core/run-folder/runs';
import type { TrainEvent } from '../../core/shared/protocol';
import type { ThumbnailsMessage } from '../../core/shared/train-webview-protocol';

/** Every image path the run's evaluations list (wrong images and the matrix's cells). */
export function evaluationPaths(events: readonly TrainEvent[]): Set<string> {
  const paths = new Set<string>();
  for (const e of events) {
    if (e.type !== 'evaluation') continue;
    for (const w of e.result.wrong) paths.add(w.path);
    for (const row of e.result.cells ?? []) for (const cell of row) for (const p of cell) paths.add(p);
  }
  return paths;
}

/** The dataset folders of these run folders (their config.json), as webview resource roots. */
export function datasetRoots(runDirs: readonly string[]): vscode.Uri[] {
  const roots: vscode.Uri[] = [];
  for (const dir of runDirs) {
    try {
      const dataset = (JSON.parse(readFileSync(join(dir, RUN_FILES.config), 'utf8')) as { dataset?: unknown }).dataset;
      if (typeof dataset === 'string' && dataset) roots.push(vscode.Uri.file(dataset));
    } catch {
      /* no config: no thumbnails for that run (paths are still listed) */
    }
  }
  return roots;
}

/** The webview URIs of the requested paths the run's evaluation lists. */
export function thumbnails(webview: vscode.Webview, runId: string, events: readonly TrainEvent[], paths: readonly string[]): ThumbnailsMessage {
  const allowed = evaluationPaths(events);
  const uris: Record<string, string> = {};
  for (const p of paths) if (allowed.has(p)) uris[p] = webview.asWebviewUri(vscode.Uri.file(p)).toString();
  return { type: 'thumbnails', runId, uris };
}

/** Opens an image of the run's evaluation in an editor (VS Code's image preview). */
export async function openEvaluatedImage(events: readonly TrainEvent[], path: string): Promise<boolean> {
  if (!evaluationPaths(events).has(path)) return false;
  await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(path), { preview: true, viewColumn: vscode.ViewColumn.Active });
  return true;
}
