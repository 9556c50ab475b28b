// reprolab for Node.js (20 and later, ES modules): Node's fetch cannot read
// file: URLs, so the engine's WebAssembly is read from disk and instantiated
// synchronously. Node has no WebGPU: runs train on the CPU (`auto` says so).
// The API itself is in core.js; the types in index.d.ts.
//
// In the repository this file imports the glue that `make build-web` writes
// to www/pkg/; `make package` ships it next to the glue in pkg/, and rewrites
// the glue's paths below to match (scripts/package.mjs).

import { readFileSync } from 'node:fs';
import * as glue from '../www/pkg/reprolab.js';
import { ConfigError, EngineCrashError, createApi } from './core.js';

const GLUE = '../www/pkg/reprolab.js';
const WASM = new URL('../www/pkg/reprolab_bg.wasm', import.meta.url);

let compiled = null; // the compiled module, kept for re-instantiation

function compile(wasm) {
  if (wasm instanceof WebAssembly.Module) return wasm;
  if (wasm === undefined) return new WebAssembly.Module(readFileSync(WASM));
  if (typeof wasm === 'string' || wasm instanceof URL) return new WebAssembly.Module(readFileSync(wasm));
  return new WebAssembly.Module(wasm); // bytes
}

const api = createApi({
  async load(wasm) {
    compiled = compile(wasm);
    glue.initSync({ module: compiled });
    return glue;
  },
  async reload(old, n) {
    if (typeof old.__wbg_reset_state === 'function') {
      old.__wbg_reset_state();
      return old;
    }
    const again = await import(`${new URL(GLUE, import.meta.url).href}?instance=${n}`);
    again.initSync({ module: compiled });
    return again;
  },
});

export const { init, createRun, resumeRun, rerun, replay, diff, defaultConfig, configHelp, sources, engineVersion, debugPanic, Run } = api;
export { ConfigError, EngineCrashError };
