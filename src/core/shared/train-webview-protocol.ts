/**
 * The typed message protocol between the extension host and the training panel's webview
 * (src/extension/train/panel.ts ↔ src/webview/train/). Browser-safe: types and pure guards only.
 *
 * A panel shows one run (live or replayed from its metrics.jsonl) or several runs compared on the
 * same charts. The host owns the truth: it keeps every run's events and replays them all on
 * `ready` (first load, shown again after being hidden, restored after a reload); while a run is
 * live it sends new events in small batches and status changes as they happen.
 */
import { message } from './ipc';
import type { RunEndEvent, TrainEvent } from './protocol';
import { WEBVIEW_COMMON, shortString, type WebviewChannel, type WebviewCommon } from './webview-channel';

export const TRAIN_VIEW_TYPE = 'batchAdvisor.train';

/** What the header says about a run. */
export type PanelRunStatus = 'starting' | 'running' | 'finished' | 'stopped' | 'failed' | 'interrupted';

export interface PanelRunInfo {
  /** The run folder's name (YYYYMMDD-HHMMSS-name). */
  id: string;
  name: string;
  status: PanelRunStatus;
  /** One sentence for the person: what happened and what to do. */
  message?: string;
  /** The run is being trained by this window now (the Stop button is shown). */
  live: boolean;
  /** After an out-of-memory failure: the batch the Retry button starts the run again with. */
  retryBatchSize?: number;
}

export interface PanelRun extends PanelRunInfo {
  events: TrainEvent[];
  /** The run folder's config.json (what ran), for the Compare table of hyper-parameters. */
  config?: Record<string, unknown>;
}

// ---- host → webview -------------------------------------------------------------------------

/** Everything the panel shows (sent on `ready`). */
export interface ResetMessage {
  type: 'reset';
  runs: PanelRun[];
  /** The run folders shown: the webview keeps them in its state, so the panel is restored after a window reload. */
  restore?: TrainPanelState;
}

/** What a training panel's webview state holds for its restore (the host's serializer reads it back). */
export interface TrainPanelState {
  runDirs: string[];
}

/** The run folders of a restored panel's state, or undefined when it holds none (older state, or not ours). */
export function restoredRunDirs(state: unknown): string[] | undefined {
  const dirs = typeof state === 'object' && state !== null ? (state as { restore?: { runDirs?: unknown } }).restore?.runDirs : undefined;
  return Array.isArray(dirs) && dirs.length > 0 && dirs.every((d) => typeof d === 'string') ? (dirs as string[]) : undefined;
}

/** New events of one run, in order. */
export interface EventsMessage {
  type: 'events';
  runId: string;
  events: TrainEvent[];
}

/** A run's status changed (starting → running → finished/stopped/failed). */
export interface RunStatusMessage {
  type: 'status';
  run: PanelRunInfo;
}

/** Webview URIs of images the panel asked for (evaluation thumbnails); a path the host would not show is left out. */
export interface ThumbnailsMessage {
  type: 'thumbnails';
  runId: string;
  uris: Record<string, string>;
}

export type TrainHostToWebview = ResetMessage | EventsMessage | RunStatusMessage | ThumbnailsMessage;

// ---- webview → host -------------------------------------------------------------------------

export type TrainWebviewToHost =
  | WebviewCommon
  | { type: 'stop'; runId: string }
  | { type: 'retry'; runId: string }
  | { type: 'export-csv'; runId: string }
  /** Webview URIs for these images of the run's evaluation (answered by 'thumbnails'). */
  | { type: 'thumbnails'; runId: string; paths: string[] }
  /** Open an image of the run's evaluation in an editor. */
  | { type: 'open-file'; runId: string; path: string }
  /** Save a chart as a PNG (`dataUrl`: data:image/png;base64,…); the host asks where, next to the run's folder. */
  | ExportPngMessage;

export interface ExportPngMessage {
  type: 'export-png';
  /** The panel's first run (the save dialog starts in its folder). */
  runId: string;
  /** The chart's id (loss, accuracy, …): the file name offered. */
  chart: string;
  dataUrl: string;
}

