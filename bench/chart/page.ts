/**
 * Browser half of bench/chart-redraw.ts: draws 2 series × N points with uPlot and with Chart.js,
 * raw and downsampled (min/max per pixel bucket, as the training panel does), and times redraws.
 */
import { Chart, LineController, LineElement, LinearScale, PointElement, Decimation } from 'chart.js';
import uPlot from 'uplot';
import { minMaxDownsample } from '../../src/webview/train/downsample';

Chart.register(LineController, LineElement, LinearScale, PointElement, Decimation);

const W = 900;
const H = 260;

function data(n: number): { x: Float64Array; a: Float64Array; b: Float64Array } {
  const x = new Float64Array(n);
  const a = new Float64Array(n);
  const b = new Float64Array(n);
  let s = 1;
  for (let i = 0; i < n; i++) {
    s = (s * 16807) % 2147483647;
    x[i] = i + 1;
    a[i] = 2.3 * Math.exp(-i / (n / 5)) + (s / 2147483647) * 0.3;
    b[i] = a[i]! * 0.9 + 0.05;
  }
  return { x, a, b };
}

async function frame(): Promise<void> {
  await new Promise((r) => requestAnimationFrame(() => r(undefined)));
}

function median(v: number[]): number {
  const s = [...v].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)]!;
}

async function timeIt(runs: number, fn: () => void | Promise<void>): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
    await frame();
  }
  return median(t);
}

function host(): HTMLElement {
  const d = document.createElement('div');
  d.style.width = `${W}px`;
  document.body.append(d);
  return d;
}

async function benchUplot(n: number, downsample: boolean): Promise<number> {
  const d = data(n);
  const el = host();
  const series = () => {
    if (!downsample) return [d.x, d.a, d.b] as unknown as uPlot.AlignedData;
    const a = minMaxDownsample(d.x, d.a, W);
    const b = minMaxDownsample(d.x, d.b, W);
    // uPlot wants one x array: both series share x after bucketing only if aligned; use a's x for a, join b.
    return uPlot.join([[a.x, a.y], [b.x, b.y]] as unknown as uPlot.AlignedData[]);
  };
  const plot = new uPlot({ width: W, height: H, scales: { x: { time: false } }, series: [{}, { stroke: 'red' }, { stroke: 'blue' }] }, series(), el);
  // Each redraw: new point appended (a stream), downsample again, setData (draws synchronously).
  const ms = await timeIt(15, () => {
    plot.setData(series());
  });
  plot.destroy();
  el.remove();
  return ms;
}

async function benchChartJs(n: number, downsample: boolean): Promise<number> {
  const d = data(n);
  const el = host();
  const canvas = document.createElement('canvas');
  canvas.width = W;
  canvas.height = H;
  el.append(canvas);
  const pts = (ys: Float64Array) => {
    if (downsample) {
      const r = minMaxDownsample(d.x, ys, W);
      return r.x.map((x, i) => ({ x, y: r.y[i]! }));
    }
    return Array.from(ys, (y, i) => ({ x: d.x[i]!, y }));
  };
  const chart = new Chart(canvas, {
    type: 'line',
    data: { datasets: [{ data: pts(d.a), borderColor: 'red', pointRadius: 0, borderWidth: 1 }, { data: pts(d.b), borderColor: 'blue', pointRadius: 0, borderWidth: 1 }] },
    options: { animation: false, responsive: false, parsing: false, normalized: true, scales: { x: { type: 'linear' } }, plugins: { decimation: { enabled: !downsample, algorithm: 'min-max' } } },
  });
  const ms = await timeIt(15, () => {
    chart.data.datasets[0]!.data = pts(d.a);
    chart.data.datasets[1]!.data = pts(d.b);
    chart.update('none');
  });
  chart.destroy();
  el.remove();
  return ms;
}

async function main(): Promise<void> {
  const out: Record<string, number> = {};
  for (const n of [10_000, 100_000]) {
    out[`uplot raw ${n}`] = await benchUplot(n, false);
    out[`uplot downsampled ${n}`] = await benchUplot(n, true);
    out[`chartjs decimation ${n}`] = await benchChartJs(n, false);
    out[`chartjs downsampled ${n}`] = await benchChartJs(n, true);
  }
  (window as unknown as { benchResult: unknown }).benchResult = out;
}

void main().catch((e: unknown) => {
  (window as unknown as { benchResult: unknown }).benchResult = { error: String(e) };
});
