/**
 * "Batch Advisor: Suggest Batch Size": picks what to analyse, runs the engine with a cancellable
 * progress notification, and shows working / result / cancelled / error in the Suggest panel.
 *
 * One suggestion runs at a time; starting another cancels the one in progress. Cancelling (the
 * notification's Cancel or the panel's) aborts the engine's AbortSignal, which stops the scan and
 * kills the trainer child.
 */
import * as vscode from 'vscode';
import { dirname, join } from 'node:path';
import { ConfigError, configForFolder, loadConfigFile, type TrainConfig } from '../../core/config';
import { isZooModel, ZOO_MODELS } from '../../core/shared/model';
import type { ProbeTrialResult } from '../../core/shared/probe';
import type { SuggestReport } from '../../core/shared/report';
import { PROBE_CACHE_FOLDER } from '../../core/probe/cache';
import { suggest } from '../../core/process/suggest';
import { backendLocation } from '../../core/planning/run-spec';
import { isPersistedState, revealablePaths, type SuggestViewState, type WebviewToHost } from '../../core/shared/webview-protocol';
import { configSuggestionFrom, recordSuggestion } from '../config/suggestions';
import type { FeatureHost } from '../host';
import { affectsPlan, readSettings, settingsFor, type Settings } from '../settings';
import type { WebviewCommon } from '../../core/shared/webview-channel';
import { SuggestPanel } from './panel';
import { resolveTarget, targetFromPath, type SuggestTarget } from './target';

/** Errors that are about the user's input: shown in the panel, not as an error notification. */
const INPUT_ERRORS = new Set(['ConfigError', 'DatasetInputError', 'SuggestInputError', 'RestrictedModeError']);

class RestrictedModeError extends Error {
  override readonly name = 'RestrictedModeError';
}

function isAbort(e: unknown): boolean {
  return e instanceof Error && e.name === 'AbortError';
}

export class SuggestController implements vscode.Disposable {
  private panel: SuggestPanel | undefined;
  private state: SuggestViewState = { kind: 'idle', seq: 0 };
  private current: AbortController | undefined;
  /** Skips the probe of the suggestion in progress (the panel's "Skip probe"). */
  private probeSkip: AbortController | undefined;
  private lastTarget: SuggestTarget | undefined;

  /** Restores the panel after a window reload (registered by the context). */
  readonly serializer: vscode.WebviewPanelSerializer<unknown> = {
    deserializeWebviewPanel: async (panel, persisted) => {
      let state: SuggestViewState = this.state;
      if (state.kind === 'idle' && isPersistedState(persisted)) {
        state = persisted.state;
        // The work a restored 'working' state describes died with the old window.
        if (state.kind === 'working') state = { kind: 'cancelled', seq: state.seq, target: state.target };
        this.state = state;
        if (state.kind !== 'idle') this.lastTarget = targetFromPath(state.target);
      }
      this.panel?.dispose();
      this.panel = SuggestPanel.adopt(panel, this.ctx.extensionUri, this.ctx.log, state, this.panelEvents());
      this.ctx.log.debug(`Suggest panel restored (${state.kind})`);
    },
  };

  constructor(private readonly ctx: FeatureHost) {}

