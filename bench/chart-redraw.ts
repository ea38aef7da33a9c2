/**
 * Chart library choice for the training panel, by measurement: median redraw time of a 900×260
 * line chart with 2 series of 10k / 100k points in Chromium (headless, --disable-gpu), for uPlot
 * and Chart.js, each with the data drawn raw (Chart.js: its min-max decimation plugin) and
 * downsampled by our min/max-per-pixel reducer (what the panel does). Each redraw re-reduces the
 * whole series, as the live panel does when new points arrive.
 *
 *   node --import tsx bench/chart-redraw.ts
 */
import { build } from 'esbuild';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

async function main(): Promise<void> {
  const bundle = await build({ entryPoints: [join(__dirname, 'chart', 'page.ts')], bundle: true, write: false, format: 'iife', platform: 'browser', target: 'es2022' });
  const browser = await chromium.launch({ executablePath: process.env.E2E_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    await page.setContent('<!DOCTYPE html><html><body></body></html>');
    await page.addScriptTag({ content: bundle.outputFiles[0]!.text });
    await page.waitForFunction(() => (window as unknown as { benchResult?: unknown }).benchResult !== undefined, undefined, { timeout: 300_000 });
    const result = (await page.evaluate(() => (window as unknown as { benchResult: unknown }).benchResult)) as Record<string, number>;
    console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(30)} ${typeof v === 'number' ? `${v.toFixed(1)} ms` : String(v)}`);
  } finally {
    await browser.close();
  }
}

void main();
