// The demo page: the settings form, training in short chunks on the main
// thread (or, with `threads` > 1 on the CPU, in a pool of Web Workers:
// www/threads.js), two charts and the result. No maths here beyond plotting:
// the engine (www/pkg/, built by wasm-pack from src/wasm.rs) trains and checks
// every setting, and its errors name the offending field.
//
// document.body.dataset.state is loading, idle, running, done or error;
// tests wait on it.

import { WorkerPool } from './threads.js';

// Loaded with import() rather than a static import so that a missing build
// becomes a message on the page instead of a silently dead module.
const ENGINE = './pkg/reprolab.js';
const CHUNK_MS = 15; // each chunk of steps should take about this long
const FREE_SOURCES = ['init', 'shuffle', 'dropout', 'gpu_reduction', 'cpu_threads'];
const BACKENDS = ['auto', 'gpu', 'cpu'];

// How each setting is shown, in this order. A key the engine adds later still
// gets a plain text field, labelled with its name.
const FIELDS = {
  dataset: { label: 'Data set', options: ['digits', 'spiral', 'xor', 'circles', 'gaussians'] },
  hidden: { label: 'Hidden widths', placeholder: 'e.g. 128 or 64,32' },
  activation: { label: 'Activation', options: ['relu', 'tanh'] },
  dropout: { label: 'Dropout rate' },
  learning_rate: { label: 'Learning rate' },
  momentum: { label: 'Momentum' },
  weight_decay: { label: 'Weight decay' },
  batch_size: { label: 'Batch size', integer: true },
  steps: { label: 'Steps', integer: true },
  val_fraction: { label: 'Validation fraction' },
  seed: { label: 'Seed', integer: true },
  eval_every: { label: 'Evaluate every (steps)', integer: true },
  threads: { label: 'CPU threads (Web Workers)', integer: true },
  chunks: { label: 'Batch chunks (partial sums)', integer: true },
  engine_version: { label: 'Engine version', options: ['1', '2'] },
};

const $ = (selector) => document.querySelector(selector);
const ui = {
  form: $('#run-form'),
  fields: $('#fields'),
  start: $('[data-action="start"]'),
  reset: $('[data-action="reset"]'),
  progress: $('#progress'),
  progressText: $('#progress-text'),
  status: $('#status'),
  lossChart: $('#loss-chart'),
  valChart: $('#val-chart'),
  results: $('#results'),
  valError: $('#final-val-error'),
  hash: $('#weights-hash'),
  summary: $('#run-summary'),
  manifest: $('#manifest'),
  version: $('#engine-version'),
};

let engine = null; // the engine module's exports, once loaded
let defaults = {};
let trainer = null; // the Trainer of the run in progress, if any
let pool = null; // its WorkerPool, when Web Workers compute its chunks
let runId = 0; // bumped by every start and reset, so a stale loop stops itself
let manifestUrl = null;
let plot = { total: 1, loss: new Float32Array(0), val: [] };

// serde-wasm-bindgen turns Rust maps into JS Maps; accept either.
const toObject = (value) => (value instanceof Map ? Object.fromEntries(value) : value);

function setState(state) {
  document.body.dataset.state = state;
}

function showStatus(text, isError = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle('error', isError);
}

function errorText(e) {
  const text = e instanceof Error ? e.message : String(e);
  // A Rust panic reaches JS as a WebAssembly.RuntimeError ("unreachable").
  return e instanceof WebAssembly.RuntimeError ? `Internal error in the engine: ${text}` : text;
}

// ---- the form -------------------------------------------------------------

function buildFields() {
  const keys = [
    ...Object.keys(FIELDS).filter((key) => key in defaults),
    ...Object.keys(defaults).filter((key) => !(key in FIELDS)),
  ];
  for (const key of keys) {
    const spec = FIELDS[key] ?? { label: key };
    const field = document.createElement('div');
    field.className = 'field';
    const label = document.createElement('label');
    label.htmlFor = `setting-${key}`;
    const name = document.createElement('code');
    name.textContent = key; // error messages name settings by this key
    label.append(spec.label, ' ', name);
    let input;
    if (spec.options) {
      input = document.createElement('select');
      for (const option of spec.options) input.add(new Option(option, option));
    } else {
      input = document.createElement('input');
      input.type = 'text'; // the engine parses and checks; the browser does not second-guess
      input.autocomplete = 'off';
      input.spellcheck = false;
      if (spec.integer) input.inputMode = 'numeric';
      if (spec.placeholder) input.placeholder = spec.placeholder;
    }
    input.id = `setting-${key}`;
    input.name = key;
    field.append(label, input);
    ui.fields.append(field);
  }
}

