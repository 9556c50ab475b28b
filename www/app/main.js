// The demo page: 2 to 4 training runs side by side, each in its own Web
// Worker (run-worker.js) with its own engine instance, and the nine sources
// of run-to-run variation as switches. Run 1 trains from the settings; runs
// 2..N re-run run 1's manifest with the free sources free, so a pinned source
// is the same as in run 1 and a free one varies. The page compares every
// run's hash chain with run 1's as the steps arrive, marks the first step
// where the bits part, and names the causes (the engine's diff).
//
// Stable hooks for tests and scripts (issue 5, item 9):
//   input[type=checkbox][data-source=NAME]   checked when NAME is pinned
//   [data-action=start|pause|step|reset|story|import|diff|export-csv|export-png]
//   [data-setting=runs|backend|KEY]         the run count, backend and every setting
//   [data-verdict]                           "identical" or "diverged" once runs finish
//   [data-first-divergent-step]              that step, or empty
//   body[data-state]                         loading, idle, running, paused, done, error
//   body[data-story]                         the story's chapter (1..5), "done" at its end

import * as engine from './engine.js';
import { Charts, COLORS, floorFor } from './charts.js';
import { GRID, drawGrid } from './heatmap.js';
import { formatState, parseState } from './state.js';
import { CHAPTERS, STORY_SETTINGS } from './story.js';

const WORKER_URL = new URL('./run-worker.js', import.meta.url);
// Seeded and scheduling sources: free in run 1 too. The recorded facts
// (engine_version, data_drift, hparam_drift) are free only in the re-runs,
// whose record is run 1.
const RUNTIME_SOURCES = ['init', 'shuffle', 'dropout', 'gpu_reduction', 'cpu_threads', 'backend'];
// What "reproducible" unticked sets free: the randomness frameworks leave free.
const DEFAULT_FREE = ['init', 'shuffle', 'dropout', 'gpu_reduction', 'cpu_threads'];
const TWO_D = ['spiral', 'xor', 'circles', 'gaussians'];

const FIELDS = {
  dataset: { label: 'Data set', options: ['digits', 'digits@1', 'digits@2', 'spiral', 'xor', 'circles', 'gaussians'] },
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
  engine_version: { label: 'Engine version', options: ['1', '2'] },
  threads: { label: 'CPU threads (Web Workers)', integer: true },
  chunks: { label: 'Batch chunks (partial sums)', integer: true },
};

const $ = (s) => document.querySelector(s);
const ui = {
  form: $('#controls'),
  fields: $('#fields'),
  sources: $('#sources'),
  master: $('#reproducible'),
  runs: $('[data-setting="runs"]'),
  backend: $('[data-setting="backend"]'),
  start: $('[data-action="start"]'),
  pause: $('[data-action="pause"]'),
  step: $('[data-action="step"]'),
  reset: $('[data-action="reset"]'),
  story: $('[data-action="story"]'),
  import: $('[data-action="import"]'),
  diff: $('[data-action="diff"]'),
  csv: $('[data-action="export-csv"]'),
  png: $('[data-action="export-png"]'),
  copyLink: $('[data-action="copy-link"]'),
  progress: $('#progress'),
  progressText: $('#progress-text'),
  status: $('#status'),
  verdict: $('[data-verdict]'),
  firstStep: $('[data-first-divergent-step]'),
  causes: $('#causes'),
  env: $('#env'),
  cards: $('#run-cards'),
  diffA: $('#diff-a'),
  diffB: $('#diff-b'),
  diffOut: $('#diff-out'),
  storySection: $('#story'),
  storySteps: $('#story-steps'),
  version: $('#engine-version'),
};

let defaults = {}; // setting -> default text
let explanations = {}; // source -> one line
let slots = []; // the runs on show
let session = 0; // bumped by every start and reset: stale messages are dropped
let paused = false;
let onFinished = null; // resolves the story's wait for the runs to finish
let charts;
let renderQueued = false;
const urls = new Set(); // blob: URLs to revoke on reset

const toText = (v) => (Array.isArray(v) ? v.join(',') : String(v));

function setState(state) {
  document.body.dataset.state = state;
}

function say(text, isError = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle('error', isError);
}

// ---- building the controls -------------------------------------------------

function buildFields(help) {
  const keys = [...Object.keys(FIELDS).filter((k) => k in defaults), ...Object.keys(defaults).filter((k) => !(k in FIELDS))];
  for (const key of keys) {
    const spec = FIELDS[key] ?? { label: key };
    const field = document.createElement('div');
    field.className = 'field';
    const label = document.createElement('label');
    label.htmlFor = `setting-${key}`;
    const name = document.createElement('code');
    name.textContent = key;
    label.append(spec.label, ' ', name);
    if (help[key]) label.title = help[key];
    let input;
    if (spec.options) {
      input = document.createElement('select');
      for (const option of spec.options) input.add(new Option(option, option));
    } else {
      input = document.createElement('input');
      input.type = 'text';
      input.autocomplete = 'off';
      input.spellcheck = false;
      if (spec.integer) input.inputMode = 'numeric';
      if (spec.placeholder) input.placeholder = spec.placeholder;
    }
    input.id = `setting-${key}`;
    input.name = key;
    input.dataset.setting = key;
    field.append(label, input);
    ui.fields.append(field);
  }
}

