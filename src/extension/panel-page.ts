/**
 * The HTML page of every webview panel (Suggest, Training): pure, no vscode import, so it is
 * unit-tested. Content-Security-Policy:
 * nothing by default; scripts only with this page's nonce (no 'unsafe-inline', no 'unsafe-eval');
 * styles from the extension or with the nonce; images only through the webview's resource URIs
 * (asWebviewUri, within localResourceRoots: the evaluation's thumbnails); no fonts or connections.
 */
import { randomBytes } from 'node:crypto';

export function newNonce(): string {
  return randomBytes(18).toString('base64');
}

export function panelHtml(opts: { title: string; cspSource: string; scriptUri: string; nonce?: string }): string {
  const nonce = opts.nonce ?? newNonce();
  // Our CSS and the components' (Lit) styles are constructable stylesheets, which style-src does
  // not block; the nonce covers any <style> element a component might fall back to. The
  // webview reports violations back (logged; the e2e test fails on one).
  const csp = ["default-src 'none'", `style-src ${opts.cspSource} 'nonce-${nonce}'`, `script-src 'nonce-${nonce}'`, `img-src ${opts.cspSource}`].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${opts.title}</title>
</head>
<body>
<main id="app" aria-live="polite"><p class="boot">Loading…</p></main>
<script nonce="${nonce}" src="${opts.scriptUri}"></script>
</body>
</html>`;
}