/** The largest chart image the host accepts (a data URL's length). */
export const PNG_DATA_URL_MAX = 32 * 1024 * 1024;
export const PNG_PREFIX = 'data:image/png;base64,';

type Msg<T extends TrainWebviewToHost['type']> = Extract<TrainWebviewToHost, { type: T }>;
const runId = (m: Record<string, unknown>): string | undefined => shortString(m, 'runId', 500);
const both =
  (...checks: ((m: Record<string, unknown>) => string | undefined)[]) =>
  (m: Record<string, unknown>): string | undefined => {
    for (const c of checks) {
      const why = c(m);
      if (why !== undefined) return why;
    }
    return undefined;
  };

function thumbnailPaths(m: Record<string, unknown>): string | undefined {
  const paths = m['paths'] as unknown[];
  return paths.length <= 1000 && paths.every((p) => typeof p === 'string' && p.length < 4096) ? undefined : 'field "paths" must list at most 1000 paths shorter than 4096';
}

function pngExport(m: Record<string, unknown>): string | undefined {
  if (!/^[a-z0-9-]{1,40}$/.test(m['chart'] as string)) return 'field "chart" must be a chart id (a-z, 0-9, -)';
  const url = m['dataUrl'] as string;
  return url.startsWith(PNG_PREFIX) && url.length <= PNG_DATA_URL_MAX ? undefined : `field "dataUrl" must be a PNG data URL of at most ${PNG_DATA_URL_MAX} characters`;
}

const runIdAndItem = (m: Record<string, unknown>): string | undefined => (Array.isArray(m['run']) ? 'field "run" must be an object' : shortString(m['run'] as Record<string, unknown>, 'id', 500));

/** The training panel's channel: both directions as typed descriptors, parsed on arrival. */
export const TRAIN_CHANNEL: WebviewChannel<TrainWebviewToHost, TrainHostToWebview> = {
  viewType: TRAIN_VIEW_TYPE,
  script: 'train.js',
  title: 'Training',
  fromWebview: [
    ...WEBVIEW_COMMON,
    message<Msg<'stop'>>('stop', { runId: 'string' }, runId),
    message<Msg<'retry'>>('retry', { runId: 'string' }, runId),
    message<Msg<'export-csv'>>('export-csv', { runId: 'string' }, runId),
    message<Msg<'thumbnails'>>('thumbnails', { runId: 'string', paths: 'array' }, both(runId, thumbnailPaths)),
    message<Msg<'open-file'>>('open-file', { runId: 'string', path: 'string' }, both(runId, (m) => shortString(m, 'path', 4096))),
    message<ExportPngMessage>('export-png', { runId: 'string', chart: 'string', dataUrl: 'string' }, both(runId, pngExport)),
  ],
  toWebview: [
    message<ResetMessage>('reset', { runs: 'array', restore: 'object?' }),
    message<EventsMessage>('events', { runId: 'string', events: 'array' }),
    message<RunStatusMessage>('status', { run: 'object' }, runIdAndItem),
    message<ThumbnailsMessage>('thumbnails', { runId: 'string', uris: 'object' }),
  ],
};

// ---- a run's status from its events (runs replayed from metrics.jsonl) --------------------------

/** The header's status for a run's last run-end (or none: still running here, or interrupted). */
export function statusFromEnd(end: RunEndEvent | null, live: boolean): Pick<PanelRunInfo, 'status' | 'message' | 'retryBatchSize'> {
  if (!end) {
    return live
      ? { status: 'running' }
      : { status: 'interrupted', message: 'The trainer ended without finishing the run (the window was closed or reloaded, or the process was killed). The metrics up to that point are kept.' };
  }
  // A completed run's message is why it ended early (early stopping): shown under the status.
  if (end.status === 'completed') return { status: 'finished', ...(end.message ? { message: end.message } : {}) };
  if (end.status === 'stopped') return { status: 'stopped', ...(end.message ? { message: end.message } : {}) };
  return {
    status: 'failed',
    message: end.message ?? 'The run failed.',
    ...(end.error === 'oom' && end.suggestedBatchSize ? { retryBatchSize: end.suggestedBatchSize } : {}),
  };
}
