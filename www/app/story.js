// The guided story: the new data scientist who reruns a colleague's baseline
// and gets other numbers. Each chapter sets the page's controls (visible in
// the form and the URL), trains two runs and says what changed, with the
// numbers it speaks of. Run 1 is always the colleague's recorded baseline;
// run 2 is the re-run of its manifest. Every chapter's re-run is kept on the
// story's own chart, against the baseline, to compare.
//
// Anything the reader does meanwhile (Start, Step, a changed setting, an
// import) pauses the story: that chapter's result is not recorded, and
// "Resume the story" trains it again.
//
// Chapters that need an arithmetic level the engine may not have yet name
// it in `needsLevel`; chapters() leaves them out until engineInfo().levels
// lists it. A chapter may train in `parts` (each part's settings over the
// chapter's, one pair of runs each, its result given every part's outcome),
// ask for run 1's `backend` and the re-run's `rerunBackend`, and need a GPU
// (`needsGpu`): without a WebGPU adapter it is not run, and says why and
// what it would need, rather than show a result it did not measure.

import { lineChart } from './charts.js';
import { el, percent } from './format.js';

const head = (slot) => slot?.chain.at(-1) ?? '–';
const on = (slot) => (slot?.backend === 'gpu' ? 'WebGPU' : 'the CPU');

// The chapter the exact level was made for (issue 14): the same run on
// WebGPU and on the CPU engine, first at run-to-run (WGSL leaves exp, log
// and tanh to each implementation, so the two part), then at exact (the
// project's own pinned functions and fenced arithmetic on both sides).
const GPU_CPU = {
  key: 'gpu-cpu',
  needsLevel: 'exact',
  needsGpu: true,
  title: '6. The GPU and the CPU',
  text:
    'Last, the colleague had trained on a GPU and the new data scientist has only a CPU. Run 1 trains the baseline ' +
    '(100 steps) on WebGPU; run 2 re-runs its manifest on the CPU engine, the same seed and every source pinned. ' +
    'First at the default level, run-to-run, then at level exact.',
  settings: { steps: '100' },
  backend: 'gpu',
  rerunBackend: 'cpu',
  free: [],
  parts: [
    { label: 'run-to-run', settings: { level: 'run-to-run' } },
    { label: 'exact', settings: { level: 'exact' } },
  ],
  // Why the chapter cannot run here, or null.
  unavailable: (gpu) =>
    gpu?.available
      ? null
      : `Not run here: this browser gave the page no WebGPU adapter (${
          { insecure: 'the page is not a secure context: browsers offer WebGPU only over https or on localhost', 'no-api': 'it has no WebGPU, or it is switched off' }[gpu?.why] ??
          'it has WebGPU, but asked for an adapter it gave none'
        }), ` +
        'so there is no GPU run to compare with the CPU, and no result is shown. This chapter needs a browser with WebGPU ' +
        'and an adapter (a software one such as SwiftShader or lavapipe will do) that passes the engine\'s start-up probe for exact; ' +
        'open the page in such a browser (Chromium or Firefox with WebGPU on, over https or http://localhost) to see it.',
  result: ([rtr, exact]) => {
    const [g1, c1] = rtr.slots;
    const [g2, c2] = exact.slots;
    const where = `run 1 on ${on(g1)}, run 2 on ${on(c1)}`;
    const first =
      rtr.first == null
        ? `At run-to-run the two runs agree at every step (${where}): this GPU's exp, log and tanh happen to round as the CPU's.`
        : `At run-to-run (${where}) the bits part at step ${rtr.first}: WGSL leaves exp, log and tanh to each GPU, and this one rounds them otherwise than the CPU engine. Chain heads after ${c1.steps} steps: ${head(g1)} and ${head(c1)}.`;
    let second;
    if (g2.level !== 'exact') {
      second =
        ` At exact: this adapter did not pass the start-up probe, so the GPU run was granted ${g2.level} (${g2.levelReason || 'no reason given'}); ` +
        `the runs ${exact.first == null ? 'agree' : `part at step ${exact.first}`}. exact needs an adapter that passes the probe.`;
    } else if (exact.verdict === 'identical') {
      second =
        ` At exact (${on(g2)} and ${on(c2)}), identical: every one of the ${c2.steps} steps has the same weight hash, and the chain heads are the same, ${head(g2)} = ${head(c2)}.` +
        ` Final validation error: run 1 ${val(g2)}, run 2 ${val(c2)}.`;
    } else {
      second = ` At exact the runs part at step ${exact.first} (chain heads ${head(g2)} and ${head(c2)}): a defect of the exact level on this stack.`;
    }
    return first + second;
  },
};

