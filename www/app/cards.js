// Run cards and the verdict: what each run is, where it trained and why,
// how it compares with the reference, which of its free sources could not
// act here (with the one change that would let them, one click away), and,
// once the runs end, the verdict naming every free source.

import { COLORS } from './charts.js';
import { adapterName } from './env.js';
import { capMessage, el, listText, percent } from './format.js';
import { drawHeatmap } from './heatmap.js';
import { RECORDED_SOURCES } from './runs.js';

// A fix ({set: {key: value}}, {backend}) in words, for its button.
export function fixText(fix) {
  if (!fix) return '';
  const parts = Object.entries(fix.set ?? {}).map(([k, v]) => `${k} ${v}`);
  if (fix.backend) parts.push(`Backend ${fix.backend}`);
  return `Set ${listText(parts)}`;
}

// Why a run trains where it does, from the backend decision's kind (the
// engine's own words, where it gives them, follow).
export function decisionText(slot, gpu) {
  const d = slot.decision;
  if (!d) return '';
  const name = adapterName(slot.adapter);
  const on = slot.backend === 'gpu' ? `the GPU (WebGPU${name ? `: ${name}` : ''})` : 'the CPU (WebAssembly)';
  const software = slot.facts?.software ?? (gpu.available && gpu.software);
  if (slot.asked === 'any' && d.kind !== 'device_lost') {
    return `backend free: ${on}, whatever this machine offers${slot.backend === 'gpu' && software ? ' (a software adapter, emulated on the CPU)' : ''}`;
  }
  switch (d.kind) {
    case 'requested':
      if (slot.rerunAsked) return `${on}: the story asks for this re-run of run 1's manifest there, to compare the two engines`;
      return `${on}, as Backend ${slot.asked ?? d.backend} asks${slot.backend === 'gpu' && software ? '; a software adapter, emulated on the CPU' : ''}`;
    case 'auto_gpu':
      return `auto: ${on}${software ? ', a software adapter, emulated on the CPU' : ''}`;
    case 'auto_software_gpu':
      return `auto: ${on}, because the only WebGPU adapter here is a software one (slower than the CPU engine); Backend gpu uses it anyway`;
    case 'auto_no_gpu':
      return `auto: ${on}: ${noGpuWords(gpu)}`;
    case 'auto_gpu_refused':
      return `auto: ${on}, because the GPU cannot take this run${d.text ? ` (${d.text})` : ''}`;
    case 'device_lost':
      return `${on}: the GPU failed mid-run and the run went on on the CPU from the last state read back${d.text ? ` (${d.text})` : ''}`;
    case 'recorded':
      return slot.kind === 'replay' ? `${on}: the backend the record ran on` : `${on}: run 1's backend (backend pinned)`;
    default:
      return `${on}${d.text ? `: ${d.text}` : ''}`;
  }
}

function noGpuWords(gpu) {
  switch (gpu.why) {
    case 'insecure':
      return 'no WebGPU in a page opened over plain http from another machine';
    case 'no-api':
      return 'this browser has no WebGPU';
    case 'no-adapter':
      return 'the browser gave no GPU adapter';
    default:
      return 'no GPU adapter for this run';
  }
}

export class Cards {
  // root: the cards' container; heatRoot: the heat maps' container;
  // onFix(fix): a fix button was pressed.
  constructor(root, heatRoot, { onFix }) {
    this.root = root;
    this.heatRoot = heatRoot;
    this.onFix = onFix;
    this.urls = new Set(); // blob: URLs to revoke on the next build
    this.cards = new Map(); // slot -> {root, fields, link, fixes}
    this.heat = new Map(); // slot -> {canvas, note, drawn}
  }