function buildSources(list) {
  for (const { name, explanation } of list) {
    explanations[name] = explanation;
    const li = document.createElement('li');
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.dataset.source = name;
    box.checked = true;
    box.setAttribute('aria-describedby', `explain-${name}`);
    const title = document.createElement('span');
    title.className = 'source-name';
    const code = document.createElement('code');
    code.textContent = name;
    const state = document.createElement('span');
    state.className = 'pin-state';
    title.append(code, ' ', state);
    const p = document.createElement('span');
    p.className = 'explain';
    p.id = `explain-${name}`;
    p.textContent = explanation;
    label.append(box, title);
    li.append(label, p);
    ui.sources.append(li);
  }
  syncMaster();
}

const sourceBoxes = () => [...ui.sources.querySelectorAll('input[data-source]')];

function syncMaster() {
  const boxes = sourceBoxes();
  const pinned = boxes.filter((b) => b.checked).length;
  ui.master.checked = pinned === boxes.length;
  ui.master.indeterminate = pinned > 0 && pinned < boxes.length && !sameSet(freeList(), DEFAULT_FREE);
  for (const b of boxes) b.closest('label').querySelector('.pin-state').textContent = b.checked ? 'pinned' : 'free';
}

const sameSet = (a, b) => a.length === b.length && a.every((x) => b.includes(x));
const freeList = () => sourceBoxes().filter((b) => !b.checked).map((b) => b.dataset.source);

// ---- form <-> state <-> URL --------------------------------------------------

function readForm() {
  const settings = {};
  for (const key of Object.keys(defaults)) settings[key] = ui.form.elements.namedItem(key).value.trim();
  return { settings, free: freeList(), runs: Number(ui.runs.value), backend: ui.backend.value };
}

function fillForm({ settings, free, runs, backend }) {
  for (const [key, value] of Object.entries(settings)) {
    const input = ui.form.elements.namedItem(key);
    if (!input) continue;
    if (input instanceof HTMLSelectElement && ![...input.options].some((o) => o.value === String(value))) {
      input.add(new Option(String(value), String(value)));
    }
    input.value = String(value);
  }
  for (const box of sourceBoxes()) box.checked = !free.includes(box.dataset.source);
  ui.runs.value = String(runs);
  ui.backend.value = backend;
  syncMaster();
}

function writeUrl() {
  history.replaceState(null, '', formatState(readForm()));
}

function restoreUrl() {
  fillForm(parseState(location.hash, defaults));
}

function clearInvalid(el) {
  for (const input of el ? [el] : ui.form.querySelectorAll('[aria-invalid]')) {
    input.removeAttribute('aria-invalid');
    input.removeAttribute('aria-errormessage');
  }
}

function markInvalid(field) {
  const input = field && ui.form.querySelector(`[name="${CSS.escape(field)}"]`);
  if (!input) return;
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-errormessage', 'status');
  input.focus();
}

// ---- the environment, in words ----------------------------------------------

function describeEnvironment() {
  if (!window.isSecureContext) {
    return {
      gpu: false,
      text:
        'No WebGPU here: this page was opened over plain http from another machine, and browsers offer WebGPU only ' +
        'to secure contexts (https, or http://localhost). Runs train on the CPU (WebAssembly). To use the GPU, open ' +
        'the page on this machine at http://localhost or serve it over https.',
    };
  }
  if (!('gpu' in navigator)) {
    return {
      gpu: false,
      text: 'This browser has no WebGPU (navigator.gpu is missing: switched off or not supported). Runs train on the CPU (WebAssembly).',
    };
  }
  return { gpu: true, text: 'This browser offers WebGPU: with backend "auto" each run asks for a GPU adapter and says below what it got.' };
}

// ---- runs ---------------------------------------------------------------------

class Slot {
  constructor(index, kind) {
    this.index = index; // 0-based; shown as index + 1
    this.kind = kind; // 'live' or 'record' (an imported manifest)
    this.label = kind === 'record' ? 'record' : `run ${index + 1}`;
    this.total = 0;
    this.step = 0;
    this.loss = new Float32Array(0);
    this.chain = [];
    this.val = [];
    this.params = new Map(); // step -> weights (run 1 keeps them; the others until compared)
    this.dist = new Map(); // step -> distance to run 1
    this.firstDiv = null; // first step whose chain link differs from run 1's
    this.backend = null;
    this.backendReason = '';
    this.adapter = null;
    this.level = null;
    this.manifest = null; // JSON text once finished (or from the file)
    this.done = false;
    this.stopped = null;
    this.error = null;
    this.worker = null;
    this.grid = null;
    this.card = null;
  }