const LATER_CHAPTERS = [GPU_CPU];

const parted = (o) => (o.first == null ? 'the runs agree at every step' : `the bits part at step ${o.first}`);
const causes = (o) => (o.causes.length ? ` The diff names the cause: ${o.causes.join(', ')}.` : '');
const valOf = (slot) => slot?.finalVal()?.valError ?? null;
const val = (slot) => (valOf(slot) == null ? 'no validation point' : percent(valOf(slot)));
// What a chapter's result needs of a run, kept after its slot is gone.
function snapshot(slot) {
  const val = [...slot.val];
  return {
    label: slot.label,
    backend: slot.backend,
    level: slot.level,
    levelReason: slot.levelReason ?? '',
    chain: [...slot.chain],
    steps: slot.steps,
    loss: slot.loss.slice(0, slot.steps),
    val,
    finalVal: () => val.at(-1) ?? null,
  };
}
const numbers = (o) => `Final validation error: run 1 ${val(o.slots[0])}, run 2 ${val(o.slots[1])}.`;

// The chapters, with the data sets and defaults the engine states.
export function chapters(info) {
  const defaults = Object.fromEntries(info.settings.map((s) => [s.key, s.default]));
  const grown = info.datasets.find((d) => d.versions.length > 1) ?? info.datasets[0];
  const old = `${grown.name}@${grown.versions[0]}`;
  const latest = `${grown.name}@${grown.latest_version}`;
  const lr = Number(defaults.learning_rate);
  const baselineLr = String(Number((lr * 0.4).toPrecision(2)));
  // The colleague's baseline: an older data version and a learning rate
  // given on the command line (an override), kept short so the story is quick.
  const baseline = { dataset: old, learning_rate: baselineLr, seed: '7', steps: '300', eval_every: '25' };
  const list = [
    {
      title: '1. The baseline',
      text:
        `A colleague trained this model last year: the data as it was then (${old}), learning rate ${baselineLr} passed on ` +
        'the command line, seed 7. Run 1 is that run; run 2 re-runs its manifest the same day, with every source pinned.',
      free: [],
      result: (o) => `${numbers(o)} Run 1's ${val(o.slots[0])} is the number the colleague reported. Verdict: ${o.verdict}; ${parted(o)}.`,
    },
    {
      title: '2. The data set grew',
      text:
        `A year on, the new data scientist reruns the script. The folder of images has grown, and "${grown.name}" now ` +
        `means ${latest}. Only data_drift is free: everything else is as recorded.`,
      free: ['data_drift'],
      result: (o) => `${numbers(o)} Verdict: ${o.verdict}; ${parted(o)}: another split, other batches from the first step.${causes(o)}`,
    },
    {
      title: '3. A hyper-parameter silently differed',
      text:
        `The data is pinned back to ${old}, but the script is run without the flags: the learning rate falls back to ` +
        `the code's default, ${defaults.learning_rate}, and nobody notices. Only hparam_drift is free.`,
      free: ['hparam_drift'],
      result: (o) => `${numbers(o)} Verdict: ${o.verdict}; ${parted(o)}: bigger steps from the first update on.${causes(o)}`,
    },
    {
      title: '4. Only randomness left free',
      text:
        'Data and flags are now exactly as recorded, but the script draws its random numbers fresh: the initial ' +
        'weights, the shuffling and the dropout masks come from new seeds, as most frameworks do by default.',
      free: info.sources.filter((s) => s.seeded).map((s) => s.name),
      result: (o) => {
        const a = valOf(o.slots[0]);
        const b = valOf(o.slots[1]);
        let gap = '';
        if (a != null && b != null) {
          const points = (Math.abs(a - b) * 100).toFixed(2);
          gap =
            points === '0.00'
              ? ' The same final error to two decimals, by chance: the weights themselves differ.'
              : ` They differ by ${points} percentage points: close, but not the same numbers.`;
        }
        return `${numbers(o)}${gap} Verdict: ${o.verdict}; ${parted(o)}.${causes(o)}`;
      },
    },
    {
      title: '5. Everything pinned',
      text:
        'Every source pinned to the record: the same data version, the same flags, the same seeds for every stream, ' +
        'the same engine and reduction order, the same backend.',
      free: [],
      result: (o) =>
        o.verdict === 'identical'
          ? `${numbers(o)} Verdict: identical. The curves coincide to the bit: every step has the same weight hash as the baseline.`
          : `${numbers(o)} Verdict: ${o.verdict}; ${parted(o)}.${causes(o)}`,
    },
    ...LATER_CHAPTERS.filter((c) => info.levels.includes(c.needsLevel)),
  ];
  return list.map((c) => ({ ...c, settings: { ...baseline, ...(c.settings ?? {}) } }));
}