  build(runset, gpu) {
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls.clear();
    this.cards.clear();
    this.heat.clear();
    this.root.replaceChildren();
    this.heatRoot.replaceChildren();
    const { slots } = runset;
    const ref = slots[0]?.label ?? 'run 1';
    for (const s of slots) {
      const title = s.kind === 'record' ? `Record (${runset.plan?.name})` : s.kind === 'replay' ? 'Replay' : `Run ${s.index + 1}`;
      const dl = el('dl');
      const row = (name, key) => {
        const dd = el('dd', { dataset: { field: key } });
        dl.append(el('dt', { text: name }), dd);
        return dd;
      };
      const fields = {
        progress: row('Progress', 'progress'),
        backend: row('Backend', 'backend'),
        level: row('Arithmetic level', 'level'),
        origin: row('What it is', 'origin'),
        inert: s.kind === 'run' ? row('Free but could not act here', 'inert') : null,
        vs: s.index === 0 ? null : row(`Against ${ref}`, 'vs-reference'),
        val: row('Validation error', 'val-error'),
        hash: row('Weights hash', 'weights-hash'),
      };
      const link = el('a', { class: 'manifest-link', hidden: true, text: 'Manifest (JSON)', download: `${s.label.replace(' ', '-')}.json` });
      const card = el('article', { class: 'run-card', dataset: { run: String(s.index + 1), kind: s.kind } }, el('h3', { text: title }), dl, link);
      card.style.setProperty('--run-color', COLORS[s.index % COLORS.length]);
      this.cards.set(s, { root: card, fields, link, inertKey: null });
      this.root.append(card);
      // Heat maps of the runs that train here (a record has no weights to draw).
      if (runset.plan?.grid && s.kind !== 'record') {
        const canvas = el('canvas', { class: 'heatmap', role: 'img', ariaLabel: `Decision boundary of ${s.label}: the predicted class over the input square, with the training points` });
        const note = el('figcaption', { text: s.label });
        const fig = el('figure', { class: 'heat', dataset: { run: String(s.index + 1) } }, canvas, note);
        fig.style.setProperty('--run-color', COLORS[s.index % COLORS.length]);
        this.heat.set(s, { canvas, note, drawn: null, points: 0, draws: 0, live: 0 });
        this.heatRoot.append(fig);
      }
    }
    this.heatRoot.closest('figure').hidden = this.heat.size === 0;
  }

