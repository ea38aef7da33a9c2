/**
 * Devices the plan can be made for: GPUs that report their memory (nvidia-smi, read through
 * systeminformation) and the host's RAM. systeminformation is injectable so tests can feed it
 * fake nvidia-smi results.
 */
import { readFile } from 'node:fs/promises';
import { freemem, totalmem } from 'node:os';
import type { DeviceInfo } from '../shared/device-types';
import type { BackendName } from '../shared/constants';

const MIB = 2 ** 20;
const GIB = 2 ** 30;

/** The part of systeminformation's graphics() controller data we read (memory figures in MiB). */
export interface GraphicsControllerLike {
  vendor?: string;
  model?: string;
  name?: string;
  memoryTotal?: number;
  memoryUsed?: number;
  memoryFree?: number;
}

/** The part of systeminformation we use. */
export interface SystemInfoLike {
  graphics(): Promise<{ controllers: GraphicsControllerLike[] }>;
  mem(): Promise<{ total: number; available?: number; free?: number }>;
}

export interface ListDevicesOptions {
  /** Defaults to the systeminformation package. */
  si?: SystemInfoLike;
  /** Bound on each query (graphics() can run several external tools). Default 3000 ms. */
  timeoutMs?: number;
  /** Reads /proc/meminfo; return undefined where there is none. Injectable for tests. */
  readMeminfo?: () => Promise<string | undefined>;
}

/** Resolves to undefined when `p` rejects or takes longer than `ms`; never hangs. */
async function bounded<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  // Not unref'd: a never-settling query must still resolve after `ms` (cleared below when it settles).
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([p.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function defaultMeminfo(): Promise<string | undefined> {
  try {
    return await readFile('/proc/meminfo', 'utf8');
  } catch {
    return undefined;
  }
}

/** MemAvailable from /proc/meminfo text, in bytes (the kernel's estimate of memory a new process can use). */
export function parseMemAvailable(meminfo: string): number | undefined {
  const m = /^MemAvailable:\s+(\d+)\s*kB/m.exec(meminfo);
  return m ? Number(m[1]) * 1024 : undefined;
}

function isNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** GPUs with memory figures (others — integrated GPUs, cards without nvidia-smi — cannot be planned for). */
export function gpusFromControllers(controllers: GraphicsControllerLike[]): DeviceInfo[] {
  const out: DeviceInfo[] = [];
  for (const c of controllers) {
    if (!isNumber(c.memoryTotal) || c.memoryTotal <= 0) continue;
    const free = isNumber(c.memoryFree) ? c.memoryFree : isNumber(c.memoryUsed) ? c.memoryTotal - c.memoryUsed : undefined;
    if (free === undefined || free < 0) continue;
    out.push({
      kind: 'gpu',
      name: (c.name || c.model || c.vendor || 'GPU').trim(),
      memoryTotalBytes: Math.round(c.memoryTotal * MIB),
      memoryFreeBytes: Math.round(Math.min(free, c.memoryTotal) * MIB),
      source: 'nvidia-smi',
    });
  }
  return out;
}

let siModule: Promise<SystemInfoLike> | undefined;
/** Loaded when devices are first read, never at start-up: the bundles require it from dist/vendor/systeminformation.js (esbuild.mjs). */
function loadSystemInformation(): Promise<SystemInfoLike> {
  siModule ??= import('systeminformation').then((m) => (m.default ?? m) as unknown as SystemInfoLike);
  return siModule;
}

/** GPUs (first) and the host's RAM as a `cpu` device. Never throws; bounded by `timeoutMs` per query. */
export async function listDevices(opts: ListDevicesOptions = {}): Promise<DeviceInfo[]> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  const si = opts.si ?? (await bounded(loadSystemInformation(), timeoutMs));
  const [graphics, mem, meminfo] = await Promise.all([
    si ? bounded(si.graphics(), timeoutMs) : undefined,
    si ? bounded(si.mem(), timeoutMs) : undefined,
    bounded((opts.readMeminfo ?? defaultMeminfo)(), timeoutMs),
  ]);
  const gpus = gpusFromControllers(graphics?.controllers ?? []);
  const total = mem && isNumber(mem.total) && mem.total > 0 ? mem.total : totalmem();
  // MemAvailable counts reclaimable page cache; os.freemem() (MemFree) does not and understates.
  const available = (meminfo !== undefined ? parseMemAvailable(meminfo) : undefined) ?? (mem && isNumber(mem.available) && mem.available > 0 ? mem.available : freemem());
  const host: DeviceInfo = { kind: 'cpu', name: 'Host RAM', memoryTotalBytes: total, memoryFreeBytes: Math.min(available, total), source: 'os' };
  return [...gpus, host];
}

/** A synthetic device for planning: "what if I had a 12 GiB card". */
export function plannedDevice(gib: number, kind: DeviceInfo['kind'] = 'gpu'): DeviceInfo {
  const bytes = Math.round(gib * GIB);
  const size = `${Number(gib.toPrecision(3))} GiB`;
  return { kind, name: kind === 'gpu' ? `Planned GPU (${size})` : `Planned host memory (${size})`, memoryTotalBytes: bytes, memoryFreeBytes: bytes, source: 'override' };
}

/**
 * The device to plan for: the override, else the first GPU, else host RAM. With the backend that
 * will run (`backend`, when known), the device is the one it trains on: a GPU only for
 * tensorflow-gpu; any other backend is bound by host memory (an override is then host memory of that size).
 */
export function chooseDevice(devices: DeviceInfo[], overrideGiB?: number, backend?: BackendName): DeviceInfo {
  const onGpu = backend === undefined || backend === 'tensorflow-gpu';
  if (overrideGiB !== undefined) {
    if (!(overrideGiB > 0) || !Number.isFinite(overrideGiB)) throw new RangeError(`device memory override must be a positive number of GiB; got ${overrideGiB}`);
    return plannedDevice(overrideGiB, onGpu ? 'gpu' : 'cpu');
  }
  const gpu = onGpu ? devices.find((d) => d.kind === 'gpu') : undefined;
  if (gpu) return gpu;
  const host = devices.find((d) => d.kind === 'cpu');
  if (host) return host;
  return { kind: 'cpu', name: 'Host RAM', memoryTotalBytes: totalmem(), memoryFreeBytes: freemem(), source: 'os' };
}