export class Story {
  // ui: {section, steps, chart, table, button, now}; runChapter(chapter) trains
  // its runs and resolves to their outcome (or {superseded}, {error}).
  constructor(ui, { info, gpu, runChapter, onState }) {
    this.ui = ui;
    this.gpu = gpu;
    this.chapters = chapters(info);
    this.runChapter = runChapter;
    this.onState = onState;
    this.state = 'off'; // off, running, paused, done
    this.at = 0;
    this.items = [];
    this.kept = []; // {label, loss} of the baseline and every chapter's re-run
    this.rows = [];
    this.plot = null;
  }

  setState(state, chapter = this.at + 1) {
    this.state = state;
    if (state === 'off') delete document.body.dataset.story;
    else document.body.dataset.story = state === 'done' ? 'done' : String(chapter);
    document.body.dataset.storyState = state;
    this.ui.button.textContent = state === 'paused' ? 'Resume the story' : 'Tell the story';
    this.onState?.(state);
  }

  build() {
    this.ui.section.hidden = false;
    this.ui.steps.replaceChildren();
    this.items = this.chapters.map((ch) => {
      const result = el('p', { class: 'story-result' });
      const li = el('li', {}, el('h3', { text: ch.title }), el('p', { class: 'chapter-text', text: ch.text }), result);
      this.ui.steps.append(li);
      return { li, result };
    });
    this.kept = [];
    this.rows = [];
    this.drawKept();
  }

  // Starts the story (from its first chapter), or resumes a paused one.
  async tell() {
    if (this.state === 'running') return;
    if (this.state !== 'paused') {
      this.at = 0;
      this.build();
    }
    this.setState('running');
    while (this.at < this.chapters.length) {
      const i = this.at;
      const ch = this.chapters[i];
      this.items.forEach(({ li }, j) => li.classList.toggle('current', i === j));
      this.items[i].result.textContent = 'Running…';
      delete this.items[i].li.dataset.verdict;
      this.setState('running', i + 1);
      this.now(`Story, chapter ${i + 1} of ${this.chapters.length}: ${ch.title.replace(/^\d+\.\s*/, '')}. ${ch.text}`);
      const notHere = ch.needsGpu ? ch.unavailable(this.gpu) : null;
      if (notHere) {
        this.items[i].result.textContent = notHere;
        this.items[i].li.dataset.verdict = 'not-run';
        this.at += 1;
        continue;
      }
      const outcomes = [];
      for (const part of ch.parts ?? [null]) {
        if (part) this.items[i].result.textContent = `Running, at level ${part.label}…`;
        const outcome = await this.runChapter(part ? { ...ch, settings: { ...ch.settings, ...part.settings } } : ch);
        if (this.state !== 'running') return; // paused or stopped meanwhile: not this chapter's result
        if (outcome.superseded) return;
        if (outcome.error) {
          this.items[i].result.textContent = `Stopped: ${outcome.error}`;
          this.setState('paused', i + 1);
          this.now(`Story stopped at chapter ${i + 1}: ${outcome.error}`);
          return;
        }
        // The numbers this chapter speaks of, copied: the next part's runs replace these slots.
        outcomes.push({ ...outcome, slots: outcome.slots.map(snapshot), label: part?.label ?? null });
      }
      const { li, result } = this.items[i];
      result.textContent = ch.parts ? ch.result(outcomes) : ch.result(outcomes[0]);
      li.dataset.verdict = outcomes.at(-1).verdict;
      if (ch.parts) {
        // Per part: verdict, first divergent step, both chain heads, levels and backends.
        li.dataset.parts = JSON.stringify(
          outcomes.map((o) => ({
            label: o.label,
            verdict: o.verdict,
            first: o.first,
            heads: o.slots.map(head),
            levels: o.slots.map((s) => s.level),
            backends: o.slots.map((s) => s.backend),
          })),
        );
      }
      for (const o of outcomes) this.keep(i, ch, o);
      this.at += 1;
    }
    this.items.forEach(({ li }) => li.classList.remove('current'));
    this.setState('done');
    const last = this.rows.at(-1);
    const gpuCpu = last?.backends?.join() === 'gpu,cpu';
    this.now(
      `The story is told: in the last chapter ${last ? `(${last.chapter}) ` : ''}the two runs are ${last?.verdict ?? 'not compared'}` +
        `${last?.verdict === 'identical' ? `, every source pinned, to the bit${gpuCpu ? ', one on WebGPU and one on the CPU' : ''}` : ''}. ` +
        "Each chapter's numbers and re-run are kept in the story panel below the charts.",
    );
  }

