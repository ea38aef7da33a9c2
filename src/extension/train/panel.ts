/**
 * The host side of a training panel (WebviewPanel `batchAdvisor.train`): one live or finished run,
 * or several runs compared. The host keeps every run's events and replays them on `ready` (no
 * retainContextWhenHidden); live events are sent in batches at most every 200 ms so a fast run
 * does not flood the webview. Messages from the webview are validated before use.
 */
import * as vscode from 'vscode';
import type { TrainEvent } from '../../core/shared/protocol';
import { panelOptions, panelPage } from '../panel-host';
import { openEvaluatedImage, thumbnails } from './evaluation-host';
import {
  TRAIN_VIEW_TYPE,
  isTrainWebviewToHost,
  type PanelRun,
  type PanelRunInfo,
  type TrainHostToWebview,
  type TrainWebviewToHost,
} from '../../core/shared/train-webview-protocol';

const FLUSH_MS = 200;

export interface TrainPanelEvents {
  onMessage(message: Exclude<TrainWebviewToHost, { type: 'ready' | 'csp-violation' | 'thumbnails' | 'open-file' }>): void;
  onCspViolation(directive: string, blocked: string): void;
  onDispose(): void;
}

export class TrainPanel implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly runs: PanelRun[];
  private readonly pending = new Map<string, TrainEvent[]>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private disposed = false;
  private wasVisible: boolean;

  /**
   * `imageRoots`: folders whose images the panel may show (the runs' datasets, for the evaluation's
   * thumbnails). `runDirs`: the runs' folders, kept in the webview's state for the restore.
   */
  static create(extensionUri: vscode.Uri, title: string, runs: PanelRun[], events: TrainPanelEvents, imageRoots: vscode.Uri[] = [], runDirs: string[] = []): TrainPanel {
    const panel = vscode.window.createWebviewPanel(TRAIN_VIEW_TYPE, title, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, panelOptions(extensionUri, imageRoots));
    return new TrainPanel(panel, extensionUri, runs, events, runDirs);
  }

  /** A panel VS Code restored after a reload (its serializer): the same runs, read again from their folders. */
  static restore(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, title: string, runs: PanelRun[], events: TrainPanelEvents, imageRoots: vscode.Uri[], runDirs: string[]): TrainPanel {
    panel.webview.options = panelOptions(extensionUri, imageRoots);
    panel.title = title;
    return new TrainPanel(panel, extensionUri, runs, events, runDirs);
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    runs: PanelRun[],
    private readonly events: TrainPanelEvents,
    private readonly runDirs: string[] = [],
  ) {
    this.runs = runs;
    this.wasVisible = panel.visible;
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
    panel.webview.html = this.html(panel.webview);
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: unknown) => {
        if (!isTrainWebviewToHost(m)) return; // untrusted input: ignore anything malformed
        if (m.type === 'ready') this.reset();
        else if (m.type === 'csp-violation') this.events.onCspViolation(m.directive, m.blocked);
        else if (m.type === 'thumbnails' || m.type === 'open-file') this.evaluationMessage(m);
        else if (this.runs.some((r) => r.id === m.runId)) this.events.onMessage(m);
      }),
      // Only a panel shown again needs the replay (what was posted while hidden was dropped); a
      // focus change (clicking into the panel) fires this too and must not reset the webview's
      // state, e.g. the selected confusion-matrix cell.
      panel.onDidChangeViewState((e) => {
        const shown = e.webviewPanel.visible && !this.wasVisible;
        this.wasVisible = e.webviewPanel.visible;
        if (shown) this.reset();
      }),
      panel.onDidDispose(() => {
        this.disposed = true;
        this.dispose();
        this.events.onDispose();
      }),
    );
  }

  get runIds(): string[] {
    return this.runs.map((r) => r.id);
  }

  get runNames(): string[] {
    return this.runs.map((r) => r.name);
  }

  /** A run's new name: the header and the Compare table show it. */
  rename(runId: string, name: string): void {
    const run = this.runs.find((r) => r.id === runId);
    if (!run || run.name === name) return;
    run.name = name;
    const { events: _events, config: _config, ...info } = run;
    this.post({ type: 'status', run: info });
  }

  retitle(title: string): void {
    if (!this.disposed) this.panel.title = title;
  }

  /** Appends a live run's events (sent within FLUSH_MS). */
  append(runId: string, events: TrainEvent[]): void {
    const run = this.runs.find((r) => r.id === runId);
    if (!run) return;
    run.events.push(...events);
    const q = this.pending.get(runId) ?? [];
    q.push(...events);
    this.pending.set(runId, q);
    this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  /** Updates a run's header (status, message, live, retry). */
  setStatus(info: PanelRunInfo): void {
    const run = this.runs.find((r) => r.id === info.id);
    if (!run) return;
    this.flush();
    const { events, config } = run;
    for (const k of Object.keys(run) as (keyof PanelRun)[]) if (k !== 'events' && k !== 'config') delete run[k];
    Object.assign(run, info, { events, config });
    this.post({ type: 'status', run: info });
  }

  private evaluationMessage(m: Extract<TrainWebviewToHost, { type: 'thumbnails' | 'open-file' }>): void {
    const run = this.runs.find((r) => r.id === m.runId);
    if (!run) return;
    if (m.type === 'thumbnails') this.post(thumbnails(this.panel.webview, run.id, run.events, m.paths));
    else void openEvaluatedImage(run.events, m.path);
  }

  reveal(): void {
    if (!this.disposed) this.panel.reveal(undefined, true);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const [runId, events] of this.pending) if (events.length) this.post({ type: 'events', runId, events });
    this.pending.clear();
  }

  private reset(): void {
    this.pending.clear();
    this.post({ type: 'reset', runs: this.runs, ...(this.runDirs.length ? { restore: { runDirs: this.runDirs } } : {}) });
  }

  private post(m: TrainHostToWebview): void {
    if (this.disposed || !this.panel.visible) return; // replayed in full on `ready` / when shown
    void this.panel.webview.postMessage(m);
  }

  private html(webview: vscode.Webview): string {
    return panelPage(webview, this.extensionUri, 'train.js', 'Training');
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const d of this.disposables.splice(0)) d.dispose();
    if (!this.disposed) {
      this.disposed = true;
      this.panel.dispose();
    }
  }
}

