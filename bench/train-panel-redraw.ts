/**
 * Redraw time of the real training panel (dist/webview/train.js, `npm run build` first) in Chromium
 * (headless, --disable-gpu) with one run of N optimizer steps (every batch event kept): the median
 * time of a full redraw (headers + the six charts: min/max reduction of every line to two points
 * per pixel column, EMA over all points, uPlot draw) after one more streamed event.
 *
 *   npm run build && node --import tsx bench/train-panel-redraw.ts [--points 100000]
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const ROOT = join(__dirname, '..');
const argIndex = process.argv.indexOf('--points');
const POINTS = argIndex > 0 ? Number(process.argv[argIndex + 1]) : 100_000;

async function main(): Promise<void> {
  const plan = JSON.parse(readFileSync(join(__dirname, 'chart', 'plan.json'), 'utf8')) as unknown;
  const browser = await chromium.launch({ executablePath: process.env.E2E_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.setContent('<!DOCTYPE html><html><body class="vscode-dark"><main id="app"></main></body></html>');
    await page.evaluate('window.__name = (f) => f'); // tsx names the functions passed to evaluate
    await page.evaluate(() => {
      (window as unknown as { acquireVsCodeApi: unknown }).acquireVsCodeApi = () => ({ postMessage: () => undefined, getState: () => undefined, setState: () => undefined });
    });
    await page.addScriptTag({ content: readFileSync(join(ROOT, 'dist', 'webview', 'train.js'), 'utf8') });
    const result = await page.evaluate(
      async ({ n, plan }) => {
        type Panel = { onMessage(m: unknown): void; draw(): void; redrawMs(): number };
        const panel = (window as unknown as { batchAdvisorTrainPanel: Panel }).batchAdvisorTrainPanel;
        const t0 = Date.UTC(2026, 0, 1);
        const spe = 1000;
        const batch = (i: number) => ({
          v: 2, type: 'batch', time: new Date(t0 + i * 50).toISOString(), epoch: Math.ceil(i / spe), step: ((i - 1) % spe) + 1, stepsPerEpoch: spe, globalStep: i,
          loss: 2.3 * Math.exp(-i / 20000) + Math.random() * 0.2, accuracy: Math.min(1, i / 50000 + Math.random() * 0.1), learningRate: 0.001 * Math.min(1, i / 1000),
          imagesPerSec: 900 + Math.random() * 100, stepMs: 45 + Math.random() * 10, dataWaitMs: Math.random() * 3, tensorBytes: 1e6 + Math.random() * 1e5, etaSec: 100,
        });
        const events: unknown[] = [{ v: 2, type: 'run-start', time: new Date(t0).toISOString(), runDir: '/x', backend: 'wasm', plan, stepsPerEpoch: spe, trainImages: 8000, validationImages: 2000, params: 1 }];
        for (let i = 1; i <= n; i++) {
          events.push(batch(i));
          if (i % spe === 0) events.push({ v: 2, type: 'epoch', time: new Date(t0 + i * 50).toISOString(), epoch: i / spe, loss: 1, accuracy: 0.5, valLoss: 0.9, valAccuracy: 0.6, durationMs: 1, savedModel: 'm' });
        }
        const tLoad = performance.now();
        panel.onMessage({ type: 'reset', runs: [{ id: 'bench', name: 'bench', status: 'running', live: true, events }] });
        panel.draw();
        const firstMs = performance.now() - tLoad;
        const times: number[] = [];
        for (let k = 0; k < 25; k++) {
          panel.onMessage({ type: 'events', runId: 'bench', events: [batch(n + k + 1)] });
          const t = performance.now();
          panel.draw();
          times.push(performance.now() - t);
          await new Promise((r) => requestAnimationFrame(r));
        }
        times.sort((a, b) => a - b);
        return { firstMs, median: times[Math.floor(times.length / 2)]!, p90: times[Math.floor(times.length * 0.9)]!, points: Number(document.body.dataset['points']) };
      },
      { n: POINTS, plan },
    );
    console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(`${result.points.toLocaleString('en-US')} points per series: first draw (load + draw) ${result.firstMs.toFixed(0)} ms; redraw after a streamed event: median ${result.median.toFixed(1)} ms, p90 ${result.p90.toFixed(1)} ms`);
  } finally {
    await browser.close();
  }
}

void main();
