/**
 * Why a dataset has no usable image, in words: a folder without image files is not the same as a
 * folder whose every image file is unreadable (corrupt, zero bytes, unreadable, too large, named
 * as a format it is not). The message says which, with the counts and an example file.
 */
import type { DatasetReport, ProblemKind } from '../shared/dataset-types';
import { IMAGE_EXTENSIONS_TEXT } from '../shared/constants';

/** Problems that are image files the trainer cannot use. */
const FILE_KINDS: Partial<Record<ProblemKind, string>> = {
  corrupt: 'corrupt',
  'zero-byte': 'empty (0 bytes)',
  'extension-mismatch': 'not the format their name says',
  'unsupported-format': 'in an unsupported format',
  'permission-denied': 'unreadable (permission denied)',
  'too-large': 'too large',
  vanished: 'gone during the scan',
  'bad-file-name': 'named with invalid UTF-8',
};

/** The message for a dataset with no usable image (totalImages 0). */
export function noUsableImagesMessage(dataset: Pick<DatasetReport, 'root' | 'problems' | 'problemCounts'>): string {
  const parts: string[] = [];
  let files = 0;
  for (const [kind, words] of Object.entries(FILE_KINDS) as [ProblemKind, string][]) {
    const n = dataset.problemCounts[kind] ?? 0;
    if (n > 0) {
      files += n;
      parts.push(`${n} ${words}`);
    }
  }
  if (files === 0) return `No images found in ${dataset.root}: expected one subfolder per class holding ${IMAGE_EXTENSIONS_TEXT} files.`;
  const example = dataset.problems.find((p) => p.kind in FILE_KINDS);
  return (
    `None of the ${files} image file${files === 1 ? '' : 's'} in ${dataset.root} can be used: ${parts.join(', ')}` +
    `${example ? ` (e.g. ${example.message.replace(/\.$/, '')})` : ''}. Replace or re-export the images; there is nothing to train on.`
  );
}
