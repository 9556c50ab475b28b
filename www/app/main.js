// The demo page: 2 to 4 training runs side by side, each in its own Web
// Worker, and the nine sources of run-to-run variation as switches. This
// file wires the parts together; each part is a module of its own:
//   controls.js  the form, the switches and the URL (state.js)
//   runs.js      runs and workers, the comparisons, the outcome (run-worker.js)
//   cards.js     run cards, heat maps and the verdict
//   charts.js    the charts, their shared cursor and their tables
//   compare.js   the diff of two runs, CSV and PNG export, import
//   story.js     the guided story
//   engine.js    everything the page takes from the engine; env.js the GPU
//
// Stable hooks for tests and scripts:
//   input[type=checkbox][data-source=NAME]   checked when NAME is pinned
//   [data-action=start|pause|step|reset|story|import|diff|export-csv|export-png]
//   [data-setting=runs|backend|KEY]         the run count, backend and every setting
//   [data-verdict]                           "identical" or "diverged" once runs finish
//   [data-first-divergent-step]              that step, or empty
//   #free-effects li[data-source][data-acts] each free source: could it act here
//   button[data-fix=SOURCE]                  the one change that lets SOURCE act
//   .chart[data-points]                      values plotted on each chart
//   #charts[data-first-point-at]             performance.now() of the first plotted step
//   body[data-state]                         loading, idle, running, paused, done, error
//   body[data-story]                         the story's chapter (1..), "done" at its end
//   body[data-story-state]                   running, paused, done

import { Cards, Verdict } from './cards.js';
import { Charts, KEYS, chartData } from './charts.js';
import { Compare, curvesCsv, download, readManifest } from './compare.js';
import { Controls } from './controls.js';
import * as engine from './engine.js';
import { bannerText, probeGpu } from './env.js';
import { capMessage, toText } from './format.js';
import { GRID } from './heatmap.js';
import { RunSet } from './runs.js';
import { formatState } from './state.js';
import { Story } from './story.js';

const $ = (s) => document.querySelector(s);
const CHART_TITLES = {
  loss: 'Training loss (log scale)',
  diff: 'Difference of each run\'s loss to the reference (log scale)',
  val: 'Validation error (%)',
  dist: 'Distance to the reference\'s weights (log scale)',
};

class App {
  constructor() {
    this.ui = {
      form: $('#controls'),
      start: $('[data-action="start"]'),
      pause: $('[data-action="pause"]'),
      step: $('[data-action="step"]'),
      reset: $('[data-action="reset"]'),
      story: $('[data-action="story"]'),
      import: $('[data-action="import"]'),
      csv: $('[data-action="export-csv"]'),
      png: $('[data-action="export-png"]'),
      copyLink: $('[data-action="copy-link"]'),
      progress: $('#progress'),
      progressText: $('#progress-text'),
      status: $('#status'),
      statusSection: $('section.status'),
      env: $('#env'),
      version: $('#engine-version'),
      capabilities: $('#engine-capabilities'),
      charts: $('#charts'),
      readout: $('#cursor-readout'),
    };
    this.charts = new Charts(
      Object.fromEntries(KEYS.map((k) => [k, $(`#chart-${k}`)])),
      { getMarker: () => this.runset?.firstDivergence() ?? null, onCursor: (step) => this.showCursor(step) },
    );
    this.renderQueued = false;
    this.cursorStep = null;
    this.firstPointAt = null;
    this.started = false; // the reader has started runs (changes re-run from then on)
    this.tablesAt = 0;
  }

  // ---- start-up ----------------------------------------------------------------

