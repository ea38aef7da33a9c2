/**
 * The probe cache: a plan measured once is reused. Each probe trial's result is recorded under a key
 * made of everything the trials depend on — the model (name, or the model file's and its weight
 * shards' content), the dataset's fingerprint, image size, channels, optimizer, batch settings,
 * backend, the device and its free-memory band, the headroom — and of the trial's own spec. A
 * second probe on the same inputs replays the recorded trials through the same search and objective,
 * so it makes the same plan with no trial process (the Suggest panel's plan is the Train lens's).
 *
 * Files: `<workspace>/.batch-advisor/probe-cache/<key>.json`. A cache that cannot be read or
 * written is ignored (said in the log): it never fails a suggestion.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { TrainConfig } from '../shared/config-types';
import type { DatasetReport } from '../shared/dataset-types';
import type { DeviceInfo } from '../shared/device-types';
import type { ProbeTrialResult, ProbeTrialSpec, TrialRunner } from '../shared/probe';
import type { BackendName } from '../shared/protocol';
import { WASM_HEAP_MAX } from '../planning/memory';

export const PROBE_CACHE_VERSION = 2;
export const PROBE_CACHE_FOLDER = join('.batch-advisor', 'probe-cache');

/** Failures that say something lasting about the inputs (not a hang or a crash on a busy machine). */
const CACHEABLE: ReadonlySet<string | undefined> = new Set([undefined, 'oom', 'over-budget', 'no-training']);

export interface ProbeCacheInputs {
  config: TrainConfig;
  dataset: Pick<DatasetReport, 'root' | 'classes' | 'totalImages' | 'bytesOnDisk' | 'formats' | 'train' | 'validation'>;
  device: DeviceInfo;
  plannedBackend: BackendName;
  headroom: number;
}

/** Free memory in bands of about 19% (four per doubling): a plan measured at one still holds within it. */
export function memoryBand(bytes: number): number {
  return bytes > 0 ? Math.round(Math.log2(bytes) * 4) : 0;
}

function hashFile(h: ReturnType<typeof createHash>, path: string): void {
  try {
    h.update(readFileSync(path));
  } catch (e) {
    h.update(`unreadable:${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** The model's identity: a zoo name, or the content of its model.json and weight shards. */
export function modelFingerprint(config: Pick<TrainConfig, 'model' | 'widthMultiplier'>): string {
  const h = createHash('sha256');
  h.update(`${config.model}\0${config.widthMultiplier}\0`);
  if (/\.json$/i.test(config.model)) {
    const path = resolve(config.model);
    hashFile(h, path);
    try {
      const json = JSON.parse(readFileSync(path, 'utf8')) as { weightsManifest?: { paths?: unknown[] }[] };
      for (const group of json.weightsManifest ?? []) for (const p of group.paths ?? []) if (typeof p === 'string') hashFile(h, resolve(dirname(path), p));
    } catch {
      /* not JSON: its bytes are in the hash already */
    }
  }
  return h.digest('hex');
}

/** The key of a probe's inputs (what every trial of it depends on). */
export function probeCacheKey(i: ProbeCacheInputs): string {
  const c = i.config;
  const parts = {
    v: PROBE_CACHE_VERSION,
    model: modelFingerprint(c),
    dataset: { root: resolve(i.dataset.root), classes: i.dataset.classes, total: i.dataset.totalImages, bytes: i.dataset.bytesOnDisk, formats: i.dataset.formats, train: i.dataset.train, validation: i.dataset.validation },
    imageSize: c.imageSize,
    channels: c.channels,
    optimizer: c.optimizer,
    learningRate: c.learningRate,
    batchSize: c.batchSize,
    accumulationSteps: c.explicit.includes('accumulationSteps') ? c.accumulationSteps : null,
    validationSplit: c.validationSplit,
    seed: c.seed,
    backend: { preference: c.backend, planned: i.plannedBackend },
    // A torchrun run's trials run on PyTorch (torchrun/probe.ts): not the same measurements.
    engine: c.engine ?? 'tfjs',
    // On wasm the 4 GiB heap is the limit: host RAM beyond twice that changes no trial.
    device: { name: i.device.name, kind: i.device.kind, source: i.device.source, total: i.device.memoryTotalBytes, freeBand: memoryBand(i.plannedBackend === 'wasm' ? Math.min(i.device.memoryFreeBytes, 2 * WASM_HEAP_MAX) : i.device.memoryFreeBytes) },
    headroom: i.headroom,
  };
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
}

/** A trial spec as a stable string (keys sorted). */
export function specKey(spec: ProbeTrialSpec): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sort) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sort(x)])) : v;
  return JSON.stringify(sort(spec));
}

interface CacheFile {
  v: typeof PROBE_CACHE_VERSION;
  key: string;
  trials: { spec: string; result: ProbeTrialResult }[];
}

export class ProbeCache {
  readonly file: string;
  private readonly entries = new Map<string, ProbeTrialResult>();
  /** Trials answered from the file in this probe. */
  reused = 0;

  constructor(folder: string, readonly key: string, private readonly log?: (message: string) => void) {
    this.file = join(folder, `${key}.json`);
    try {
      const data = JSON.parse(readFileSync(this.file, 'utf8')) as CacheFile;
      if (data.v === PROBE_CACHE_VERSION && data.key === key && Array.isArray(data.trials)) for (const t of data.trials) this.entries.set(t.spec, t.result);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log?.(`probe cache ${this.file} not used: ${(e as Error).message}`);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** A runner that answers recorded specs from the cache and records what `inner` measures. */
  runner(inner: TrialRunner): TrialRunner {
    return async (spec) => {
      const k = specKey(spec);
      const hit = this.entries.get(k);
      if (hit) {
        this.reused++;
        return { ...hit, cached: true };
      }
      const r = await inner(spec);
      if (CACHEABLE.has(r.failure)) {
        const { cached: _cached, predictedBytes: _p, ...result } = r;
        this.entries.set(k, result);
        this.save();
      }
      return r;
    };
  }

  private save(): void {
    const data: CacheFile = { v: PROBE_CACHE_VERSION, key: this.key, trials: [...this.entries].map(([spec, result]) => ({ spec, result })) };
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(data));
      renameSync(tmp, this.file);
    } catch (e) {
      this.log?.(`probe cache ${this.file} not written: ${(e as Error).message}`);
    }
  }
}
