/**
 * The one directory walker behind both `listDatasetFiles` and `inspectDataset`.
 *
 * Keras `image_dataset_from_directory` semantics (keras/src/utils/dataset_utils.py):
 * - classes are the immediate subfolders of root, sorted by name (Python sorts str by code point),
 *   hidden folders (".name") are not classes;
 * - images are found recursively inside each class folder, walked in sorted-path order: every
 *   directory's files (sorted) come before those of the directories it contains, and directories
 *   are visited in the order of their full path strings;
 * - symbolic links (Keras lists with os.walk(followlinks=False) and tf.io.gfile.isdir):
 *   a link in root to a folder is a class (isdir follows links) and is walked; a link to a file
 *   inside a class folder is an image like any other; a link to a folder inside a class folder
 *   is not descended into (followlinks=False). Loops cannot happen: no link is followed while
 *   walking, only the class folder itself. Broken links are reported, not listed.
 * - names that are not valid UTF-8 (Node decodes them with U+FFFD, so they cannot be opened by
 *   name) are reported, not listed.
 */
import { promises as fsp } from 'node:fs';
import type { Dirent } from 'node:fs';
import { join } from 'node:path';
import { IMAGE_EXTENSIONS } from '../shared/constants';
import { DatasetInputError } from '../shared/dataset-types';

/** Extensions Keras loads (lower case, no dot). */
export const SUPPORTED_EXTENSIONS: ReadonlySet<string> = new Set(IMAGE_EXTENSIONS);

/** Common image extensions that Keras skips silently: reported as `unsupported-format`. */
export const UNSUPPORTED_IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  'webp', 'tif', 'tiff', 'heic', 'heif', 'avif', 'svg', 'ico', 'cur', 'icns', 'jxl', 'jp2', 'j2k', 'jpx',
  'jfif', 'pjpeg', 'pjp', 'psd', 'tga', 'dds', 'ktx', 'pbm', 'pgm', 'ppm', 'pnm', 'exr', 'hdr',
  'raw', 'dng', 'cr2', 'cr3', 'nef', 'arw', 'orf', 'rw2', 'raf',
]);

/** The few file-system calls the walker makes: a seam for tests (e.g. EACCES as root). */
export interface WalkFs {
  readdir(path: string): Promise<Dirent[]>;
  stat(path: string): Promise<{ isDirectory(): boolean }>;
}

export const nodeWalkFs: WalkFs = {
  readdir: (path) => fsp.readdir(path, { withFileTypes: true }),
  stat: (path) => fsp.stat(path),
};

/** Lower-case extension after the last dot, '' when none. A file named ".png" has extension "png" (as in Python's endswith). */
export function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1).toLowerCase();
}

const ASTRAL_OR_HIGH = /[\ud800-\uffff]/;

/** Compares strings by Unicode code point, as Python's `sorted` does on str. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (part of a code point ≥ U+10000) sorts after any BMP unit ≥ U+E000.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys && (xs ? y >= 0xe000 : x >= 0xe000)) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Sorts in place by code point; the plain (UTF-16) sort is the same unless a name has a unit ≥ U+D800. */
export function sortByCodePoint(names: string[]): string[] {
  names.sort();
  if (names.some((s) => ASTRAL_OR_HIGH.test(s))) names.sort(compareCodePoints);
  return names;
}

/** The error a cancelled scan rejects with (name "AbortError", whatever reason the signal carries). */
export function abortError(): Error {
  const e = new Error('The dataset scan was cancelled.');
  e.name = 'AbortError';
  return e;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError();
}

function isErrno(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string';
}

export interface RootListing {
  /** Absolute-or-as-given root. */
  root: string;
  /** Class folder names, sorted by code point. */
  classNames: string[];
  /** Names of regular files directly in root (sorted). */
  rootFiles: string[];
  /** Names of symbolic links directly in root that are not links to folders (sorted): neither classes nor files for Keras here. */
  rootSymlinks: string[];
}

/** A name Node could not decode as UTF-8 (it holds U+FFFD): it cannot be opened by this name. */
export function isUndecodableName(name: string): boolean {
  return name.includes('\ufffd');
}

/** Whether a symbolic link points to a folder ('dir'), something else ('file') or nowhere ('broken'). */
async function linkTarget(path: string, fs: WalkFs): Promise<'dir' | 'file' | 'broken'> {
  try {
    return (await fs.stat(path)).isDirectory() ? 'dir' : 'file';
  } catch {
    return 'broken';
  }
}

