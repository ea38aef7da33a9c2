/** The human-readable reports of `inspect` and `suggest`: compact, plain text, no colours needed. */
import type { DatasetReport, Distribution } from '../core/shared/dataset-types';
import { formatBytes, formatCount, plural } from '../core/shared/format';
import type { SuggestReport } from '../core/shared/report';

const dist = (d: Distribution) => `${d.min} / ${d.median} / ${d.p95} / ${d.max}`;

export function formatDataset(r: DatasetReport): string[] {
  const lines: string[] = [];
  lines.push(`Dataset  ${r.root}`);
  lines.push(`  Found ${plural(r.totalImages, 'file')} belonging to ${plural(r.classes.length, 'class', 'classes')}  (${formatBytes(r.bytesOnDisk)} on disk, scanned in ${Math.round(r.scanMs)} ms)`);
  if (r.classes.length > 0) {
    const shown = r.classes.slice(0, 12).map((c) => `${c.name} ${formatCount(c.count)}`);
    const more = r.classes.length > 12 ? `, … ${r.classes.length - 12} more` : '';
    lines.push(`  Classes  ${shown.join(', ')}${more}`);
    if (r.imbalanceRatio !== null && r.imbalanceRatio > 1.5) lines.push(`  Imbalance  largest/smallest class = ${r.imbalanceRatio.toFixed(1)}×`);
  }
  const formats = Object.entries(r.formats).map(([k, v]) => `${k} ${formatCount(v)}`);
  if (formats.length) lines.push(`  Formats  ${formats.join(', ')}`);
  if (r.totalImages > 0) {
    lines.push(`  Width    min/median/p95/max ${dist(r.width)} px`);
    lines.push(`  Height   min/median/p95/max ${dist(r.height)} px`);
  }
  lines.push(`  Split    ${formatCount(r.train)} train / ${formatCount(r.validation)} validation (split ${r.validationSplit})`);
  const [h, w] = r.decoded.imageSize;
  lines.push(`  Decoded at ${h}×${w}×${r.decoded.channels}: ${formatBytes(r.decoded.uint8Bytes)} as uint8, ${formatBytes(r.decoded.float32Bytes)} as float32`);
  const total = Object.values(r.problemCounts).reduce((a, b) => a + (b ?? 0), 0);
  if (total > 0) {
    lines.push(`  Problems (${formatCount(total)})`);
    for (const p of r.problems.slice(0, 10)) lines.push(`    ${p.kind.padEnd(19)} ${p.message}`);
    if (total > 10) lines.push(`    … ${formatCount(total - 10)} more (see --json)`);
  }
  return lines;
}

export function formatSuggest(s: SuggestReport): string[] {
  const { recommendation: rec, memory, device, model } = s;
  const lines = formatDataset(s.dataset);
  lines.push('');
  lines.push(`Device   ${device.name}: ${formatBytes(device.memoryFreeBytes)} free of ${formatBytes(device.memoryTotalBytes)}${device.source === 'override' ? ' (planned)' : ''}`);
  for (const d of s.devices.filter((d) => d !== device)) lines.push(`         also ${d.name}: ${formatBytes(d.memoryFreeBytes)} free of ${formatBytes(d.memoryTotalBytes)}`);
  lines.push(`Model    ${model.name}: ${formatCount(model.totalParams)} parameters, input ${model.inputShape.join('×')}, ${model.numClasses} classes, optimizer ${s.optimizer}`);
  if (s.plan.loss) lines.push(`Loss     ${s.plan.loss}`);
  lines.push(
    `Memory   ${formatBytes(memory.fixedBytes)} fixed + ${formatBytes(memory.perSampleBytes)} per image` +
      (memory.breakdown.updateScratchBytes ? ` (at least ${formatBytes(memory.fixedBytes + memory.breakdown.updateScratchBytes)} while the optimizer updates)` : '') +
      `; budget ${formatBytes(memory.budgetBytes)} (${Math.round(memory.headroom * 100)}% headroom)`,
  );
  const table = memory.table.map((t) => `${t.batchSize}:${formatBytes(t.bytes)}${t.fits ? '' : '✗'}`);
  lines.push(`         ${table.join('  ')}`);
  if (s.probe) lines.push(...formatProbe(s));
  lines.push('');
  lines.push(`Recommended batch size: ${rec.batchSize}   (largest that fits: ${formatCount(rec.maxBatchSize)})`);
  for (const r of rec.reasons) lines.push(`  • ${r}`);
  lines.push(`  Learning rate ${rec.learningRate.recommended.toPrecision(3)} (${rec.learningRate.rule} rule from ${rec.learningRate.base} at batch ${rec.learningRate.baseBatchSize})` + (rec.warmupSteps > 0 ? `, warm up over ${plural(rec.warmupSteps, 'step')}` : ''));
  if (rec.accumulationSteps > 1) lines.push(`  Accumulate ${rec.accumulationSteps} micro-batches → effective batch ${rec.effectiveBatchSize}`);
  lines.push(`  ${formatCount(rec.stepsPerEpoch)} steps per epoch; data: ${rec.loading.strategy} (${rec.loading.reason})`);
  if (s.plan.dataParallel) lines.push(`  ${s.plan.dataParallel.note}`);
  if (s.torchrun) lines.push(`  ${s.torchrun.note}`);
  for (const w of rec.warnings) lines.push(`  ! ${w}`);
  return lines;
}

