/**
 * The open training panels: the live run's panel, and panels of past runs (replayed from their
 * metrics.jsonl alone) or of several runs compared. Routes the panels' buttons: Stop and Retry to
 * the training command, Export CSV here.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as vscode from 'vscode';
import { metricsCsv, readRun, RUN_FILES } from '../../core/run-folder/runs';
import { readRunMeta } from '../../core/run-folder/run-meta';
import { classifyError } from '../../core/shared/errors';
import { restoredRunDirs, statusFromEnd, type PanelRun, type PanelRunInfo } from '../../core/shared/train-webview-protocol';
import type { TrainEvent } from '../../core/shared/protocol';
import type { FeatureHost } from '../host';
import { TrainPanel, type TrainPanelEvents } from './panel';
import { datasetRoots } from './evaluation-host';
import { saveChartPng } from './png-export';

/** A panel's title: the live run's, one past run's, or the runs compared. */
function panelTitle(live: boolean, names: string[]): string {
  return live ? `Training: ${names[0]}` : names.length === 1 ? `Run: ${names[0]}` : `Compare: ${names.join(', ')}`;
}

function configOf(dir: string): Record<string, unknown> | undefined {
  try {
    return readRun(dir).config as unknown as Record<string, unknown>;
  } catch {
    return undefined; // no table row for a config that cannot be read; the panel still shows the run
  }
}

export interface LiveRunHandlers {
  /** The run folder of the live run, if `runId` is it. */
  liveRunDir(runId: string): string | undefined;
  stop(runId: string): void;
  retry(runId: string, runDir: string | undefined): void;
}

export class RunPanels implements vscode.Disposable {
  private readonly panels = new Set<TrainPanel>();
  /** Run folders by run id, for every run shown in a panel. */
  private readonly dirs = new Map<string, string>();
  /** Names given to runs while shown (a live run's status updates keep the given name). */
  private readonly names = new Map<string, string>();
  private readonly livePanels = new WeakSet<TrainPanel>();
  handlers: LiveRunHandlers | undefined;

  constructor(private readonly ctx: FeatureHost) {}

  /** Opens a panel for a run that is starting now; returns it for live updates. */
  openLive(runDir: string, info: PanelRunInfo): TrainPanel {
    this.dirs.set(info.id, runDir);
    // A resumed run's earlier panel gives way to the live one (one panel per run, not two).
    const earlier = this.panelShowing(info.id);
    if (earlier) this.close(earlier);
    const config = configOf(runDir);
    // A resumed run's panel starts with what the run folder holds; a new run's holds nothing yet.
    const panel = this.open(panelTitle(true, [info.name]), [{ ...info, events: eventsOnDisk(runDir), ...(config ? { config } : {}) }]);
    this.livePanels.add(panel);
    return panel;
  }

  /** Shows runs from their folders (one run, or several compared). A live run's panel is revealed. */
  openRuns(dirs: string[]): void {
    if (dirs.length === 1) {
      const existing = this.panelShowing(basename(dirs[0]!));
      if (existing) return existing.reveal();
    }
    const runs: PanelRun[] = [];
    for (const dir of dirs) {
      try {
        runs.push(this.fromDisk(dir));
      } catch (e) {
        void vscode.window.showErrorMessage(`Batch Advisor: cannot read the run in ${dir}: ${classifyError(e).message}`);
        return;
      }
    }
    if (!runs.length) return;
    this.open(panelTitle(false, runs.map((r) => r.name)), runs).reveal();
  }

  /** The panel showing exactly this one run, if open. */
  panelShowing(runId: string): TrainPanel | undefined {
    return [...this.panels].find((p) => p.runIds.length === 1 && p.runIds[0] === runId);
  }

  /** Sends a live run's events / status to every panel that shows it. */
  append(runId: string, events: TrainEvent[]): void {
    for (const p of this.panels) if (p.runIds.includes(runId)) p.append(runId, events);
  }

  setStatus(info: PanelRunInfo): void {
    const name = this.names.get(info.id);
    for (const p of this.panels) if (p.runIds.includes(info.id)) p.setStatus(name ? { ...info, name } : info);
  }

