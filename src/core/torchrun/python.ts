/**
 * The Python that runs a torchrun engine run: the first of the candidates (an explicit one, else
 * `python3` on PATH, then Debian's /usr/bin/python3) that imports torch. It reports torch's version,
 * whether CUDA is usable and the device count, so the launcher can say which backend runs (NCCL on
 * CUDA, Gloo on the CPU) — or, with none, exactly what is missing and how to install it.
 */
import { execFile } from 'node:child_process';

export interface TorchPython {
  /** The interpreter that imports torch. */
  python: string;
  torchVersion: string;
  cuda: boolean;
  cudaDevices: number;
  /** torchvision's version when it imports, else undefined. */
  torchvisionVersion?: string;
}

/** What the probe prints: one JSON line. */
const PROBE = [
  'import json, sys',
  'try:\n import torch\nexcept Exception as e:\n print(json.dumps({"torch": None, "why": str(e)})); sys.exit(0)',
  'try:\n import torchvision; tv = torchvision.__version__\nexcept Exception:\n tv = None',
  'try:\n import PIL; pil = PIL.__version__\nexcept Exception:\n pil = None',
  'print(json.dumps({"torch": torch.__version__, "cuda": torch.cuda.is_available(), "devices": torch.cuda.device_count(), "torchvision": tv, "pil": pil}))',
].join('\n');

interface ProbeOut {
  torch: string | null;
  why?: string;
  cuda?: boolean;
  devices?: number;
  torchvision?: string | null;
  pil?: string | null;
}

function probe(python: string, timeoutMs: number): Promise<ProbeOut | string> {
  return new Promise((resolve) => {
    execFile(python, ['-c', PROBE], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        if (line) return resolve(JSON.parse(line) as ProbeOut);
      } catch {
        /* said below */
      }
      const code = (err as NodeJS.ErrnoException | null)?.code;
      resolve(code === 'ENOENT' ? `${python}: not found` : `${python}: ${err ? err.message.split('\n')[0] : 'no answer'}`);
    });
  });
}

/** Thrown when no candidate has torch: the message names each one and what it lacks, and how to install. */
export class MissingTorchError extends Error {
  override readonly name = 'MissingTorchError';
}

export const DEFAULT_PYTHONS = ['python3', '/usr/bin/python3'];

export const INSTALL_HINT = 'install PyTorch for it (Debian/Ubuntu: sudo apt-get install python3-torch python3-pil; or pip install torch pillow), or name the interpreter with --python';

/** The first interpreter of `candidates` that imports torch (and PIL, which reads the images). */
export async function findTorchPython(candidates: readonly string[] = DEFAULT_PYTHONS, timeoutMs = 60_000): Promise<TorchPython> {
  const why: string[] = [];
  for (const python of [...new Set(candidates)]) {
    const r = await probe(python, timeoutMs);
    if (typeof r === 'string') why.push(r);
    else if (r.torch === null) why.push(`${python}: no torch (${r.why ?? 'import failed'})`);
    else if (!r.pil) why.push(`${python}: torch ${r.torch} but no PIL (Pillow) to read images`);
    else return { python, torchVersion: r.torch, cuda: r.cuda === true, cudaDevices: r.devices ?? 0, ...(r.torchvision ? { torchvisionVersion: r.torchvision } : {}) };
  }
  throw new MissingTorchError(`the torchrun engine needs Python with torch: ${why.join('; ')}. To fix: ${INSTALL_HINT}`);
}
