// The three charts of the page, drawn by uPlot (vendored from npm into
// www/vendor/ by scripts/vendor.mjs): training loss and validation error of
// every run, overlaid, and the distance of each run's weights to run 1's on a
// log scale whose floor reads "identical". A dashed vertical line marks the
// first step where the bits parted.

import uPlot from '../vendor/uPlot.esm.js';

// Zero distance is drawn at a floor labelled "identical": two decades below
// the smallest distance on show (at most 1e-3, at least 1e-12, below any
// distance two f32 weight vectors can have without being equal).
let FLOOR = 1e-6;
export function floorFor(distances) {
  const nonzero = distances.filter((d) => d > 0 && Number.isFinite(d));
  if (!nonzero.length) return 1e-6;
  const e = Math.floor(Math.log10(Math.min(...nonzero))) - 2;
  return 10 ** Math.max(-12, Math.min(-3, e));
}
export const COLORS = ['#0b63c5', '#d9480f', '#2b8a3e', '#9c36b5'];
const DASHES = [undefined, [7, 5], [2, 4], [10, 3, 2, 3]];

const css = (name, fallback) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

function fmtNumber(v) {
  if (v == null || !Number.isFinite(v)) return '';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 0.01 && a < 1e4) return String(Number(v.toPrecision(3)));
  return v.toExponential(0).replace('e+', 'e');
}