  addLoss(values) {
    const n = this.step0 ?? 0;
    const need = n + values.length;
    if (this.loss.length < need) {
      const grown = new Float32Array(Math.max(need, this.total));
      grown.set(this.loss.subarray(0, n));
      this.loss = grown;
    }
    this.loss.set(values, n);
    this.step0 = need;
  }
}

function terminateAll() {
  session += 1;
  for (const s of slots) s.worker?.terminate();
  for (const url of urls) URL.revokeObjectURL(url);
  urls.clear();
}

function samplesFor(total) {
  const every = Math.max(1, Math.ceil(total / 100));
  const out = new Set();
  for (let s = 1; s <= Math.min(10, total); s++) out.add(s);
  for (let s = every; s <= total; s += every) out.add(s);
  out.add(total);
  return [...out].sort((a, b) => a - b);
}

// The distance between two weight vectors (f64 sums), or NaN for other shapes.
function distance(a, b) {
  if (a.length !== b.length) return Number.NaN;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    sum += d * d;
  }
  return Math.sqrt(sum);
}

function compareParams(slot, step) {
  const ref = slots[0].params.get(step);
  const mine = slot.params.get(step);
  if (!ref || !mine) return;
  slot.dist.set(step, distance(ref, mine));
  slot.params.delete(step);
}

function compareChains(slot) {
  if (slot.index === 0 || slot.firstDiv != null) return;
  const ref = slots[0].chain;
  const n = Math.min(ref.length, slot.chain.length);
  for (let i = slot.checked ?? 0; i < n; i++) {
    if (ref[i] !== slot.chain[i]) {
      slot.firstDiv = i + 1;
      return;
    }
  }
  slot.checked = n;
  // One run ended (or stopped) before the other: they part at the next step.
  const refEnded = slots[0].done && ref.length === n;
  const mineEnded = slot.done && slot.chain.length === n;
  if ((refEnded || mineEnded) && ref.length !== slot.chain.length) slot.firstDiv = n + 1;
}

function firstDivergence() {
  const steps = slots.slice(1).map((s) => s.firstDiv).filter((s) => s != null);
  return steps.length ? Math.min(...steps) : null;
}

function startWorker(slot, init, id) {
  const worker = new Worker(WORKER_URL, { type: 'module', name: slot.label });
  slot.worker = worker;
  worker.onmessage = ({ data }) => {
    if (id !== session) return;
    onMessage(slot, data);
  };
  worker.onerror = (event) => {
    event.preventDefault();
    if (id !== session) return;
    onMessage(slot, { type: 'error', message: `the worker of ${slot.label} failed: ${event.message || 'its script could not be loaded'}` });
  };
  worker.postMessage(init);
}

function onMessage(slot, msg) {
  switch (msg.type) {
    case 'ready': {
      slot.backend = msg.backend;
      slot.backendReason = msg.backendReason;
      slot.adapter = msg.adapter;
      slot.total = msg.totalSteps;
      slot.workers = msg.workers;
      slot.arrivalOrder = msg.arrivalOrder;
      slot.startManifest = msg.manifest;
      slot.level = JSON.parse(msg.manifest).level_granted;
      takeParams(slot, msg.params);
      // The browser has navigator.gpu but gave no adapter: say so (the other
      // cases were said at load).
      if (slot.index === 0 && describeEnvironment().gpu && msg.backend === 'cpu' && /^auto: running on the CPU because/.test(msg.backendReason)) {
        ui.env.textContent = `No WebGPU for these runs: ${msg.backendReason.replace(/^auto: /, '')}.`;
        ui.env.classList.add('warn');
      }
      if (slot.index === 0 && !paused) say(`Training ${slots.length} runs side by side, each in its own Web Worker…`);
      if (slot.index === 0 && slots.length > 1 && slots[1].kind === 'live' && !slots[1].worker) startReruns(slot);
      if (!paused) slot.worker.postMessage({ type: 'go' });
      else if (slot.pendingStep) {
        slot.pendingStep = false;
        slot.worker.postMessage({ type: 'step' });
      }
      break;
    }
    case 'progress': {
      slot.addLoss(msg.loss);
      slot.chain.push(...msg.chain);
      slot.val = msg.val;
      slot.step = msg.step;
      slot.total = msg.total;
      slot.backend = msg.backend;
      slot.stopped = msg.stopped;
      if (msg.params) takeParams(slot, msg.params);
      if (msg.grid) slot.grid = msg.grid;
      for (const s of slots) compareChains(s);
      break;
    }
    case 'finished': {
      slot.done = true;
      slot.manifest = msg.manifest;
      slot.backend = msg.backend;
      slot.backendReason = msg.backendReason;
      slot.level = msg.level;
      for (const s of slots) compareChains(s);
      slot.worker.terminate();
      slot.worker = null;
      if (slots.every((s) => s.done || s.error)) finish();
      break;
    }
    case 'error': {
      slot.error = msg.message;
      for (const s of slots) s.worker?.terminate();
      setState('error');
      say(`${slot.label}: ${msg.message}`, true);
      if (slot.index === 0 || slot.kind === 'live') markInvalid(msg.field);
      enableRunButtons(false);
      onFinished?.({ error: msg.message });
      break;
    }
    default:
      break;
  }
  queueRender();
}

