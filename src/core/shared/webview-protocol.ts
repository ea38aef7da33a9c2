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
import type { ProbeTrialResult } from './probe';
import type { SuggestReport } from './report';

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

/** The webview finished loading and wants the current state. */
export interface ReadyMessage {
  type: 'ready';
}

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

/** A Content-Security-Policy violation seen in the webview (logged by the host; caught by e2e). */
export interface CspViolationMessage {
  type: 'csp-violation';
  directive: string;
  blocked: string;
}

export type WebviewToHost = ReadyMessage | RevealMessage | RerunMessage | CancelMessage | SkipProbeMessage | CspViolationMessage;

const WEBVIEW_MESSAGE_TYPES: ReadonlySet<string> = new Set(['ready', 'reveal', 'rerun', 'cancel', 'skip-probe', 'csp-violation']);

/** Messages from a webview are untrusted input: check the shape before acting on them. */
export function isWebviewToHost(m: unknown): m is WebviewToHost {
  if (typeof m !== 'object' || m === null) return false;
  const type = (m as { type?: unknown }).type;
  if (typeof type !== 'string' || !WEBVIEW_MESSAGE_TYPES.has(type)) return false;
  if (type === 'reveal') return typeof (m as { path?: unknown }).path === 'string';
  if (type === 'csp-violation') {
    return typeof (m as { directive?: unknown }).directive === 'string' && typeof (m as { blocked?: unknown }).blocked === 'string';
  }
  return true;
}

export function isHostToWebview(m: unknown): m is HostToWebview {
  return (
    typeof m === 'object' &&
    m !== null &&
    (m as { type?: unknown }).type === 'state' &&
    typeof (m as { state?: { kind?: unknown } }).state?.kind === 'string'
  );
}

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
