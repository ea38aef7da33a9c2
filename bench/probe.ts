/**
 * The probe's search against its peers, on the same oracle, and the memory model's error on models
 * the tests don't contain.
 *
 *   flock /tmp/bench.lock node --import tsx bench/probe.ts            # all models, both budgets
 *   node --import tsx bench/probe.ts --only mlp-wide
 *
 * The oracle: real training steps (wasm backend + our kernels, in this process) at every batch size
 * asked for, each step's peak of live tensor bytes measured (src/trainer/probe/peak.ts); a batch
 * "fits" a budget when its peak is at most the budget (as when planning for a device given by
 * size). The true maximum is found by stepping through every batch size from 1. Each strategy's
 * "trials" are the distinct batch sizes it asks about (each a process in a real probe):
 *
 *  - ours: src/core/probe/search.ts seeded by the memory model (plus the plan's own confirmation
 *    trial in a real probe, shown as "+1");
 *  - Lightning `scale_batch_size(mode='binsearch')`: init 2, double until a failure, then bisect;
 *  - Accelerate `find_executable_batch_size`: start 128, ×0.9 after each failure, first success.
 */
import { loadavg } from 'node:os';
import { bytesForBatch, estimateMemory, maxBatchSize } from '../src/core/planning/memory';
import { searchMaxBatch } from '../src/core/probe/search';
import type { ProbeTrialResult } from '../src/core/shared/probe';
import { initBackend } from '../src/trainer/backend';
import { describeModel } from '../src/trainer/models/describe';
import { trackBuffers } from '../src/trainer/probe/peak';
import { CASES, CLASSES, Oracle, SHAPE } from './probe-models';
import { cpuLine } from './util';

/** A strategy's questions to the oracle: the distinct batch sizes it asked about. */
function counter(oracle: Oracle, limit: number): { fits: (b: number) => Promise<boolean>; asked: Set<number> } {
  const asked = new Set<number>();
  return {
    asked,
    fits: async (b) => {
      asked.add(b);
      return (await oracle.peak(b)) <= limit;
    },
  };
}

async function lightning(fits: (b: number) => Promise<boolean>, maxTrials = 25): Promise<number> {
  let low = 1;
  let high: number | undefined;
  let size = 2;
  let found = 0;
  for (let count = 0; count < maxTrials; count++) {
    if (await fits(size)) {
      found = size;
      low = size;
      if (high !== undefined) {
        if (high - low <= 1) break;
        size = Math.floor((high + low) / 2);
      } else size *= 2;
    } else {
      high = size;
      size = Math.floor((high + low) / 2);
      if (high - low <= 1) break;
    }
  }
  return found;
}

async function accelerate(fits: (b: number) => Promise<boolean>): Promise<number> {
  let size = 128;
  while (size >= 1) {
    if (await fits(size)) return size;
    size = Math.floor(size * 0.9);
  }
  return 0;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

async function main(): Promise<void> {
  await initBackend('wasm');
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
  const tracker = trackBuffers();
  if (!tracker) throw new Error('the backend cannot be tracked');
  console.log(`bench/probe.ts — wasm, CPU: ${cpuLine()}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('model               budget   true | ours trials  found  | Lightning trials found | Accelerate trials found');
  const errors: number[] = [];
  const ours: number[] = [];
  const rows: string[] = [];
  for (const c of CASES.filter((x) => !only || x.name === only)) {
    tracker.reset();
    const oracle = await Oracle.create(c, tracker);
    const model = await c.build();
    const desc = describeModel(model, c.name, SHAPE, CLASSES);
    model.dispose();
    for (const target of c.targets) {
      // A budget between the peaks at `target` and `target + 1`.
      const limit = ((await oracle.peak(target)) + (await oracle.peak(target + 1))) / 2;
      // The truth: every batch size from 1 up to the first that does not fit.
      let truth = 0;
      while ((await oracle.peak(truth + 1)) <= limit) truth++;
      const memory = estimateMemory(desc, { optimizer: c.optimizer, budgetBytes: limit, headroom: 0, backend: 'wasm' });
      const o = counter(oracle, limit);
      const search = await searchMaxBatch({
        predictedBytes: (b) => bytesForBatch(memory, b) - memory.breakdown.overheadBytes,
        budgetBytes: limit,
        predictedMax: maxBatchSize({ ...memory, budgetBytes: limit + memory.breakdown.overheadBytes }),
        cap: 4096,
        limitBytes: limit,
        trial: async (b): Promise<ProbeTrialResult> => {
          const ok = await o.fits(b);
          const peak = await oracle.peak(b);
          return { batchSize: b, accumulationSteps: 1, ok, peakBytes: peak, tensorPeakBytes: peak, rssBytes: 0, imagesPerSec: 0, steps: 3, durationMs: 0 };
        },
      });
      const l = counter(oracle, limit);
      const lFound = await lightning(l.fits);
      const a = counter(oracle, limit);
      const aFound = await accelerate(a.fits);
      ours.push(o.asked.size);
      rows.push(
        `${c.name.padEnd(19)} ${(limit / 2 ** 20).toFixed(0).padStart(4)} MiB ${String(truth).padStart(4)} | ${String(o.asked.size).padStart(3)} (+1) ${String(search.maxBatchSize).padStart(6)} | ${String(l.asked.size).padStart(9)} ${String(lFound).padStart(6)} | ${String(a.asked.size).padStart(10)} ${String(aFound).padStart(6)}`,
      );
      console.log(rows.at(-1));
    }
    // The memory model's error at every batch measured on this model.
    for (const [b, peak] of oracle.measured) {
      const memory = estimateMemory(desc, { optimizer: c.optimizer, budgetBytes: 1, headroom: 0, backend: 'wasm' });
      errors.push((bytesForBatch(memory, b) - memory.breakdown.overheadBytes - peak) / peak);
    }
    const signed = [...oracle.measured].map(([b, peak]) => {
      const memory = estimateMemory(desc, { optimizer: c.optimizer, budgetBytes: 1, headroom: 0, backend: 'wasm' });
      return (bytesForBatch(memory, b) - memory.breakdown.overheadBytes - peak) / peak;
    });
    const mine = signed.map(Math.abs);
    console.log(`  memory model on ${c.name}: ${mine.length} batch sizes, median |error| ${pct(median(mine))}, max ${pct(Math.max(...mine))} (median signed ${pct(median(signed))}; + = over-predicts)`);
    oracle.dispose();
  }
  const abs = errors.map(Math.abs);
  console.log(`\nours: median ${median(ours)} search trials (+1 to confirm the plan); memory model over ${abs.length} points: median |error| ${pct(median(abs))}, max ${pct(Math.max(...abs))}`);
  console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

void main();
