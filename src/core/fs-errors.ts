/**
 * File-system errors as a person needs them: what the code means and what to do (describeFsError),
 * whether it is input to fix (a path, permissions, a read-only workspace: exit 2) or a failure
 * while working (a full disk, too many open files, an I/O error: exit 1), and the true cause of a
 * recursive mkdir (Node's `mkdirSync(p, { recursive: true })` says ENOENT when a parent cannot be
 * created on a read-only file system or without permission; the non-recursive mkdir of the first
 * missing folder says EROFS / EACCES).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** Codes that mean the machine ran out of something, or the disk failed: nothing in the input to fix. */
const RESOURCE_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE', 'EIO', 'ENOMEM', 'EBUSY', 'EAGAIN', 'ETXTBSY']);

export function fsErrorCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True for a failure while working (full disk, no file handles left, I/O error): exit 1, not 2. */
export function isResourceFsError(e: unknown): boolean {
  const code = fsErrorCode(e);
  return code !== undefined && RESOURCE_CODES.has(code);
}

/** What a file-system error code means for a person, with what to do. */
export function describeFsError(e: unknown): string {
  const code = fsErrorCode(e);
  switch (code) {
    case 'ENOSPC':
      return 'the disk is full (ENOSPC): free some space';
    case 'EDQUOT':
      return 'the disk quota is exceeded (EDQUOT): free some space';
    case 'EROFS':
      return 'the file system is read-only (EROFS): choose a writable workspace';
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code}): check the folder's permissions`;
    case 'ENOENT':
      return 'a parent folder is missing or cannot be created (ENOENT): check the path';
    case 'ENOTDIR':
      return 'a parent is a file, not a folder (ENOTDIR)';
    case 'EISDIR':
      return 'a folder is in the way where a file belongs (EISDIR)';
    case 'EMFILE':
    case 'ENFILE':
      return `too many open files (${code}): close other programs or raise the limit (ulimit -n)`;
    case 'EIO':
      return 'an input/output error (EIO): the disk or network drive failed; check it';
    case 'ENAMETOOLONG':
      return 'a file name or path is too long (ENAMETOOLONG): choose a shorter path';
    case 'ELOOP':
      return 'too many symbolic links in the path (ELOOP): check the links';
    case 'ENOMEM':
      return 'the system is out of memory (ENOMEM)';
    case 'EBUSY':
      return 'the file or folder is busy (EBUSY): close what uses it';
    default:
      return code ? `${code}: ${(e as Error).message.split('\n')[0]}` : String(e instanceof Error ? e.message : e);
  }
}

/**
 * The true cause of a failed recursive mkdir: on ENOENT, the non-recursive mkdir of the first
 * missing folder below the deepest one that exists (which says EROFS, EACCES, ENOTDIR…). Returns
 * the original error when nothing better is found.
 */
export function trueMkdirError(path: string, e: unknown, mkdir: (p: string) => unknown = (p) => mkdirSync(p)): unknown {
  if (fsErrorCode(e) !== 'ENOENT') return e;
  let missing = path;
  for (let up = dirname(missing); up !== missing && !existsSync(up); up = dirname(up)) missing = up;
  if (!existsSync(dirname(missing))) return e; // the root itself is missing: ENOENT is the truth
  try {
    mkdir(missing);
  } catch (inner) {
    if (fsErrorCode(inner) && fsErrorCode(inner) !== 'EEXIST') return inner;
  }
  return e;
}

/** A file-system failure while working (full disk, no file handles): exit 1, the message says what to do. */
export class FsResourceError extends Error {
  override readonly name = 'FsResourceError';
  readonly kind = 'internal' as const;
}
