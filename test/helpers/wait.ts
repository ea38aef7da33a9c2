/**
 * Waiting on the state a test needs, not on a fixed time tuned to a quiet machine: polls `cond`
 * until it holds, failing only past a generous ceiling (a hang, not a speed).
 */
export async function until(cond: () => boolean, what: string, ceilingMs = 60_000, pollMs = 20): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ceilingMs) throw new Error(`not within ${ceilingMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** A ceiling for a call that must not hang: far above what it takes on a loaded machine. */
export const HANG_CEILING_MS = 60_000;