function takeParams(slot, p) {
  if (!p || slots[0].kind === 'record') return;
  slot.params.set(p.step, p.data);
  if (slot.index === 0) {
    for (const s of slots.slice(1)) compareParams(s, p.step);
  } else {
    compareParams(slot, p.step);
  }
}

// Runs 2..N: re-runs of run 1's manifest, the free sources free.
function startReruns(first) {
  const { free } = current;
  // Backend pinned: the backend run 1 got; free: whatever this browser offers.
  const backend = free.includes('backend') ? 'auto' : first.backend;
  for (const slot of slots.slice(1)) {
    startWorker(
      slot,
      { type: 'init', mode: 'rerun', manifest: first.startManifest, free, backend, samples: samplesFor(first.total), grid: current.grid },
      session,
    );
  }
}

let current = null; // what the runs on show were started with

function start({ startPaused = false } = {}) {
  terminateAll();
  const id = session;
  clearInvalid();
  const state = readForm();
  writeUrl();
  const twoD = TWO_D.includes(state.settings.dataset.split('@')[0]);
  current = { ...state, grid: twoD ? GRID : null };
  slots = Array.from({ length: state.runs }, (_, i) => new Slot(i, 'live'));
  paused = startPaused;
  resetOutputs();
  setState(paused ? 'paused' : 'running');
  say(`Starting ${state.runs} runs…`);
  enableRunButtons(true);
  ui.pause.textContent = paused ? 'Resume' : 'Pause';
  ui.pause.setAttribute('aria-pressed', String(paused));
  const free1 = state.free.filter((s) => RUNTIME_SOURCES.includes(s));
  startWorker(
    slots[0],
    {
      type: 'init',
      mode: 'create',
      settings: state.settings,
      free: free1,
      backend: state.free.includes('backend') ? 'auto' : state.backend,
      samples: samplesFor(Number(state.settings.steps) || 1),
      grid: current.grid,
    },
    id,
  );
  noEffectNotes(state);
}

// Sources set free that change nothing for these settings, said in words.
function noEffectNotes({ settings, free, backend }) {
  const notes = [];
  if (free.includes('engine_version') && settings.engine_version === defaults.engine_version) {
    notes.push(`engine_version free changes nothing while run 1 already uses the current engine version (${defaults.engine_version}): set the engine version to 1`);
  }
  if (free.includes('data_drift') && settings.dataset !== 'digits@1') {
    notes.push('data_drift free changes nothing unless run 1 uses an older data version: choose digits@1');
  }
  if (free.includes('hparam_drift') && Object.entries(settings).every(([k, v]) => !HPARAMS.includes(k) || v === defaults[k])) {
    notes.push('hparam_drift free changes nothing while every hyper-parameter has its default: change one (e.g. the learning rate)');
  }
  if (free.includes('gpu_reduction') && backend === 'cpu') notes.push('gpu_reduction free changes nothing on the CPU');
  if (free.includes('cpu_threads') && !(Number(settings.threads) > 1 && Number(settings.chunks) > 1)) {
    notes.push('cpu_threads free changes nothing with one CPU thread: set threads 3 and chunks 6, backend cpu');
  }
  ui.causes.textContent = notes.length ? `Note: ${notes.join('; ')}.` : '';
}
const HPARAMS = ['hidden', 'activation', 'dropout', 'learning_rate', 'momentum', 'weight_decay', 'batch_size', 'val_fraction'];

// Replays an imported manifest: the record against a re-run of it.
function replayManifest(text, name) {
  let m;
  try {
    m = JSON.parse(text);
  } catch (e) {
    fail(`${name} is not JSON (${e.message}): choose a manifest written by reprolab (run.json)`);
    return;
  }
  if (m?.manifest_version === undefined || !Array.isArray(m.hash_chain)) {
    fail(`${name} is not a reprolab manifest (no manifest_version or hash_chain)`);
    return;
  }
  terminateAll();
  const id = session;
  const settings = { ...defaults };
  for (const [k, e] of Object.entries(m.config ?? {})) if (k in defaults) settings[k] = toText(e.value);
  fillForm({ settings, free: m.free ?? [], runs: 2, backend: m.backend === 'gpu' ? 'auto' : 'cpu' });
  writeUrl();
  const twoD = m.data?.dim === 2;
  current = { ...readForm(), runs: 2, grid: twoD ? GRID : null, imported: name };
  const record = new Slot(0, 'record');
  record.total = m.steps_completed;
  record.addLoss(Float32Array.from(m.train_loss ?? []));
  record.step = m.steps_completed;
  record.chain = [...m.hash_chain];
  record.val = (m.val_error_curve ?? []).map((p) => ({ step: p.step, valError: p.val_error, valLoss: p.val_loss }));
  record.backend = m.backend;
  record.backendReason = `recorded in ${name}`;
  record.level = m.level_granted;
  record.manifest = text;
  record.done = true;
  const replay = new Slot(1, 'live');
  replay.label = 'replay';
  slots = [record, replay];
  paused = false;
  resetOutputs();
  setState('running');
  say(`Replaying ${name}: re-running it with every source pinned to the record…`);
  enableRunButtons(true);
  // The recorded backend where this browser has it; a GPU record on a machine
  // without WebGPU replays on the CPU and parts at step 1 (backend).
  const backend = m.backend === 'gpu' ? 'auto' : 'cpu';
  startWorker(replay, { type: 'init', mode: 'rerun', manifest: text, free: [], backend, samples: [], grid: current.grid }, id);
}

