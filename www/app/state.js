// The page's whole state in the URL's fragment, so that a link reproduces a
// view: every setting, the free sources, the number of runs and the backend.
//
//   #dataset=digits&hidden=128&...&free=shuffle,init&runs=3&backend=cpu[&autostart=1]
//
// autostart=1 (in the page's "Copy link to this view") starts the runs on load.
// Free seeded sources draw fresh seeds on every start (that is what free
// means); the master seed is the `seed` setting.

export const SOURCES = ['init', 'shuffle', 'dropout', 'engine_version', 'gpu_reduction', 'cpu_threads', 'backend', 'data_drift', 'hparam_drift'];
export const BACKENDS = ['auto', 'gpu', 'cpu'];
export const MIN_RUNS = 2;
export const MAX_RUNS = 4;

// {settings, free, runs, backend} from a fragment; unknown keys are ignored,
// missing ones come from `defaults`.
export function parseState(hash, defaults) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const settings = { ...defaults };
  for (const key of Object.keys(defaults)) if (params.has(key)) settings[key] = params.get(key);
  const free = (params.get('free') ?? '').split(',').filter((s) => SOURCES.includes(s));
  const runs = Math.min(MAX_RUNS, Math.max(MIN_RUNS, Number.parseInt(params.get('runs') ?? '2', 10) || 2));
  const backend = BACKENDS.includes(params.get('backend')) ? params.get('backend') : 'auto';
  return { settings, free, runs, backend, autostart: params.get('autostart') === '1' };
}

export function formatState({ settings, free, runs, backend }, autostart = false) {
  const params = new URLSearchParams(settings);
  params.set('free', free.join(','));
  params.set('runs', String(runs));
  params.set('backend', backend);
  if (autostart) params.set('autostart', '1');
  return `#${params}`;
}