  /** A run was renamed: its panels' headers, tables and titles say the new name. */
  rename(runId: string, name: string): void {
    this.names.set(runId, name);
    for (const p of this.panels) {
      if (!p.runIds.includes(runId)) continue;
      p.rename(runId, name);
      p.retitle(panelTitle(this.livePanels.has(p), p.runNames));
    }
  }

  /** Runs deleted from disk: their panels close (nothing there to export or replay any more). */
  closeRuns(runIds: readonly string[]): void {
    for (const p of [...this.panels]) if (p.runIds.some((id) => runIds.includes(id))) this.close(p);
  }

  private close(p: TrainPanel): void {
    this.panels.delete(p);
    p.dispose();
  }

  exportCsv(runDir: string): string {
    const run = readRun(runDir);
    const out = join(runDir, 'metrics.csv');
    writeFileSync(out, metricsCsv(run.events));
    return out;
  }

  private fromDisk(dir: string): PanelRun {
    const run = readRun(dir);
    const id = basename(dir);
    this.dirs.set(id, dir);
    const live = this.handlers?.liveRunDir(id) !== undefined;
    const name = readRunMeta(dir).name ?? run.config.name;
    return { id, name, live, ...statusFromEnd(run.runEnd, live), events: run.events, config: run.config as unknown as Record<string, unknown> };
  }

  private open(title: string, runs: PanelRun[], restored?: vscode.WebviewPanel): TrainPanel {
    const dirs = runs.map((r) => this.dirs.get(r.id)).filter((d): d is string => d !== undefined);
    const events: TrainPanelEvents = {
      onMessage: (m) => void this.onMessage(m),
      onDispose: () => this.panels.delete(panel),
    };
    const panel: TrainPanel = restored
      ? TrainPanel.restore(restored, this.ctx.extensionUri, this.ctx.log, title, runs, events, datasetRoots(dirs), dirs)
      : TrainPanel.create(this.ctx.extensionUri, this.ctx.log, title, runs, events, datasetRoots(dirs), dirs);
    this.panels.add(panel);
    return panel;
  }

  /**
   * A training panel VS Code brings back after a window reload: its runs read again from their
   * folders (a run that was live then has been recorded as stopped). Folders gone since close it.
   */
  restore(webviewPanel: vscode.WebviewPanel, state: unknown): void {
    const dirs = (restoredRunDirs(state) ?? []).filter((d) => existsSync(join(d, RUN_FILES.config)));
    const runs: PanelRun[] = [];
    for (const dir of dirs) {
      try {
        runs.push(this.fromDisk(dir));
      } catch (e) {
        this.ctx.log.warn(`Training panel: cannot restore the run in ${dir}: ${classifyError(e).message}`);
      }
    }
    if (!runs.length) {
      this.ctx.log.info('Training panel: nothing to restore (its runs are gone)');
      webviewPanel.dispose();
      return;
    }
    this.ctx.log.info(`Training panel restored: ${runs.map((r) => r.id).join(', ')}`);
    this.open(panelTitle(false, runs.map((r) => r.name)), runs, webviewPanel);
  }

  private async onMessage(m: Parameters<TrainPanelEvents['onMessage']>[0]): Promise<void> {
    const dir = this.dirs.get(m.runId);
    if (m.type === 'stop') return this.handlers?.stop(m.runId);
    if (m.type === 'retry') return this.handlers?.retry(m.runId, dir);
    if (m.type === 'export-png') return void (await saveChartPng(dir, m.chart, m.dataUrl));
    if (!dir) return;
    try {
      const out = this.exportCsv(dir);
      this.ctx.log.info(`Exported ${out}`);
      await vscode.window.showTextDocument(vscode.Uri.file(out), { preview: false, viewColumn: vscode.ViewColumn.Active });
    } catch (e) {
      void vscode.window.showErrorMessage(`Batch Advisor: could not export ${join(dir, RUN_FILES.metrics)}: ${classifyError(e).message}`);
    }
  }

  dispose(): void {
    for (const p of [...this.panels]) p.dispose();
    this.panels.clear();
  }
}

function eventsOnDisk(runDir: string): TrainEvent[] {
  try {
    return readRun(runDir).events;
  } catch {
    return [];
  }
}
