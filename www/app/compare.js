// Compare and export: the engine's diff of any two finished runs, the
// curves as CSV, the charts as PNG, and reading a manifest to import.

import * as engine from './engine.js';
import { capMessage, el, plural } from './format.js';

export class Compare {
  constructor({ a, b, button, out }) {
    this.a = a;
    this.b = b;
    this.button = button;
    this.out = out;
    this.slots = [];
    button.addEventListener('click', () => this.diffSelected());
  }

  clear() {
    this.slots = [];
    this.inert = [];
    this.out.replaceChildren();
    this.a.replaceChildren();
    this.b.replaceChildren();
    this.button.disabled = true;
  }

  // slots: the runs; inert: free sources that could not act in them (the
  // diff names every free source; these are said apart).
  fill(slots, inert = []) {
    this.slots = slots;
    this.inert = inert;
    const finished = slots.filter((s) => s.manifest && !s.pending);
    for (const sel of [this.a, this.b]) sel.replaceChildren(...finished.map((s) => new Option(s.label, String(s.index))));
    this.a.value = '0';
    this.b.value = finished.length > 1 ? '1' : '0';
    this.button.disabled = finished.length < 2;
  }

  async diffSelected() {
    const a = this.slots[Number(this.a.value)];
    const b = this.slots[Number(this.b.value)];
    try {
      this.show(a, b, await engine.diff(a.manifest, b.manifest));
    } catch (e) {
      this.show(a, b, { error: e.message });
    }
  }

  show(a, b, d) {
    if (d.error) {
      this.out.replaceChildren(el('p', { text: `Could not compare ${a.label} and ${b.label}: ${capMessage(d.error)}` }));
      return;
    }
    const causes = d.causes.filter((c) => !this.inert.includes(c));
    const inert = d.causes.filter((c) => this.inert.includes(c));
    const out = [
      el('p', {
        text: d.identical
          ? `${a.label} and ${b.label}: identical manifests, the same bits at every step.`
          : `${a.label} and ${b.label}: ${plural(d.differences.length, 'difference')}` +
            `${d.firstDivergentStep ? `; the hash chains part at step ${d.firstDivergentStep}` : '; the hash chains agree'}` +
            `${causes.length ? `. Causes: ${causes.join(', ')}` : ''}` +
            `${inert.length ? `${causes.length ? ';' : '.'} free but unable to act here, so no cause: ${inert.join(', ')}` : ''}.`,
      }),
    ];
    if (d.differences.length) {
      const table = el('table');
      const head = table.createTHead().insertRow();
      for (const t of ['field', a.label, b.label]) head.append(el('th', { scope: 'col', text: t }));
      const body = table.createTBody();
      for (const diff of d.differences) {
        const r = body.insertRow();
        for (const v of [diff.field, diff.a, diff.b]) r.insertCell().textContent = capMessage(typeof v === 'string' ? v : JSON.stringify(v), 200);
      }
      out.push(el('div', { class: 'table-wrap' }, table));
    }
    this.out.replaceChildren(...out);
  }
}

export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function curvesCsv(slots) {
  const lines = ['run,step,train_loss,val_error,distance_to_reference,chain_link'];
  for (const s of slots) {
    const val = new Map(s.val.map((p) => [p.step, p.valError]));
    for (let i = 0; i < s.steps; i++) {
      const step = i + 1;
      const d = s.dist.get(step);
      lines.push([s.label, step, s.loss[i], val.get(step) ?? '', d === undefined || Number.isNaN(d) ? '' : d, s.chain[i] ?? ''].join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}

// Reads a chosen file as a manifest: {text, manifest} or {error} (a first
// look only: whether the engine accepts it is the replay's first answer).
export async function readManifest(file) {
  let text;
  try {
    text = await file.text();
  } catch (e) {
    return { error: `Could not read ${file.name}: ${e.message}` };
  }
  let m;
  try {
    m = JSON.parse(text);
  } catch (e) {
    return { error: `${file.name} is not JSON (${capMessage(e.message, 120)}): choose a manifest written by reprolab (run.json)` };
  }
  if (m?.manifest_version === undefined || !Array.isArray(m.hash_chain)) {
    return { error: `${file.name} is not a reprolab manifest (no manifest_version or hash_chain)` };
  }
  return { text, manifest: m };
}
