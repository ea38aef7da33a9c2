/**
 * "Batch Advisor: Train with Config" (`batchAdvisor.train`): a small entry point until the training
 * panel exists. Starts a run through the TrainerClient with a cancellable progress notification
 * (epoch / step / loss) and logs to the channel. Disabled in Restricted Mode, with an explanation.
 */
import { dirname } from 'node:path';
import * as vscode from 'vscode';
import { loadConfigFile, type TrainConfig } from '../../core/config';
import { formatDuration } from '../../core/format';
import type { RunEndEvent, TrainEvent } from '../../core/protocol';
import { createRunDir } from '../../core/runs';
import { suggest } from '../../core/suggest';
import { TrainerClient } from '../../core/trainer-client';
import type { BatchAdvisor } from '../context';
import { readSettings } from '../settings';
import { CONFIG_SUFFIX, isConfigPath } from '../suggest/target';

export const RESTRICTED_TRAINING_MESSAGE =
  'Training is disabled in Restricted Mode: a run executes code and loads files from this workspace. Trust the workspace to enable it (Batch size suggestions still work).';

export class TrainCommand implements vscode.Disposable {
  private client: TrainerClient | undefined;
  /** Epochs of the run in progress (from its run-start), for "epoch 2/10". */
  private epochs = 0;

  constructor(private readonly ctx: BatchAdvisor) {}

  async run(arg?: unknown): Promise<void> {
    if (!vscode.workspace.isTrusted) {
      this.ctx.log.info('Train: refused in Restricted Mode');
      const choice = await vscode.window.showWarningMessage(RESTRICTED_TRAINING_MESSAGE, 'Manage Workspace Trust');
      if (choice) await vscode.commands.executeCommand('workbench.trust.manage');
      return;
    }
    if (this.client?.training) {
      void vscode.window.showInformationMessage('Batch Advisor: a training run is already in progress (cancel it from its notification first).');
      return;
    }
    const configPath = await pickConfig(arg);
    if (!configPath) return;

    let config: TrainConfig;
    try {
      config = loadConfigFile(configPath);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.ctx.log.warn(`Train: ${message}`);
      void vscode.window.showErrorMessage(`Batch Advisor: ${message}`);
      return;
    }
    const settings = readSettings();
    if (config.backend === 'auto' && settings.backend !== 'auto') config.backend = settings.backend;
    const trainerScript = vscode.Uri.joinPath(this.ctx.extensionUri, 'dist', 'trainer.js').fsPath;
    const workspaceRoot = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(configPath))?.uri.fsPath ?? dirname(configPath);

    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Batch Advisor: training ${config.name}`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        let client: TrainerClient | undefined;
        const sub = token.onCancellationRequested(() => {
          this.ctx.log.info('Train: stop requested');
          abort.abort();
          client?.stop();
        });
        try {
          let batchSize: number;
          if (config.batchSize === 'auto') {
            progress.report({ message: 'Choosing the batch size…' });
            const report = await suggest(
              { config },
              {
                trainerScript,
                signal: abort.signal,
                headroom: settings.headroom,
                ...(settings.deviceMemoryGiB !== undefined ? { deviceMemoryGiB: settings.deviceMemoryGiB } : {}),
                log: (line) => this.ctx.log.info(line),
              },
            );
            batchSize = report.recommendation.batchSize;
            this.ctx.log.info(`Train: batch size "auto" → ${batchSize}`);
          } else {
            batchSize = config.batchSize;
          }
          if (abort.signal.aborted) return;

          const runDir = createRunDir(workspaceRoot, config);
          this.ctx.log.info(`Train: run folder ${runDir}`);
          client = new TrainerClient({
            trainerScript,
            ...(settings.tfjsNodePath ? { env: { BATCH_ADVISOR_TFJS_NODE_PATH: settings.tfjsNodePath } } : {}),
            onLog: (e) => this.ctx.log[e.level](`[trainer] ${e.message}`),
          });
          this.client = client;
          progress.report({ message: `Starting (batch size ${batchSize})…` });
          const end: RunEndEvent = await client.train({ config, runDir, batchSize }, (e) => this.onEvent(e, progress));
          this.reportEnd(end, runDir);
        } catch (e) {
          if (e instanceof Error && e.name === 'AbortError') {
            this.ctx.log.info('Train: cancelled before the run started');
            return;
          }
          const message = e instanceof Error ? e.message : String(e);
          this.ctx.log.error(`Train failed: ${message}`);
          void vscode.window.showErrorMessage(`Batch Advisor: training failed: ${message}`, 'Show Log').then((c) => c && this.ctx.log.show(true));
        } finally {
          sub.dispose();
          client?.dispose();
          if (this.client === client) this.client = undefined;
        }
      },
    );
  }

  private onEvent(e: TrainEvent, progress: vscode.Progress<{ message?: string }>): void {
    switch (e.type) {
      case 'run-start':
        this.epochs = e.epochs;
        this.ctx.log.info(`Train: ${e.backend} backend, batch ${e.batchSize}×${e.accumulationSteps}, ${e.epochs} epochs × ${e.stepsPerEpoch} steps, ${e.trainImages} train / ${e.validationImages} validation images (${e.loading})`);
        break;
      case 'batch':
        progress.report({ message: `epoch ${e.epoch}${this.epochs ? `/${this.epochs}` : ''} · step ${e.step}/${e.stepsPerEpoch} · loss ${e.loss.toFixed(4)} · ${e.imagesPerSec.toFixed(1)} img/s · ${formatDuration(e.etaSec)} left` });
        if (e.step === 1 || e.step % 50 === 0) this.ctx.log.debug(`epoch ${e.epoch} step ${e.step}/${e.stepsPerEpoch} loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(3)}`);
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
        break; // already logged through the client's onLog
      case 'run-end':
        break;
    }
  }

  private reportEnd(end: RunEndEvent, runDir: string): void {
    this.ctx.log.info(`Train: run ${end.status}${end.message ? `: ${end.message}` : ''} (${runDir})`);
    if (end.status === 'completed') void vscode.window.showInformationMessage(`Batch Advisor: training finished. Run saved in ${runDir}.`);
    else if (end.status === 'stopped') void vscode.window.showInformationMessage(`Batch Advisor: training stopped. Run saved in ${runDir}.`);
    else {
      const hint = end.suggestedBatchSize ? ` Try batch size ${end.suggestedBatchSize}.` : '';
      void vscode.window.showErrorMessage(`Batch Advisor: training failed: ${end.message ?? 'unknown error'}.${hint}`, 'Show Log').then((c) => c && this.ctx.log.show(true));
    }
  }

  dispose(): void {
    this.client?.dispose();
    this.client = undefined;
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
