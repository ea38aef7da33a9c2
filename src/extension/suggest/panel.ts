/**
 * The host side of the Suggest panel (WebviewPanel `batchAdvisor.suggest`, title "Batch Advisor"),
 * on the shared WebviewHost: it keeps the latest state and replays it whenever the webview
 * (re)appears; the webview also persists it with setState so a restored panel paints at once.
 */
import type * as vscode from 'vscode';
import { SUGGEST_CHANNEL, type HostToWebview, type SuggestViewState, type WebviewToHost } from '../../core/shared/webview-protocol';
import type { WebviewCommon } from '../../core/shared/webview-channel';
import { WebviewHost, type WebviewHostEvents } from '../webview-host';

export const PANEL_TITLE = SUGGEST_CHANNEL.title;

export interface PanelEvents {
  onMessage(message: Exclude<WebviewToHost, WebviewCommon>): void;
  onDispose(): void;
}

export class SuggestPanel implements vscode.Disposable {
  private state: SuggestViewState;
  private readonly host: WebviewHost<WebviewToHost, HostToWebview>;

  /** Opens a new panel beside the active editor (or in the active group). */
  static create(extensionUri: vscode.Uri, log: vscode.LogOutputChannel, initial: SuggestViewState, events: PanelEvents): SuggestPanel {
    return new SuggestPanel((e) => WebviewHost.create(SUGGEST_CHANNEL, extensionUri, PANEL_TITLE, { log }, e), initial, events);
  }

  /** Takes over a panel VS Code restored after a reload (see the serializer). */
  static adopt(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, log: vscode.LogOutputChannel, initial: SuggestViewState, events: PanelEvents): SuggestPanel {
    return new SuggestPanel((e) => WebviewHost.adopt(panel, SUGGEST_CHANNEL, extensionUri, PANEL_TITLE, { log }, e), initial, events);
  }

  private constructor(open: (e: WebviewHostEvents<WebviewToHost>) => WebviewHost<WebviewToHost, HostToWebview>, initial: SuggestViewState, events: PanelEvents) {
    this.state = initial;
    this.host = open({ replay: () => this.post(), onMessage: (m) => events.onMessage(m), onDispose: () => events.onDispose() });
  }

  get panel(): vscode.WebviewPanel {
    return this.host.panel;
  }

  get visible(): boolean {
    return this.host.visible;
  }

  setState(state: SuggestViewState): void {
    this.state = state;
    this.post();
  }

  reveal(): void {
    this.host.reveal();
  }

  private post(): void {
    this.host.post({ type: 'state', state: this.state });
  }

  dispose(): void {
    this.host.dispose();
  }
}
