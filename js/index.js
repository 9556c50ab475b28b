// reprolab for browsers and bundlers (Vite, webpack, esbuild, plain ES
// modules): the engine's WebAssembly is fetched from next to its glue
// (`new URL('reprolab_bg.wasm', import.meta.url)`, which bundlers follow), or
// from wherever init({ wasm }) says. The API itself is in core.js; the types
// in index.d.ts.
//
// In the repository this file imports the glue that `make build-web` writes
// to www/pkg/; `make package` ships it next to the glue in pkg/, and rewrites
// the glue's paths below to match (scripts/package.mjs).

import * as glue from '../www/pkg/reprolab.js';
import { ConfigError, EngineCrashError, createApi } from './core.js';

const GLUE = '../www/pkg/reprolab.js';

const api = createApi({
  async load(wasm) {
    await glue.default(wasm === undefined ? undefined : { module_or_path: wasm });
    return glue;
  },
  async reload(old, n, wasm) {
    // Glue built with --experimental-reset-state-function (the package's)
    // starts a fresh instance of the same module in place.
    if (typeof old.__wbg_reset_state === 'function') {
      old.__wbg_reset_state();
      return old;
    }
    // Other glue: a second copy of the glue module, with an instance of its
    // own (plain ES modules only: a bundler has no separate file to import).
    const again = await import(/* @vite-ignore */ /* webpackIgnore: true */ `${new URL(GLUE, import.meta.url).href}?instance=${n}`);
    await again.default(wasm === undefined ? undefined : { module_or_path: wasm });
    return again;
  },
});

export const { init, createRun, resumeRun, rerun, replay, diff, defaultConfig, configHelp, sources, engineVersion, debugPanic, Run } = api;
export { ConfigError, EngineCrashError };