// A vertical dashed line at the first divergent step, on every chart.
function markerPlugin(getMarker) {
  return {
    hooks: {
      draw: [
        (u) => {
          const step = getMarker();
          if (step == null) return;
          const x = Math.round(u.valToPos(step, 'x', true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
          const { ctx } = u;
          ctx.save();
          ctx.strokeStyle = css('--error', '#b3261e');
          ctx.lineWidth = 2 * uPlot.pxRatio;
          ctx.setLineDash([6 * uPlot.pxRatio, 4 * uPlot.pxRatio]);
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.fillStyle = css('--error', '#b3261e');
          ctx.textAlign = 'left';
          ctx.textBaseline = 'alphabetic';
          ctx.font = `${12 * uPlot.pxRatio}px system-ui, sans-serif`;
          const gap = 4 * uPlot.pxRatio;
          const right = u.bbox.left + u.bbox.width;
          let label = `bits part at step ${step}`;
          if (ctx.measureText(label).width + 2 * gap > u.bbox.width / 2) label = `step ${step}`;
          const w = ctx.measureText(label).width;
          const tx = x + gap + w <= right ? x + gap : Math.max(u.bbox.left + gap, x - gap - w);
          ctx.fillText(label, tx, u.bbox.top + 14 * uPlot.pxRatio);
          ctx.restore();
        },
      ],
    },
  };
}

function axes(yLabel, yValues) {
  const ink = css('--ink', '#1c1e21');
  const grid = css('--grid', '#dde0e4');
  const axis = { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  return [
    { ...axis, label: 'step', labelSize: 20 },
    { ...axis, label: yLabel, labelSize: 20, size: 60, values: yValues },
  ];
}

function series(runs, what) {
  return [
    { label: 'step' },
    ...runs.map((label, i) => ({
      label,
      stroke: COLORS[i % COLORS.length],
      width: i === 0 ? 2.5 : 1.75,
      dash: DASHES[i % DASHES.length],
      spanGaps: what === 'val',
      points: { show: what === 'val' ? true : false, size: 5 },
      value: (u, v) => (v == null ? '-' : what === 'val' ? `${v.toFixed(2)} %` : what === 'dist' ? (v <= FLOOR ? 'identical' : fmtNumber(v)) : fmtNumber(v)),
    })),
  ];
}

export class Charts {
  // elements: {loss, val, dist} containers; getMarker() the step to mark or null.
  constructor(elements, getMarker) {
    this.elements = elements;
    this.getMarker = getMarker;
    this.plots = {};
    this.pending = null;
    this.data = null;
    const resize = new ResizeObserver(() => this.resize());
    for (const el of Object.values(elements)) resize.observe(el);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.build(this.labels ?? []));
  }

  size(el) {
    const width = Math.max(200, Math.floor(el.clientWidth));
    return { width, height: Math.round(Math.min(300, Math.max(200, width * 0.45))) };
  }

  // (Re)creates the charts for runs labelled `labels`.
  build(labels) {
    this.labels = labels;
    for (const p of Object.values(this.plots)) p.destroy();
    const plugin = markerPlugin(this.getMarker);
    const cursor = { drag: { x: false, y: false } };
    const legend = { live: true };
    const make = (key, opts) => {
      const el = this.elements[key];
      this.plots[key] = new uPlot({ ...this.size(el), cursor, legend, plugins: [plugin], ...opts }, this.emptyData(key, labels.length), el);
    };
    make('loss', {
      scales: { x: { time: false }, y: { distr: 3 } },
      axes: axes('training loss', (u, splits) => splits.map(fmtNumber)),
      series: series(labels, 'loss'),
    });
    make('val', {
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(5, Math.ceil((max ?? 5) / 5) * 5)] } },
      axes: axes('validation error %', (u, splits) => splits.map((v) => `${fmtNumber(v)}`)),
      series: series(labels, 'val'),
    });
    make('dist', {
      scales: {
        x: { time: false },
        y: { distr: 3, range: (u, min, max) => [FLOOR, Math.max(10 ** Math.ceil(Math.log10(Math.max(max ?? 1, FLOOR * 10)) + 0.5), 1)] },
      },
      axes: (() => {
        const a = axes('distance to run 1', (u, splits) => splits.map((v) => (v != null && v <= FLOOR * 1.001 ? 'identical' : fmtNumber(v))));
        // Decades from the floor up, spaced so that about five fit; the floor always has its tick.
        a[1].splits = (u, i, min, max) => {
          const lo = Math.round(Math.log10(FLOOR));
          const hi = Math.ceil(Math.log10(Math.max(max, FLOOR * 10)));
          const every = Math.max(1, Math.ceil((hi - lo) / 5));
          const out = [];
          for (let e = lo; e <= hi; e += every) out.push(10 ** e);
          return out;
        };
        a[1].size = 70;
        a[1].filter = (u, splits) => splits; // keep every decade's label (the log default drops some)
        return a;
      })(),
      series: series(labels, 'dist'),
    });
    // Data of the same runs (a colour-scheme change) is drawn again; other
    // runs' data is dropped.
    if (this.data?.loss?.length === labels.length + 1) this.set(this.data);
    else this.data = null;
  }

  emptyData(key, n) {
    return [[], ...Array.from({ length: n }, () => [])];
  }

  // data: {loss: [xs, ...ys], val: [...], dist: [...]}; redrawn once per frame.
  set(data) {
    this.data = data;
    FLOOR = data.floor ?? FLOOR;
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      for (const key of ['loss', 'val', 'dist']) {
        const d = this.data?.[key];
        const plot = this.plots[key];
        if (d && plot && d.length === plot.series.length) plot.setData(d, true);
      }
    });
  }

  redraw() {
    for (const p of Object.values(this.plots)) p.redraw(false, false);
  }

  resize() {
    for (const [key, p] of Object.entries(this.plots)) p.setSize(this.size(this.elements[key]));
  }

  // One PNG of the three charts, stacked, with their titles and legends.
  async png(titles) {
    const canvases = ['loss', 'val', 'dist'].map((k) => this.plots[k]?.ctx.canvas).filter(Boolean);
    const pad = 12 * uPlot.pxRatio;
    const titleH = 22 * uPlot.pxRatio;
    const legendH = 22 * uPlot.pxRatio;
    const width = Math.max(...canvases.map((c) => c.width)) + 2 * pad;
    const height = canvases.reduce((h, c) => h + c.height + titleH + pad, pad) + legendH;
    const out = document.createElement('canvas');
    out.width = width;
    out.height = height;
    const ctx = out.getContext('2d');
    ctx.fillStyle = css('--bg', '#fff');
    ctx.fillRect(0, 0, width, height);
    ctx.fillStyle = css('--ink', '#000');
    ctx.font = `600 ${14 * uPlot.pxRatio}px system-ui, sans-serif`;
    let y = pad;
    canvases.forEach((c, i) => {
      ctx.fillStyle = css('--ink', '#000');
      ctx.fillText(titles[i] ?? '', pad, y + 15 * uPlot.pxRatio);
      y += titleH;
      ctx.drawImage(c, pad, y);
      y += c.height + pad;
    });
    ctx.font = `${13 * uPlot.pxRatio}px system-ui, sans-serif`;
    let x = pad;
    (this.labels ?? []).forEach((label, i) => {
      ctx.fillStyle = COLORS[i % COLORS.length];
      ctx.fillRect(x, y + 2 * uPlot.pxRatio, 14 * uPlot.pxRatio, 10 * uPlot.pxRatio);
      ctx.fillStyle = css('--ink', '#000');
      ctx.fillText(label, x + 18 * uPlot.pxRatio, y + 12 * uPlot.pxRatio);
      x += ctx.measureText(label).width + 40 * uPlot.pxRatio;
    });
    return new Promise((resolve) => out.toBlob(resolve, 'image/png'));
  }
}
