/**
 * The best-epoch checkpoint (config `checkpoint: "best"`, the default), as Keras's
 * ModelCheckpoint(save_best_only=True): after each epoch's model is saved in `model/` (always the
 * last epoch), an epoch better by the monitored metric than every earlier one is copied to
 * `model-best/` with `checkpoint.json` ({ epoch, monitor, value }). The copy is written beside and
 * swapped in, so a crash mid-copy keeps the previous best.
 */
import { cpSync, existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CheckpointPlan } from '../../../core/shared/plan';
import { monitored, type EpochMetrics } from './early-stopping';

export const BEST_MODEL_DIR = 'model-best';
export const CHECKPOINT_FILE = 'checkpoint.json';

export interface BestRecord {
  epoch: number;
  /** The metric compared: the plan's monitor, or the training one without validation. */
  monitor: string;
  value: number;
}

export class BestCheckpoint {
  private best: BestRecord | undefined;

  constructor(
    private readonly plan: CheckpointPlan,
    private readonly log: (message: string) => void,
  ) {}

  /** After `modelJson` (the epoch's saved model/model.json) was written: copies it when it is the best so far. */
  update(epoch: number, m: EpochMetrics, modelJson: string): BestRecord | undefined {
    const { name, value } = monitored(this.plan.monitor, m);
    if (!Number.isFinite(value)) return undefined;
    const higher = this.plan.monitor === 'val_accuracy';
    if (this.best && !(higher ? value > this.best.value : value < this.best.value)) return undefined;
    if (!this.best && name !== this.plan.monitor) this.log(`checkpoint "best": no validation data, so the best epoch is chosen by the training ${name}`);
    const from = dirname(modelJson);
    const final = join(dirname(from), BEST_MODEL_DIR);
    const tmp = `${final}.saving`;
    rmSync(tmp, { recursive: true, force: true });
    cpSync(from, tmp, { recursive: true });
    this.best = { epoch, monitor: name, value };
    writeFileSync(join(tmp, CHECKPOINT_FILE), JSON.stringify(this.best, null, 2) + '\n');
    if (existsSync(final)) rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    this.log(`best model so far: epoch ${epoch} (${name} ${Number(value.toPrecision(4))}), saved in ${BEST_MODEL_DIR}/`);
    return this.best;
  }
}