  async boot() {
    const gpuFound = probeGpu();
    let module;
    try {
      module = await engine.load();
      this.info = await engine.info();
    } catch (e) {
      this.setState('error');
      this.say(`Could not load the engine (${e.message}). Build it first: make build-web (see README.md).`, true);
      return;
    }
    this.gpu = await gpuFound;
    this.showBanner();
    this.ui.version.textContent = this.info.engine;
    const caps = engine.capabilities();
    this.ui.capabilities.textContent = ['engineInfo', 'freeSourceEffects', 'replayPlan']
      .map((k) => `${k}: ${caps[k] ? "the engine's" : "the page's stand-in"}`)
      .concat(caps.dataPoints ? [] : ['no training points on the heat maps (this engine has no dataPoints)'])
      .join('; ');
    this.ui.capabilities.dataset.capabilities = JSON.stringify(caps);

    this.controls = new Controls(this.ui.form, this.info, { onChange: () => this.edited(), onPreview: () => this.preview() });
    this.runset = new RunSet({ module, gpu: this.gpu, info: this.info });
    const onFix = (fix, source) => this.fix(fix, source);
    this.cards = new Cards($('#run-cards'), $('#heatmaps'), { onFix });
    this.verdict = new Verdict(
      { verdict: $('[data-verdict]'), firstStep: $('[data-first-divergent-step]'), causes: $('#causes'), levels: $('#levels'), effects: $('#free-effects') },
      { explanations: Object.fromEntries(this.info.sources.map((s) => [s.name, s.explanation])), onFix },
    );
    this.compare = new Compare({ a: $('#diff-a'), b: $('#diff-b'), button: $('[data-action="diff"]'), out: $('#diff-out') });
    this.story = new Story(
      { section: $('#story'), steps: $('#story-steps'), chart: $('#story-chart'), table: $('#story-table'), button: this.ui.story, now: $('#story-now') },
      { info: this.info, gpu: this.gpu, runChapter: (ch) => this.runChapter(ch) },
    );
    this.runset.addEventListener('update', () => this.queueRender());
    this.runset.addEventListener('failed', (e) => this.failed(e.detail));
    this.runset.addEventListener('finished', (e) => this.finished(e.detail));
    this.wire();

    const { autostart } = this.controls.restoreUrl();
    this.preview();
    window.addEventListener('hashchange', () => {
      const state = this.controls.restoreUrl();
      this.preview();
      if (state.autostart) this.start();
    });
    this.clearOutputs();
    for (const b of [this.ui.start, this.ui.story, this.ui.import, this.ui.step]) b.disabled = false;
    this.setState('idle');
    this.say('Ready. Flip a switch and press Start.');
    if (autostart) this.start();
  }

