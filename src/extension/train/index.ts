/**
 * Everything training adds to the editor, registered in one place: the Train command, the
 * training panels, the runs view and the status-bar item. The view and the status bar are there
 * from activation; the Train command's module (the training flow, the trainer client) is imported
 * when it first runs (issue #12's lazy loading).
 */
import * as vscode from 'vscode';
import { COMMANDS } from '../../core/shared/constants';
import { TRAIN_VIEW_TYPE } from '../../core/shared/train-webview-protocol';
import type { FeatureHost } from '../host';
import type { LiveRunListener, TrainCommand } from './command';
import { RunPanels } from './panels';
import { RunsView } from './runs-view';
import { TrainStatusBar } from './status-bar';


export class Training implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private command: Promise<TrainCommand> | undefined;

  constructor(private readonly ctx: FeatureHost) {
    const panels = new RunPanels(ctx);
    const statusBar = new TrainStatusBar();
    const view = new RunsView(ctx, panels);
    const listeners: LiveRunListener[] = [statusBar, view];
    const listener: LiveRunListener = { onLiveRun: (r) => listeners.forEach((l) => l.onLiveRun(r)) };
    const command = (): Promise<TrainCommand> =>
      (this.command ??= (async () => {
        const started = performance.now();
        const c = new (await import('./command.js')).TrainCommand(ctx, panels, listener); // sets panels.handlers
        // Pushed last: disposed first, so a run interrupted by a reload is recorded before the rest goes.
        this.disposables.push(c);
        this.ctx.log.info(`Train: loaded on first use in ${(performance.now() - started).toFixed(1)} ms`);
        return c;
      })());
    // Until the command is loaded no run is live here; Retry on a past run's panel loads it.
    panels.handlers = { liveRunDir: () => undefined, stop: () => undefined, retry: (id, dir) => void command().then((c) => c.retryRun(id, dir)) };
    this.disposables.push(
      panels,
      statusBar,
      view,
      // Training panels come back after a window reload, read again from their run folders.
      vscode.window.registerWebviewPanelSerializer(TRAIN_VIEW_TYPE, { deserializeWebviewPanel: async (panel, state) => panels.restore(panel, state) }),
      vscode.commands.registerCommand(COMMANDS.train, async (arg?: unknown) => (await command()).run(arg)),
      vscode.commands.registerCommand(COMMANDS.resumeRun, async (item?: { run?: { dir?: string } }) => {
        const dir = item?.run?.dir;
        if (dir) await (await command()).resume(dir);
      }),
      vscode.commands.registerCommand(COMMANDS.showLiveRun, async () => this.command && (await this.command).showLive()),
      vscode.commands.registerCommand(COMMANDS.stopTraining, async () => this.command && (await this.command).stopLive()),
    );
  }

  dispose(): void {
    for (const d of this.disposables.splice(0).reverse()) d.dispose();
  }
}
