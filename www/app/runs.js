// Runs and workers: 2 to 4 training runs side by side, each in its own Web
// Worker (run-worker.js) with its own engine instance. Run 1 trains from the
// settings; runs 2..N re-run run 1's manifest with the free sources free, so
// a pinned source is the same as in run 1 and a free one varies. A replay
// puts an imported manifest (the record) beside a re-run of it.
//
// A RunSet holds one such set: it compares every run's hash chain with run
// 1's as the steps arrive (the first step where the bits part), the weights
// at sample steps (the distance), and at the end asks the engine for the
// causes. It tells the page through events:
//   'update'    something arrived (render on the next frame)
//   'finished'  detail: the outcome (below)
//   'failed'    detail: {slot, message, field, code}
// start() resolves to the outcome: {verdict, first, causes, diffs, effects}
// once every run ended, {error} when one failed, {superseded} when the set
// was stopped first (another start, a reset).

import * as engine from './engine.js';

const WORKER_URL = new URL('./run-worker.js', import.meta.url);
// Free sources that are facts recorded by run 1 (what it was trained with):
// free only in the re-runs, whose record is run 1. `backend` is chosen for
// run 1 by the Backend control, and varies only in the re-runs.
export const RECORDED_SOURCES = ['engine_version', 'data_drift', 'hparam_drift', 'backend'];
const SAMPLES = 100; // weight samples for the distance chart

export class Slot {
  constructor(index, kind, label) {
    this.index = index; // 0-based
    this.kind = kind; // 'run' (run 1 and its re-runs), 'record' (an imported manifest), 'replay'
    this.label = label;
    this.total = 0;
    this.steps = 0; // steps with a loss
    this.loss = new Float32Array(0);
    this.chain = [];
    this.checked = 0; // chain links compared with the reference
    this.val = [];
    this.params = new Map(); // step -> weights, until compared
    this.dist = new Map(); // step -> distance to the reference
    this.firstDiv = null; // first step whose chain link differs from the reference's
    this.backend = null;
    this.backendReason = '';
    this.adapter = null;
    this.facts = { decision: null, inert: null, software: null, level: null };
    this.decision = null; // {backend, kind, text}
    this.level = null;
    this.levelReason = '';
    this.requested = null; // the backend asked of the engine (undefined: the record's)
    this.workers = null;
    this.arrivalOrder = false;
    this.startManifest = null;
    this.manifest = null; // JSON text once finished (or from the file)
    this.done = false;
    this.error = null;
    this.worker = null;
    this.grid = null;
    this.points = null;
    this.pendingStep = false;
  }

  get step() {
    return this.steps;
  }

  addLoss(values) {
    const need = this.steps + values.length;
    if (this.loss.length < need) {
      const grown = new Float32Array(Math.max(need, this.total));
      grown.set(this.loss.subarray(0, this.steps));
      this.loss = grown;
    }
    this.loss.set(values, this.steps);
    this.steps = need;
  }

  finalVal() {
    return this.val.at(-1) ?? null;
  }
}