/** The probe's trials: predicted vs measured memory, speed, and what the search concluded. */
export function formatProbe(s: SuggestReport): string[] {
  const p = s.probe;
  if (!p) return [];
  const cached = p.cache?.hit ? ` — reused ${plural(p.cache.reused, 'trial')} from the probe cache (${p.cache.file}), no trial ran` : p.cache && p.cache.reused > 0 ? ` (+ ${plural(p.cache.reused, 'trial')} from the probe cache)` : '';
  const lines = [`Probe    ${plural(p.processes, 'trial process', 'trial processes')}${cached}: ${p.stop}`];
  for (const t of p.trials) {
    const predicted = t.predictedBytes ?? 0;
    const batch = `${t.batchSize}${t.accumulationSteps > 1 ? `×${t.accumulationSteps}` : ''}`;
    const what = t.ok
      ? `trained  peak ${formatBytes(t.peakBytes)} (predicted ${formatBytes(predicted)})  ${t.imagesPerSec.toFixed(1)} images/s`
      : `${(t.failure ?? 'failed').padEnd(7)}  ${t.error ?? ''}`;
    lines.push(`         batch ${batch.padStart(5)}  ${what}${t.cached ? '  (cached)' : ''}`);
  }
  const err = p.modelError === null ? 'model error unknown' : `model ${p.modelError >= 0 ? 'over' : 'under'}-predicts by ${Math.round(Math.abs(p.modelError) * 100)}%`;
  const largest = p.maxSearched ? `largest that trained ${formatCount(p.maxBatchSize)}` : `largest confirmed ${formatCount(p.maxBatchSize)} (the device's maximum was not searched)`;
  lines.push(`         ${largest}${p.atCap && p.maxSearched ? ' (enough; larger not tried)' : ''}; ${err}; margin ${Math.round(p.margin * 100)}% → up to ${formatCount(p.usableBatchSize)}`);
  const g = s.gradientNoiseScale;
  if (g) lines.push(`Noise    ${g.note}`);
  const o = p.objective;
  if (o) {
    const rows = o.rows.map((r) => `${r.batchSize}:${r.relativeTime.toFixed(2)}×${r.batchSize === o.chosen ? '◀' : ''}`);
    const planned = o.bNoise !== undefined && o.bNoiseMeasured !== undefined && o.bNoise > o.bNoiseMeasured ? `, B_noise ${Number(o.bNoise.toPrecision(3))} (the range's upper end)` : '';
    lines.push(`Time to target (relative, ${o.basis === 'noise-scale' ? `(B + B_noise) / images/s${planned}` : 'B / images/s'})  ${rows.join('  ')}`);
  }
  return lines;
}
