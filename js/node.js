// reprolab for Node.js (20 and later, ES modules): Node's fetch cannot read
// file: URLs, so the engine's WebAssembly is read from disk and compiled
// synchronously, once. Node has no WebGPU: runs train on the CPU (`auto` says
// so). The API itself is in core.js; the types in index.d.ts.
//
// In the repository this file imports the glue that `make build-web` writes
// to www/pkg/; `make package` ships it next to the glue in pkg/, and rewrites
// the glue's paths below to match (scripts/package.mjs).

import { readFileSync } from 'node:fs';
import * as glue from '../www/pkg/reprolab.js';
import { createApi } from './core.js';

const GLUE = '../www/pkg/reprolab.js';
const WASM = new URL('../www/pkg/reprolab_bg.wasm', import.meta.url);

function compile(wasm) {
  if (wasm instanceof WebAssembly.Module) return wasm;
  if (wasm === undefined) return new WebAssembly.Module(readFileSync(WASM));
  if (typeof wasm === 'string' || wasm instanceof URL) return new WebAssembly.Module(readFileSync(wasm));
  return new WebAssembly.Module(wasm); // bytes
}

const api = createApi({
  async load(wasm) {
    const module = compile(wasm);
    glue.initSync({ module });
    return { glue, module };
  },
  async reload(old, n, module) {
    if (typeof old.__wbg_reset_state === 'function') {
      old.__wbg_reset_state();
      return old;
    }
    const again = await import(`${new URL(GLUE, import.meta.url).href}?instance=${n}`);
    again.initSync({ module: compile(module) });
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