async function finish() {
  const id = session;
  const verdict = slots.slice(1).every((s) => s.firstDiv == null) ? 'identical' : 'diverged';
  const first = firstDivergence();
  // Causes and differences: the engine's diff of run 1 with each other run.
  const causes = new Set();
  const diffs = [];
  for (const s of slots.slice(1)) {
    try {
      const d = await engine.diff(slots[0].manifest, s.manifest);
      diffs.push([s, d]);
      for (const c of d.causes) causes.add(c);
    } catch (e) {
      diffs.push([s, { error: e.message }]);
    }
  }
  if (id !== session) return;
  ui.verdict.textContent = verdict;
  ui.verdict.className = verdict;
  ui.firstStep.textContent = first == null ? '' : String(first);
  const causeText = causes.size
    ? `Causes named by the diff: ${[...causes].map((c) => `${c} (${explanations[c] ?? ''})`).join('; ')}.`
    : verdict === 'identical'
      ? 'Every run has the same hash after every step: the same bits.'
      : '';
  ui.causes.textContent = causeText;
  const backends = slots.map((s) => `${s.label} on the ${s.backend === 'gpu' ? 'GPU' : 'CPU'}`).join(', ');
  if (current.imported) {
    say(verdict === 'identical'
      ? `Replayed ${current.imported}: identical, every one of its ${slots[0].chain.length} steps (${backends}).`
      : `Replayed ${current.imported}: the replay parts from the record at step ${first} (${backends}).`);
  } else {
    say(verdict === 'identical'
      ? `Done: the ${slots.length} runs are identical, bit for bit, at every step (${backends}).`
      : `Done: the runs diverged; the bits first parted at step ${first} (${backends}).`);
  }
  setState('done');
  enableRunButtons(false);
  ui.csv.disabled = false;
  ui.png.disabled = false;
  fillDiffSelects();
  if (diffs.length) showDiff(slots[0], diffs[0][0], diffs[0][1]);
  queueRender();
  onFinished?.({ verdict, first, causes: [...causes] });
}

function fail(text) {
  setState('error');
  say(text, true);
}

function enableRunButtons(running) {
  ui.pause.disabled = !running;
  ui.step.disabled = false;
}

function resetOutputs() {
  ui.verdict.textContent = '';
  ui.verdict.className = '';
  ui.firstStep.textContent = '';
  ui.causes.textContent = '';
  ui.diffOut.replaceChildren();
  ui.csv.disabled = true;
  ui.png.disabled = true;
  ui.diff.disabled = true;
  ui.diffA.replaceChildren();
  ui.diffB.replaceChildren();
  buildCards();
  charts.build(slots.map((s) => s.label));
  queueRender();
}

function reset() {
  terminateAll();
  slots = [];
  current = null;
  paused = false;
  onFinished?.({ error: 'reset' });
  onFinished = null;
  clearInvalid();
  fillForm({ settings: defaults, free: [], runs: 2, backend: 'auto' });
  history.replaceState(null, '', location.pathname + location.search);
  resetOutputs();
  ui.storySection.hidden = true;
  delete document.body.dataset.story;
  ui.pause.disabled = true;
  ui.pause.textContent = 'Pause';
  ui.pause.setAttribute('aria-pressed', 'false');
  setState('idle');
  say('Ready. Flip a switch and press Start.');
}

function togglePause() {
  if (!slots.some((s) => s.worker)) return;
  paused = !paused;
  for (const s of slots) s.worker?.postMessage({ type: paused ? 'pause' : 'go' });
  ui.pause.textContent = paused ? 'Resume' : 'Pause';
  ui.pause.setAttribute('aria-pressed', String(paused));
  setState(paused ? 'paused' : 'running');
  say(paused ? 'Paused: Step advances every run by one step; Resume goes on.' : 'Training…');
}

