/**
 * "Batch Advisor: Train with Config" (`batchAdvisor.train`): runs the shared training flow
 * (plan → run folder → trainer) with a cancellable progress notification (epoch / step / loss) and
 * logs to the channel. One run at a time, from the moment the command starts (planning included).
 * Disabled in Restricted Mode, with an explanation.
 */
import { dirname } from 'node:path';
import * as vscode from 'vscode';
import { loadConfigFile, type TrainConfig } from '../../core/config';
import { classifyError } from '../../core/shared/errors';
import { formatDuration } from '../../core/shared/format';
import { describeBatch } from '../../core/shared/plan';
import type { RunEndEvent, TrainEvent } from '../../core/shared/protocol';
import { TrainFlow, type TrainPhase } from '../../core/train-flow';
import type { BatchAdvisor } from '../context';
import { readSettings } from '../settings';
import { CONFIG_SUFFIX, isConfigPath } from '../suggest/target';

export const RESTRICTED_TRAINING_MESSAGE =
  'Training is disabled in Restricted Mode: a run executes code and loads files from this workspace. Trust the workspace to enable it (Batch size suggestions still work).';

export const ALREADY_TRAINING_MESSAGE = 'Batch Advisor: a training run is already being prepared or in progress. Stop it from its notification first.';

export class TrainCommand implements vscode.Disposable {
  /** The run being planned or trained; set before the first await so a second Train is refused. */
  private flow: TrainFlow | undefined;
  private busy = false;
  /** Epochs of the run in progress (from its plan), for "epoch 2/10". */
  private epochs = 0;

  constructor(private readonly ctx: BatchAdvisor) {}

  async run(arg?: unknown): Promise<void> {
    if (!vscode.workspace.isTrusted) {
      this.ctx.log.info('Train: refused in Restricted Mode');
      const choice = await vscode.window.showWarningMessage(RESTRICTED_TRAINING_MESSAGE, 'Manage Workspace Trust');
      if (choice) await vscode.commands.executeCommand('workbench.trust.manage');
      return;
    }
    if (this.busy) {
      this.ctx.log.info('Train: refused, a run is already being prepared or in progress');
      void vscode.window.showWarningMessage(ALREADY_TRAINING_MESSAGE);
      return;
    }
    this.busy = true;
    try {
      await this.runOnce(arg);
    } finally {
      this.busy = false;
    }
  }

  private async runOnce(arg: unknown): Promise<void> {
    const configPath = await pickConfig(arg);
    if (!configPath) return;

    let config: TrainConfig;
    const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(configPath));
    const settings = readSettings(folder);
    try {
      config = loadConfigFile(configPath);
    } catch (e) {
      const { message } = classifyError(e);
      this.ctx.log.warn(`Train: ${message}`);
      void vscode.window.showErrorMessage(`Batch Advisor: ${message}`);
      return;
    }
    if (config.backend === 'auto' && settings.backend !== 'auto') config = { ...config, backend: settings.backend };
    const trainerScript = vscode.Uri.joinPath(this.ctx.extensionUri, 'dist', 'trainer.js').fsPath;
    const workspaceRoot = folder?.uri.fsPath ?? dirname(configPath);

