/**
 * The webview's end of a panel's channel: messages from the host parsed through the channel's
 * descriptors (a malformed one is reported in the console and dropped), Content-Security-Policy
 * violations reported to the host, and `ready` sent once the app is listening.
 */
import { parseMessage } from '../../core/shared/ipc';
import type { WebviewChannel, WebviewCommon } from '../../core/shared/webview-channel';

export interface Poster<In> {
  postMessage(message: In | WebviewCommon): void;
}

/** Listens for the host's messages and reports CSP violations; call the returned `ready` when the app can take the replay. */
export function connectHost<In extends { type: string }, Out extends { type: string }>(channel: WebviewChannel<In, Out>, api: Poster<In>, onMessage: (m: Out) => void): { ready(): void } {
  document.addEventListener('securitypolicyviolation', (e) => {
    api.postMessage({ type: 'csp-violation', directive: e.effectiveDirective, blocked: e.blockedURI || e.sample || '(inline)' });
  });
  window.addEventListener('message', (e: MessageEvent<unknown>) => {
    const parsed = parseMessage(e.data, channel.toWebview);
    if (parsed.ok) onMessage(parsed.message);
    else console.warn(`${channel.title} panel: ignored a message from the host: ${parsed.error}`);
  });
  return { ready: () => api.postMessage({ type: 'ready' }) };
}
