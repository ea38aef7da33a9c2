/**
 * Train/validation split with Keras semantics (image_dataset_from_directory): the file list is
 * shuffled once with the seed, validation = floor(split × N) files, taken from the end.
 * Same seed → same split.
 */
import { mulberry32, shuffleInPlace } from './prng';

export interface LabeledFile {
  path: string;
  /** Class index (classNames sorted by name, Keras semantics). */
  label: number;
}

export interface Split<T> {
  train: T[];
  validation: T[];
}

export function validationCount(n: number, split: number): number {
  if (!(split > 0)) return 0;
  return Math.min(n, Math.floor(split * n + 1e-9));
}

export function splitFiles<T>(files: readonly T[], validationSplit: number, seed: number): Split<T> {
  const shuffled = shuffleInPlace([...files], mulberry32(seed));
  const nVal = validationCount(shuffled.length, validationSplit);
  return { train: shuffled.slice(0, shuffled.length - nVal), validation: shuffled.slice(shuffled.length - nVal) };
}
