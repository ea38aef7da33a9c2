/**
 * Early stopping (config `earlyStopping`), as Keras's EarlyStopping: after each epoch, the
 * monitored metric must improve on the best so far by more than `minDelta`; after `patience`
 * epochs in a row that do not, the run ends 'completed' with the reason. Without validation data
 * the validation metrics are absent: it monitors the training loss / accuracy instead and says so.
 */
import type { EarlyStoppingPlan } from '../../../core/shared/plan';

export interface EpochMetrics {
  loss: number;
  accuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
}

/** The monitored value ("val_loss" falls back to the training loss without validation) and its name. */
export function monitored(monitor: EarlyStoppingPlan['monitor'], m: EpochMetrics): { name: string; value: number } {
  if (monitor === 'val_accuracy') return m.valAccuracy !== null ? { name: 'val_accuracy', value: m.valAccuracy } : { name: 'accuracy', value: m.accuracy };
  return m.valLoss !== null ? { name: 'val_loss', value: m.valLoss } : { name: 'loss', value: m.loss };
}

export class EarlyStopping {
  private best = NaN;
  private bestEpoch = 0;
  private wait = 0;
  private warned = false;

  constructor(
    private readonly plan: EarlyStoppingPlan,
    private readonly log: (message: string) => void,
  ) {}

  /** A resumed run replays its finished epochs (the patience counts across the pause); the log is not repeated. */
  replay(history: readonly ({ epoch: number } & EpochMetrics)[]): void {
    for (const h of history) this.update(h.epoch, h, true);
  }

  /** After an epoch: the reason to stop now, or undefined to go on. */
  update(epoch: number, m: EpochMetrics, quiet = false): string | undefined {
    const { name, value } = monitored(this.plan.monitor, m);
    if (!this.warned && name !== this.plan.monitor) {
      this.warned = true;
      if (!quiet) this.log(`early stopping: no validation data, so it monitors the training ${name} instead of ${this.plan.monitor}`);
    }
    const higherIsBetter = this.plan.monitor === 'val_accuracy';
    const improved = Number.isNaN(this.best) || (higherIsBetter ? value - this.best > this.plan.minDelta : this.best - value > this.plan.minDelta);
    if (improved) {
      this.best = value;
      this.bestEpoch = epoch;
      this.wait = 0;
      return undefined;
    }
    this.wait++;
    if (this.wait < this.plan.patience) return undefined;
    const epochs = `${this.wait} epoch${this.wait === 1 ? '' : 's'}`;
    return `early stopping: ${name} did not improve by ${this.plan.minDelta} for ${epochs} (best ${Number(this.best.toPrecision(3))} at epoch ${this.bestEpoch})`;
  }
}
