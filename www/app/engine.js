// The one place where the page reaches the engine: the package's public
// JavaScript API (js/index.js, the same module `npm install reprolab` gives),
// which loads the WebAssembly built into www/pkg/. The page's main thread and
// every run worker (run-worker.js) import this module; each gets its own
// engine instance.

export {
  init,
  createRun,
  rerun,
  replay,
  diff,
  defaultConfig,
  configHelp,
  sources,
  engineVersion,
  ConfigError,
  EngineCrashError,
} from '../../js/index.js';

// A copy of a run's weights as they stand (the last state read back from the
// GPU on a GPU run), for the distance between runs.
export function paramsOf(run) {
  const p = run.params();
  return p instanceof Float32Array ? p : Float32Array.from(p);
}
