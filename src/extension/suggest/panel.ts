/**
 * The host side of the Suggest panel (WebviewPanel `batchAdvisor.suggest`, title "Batch Advisor").
 *
 * No retainContextWhenHidden: a hidden panel's webview is torn down by VS Code, so the host keeps
 * the latest state and replays it when the webview says `ready` (first load, shown again after
 * being hidden, restored by the serializer after a reload). The webview also persists it with
 * setState so a restored panel paints at once.
 */
import * as vscode from 'vscode';
import {
  SUGGEST_VIEW_TYPE,
  isWebviewToHost,
  type HostToWebview,
  type SuggestViewState,
  type WebviewToHost,
} from '../../core/shared/webview-protocol';
import { panelOptions, panelPage } from '../panel-host';

export const PANEL_TITLE = 'Batch Advisor';

export interface PanelEvents {
  onMessage(message: WebviewToHost): void;
  onDispose(): void;
}

export class SuggestPanel implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private state: SuggestViewState;
  private disposed = false;

  /** Opens a new panel beside the active editor (or in the active group). */
  static create(extensionUri: vscode.Uri, initial: SuggestViewState, events: PanelEvents): SuggestPanel {
    const column = vscode.window.activeTextEditor ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
    const panel = vscode.window.createWebviewPanel(SUGGEST_VIEW_TYPE, PANEL_TITLE, { viewColumn: column, preserveFocus: true }, panelOptions(extensionUri));
    return new SuggestPanel(panel, extensionUri, initial, events);
  }

  /** Takes over a panel VS Code restored after a reload (see the serializer). */
  static adopt(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, initial: SuggestViewState, events: PanelEvents): SuggestPanel {
    panel.webview.options = panelOptions(extensionUri);
    return new SuggestPanel(panel, extensionUri, initial, events);
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    initial: SuggestViewState,
    private readonly events: PanelEvents,
  ) {
    this.state = initial;
    panel.title = PANEL_TITLE;
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
    panel.webview.html = this.html(panel.webview);
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: unknown) => {
        if (!isWebviewToHost(m)) return;
        if (m.type === 'ready') this.post();
        this.events.onMessage(m);
      }),
      // A webview that was hidden and is shown again is reloaded and asks with `ready`;
      // this extra replay covers a visible panel that missed an update while hidden.
      panel.onDidChangeViewState((e) => {
        if (e.webviewPanel.visible) this.post();
      }),
      panel.onDidDispose(() => {
        this.disposed = true;
        this.dispose();
        this.events.onDispose();
      }),
    );
  }

  get visible(): boolean {
    return !this.disposed && this.panel.visible;
  }

  setState(state: SuggestViewState): void {
    this.state = state;
    this.post();
  }

  reveal(): void {
    if (!this.disposed) this.panel.reveal(undefined, true);
  }

  private post(): void {
    if (this.disposed || !this.panel.visible) return; // replayed on `ready` / when shown again
    const message: HostToWebview = { type: 'state', state: this.state };
    void this.panel.webview.postMessage(message);
  }

  private html(webview: vscode.Webview): string {
    return panelPage(webview, this.extensionUri, 'suggest.js', PANEL_TITLE);
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
    if (!this.disposed) {
      this.disposed = true;
      this.panel.dispose();
    }
  }
}
