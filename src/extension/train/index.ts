/**
 * Everything training adds to the editor, registered in one place: the Train command, the
 * training panels, the runs view and the status-bar item.
 */
import * as vscode from 'vscode';
import { COMMANDS } from '../../core/shared/constants';
import type { BatchAdvisor } from '../context';
import { TrainCommand, type LiveRunListener } from './command';
import { RunPanels } from './panels';
import { RunsView } from './runs-view';
import { SHOW_LIVE_RUN_COMMAND, TrainStatusBar } from './status-bar';

export const STOP_TRAINING_COMMAND = 'batchAdvisor.stopTraining';

export class Training implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];

  constructor(ctx: BatchAdvisor) {
    const panels = new RunPanels(ctx);
    const statusBar = new TrainStatusBar();
    const view = new RunsView(ctx, panels);
    const listeners: LiveRunListener[] = [statusBar, view];
    const command = new TrainCommand(ctx, panels, { onLiveRun: (r) => listeners.forEach((l) => l.onLiveRun(r)) });
    // The command last: disposed first, so a run interrupted by a reload is recorded before the rest goes.
    this.disposables.push(
      panels,
      statusBar,
      view,
      command,
      vscode.commands.registerCommand(COMMANDS.train, (arg?: unknown) => command.run(arg)),
      vscode.commands.registerCommand(SHOW_LIVE_RUN_COMMAND, () => command.showLive()),
      vscode.commands.registerCommand(STOP_TRAINING_COMMAND, () => command.stopLive()),
    );
  }

  dispose(): void {
    for (const d of this.disposables.splice(0).reverse()) d.dispose();
  }
}