function stepOnce() {
  if (!slots.some((s) => s.worker)) {
    start({ startPaused: true });
    for (const s of slots) s.pendingStep = true;
    return;
  }
  if (!paused) togglePause();
  for (const s of slots) {
    if (s.worker && s.total) s.worker.postMessage({ type: 'step' });
    else s.pendingStep = true;
  }
}

// ---- rendering ------------------------------------------------------------------

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  const total = slots.reduce((a, s) => a + (s.total || Number(current?.settings?.steps) || 0), 0);
  const done = slots.reduce((a, s) => a + s.step, 0);
  ui.progress.max = Math.max(1, total);
  ui.progress.value = done;
  ui.progressText.textContent = slots.length
    ? slots.map((s) => `${s.label}: step ${s.step} / ${s.total || '…'}`).join(' · ')
    : 'not started';
  const marker = firstDivergence();
  if (slots.length && document.body.dataset.state !== 'done') {
    ui.firstStep.textContent = marker == null ? '' : String(marker);
  }
  charts.set(chartData());
  for (const s of slots) renderCard(s);
}

function chartData() {
  const maxSteps = Math.max(0, ...slots.map((s) => s.total || 0));
  const xs = Array.from({ length: maxSteps }, (_, i) => i + 1);
  const loss = [xs, ...slots.map((s) => xs.map((_, i) => (i < (s.step0 ?? 0) && s.loss[i] > 0 ? s.loss[i] : null)))];
  const valSteps = [...new Set(slots.flatMap((s) => s.val.map((p) => p.step)))].sort((a, b) => a - b);
  const val = [valSteps, ...slots.map((s) => {
    const by = new Map(s.val.map((p) => [p.step, p.valError * 100]));
    return valSteps.map((x) => by.get(x) ?? null);
  })];
  const distSteps = [...new Set(slots.flatMap((s) => [...s.dist.keys()]))].sort((a, b) => a - b);
  const floor = floorFor(slots.flatMap((s) => [...s.dist.values()]));
  const dist = [distSteps, ...slots.map((s, i) => {
    if (i === 0) return distSteps.map(() => null);
    return distSteps.map((x) => {
      const d = s.dist.get(x);
      if (d === undefined || Number.isNaN(d)) return null;
      return Math.max(d, floor);
    });
  })];
  return { loss, val, dist, floor };
}

function buildCards() {
  ui.cards.replaceChildren();
  for (const s of slots) {
    const card = document.createElement('article');
    card.className = 'run-card';
    card.dataset.run = String(s.index + 1);
    card.style.setProperty('--run-color', COLORS[s.index % COLORS.length]);
    const h = document.createElement('h3');
    h.textContent = s.label === 'record' ? `Record (${current?.imported ?? 'imported'})` : s.label === 'replay' ? 'Replay' : `Run ${s.index + 1}`;
    const dl = document.createElement('dl');
    const row = (name, key) => {
      const dt = document.createElement('dt');
      dt.textContent = name;
      const dd = document.createElement('dd');
      dd.dataset.field = key;
      dl.append(dt, dd);
      return dd;
    };
    const fields = {
      progress: row('Progress', 'progress'),
      backend: row('Backend', 'backend'),
      level: row('Determinism level', 'level'),
      origin: row('What it is', 'origin'),
      vs: row('Against run 1', 'vs-run-1'),
      val: row('Validation error', 'val-error'),
      hash: row('Weights hash', 'weights-hash'),
    };
    const link = document.createElement('a');
    link.className = 'manifest-link';
    link.hidden = true;
    link.textContent = 'Manifest (JSON)';
    link.download = `${s.label.replace(' ', '-')}.json`;
    card.append(h, dl, link);
    let canvas = null;
    if (current?.grid) {
      canvas = document.createElement('canvas');
      canvas.width = 192;
      canvas.height = 192;
      canvas.className = 'heatmap';
      canvas.setAttribute('role', 'img');
      canvas.setAttribute('aria-label', `Decision boundary of ${s.label}: the predicted class over the input square`);
      card.append(canvas);
    }
    s.card = { root: card, fields, link, canvas, gridDrawn: null };
    ui.cards.append(card);
  }
}

