/** What every webview panel of ours sets up the same way: its options and its page. */
import * as vscode from 'vscode';
import { panelHtml } from './panel-page';

/** Scripts on; local files only from the bundled webview code and media (and `extraRoots`: e.g. a dataset whose images a panel shows). */
export function panelOptions(extensionUri: vscode.Uri, extraRoots: vscode.Uri[] = []): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media'), ...extraRoots],
  };
}

/** The page that loads `dist/webview/<script>` under our Content-Security-Policy. */
export function panelPage(webview: vscode.Webview, extensionUri: vscode.Uri, script: string, title: string): string {
  const scriptUri = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', script));
  return panelHtml({ title, cspSource: webview.cspSource, scriptUri: scriptUri.toString() });
}
