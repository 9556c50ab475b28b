// The one place where the page reaches the engine: the package's public
// JavaScript API (js/index.js, the same module `npm install reprolab` gives)
// for runs, and the engine's own exports (www/pkg/, the glue that API loads:
// the same module instance) for what the engine says about itself.
//
// What the page relies on from the engine (docs: the lead's api.md):
//   engineInfo()                       sources, settings (with `hparam`), data
//                                      sets, engine versions, levels, limits
//   freeSourceEffects(settings, free, backend, gpuAvailable)
//                                      whether each free source can act here
//   replayPlan(manifest, gpuAvailable) where a replay must run
//   Run getters backendDecision, inertSources, adapterIsSoftware, level,
//   levelReason, and dataPoints() (the training points on the heat maps)
// The page lists nothing the engine knows: sources, settings, data sets,
// engine versions, levels and limits all come from these exports.
// `capabilities()` says which optional Trainer getters this build has (the
// page shows it in its footer, the tests print it).
//
// The WebAssembly is compiled once, on the page, and handed to every run
// worker (a WebAssembly.Module is cloned, not refetched or recompiled).

import * as api from '../../js/index.js';
import * as glue from '../pkg/reprolab.js';
import { resolveBackend } from './env.js';
import { toText } from './format.js';

export { createRun, rerun, diff, ConfigError, EngineCrashError } from '../../js/index.js';
/** The plain build's API (js/index.js): what runApi gives where threads are not shared. */
export const plainApi = api;

const WASM_URL = new URL('../pkg/reprolab_bg.wasm', import.meta.url);

// serde-wasm-bindgen may give a Map for a Rust map; the wrapper camelCases
// its own objects. The page reads the engine's snake_case shapes.
const snake = (k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
export function plain(v) {
  if (v instanceof Map) v = Object.fromEntries(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [snake(k), plain(x)]));
  }
  return v;
}

const trainerHas = (name) => typeof glue.Trainer === 'function' && name in glue.Trainer.prototype;

// Which of the engine's newer exports this build has.
export function capabilities() {
  return {
    engineInfo: typeof glue.engineInfo === 'function',
    freeSourceEffects: typeof glue.freeSourceEffects === 'function',
    replayPlan: typeof glue.replayPlan === 'function',
    backendDecision: trainerHas('backendDecision'),
    inertSources: trainerHas('inertSources'),
    adapterIsSoftware: trainerHas('adapterIsSoftware'),
    dataPoints: trainerHas('dataPoints'),
  };
}

// Compiles the engine's WebAssembly (once per page) and starts the page's
// own instance of it. Resolves to the module, for the run workers.
export async function load() {
  let module;
  try {
    module = await WebAssembly.compileStreaming(fetch(WASM_URL));
  } catch {
    // A server that sends another MIME type: compile from the bytes.
    const response = await fetch(WASM_URL);
    if (!response.ok) throw new Error(`${WASM_URL.pathname}: HTTP ${response.status}`);
    module = await WebAssembly.compile(await response.arrayBuffer());
  }
  await api.init({ wasm: module });
  return module;
}

// In a run worker: the engine from the page's compiled module.
export async function loadIn(module) {
  await api.init(module ? { wasm: module } : {});
}

// The threads a run asks for: its settings' `threads`, or for a re-run the
// manifest's.
function threadsOf({ mode, settings, manifest }) {
  if (mode !== 'rerun') return Number(settings?.threads ?? 1);
  try {
    const value = JSON.parse(manifest).config?.threads;
    return Number(typeof value === 'object' && value !== null ? value.value : value ?? 1);
  } catch {
    return 1; // the re-run reports the manifest's fault itself
  }
}

// In a run worker: the API that makes the run of an 'init' message. A CPU
// run with threads > 1 on a cross-origin isolated page (ISOLATE=1
// scripts/serve.py, as `make demo` serves it) takes the WebAssembly-threads build
// (js/threaded.js: its threads share one memory); any other run, or where
// that build cannot start, the plain one (threads as Web Workers that copy
// weights, js/threads.js). The same bits either way. Resolves to {api,
// note}: the module with createRun and rerun, and why the plain one was
// taken where the other was wanted (or null).
export async function runApi(msg) {
  const threads = threadsOf(msg);
  if (!(threads > 1) || msg.backend === 'gpu' || globalThis.crossOriginIsolated !== true) return { api, note: null };
  try {
    const threaded = await import('../../js/threaded.js');
    if (!threaded.usable()) return { api, note: 'WebAssembly threads cannot run here' };
    await threaded.init({ threads });
    return { api: threaded, note: null };
  } catch (e) {
    return { api, note: `WebAssembly threads did not start (${e?.message ?? e})` };
  }
}

// Everything the page shows about the engine, in engineInfo()'s shape.
export async function info() {
  const i = plain(glue.engineInfo());
  return { ...i, settings: i.settings.map((s) => ({ ...s, default: toText(s.default) })), fromEngine: true };
}

// [{source, acts, why, fix}] for every free source, for run 1's settings and
// backend here. `gpu` is what the page found: {available, software}; the
// engine is told where run 1 will train (auto: the CPU on a software GPU,
// as its own policy does), since that decides gpu_reduction and cpu_threads.
export function freeSourceEffects(settings, free, backend, gpu) {
  return plain(glue.freeSourceEffects(settings, free, resolveBackend(backend, gpu), gpu.available));
}

// A network or batch too big for a tab is refused by the engine itself, with
// its own limits and checked arithmetic, when the page first reads the
// settings (freeSourceEffects, before any worker starts): nothing to check here.
export function checkSettings() {
  return null;
}

// {backend, can_replay, reason, level} for replaying `manifest` here.
export function replayPlan(text, gpu) {
  return plain(glue.replayPlan(text, gpu.available));
}

// The engine accepts a free source that cannot act and records it as inert.
export const acceptsInertSources = () => true;

// A copy of a run's weights as they stand (the last state read back from the
// GPU on a GPU run), for the distance between runs.
export function paramsOf(run) {
  const p = run.params();
  return p instanceof Float32Array ? p : Float32Array.from(p);
}

// What a Run says about its backend and free sources, where the wrapper
// passes the engine's getters on; null where it does not (yet).
export function runFacts(run) {
  const read = (name) => {
    try {
      const v = run[name];
      return v === undefined ? null : plain(v);
    } catch {
      return null;
    }
  };
  return {
    decision: read('backendDecision'),
    inert: read('inertSources'),
    software: read('adapterIsSoftware'),
    level: read('level'),
    levelReason: read('levelReason'),
  };
}

// The training points of a 2-D data set, where the engine offers them:
// {dim, x: Float32Array, labels: Uint8Array} or null.
export function dataPointsOf(run) {
  if (typeof run.dataPoints !== 'function') return null;
  try {
    const p = plain(run.dataPoints());
    return p && p.x ? { dim: p.dim ?? 2, x: Float32Array.from(p.x), labels: Uint8Array.from(p.labels ?? p.y ?? []) } : null;
  } catch {
    return null;
  }
}
