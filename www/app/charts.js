// The page's charts, drawn by uPlot (vendored from npm into www/vendor/ by
// scripts/vendor.mjs): the training loss of every run, the difference of
// each run's loss to the reference's (so that a divergence of one part in a
// million shows), the validation error, and the distance of each run's
// weights to the reference's. The last two are on log scales whose floor
// reads "identical" (zero). A dashed vertical line marks the first step
// where the bits parted; one hover cursor is shared by every chart, and
// each chart has a table of its values as a text alternative.

import uPlot from '../vendor/uPlot.esm.js';
import { el, fmtNumber } from './format.js';

export const COLORS = ['#0b63c5', '#d9480f', '#2b8a3e', '#9c36b5'];
const DASHES = [undefined, [7, 5], [2, 4], [10, 3, 2, 3]];
export const KEYS = ['loss', 'diff', 'val', 'dist'];
const TABLE_ROWS = 120;
const MAX_PLOTTED = 20_000; // steps drawn per series; longer runs are drawn every k-th step

const css = (name, fallback) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

// Zero is drawn at a floor labelled "identical": two decades below the
// smallest nonzero value on show (at most 1e-3, at least 1e-12).
export function floorFor(values) {
  let min = Infinity;
  for (const v of values) if (v > 0 && Number.isFinite(v) && v < min) min = v;
  if (min === Infinity) return 1e-6;
  const e = Math.floor(Math.log10(min)) - 2;
  return 10 ** Math.max(-12, Math.min(-3, e));
}

// A vertical dashed line at the first divergent step.
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
    { ...axis, label: yLabel, labelSize: 20, size: 64, values: yValues },
  ];
}

// A log axis from a floor labelled "identical": decades, about five shown.
function floorAxis(yLabel, floor) {
  const a = axes(yLabel, (u, splits) => splits.map((v) => (v != null && v <= floor() * 1.001 ? 'identical' : fmtNumber(v))));
  a[1].splits = (u, i, min, max) => {
    const lo = Math.round(Math.log10(floor()));
    const hi = Math.ceil(Math.log10(Math.max(max, floor() * 10)));
    const every = Math.max(1, Math.ceil((hi - lo) / 5));
    const out = [];
    for (let e = lo; e <= hi; e += every) out.push(10 ** e);
    return out;
  };
  a[1].size = 72;
  a[1].filter = (u, splits) => splits; // keep every decade's label (the log default drops some)
  return a;
}

const floorScale = (floor) => ({
  distr: 3,
  range: (u, min, max) => [floor(), Math.max(10 ** Math.ceil(Math.log10(Math.max(max ?? 1, floor() * 10)) + 0.5), floor() * 1e3)],
});

// The charts' data from the runs (runs.js Slots; the first is the
// reference): every step's loss, each run's loss difference to the
// reference's, the validation points, the distances at the sample steps,
// and the floors of the two log charts.
export function chartData(slots) {
  const n = Math.max(0, ...slots.map((s) => s.steps));
  const stride = Math.max(1, Math.ceil(n / MAX_PLOTTED));
  const xs = [];
  for (let s = 1; s <= n; s += stride) xs.push(s);
  if (n && xs.at(-1) !== n) xs.push(n);
  const ref = slots[0];
  const lossOf = (s, x) => (x <= s.steps && s.loss[x - 1] > 0 ? s.loss[x - 1] : null);
  const loss = [xs, ...slots.map((s) => xs.map((x) => lossOf(s, x)))];
  const diffs = slots.map((s, i) =>
    i === 0 ? xs.map(() => null) : xs.map((x) => (x <= s.steps && x <= ref.steps ? Math.abs(s.loss[x - 1] - ref.loss[x - 1]) : null)),
  );
  const diffFloor = floorFor(diffs.flat());
  const diff = [xs, ...diffs.map((ys) => ys.map((d) => (d == null || Number.isNaN(d) ? null : Math.max(d, diffFloor))))];
  const valSteps = [...new Set(slots.flatMap((s) => s.val.map((p) => p.step)))].sort((a, b) => a - b);
  const val = [
    valSteps,
    ...slots.map((s) => {
      const by = new Map(s.val.map((p) => [p.step, p.valError * 100]));
      return valSteps.map((x) => by.get(x) ?? null);
    }),
  ];
  const distSteps = [...new Set(slots.flatMap((s) => [...s.dist.keys()]))].sort((a, b) => a - b);
  const distFloor = floorFor(slots.flatMap((s) => [...s.dist.values()]));
  const dist = [
    distSteps,
    ...slots.map((s, i) =>
      i === 0
        ? distSteps.map(() => null)
        : distSteps.map((x) => {
            const d = s.dist.get(x);
            return d === undefined || Number.isNaN(d) ? null : Math.max(d, distFloor);
          }),
    ),
  ];
  return { loss, diff, val, dist, floors: { diff: diffFloor, dist: distFloor } };
}

