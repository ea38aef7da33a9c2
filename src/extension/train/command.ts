/**
 * "Batch Advisor: Train with Config" (`batchAdvisor.train`): runs the shared training flow
 * (plan → run folder → trainer) and shows the run live in a training panel (Stop, status, plan,
 * charts), with a status-bar item while it runs. One run at a time, from the moment the command
 * starts (planning included). An out-of-memory failure offers "Retry at batch N" (the panel's
 * button starts the same config again with that batch). Disabled in Restricted Mode.
 *
 * Window reload or close mid-run: the trainer (a child of the extension host) is ended with the
 * host; the run folder gets a final "stopped" line saying why, so the run reads as stopped, with
 * its metrics so far, in the runs view after the reload.
 */
import { basename, dirname, join } from 'node:path';
import * as vscode from 'vscode';
import { loadConfigFile, withOverrides, type TrainConfig } from '../../core/config';
import { markRunInterrupted, readRun } from '../../core/run-folder/runs';
import { readResumePoint, readRunConfig, ResumeError, runWorkspace, type ResumePoint } from '../../core/run-folder/resume';
import { classifyError } from '../../core/shared/errors';
import { formatDuration } from '../../core/shared/format';
import { describeBatch } from '../../core/shared/plan';
import type { RunEndEvent, TrainEvent } from '../../core/shared/protocol';
import { statusFromEnd, type PanelRunInfo } from '../../core/shared/train-webview-protocol';
import { TrainFlow } from '../../core/process/train-flow';
import type { FeatureHost } from '../host';
import { readSettings } from '../settings';
import { isConfigPath } from '../suggest/target';
import type { RunPanels } from './panels';
import { CONFIG_SUFFIX } from '../../core/shared/constants';
export const RESTRICTED_TRAINING_MESSAGE =
  'Training is disabled in Restricted Mode: a run executes code and loads files from this workspace. Trust the workspace to enable it (Batch size suggestions still work).';

export const ALREADY_TRAINING_MESSAGE = 'Batch Advisor: a training run is already being prepared or in progress. Stop it from its panel (or the status bar item) first.';

export const RELOAD_STOP_MESSAGE = 'The editor window was closed or reloaded while training: the run stopped there. Its metrics up to then are kept.';

/** What a live run tells the status bar and the runs view. */
export interface LiveRunListener {
  onLiveRun(run: { info: PanelRunInfo; runDir: string; epoch: number; epochs: number } | undefined): void;
}

interface LiveRun {
  flow: TrainFlow;
  configPath: string;
  runDir?: string;
  info?: PanelRunInfo;
  epochs: number;
}

export class TrainCommand implements vscode.Disposable {
  /** The run being planned or trained; set before the first await so a second Train is refused. */
  private live: LiveRun | undefined;
  private busy = false;
  /** Config file of each run started in this window (for Retry). */
  private readonly configOf = new Map<string, string>();

  constructor(
    private readonly ctx: FeatureHost,
    private readonly panels: RunPanels,
    private readonly listener: LiveRunListener,
  ) {
    panels.handlers = {
      liveRunDir: (runId) => (this.live?.info?.id === runId ? this.live.runDir : undefined),
      stop: (runId) => {
        if (this.live?.info?.id !== runId) return;
        this.ctx.log.info('Train: stop requested from the panel');
        this.live.flow.stop();
      },
      retry: (runId, runDir) => void this.retryRun(runId, runDir),
    };
  }

  /** The live run's panel, revealed (the status bar item's click). */
  showLive(): void {
    const id = this.live?.info?.id;
    if (id && this.live?.runDir) this.panels.openRuns([this.live.runDir]);
  }

  stopLive(): void {
    this.live?.flow.stop();
  }