function renderCard(s) {
  if (!s.card) return;
  const f = s.card.fields;
  f.progress.textContent = s.error ? `failed: ${s.error}` : s.done ? `done, ${s.step} steps` : `step ${s.step} / ${s.total || '…'}`;
  if (s.backend) {
    const a = s.adapter;
    // Firefox withholds the adapter's names: "(not reported by the browser)".
    const name = a ? [a.vendor, a.architecture, a.description].filter((x) => x && !/not reported/i.test(x)).join(' ') : '';
    const threads = s.workers && s.backend === 'cpu'
      ? `; ${s.workers.size} Web Workers compute the ${s.workers.chunks} chunks of every batch, their partial sums combined ${s.arrivalOrder ? 'in order of arrival (cpu_threads free)' : 'in chunk order (cpu_threads pinned)'}`
      : '';
    f.backend.textContent = `${s.backend === 'gpu' ? `GPU (WebGPU${name ? `: ${name}` : ''})` : 'CPU'}: ${backendWhy(s)}${threads}`;
  }
  f.level.textContent = s.level ?? '';
  f.origin.textContent = originText(s);
  if (s.index === 0) f.vs.textContent = 'the reference';
  else if (s.firstDiv != null) f.vs.textContent = `diverged: the bits part at step ${s.firstDiv}`;
  else f.vs.textContent = s.done ? 'identical at every step' : `identical so far (${Math.min(s.chain.length, slots[0].chain.length)} steps)`;
  const last = s.val.at(-1);
  f.val.textContent = last ? `${(last.valError * 100).toFixed(2)} % at step ${last.step}` : '';
  f.hash.textContent = s.done ? JSON.parse(s.manifest).weights_hash : '';
  if (s.done && s.manifest && s.card.link.hidden) {
    const url = URL.createObjectURL(new Blob([s.manifest], { type: 'application/json' }));
    urls.add(url);
    s.card.link.href = url;
    s.card.link.hidden = false;
  }
  if (s.card.canvas && s.grid && s.card.gridDrawn !== s.grid) {
    drawGrid(s.card.canvas, s.grid);
    s.card.gridDrawn = s.grid;
  }
}

// Why a run is on its backend, in words. A re-run with the backend pinned
// asks for run 1's backend; it says so, and why run 1 got it.
function backendWhy(s) {
  const pinnedRerun = s.index > 0 && s.kind === 'live' && s.label !== 'replay' && !current?.free.includes('backend');
  if (pinnedRerun && /^backend (cpu|gpu)$/.test(s.backendReason)) {
    return `backend pinned: run 1's (${slots[0].backendReason})`;
  }
  if (s.label === 'replay' && /^backend (cpu|gpu)$/.test(s.backendReason)) return 'the recorded backend';
  return s.backendReason;
}

function originText(s) {
  if (s.kind === 'record') return 'the imported manifest, as recorded';
  if (s.label === 'replay') return 'a re-run of the record, every source pinned';
  if (s.index === 0) {
    const free = current.free.filter((x) => RUNTIME_SOURCES.includes(x));
    return `trained from the settings${free.length ? `; free: ${free.join(', ')}` : ', every source pinned'}`;
  }
  return `a re-run of run 1's manifest${current.free.length ? `; free: ${current.free.join(', ')}` : ', every source pinned'}`;
}

// ---- compare, export, import ---------------------------------------------------------

function fillDiffSelects() {
  for (const sel of [ui.diffA, ui.diffB]) {
    sel.replaceChildren(...slots.filter((s) => s.manifest).map((s) => new Option(s.label, String(s.index))));
  }
  ui.diffA.value = '0';
  ui.diffB.value = slots.length > 1 ? '1' : '0';
  ui.diff.disabled = slots.filter((s) => s.manifest).length < 2;
}

async function diffSelected() {
  const a = slots[Number(ui.diffA.value)];
  const b = slots[Number(ui.diffB.value)];
  try {
    showDiff(a, b, await engine.diff(a.manifest, b.manifest));
  } catch (e) {
    showDiff(a, b, { error: e.message });
  }
}

