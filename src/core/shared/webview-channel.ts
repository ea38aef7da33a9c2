/**
 * What every panel of ours shares on its channel between the extension host and its webview, as
 * typed descriptors (./ipc) for both directions, like the trainer's protocol: the handshake
 * (`ready`), the Content-Security-Policy report, and the shape of a panel's channel (its view type,
 * script, and the tables each side parses incoming messages with). Browser-safe.
 */
import { message, type MessageDescriptor } from './ipc';

/** The webview finished loading and wants everything the panel shows (the host replays it). */
export interface WebviewReady {
  type: 'ready';
}

/** A Content-Security-Policy violation seen in the webview (logged by the host; caught by e2e). */
export interface CspViolation {
  type: 'csp-violation';
  directive: string;
  blocked: string;
}

/** Messages every webview may send, whatever its panel. */
export type WebviewCommon = WebviewReady | CspViolation;

export const WEBVIEW_COMMON: readonly MessageDescriptor<WebviewCommon>[] = [
  message<WebviewReady>('ready'),
  message<CspViolation>('csp-violation', { directive: 'string', blocked: 'string' }),
];

/** A panel's channel: `In` what its webview sends (with the common ones), `Out` what its host sends. */
export interface WebviewChannel<In extends { type: string }, Out extends { type: string }> {
  /** The WebviewPanel view type (its serializer restores it after a reload). */
  readonly viewType: string;
  /** The bundled script under dist/webview/. */
  readonly script: string;
  /** The page's title. */
  readonly title: string;
  /** Parsed by the host: the webview is untrusted input. */
  readonly fromWebview: readonly MessageDescriptor<In | WebviewCommon>[];
  /** Parsed by the webview. */
  readonly toWebview: readonly MessageDescriptor<Out>[];
}

/** A string field that is present, not empty and shorter than `max` (ids, paths from a webview). */
export function shortString(m: Record<string, unknown>, field: string, max: number): string | undefined {
  const v = m[field];
  return typeof v === 'string' && v.length > 0 && v.length < max ? undefined : `field "${field}" must be a non-empty string shorter than ${max}`;
}
