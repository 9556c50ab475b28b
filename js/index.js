// reprolab for browsers and bundlers (Vite, webpack, esbuild, plain ES
// modules): the engine's WebAssembly is fetched from next to its glue
// (`new URL(..., import.meta.url)`, which bundlers follow), or from wherever
// init({ wasm }) says, and compiled once: the compiled module serves the
// engine, a fresh instance after a crash, and every CPU-thread Web Worker, so
// after `await init()` nothing is fetched again. The API itself is in
// core.js; the types in index.d.ts.
//
// In the repository this file imports the glue that `make build-web` writes
// to www/pkg/; `make package` ships it next to the glue in pkg/, and rewrites
// the glue's paths below to match (scripts/package.mjs).

import * as glue from '../www/pkg/reprolab.js';
import { createApi } from './core.js';

const GLUE = '../www/pkg/reprolab.js';
const WASM = new URL('../www/pkg/reprolab_bg.wasm', import.meta.url);

// A WebAssembly.Module from what init({ wasm }) accepts: a URL (or its
// text), a fetch Response (or a promise of one), bytes, or a module.
async function compile(source = WASM) {
  if (source instanceof WebAssembly.Module) return source;
  if (typeof source === 'string' || source instanceof URL) source = fetch(source);
  if (source instanceof Promise) source = await source;
  if (typeof Response === 'function' && source instanceof Response) {
    if (!source.ok) throw new Error(`HTTP ${source.status} ${source.statusText} for ${source.url}`);
    const type = source.headers.get('Content-Type') ?? '';
    if (typeof WebAssembly.compileStreaming === 'function' && type.split(';')[0].trim() === 'application/wasm') {
      return WebAssembly.compileStreaming(source);
    }
    return WebAssembly.compile(await source.arrayBuffer());
  }
  return WebAssembly.compile(source); // bytes
}

const api = createApi({
  async load(wasm) {
    const module = await compile(wasm);
    await glue.default({ module_or_path: module });
    return { glue, module };
  },
  async reload(old, n, module) {
    // Glue built with --experimental-reset-state-function (the package's)
    // starts a fresh instance of the same module in place.
    if (typeof old.__wbg_reset_state === 'function') {
      old.__wbg_reset_state();
      return old;
    }
    // Other glue: a second copy of the glue module, with an instance of its
    // own (plain ES modules only: a bundler has no separate file to import).
    const again = await import(/* @vite-ignore */ /* webpackIgnore: true */ `${new URL(GLUE, import.meta.url).href}?instance=${n}`);
    await again.default({ module_or_path: await compile(module) });
    return again;
  },
});

export const { init, createRun, resumeRun, rerun, replay, replayPlan, diff, defaultConfig, configHelp, sources, engineVersion, debugPanic, Run } = api;
export {
  ConfigError,
  EngineCrashError,
  EngineLoadError,
  RecordError,
  ReprolabError,
  RunBusyError,
  RunCancelledError,
  RunDisposedError,
} from './errors.js';
