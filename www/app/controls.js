// The form: the run count, the backend, the nine switches and every
// setting, built from what the engine says (engineInfo: sources, settings
// and their help, data sets, engine versions), kept in step with the URL,
// and reporting every change (debounced) so that the page can re-run.

import { cap, el } from './format.js';
import { formatState, parseState } from './state.js';

// Labels in words; every other setting the engine has gets its key as label.
const LABELS = {
  dataset: 'Data set',
  hidden: 'Hidden widths',
  activation: 'Activation',
  dropout: 'Dropout rate',
  learning_rate: 'Learning rate',
  momentum: 'Momentum',
  weight_decay: 'Weight decay',
  batch_size: 'Batch size',
  steps: 'Steps',
  val_fraction: 'Validation fraction',
  seed: 'Seed',
  eval_every: 'Evaluate every (steps)',
  engine_version: 'Engine version',
  level: 'Arithmetic level',
  threads: 'CPU threads (Web Workers)',
  chunks: 'Batch chunks (partial sums)',
};
const INTEGER = ['batch_size', 'steps', 'seed', 'eval_every', 'threads', 'chunks'];
// The engine's help names the activations but does not list them as data.
const ACTIVATIONS = ['relu', 'tanh'];
export const DEBOUNCE_MS = 400;

export class Controls {
  // root: the form; info: engineInfo(); onChange(): a setting or switch
  // changed (debounced); onPreview(): the same, at once (for the notes
  // beside the switches).
  constructor(root, info, { onChange, onPreview }) {
    this.form = root;
    this.info = info;
    this.onChange = onChange;
    this.onPreview = onPreview;
    this.defaults = Object.fromEntries(info.settings.map((s) => [s.key, s.default]));
    this.sourceNames = info.sources.map((s) => s.name);
    // What unticking "Reproducible" frees: the randomness a framework leaves
    // free by default (the seeded streams and the reduction orders).
    this.frameworkFree = [...info.sources.filter((s) => s.seeded).map((s) => s.name), ...['gpu_reduction', 'cpu_threads'].filter((n) => this.sourceNames.includes(n))];
    this.fieldsEl = root.querySelector('#fields');
    this.sourcesEl = root.querySelector('#sources');
    this.master = root.querySelector('#reproducible');
    this.runs = root.querySelector('[data-setting="runs"]');
    this.backend = root.querySelector('[data-setting="backend"]');
    this.notesEl = document.getElementById('url-notes');
    this.timer = null;
    this.buildFields();
    this.buildSources();
    root.addEventListener('input', (e) => this.clearInvalid(e.target));
    root.addEventListener('change', (e) => this.changed(e));
  }

  // ---- building ----------------------------------------------------------------

  buildFields() {
    const order = Object.keys(LABELS).filter((k) => k in this.defaults);
    const keys = [...order, ...Object.keys(this.defaults).filter((k) => !order.includes(k))];
    for (const key of keys) {
      const spec = this.info.settings.find((s) => s.key === key);
      let input;
      const options = this.optionsFor(key);
      if (options) {
        input = el('select');
        for (const o of options) input.add(new Option(o, o));
      } else {
        input = el('input', { type: 'text', autocomplete: 'off', spellcheck: false });
        if (INTEGER.includes(key)) input.inputMode = 'numeric';
        if (key === 'hidden') input.placeholder = 'e.g. 128 or 64,32';
      }
      input.id = `setting-${key}`;
      input.name = key;
      input.dataset.setting = key;
      const label = el('label', { for: input.id, title: spec?.help || null }, LABELS[key] ?? key, ' ', el('code', { text: key }));
      if (spec?.hparam) label.append(el('span', { class: 'tag', text: 'hyper-parameter', title: 'returned to its default when hparam_drift is free' }));
      this.fieldsEl.append(el('div', { class: 'field' }, label, input));
    }
  }

  optionsFor(key) {
    if (key === 'dataset') {
      return this.info.datasets.flatMap((d) => (d.versions.length > 1 ? [d.name, ...d.versions.map((v) => `${d.name}@${v}`)] : [d.name]));
    }
    if (key === 'engine_version') return this.info.engine_versions.map(String);
    if (key === 'level') return this.info.levels;
    if (key === 'activation') return ACTIVATIONS;
    return null;
  }

  buildSources() {
    for (const { name, explanation } of this.info.sources) {
      const box = el('input', { type: 'checkbox', checked: true, ariaDescribedby: `explain-${name}` });
      box.dataset.source = name;
      const state = el('span', { class: 'pin-state' });
      const label = el('label', {}, box, el('span', { class: 'source-name' }, el('code', { text: name }), ' ', state));
      const effect = el('span', { class: 'effect', id: `effect-${name}`, hidden: true });
      this.sourcesEl.append(el('li', { dataset: { sourceItem: name } }, label, el('span', { class: 'explain', id: `explain-${name}`, text: explanation }), effect));
    }
    this.syncMaster();
  }

