/**
 * Evaluation of a classifier on labelled images: the confusion matrix, per-class precision and
 * recall, and the most confidently wrong images. Pure arithmetic over the predictions the trainer
 * makes (src/trainer/eval/), browser-safe: the CLI prints it and the training panel draws it.
 */

/** One image's prediction: class indices in the model's class order. */
export interface Prediction {
  path: string;
  /** True class index. */
  label: number;
  /** Predicted class index. */
  predicted: number;
  /** The model's probability for the predicted class (0–1). */
  confidence: number;
}

export interface ClassFigures {
  class: string;
  /** null when nothing was predicted as this class (0/0). */
  precision: number | null;
  /** null when the folder has no image of this class (support 0). */
  recall: number | null;
  /** Images of this class in the folder. */
  support: number;
}

export interface WrongImage {
  path: string;
  true: string;
  predicted: string;
  confidence: number;
}

export interface EvaluationResult {
  /** The model's classes, in its output order (also the matrix's row and column order). */
  classes: string[];
  images: number;
  accuracy: number;
  /** Mean loss per image, computed as training computes it (the model's head). */
  loss: number;
  perClass: ClassFigures[];
  /** confusionMatrix[true][predicted]: image counts. */
  confusionMatrix: number[][];
  /** The most confidently wrong images, most confident first (at most WRONG_LIST_MAX). */
  wrong: WrongImage[];
  /** Every image's path by cell, `cells[true][predicted]`, for the panel's "click a cell" (capped per cell). */
  cells?: string[][][];
  /** What was evaluated: "validation split" or the folder. */
  source?: string;
  /** The model.json evaluated. */
  model?: string;
  /** Files that could not be decoded (left out of every figure). */
  skipped?: number;
}

export const WRONG_LIST_MAX = 50;
/** Paths kept per confusion-matrix cell for the panel. */
export const CELL_PATHS_MAX = 200;

/** counts[true][predicted] over `k` classes. */
export function confusionMatrix(predictions: readonly Prediction[], k: number): number[][] {
  const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (const p of predictions) {
    const row = m[p.label];
    if (row && p.predicted >= 0 && p.predicted < k) row[p.predicted] = (row[p.predicted] ?? 0) + 1;
  }
  return m;
}

/** Precision (column-wise) and recall (row-wise) of each class; null where the ratio is 0/0. */
export function perClassFigures(matrix: readonly (readonly number[])[], classes: readonly string[]): ClassFigures[] {
  return classes.map((name, c) => {
    const support = (matrix[c] ?? []).reduce((a, b) => a + b, 0);
    const predictedAs = matrix.reduce((a, row) => a + (row[c] ?? 0), 0);
    const hit = matrix[c]?.[c] ?? 0;
    return { class: name, precision: predictedAs > 0 ? hit / predictedAs : null, recall: support > 0 ? hit / support : null, support };
  });
}

/** The wrong predictions, most confident first (ties by path), at most `max`. */
export function mostConfidentlyWrong(predictions: readonly Prediction[], classes: readonly string[], max = WRONG_LIST_MAX): WrongImage[] {
  return predictions
    .filter((p) => p.predicted !== p.label)
    .sort((a, b) => b.confidence - a.confidence || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .slice(0, max)
    .map((p) => ({ path: p.path, true: classes[p.label] ?? String(p.label), predicted: classes[p.predicted] ?? String(p.predicted), confidence: p.confidence }));
}

/** Image paths of each cell [true][predicted], at most `max` per cell. */
export function cellPaths(predictions: readonly Prediction[], k: number, max = CELL_PATHS_MAX): string[][][] {
  const cells = Array.from({ length: k }, () => Array.from({ length: k }, () => [] as string[]));
  for (const p of predictions) {
    const cell = cells[p.label]?.[p.predicted];
    if (cell && cell.length < max) cell.push(p.path);
  }
  return cells;
}

/** The whole result from the predictions and the summed loss (`lossSum` = Σ per-image loss). */
export function summarizeEvaluation(predictions: readonly Prediction[], classes: readonly string[], lossSum: number): EvaluationResult {
  const k = classes.length;
  const matrix = confusionMatrix(predictions, k);
  const correct = predictions.filter((p) => p.predicted === p.label).length;
  const n = predictions.length;
  return {
    classes: [...classes],
    images: n,
    accuracy: n > 0 ? correct / n : 0,
    loss: n > 0 ? lossSum / n : 0,
    perClass: perClassFigures(matrix, classes),
    confusionMatrix: matrix,
    wrong: mostConfidentlyWrong(predictions, classes),
    cells: cellPaths(predictions, k),
  };
}

/**
 * Matches a folder's class names with the model's by name. `labelOf[folderIndex]` is the model's
 * class index; `unknown` lists the folder's classes the model does not have (an input error).
 */
export function matchClasses(modelClasses: readonly string[], folderClasses: readonly string[]): { labelOf: number[]; unknown: string[] } {
  const index = new Map(modelClasses.map((c, i) => [c, i]));
  const unknown = folderClasses.filter((c) => !index.has(c));
  return { labelOf: folderClasses.map((c) => index.get(c) ?? -1), unknown };
}
