/** What the dataset inspector reports. This shape is part of the CLI's `--json` contract. */

export type ProblemKind =
  | 'zero-byte'
  | 'corrupt'
  | 'extension-mismatch'
  | 'unsupported-format'
  | 'root-file'
  | 'empty-class'
  | 'single-class'
  | 'no-classes'
  | 'permission-denied'
  | 'symlink-skipped'
  | 'too-large'
  | 'bad-file-name'
  | 'vanished';

/**
 * Images with more pixels than this are refused from their header, before any pixel is decoded,
 * by the trainer (sharp's limitInputPixels) and reported as 'too-large' by the inspection.
 * 50 megapixels: a 7071×7071 image, 200 MB as RGBA.
 */
export const MAX_IMAGE_PIXELS = 50_000_000;

export interface DatasetProblem {
  /** Absolute path of the file or folder the problem is about. */
  path: string;
  kind: ProblemKind;
  /** One sentence a person can act on. */
  message: string;
}

export interface Distribution {
  min: number;
  median: number;
  p95: number;
  max: number;
}

export interface HistogramBin {
  /** Inclusive lower edge, exclusive upper edge (the last bin includes its upper edge). */
  from: number;
  to: number;
  count: number;
}

export interface DatasetReport {
  root: string;
  /** Classes are the immediate subfolders of root, sorted by name (Keras semantics). */
  classes: { name: string; count: number }[];
  /** Images Keras would load (supported extension, readable header). */
  totalImages: number;
  /** Lower-case extension without the dot (jpeg and jpg kept apart) → count. */
  formats: Record<string, number>;
  /** Bytes on disk of the counted images. */
  bytesOnDisk: number;
  width: Distribution;
  height: Distribution;
  widthHistogram: HistogramBin[];
  heightHistogram: HistogramBin[];
  /** width / height. */
  aspectRatio: Distribution;
  /** Channels → count, where the header tells (e.g. {"1": 10, "3": 990}); "unknown" otherwise. */
  channels: Record<string, number>;
  /** Largest class count / smallest class count; null when a class is empty or there are no classes. */
  imbalanceRatio: number | null;
  validationSplit: number;
  /** Keras semantics: validation = floor(split × N), train = N − validation. */
  train: number;
  validation: number;
  /** Decoded size of the whole dataset at the target image size. */
  decoded: { imageSize: [number, number]; channels: number; uint8Bytes: number; float32Bytes: number };
  problems: DatasetProblem[];
  /** Exact problem counts by kind (the `problems` list itself is capped). */
  problemCounts: Partial<Record<ProblemKind, number>>;
  /** Wall time of the scan in milliseconds. */
  scanMs: number;
}

export interface ScanProgress {
  filesSeen: number;
  imagesFound: number;
}

export interface InspectOptions {
  /** Fraction of images held out for validation, 0 ≤ f < 1. Default 0.2. */
  validationSplit?: number;
  /** Target [height, width] for the decoded-size estimate. Default [256, 256] (Keras). */
  imageSize?: [number, number];
  /** Target channels for the decoded-size estimate. Default 3. */
  channels?: number;
  /** Called now and then (at most every ~100 ms) while scanning. */
  onProgress?: (p: ScanProgress) => void;
  /** Aborting rejects the returned promise with an error whose name is "AbortError". */
  signal?: AbortSignal;
  /** Cap on stored problems (counts stay exact). Default 1000. */
  maxProblems?: number;
}

/** Thrown for input that is not a dataset at all (missing folder, a file, unreadable root). */
export class DatasetInputError extends Error {
  override readonly name = 'DatasetInputError';
}
