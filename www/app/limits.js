// What a browser tab can hold, checked before any run is made, for engines
// that allocate before they check (engine.js checkSettings: newer engines
// refuse on their own, with their own arithmetic, when the page first reads
// the settings). Limits from engineInfo().limits where stated, else
// fallback.js's conservative ones, so that a network or batch too big is
// refused with the limit named instead of allocating until the tab dies.

const fmt = (n) => Number(n).toLocaleString('en-US');

// null, or {field, message}: the first limit the settings go past.
export function checkLimits(settings, info) {
  const limits = info.limits ?? {};
  const whose = info.fromEngine ? 'the engine\'s limit' : 'the page\'s limit';
  const over = (field, what, limit, key) => ({
    field,
    message: `${field}: ${what}, more than a browser tab can hold here: at most ${fmt(limit)} (${whose} ${key})`,
  });
  const hiddenText = String(settings.hidden ?? '').trim();
  const widths = hiddenText === '' ? [] : hiddenText.split(',').map((w) => Number(w.trim()));
  if (widths.some((w) => !Number.isInteger(w) || w < 1)) return null; // the engine names what is wrong
  if (limits.max_layers != null && widths.length > limits.max_layers) {
    return over('hidden', `${fmt(widths.length)} hidden layers`, limits.max_layers, 'max_layers');
  }
  const widest = Math.max(0, ...widths);
  if (limits.max_width != null && widest > limits.max_width) return over('hidden', `a layer of ${fmt(widest)} units`, limits.max_width, 'max_width');
  const [name] = String(settings.dataset ?? '').split('@');
  const ds = info.datasets.find((d) => d.name === name);
  if (ds && limits.max_params != null) {
    const dims = [ds.dim, ...widths, ds.classes];
    let params = 0;
    for (let i = 1; i < dims.length; i++) params += dims[i - 1] * dims[i] + dims[i];
    if (params > limits.max_params) return over('hidden', `${hiddenText} gives a network of ${fmt(params)} weights`, limits.max_params, 'max_params');
  }
  const batch = Number(String(settings.batch_size ?? '').trim());
  if (Number.isInteger(batch)) {
    if (limits.max_batch != null && batch > limits.max_batch) return over('batch_size', `a batch of ${fmt(batch)}`, limits.max_batch, 'max_batch');
    const widestAll = Math.max(widest, ds?.dim ?? 0);
    if (limits.max_batch_x_width != null && batch * widestAll > limits.max_batch_x_width) {
      return over('batch_size', `a batch of ${fmt(batch)} by the widest layer (${fmt(widestAll)}) is ${fmt(batch * widestAll)} values`, limits.max_batch_x_width, 'max_batch_x_width');
    }
  }
  const steps = Number(String(settings.steps ?? '').trim());
  if (Number.isInteger(steps) && limits.max_steps != null && steps > limits.max_steps) {
    return over('steps', `${fmt(steps)} steps`, limits.max_steps, 'max_steps');
  }
  return null;
}
