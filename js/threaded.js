// reprolab with WebAssembly threads (the `wasm-threads` build,
// www/pkg-threads/: scripts/build-threads.sh): the same API as index.js,
// over an engine whose CPU runs with threads > 1 compute their chunks and
// their update on a pool of Web Workers that share its memory, rather than
// on js/threads.js's Web Workers, each with a memory of its own, which copy
// the weights and the gradients every step. The bits are the same: the
// same kernels, the same order of every sum.
//
// Where it can run: in a Web Worker (a thread waiting for the pool blocks,
// which browsers allow only off the main thread) of a cross-origin isolated
// page (COOP/COEP headers, for SharedArrayBuffer). `usable()` says whether
// this context is one; the page's run workers use this module when it is,
// and index.js otherwise. Not in the npm package (yet): it ships index.js.
//
//   import { usable, init, createRun } from './threaded.js';
//   if (usable()) { await init({ threads: 4 }); const run = await createRun({ threads: '4', chunks: '8' }); }

import * as glue from '../www/pkg-threads/reprolab.js';
import { createApi } from './core.js';

const GLUE = '../www/pkg-threads/reprolab.js';
const WASM = new URL('../www/pkg-threads/reprolab_bg.wasm', import.meta.url);

/** True where this build can run: a Web Worker of a cross-origin isolated page. */
export function usable() {
  return (
    globalThis.crossOriginIsolated === true &&
    typeof SharedArrayBuffer === 'function' &&
    typeof globalThis.WorkerGlobalScope === 'function' &&
    globalThis instanceof globalThis.WorkerGlobalScope
  );
}

// Web Workers of the pool, fixed by the first init: the threads asked for,
// or the machine's logical processors where there are more (a run with
// more threads than the pool has still runs, its tasks taking turns).
let poolSize = 0;

async function start(g, wasm) {
  if (!usable()) {
    throw new Error('WebAssembly threads need a Web Worker of a cross-origin isolated page (COOP/COEP headers)');
  }
  await g.default({ module_or_path: wasm ?? WASM });
  await g.initThreadPool(poolSize);
  return g;
}

const api = createApi({
  async load(wasm) {
    return { glue: await start(glue, wasm), module: null };
  },
  // A fresh instance after a crash: a second copy of the glue, with a memory
  // and a pool of its own (the old pool's workers are left waiting).
  async reload(old, n) {
    const again = await import(/* @vite-ignore */ /* webpackIgnore: true */ `${new URL(GLUE, import.meta.url).href}?instance=${n}`);
    return start(again, null);
  },
});

/**
 * Loads the engine and starts its pool of `threads` Web Workers (sharing
 * its memory); `wasm` as index.js's init takes it.
 */
export async function init({ threads = 2, wasm } = {}) {
  const cores = Number(globalThis.navigator?.hardwareConcurrency) || 2;
  poolSize ||= Math.max(1, Math.min(64, Math.max(Number(threads) || 1, cores)));
  await api.init({ wasm });
}

export const { createRun, resumeRun, rerun, replay, replayPlan, diff, defaultConfig, configHelp, sources, engineVersion, Run } = api;