  render(runset, gpu) {
    const ref = runset.slots[0];
    for (const s of runset.slots) {
      const card = this.cards.get(s);
      if (!card) continue;
      const f = card.fields;
      f.progress.textContent = s.error
        ? `failed: ${capMessage(s.error)}`
        : s.kind === 'record'
          ? s.pending
            ? runset.slots.some((x) => x.error)
              ? 'refused by the engine: nothing of it is shown'
              : 'waiting for the engine to accept the file'
            : `${s.steps} steps, as recorded`
          : s.done
            ? `done, ${s.steps} steps`
            : s.total
              ? `step ${s.steps} / ${s.total}`
              : s.stage
                ? `starting: ${s.stage}…`
                : 'waiting for run 1\'s manifest';
      if (s.kind === 'record') {
        f.backend.textContent = s.backend === 'gpu' ? 'the GPU, as recorded' : s.backend ? 'the CPU, as recorded' : '';
      } else if (s.decision) {
        const threads =
          s.workers && s.backend === 'cpu'
            ? `; ${s.workers.threads} threads (${
                s.workers.shared
                  ? 'WebAssembly threads: Web Workers sharing the engine\'s memory'
                  : `the run's own and ${s.workers.size} Web Worker${s.workers.size === 1 ? '' : 's'}`
              }) compute the ${s.workers.chunks} chunks of every batch, their partial sums combined ${s.arrivalOrder ? 'in order of arrival (cpu_threads free)' : 'in chunk order (cpu_threads pinned)'}`
            : '';
        f.backend.textContent = `${decisionText(s, gpu)}${threads}`;
        f.backend.dataset.kind = s.decision.kind;
        f.backend.dataset.backend = s.backend;
      }
      renderLevel(f.level, s);
      f.origin.textContent = originText(s, runset);
      if (f.inert) this.renderInert(card, s, runset);
      if (f.vs) {
        if (s.firstDiv != null) f.vs.textContent = `diverged: the bits part at step ${s.firstDiv}`;
        else if (ref.pending || !s.chain.length) f.vs.textContent = '';
        else f.vs.textContent = s.done && ref.done ? 'identical at every step' : `identical so far (${Math.min(s.chain.length, ref.chain.length)} steps)`;
      }
      const last = s.finalVal();
      f.val.textContent = last ? `${percent(last.valError)} at step ${last.step}` : '';
      f.hash.textContent = s.done && s.manifest && !s.pending ? JSON.parse(s.manifest).weights_hash : '';
      if (s.done && s.manifest && !s.pending && card.link.hidden) {
        const url = URL.createObjectURL(new Blob([s.manifest], { type: 'application/json' }));
        this.urls.add(url);
        card.link.href = url;
        card.link.hidden = false;
      }
      const heat = this.heat.get(s);
      if (heat && s.grid && heat.drawn !== s.grid) {
        heat.points = drawHeatmap(heat.canvas, s.grid, s.points);
        heat.drawn = s.grid;
        heat.draws += 1;
        if (!s.done) heat.live += 1;
        Object.assign(heat.canvas.dataset, { points: String(heat.points), draws: String(heat.draws), drawsLive: String(heat.live) });
        heat.note.textContent = `${s.label}, step ${s.steps}${heat.points ? ` · ${heat.points} training points` : ''}`;
      }
    }
  }

  // The free sources that could not act in this run: the engine's list for
  // the run where it gives one, else what was found before the start.
  renderInert(card, s, runset) {
    const plan = runset.plan;
    const mine = s.index === 0 ? plan.free.filter((x) => !RECORDED_SOURCES.includes(x)) : plan.free;
    const inert = Array.isArray(s.facts?.inert) ? s.facts.inert : (plan.effects ?? []).filter((e) => !e.acts && mine.includes(e.source));
    const key = JSON.stringify(inert.map((e) => e.source));
    if (key === card.inertKey) return;
    card.inertKey = key;
    const dd = card.fields.inert;
    dd.replaceChildren();
    if (!inert.length) {
      dd.textContent = plan.free.length ? 'none: every free source can act here' : 'none free';
      return;
    }
    const ul = el('ul', { class: 'inert' });
    for (const e of inert) {
      const li = el('li', { dataset: { source: e.source } }, el('code', { text: e.source }), `: ${e.why}`);
      if (e.fix) li.append(' ', this.fixButton(e.source, e.fix));
      ul.append(li);
    }
    dd.append(ul);
  }

  fixButton(source, fix) {
    const b = el('button', { type: 'button', class: 'fix', text: fixText(fix), dataset: { fix: source } });
    b.addEventListener('click', () => this.onFix(fix, source));
    return b;
  }

  heatPoints() {
    return [...this.heat.values()].map((h) => h.points);
  }
}

// The level granted, and why (the engine's level_reason), in the run card.
function renderLevel(dd, s) {
  const key = `${s.level}|${s.levelReason}`;
  if (!s.level || dd.dataset.key === key) return;
  dd.dataset.key = key;
  dd.dataset.level = s.level;
  dd.replaceChildren(el('strong', { class: 'level', text: s.level }), s.levelReason ? el('span', { class: 'level-reason', text: `: ${capMessage(s.levelReason, 300)}` }) : '');
}

// The levels of a set of runs, in one sentence for the verdict.
export function levelsText(slots) {
  const levels = slots.map((s) => s.level).filter(Boolean);
  if (!levels.length) return '';
  const where = (s) => (s.backend === 'gpu' ? 'WebGPU' : s.backend === 'cpu' ? 'the CPU' : '');
  const same = levels.length === slots.length && levels.every((l) => l === levels[0]);
  const list = slots.map((s) => `${s.label} ${s.level ?? '?'}${where(s) ? ` on ${where(s)}` : ''}`).join(', ');
  const meaning = {
    exact: 'exact: the same bits on every stack that passes the start-up probe (CPU, WebAssembly, WebGPU)',
    'run-to-run': 'run-to-run: the same bits on the same stack, every time',
    none: 'none: a source is free, so no promise of the same bits',
  };
  return `Arithmetic level: ${list}.${same && meaning[levels[0]] ? ` ${meaning[levels[0]]}.` : ''}`;
}

function originText(s, runset) {
  if (s.kind === 'record') return 'the imported manifest, as recorded';
  if (s.kind === 'replay') return 'a re-run of the record, every source pinned';
  const { free } = runset.plan;
  if (s.index === 0) {
    const own = free.filter((x) => !RECORDED_SOURCES.includes(x));
    return `trained from the settings${own.length ? `; free: ${own.join(', ')}` : ', every source pinned'}${own.length < free.length ? ' (the others vary in the re-runs)' : ''}`;
  }
  return `a re-run of run 1's manifest${free.length ? `; free: ${free.join(', ')}` : ', every source pinned'}`;
}

export class Verdict {
  constructor({ verdict, firstStep, causes, levels, effects }, { explanations, onFix }) {
    this.levelsEl = levels;
    this.verdictEl = verdict;
    this.firstEl = firstStep;
    this.causesEl = causes;
    this.effectsEl = effects;
    this.explanations = explanations;
    this.onFix = onFix;
  }