    const flow = new TrainFlow({
      config,
      trainerScript,
      workspaceRoot,
      headroom: settings.headroom,
      ...(settings.deviceMemoryGiB !== undefined ? { deviceMemoryGiB: settings.deviceMemoryGiB } : {}),
      ...(settings.tfjsNodePath ? { env: { BATCH_ADVISOR_TFJS_NODE_PATH: settings.tfjsNodePath } } : {}),
      onLog: (level, message) => this.ctx.log[level](`[trainer] ${message}`),
      onPlan: (plan, runDir) => {
        this.epochs = plan.epochs;
        this.ctx.log.info(`Train: plan batch ${describeBatch(plan)}, lr ${plan.learningRate.value}, warmup ${plan.warmup.steps} steps, ${plan.loading.strategy} (${plan.basis.kind}); run folder ${runDir}`);
        for (const w of plan.warnings) this.ctx.log.warn(`Train: ${w}`);
      },
    });
    this.flow = flow;

    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Batch Advisor: training ${config.name}`, cancellable: true },
      async (progress, token) => {
        const sub = token.onCancellationRequested(() => {
          this.ctx.log.info('Train: stop requested');
          flow.stop();
        });
        try {
          const phaseMessages: Partial<Record<TrainPhase, string>> = { planning: 'Choosing the batch size…', starting: 'Starting the trainer…' };
          const { runDir, end } = await flow.run({
            onPhase: (phase) => phaseMessages[phase] && progress.report({ message: phaseMessages[phase] }),
            onEvent: (e) => this.onEvent(e, progress),
          });
          this.reportEnd(end, runDir);
        } catch (e) {
          const { kind, message } = classifyError(e);
          if (kind === 'cancelled') {
            this.ctx.log.info('Train: cancelled before the run started (no run folder was created)');
            return;
          }
          this.ctx.log.error(`Train failed: ${message}`);
          const text = kind === 'bad-input' ? `Batch Advisor: ${message}` : `Batch Advisor: training failed: ${message}`;
          void vscode.window.showErrorMessage(text, 'Show Log').then((c) => c && this.ctx.log.show(true));
        } finally {
          sub.dispose();
          if (this.flow === flow) this.flow = undefined;
        }
      },
    );
  }

  private onEvent(e: TrainEvent, progress: vscode.Progress<{ message?: string }>): void {
    switch (e.type) {
      case 'run-start':
        this.ctx.log.info(`Train: ${e.backend} backend, batch ${describeBatch(e.plan)}, ${e.plan.epochs} epochs × ${e.stepsPerEpoch} steps, ${e.trainImages} train / ${e.validationImages} validation images (${e.plan.loading.strategy})`);
        break;
      case 'batch':
        progress.report({ message: `epoch ${e.epoch}${this.epochs ? `/${this.epochs}` : ''} · step ${e.step}/${e.stepsPerEpoch} · loss ${e.loss.toFixed(4)} · ${e.imagesPerSec.toFixed(1)} img/s · ${formatDuration(e.etaSec)} left` });
        if (e.step === 1 || e.step % 50 === 0) this.ctx.log.debug(`epoch ${e.epoch} step ${e.step}/${e.stepsPerEpoch} loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(3)} lr ${e.learningRate.toPrecision(3)}`);
        break;
      case 'epoch':
        this.ctx.log.info(
          `Train: epoch ${e.epoch} loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(3)}${e.valLoss !== null ? ` val_loss ${e.valLoss.toFixed(4)}` : ''}${e.valAccuracy !== null ? ` val_acc ${e.valAccuracy.toFixed(3)}` : ''} (${formatDuration(e.durationMs / 1000)})`,
        );
        break;
      case 'skipped-file':
        this.ctx.log.warn(`Train: skipped ${e.path}: ${e.reason}`);
        break;
      case 'backend':
        for (const s of e.skipped) this.ctx.log.info(`Train: backend ${s.name} skipped: ${s.reason}`);
        break;
      case 'log':
      case 'run-end':
        break; // logged through onLog / reportEnd
    }
  }

  private reportEnd(end: RunEndEvent, runDir: string): void {
    this.ctx.log.info(`Train: run ${end.status}${end.message ? `: ${end.message}` : ''} (${runDir})`);
    if (end.status === 'completed') void vscode.window.showInformationMessage(`Batch Advisor: training finished. Run saved in ${runDir}.`);
    else if (end.status === 'stopped') void vscode.window.showInformationMessage(`Batch Advisor: training stopped. Run saved in ${runDir}.`);
    else {
      const hint = end.suggestedBatchSize ? ` Try batch size ${end.suggestedBatchSize}.` : '';
      const text = end.error === 'bad-input' ? `Batch Advisor: ${end.message ?? 'bad input'}` : `Batch Advisor: training failed: ${end.message ?? 'unknown error'}.${hint}`;
      void vscode.window.showErrorMessage(text, 'Show Log').then((c) => c && this.ctx.log.show(true));
    }
  }

  dispose(): void {
    this.flow?.kill();
    this.flow = undefined;
  }
}

async function pickConfig(arg: unknown): Promise<string | undefined> {
  if (arg instanceof vscode.Uri && arg.scheme === 'file' && isConfigPath(arg.fsPath)) return arg.fsPath;
  const active = vscode.window.activeTextEditor?.document;
  if (active && active.uri.scheme === 'file' && isConfigPath(active.uri.fsPath)) {
    if (active.isDirty) await active.save();
    return active.uri.fsPath;
  }
  const files = (await vscode.workspace.findFiles(`**/*${CONFIG_SUFFIX}`, '**/{node_modules,.git,.batch-advisor}/**', 50)).filter((u) => u.scheme === 'file');
  if (files.length === 1) return files[0]!.fsPath;
  if (files.length === 0) {
    void vscode.window.showInformationMessage(`Batch Advisor: no *${CONFIG_SUFFIX} config in this workspace. Create one (see samples/mnist.train.json) and run the command again.`);
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(
    files.map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u })),
    { title: 'Batch Advisor: train with which config?' },
  );
  return pick?.uri.fsPath;
}