function fillFields(values, free) {
  for (const [key, value] of Object.entries(values)) {
    const input = ui.form.elements.namedItem(key);
    if (!input) continue;
    if (input instanceof HTMLSelectElement && ![...input.options].some((o) => o.value === String(value))) {
      input.add(new Option(String(value), String(value)));
    }
    input.value = String(value);
  }
  for (const box of ui.form.querySelectorAll('input[name="free"]')) box.checked = free.includes(box.value);
}

function readFields() {
  const settings = {};
  for (const key of Object.keys(defaults)) settings[key] = ui.form.elements.namedItem(key).value.trim();
  const free = [...ui.form.querySelectorAll('input[name="free"]:checked')].map((box) => box.value);
  const backend = ui.form.elements.namedItem('backend').value;
  return { settings, free, backend };
}

// Every setting lives in the URL hash, so a link reproduces a run.
function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const values = {};
  for (const key of Object.keys(defaults)) if (params.has(key)) values[key] = params.get(key);
  const free = (params.get('free') ?? '').split(',').filter((s) => FREE_SOURCES.includes(s));
  const backend = BACKENDS.includes(params.get('backend')) ? params.get('backend') : 'auto';
  return { values, free, backend };
}

function writeHash(settings, free, backend) {
  const params = new URLSearchParams(settings);
  if (free.length) params.set('free', free.join(','));
  if (backend !== 'auto') params.set('backend', backend);
  history.replaceState(null, '', `#${params}`);
}

function markInvalid(field) {
  const input = field && ui.form.querySelector(`[name="${CSS.escape(field)}"]`);
  if (!input) return;
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-describedby', 'status');
  input.focus();
}

function clearInvalid(input) {
  const inputs = input ? [input] : ui.form.querySelectorAll('[aria-invalid]');
  for (const el of inputs) {
    el.removeAttribute('aria-invalid');
    el.removeAttribute('aria-describedby');
  }
}

// ---- a run ----------------------------------------------------------------

function stop() {
  runId += 1;
  pool?.terminate();
  pool = null;
  trainer?.free();
  trainer = null;
}

function clearRun() {
  plot = { total: 1, loss: new Float32Array(0), val: [] };
  ui.results.hidden = true;
  if (manifestUrl) URL.revokeObjectURL(manifestUrl);
  manifestUrl = null;
  ui.manifest.removeAttribute('href');
  showProgress(0, 0);
  drawCharts();
}

function showProgress(step, total) {
  ui.progress.max = Math.max(total, 1);
  ui.progress.value = step;
  ui.progressText.textContent = total ? `step ${step} / ${total}` : 'not started';
}

// Scale the chunk towards CHUNK_MS, at most doubling it each time: the timer
// is coarse, so one quick chunk is weak evidence.
function nextChunk(k, took) {
  const scaled = took > 0 ? Math.floor((k * CHUNK_MS) / took) : 2 * k;
  return Math.max(1, Math.min(2 * k, scaled));
}

const yieldToBrowser = () => new Promise((resolve) => setTimeout(resolve, 0));

async function start() {
  stop();
  const id = runId;
  clearInvalid();
  const { settings, free, backend } = readFields();
  writeHash(settings, free, backend);
  clearRun();
  setState('running');
  showStatus('Starting…');
  try {
    const created = await engine.Trainer.create(settings, free, backend);
    if (id !== runId) {
      created.free();
      return;
    }
    trainer = created;
    // CPU threads in the browser: Web Workers, one per thread.
    const threads = Number(settings.threads);
    if (trainer.backend === 'cpu' && threads > 1) {
      showStatus(`Starting ${threads} Web Workers…`);
      const started = await WorkerPool.create(trainer, threads);
      if (id !== runId) {
        started.terminate(); // stop() has freed the trainer
        return;
      }
      pool = started;
    }
  } catch (e) {
    if (id === runId) fail(e);
    return;
  }
  const began = performance.now();
  plot.total = trainer.totalSteps;
  showProgress(0, trainer.totalSteps);
  showStatus(`Training on the ${backendText()}`);
  try {
    let k = 1;
    for (;;) {
      const t0 = performance.now();
      // The pool's run is null when the engine hands out no chunk jobs.
      const report = toObject((await pool?.run(k)) ?? (await trainer.step(k)));
      k = nextChunk(k, performance.now() - t0);
      plot.loss = trainer.trainLoss();
      plot.val = trainer.valCurve().map(toObject);
      showProgress(report.step, report.total_steps);
      drawCharts();
      if (report.stopped || report.done) {
        finish(report, performance.now() - began);
        return;
      }
      await yieldToBrowser();
      if (id !== runId) return; // reset or restarted meanwhile; that freed the trainer
    }
  } catch (e) {
    if (id === runId) fail(e);
  }
}

