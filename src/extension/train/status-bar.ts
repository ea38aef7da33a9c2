/** The status-bar item shown while a run is live: "Training mnist-cnn · epoch 2/3"; click → its panel. */
import * as vscode from 'vscode';
import type { LiveRunListener } from './command';

export const SHOW_LIVE_RUN_COMMAND = 'batchAdvisor.showLiveRun';

export class TrainStatusBar implements vscode.Disposable, LiveRunListener {
  private readonly item = vscode.window.createStatusBarItem('batchAdvisor.training', vscode.StatusBarAlignment.Left, 50);

  constructor() {
    this.item.name = 'Batch Advisor training';
    this.item.command = SHOW_LIVE_RUN_COMMAND;
  }

  onLiveRun(run: Parameters<LiveRunListener['onLiveRun']>[0]): void {
    if (!run) {
      this.item.hide();
      return;
    }
    const progress = run.info.status === 'starting' ? 'starting' : `epoch ${run.epoch}/${run.epochs}`;
    this.item.text = `$(pulse) Training ${run.info.name} · ${progress}`;
    this.item.tooltip = `Batch Advisor: ${run.info.id} is training. Click to show its panel.`;
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}