// The sample steps for the weights' distance: the first ten, then about
// SAMPLES spread evenly, and the last.
function samplesFor(total) {
  const every = Math.max(1, Math.ceil(total / SAMPLES));
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

export class RunSet extends EventTarget {
  // module: the compiled engine for the workers; gpu: what the page found
  // (env.js probeGpu); info: engineInfo().
  constructor({ module, gpu, info }) {
    super();
    this.module = module;
    this.gpu = gpu;
    this.info = info;
    this.slots = [];
    this.plan = null;
    this.paused = false;
    this.settle = null; // resolves start()'s promise
    this.finishing = false;
  }

  get active() {
    return this.slots.some((s) => s.worker);
  }

  get ended() {
    return this.slots.length > 0 && this.slots.every((s) => s.done || s.error);
  }

  // Stops every worker; a pending start() resolves to {superseded: why}.
  stop(why = 'stopped') {
    for (const s of this.slots) {
      s.worker?.terminate();
      s.worker = null;
    }
    this.settleWith({ superseded: why });
  }

  // Stops every worker and forgets the runs (nothing of them is shown).
  clear(why) {
    this.stop(why);
    this.slots = [];
    this.plan = null;
    this.outcome = null;
  }

  settleWith(outcome) {
    const settle = this.settle;
    this.settle = null;
    settle?.(outcome);
  }

  // plan: {kind: 'runs', settings, free, runs, backend, grid, effects}
  //    or {kind: 'replay', text, manifest, name, backend, grid}
  start(plan, { paused = false } = {}) {
    this.stop('restarted');
    this.plan = plan;
    this.paused = paused;
    this.finishing = false;
    const done = new Promise((resolve) => {
      this.settle = resolve;
    });
    if (plan.kind === 'replay') {
      const record = new Slot(0, 'record', 'record');
      const m = plan.manifest;
      record.total = m.steps_completed;
      record.backend = m.backend;
      record.level = m.level_granted;
      record.levelReason = m.level_reason ?? '';
      record.manifest = plan.text;
      record.done = true;
      // The record's own curves wait until the engine has accepted the file
      // (the replay is ready): a refused manifest plots nothing.
      record.pending = {
        loss: Float32Array.from(m.train_loss ?? []),
        chain: [...(m.hash_chain ?? [])],
        val: (m.val_error_curve ?? []).map((p) => ({ step: p.step, valError: p.val_error, valLoss: p.val_loss })),
      };
      const replay = new Slot(1, 'replay', 'replay');
      this.slots = [record, replay];
      this.launch(replay, { asked: undefined, mode: 'rerun', manifest: plan.text, free: [], backend: plan.backend, samples: [], grid: plan.grid });
    } else {
      this.slots = Array.from({ length: plan.runs }, (_, i) => new Slot(i, 'run', `run ${i + 1}`));
      const { free, backend, pageChose } = this.enginePlan(plan);
      this.launch(this.slots[0], {
        asked: plan.backend,
        pageChose: pageChose.run1,
        mode: 'create',
        settings: plan.settings,
        free: free.run1,
        backend: backend.run1,
        samples: samplesFor(Number(plan.settings.steps) || 1),
        grid: plan.grid,
      });
    }
    this.emit('update');
    return done;
  }

  // What the engine is asked for: the free sources of run 1 and of the
  // re-runs, and their backends.
  enginePlan(plan) {
    // An older engine refuses cpu_threads free where it cannot act: it is
    // shown free, and said to be inert, but not passed on.
    const inert = new Set(
      engine.acceptsInertSources() ? [] : (plan.effects ?? []).filter((e) => !e.acts && e.source === 'cpu_threads').map((e) => e.source),
    );
    const passed = plan.free.filter((s) => !inert.has(s));
    // Auto passes a software GPU by for the CPU engine. The page applies that
    // rule itself where it knows the adapter is a software one: an older
    // engine has no such rule, and a newer one cannot always tell (Firefox
    // withholds the adapter's names; the page sees isFallbackAdapter).
    const run1 = plan.backend === 'auto' && this.gpu.available && this.gpu.software ? 'cpu' : plan.backend;
    // Free, the backend of the re-runs is whatever this machine offers;
    // pinned, run 1's (the record's), unless the plan asks for another
    // (the story's GPU-and-CPU chapter).
    const reruns = plan.free.includes('backend') ? 'auto' : plan.rerunBackend;
    return {
      free: { run1: passed.filter((s) => !RECORDED_SOURCES.includes(s)), reruns: passed },
      backend: { run1, reruns },
      // Where the page, not the engine, chose the CPU for auto.
      pageChose: { run1: run1 !== plan.backend, reruns: false },
    };
  }

  launch(slot, { asked, pageChose = false, rerunAsked = false, ...init }) {
    slot.asked = asked;
    slot.rerunAsked = rerunAsked; // the plan asked for the re-runs' backend (not Backend) // what the page means: auto, gpu, cpu, any (backend free), or undefined (the record's)
    slot.pageChose = pageChose; // the page chose the backend for auto (a software GPU here)
    slot.requested = init.backend; // what the engine is asked for
    const worker = new Worker(WORKER_URL, { type: 'module', name: slot.label });
    slot.worker = worker;
    worker.onmessage = ({ data }) => {
      if (slot.worker === worker) this.onMessage(slot, data);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      if (slot.worker === worker) {
        this.onMessage(slot, { type: 'error', message: `the worker of ${slot.label} failed: ${event.message || 'its script could not be loaded'}` });
      }
    };
    slot.stage = 'loading the engine';
    worker.postMessage({ type: 'init', module: this.module, ...init });
  }

  onMessage(slot, msg) {
    switch (msg.type) {
      case 'stage':
        slot.stage = msg.text;
        break;
      case 'ready':
        this.onReady(slot, msg);
        break;
      case 'progress':
        slot.addLoss(msg.loss);
        slot.chain.push(...msg.chain);
        slot.val = msg.val;
        slot.total = msg.total;
        if (slot.backend === 'gpu' && msg.backend === 'cpu' && (!slot.facts.decision || slot.pageChose)) {
          slot.decision = { backend: 'cpu', kind: 'device_lost', text: '' };
        }
        slot.backend = msg.backend;
        if (msg.params) this.takeParams(slot, msg.params);
        if (msg.grid) slot.grid = msg.grid;
        this.compareAll();
        break;
      case 'finished':
        slot.done = true;
        slot.manifest = msg.manifest;
        slot.backend = msg.backend;
        slot.backendReason = msg.backendReason;
        slot.level = msg.facts.level ?? msg.level;
        slot.levelReason = msg.facts.levelReason ?? JSON.parse(msg.manifest).level_reason ?? '';
        slot.facts = { ...slot.facts, ...Object.fromEntries(Object.entries(msg.facts).filter(([, v]) => v != null)) };
        if (slot.facts.decision && !slot.pageChose) slot.decision = slot.facts.decision;
        this.compareAll();
        slot.worker.terminate();
        slot.worker = null;
        if (this.ended) this.finish();
        break;
      case 'error':
        slot.error = msg.message;
        for (const s of this.slots) {
          s.worker?.terminate();
          s.worker = null;
        }
        this.dispatchEvent(new CustomEvent('failed', { detail: { slot, message: msg.message, field: msg.field, code: msg.code } }));
        this.settleWith({ error: msg.message, field: msg.field });
        break;
      default:
        break;
    }
    this.emit('update');
  }

  onReady(slot, msg) {
    slot.backend = msg.backend;
    slot.backendReason = msg.backendReason;
    slot.adapter = msg.adapter;
    slot.total = msg.totalSteps;
    slot.workers = msg.workers;
    slot.arrivalOrder = msg.arrivalOrder;
    slot.startManifest = msg.manifest;
    slot.facts = msg.facts;
    const started = JSON.parse(msg.manifest);
    slot.level = msg.facts.level ?? started.level_granted;
    slot.levelReason = msg.facts.levelReason ?? started.level_reason ?? '';
    slot.points = msg.points;
    slot.decision = (!slot.pageChose && msg.facts.decision) || this.pageDecision(slot);
    if (slot.kind === 'replay') {
      // The engine accepted the record: show it.
      const record = this.slots[0];
      const { loss, chain, val } = record.pending;
      record.addLoss(loss);
      record.chain = chain;
      record.val = val;
      record.pending = null;
    }
    this.takeParams(slot, msg.params);
    if (slot.index === 0 && this.slots.length > 1 && this.slots[1].kind === 'run' && !this.slots[1].worker) this.startReruns(slot);
    if (!this.paused) slot.worker.postMessage({ type: 'go' });
    else if (slot.pendingStep) {
      slot.pendingStep = false;
      slot.worker.postMessage({ type: 'step' });
    }
  }

  // The backend decision where the engine does not report one (yet), from
  // what was asked and what the run got; never from the engine's words.
  pageDecision(slot) {
    const asked = slot.asked;
    let kind;
    if (slot.kind === 'replay' || asked === undefined) kind = 'recorded';
    else if (asked === 'cpu' || asked === 'gpu') kind = 'requested';
    else if (slot.backend === 'gpu') kind = 'auto_gpu';
    else if (this.gpu.available && this.gpu.software) kind = 'auto_software_gpu';
    else kind = 'auto_no_gpu';
    return { backend: slot.backend, kind, text: '' };
  }

  startReruns(first) {
    const { free, backend, pageChose } = this.enginePlan(this.plan);
    for (const slot of this.slots.slice(1)) {
      this.launch(slot, {
        asked: this.plan.free.includes('backend') ? 'any' : this.plan.rerunBackend,
        rerunAsked: !this.plan.free.includes('backend') && Boolean(this.plan.rerunBackend),
        pageChose: pageChose.reruns,
        mode: 'rerun',
        manifest: first.startManifest,
        free: free.reruns,
        backend: backend.reruns,
        samples: samplesFor(first.total),
        grid: this.plan.grid,
      });
    }
  }

  takeParams(slot, p) {
    if (!p || this.slots[0].kind === 'record') return;
    slot.params.set(p.step, p.data);
    for (const s of slot.index === 0 ? this.slots.slice(1) : [slot]) {
      const ref = this.slots[0].params.get(p.step);
      const mine = s.params.get(p.step);
      if (ref && mine) {
        s.dist.set(p.step, distance(ref, mine));
        s.params.delete(p.step);
      }
    }
    // Run 1's weights are kept only while a re-run still needs them.
    for (const step of [...this.slots[0].params.keys()]) {
      if (this.slots.slice(1).every((s) => s.dist.has(step) || s.error || (s.done && s.steps < step))) this.slots[0].params.delete(step);
    }
  }

  compareAll() {
    const ref = this.slots[0];
    for (const slot of this.slots.slice(1)) {
      if (slot.firstDiv != null) continue;
      const n = Math.min(ref.chain.length, slot.chain.length);
      for (let i = slot.checked; i < n; i++) {
        if (ref.chain[i] !== slot.chain[i]) {
          slot.firstDiv = i + 1;
          break;
        }
      }
      if (slot.firstDiv != null) continue;
      slot.checked = n;
      // One run ended (or stopped) before the other: they part at the next step.
      const refEnded = ref.done && ref.chain.length === n && !ref.pending;
      const mineEnded = slot.done && slot.chain.length === n;
      if ((refEnded || mineEnded) && ref.chain.length !== slot.chain.length) slot.firstDiv = n + 1;
    }
  }

  firstDivergence() {
    const steps = this.slots.slice(1).map((s) => s.firstDiv).filter((s) => s != null);
    return steps.length ? Math.min(...steps) : null;
  }

  // ---- pause and step ------------------------------------------------------------

  setPaused(paused) {
    this.paused = paused;
    for (const s of this.slots) s.worker?.postMessage({ type: paused ? 'pause' : 'go' });
    this.emit('update');
  }

  stepAll() {
    this.paused = true;
    for (const s of this.slots) {
      if (s.done || s.error) continue;
      if (s.worker && s.total) s.worker.postMessage({ type: 'step' });
      else s.pendingStep = true;
    }
  }

  // ---- the end -----------------------------------------------------------------------

  async finish() {
    if (this.finishing) return;
    this.finishing = true;
    const settle = this.settle;
    const verdict = this.slots.slice(1).every((s) => s.firstDiv == null) ? 'identical' : 'diverged';
    const first = this.firstDivergence();
    const causes = new Set();
    const diffs = [];
    for (const s of this.slots.slice(1)) {
      try {
        const d = await engine.diff(this.slots[0].manifest, s.manifest);
        diffs.push({ slot: s, diff: d });
        for (const c of d.causes) causes.add(c);
      } catch (e) {
        diffs.push({ slot: s, diff: { error: e.message } });
      }
    }
    if (this.settle !== settle) return; // stopped meanwhile
    const effects = this.finalEffects(causes);
    // A source the runs could not vary is no cause, whatever the manifests'
    // free lists make the diff say: the effects say why it could not act.
    const inert = new Set(effects.filter((e) => !e.acts).map((e) => e.source));
    const outcome = { verdict, first, causes: [...causes].filter((c) => !inert.has(c)), diffs, effects, slots: this.slots };
    this.outcome = outcome;
    this.dispatchEvent(new CustomEvent('finished', { detail: outcome }));
    this.settleWith(outcome);
  }

  // For each free source: could it act in these runs, and did the diff name
  // it as a cause. What the runs record wins: the engine's inertSources
  // where the wrapper passes them on, else each manifest's `inert` list;
  // what was found before the start only where no run says. Where the runs
  // show a source had nothing to act on (every run on one backend, none on
  // the GPU), a "can act" becomes "could not act", with what the runs show.
  finalEffects(causes) {
    if (this.plan.kind !== 'runs') return [];
    // Per run: its free sources and those of them that could not act there.
    const runs = this.slots
      .map((s) => {
        const m = s.manifest ? JSON.parse(s.manifest) : null;
        // Engines that record inert sources leave the list out when it is empty.
        const inert = Array.isArray(s.facts.inert) ? s.facts.inert : (m?.inert ?? (engine.acceptsInertSources() ? [] : undefined));
        return Array.isArray(inert) && m ? { free: m.free ?? [], inert } : null;
      })
      .filter(Boolean);
    const backends = new Set(this.slots.map((s) => s.backend));
    const run1 = this.slots[0].backend;
    const engineFix = (source) => {
      try {
        return engine.freeSourceEffects(this.plan.settings, [source], run1, this.gpu, this.info)[0]?.fix ?? null;
      } catch {
        return null;
      }
    };
    return (this.plan.effects ?? []).map((e) => {
      let { acts, why, fix } = e;
      // It could act if it could in any run that had it free.
      const having = runs.filter((r) => r.free.includes(e.source));
      if (having.length) {
        const found = having.map((r) => r.inert.find((x) => x.source === e.source));
        acts = found.some((x) => !x);
        if (!acts) {
          why = found[0].why;
          fix = found[0].fix ?? fix ?? engineFix(e.source);
        }
      }
      if (acts && e.source === 'backend' && backends.size === 1) {
        acts = false;
        const on = run1 === 'gpu' ? 'GPU' : 'CPU';
        why = `every run trained on the ${on}: free, the re-runs took what this machine offers, and that is run 1's backend`;
        fix = this.gpu.available ? { backend: run1 === 'gpu' ? 'cpu' : 'gpu' } : null;
      }
      if (acts && e.source === 'gpu_reduction' && !backends.has('gpu')) {
        acts = false;
        why = 'every run trained on the CPU, which has no GPU reduction';
        fix = this.gpu.available ? { backend: 'gpu' } : null;
      }
      return { source: e.source, acts, why: acts ? '' : why, fix: acts ? null : fix, parted: acts && causes.has(e.source) };
    });
  }

  emit(type) {
    this.dispatchEvent(new Event(type));
  }
}