/** Reads root. Throws DatasetInputError when root is missing, not a folder, or unreadable. */
export async function readRoot(root: string, fs: WalkFs = nodeWalkFs): Promise<RootListing> {
  let entries: Dirent[];
  try {
    const st = await fs.stat(root);
    if (!st.isDirectory()) throw new DatasetInputError(`Dataset path ${root} is a file, not a folder: point it at the folder that holds one subfolder per class.`);
    entries = await fs.readdir(root);
  } catch (e) {
    if (e instanceof DatasetInputError) throw e;
    if (isErrno(e) && (e.code === 'ENOENT' || e.code === 'ENOTDIR')) {
      throw new DatasetInputError(`Dataset folder ${root} does not exist: check the path.`);
    }
    if (isErrno(e) && (e.code === 'EACCES' || e.code === 'EPERM')) {
      throw new DatasetInputError(`Dataset folder ${root} cannot be read (permission denied): check its permissions.`);
    }
    throw new DatasetInputError(`Dataset folder ${root} cannot be read: ${e instanceof Error ? e.message : String(e)}`);
  }
  const classNames: string[] = [];
  const rootFiles: string[] = [];
  const rootSymlinks: string[] = [];
  for (const d of entries) {
    if (d.isSymbolicLink()) {
      // tf.io.gfile.isdir follows links: a link to a folder is a class folder.
      if ((await linkTarget(join(root, d.name), fs)) === 'dir') {
        if (!d.name.startsWith('.')) classNames.push(d.name);
      } else rootSymlinks.push(d.name);
    } else if (d.isDirectory()) {
      if (!d.name.startsWith('.')) classNames.push(d.name);
    } else if (d.isFile()) rootFiles.push(d.name);
  }
  return { root, classNames: sortByCodePoint(classNames), rootFiles: sortByCodePoint(rootFiles), rootSymlinks: sortByCodePoint(rootSymlinks) };
}

/** One directory inside a class folder. */
export interface DirListing {
  /** Path of the directory (root joined with the class name and subfolders). */
  dir: string;
  /** Names of regular files in it, every extension, sorted by code point. */
  files: string[];
  /** Names of symbolic links to folders in it, sorted: not descended into (Keras: followlinks=False). Links to files are in `files`. */
  linkedDirs: string[];
  /** Names of symbolic links that point nowhere, sorted. */
  brokenLinks: string[];
  /** Names that are not valid UTF-8, sorted (reported, not listed). */
  badNames: string[];
  /** Set when the directory could not be read; files and symlinks are then empty. */
  error?: NodeJS.ErrnoException;
}

/** Listings kept from the first pass up to this many names in all; beyond it folders are read again. */
const CACHE_NAMES = 100_000;

async function listDir(dir: string, fs: WalkFs): Promise<{ listing: DirListing; subdirs: string[] }> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir);
  } catch (e) {
    const error = isErrno(e) ? e : Object.assign(new Error(String(e)), { code: 'EUNKNOWN' });
    return { listing: { dir, files: [], linkedDirs: [], brokenLinks: [], badNames: [], error }, subdirs: [] };
  }
  const files: string[] = [];
  const linkedDirs: string[] = [];
  const brokenLinks: string[] = [];
  const badNames: string[] = [];
  const subdirs: string[] = [];
  for (const d of entries) {
    if (isUndecodableName(d.name)) badNames.push(d.name); // a folder too: its path cannot be opened
    else if (d.isSymbolicLink()) {
      const t = await linkTarget(join(dir, d.name), fs);
      if (t === 'file') files.push(d.name);
      else if (t === 'dir') linkedDirs.push(d.name);
      else brokenLinks.push(d.name);
    } else if (d.isDirectory()) subdirs.push(join(dir, d.name));
    else if (d.isFile()) files.push(d.name);
  }
  return { listing: { dir, files: sortByCodePoint(files), linkedDirs: sortByCodePoint(linkedDirs), brokenLinks: sortByCodePoint(brokenLinks), badNames: sortByCodePoint(badNames) }, subdirs };
}

/**
 * Walks one class folder, yielding one listing per directory in Keras' order: directories sorted
 * by their full path string (Python's `sorted(os.walk(...))`: "a" < "a-b" < "a/x"), files sorted
 * within each. A first pass finds the folders; their listings are kept when small, read again otherwise.
 */
export async function* walkClass(classDir: string, fs: WalkFs = nodeWalkFs, signal?: AbortSignal): AsyncGenerator<DirListing> {
  throwIfAborted(signal);
  const first = await listDir(classDir, fs);
  if (first.subdirs.length === 0) {
    // Flat class folder (the common case): one read.
    yield first.listing;
    return;
  }
  const cached = new Map<string, DirListing>([[classDir, first.listing]]);
  let cachedNames = first.listing.files.length;
  const dirs: string[] = [classDir];
  const stack = first.subdirs;
  while (stack.length > 0) {
    throwIfAborted(signal);
    const dir = stack.pop() as string;
    dirs.push(dir);
    const { listing, subdirs } = await listDir(dir, fs);
    for (const s of subdirs) stack.push(s);
    if (cachedNames + listing.files.length <= CACHE_NAMES) {
      cached.set(dir, listing);
      cachedNames += listing.files.length;
    }
  }
  sortByCodePoint(dirs);
  for (const dir of dirs) {
    throwIfAborted(signal);
    const listing = cached.get(dir) ?? (await listDir(dir, fs)).listing;
    cached.delete(dir);
    yield listing;
  }
}
