/**
 * The host side of a training panel (WebviewPanel `batchAdvisor.train`): one live or finished run,
 * or several runs compared. The host keeps every run's events and replays them on `ready` (no
 * retainContextWhenHidden, through the shared WebviewHost); live events are sent in batches at most every 200 ms so a fast run
 * does not flood the webview. Messages from the webview are validated before use.
 */
import type * as vscode from 'vscode';
import type { TrainEvent } from '../../core/shared/protocol';
import type { WebviewCommon } from '../../core/shared/webview-channel';
import { WebviewHost, type WebviewHostEvents } from '../webview-host';
import { openEvaluatedImage, thumbnails } from './evaluation-host';
import { TRAIN_CHANNEL, type PanelRun, type PanelRunInfo, type TrainHostToWebview, type TrainWebviewToHost } from '../../core/shared/train-webview-protocol';

const FLUSH_MS = 200;

type PanelMessage = Exclude<TrainWebviewToHost, WebviewCommon>;

export interface TrainPanelEvents {
  onMessage(message: Exclude<PanelMessage, { type: 'thumbnails' | 'open-file' }>): void;
  onDispose(): void;
}

export class TrainPanel implements vscode.Disposable {
  private readonly host: WebviewHost<TrainWebviewToHost, TrainHostToWebview>;
  private readonly runs: PanelRun[];
  private readonly pending = new Map<string, TrainEvent[]>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * `imageRoots`: folders whose images the panel may show (the runs' datasets, for the evaluation's
   * thumbnails). `runDirs`: the runs' folders, kept in the webview's state for the restore.
   */
  static create(extensionUri: vscode.Uri, log: vscode.LogOutputChannel, title: string, runs: PanelRun[], events: TrainPanelEvents, imageRoots: vscode.Uri[] = [], runDirs: string[] = []): TrainPanel {
    return new TrainPanel((e) => WebviewHost.create(TRAIN_CHANNEL, extensionUri, title, { roots: imageRoots, log }, e), runs, events, runDirs);
  }

  /** A panel VS Code restored after a reload (its serializer): the same runs, read again from their folders. */
  static restore(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, log: vscode.LogOutputChannel, title: string, runs: PanelRun[], events: TrainPanelEvents, imageRoots: vscode.Uri[], runDirs: string[]): TrainPanel {
    return new TrainPanel((e) => WebviewHost.adopt(panel, TRAIN_CHANNEL, extensionUri, title, { roots: imageRoots, log }, e), runs, events, runDirs);
  }

  private constructor(
    open: (e: WebviewHostEvents<TrainWebviewToHost>) => WebviewHost<TrainWebviewToHost, TrainHostToWebview>,
    runs: PanelRun[],
    private readonly events: TrainPanelEvents,
    private readonly runDirs: string[] = [],
  ) {
    this.runs = runs;
    this.host = open({
      replay: () => this.reset(),
      onMessage: (m) => this.onMessage(m),
      onDispose: () => {
        if (this.timer) clearTimeout(this.timer);
        this.events.onDispose();
      },
    });
  }

  get panel(): vscode.WebviewPanel {
    return this.host.panel;
  }

  private onMessage(m: PanelMessage): void {
    if (!this.runs.some((r) => r.id === m.runId)) return; // only the runs this panel shows
    if (m.type === 'thumbnails' || m.type === 'open-file') this.evaluationMessage(m);
    else this.events.onMessage(m);
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
    this.host.retitle(title);
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
    if (m.type === 'thumbnails') this.post(thumbnails(this.host.panel.webview, run.id, run.events, m.paths));
    else void openEvaluatedImage(run.events, m.path);
  }

  reveal(): void {
    this.host.reveal();
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
    this.host.post(m); // dropped while hidden: replayed in full on `ready` / when shown
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.host.dispose();
  }
}
