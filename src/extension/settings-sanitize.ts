/**
 * The pure half of the settings (no `vscode`, unit-tested): every raw value is checked and an
 * out-of-range or mistyped one falls back to its default instead of reaching the engine.
 */
import { BACKENDS, type BackendChoice } from '../core/shared/config-types';
import { DEFAULT_HEADROOM, MAX_HEADROOM } from '../core/shared/constants';

export interface Settings {
  /** Absolute path of the dataset folder to use when no config is open, or undefined. */
  datasetFolder: string | undefined;
  /** Plan for a device with this much memory instead of the one detected. */
  deviceMemoryGiB: number | undefined;
  /** Fraction of free memory kept free, 0 ≤ h ≤ MAX_HEADROOM (package.json's maximum). */
  headroom: number;
  backend: BackendChoice;
  /** Folder holding a user-installed @tensorflow/tfjs-node(-gpu), or undefined. */
  tfjsNodePath: string | undefined;
  /** Confirm suggestions with real training steps (the probe) unless a config says otherwise. Default true. */
  probe: boolean;
}

export { DEFAULT_HEADROOM } from '../core/shared/constants';

function nonEmptyString(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/** Pure part of the sanitizing, testable without VS Code. */
export function sanitize(raw: {
  datasetFolder?: unknown;
  deviceMemoryGiB?: unknown;
  headroom?: unknown;
  backend?: unknown;
  tfjsNodePath?: unknown;
  probe?: unknown;
}): Settings {
  const mem = raw.deviceMemoryGiB;
  const head = raw.headroom;
  return {
    datasetFolder: nonEmptyString(raw.datasetFolder),
    deviceMemoryGiB: typeof mem === 'number' && Number.isFinite(mem) && mem > 0 && mem <= 4096 ? mem : undefined,
    headroom: typeof head === 'number' && Number.isFinite(head) && head >= 0 && head <= MAX_HEADROOM ? head : DEFAULT_HEADROOM,
    backend: typeof raw.backend === 'string' && (BACKENDS as readonly string[]).includes(raw.backend) ? (raw.backend as BackendChoice) : 'auto',
    tfjsNodePath: nonEmptyString(raw.tfjsNodePath),
    probe: typeof raw.probe === 'boolean' ? raw.probe : true,
  };
}
