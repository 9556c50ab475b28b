// Text helpers shared by the page's modules: what is echoed back to the
// reader is capped (a value pasted into the URL can be any length), and
// numbers are written the same way everywhere.

// A value shown back to the reader: at most `max` characters, the rest
// counted ("12345…890 (200000 characters)").
export function cap(value, max = 48) {
  const text = String(value);
  if (text.length <= max) return text;
  const head = Math.max(1, max - 22);
  return `${text.slice(0, head)}…${text.slice(-6)} (${text.length} characters)`;
}

// A message from the engine or the page: every unbroken run of more than
// twice `echo` characters capped to `echo` (older engines quote the value
// they refuse whole; newer ones cap it themselves at
// engineInfo().limits.max_echo, which callers that know it pass as `echo`,
// quotes and an ellipsis around it), and the whole at most `max` characters.
export function capMessage(message, max = 400, echo = 80) {
  const text = String(message).replace(new RegExp(`[^\\s,;()[\\]{}]{${2 * echo + 1},}`, 'g'), (run) => cap(run, echo));
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function fmtNumber(v) {
  if (v == null || !Number.isFinite(v)) return '';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 0.01 && a < 1e4) return String(Number(v.toPrecision(3)));
  return v.toExponential(1).replace('e+', 'e').replace(/^(-?\d)\.0e/, '$1e');
}

export const percent = (fraction) => `${(fraction * 100).toFixed(2)} %`;

export const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export const listText = (items) =>
  items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;

// Settings as text (the engine's defaults come typed: hidden as an array).
export const toText = (v) => (Array.isArray(v) ? v.join(',') : String(v));

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('aria') || k === 'role' || k === 'for' || k === 'scope') node.setAttribute(k === 'for' ? 'for' : k.replace(/^aria([A-Z])/, (_, c) => `aria-${c.toLowerCase()}`), v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c != null && c !== false));
  return node;
}
