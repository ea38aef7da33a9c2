/** The file list Keras `image_dataset_from_directory` would load, with labels. */
import { join, resolve, sep } from 'node:path';
import { SUPPORTED_EXTENSIONS, extensionOf, nodeWalkFs, readRoot, throwIfAborted, walkClass, type WalkFs } from './walk';

export interface DatasetFiles {
  /** Class names, sorted by code point; a file's label is its index here. */
  classNames: string[];
  /** Absolute image paths in Keras order: class by class, sorted walk. */
  files: { path: string; label: number }[];
  /** Folders that could not be read (their images are missing from `files`), with the error code. */
  unreadable: { path: string; code: string; isClassFolder: boolean }[];
}

/**
 * Lists the images under `rootArg` (resolved to an absolute path) as Keras would: one class per immediate subfolder (sorted), images
 * (.bmp .gif .jpeg .jpg .png, any case) found recursively, links followed as Keras does (see
 * walk.ts). Unreadable folders are skipped and listed in `unreadable` (the inspector reports them). Throws DatasetInputError when root is
 * missing or not a folder; rejects with an AbortError when `signal` aborts.
 */
export async function listDatasetFiles(rootArg: string, opts: { signal?: AbortSignal; fs?: WalkFs } = {}): Promise<DatasetFiles> {
  const { signal, fs = nodeWalkFs } = opts;
  const root = resolve(rootArg);
  throwIfAborted(signal);
  const { classNames } = await readRoot(root, fs);
  const files: { path: string; label: number }[] = [];
  const unreadable: DatasetFiles['unreadable'] = [];
  for (let label = 0; label < classNames.length; label++) {
    const classDir = join(root, classNames[label] as string);
    for await (const listing of walkClass(classDir, fs, signal)) {
      if (listing.error) unreadable.push({ path: listing.dir, code: listing.error.code ?? 'EIO', isClassFolder: listing.dir === classDir });
      for (const name of listing.files) {
        // listing.dir is normalised already: plain concatenation is much cheaper than join on 100k files.
        if (SUPPORTED_EXTENSIONS.has(extensionOf(name))) files.push({ path: listing.dir + sep + name, label });
      }
    }
    throwIfAborted(signal);
  }
  return { classNames, files, unreadable };
}

/**
 * Why a dataset with these classes cannot train a classifier, or undefined when it can: Keras
 * makes one label per class folder, and a single class gives tfjs's "oneHot: depth must be >=2".
 */
export function tooFewClasses(root: string, classNames: readonly string[]): string | undefined {
  if (classNames.length === 0) return `${root}: no class subfolders (expected <dataset>/<class>/<images>)`;
  if (classNames.length === 1) return `${root} has only one class folder (${classNames[0]}): a classifier needs at least two classes, so add one subfolder per class.`;
  return undefined;
}

/** Why an unreadable class folder stops training (its class would silently have no images), or undefined. */
export function unreadableClassFolder(listing: DatasetFiles): string | undefined {
  const u = listing.unreadable.find((x) => x.isClassFolder);
  if (!u) return undefined;
  const why = u.code === 'EACCES' || u.code === 'EPERM' ? 'permission denied: fix its permissions (e.g. chmod a+rx)' : `${u.code}: check the disk and the folder`;
  return `Class folder ${u.path} cannot be read (${why}); its class would have no images.`;
}