// Where the run trains, and why, in words.
function backendText(finished = false) {
  if (trainer.backend === 'gpu') {
    const a = trainer.adapter ? toObject(trainer.adapter) : {};
    const name = [a.vendor, a.architecture, a.description].filter(Boolean).join(' ');
    return `GPU (WebGPU${name ? `: ${name}` : ''})`;
  }
  let why = trainer.backendReason;
  if (!window.isSecureContext) {
    why += '; this page is not a secure context (plain http from another machine), and browsers only offer WebGPU to https pages and localhost';
  }
  return `CPU (${why})${workersText(finished)}`;
}

// Who computed the chunks, and how their partial sums were combined.
function workersText(finished) {
  if (!pool) return '';
  const chunks = pool.chunks ? `the ${pool.chunks} chunks of every batch` : 'the chunks of every batch';
  const order = trainer.arrivalOrder
    ? 'in order of arrival (cpu_threads free: the rounding varies with the order the workers finish)'
    : 'in chunk order (cpu_threads pinned: the same bits whatever the number of workers)';
  const [compute, combine] = finished ? ['computed', 'were combined'] : ['compute', 'are combined'];
  return `; ${pool.size} Web Workers ${compute} ${chunks}, and their partial sums ${combine} ${order}`;
}

function finish(report, ms) {
  const last = plot.val.at(-1);
  const valError = last ? last.val_error : report.val_error;
  const valText = valError == null ? 'not evaluated' : `${(valError * 100).toFixed(2)} %`;
  ui.valError.textContent = valText;
  ui.hash.textContent = report.weights_hash ?? '';
  ui.summary.textContent = `${trainer.stepsDone} of ${trainer.totalSteps} steps in ${(ms / 1000).toFixed(1)} s on the ${backendText(true)}`;
  manifestUrl = URL.createObjectURL(new Blob([trainer.manifest()], { type: 'application/json' }));
  ui.manifest.href = manifestUrl;
  ui.results.hidden = false;
  pool?.terminate();
  pool = null;
  trainer.free(); // everything shown has been copied out
  trainer = null;
  if (report.stopped) {
    setState('error');
    showStatus(`Training stopped early: ${report.stopped}`, true);
  } else {
    setState('done');
    showStatus(`Done. Final validation error: ${valText}.`);
  }
}

// e is what the engine threw: an Error with a one-line message and, for a bad
// setting, a `field` property naming it.
function fail(e) {
  stop();
  setState('error');
  showStatus(errorText(e), true);
  markInvalid(e?.field);
}

function reset() {
  stop();
  clearInvalid();
  fillFields(defaults, []);
  ui.form.elements.namedItem('backend').value = 'auto';
  history.replaceState(null, '', location.pathname + location.search);
  clearRun();
  setState('idle');
  showStatus('Ready.');
}

// ---- charts -----------------------------------------------------------------

function drawCharts() {
  const loss = Array.from(plot.loss, (y, i) => [i + 1, y]); // entry i is step i + 1
  drawChart(ui.lossChart, { xMax: plot.total, points: loss, log: true, yLabel: 'loss' });
  const val = plot.val.map((p) => [p.step, p.val_error * 100]);
  drawChart(ui.valChart, { xMax: plot.total, points: val, log: false, dots: true, yLabel: 'error %' });
}

// At most n points, each the mean of a run of neighbours: one per pixel
// column is all a chart can show.
function thin(points, n) {
  if (points.length <= n) return points;
  const out = [];
  const size = points.length / n;
  for (let b = 0; b < n; b++) {
    let sx = 0;
    let sy = 0;
    let count = 0;
    for (let i = Math.floor(b * size); i < Math.floor((b + 1) * size); i++) {
      sx += points[i][0];
      sy += points[i][1];
      count += 1;
    }
    if (count) out.push([sx / count, sy / count]);
  }
  return out;
}

// A round step (1, 2 or 5 times a power of ten) near raw.
function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

const tickText = (v) => String(Number(v.toPrecision(3)));
const stepLabel = (v) => (v >= 1000 && v % 1000 === 0 ? `${v / 1000}k` : String(v));