  // ---- reading and writing ---------------------------------------------------

  sourceBoxes() {
    return [...this.sourcesEl.querySelectorAll('input[data-source]')];
  }

  freeList() {
    return this.sourceBoxes().filter((b) => !b.checked).map((b) => b.dataset.source);
  }

  read() {
    const settings = {};
    for (const key of Object.keys(this.defaults)) settings[key] = this.form.elements.namedItem(key).value.trim();
    return { settings, free: this.freeList(), runs: Number(this.runs.value), backend: this.backend.value };
  }

  fill({ settings, free, runs, backend }) {
    for (const [key, value] of Object.entries(settings)) {
      const input = this.form.elements.namedItem(key);
      if (!input) continue;
      const text = String(value);
      if (input instanceof HTMLSelectElement && ![...input.options].some((o) => o.value === text)) {
        // Not one of the choices (from a link or a manifest): kept, so the
        // engine can name it, but shown capped.
        input.add(new Option(cap(text, 32), text));
      }
      input.value = text;
    }
    for (const box of this.sourceBoxes()) box.checked = !free.includes(box.dataset.source);
    this.runs.value = String(runs);
    this.backend.value = backend;
    this.syncMaster();
  }

  // Applies a fix ({set: {key: value}}, {backend}) to the form.
  applyFix(fix) {
    const now = this.read();
    this.fill({ ...now, settings: { ...now.settings, ...(fix.set ?? {}) }, backend: fix.backend ?? now.backend });
    this.writeUrl();
  }

  writeUrl() {
    history.replaceState(null, '', formatState(this.read()));
  }

  // Restores the form from the URL; shows what had to be changed.
  restoreUrl() {
    const state = parseState(location.hash, this.defaults, this.sourceNames);
    this.fill(state);
    this.showNotes(state.notes);
    return state;
  }

  showNotes(notes) {
    this.notesEl.replaceChildren(...notes.map((n) => el('li', { text: n })));
    this.notesEl.hidden = notes.length === 0;
  }

  reset() {
    this.clearInvalid();
    this.fill({ settings: this.defaults, free: [], runs: 2, backend: 'auto' });
    this.showNotes([]);
    this.showEffects([]);
  }

  // ---- the switches ------------------------------------------------------------

  syncMaster() {
    const boxes = this.sourceBoxes();
    const pinned = boxes.filter((b) => b.checked).length;
    const free = this.freeList();
    this.master.checked = pinned === boxes.length;
    const frameworkDefault = free.length === this.frameworkFree.length && free.every((s) => this.frameworkFree.includes(s));
    this.master.indeterminate = pinned > 0 && pinned < boxes.length && !frameworkDefault;
    for (const b of boxes) b.closest('label').querySelector('.pin-state').textContent = b.checked ? 'pinned' : 'free';
  }

  // Beside each free source: whether it can act with these settings here
  // (effects: freeSourceEffects()'s list).
  showEffects(effects) {
    for (const li of this.sourcesEl.querySelectorAll('[data-source-item]')) {
      const e = effects.find((x) => x.source === li.dataset.sourceItem);
      const span = li.querySelector('.effect');
      span.hidden = !e;
      li.dataset.acts = e ? String(e.acts) : '';
      span.textContent = !e ? '' : e.acts ? 'free: can act here' : `free, but cannot act here: ${e.why}`;
    }
  }

  changed(event) {
    const t = event.target;
    if (t.type === 'file') return;
    if (t === this.master) {
      // Ticked: every source pinned. Unticked: the randomness frameworks leave free.
      for (const b of this.sourceBoxes()) {
        if (this.master.checked) b.checked = true;
        else if (this.frameworkFree.includes(b.dataset.source)) b.checked = false;
      }
    }
    if (t.dataset.source || t === this.master) this.syncMaster();
    this.writeUrl();
    this.showNotes([]);
    this.onPreview?.();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onChange('edit'), DEBOUNCE_MS);
  }

  cancelPending() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  // ---- invalid fields ----------------------------------------------------------

  clearInvalid(input) {
    for (const i of input ? [input] : this.form.querySelectorAll('[aria-invalid]')) {
      i.removeAttribute('aria-invalid');
      i.removeAttribute('aria-errormessage');
    }
  }

  markInvalid(field) {
    const input = field && this.form.querySelector(`[name="${CSS.escape(field)}"]`);
    if (!input) return;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-errormessage', 'status');
    input.focus({ preventScroll: true });
  }
}