  wire() {
    const { ui } = this;
    ui.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.start({ scroll: true });
    });
    ui.pause.addEventListener('click', () => this.togglePause());
    ui.step.addEventListener('click', () => this.stepOnce());
    ui.reset.addEventListener('click', () => this.reset());
    ui.story.addEventListener('click', () => this.story.tell());
    ui.import.addEventListener('change', () => this.importFile(ui.import.files[0]));
    ui.csv.addEventListener('click', () => download(new Blob([curvesCsv(this.runset.slots)], { type: 'text/csv' }), 'curves.csv'));
    ui.png.addEventListener('click', async () => {
      const blob = await this.charts.png(CHART_TITLES);
      if (blob) download(blob, 'charts.png');
    });
    ui.copyLink.addEventListener('click', async () => {
      this.controls.writeUrl();
      const link = `${location.href.split('#')[0]}${formatState(this.controls.read(), true)}`;
      try {
        await navigator.clipboard.writeText(link);
        this.say('Link copied: it restores these settings and switches and starts the runs.');
      } catch {
        this.say(`Copy this link (it restores these settings and switches and starts the runs): ${link}`);
      }
    });
    for (const details of document.querySelectorAll('details[data-table]')) {
      details.addEventListener('toggle', () => details.open && this.fillTable(details));
    }
  }

  // ---- words -----------------------------------------------------------------------

  setState(state) {
    document.body.dataset.state = state;
  }

  say(text, isError = false) {
    this.ui.status.textContent = capMessage(text, 400, this.info?.limits?.max_echo ?? undefined);
    this.ui.status.classList.toggle('error', isError);
  }

  showBanner(extra = '') {
    const { text, warn } = bannerText(this.gpu);
    this.ui.env.textContent = extra ? `${text} ${extra}` : text;
    this.ui.env.classList.toggle('warn', warn);
    this.ui.env.dataset.gpu = this.gpu.why;
  }

  // ---- starting runs -------------------------------------------------------------

  // Starts runs from the form. by: 'user' (Start, a link), 'edit' (a changed
  // setting), 'fix' (a fix button), 'story', 'step'. Resolves to the outcome.
  // rerunBackend: where the re-runs train (the story's GPU-and-CPU chapter);
  // otherwise run 1's backend, as the record says.
  start({ by = 'user', paused = false, scroll = false, rerunBackend } = {}) {
    this.controls.cancelPending();
    this.started = true;
    const why = { edit: 'a setting was changed', fix: 'a fix was applied', step: 'Step was pressed' }[by] ?? 'you started your own runs';
    if (by !== 'story') this.story.interrupt(why);
    this.controls.clearInvalid();
    const state = this.controls.read();
    this.controls.writeUrl();
    const refused = engine.checkSettings(state.settings, this.info);
    if (refused) {
      this.runset.clear('refused');
      this.clearOutputs();
      this.refuse(refused.message, refused.field);
      return Promise.resolve({ error: refused.message, field: refused.field });
    }
    let effects;
    try {
      effects = engine.freeSourceEffects(state.settings, state.free, state.backend, this.gpu, this.info);
    } catch (e) {
      this.runset.clear('refused');
      this.clearOutputs();
      this.refuse(e.message, e.field);
      return Promise.resolve({ error: e.message, field: e.field });
    }
    const [name] = state.settings.dataset.split('@');
    const twoD = this.info.datasets.find((d) => d.name === name)?.dim === 2;
    const plan = { kind: 'runs', ...state, grid: twoD ? GRID : null, effects, rerunBackend };
    const done = this.runset.start(plan, { paused });
    this.began(plan, paused);
    this.controls.showEffects(effects);
    this.verdict.expect(effects);
    this.say(`Starting ${state.runs} runs…`);
    if (scroll) this.scrollToResults();
    return done;
  }

  // The page's part of every start: fresh outputs, buttons, state.
  began(plan, paused) {
    this.firstPointAt = null;
    delete this.ui.charts.dataset.firstPointAt;
    this.clearOutputs();
    this.ui.charts.classList.toggle('replay', plan.kind === 'replay');
    this.setState(paused ? 'paused' : 'running');
    this.ui.pause.disabled = false;
    this.setPauseButton(paused);
  }

  refuse(message, field) {
    this.setState('error');
    this.say(message, true);
    this.controls.markInvalid(field);
    this.ui.pause.disabled = true;
  }

  // A setting or switch changed: re-run, as Playground does, once the
  // reader has started runs (not while paused: Step is theirs).
  edited() {
    if (['running', 'done', 'error'].includes(document.body.dataset.state) && this.started) this.start({ by: 'edit' });
  }

  // Beside each switch, at once: can this free source act with these settings here?
  preview() {
    const { settings, free, backend } = this.controls.read();
    try {
      this.controls.showEffects(engine.freeSourceEffects(settings, free, backend, this.gpu, this.info));
    } catch {
      this.controls.showEffects([]); // a setting the engine refuses: said at Start
    }
  }

  fix(fix, source) {
    this.controls.applyFix(fix);
    this.say(`Applied the change that lets ${source} act; re-running…`);
    this.start({ by: 'fix' });
  }

  runChapter(ch) {
    const now = this.controls.read();
    this.controls.fill({ settings: { ...this.controls.defaults, ...ch.settings }, free: ch.free, runs: 2, backend: ch.backend ?? now.backend });
    return this.start({ by: 'story', rerunBackend: ch.rerunBackend });
  }

  // On a narrow screen the results are far below the controls: bring the
  // verdict and the first chart into view.
  scrollToResults() {
    const top = this.ui.statusSection.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight * 0.4) this.ui.statusSection.scrollIntoView({ block: 'start' });
  }

  async importFile(file) {
    if (!file) return;
    this.ui.import.value = '';
    this.started = true;
    this.story.interrupt('a manifest was imported');
    const read = await readManifest(file);
    if (read.error) {
      this.runset.clear('refused');
      this.clearOutputs();
      this.refuse(read.error);
      return;
    }
    let plan;
    try {
      plan = engine.replayPlan(read.text, this.gpu);
    } catch (e) {
      this.runset.clear('refused');
      this.clearOutputs();
      this.refuse(`The engine refused ${file.name}: ${e.message}`);
      return;
    }
    if (!plan.can_replay) {
      this.runset.clear('refused');
      this.clearOutputs();
      this.refuse(`${file.name} cannot be replayed here: ${plan.reason}`);
      return;
    }
    const m = read.manifest;
    const settings = { ...this.controls.defaults };
    for (const [k, e] of Object.entries(m.config ?? {})) if (k in settings) settings[k] = toText(e.value);
    this.controls.fill({ settings, free: m.free ?? [], runs: 2, backend: plan.backend });
    this.controls.writeUrl();
    this.controls.showEffects([]);
    const recorded = (m.backend_history ?? []).some((s) => s.backend === 'gpu') || m.backend === 'gpu' ? 'gpu' : 'cpu';
    const replayPlan = {
      kind: 'replay',
      text: read.text,
      manifest: m,
      name: file.name,
      // The record's own backends, stretch by stretch, unless the plan says otherwise.
      backend: plan.backend === recorded ? undefined : plan.backend,
      grid: m.data?.dim === 2 ? GRID : null,
      free: m.free ?? [],
    };
    this.runset.start(replayPlan);
    this.began(replayPlan, false);
    this.say(`Replaying ${file.name}: re-running it with every source pinned to the record…${plan.reason ? ` (${plan.reason})` : ''}`);
  }

  // ---- run control -------------------------------------------------------------------

  setPauseButton(paused) {
    this.ui.pause.textContent = paused ? 'Resume' : 'Pause';
    this.ui.pause.setAttribute('aria-pressed', String(paused));
  }

  togglePause() {
    if (!this.runset.active) return;
    const paused = !this.runset.paused;
    this.story.interrupt('the runs were paused');
    this.runset.setPaused(paused);
    this.setPauseButton(paused);
    this.setState(paused ? 'paused' : 'running');
    this.say(paused ? this.pausedText() : 'Training…');
  }

  stepOnce() {
    if (!this.runset.active) {
      this.start({ by: 'step', paused: true });
    } else {
      this.story.interrupt('Step was pressed');
      this.setPauseButton(true);
      this.setState('paused');
    }
    this.runset.stepAll();
  }

  pausedText() {
    const live = this.runset.slots.filter((s) => s.kind !== 'record');
    const step = live.length ? Math.min(...live.map((s) => s.steps)) : 0;
    const total = Math.max(0, ...live.map((s) => s.total));
    return `Paused at step ${step}${total ? ` of ${total}` : ''}: Step advances every run by one step; Resume goes on.`;
  }

  reset() {
    this.controls.cancelPending();
    this.story.stop();
    this.runset.clear('reset');
    this.started = false;
    this.controls.reset();
    history.replaceState(null, '', location.pathname + location.search);
    this.clearOutputs();
    this.ui.pause.disabled = true;
    this.setPauseButton(false);
    this.setState('idle');
    this.say('Ready. Flip a switch and press Start.');
  }

  // ---- outcomes --------------------------------------------------------------------

  failed({ slot, message, field }) {
    this.setState('error');
    this.ui.pause.disabled = true;
    if (slot.kind === 'replay') {
      this.say(`The engine refused ${this.runset.plan.name}: ${message}`, true);
    } else {
      this.say(`${slot.label}: ${message}`, true);
      this.controls.markInvalid(field);
    }
    this.queueRender();
  }

  finished(outcome) {
    const { slots, plan } = this.runset;
    const replay = plan.kind === 'replay';
    this.verdict.show(outcome, replay);
    const backends = slots.map((s) => `${s.label} on the ${s.backend === 'gpu' ? 'GPU' : 'CPU'}`).join(', ');
    const { verdict, first } = outcome;
    if (replay) {
      this.say(
        verdict === 'identical'
          ? `Replayed ${plan.name}: identical, every one of its ${slots[0].chain.length} steps (${backends}).`
          : `Replayed ${plan.name}: the replay parts from the record at step ${first} (${backends}).`,
      );
    } else {
      this.say(
        verdict === 'identical'
          ? `Done: the ${slots.length} runs are identical, bit for bit, at every step (${backends}).`
          : `Done: the runs diverged; the bits first parted at step ${first} (${backends}).`,
      );
      this.controls.showEffects(outcome.effects);
    }
    this.showBanner(`Last ${replay ? 'replay' : 'runs'}: ${backends}.`);
    this.setState('done');
    this.ui.pause.disabled = true;
    this.setPauseButton(false);
    this.ui.csv.disabled = false;
    this.ui.png.disabled = false;
    this.compare.fill(slots, outcome.effects.filter((e) => !e.acts).map((e) => e.source));
    const firstDiff = outcome.diffs[0];
    if (firstDiff) this.compare.show(slots[0], firstDiff.slot, firstDiff.diff);
    this.queueRender();
    for (const details of document.querySelectorAll('details[data-table]')) if (details.open) this.fillTable(details);
  }

  clearOutputs() {
    this.verdict.clear();
    this.compare.clear();
    this.ui.csv.disabled = true;
    this.ui.png.disabled = true;
    this.cards.build(this.runset, this.gpu);
    this.charts.build(this.runset.slots.map((s) => s.label));
    for (const details of document.querySelectorAll('details[data-table]')) details.querySelector('.table-wrap').replaceChildren();
    this.queueRender();
  }

  // ---- rendering -------------------------------------------------------------------

  queueRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  render() {
    const { slots } = this.runset;
    const live = slots.filter((s) => s.kind !== 'record');
    const total = live.reduce((a, s) => a + (s.total || Number(this.runset.plan?.settings?.steps) || 0), 0);
    this.ui.progress.max = Math.max(1, total);
    this.ui.progress.value = live.reduce((a, s) => a + s.steps, 0);
    this.ui.progressText.textContent = slots.length ? slots.map((s) => `${s.label}: step ${s.steps} / ${s.total || '…'}`).join(' · ') : 'not started';
    const state = document.body.dataset.state;
    if (slots.length && state !== 'done') this.verdict.marker(this.runset.firstDivergence());
    if (state === 'paused' && this.runset.active) this.say(this.pausedText());
    else if (state === 'running' && live.some((s) => s.steps > 0)) this.say(`Training ${slots.length} runs side by side, each in its own Web Worker…`);
    const data = chartData(this.runset.slots);
    this.charts.set(data);
    for (const key of KEYS) {
      const n = data[key].slice(1).reduce((a, ys) => a + ys.filter((v) => v != null).length, 0);
      $(`#chart-${key}`).dataset.points = String(n);
    }
    if (this.firstPointAt == null && Number($('#chart-loss').dataset.points) > 0) {
      // After the charts' own frame, in which the point is drawn.
      this.firstPointAt = -1;
      requestAnimationFrame(() => {
        this.firstPointAt = performance.now();
        this.ui.charts.dataset.firstPointAt = String(this.firstPointAt);
      });
    }
    this.cards.render(this.runset, this.gpu);
    if (this.cursorStep != null) this.showCursor(this.cursorStep);
    const now = performance.now();
    if (now - this.tablesAt > 1000) {
      this.tablesAt = now;
      for (const details of document.querySelectorAll('details[data-table]')) if (details.open) this.fillTable(details);
    }
  }

  // The shared cursor's values, in words, under the charts.
  showCursor(step) {
    this.cursorStep = step;
    if (step == null) {
      this.ui.readout.textContent = 'Hover over a chart (or tap it) to read every run\'s values at one step.';
      return;
    }
    const parts = [];
    for (const [key, name] of [['loss', 'loss'], ['diff', '|Δ loss|'], ['val', 'validation error'], ['dist', 'distance']]) {
      const v = this.charts.valuesAt(key, step);
      if (v.length) parts.push(`${name}${v[0].step !== step ? ` (step ${v[0].step})` : ''}: ${v.map((x) => `${x.label} ${x.text}`).join(', ')}`);
    }
    this.ui.readout.textContent = `Step ${step}: ${parts.join(' · ') || 'no values yet'}`;
    this.ui.readout.dataset.step = String(step);
  }

  fillTable(details) {
    const key = details.dataset.table;
    details.querySelector('.table-wrap').replaceChildren(this.charts.table(key, CHART_TITLES[key]));
  }
}

new App().boot();

