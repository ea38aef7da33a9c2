/**
 * The Python files a torchrun run folder gets (./template/*.py): in the source tree next to this
 * file, in a build under dist/torchrun/ (esbuild.mjs copies them; .vscodeignore ships them).
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The translator, the training script (it imports tfjs_torch.py from its own folder), torchrun's
 * launcher (launch.py: torchrun with a fix for torch < 2.0 on Python 3.11) and the probe's trial
 * (probe.py: one trial on PyTorch, ./probe.ts).
 */
export const TEMPLATE_FILES = ['tfjs_torch.py', 'train.py', 'launch.py', 'probe.py'] as const;
export const TRAIN_SCRIPT = 'train.py';
export const PROBE_SCRIPT = 'probe.py';
export const LAUNCH_SCRIPT = 'launch.py';

/** The folder holding the Python files, or an Error saying where it looked. */
export function templateDir(): string {
  const candidates = [join(__dirname, 'torchrun'), join(__dirname, 'template')];
  const found = candidates.find((d) => TEMPLATE_FILES.every((f) => existsSync(join(d, f))));
  if (!found) throw new Error(`the torchrun engine's Python files are missing (looked in ${candidates.join(', ')}); rebuild with "npm run build"`);
  return found;
}

/** The path of one Python file. */
export function templatePath(name: (typeof TEMPLATE_FILES)[number]): string {
  return join(templateDir(), name);
}

/** Copies the Python files into a run folder: it then runs with no copy of Batch Advisor there. */
export function copyTemplates(runDir: string): void {
  const dir = templateDir();
  for (const f of TEMPLATE_FILES) copyFileSync(join(dir, f), join(runDir, f));
}