  async run(arg?: unknown, overrides: Partial<Omit<TrainConfig, 'explicit'>> = {}, resume?: { runDir: string; epochs?: number }): Promise<void> {
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
      await this.runOnce(arg, overrides, resume);
    } finally {
      this.busy = false;
    }
  }

  async retryRun(runId: string, runDir: string | undefined): Promise<void> {
    const configPath = this.configOf.get(runId);
    const end = runDir ? readEnd(runDir) : undefined;
    const batch = end?.suggestedBatchSize;
    if (!configPath || !batch) {
      void vscode.window.showWarningMessage('Batch Advisor: this run cannot be retried from here (its config file is not known in this window). Set "batchSize" in the config and train again.');
      return;
    }
    this.ctx.log.info(`Train: retrying ${runId} at batch ${batch}`);
    await this.run(vscode.Uri.file(configPath), { batchSize: batch });
  }

  /**
   * "Resume Run" on a run of the runs view: its training continues (its recorded config and plan, from
   * the epoch after its last saved one). A run that trained every epoch asks how many epochs in all.
   */
  async resume(runDir: string): Promise<void> {
    let point: ResumePoint;
    try {
      point = readResumePoint(runDir);
    } catch (e) {
      const trained = e instanceof ResumeError ? e.trainedEpochs : undefined;
      if (trained === undefined) {
        void vscode.window.showErrorMessage(`Batch Advisor: ${classifyError(e).message}`);
        return;
      }
      const answer = await vscode.window.showInputBox({
        title: `Resume ${basename(runDir)}`,
        prompt: `Every epoch of this run (${trained}) is trained. Train to how many epochs in all?`,
        value: String(trained * 2),
        validateInput: (v) => (/^\d+$/.test(v.trim()) && Number(v) > trained ? undefined : `A whole number above ${trained}`),
      });
      if (!answer) return;
      return this.run(undefined, {}, { runDir, epochs: Number(answer) });
    }
    return this.run(undefined, {}, { runDir: point.runDir });
  }

  private async runOnce(arg: unknown, overrides: Partial<Omit<TrainConfig, 'explicit'>>, resume?: { runDir: string; epochs?: number }): Promise<void> {
    const configPath = resume ? join(resume.runDir, 'config.json') : await pickConfig(arg);
    if (!configPath) return;

    let config: TrainConfig;
    const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(configPath));
    const settings = readSettings(folder);
    try {
      config = resume ? readRunConfig(resume.runDir) : withOverrides(loadConfigFile(configPath), overrides);
    } catch (e) {
      const { message } = classifyError(e);
      this.ctx.log.warn(`Train: ${message}`);
      void vscode.window.showErrorMessage(`Batch Advisor: ${message}`);
      return;
    }
    if (config.backend === 'auto' && settings.backend !== 'auto') config = { ...config, backend: settings.backend };
    const trainerScript = vscode.Uri.joinPath(this.ctx.extensionUri, 'dist', 'trainer.js').fsPath;
    const workspaceRoot = resume ? runWorkspace(resume.runDir) : (folder?.uri.fsPath ?? dirname(configPath));

    const live: LiveRun = { configPath, epochs: 0 } as LiveRun;
    const flow = new TrainFlow({
      config,
      trainerScript,
      workspaceRoot,
      headroom: settings.headroom,
      // The probe chooses an automatic batch, as in the Suggest panel (whose trials the probe cache
      // hands over, so Train runs the plan the panel showed); a batch set in the config needs none.
      probe: config.probe ?? (settings.probe && config.batchSize === 'auto'),
      ...(settings.deviceMemoryGiB !== undefined ? { deviceMemoryGiB: settings.deviceMemoryGiB } : {}),
      ...(settings.tfjsNodePath ? { tfjsNodePath: settings.tfjsNodePath } : {}),
      ...(this.ctx.testHooks.run ? { test: this.ctx.testHooks.run } : {}),
      ...(resume ? { resume } : {}),
      onLog: (level, message) => this.ctx.log[level](`[trainer] ${message}`),
      onPlan: (plan, runDir) => {
        live.epochs = plan.epochs;
        live.runDir = runDir;
        this.ctx.log.info(`Train: plan batch ${describeBatch(plan)}, lr ${plan.learningRate.value}, warmup ${plan.warmup.steps} steps, ${plan.loading.strategy} (${plan.basis.kind}); run folder ${runDir}`);
        for (const w of plan.warnings) this.ctx.log.warn(`Train: ${w}`);
        const id = basename(runDir);
        this.configOf.set(id, configPath);
        live.info = { id, name: config.name, status: 'starting', live: true };
        this.panels.openLive(runDir, live.info);
        this.notify();
      },
    });
    live.flow = flow;
    this.live = live;

    try {
      // A status-bar spinner while checking and planning (before the panel exists).
      let started: () => void = () => undefined;
      const planned = new Promise<void>((r) => (started = r));
      void vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `Batch Advisor: planning ${config.name}` }, () => planned);
      const { runDir, end } = await flow
        .run({ onPhase: (phase) => phase !== 'checking' && phase !== 'planning' && started(), onEvent: (e) => this.onEvent(e) })
        .finally(() => started());
      this.reportEnd(end, runDir);
    } catch (e) {
      const { kind, message } = classifyError(e);
      if (kind === 'cancelled') {
        this.ctx.log.info('Train: cancelled before the run started (no run folder was created)');
        return;
      }
      this.ctx.log.error(`Train failed: ${message}`);
      if (live.info) this.setStatus({ ...live.info, status: 'failed', live: false, message });
      const text = kind === 'bad-input' ? `Batch Advisor: ${message}` : `Batch Advisor: training failed: ${message}`;
      void vscode.window.showErrorMessage(text, 'Show Log').then((c) => c && this.ctx.log.show(true));
    } finally {
      if (this.live === live) this.live = undefined;
      this.listener.onLiveRun(undefined);
    }
  }

  private setStatus(info: PanelRunInfo): void {
    if (this.live && this.live.info?.id === info.id) this.live.info = info;
    this.panels.setStatus(info);
    this.notify();
  }

  private epoch = 0;
  private notify(): void {
    const l = this.live;
    this.listener.onLiveRun(l?.info && l.runDir && l.info.live ? { info: l.info, runDir: l.runDir, epoch: this.epoch, epochs: l.epochs } : undefined);
  }

  private onEvent(e: TrainEvent): void {
    const info = this.live?.info;
    if (!info) return;
    if (e.type === 'batch' || e.type === 'epoch' || e.type === 'run-start' || e.type === 'run-end' || e.type === 'evaluation') this.panels.append(info.id, [e]);
    switch (e.type) {
      case 'run-start':
        this.ctx.log.info(`Train: ${e.backend} backend, batch ${describeBatch(e.plan)}, ${e.plan.epochs} epochs × ${e.stepsPerEpoch} steps, ${e.trainImages} train / ${e.validationImages} validation images (${e.plan.loading.strategy})`);
        this.epoch = 1;
        this.setStatus({ ...info, status: 'running' });
        break;
      case 'batch':
        if (e.epoch !== this.epoch) {
          this.epoch = e.epoch;
          this.notify();
        }
        if (e.step === 1 || e.step % 50 === 0) this.ctx.log.debug(`epoch ${e.epoch} step ${e.step}/${e.stepsPerEpoch} loss ${e.loss} acc ${e.accuracy} lr ${e.learningRate}`);
        break;
      case 'epoch':
        this.ctx.log.info(
          `Train: epoch ${e.epoch} loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(3)}${e.valLoss !== null ? ` val_loss ${e.valLoss.toFixed(4)}` : ''}${e.valAccuracy !== null ? ` val_acc ${e.valAccuracy.toFixed(3)}` : ''} (${formatDuration(e.durationMs / 1000)})`,
        );
        break;
      case 'skipped-file':
        this.ctx.log.warn(`Train: skipped ${e.path}: ${e.reason}`);
        break;
      case 'batch-growth':
        this.ctx.log.info(`Train: ${e.message}`);
        break;
      case 'backend':
        for (const s of e.skipped) this.ctx.log.info(`Train: backend ${s.name} skipped: ${s.reason}`);
        break;
      case 'run-end':
        this.setStatus({ id: info.id, name: info.name, live: false, ...statusFromEnd(e, false) });
        break;
      case 'log':
        break; // logged through onLog
    }
  }

  private reportEnd(end: RunEndEvent, runDir: string): void {
    this.ctx.log.info(`Train: run ${end.status}${end.message ? `: ${end.message}` : ''} (${runDir})`);
    if (end.status === 'completed') void vscode.window.showInformationMessage(`Batch Advisor: training finished${end.message ? ` (${end.message})` : ''}. Run saved in ${runDir}.`);
    else if (end.status === 'stopped') void vscode.window.showInformationMessage(`Batch Advisor: training stopped. Run saved in ${runDir}.`);
    else {
      const hint = end.suggestedBatchSize ? ` Use "Retry at batch ${end.suggestedBatchSize}" in its panel.` : '';
      const text = end.error === 'bad-input' ? `Batch Advisor: ${end.message ?? 'bad input'}` : `Batch Advisor: training failed: ${end.message ?? 'unknown error'}.${hint}`;
      void vscode.window.showErrorMessage(text, 'Show Log').then((c) => c && this.ctx.log.show(true));
    }
  }

  /** The window is closing or reloading: end the trainer now and record why in the run folder. */
  dispose(): void {
    const l = this.live;
    this.live = undefined;
    if (!l) return;
    // The client records the stop in the run folder when its run had started; otherwise (still
    // starting) it is recorded here.
    const recorded = l.flow.kill(RELOAD_STOP_MESSAGE);
    if (!recorded && l.runDir && l.info?.live) {
      try {
        markRunInterrupted(l.runDir, RELOAD_STOP_MESSAGE);
      } catch {
        // the folder may be gone; nothing to record
      }
    }
  }
}

function readEnd(runDir: string): RunEndEvent | undefined {
  try {
    return readRun(runDir).runEnd ?? undefined;
  } catch {
    return undefined;
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
