// Sharing the thread with the page: the engine's CPU steps run synchronously
// in WebAssembly, so the wrapper cuts every piece of work into slices of
// about SLICE_MS and, whenever YIELD_MS of work have gone by since it last
// let go, yields a *macrotask* before the next slice. Timers, input events,
// rendering and AbortSignal.timeout all get their turn in between.
//
// Not scheduler.yield(): Chromium runs its continuation ahead of timers (a
// 50 ms setInterval fired 0 times during a 5 s train()). Not a bare
// setTimeout(0) either: nested timers are clamped to 4 ms. A MessageChannel
// message is a task of its own with no clamp; one yield in TIMER_EVERY_MS
// goes through setTimeout(0), after every timer already due, so that no
// browser's task ordering can keep timers waiting. Node.js: setImmediate,
// which runs after the timers and I/O of the loop's turn.

export const SLICE_MS = 8;
const YIELD_MS = 8;
const TIMER_EVERY_MS = 40;

const now = () => performance.now();
let lastYield = now();
let lastTimerYield = now();

function viaMessage() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

const viaTimer = () => new Promise((resolve) => setTimeout(resolve, 0));

/** One macrotask: the event loop runs whatever is due (timers, input, rendering). */
export function macrotask() {
  if (typeof globalThis.setImmediate === 'function') return new Promise((resolve) => globalThis.setImmediate(resolve));
  const t = now();
  if (typeof MessageChannel === 'function' && t - lastTimerYield < TIMER_EVERY_MS) return viaMessage();
  lastTimerYield = t;
  return viaTimer();
}

/** Yields a macrotask when YIELD_MS of work have gone by since the last one (or always, with `force`). */
export async function breathe(force = false) {
  if (!force && now() - lastYield < YIELD_MS) return;
  await macrotask();
  lastYield = now();
}

/**
 * The next slice (or chunk) of steps for work aiming at `targetMs` each:
 * scaled towards it, at most doubling each time (one quick slice is weak
 * evidence).
 */
export function nextChunk(k, took, targetMs) {
  const scaled = took > 0 ? Math.floor((k * targetMs) / took) : 2 * k;
  return Math.max(1, Math.min(2 * k, scaled));
}

/**
 * `promise`, or a rejection with `onAbort()` as soon as `signal` aborts;
 * `late(value)` receives a value that arrives after the abort (to free it).
 * The abort listener is removed as soon as either happens, so nothing stays
 * reachable from a long-lived signal.
 */
export function abortable(promise, signal, onAbort, late) {
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    let settled = false;
    const abort = () => {
      if (settled) return;
      settled = true;
      reject(onAbort());
    };
    if (signal.aborted) abort();
    else signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        if (settled) late?.(value);
        else {
          settled = true;
          resolve(value);
        }
      },
      (e) => {
        signal.removeEventListener('abort', abort);
        if (!settled) {
          settled = true;
          reject(e);
        }
      },
    );
  });
}