  // The chapter in progress, in the status panel above the charts.
  now(text) {
    this.ui.now.hidden = !text;
    this.ui.now.textContent = text;
  }

  // The reader did something else: the chapter in progress is not recorded.
  interrupt(why) {
    if (this.state !== 'running') return;
    const item = this.items[this.at];
    item.result.textContent = `Paused: ${why}, so this chapter's runs were stopped and not recorded. "Resume the story" trains this chapter again.`;
    item.li.dataset.verdict = 'paused';
    this.setState('paused');
    this.now(`Story paused at chapter ${this.at + 1} (${why}). "Resume the story" trains it again.`);
  }

  stop() {
    this.state = 'off';
    this.setState('off');
    this.now('');
    this.ui.section.hidden = true;
    this.plot?.destroy();
    this.plot = null;
  }

  keep(i, ch, outcome) {
    const [run1, run2] = outcome.slots;
    const part = outcome.label ? `, ${outcome.label}` : '';
    if (i === 0) this.kept.push({ label: 'baseline (ch. 1, run 1)', loss: run1.loss.slice(0, run1.steps) });
    // A chapter that trains on two backends keeps both runs' curves.
    if (ch.rerunBackend) this.kept.push({ label: `ch. ${i + 1} run 1 on ${on(run1)}${part}`, loss: run1.loss.slice(0, run1.steps) });
    this.kept.push({ label: `ch. ${i + 1} re-run${ch.rerunBackend ? ` on ${on(run2)}` : ''}${part}`, loss: run2.loss.slice(0, run2.steps) });
    this.rows.push({
      chapter: `${ch.title}${outcome.label ? ` (${outcome.label})` : ''}`,
      verdict: outcome.verdict,
      first: outcome.first,
      a: valOf(run1),
      b: valOf(run2),
      heads: head(run1) === head(run2) ? 'the same' : 'differ',
      backends: [run1.backend, run2.backend],
    });
    this.drawKept();
  }

  // The story's chart (the baseline and every chapter's re-run) and table.
  drawKept() {
    this.plot?.destroy();
    this.plot = null;
    this.ui.chart.replaceChildren();
    const figure = this.ui.chart.closest('figure');
    figure.hidden = this.kept.length === 0;
    if (!this.kept.length) return;
    const n = Math.max(...this.kept.map((k) => k.loss.length));
    const xs = Array.from({ length: n }, (_, i) => i + 1);
    this.plot = lineChart(this.ui.chart, { labels: this.kept.map((k) => k.label), yLabel: 'training loss', log: true });
    this.plot.setData([xs, ...this.kept.map((k) => xs.map((_, i) => (i < k.loss.length && k.loss[i] > 0 ? k.loss[i] : null)))]);
    const table = el('table', {}, el('caption', { text: 'Each chapter: verdict, first divergent step, final validation error of both runs, their chain heads' }));
    const top = table.createTHead().insertRow();
    for (const t of ['chapter', 'verdict', 'first divergent step', 'run 1', 'run 2', 'chain heads']) top.append(el('th', { scope: 'col', text: t }));
    const body = table.createTBody();
    for (const r of this.rows) {
      const tr = body.insertRow();
      tr.append(el('th', { scope: 'row', text: r.chapter }));
      for (const v of [r.verdict, r.first ?? '–', r.a == null ? '–' : percent(r.a), r.b == null ? '–' : percent(r.b), r.heads]) tr.insertCell().textContent = String(v);
    }
    this.ui.table.replaceChildren(table);
  }
}