  /** The command. `arg` is a Uri from a CodeLens or a menu, or nothing from the palette. */
  async run(arg?: unknown): Promise<void> {
    const settings = readSettings();
    let target: SuggestTarget | undefined;
    try {
      target = await resolveTarget(arg, settings);
    } catch (e) {
      this.ctx.log.error('Could not determine what to analyse', e);
      void vscode.window.showErrorMessage(`Batch Advisor: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (!target) {
      this.ctx.log.info('Suggest: no dataset picked.');
      return;
    }
    await this.suggestFor(target);
  }

  /** Settings changed: a shown suggestion whose plan they change is made again with the new values. */
  onSettingsChanged(e: vscode.ConfigurationChangeEvent): void {
    const target = this.lastTarget;
    if (!target || !this.panel || this.state.kind === 'working' || !affectsPlan(e, target.path)) return;
    this.ctx.log.info(`Suggest: settings changed for ${target.path}; suggesting again`);
    void this.suggestFor(target);
  }

  cancel(): void {
    if (this.current && !this.current.signal.aborted) {
      this.ctx.log.info('Suggest: cancel requested');
      this.current.abort();
    }
  }

  private setState(state: SuggestViewState): void {
    this.state = state;
    this.panel?.setState(state);
  }

  private nextSeq(): number {
    return this.state.seq + 1;
  }

  private showPanel(): void {
    if (this.panel) this.panel.reveal();
    else this.panel = SuggestPanel.create(this.ctx.extensionUri, this.ctx.log, this.state, this.panelEvents());
  }

  private panelEvents() {
    return {
      onMessage: (m: Exclude<WebviewToHost, WebviewCommon>) => this.onMessage(m),
      onDispose: () => {
        this.panel = undefined;
      },
    };
  }

  private onMessage(m: Exclude<WebviewToHost, WebviewCommon>): void {
    switch (m.type) {
      case 'cancel':
        this.cancel();
        return;
      case 'skip-probe':
        if (this.probeSkip && !this.probeSkip.signal.aborted) {
          this.ctx.log.info('Suggest: probe skipped');
          this.probeSkip.abort();
        }
        return;
      case 'rerun':
        if (this.lastTarget) void this.suggestFor(this.lastTarget);
        else void this.run();
        return;
      case 'reveal':
        // Untrusted input: only a path the panel shows may be opened.
        if (revealablePaths(this.state).has(m.path)) void this.reveal(m.path);
        else this.ctx.log.warn(`Suggest panel: refused to reveal ${JSON.stringify(m.path).slice(0, 200)} (not a path the panel shows)`);
        return;
    }
  }

  /** Opens a file the report mentions (images open in the image preview) and reveals it in the Explorer. */
  private async reveal(path: string): Promise<void> {
    const uri = vscode.Uri.file(path);
    try {
      const stat = await vscode.workspace.fs.stat(uri);
      const inWorkspace = vscode.workspace.getWorkspaceFolder(uri) !== undefined;
      if (stat.type & vscode.FileType.File) {
        await vscode.commands.executeCommand('vscode.open', uri, { preview: true, viewColumn: vscode.ViewColumn.One });
      }
      if (inWorkspace) await vscode.commands.executeCommand('revealInExplorer', uri);
      else if (stat.type & vscode.FileType.Directory) void vscode.window.showInformationMessage(`${path} is outside the workspace.`);
    } catch (e) {
      this.ctx.log.warn(`Cannot reveal ${path}: ${e instanceof Error ? e.message : String(e)}`);
      void vscode.window.showWarningMessage(`Batch Advisor: ${path} no longer exists.`);
    }
  }

  /** Builds the engine's config for a target, applying settings; throws input errors. */
  private configFor(target: SuggestTarget, settings: Settings): { config: TrainConfig; notes: string[] } {
    const notes: string[] = [];
    const config = target.kind === 'config' ? loadConfigFile(target.path) : configForFolder(target.path);
    if (config.backend === 'auto' && settings.backend !== 'auto') config.backend = settings.backend;
    if (!vscode.workspace.isTrusted) {
      if (!isZooModel(config.model)) {
        throw new RestrictedModeError(
          `Restricted Mode: ${config.configPath ?? target.path} uses your own model (${config.model}). Batch Advisor only describes its built-in models (${ZOO_MODELS.join(', ')}) in an untrusted workspace.`,
        );
      }
      config.backend = 'cpu';
      notes.push('Restricted Mode: the model is described from the built-in model zoo on the plain CPU backend; no code from this workspace runs. Training is disabled until you trust the workspace.');
    }
    return { config, notes };
  }

  async suggestFor(target: SuggestTarget): Promise<void> {
    // The settings of the target's own workspace folder (multi-root workspaces).
    const settings = settingsFor(target.path);
    this.current?.abort();
    const abort = new AbortController();
    this.current = abort;
    this.lastTarget = target;
    const started = Date.now();
    const skip = new AbortController();
    this.probeSkip = skip;
    const trials: ProbeTrialResult[] = [];
    const seq = this.nextSeq();
    this.setState({ kind: 'working', seq, target: target.path, stage: 'scan', message: 'Starting…', startedAt: started });
    this.showPanel();
    this.ctx.log.info(`Suggest: ${target.kind} ${target.path}`);

    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Batch Advisor', cancellable: true },
      async (progress, token) => {
        const sub = token.onCancellationRequested(() => this.cancel());
        try {
          const { config, notes } = this.configFor(target, settings);
          const workspaceRoot = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(target.path))?.uri.fsPath ?? (target.kind === 'config' ? dirname(target.path) : target.path);
          const report: SuggestReport = await suggest(
            { config },
            {
              trainerScript: vscode.Uri.joinPath(this.ctx.extensionUri, 'dist', 'trainer.js').fsPath,
              signal: abort.signal,
              headroom: settings.headroom,
              ...(settings.deviceMemoryGiB !== undefined ? { deviceMemoryGiB: settings.deviceMemoryGiB } : {}),
              log: (line) => this.ctx.log.info(line),
              ...(this.ctx.testHooks.scanYieldDelayMs ? { scanYieldDelayMs: this.ctx.testHooks.scanYieldDelayMs } : {}),
              // The probe (real training steps) runs where code may run: on by default (batchAdvisor.probe), "probe" in the config wins, the panel's Skip ends it.
              probe: vscode.workspace.isTrusted && (config.probe ?? settings.probe),
              probeSkipSignal: skip.signal,
              // The probe cache is the workspace's, as the Train lens's (train-flow.ts), so Train reuses these trials.
              probeCacheDir: join(workspaceRoot, PROBE_CACHE_FOLDER),
              // Where Train's run will look for tfjs-node (train-flow.ts): the plan is made for the backend found there.
              backendLocation: backendLocation(config, { workspaceRoot, ...(settings.tfjsNodePath ? { tfjsNodePath: settings.tfjsNodePath } : {}) }),
              onProbeTrial: (r) => trials.push(r),
              onProgress: (p) => {
                if (abort.signal.aborted || this.current !== abort) return;
                progress.report({ message: p.message });
                this.setState({
                  kind: 'working',
                  seq: this.nextSeq(),
                  target: target.path,
                  stage: p.stage,
                  message: p.message,
                  ...(p.filesSeen !== undefined ? { filesSeen: p.filesSeen } : {}),
                  ...(p.stage === 'probe' ? { trials: [...trials] } : {}),
                  startedAt: started,
                });
              },
            },
          );
          if (this.current !== abort) return; // superseded
          this.showResult(report, target, started, notes);
        } catch (e) {
          if (this.current === abort) this.showFailure(e, abort.signal, target, started);
        } finally {
          sub.dispose();
          if (this.current === abort) this.current = undefined;
          if (this.probeSkip === skip) this.probeSkip = undefined;
        }
      },
    );
  }

  /** The suggestion in the panel, the log, and the config's apply lens and diagnostics. */
  private showResult(report: SuggestReport, target: SuggestTarget, started: number, notes: string[]): void {
    const r = report.recommendation;
    this.ctx.log.info(
      `Suggest: batch size ${r.batchSize} (max ${r.maxBatchSize}) for ${report.dataset.totalImages} images, ${report.dataset.classes.length} classes on ${report.device.name} in ${Date.now() - started} ms`,
    );
    for (const w of r.warnings) this.ctx.log.warn(w);
    this.setState({ kind: 'result', seq: this.nextSeq(), target: target.path, report, restricted: !vscode.workspace.isTrusted, notes });
    if (target.kind === 'config') recordSuggestion(target.path, configSuggestionFrom(report)); // the editor's apply lens and diagnostics
  }

  /** Cancelled, bad input (the message and what to do, in the panel) or a failure (also a notification with Show Log). */
  private showFailure(e: unknown, signal: AbortSignal, target: SuggestTarget, started: number): void {
    if (isAbort(e) || signal.aborted) {
      this.ctx.log.info(`Suggest: cancelled after ${Date.now() - started} ms`);
      this.setState({ kind: 'cancelled', seq: this.nextSeq(), target: target.path });
      return;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    if (INPUT_ERRORS.has(err.name) || e instanceof ConfigError) {
      this.ctx.log.warn(`Suggest: ${err.message}`);
      this.setState({ kind: 'error', seq: this.nextSeq(), target: target.path, message: err.message, ...hintFor(err) });
      return;
    }
    this.ctx.log.error(`Suggest failed for ${target.path}`, err);
    this.setState({ kind: 'error', seq: this.nextSeq(), target: target.path, message: err.message, hint: 'See the Batch Advisor output channel for details.' });
    void vscode.window.showErrorMessage(`Batch Advisor: suggestion failed: ${err.message}`, 'Show Log').then((choice) => {
      if (choice) this.ctx.log.show(true);
    });
  }

  dispose(): void {
    this.current?.abort();
    this.panel?.dispose();
  }
}

function hintFor(e: Error): { hint?: string } {
  switch (e.name) {
    case 'SuggestInputError':
      return { hint: 'Point Batch Advisor at a folder laid out like Keras image_dataset_from_directory: root/<class>/<image>. Set "batchAdvisor.datasetFolder" or open a *.train.json config.' };
    case 'DatasetInputError':
      return { hint: 'Check the "dataset" field of the config, or the "batchAdvisor.datasetFolder" setting.' };
    case 'ConfigError':
      return { hint: 'Fix the config (the editor underlines schema errors in *.train.json files) and run the command again.' };
    case 'RestrictedModeError':
      return { hint: 'Trust the workspace (Manage Workspace Trust) to describe your own model, or use a built-in model.' };
    default:
      return {};
  }
}
