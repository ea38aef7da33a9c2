/** The status-bar item shown while a run is live: "Training mnist-cnn · epoch 2/3"; click → its panel. */
import * as vscode from 'vscode';
import type { LiveRunListener } from './command';
import { COMMANDS } from '../../core/shared/constants';

export class TrainStatusBar implements vscode.Disposable, LiveRunListener {
  /** Created with the first live run (nothing to do at activation). */
  private created: vscode.StatusBarItem | undefined;

  private get item(): vscode.StatusBarItem {
    if (!this.created) {
      this.created = vscode.window.createStatusBarItem('batchAdvisor.training', vscode.StatusBarAlignment.Left, 50);
      this.created.name = 'Batch Advisor training';
      this.created.command = COMMANDS.showLiveRun;
    }
    return this.created;
  }

  onLiveRun(run: Parameters<LiveRunListener['onLiveRun']>[0]): void {
    if (!run) {
      this.created?.hide();
      return;
    }
    const progress = run.info.status === 'starting' ? 'starting' : `epoch ${run.epoch}/${run.epochs}`;
    this.item.text = `$(pulse) Training ${run.info.name} · ${progress}`;
    this.item.tooltip = `Batch Advisor: ${run.info.id} is training. Click to show its panel.`;
    this.item.show();
  }

  dispose(): void {
    this.created?.dispose();
  }
}