function showDiff(a, b, d) {
  const out = [];
  const p = document.createElement('p');
  if (d.error) {
    p.textContent = `Could not compare ${a.label} and ${b.label}: ${d.error}`;
    ui.diffOut.replaceChildren(p);
    return;
  }
  p.textContent = d.identical
    ? `${a.label} and ${b.label}: identical manifests, the same bits at every step.`
    : `${a.label} and ${b.label}: ${d.differences.length} difference${d.differences.length === 1 ? '' : 's'}` +
      `${d.firstDivergentStep ? `; the hash chains part at step ${d.firstDivergentStep}` : '; the hash chains agree'}` +
      `${d.causes.length ? `. Causes: ${d.causes.join(', ')}.` : '.'}`;
  out.push(p);
  if (d.differences.length) {
    const table = document.createElement('table');
    const head = table.createTHead().insertRow();
    for (const t of ['field', a.label, b.label]) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = t;
      head.append(th);
    }
    const body = table.createTBody();
    for (const diff of d.differences) {
      const r = body.insertRow();
      for (const v of [diff.field, diff.a, diff.b]) {
        const td = r.insertCell();
        td.textContent = typeof v === 'string' ? v : JSON.stringify(v);
      }
    }
    const wrap = document.createElement('div');
    wrap.className = 'table-wrap';
    wrap.append(table);
    out.push(wrap);
  }
  ui.diffOut.replaceChildren(...out);
}

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function curvesCsv() {
  const lines = ['run,step,train_loss,val_error,distance_to_run_1,chain_link'];
  for (const s of slots) {
    const val = new Map(s.val.map((p) => [p.step, p.valError]));
    for (let i = 0; i < (s.step0 ?? 0); i++) {
      const step = i + 1;
      const d = s.dist.get(step);
      lines.push([s.label, step, s.loss[i], val.get(step) ?? '', d === undefined || Number.isNaN(d) ? '' : d, s.chain[i] ?? ''].join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}

async function importFile(file) {
  if (!file) return;
  try {
    replayManifest(await file.text(), file.name);
  } catch (e) {
    fail(`Could not read ${file.name}: ${e.message}`);
  } finally {
    ui.import.value = '';
  }
}

// ---- the story --------------------------------------------------------------------------

async function tellStory() {
  ui.storySection.hidden = false;
  ui.storySteps.replaceChildren();
  const items = CHAPTERS.map((ch) => {
    const li = document.createElement('li');
    const h = document.createElement('h3');
    h.textContent = ch.title;
    const p = document.createElement('p');
    p.textContent = ch.text;
    const result = document.createElement('p');
    result.className = 'story-result';
    li.append(h, p, result);
    ui.storySteps.append(li);
    return { li, result };
  });
  const backend = ui.backend.value;
  for (const [i, ch] of CHAPTERS.entries()) {
    document.body.dataset.story = String(i + 1);
    items.forEach(({ li }, j) => li.classList.toggle('current', i === j));
    fillForm({ settings: { ...defaults, ...STORY_SETTINGS, ...ch.settings }, free: ch.free, runs: 2, backend });
    items[i].result.textContent = 'Running…';
    const outcome = await new Promise((resolve) => {
      onFinished = resolve;
      start();
    });
    onFinished = null;
    if (outcome.error) {
      items[i].result.textContent = `Stopped: ${outcome.error}`;
      delete document.body.dataset.story;
      return;
    }
    items[i].result.textContent = ch.result(outcome);
    items[i].li.dataset.verdict = outcome.verdict;
  }
  items.forEach(({ li }) => li.classList.remove('current'));
  document.body.dataset.story = 'done';
  say('The story is told: with every source pinned, the two runs coincide to the bit.');
}

// ---- start-up ---------------------------------------------------------------------------

async function main() {
  charts = new Charts({ loss: $('#chart-loss'), val: $('#chart-val'), dist: $('#chart-dist') }, () =>
    slots.length ? firstDivergence() : null,
  );
  const env = describeEnvironment();
  ui.env.textContent = env.text;
  ui.env.classList.toggle('warn', !env.gpu);
  try {
    await engine.init();
    const [config, help, list, version] = await Promise.all([engine.defaultConfig(), engine.configHelp(), engine.sources(), engine.engineVersion()]);
    defaults = Object.fromEntries(Object.entries(config).map(([k, v]) => [k, toText(v)]));
    buildFields(help);
    buildSources(list);
    ui.version.textContent = version;
  } catch (e) {
    setState('error');
    say(`Could not load the engine (${e.message}). Build it first: make build-web (see README.md).`, true);
    return;
  }
  restoreUrl();
  const { autostart } = parseState(location.hash, defaults);
  window.addEventListener('hashchange', () => {
    restoreUrl();
    if (parseState(location.hash, defaults).autostart) start();
  });

  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    start();
  });
  ui.form.addEventListener('input', (event) => clearInvalid(event.target));
  ui.form.addEventListener('change', (event) => {
    if (event.target === ui.master) {
      // Ticked: every source pinned. Unticked: the randomness frameworks leave free.
      for (const b of sourceBoxes()) {
        if (ui.master.checked) b.checked = true;
        else if (DEFAULT_FREE.includes(b.dataset.source)) b.checked = false;
      }
    }
    if (event.target.dataset.source || event.target === ui.master) syncMaster();
    if (event.target !== ui.import) writeUrl();
  });
  ui.pause.addEventListener('click', togglePause);
  ui.step.addEventListener('click', stepOnce);
  ui.reset.addEventListener('click', reset);
  ui.story.addEventListener('click', () => tellStory());
  ui.import.addEventListener('change', () => importFile(ui.import.files[0]));
  ui.diff.addEventListener('click', diffSelected);
  ui.csv.addEventListener('click', () => download(new Blob([curvesCsv()], { type: 'text/csv' }), 'curves.csv'));
  ui.png.addEventListener('click', async () => {
    const blob = await charts.png(['Training loss (log scale)', 'Validation error (%)', "Distance to run 1's weights (log scale)"]);
    if (blob) download(blob, 'charts.png');
  });
  ui.copyLink.addEventListener('click', async () => {
    writeUrl();
    const link = `${location.href.split('#')[0]}${formatState(readForm(), true)}`;
    try {
      await navigator.clipboard.writeText(link);
      say('Link copied: it restores these settings and switches and starts the runs.');
    } catch {
      say(`Copy this link (it restores these settings and switches and starts the runs): ${link}`);
    }
  });

  slots = [];
  resetOutputs();
  for (const b of [ui.start, ui.story, ui.import, ui.step]) b.disabled = false;
  setState('idle');
  say('Ready. Flip a switch and press Start.');
  if (autostart) start();
}

main();
