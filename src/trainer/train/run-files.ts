/**
 * The trainer's side of a run folder: every TrainEvent is appended to metrics.jsonl (core/run-folder/runs.ts
 * MetricsWriter: one synchronous line per event, so a host that dies loses nothing), log lines to train.log, and the model (with the
 * optimizer's state, for resuming) is saved into model/ by swapping in a freshly written folder (a crash mid-save leaves the previous epoch's model intact).
 */
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { LogEvent, TrainEvent } from '../../core/shared/protocol';
import { MetricsWriter, RUN_FILES, describeFsError } from '../../core/run-folder/runs';
import { FsResourceError, isResourceFsError } from '../../core/fs-errors';
import { BadInputError } from '../errors';
import { fileSaveHandler } from '../model-io';
import { saveOptimizerState } from './resume';
import type { tf } from '../tf';

export class RunFiles {
  private metrics: MetricsWriter | undefined;
  private logFd: number | undefined;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.metrics = new MetricsWriter(dir);
    this.logFd = openSync(join(dir, RUN_FILES.log), 'a');
  }

  get modelDir(): string {
    return join(this.dir, RUN_FILES.model);
  }

  event(ev: TrainEvent): void {
    this.metrics?.write(ev);
    if (ev.type === 'log') this.log(ev.level, ev.message);
  }

  log(level: LogEvent['level'], message: string): void {
    if (this.logFd !== undefined) writeSync(this.logFd, `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}\n`);
  }

  /** Saves into `<runDir>/model/` (model.json + weights.bin, and the optimizer's state for resuming) and returns the model.json path. */
  async saveModel(model: tf.LayersModel, optimizer?: tf.Optimizer): Promise<string> {
    const final = this.modelDir;
    const tmp = `${final}.saving`;
    const old = `${final}.old`;
    try {
      rmSync(tmp, { recursive: true, force: true });
      await model.save(fileSaveHandler(tmp));
      if (optimizer) await saveOptimizerState(optimizer, tmp);
    } catch (e) {
      // A full disk mid-save: remove the half-written copy; the previous model is untouched.
      rmSync(tmp, { recursive: true, force: true });
      throw saveError(`could not save the model to ${final}: ${describeFsError(e)}${existsSync(final) ? '; the previous epoch\'s model is kept' : ''}`, e);
    }
    rmSync(old, { recursive: true, force: true });
    if (existsSync(final)) renameSync(final, old);
    try {
      renameSync(tmp, final);
    } catch (e) {
      if (existsSync(old)) renameSync(old, final);
      rmSync(tmp, { recursive: true, force: true });
      throw saveError(`could not save the model to ${final}: ${describeFsError(e)}`, e);
    }
    rmSync(old, { recursive: true, force: true });
    return join(final, 'model.json');
  }

  close(): void {
    this.metrics?.close();
    if (this.logFd !== undefined) closeSync(this.logFd);
    this.metrics = this.logFd = undefined;
  }
}

/** A full disk (or no file handles) while saving is a failure while working (exit 1); a read-only or forbidden folder is input to fix (exit 2). */
function saveError(message: string, e: unknown): Error {
  return isResourceFsError(e) ? new FsResourceError(message) : new BadInputError(message);
}