  clear() {
    this.verdictEl.textContent = '';
    this.verdictEl.className = '';
    this.firstEl.textContent = '';
    this.causesEl.textContent = '';
    this.levelsEl.textContent = '';
    delete this.levelsEl.dataset.levels;
    this.effectsEl.replaceChildren();
    this.effectsEl.hidden = true;
  }

  marker(step) {
    this.firstEl.textContent = step == null ? '' : String(step);
  }

  // While the runs train: what each free source can do here, said at once.
  expect(effects) {
    this.showEffects(effects, false);
  }

  show(outcome, replay) {
    this.verdictEl.textContent = outcome.verdict;
    this.verdictEl.className = outcome.verdict;
    this.marker(outcome.first);
    const { causes } = outcome;
    this.causesEl.textContent = causes.length
      ? `Causes named by the diff: ${causes.map((c) => `${c} (${this.explanations[c] ?? ''})`).join('; ')}.`
      : outcome.verdict === 'identical'
        ? replay
          ? 'The replay has the record\'s hash after every step: the same bits.'
          : `Every run has the same hash after every step: the same bits${outcome.effects.length ? ', with the free sources below' : ''}.`
        : '';
    this.levelsEl.textContent = levelsText(outcome.slots ?? []);
    this.levelsEl.dataset.levels = (outcome.slots ?? []).map((s) => s.level ?? '').join(',');
    this.showEffects(outcome.effects, true);
  }

  // One line per free source: could it act here, and did it part the runs.
  showEffects(effects, ended) {
    this.effectsEl.replaceChildren();
    this.effectsEl.hidden = effects.length === 0;
    for (const e of effects) {
      let text;
      if (!e.acts) text = `could not act here: ${e.why}`;
      else if (!ended) text = 'can act here';
      else if (e.parted) text = 'acted: the diff names it as a cause of the parting';
      else text = 'could act here, but these runs did not part on it';
      const li = el('li', { dataset: { source: e.source, acts: String(e.acts), parted: ended ? String(Boolean(e.parted)) : '' } }, el('code', { text: e.source }), ` free: ${text}`);
      if (!e.acts && e.fix) {
        const b = el('button', { type: 'button', class: 'fix', text: fixText(e.fix), dataset: { fix: e.source } });
        b.addEventListener('click', () => this.onFix(e.fix, e.source));
        li.append(' ', b);
      }
      this.effectsEl.append(li);
    }
  }
}

