/**
 * The best-epoch checkpoint (config `checkpoint: "best"`, the default), as Keras's
 * ModelCheckpoint(save_best_only=True): after each epoch's model is saved in `model/` (always the
 * last epoch), an epoch better by the monitored metric than every earlier one is copied to
 * `model-best/` with `checkpoint.json` ({ epoch, monitor, value }). The copy is written beside and
 * swapped in, so a crash mid-copy keeps the previous best.
 */
import { cpSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CheckpointPlan } from '../../../core/shared/plan';
import type { BestEpoch } from '../../../core/shared/protocol';
import { monitored, type EpochMetrics } from './early-stopping';

export const BEST_MODEL_DIR = 'model-best';
export const CHECKPOINT_FILE = 'checkpoint.json';

/** The metric compared (`monitor`) is the plan's monitor, or the training one without validation. */
export type BestRecord = BestEpoch;

export class BestCheckpoint {
  private best: BestRecord | undefined;

  constructor(
    private readonly plan: CheckpointPlan,
    private readonly log: (message: string) => void,
  ) {}

  /** The best epoch so far (undefined before the first finite one). */
  get current(): BestRecord | undefined {
    return this.best;
  }

  /** A resumed run continues from the best its earlier epochs kept (model-best/checkpoint.json). */
  restore(record: BestRecord): void {
    this.best = { ...record };
  }

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

/** The best epoch a run folder kept (model-best/checkpoint.json), or undefined when there is none or it cannot be read. */
export function readBestRecord(runDir: string): BestRecord | undefined {
  const path = join(runDir, BEST_MODEL_DIR, CHECKPOINT_FILE);
  if (!existsSync(path)) return undefined;
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as Partial<BestRecord>;
    return Number.isInteger(r.epoch) && typeof r.monitor === 'string' && typeof r.value === 'number' ? { epoch: r.epoch!, monitor: r.monitor, value: r.value } : undefined;
  } catch {
    return undefined;
  }
}