// Axis range and ticks, in plotting coordinates (log10 of the value when log).
function yAxis(values, log) {
  if (!log) {
    const max = Math.max(...values, 0);
    const step = max > 0 ? niceStep(max / 4) : 25;
    const hi = Math.max(step, Math.ceil(max / step) * step);
    const ticks = [];
    for (let t = 0; t <= hi + step / 2; t += step) ticks.push({ at: t, text: tickText(t) });
    return { lo: 0, hi, ticks };
  }
  const logs = values.map(Math.log10);
  let lo = Math.min(...logs);
  let hi = Math.max(...logs);
  const pad = Math.max((hi - lo) * 0.05, 0.05);
  lo -= pad;
  hi += pad;
  let ticks = [];
  for (const mantissas of [[1], [1, 2, 5]]) {
    ticks = [];
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
      for (const m of mantissas) {
        const at = e + Math.log10(m);
        if (at >= lo && at <= hi) ticks.push({ at, text: tickText(m * 10 ** e) });
      }
    }
    if (ticks.length >= 3) break;
  }
  if (ticks.length < 3) {
    // Less than a decade: round values, evenly spaced in value, placed on the log scale.
    const step = niceStep((10 ** hi - 10 ** lo) / 4);
    ticks = [];
    for (let v = Math.ceil(10 ** lo / step) * step; v <= 10 ** hi; v += step) {
      ticks.push({ at: Math.log10(v), text: tickText(v) });
    }
  }
  while (ticks.length > 7) ticks = ticks.filter((_, i) => i % 2 === 0);
  return { lo, hi, ticks };
}

function drawChart(canvas, { xMax, points, log, dots = false, yLabel }) {
  const { width: w, height: h } = canvas.getBoundingClientRect();
  if (!w || !h) return;
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);

  // Colours come from the stylesheet, so dark mode needs no code here.
  const css = getComputedStyle(canvas);
  const ink = css.color;
  const grid = css.getPropertyValue('--grid').trim() || '#ccc';
  const line = css.getPropertyValue('--line').trim() || '#0b63c5';
  ctx.font = `12px ${css.fontFamily}`;
  ctx.lineWidth = 1;

  const left = 56;
  const right = w - 20; // room for half of the last step label
  const top = 10;
  const bottom = h - 36;
  const X = (x) => left + (x / Math.max(xMax, 1)) * (right - left);

  ctx.fillStyle = ink;
  const usable = thin(points.filter(([, y]) => Number.isFinite(y) && (!log || y > 0)), Math.ceil(right - left));
  if (usable.length === 0) {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('no data yet', w / 2, h / 2);
    return;
  }

  // x axis: steps
  ctx.strokeStyle = grid;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const xStep = Math.max(1, niceStep(Math.max(xMax, 1) / Math.max(2, Math.floor((right - left) / 80))));
  for (let x = 0; x <= xMax; x += xStep) {
    ctx.beginPath();
    ctx.moveTo(X(x), top);
    ctx.lineTo(X(x), bottom + 4);
    ctx.stroke();
    ctx.fillText(stepLabel(x), X(x), bottom + 6);
  }
  ctx.fillText('step', (left + right) / 2, bottom + 21);

  // y axis label, turned a quarter
  ctx.save();
  ctx.translate(12, (top + bottom) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = 'middle';
  ctx.fillText(yLabel, 0, 0);
  ctx.restore();

  const axis = yAxis(usable.map(([, y]) => y), log);
  const Y = (y) => bottom - (((log ? Math.log10(y) : y) - axis.lo) / (axis.hi - axis.lo)) * (bottom - top);
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const tick of axis.ticks) {
    const y = bottom - ((tick.at - axis.lo) / (axis.hi - axis.lo)) * (bottom - top);
    ctx.beginPath();
    ctx.moveTo(left - 4, y);
    ctx.lineTo(right, y);
    ctx.stroke();
    ctx.fillText(tick.text, left - 6, y);
  }

  ctx.strokeStyle = line;
  ctx.fillStyle = line;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  usable.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
  ctx.stroke();
  if (dots) {
    for (const [x, y] of usable) {
      ctx.beginPath();
      ctx.arc(X(x), Y(y), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
}

// ---- start-up -----------------------------------------------------------------

async function main() {
  try {
    engine = await import(ENGINE);
    await engine.default();
  } catch (e) {
    setState('error');
    showStatus(`Could not load the engine from www/pkg/ (${errorText(e)}). Build it first: see README.md.`, true);
    return;
  }
  defaults = toObject(engine.defaultSettings());
  ui.version.textContent = engine.engineVersion();
  buildFields();
  const fromHash = readHash();
  fillFields({ ...defaults, ...fromHash.values }, fromHash.free);
  ui.form.elements.namedItem('backend').value = fromHash.backend;

  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    start();
  });
  ui.form.addEventListener('input', (event) => clearInvalid(event.target));
  ui.reset.addEventListener('click', reset);
  const resized = new ResizeObserver(() => drawCharts());
  resized.observe(ui.lossChart);
  resized.observe(ui.valChart);
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', drawCharts);

  clearRun();
  ui.start.disabled = false;
  setState('idle');
  showStatus('Ready.');
}

main();
