import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseDevice, listDevices, parseMemAvailable, type GraphicsControllerLike, type SystemInfoLike } from '../../src/core/devices/devices';

const MIB = 2 ** 20;
const GIB = 2 ** 30;

const MEMINFO = 'MemTotal:       16384000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\nBuffers:          100 kB\n';

function fakeSi(controllers: (GraphicsControllerLike & { vram?: number })[], mem = { total: 16 * GIB, available: 6 * GIB, free: 1 * GIB }): SystemInfoLike {
  return { graphics: async () => ({ controllers }), mem: async () => mem };
}

describe('listDevices', () => {
  it('lists an NVIDIA GPU from nvidia-smi figures (MiB → bytes) before host RAM and skips GPUs without figures', async () => {
    const si = fakeSi([
      { vendor: 'Intel Corporation', model: 'UHD Graphics 630', vram: 0 },
      { vendor: 'NVIDIA', model: 'NVIDIA GeForce RTX 3060', memoryTotal: 12288, memoryUsed: 300, memoryFree: 11988 },
    ]);
    const devices = await listDevices({ si, readMeminfo: async () => MEMINFO });
    assert.equal(devices.length, 2);
    assert.deepEqual(devices[0], {
      kind: 'gpu',
      name: 'NVIDIA GeForce RTX 3060',
      memoryTotalBytes: 12288 * MIB,
      memoryFreeBytes: 11988 * MIB,
      source: 'nvidia-smi',
    });
    // Host RAM: total from si.mem(), available from /proc/meminfo's MemAvailable (8,000,000 kB).
    assert.deepEqual(devices[1], { kind: 'cpu', name: 'Host RAM', memoryTotalBytes: 16 * GIB, memoryFreeBytes: 8_000_000 * 1024, source: 'os' });
    assert.equal(chooseDevice(devices).name, 'NVIDIA GeForce RTX 3060');
  });

  it('derives free memory from total − used when nvidia-smi gives no free figure', async () => {
    const devices = await listDevices({ si: fakeSi([{ vendor: 'NVIDIA', model: 'Tesla T4', memoryTotal: 15360, memoryUsed: 1360 }]), readMeminfo: async () => MEMINFO });
    assert.equal(devices[0]?.memoryFreeBytes, 14000 * MIB);
  });

  it('without a GPU plans for host RAM, falling back to si.mem().available without /proc/meminfo', async () => {
    const devices = await listDevices({ si: fakeSi([]), readMeminfo: async () => undefined });
    assert.deepEqual(devices, [{ kind: 'cpu', name: 'Host RAM', memoryTotalBytes: 16 * GIB, memoryFreeBytes: 6 * GIB, source: 'os' }]);
    const d = chooseDevice(devices);
    assert.equal(d.kind, 'cpu');
    assert.equal(d.memoryFreeBytes, 6 * GIB);
  });

  it('does not hang or throw when graphics() never answers or fails', async () => {
    const hanging: SystemInfoLike = { graphics: () => new Promise(() => {}), mem: async () => ({ total: 8 * GIB, available: 4 * GIB }) };
    const t0 = Date.now();
    const devices = await listDevices({ si: hanging, timeoutMs: 50, readMeminfo: async () => undefined });
    assert.ok(Date.now() - t0 < 30_000, 'a hang ceiling: the 50 ms timeout ends the wait');
    assert.deepEqual(
      devices.map((d) => d.kind),
      ['cpu'],
    );
    const failing: SystemInfoLike = { graphics: async () => Promise.reject(new Error('nvidia-smi: not found')), mem: async () => ({ total: 8 * GIB, available: 4 * GIB }) };
    assert.deepEqual((await listDevices({ si: failing, readMeminfo: async () => undefined })).map((d) => d.memoryFreeBytes), [4 * GIB]);
  });

  it('parses MemAvailable', () => {
    assert.equal(parseMemAvailable(MEMINFO), 8_000_000 * 1024);
    assert.equal(parseMemAvailable('MemTotal: 1 kB\n'), undefined);
  });
});

describe('chooseDevice', () => {
  const host = { kind: 'cpu' as const, name: 'Host RAM', memoryTotalBytes: 16 * GIB, memoryFreeBytes: 8 * GIB, source: 'os' as const };
  const gpu = { kind: 'gpu' as const, name: 'A', memoryTotalBytes: 24 * GIB, memoryFreeBytes: 20 * GIB, source: 'nvidia-smi' as const };
  const gpu2 = { ...gpu, name: 'B' };

  it('an override gives a planned GPU with free = total', () => {
    assert.deepEqual(chooseDevice([gpu, host], 12), {
      kind: 'gpu',
      name: 'Planned GPU (12 GiB)',
      memoryTotalBytes: 12 * GIB,
      memoryFreeBytes: 12 * GIB,
      source: 'override',
    });
    assert.equal(chooseDevice([host], 1.5).name, 'Planned GPU (1.5 GiB)');
    assert.equal(chooseDevice([host], 0.25).name, 'Planned GPU (0.25 GiB)');
    assert.throws(() => chooseDevice([host], 0), RangeError);
  });

  it('else the first GPU, else host RAM', () => {
    assert.equal(chooseDevice([host, gpu, gpu2]).name, 'A');
    assert.equal(chooseDevice([host]), host);
    assert.equal(chooseDevice([]).kind, 'cpu');
  });
});
