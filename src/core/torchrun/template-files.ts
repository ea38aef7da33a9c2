/**
 * The Python files a torchrun run folder gets (./template/*.py): in the source tree next to this
 * file, in a build under dist/torchrun/ (esbuild.mjs must copy them; .vscodeignore must ship them).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The translator so far; the training script (train.py) and the copy into a run folder are still to come (issue 20). */
export const TEMPLATE_FILES = ['tfjs_torch.py'] as const;

/** The folder holding the Python files, or an Error saying where it looked. */
export function templateDir(): string {
  const candidates = [join(__dirname, 'torchrun'), join(__dirname, 'template')];
  const found = candidates.find((d) => existsSync(join(d, 'tfjs_torch.py')));
  if (!found) throw new Error(`the torchrun engine's Python files are missing (looked in ${candidates.join(', ')}); rebuild with "npm run build"`);
  return found;
}

/** The path of one Python file. */
export function templatePath(name: (typeof TEMPLATE_FILES)[number]): string {
  return join(templateDir(), name);
}
