/**
 * One host for every panel of ours (the Suggest panel, the training panels): its options, page
 * and icon; the `ready` handshake and the replay when the webview (re)loads or is shown again (no
 * retainContextWhenHidden: a hidden webview is torn down, the host keeps the truth); every incoming
 * message parsed through the channel's descriptors (untrusted input: a malformed one is logged and
 * dropped); the Content-Security-Policy reports logged; posting that drops what a hidden webview
 * cannot receive; dispose. A panel adds only what it shows and the messages it acts on.
 */
import * as vscode from 'vscode';
import { parseMessage } from '../core/shared/ipc';
import type { WebviewChannel, WebviewCommon } from '../core/shared/webview-channel';
import { panelHtml } from './panel-page';

/** Scripts on; local files only from the bundled webview code and media (and `extraRoots`: e.g. a dataset whose images a panel shows). */
function panelOptions(extensionUri: vscode.Uri, extraRoots: vscode.Uri[] = []): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media'), ...extraRoots],
  };
}

/** The page that loads `dist/webview/<script>` under our Content-Security-Policy. */
function panelPage(webview: vscode.Webview, extensionUri: vscode.Uri, script: string, title: string): string {
  const scriptUri = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', script));
  return panelHtml({ title, cspSource: webview.cspSource, scriptUri: scriptUri.toString() });
}

export interface WebviewHostEvents<In> {
  /** The webview loaded, reloaded or was shown again: send it everything it shows. */
  replay(): void;
  /** A valid message of the panel's own (not `ready` or a CSP report). */
  onMessage(message: Exclude<In, WebviewCommon>): void;
  onDispose(): void;
}

export interface WebviewHostOptions {
  /** Folders whose files the page may load besides our bundle and media (a dataset's images). */
  roots?: vscode.Uri[];
  log: Pick<vscode.LogOutputChannel, 'warn' | 'error'>;
}

export class WebviewHost<In extends { type: string }, Out extends { type: string }> implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private disposed = false;
  private wasVisible: boolean;

  /** Opens a new panel beside the active editor (or in the active group when none). */
  static create<In extends { type: string }, Out extends { type: string }>(
    channel: WebviewChannel<In, Out>,
    extensionUri: vscode.Uri,
    title: string,
    options: WebviewHostOptions,
    events: WebviewHostEvents<In>,
  ): WebviewHost<In, Out> {
    const column = vscode.window.activeTextEditor ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
    const panel = vscode.window.createWebviewPanel(channel.viewType, title, { viewColumn: column, preserveFocus: true }, panelOptions(extensionUri, options.roots));
    return new WebviewHost(panel, channel, extensionUri, title, options, events);
  }

  /** Takes over a panel VS Code restored after a window reload (the view type's serializer). */
  static adopt<In extends { type: string }, Out extends { type: string }>(
    panel: vscode.WebviewPanel,
    channel: WebviewChannel<In, Out>,
    extensionUri: vscode.Uri,
    title: string,
    options: WebviewHostOptions,
    events: WebviewHostEvents<In>,
  ): WebviewHost<In, Out> {
    panel.webview.options = panelOptions(extensionUri, options.roots);
    return new WebviewHost(panel, channel, extensionUri, title, options, events);
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly channel: WebviewChannel<In, Out>,
    extensionUri: vscode.Uri,
    title: string,
    private readonly options: WebviewHostOptions,
    private readonly events: WebviewHostEvents<In>,
  ) {
    this.wasVisible = panel.visible;
    panel.title = title;
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
    panel.webview.html = panelPage(panel.webview, extensionUri, channel.script, channel.title);
    this.disposables.push(
      panel.webview.onDidReceiveMessage((raw: unknown) => this.receive(raw)),
      // Only a panel shown again needs the replay (what was posted while hidden was dropped); a
      // focus change (clicking into the panel) fires this too and must not reset the webview's
      // state, e.g. a selected confusion-matrix cell.
      panel.onDidChangeViewState((e) => {
        const shown = e.webviewPanel.visible && !this.wasVisible;
        this.wasVisible = e.webviewPanel.visible;
        if (shown) this.events.replay();
      }),
      panel.onDidDispose(() => {
        this.disposed = true;
        this.dispose();
        this.events.onDispose();
      }),
    );
  }

  private receive(raw: unknown): void {
    const parsed = parseMessage(raw, this.channel.fromWebview);
    if (!parsed.ok) {
      this.options.log.warn(`${this.channel.title} panel: ignored a message from its webview: ${parsed.error}`);
      return;
    }
    const m = parsed.message;
    if (m.type === 'ready') this.events.replay();
    else if (m.type === 'csp-violation') {
      const { directive, blocked } = m as Extract<WebviewCommon, { type: 'csp-violation' }>;
      this.options.log.error(`${this.channel.title} panel: Content-Security-Policy blocked ${blocked} (${directive})`);
    } else this.events.onMessage(m as Exclude<In, WebviewCommon>);
  }

  get visible(): boolean {
    return !this.disposed && this.panel.visible;
  }

  /** Sends `m` to the webview; dropped while hidden or closed (the next replay carries it). */
  post(m: Out): void {
    if (this.disposed || !this.panel.visible) return;
    void this.panel.webview.postMessage(m);
  }

  reveal(): void {
    if (!this.disposed) this.panel.reveal(undefined, true);
  }

  retitle(title: string): void {
    if (!this.disposed) this.panel.title = title;
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
    if (!this.disposed) {
      this.disposed = true;
      this.panel.dispose();
    }
  }
}