export class Charts {
  // elements: {loss, diff, val, dist} containers; getMarker() the step to
  // mark or null; onCursor(step | null) when the shared cursor moves.
  constructor(elements, { getMarker, onCursor }) {
    this.elements = elements;
    this.getMarker = getMarker;
    this.onCursor = onCursor;
    this.plots = {};
    this.pending = null;
    this.data = null;
    this.labels = [];
    this.floors = { diff: 1e-6, dist: 1e-6 };
    this.sync = uPlot.sync(`reprolab-${Math.random().toString(36).slice(2)}`);
    const resize = new ResizeObserver(() => this.resize());
    for (const e of Object.values(elements)) resize.observe(e);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.build(this.labels));
  }

  size(e) {
    const width = Math.max(200, Math.floor(e.clientWidth));
    return { width, height: Math.round(Math.min(300, Math.max(190, width * 0.42))) };
  }

  series(what) {
    const floor = this.floors[what];
    return [
      { label: 'step' },
      ...this.labels.map((label, i) => ({
        label,
        stroke: COLORS[i % COLORS.length],
        width: i === 0 ? 2.5 : 1.75,
        dash: DASHES[i % DASHES.length],
        spanGaps: what === 'val',
        show: !(i === 0 && (what === 'dist' || what === 'diff')),
        points: { show: what === 'val' ? true : undefined, size: 5 },
        value: (u, v) => {
          if (v == null) return '-';
          if (what === 'val') return `${v.toFixed(2)} %`;
          if (floor !== undefined && v <= this.floors[what]) return 'identical';
          return fmtNumber(v);
        },
      })),
    ];
  }

  // (Re)creates the charts for runs labelled `labels`.
  build(labels) {
    this.labels = labels;
    for (const p of Object.values(this.plots)) p.destroy();
    this.plots = {};
    const plugin = markerPlugin(this.getMarker);
    const cursor = {
      drag: { x: false, y: false },
      sync: { key: this.sync.key, setSeries: false },
    };
    const hooks = {
      setCursor: [
        (u) => {
          const { left, idx } = u.cursor;
          this.onCursor(idx == null || left == null || left < 0 ? null : Math.round(u.posToVal(left, 'x')));
        },
      ],
    };
    const make = (key, opts) => {
      const e = this.elements[key];
      this.plots[key] = new uPlot(
        { ...this.size(e), cursor, legend: { live: true }, plugins: [plugin], hooks, ...opts },
        [[], ...labels.map(() => [])],
        e,
      );
    };
    make('loss', {
      scales: { x: { time: false }, y: { distr: 3 } },
      axes: axes('training loss', (u, splits) => splits.map(fmtNumber)),
      series: this.series('loss'),
    });
    make('diff', {
      scales: { x: { time: false }, y: floorScale(() => this.floors.diff) },
      axes: floorAxis(`|loss − ${labels[0] ?? 'run 1'}'s|`, () => this.floors.diff),
      series: this.series('diff'),
    });
    make('val', {
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(5, Math.ceil((max ?? 5) / 5) * 5)] } },
      axes: axes('validation error %', (u, splits) => splits.map((v) => `${fmtNumber(v)}`)),
      series: this.series('val'),
    });
    make('dist', {
      scales: { x: { time: false }, y: floorScale(() => this.floors.dist) },
      axes: floorAxis(`distance to ${labels[0] ?? 'run 1'}`, () => this.floors.dist),
      series: this.series('dist'),
    });
    this.data = null;
  }

  // data: {loss, diff, val, dist: [xs, ...ys], floors: {diff, dist}}; redrawn once per frame.
  set(data) {
    this.data = data;
    Object.assign(this.floors, data.floors);
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      for (const key of KEYS) {
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
    for (const [key, p] of Object.entries(this.plots)) {
      if (this.elements[key].clientWidth > 0) p.setSize(this.size(this.elements[key]));
    }
  }

  // The values of chart `key` at `step` (the nearest point at or before it
  // for the sparser charts): [{label, text}] of the runs that have one.
  valuesAt(key, step) {
    const d = this.data?.[key];
    if (!d || !d[0].length) return [];
    const xs = d[0];
    let i = -1;
    for (let lo = 0, hi = xs.length - 1; lo <= hi; ) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] <= step) {
        i = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (i < 0) return [];
    const plot = this.plots[key];
    return this.labels
      .map((label, r) => ({ label, v: d[r + 1][i], s: plot?.series[r + 1] }))
      .filter(({ v, s }) => v != null && s?.show !== false)
      .map(({ label, v, s }) => ({ label, step: xs[i], text: s.value(plot, v) }));
  }

  // A table of chart `key`'s values: at most TABLE_ROWS rows, spread evenly,
  // with the marked step and the last one always in.
  table(key, caption) {
    const d = this.data?.[key];
    const table = el('table', {}, el('caption', { text: caption }));
    const head = table.createTHead().insertRow();
    const plot = this.plots[key];
    const shown = this.labels.map((label, r) => ({ label, r })).filter(({ r }) => plot?.series[r + 1]?.show !== false);
    for (const t of ['step', ...shown.map((s) => s.label)]) head.append(el('th', { scope: 'col', text: t }));
    const body = table.createTBody();
    if (!d || !d[0].length) return table;
    const xs = d[0];
    const rows = new Set();
    const every = Math.max(1, Math.ceil(xs.length / TABLE_ROWS));
    for (let i = 0; i < xs.length; i += every) rows.add(i);
    rows.add(xs.length - 1);
    const marker = this.getMarker();
    if (marker != null) {
      const at = xs.indexOf(marker);
      if (at >= 0) rows.add(at);
    }
    for (const i of [...rows].sort((a, b) => a - b)) {
      if (shown.every(({ r }) => d[r + 1][i] == null)) continue;
      const tr = body.insertRow();
      tr.append(el('th', { scope: 'row', text: String(xs[i]) }));
      for (const { r } of shown) {
        const v = d[r + 1][i];
        tr.insertCell().textContent = v == null ? '–' : plot.series[r + 1].value(plot, v);
      }
    }
    return table;
  }

  // One PNG of the charts, stacked, with their titles and legends.
  async png(titles) {
    const keys = KEYS.filter((k) => this.plots[k] && this.elements[k].clientWidth > 0);
    const canvases = keys.map((k) => this.plots[k].ctx.canvas);
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
    ctx.font = `600 ${14 * uPlot.pxRatio}px system-ui, sans-serif`;
    let y = pad;
    canvases.forEach((c, i) => {
      ctx.fillStyle = css('--ink', '#000');
      ctx.fillText(titles[keys[i]] ?? '', pad, y + 15 * uPlot.pxRatio);
      y += titleH;
      ctx.drawImage(c, pad, y);
      y += c.height + pad;
    });
    ctx.font = `${13 * uPlot.pxRatio}px system-ui, sans-serif`;
    let x = pad;
    this.labels.forEach((label, i) => {
      ctx.fillStyle = COLORS[i % COLORS.length];
      ctx.fillRect(x, y + 2 * uPlot.pxRatio, 14 * uPlot.pxRatio, 10 * uPlot.pxRatio);
      ctx.fillStyle = css('--ink', '#000');
      ctx.fillText(label, x + 18 * uPlot.pxRatio, y + 12 * uPlot.pxRatio);
      x += ctx.measureText(label).width + 40 * uPlot.pxRatio;
    });
    return new Promise((resolve) => out.toBlob(resolve, 'image/png'));
  }
}

// A single line chart (the story's comparison of chapters): series labelled
// `labels`, data [xs, ...ys].
export function lineChart(container, { labels, yLabel, log = false }) {
  const width = Math.max(200, Math.floor(container.clientWidth));
  return new uPlot(
    {
      width,
      height: Math.round(Math.min(260, Math.max(180, width * 0.38))),
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
      axes: axes(yLabel, (u, splits) => splits.map(fmtNumber)),
      series: [
        { label: 'step' },
        ...labels.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: i === 0 ? 2.5 : 1.75, dash: DASHES[i % DASHES.length], value: (u, v) => (v == null ? '-' : fmtNumber(v)) })),
      ],
    },
    [[], ...labels.map(() => [])],
    container,
  );
}
