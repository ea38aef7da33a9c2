/**
 * The typed message protocol between the extension host and the Suggest panel's webview.
 *
 * Shared by both sides: the host (src/extension/suggest) and the browser app (src/webview/suggest).
 * Types only plus tiny pure guards: nothing here may import Node built-ins or `vscode`.
 *
 * The host owns the truth: it keeps the latest {@link SuggestViewState} and replays it whenever a
 * webview (re)appears (hidden panel shown again, panel restored by the serializer), so the webview
 * never has to be kept alive with retainContextWhenHidden.
 */
import { message } from './ipc';
import type { ProbeTrialResult } from './probe';
import type { SuggestReport } from './report';
import { WEBVIEW_COMMON, shortString, type WebviewChannel, type WebviewCommon } from './webview-channel';

export const SUGGEST_VIEW_TYPE = 'batchAdvisor.suggest';

/** The stages the engine reports progress for. */
export type { SuggestStage } from './constants';
import type { SuggestStage } from './constants';

/** What the panel shows. `seq` grows with every new state so stale replays can be ignored. */
export type SuggestViewState =
  | { kind: 'idle'; seq: number }
  | {
      kind: 'working';
      seq: number;
      /** What is being analysed (folder or config path), for the heading. */
      target: string;
      stage: SuggestStage;
      message: string;
      filesSeen?: number;
      startedAt: number;
      /** Probe trials finished so far (shown live while probing). */
      trials?: ProbeTrialResult[];
    }
  | { kind: 'result'; seq: number; target: string; report: SuggestReport; restricted: boolean; notes: string[] }
  | { kind: 'cancelled'; seq: number; target: string }
  | {
      kind: 'error';
      seq: number;
      target: string;
      /** One clear sentence (names the folder or file). */
      message: string;
      /** A hint on what to do next, if any. */
      hint?: string;
    };

// ---- host → webview -------------------------------------------------------------------------

export interface StateMessage {
  type: 'state';
  state: SuggestViewState;
}

export type HostToWebview = StateMessage;

// ---- webview → host -------------------------------------------------------------------------

/** Reveal/open a file or folder the report mentions (a problem's path, the dataset root). */
export interface RevealMessage {
  type: 'reveal';
  path: string;
}

/** Re-run the suggestion for the same target. */
export interface RerunMessage {
  type: 'rerun';
}

/** Cancel the suggestion in progress. */
export interface CancelMessage {
  type: 'cancel';
}

/** Skip the probe in progress: keep the memory model's plan. */
export interface SkipProbeMessage {
  type: 'skip-probe';
}

export type { WebviewReady as ReadyMessage, CspViolation as CspViolationMessage } from './webview-channel';

/** What the Suggest panel's webview sends (with the messages every panel sends). */
export type WebviewToHost = WebviewCommon | RevealMessage | RerunMessage | CancelMessage | SkipProbeMessage;

/** The Suggest panel's channel: both directions as typed descriptors, parsed on arrival. */
export const SUGGEST_CHANNEL: WebviewChannel<WebviewToHost, HostToWebview> = {
  viewType: SUGGEST_VIEW_TYPE,
  script: 'suggest.js',
  title: 'Batch Advisor',
  fromWebview: [
    ...WEBVIEW_COMMON,
    message<RevealMessage>('reveal', { path: 'string' }, (m) => shortString(m, 'path', 4096)),
    message<RerunMessage>('rerun'),
    message<CancelMessage>('cancel'),
    message<SkipProbeMessage>('skip-probe'),
  ],
  toWebview: [message<StateMessage>('state', { state: 'object' }, (m) => (typeof (m['state'] as { kind?: unknown }).kind === 'string' ? undefined : 'field "state" must have a kind'))],
};

/** What the webview persists with setState (restored by the serializer after a reload). */
export interface SuggestPersistedState {
  /** Bumped when the shape changes; older persisted states are dropped. */
  version: 1;
  state: SuggestViewState;
}

export function isPersistedState(s: unknown): s is SuggestPersistedState {
  return typeof s === 'object' && s !== null && (s as { version?: unknown }).version === 1 && typeof (s as { state?: { kind?: unknown } }).state?.kind === 'string';
}

/**
 * The paths a panel state shows, and so the only ones a `reveal` from the webview may open: the
 * target, the dataset root, the config and model files, and each listed problem's path. A crafted
 * message naming any other path is refused (the webview is untrusted input).
 */
export function revealablePaths(state: SuggestViewState): Set<string> {
  const paths = new Set<string>();
  if (state.kind === 'idle') return paths;
  paths.add(state.target);
  if (state.kind === 'result') {
    const r = state.report;
    paths.add(r.dataset.root);
    if (r.config.configPath) paths.add(r.config.configPath);
    if (/\.json$/i.test(r.config.model)) paths.add(r.config.model);
    for (const p of r.dataset.problems) paths.add(p.path);
  }
  return paths;
}
