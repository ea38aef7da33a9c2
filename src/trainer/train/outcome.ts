/**
 * How a run reports and ends: every event goes to the run folder first, then to the host; exactly
 * one run-end, whose status and message say why the run ended (stopped, out of memory with the
 * batch to try, diverged, bad input, internal error).
 */
import { WASM_HEAP_MAX, estimateMemory, maxBatchSize } from '../../core/planning/memory';
import { batchAfterOom, keepEffectiveBatch } from '../../core/shared/constants';
import { describeFsError } from '../../core/run-folder/runs';
import { PROTOCOL_VERSION, type BackendName, type LogEvent, type RunEndEvent, type TrainerMessage, type TrainEvent } from '../../core/shared/protocol';
import type { RunSpec } from '../../core/shared/run-spec';
import type { Head } from '../../core/shared/head';
import { isOutOfMemoryError as isOutOfMemory } from '../../core/shared/oom';
import { BadInputError, DivergedError, classifyTrainerError } from '../errors';
import { describeModel } from '../models/describe';
import type { tf } from '../tf';
import type { RunFiles } from './run-files';
import { now } from './setup';

export type RunEnd = Omit<RunEndEvent, 'v' | 'type' | 'time'>;

/** The run's reporter: `emit` writes each event to metrics.jsonl, then sends it; nothing after the run-end. */
export class RunReport {
  ended = false;
  private writeFailed = false;

  constructor(
    private readonly files: RunFiles,
    private readonly send: (m: TrainerMessage) => void,
  ) {}

  emit = (ev: TrainEvent): void => {
    if (this.ended) return;
    try {
      this.files.event(ev);
    } catch (e) {
      // A full disk must not stop the run from reporting to the host; say so once.
      if (!this.writeFailed) {
        this.writeFailed = true;
        try {
          this.send({ v: PROTOCOL_VERSION, type: 'log', level: 'warn', message: `cannot write ${this.files.dir}/metrics.jsonl: ${describeFsError(e)}; events reach this window only until it is fixed` });
        } catch {
          /* the host is gone too */
        }
      }
    }
    try {
      this.send(ev);
    } catch {
      /* the host is gone: the run folder still gets every event */
    }
    if (ev.type === 'run-end') this.ended = true;
  };

  log = (level: LogEvent['level'], message: string): void => this.emit({ v: PROTOCOL_VERSION, type: 'log', level, message });

  end = (e: RunEnd): void => this.emit({ v: PROTOCOL_VERSION, type: 'run-end', time: now(), ...e });
}

/** What the run had loaded when it failed (for the out-of-memory advice). */
export interface Loaded {
  model?: tf.LayersModel;
  head?: Head;
  backend?: BackendName;
}

/** Ends a run that threw: stopped, out of memory (with the batch to try), diverged, or its error's kind. */
export function endAfterError(e: unknown, spec: RunSpec, loaded: Loaded, report: RunReport, files: RunFiles, signal: AbortSignal): void {
  if (signal.aborted && !isOutOfMemory(e) && !(e instanceof BadInputError) && !(e instanceof DivergedError)) {
    report.end({ status: 'stopped', message: 'stopped by request' });
  } else if (isOutOfMemory(e)) {
    const k = spec.plan.accumulationSteps;
    const fits = wasmFittingBatch(loaded.model, spec, loaded.backend, k, loaded.head);
    const { message, suggestedBatchSize } = oomMessage(spec.plan.microBatchSize, k, e instanceof Error ? e.message : String(e), {
      ...(fits !== undefined ? { fits } : {}),
      imageSize: spec.data.imageSize,
    });
    report.log('error', message);
    report.end({ status: 'failed', error: 'oom', message, ...(suggestedBatchSize !== undefined ? { suggestedBatchSize } : {}) });
  } else if (e instanceof DivergedError) {
    report.log('error', e.message);
    report.end({ status: 'failed', error: 'diverged', message: e.message, divergedAtStep: e.step });
  } else {
    const { kind, message } = classifyTrainerError(e);
    try {
      if (kind === 'internal') files.log('error', message); // the stack, for the record
    } catch {
      /* the disk is full: the host still gets the run-end */
    }
    report.end({ status: 'failed', error: kind, message: e instanceof Error ? e.message : String(e) });
  }
}

/**
 * The message and the batch to try after an out-of-memory failure at `batchSize`. `fits` is the
 * largest batch the memory model says fits (0: not even 1), when it can be known (the wasm heap's
 * fixed 4 GiB); without it, half the batch. `imageSize` is [height, width].
 */
export function oomMessage(
  batchSize: number,
  accumulationSteps: number,
  cause: string,
  opts: { fits?: number; imageSize?: [number, number] } = {},
): { message: string; suggestedBatchSize?: number } {
  const first = (cause.split('\n')[0] ?? cause).replace(/\s*Build with -sASSERTIONS for more info\.?/, '').trim() || 'out of memory';
  const size = opts.imageSize ? ` at image size ${opts.imageSize[0]}×${opts.imageSize[1]}` : '';
  const half = batchSize > 1 ? batchAfterOom(batchSize) : 0;
  const suggested = opts.fits === undefined ? half : Math.min(half, opts.fits);
  if (batchSize <= 1 || suggested < 1) {
    return { message: `Out of memory: even batch size 1 does not fit${size} on this device${opts.fits === 0 ? ' (estimated for the wasm backend\'s 4 GiB heap)' : ''}: use a smaller imageSize (or a smaller model). (${first})` };
  }
  const keep = keepEffectiveBatch(suggested, batchSize, accumulationSteps, true);
  return { message: `Out of memory at batch size ${batchSize}: try ${suggested}${keep}. (${first})`, suggestedBatchSize: suggested };
}

/** The largest batch the memory model fits in the wasm heap for this model (undefined off wasm). */
export function wasmFittingBatch(model: tf.LayersModel | undefined, spec: Pick<RunSpec, 'data' | 'model'>, backend: BackendName | undefined, accumulationSteps: number, head?: Head): number | undefined {
  if (!model || backend !== 'wasm') return undefined;
  const { data } = spec;
  try {
    const classes = head ? (head.loss === 'binary' ? 2 : head.units) : ((model.outputs[0]?.shape ?? []).at(-1) ?? 2);
    const desc = describeModel(model, spec.model.model, [data.imageSize[0], data.imageSize[1], data.channels], classes, head);
    return maxBatchSize(estimateMemory(desc, { optimizer: spec.model.optimizer, budgetBytes: WASM_HEAP_MAX, headroom: 0, backend: 'wasm', accumulationSteps }));
  } catch {
    return undefined;
  }
}
