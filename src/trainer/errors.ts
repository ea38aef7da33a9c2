import { classifyError } from '../core/shared/errors';
import type { TrainerErrorKind } from '../core/shared/protocol';

/** An error the user caused (bad model file, bad dataset): reported as is, without a stack. */
export class BadInputError extends Error {
  override readonly name = 'BadInputError';
}

/** The loss became NaN or infinite: training diverged (see run.ts, nanPatience). */
export class DivergedError extends Error {
  override readonly name = 'DivergedError';
  constructor(
    message: string,
    readonly step: number,
  ) {
    super(message);
  }
}

/**
 * A failure in the trainer as the protocol names it (core/shared/errors.ts classifies; an internal
 * error keeps its stack for the run's log; a cancellation here is internal: a stopped run ends 'stopped').
 */
export function classifyTrainerError(e: unknown): { kind: TrainerErrorKind; message: string } {
  const { kind, message } = classifyError(e, { detail: true });
  return { kind: kind === 'cancelled' ? 'internal' : kind, message };
}
