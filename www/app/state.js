// The page's whole state in the URL's fragment, so that a link reproduces a
// view: every setting, the free sources, the number of runs and the backend.
//
//   #dataset=digits&hidden=128&...&free=shuffle,init&runs=3&backend=cpu[&autostart=1]
//
// autostart=1 (in the page's "Copy link to this view") starts the runs on load.
// Free seeded sources draw fresh seeds on every start (that is what free
// means); the master seed is the `seed` setting.
//
// Nothing is corrected silently: a value the page cannot take is replaced by
// the nearest it can, and the returned `notes` say so (shown on the page).
// Settings are kept as written; the engine refuses what it cannot take,
// naming the setting.

import { cap, listText } from './format.js';

export const BACKENDS = ['auto', 'gpu', 'cpu'];
export const MIN_RUNS = 2;
export const MAX_RUNS = 4;
const PAGE_KEYS = ['free', 'runs', 'backend', 'autostart'];

// {settings, free, runs, backend, autostart, notes} from a fragment; missing
// keys come from `defaults`; `sources` are the engine's source names.
export function parseState(hash, defaults, sources) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const notes = [];
  const settings = { ...defaults };
  for (const key of Object.keys(defaults)) if (params.has(key)) settings[key] = params.get(key);

  const unknownKeys = [...new Set([...params.keys()])].filter((k) => !(k in defaults) && !PAGE_KEYS.includes(k));
  if (unknownKeys.length) {
    notes.push(`ignored ${unknownKeys.length === 1 ? 'a key' : `${unknownKeys.length} keys`} this page does not know: ${listText(unknownKeys.slice(0, 5).map((k) => cap(k, 24)))}${unknownKeys.length > 5 ? ', …' : ''}`);
  }

  const named = (params.get('free') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const free = [...new Set(named.filter((s) => sources.includes(s)))];
  const unknown = named.filter((s) => !sources.includes(s));
  if (unknown.length) {
    notes.push(`free: left out ${unknown.length === 1 ? 'a source' : `${unknown.length} sources`} the engine does not have (${listText(unknown.slice(0, 4).map((s) => cap(s, 24)))}${unknown.length > 4 ? ', …' : ''}); its sources are ${sources.join(', ')}`);
  }

  let runs = MIN_RUNS;
  if (params.has('runs')) {
    const raw = params.get('runs');
    const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
    if (Number.isNaN(n)) notes.push(`runs=${cap(raw, 24)} is not a whole number: ${MIN_RUNS} runs`);
    else {
      runs = Math.min(MAX_RUNS, Math.max(MIN_RUNS, n));
      if (runs !== n) notes.push(`runs=${cap(raw, 24)}: the page trains ${MIN_RUNS} to ${MAX_RUNS} runs side by side, so ${runs}`);
    }
  }

  let backend = 'auto';
  if (params.has('backend')) {
    const raw = params.get('backend');
    if (BACKENDS.includes(raw)) backend = raw;
    else notes.push(`backend=${cap(raw, 24)} is not a backend (${BACKENDS.join(', ')}): auto`);
  }
  return { settings, free, runs, backend, autostart: params.get('autostart') === '1', notes };
}

export function formatState({ settings, free, runs, backend }, autostart = false) {
  const params = new URLSearchParams(settings);
  params.set('free', free.join(','));
  params.set('runs', String(runs));
  params.set('backend', backend);
  if (autostart) params.set('autostart', '1');
  return `#${params}`;
}
