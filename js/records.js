// What the wrapper says about records: where a manifest can be replayed and
// what that promises (replayPlan), what a diff means (results versus the
// environment), and why a run is on its backend (backendDecision). Each
// prefers the engine's own export where it has one; the fallbacks here read
// the same facts from the manifest, for engines built before those exports.

import { toObject } from './validate.js';

// ---- replay ----------------------------------------------------------------

const span = (s) => (s.from_step === s.to_step ? `step ${s.from_step}` : `steps ${s.from_step}-${s.to_step}`);

function adapterName(a) {
  if (!a) return 'an unnamed adapter';
  return [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'an adapter whose name the browser withheld';
}

/**
 * Where a replay of `manifest` must run to be comparable, and what it can
 * promise: {backend, canReplay, reason, level}. The engine's replayPlan
 * where it exists; else read from the manifest's backend history, its free
 * sources and its granted level.
 */
export function replayPlan(glue, manifest, text, gpuAvailable) {
  if (typeof glue.replayPlan === 'function') {
    const p = toObject(glue.replayPlan(text, gpuAvailable));
    return { backend: p.backend, canReplay: p.can_replay, reason: p.reason, level: p.level };
  }
  const history = Array.isArray(manifest.backend_history) && manifest.backend_history.length ? manifest.backend_history : [{ backend: manifest.backend ?? 'cpu', from_step: 1, to_step: manifest.steps_completed }];
  const onGpu = history.filter((s) => s.backend === 'gpu');
  const granted = manifest.level_granted ?? 'none';
  // Sources whose free variation leaves no seed to replay.
  const unrecorded = (manifest.free ?? []).filter((s) => s === 'gpu_reduction' || s === 'cpu_threads');
  const free = unrecorded.length ? `; ${unrecorded.join(' and ')} free: their order of arrival was not recorded, so even an identical replay is not promised` : '';
  if (onGpu.length === 0) {
    return {
      backend: 'cpu',
      canReplay: true,
      level: unrecorded.length ? 'none' : granted === 'exact' ? 'exact' : 'run-to-run',
      reason: `recorded on the CPU: replayed on the CPU here (the CPU engine computes the same bits natively and in WebAssembly)${free}`,
    };
  }
  const where = `recorded on the GPU (${onGpu.map(span).join(', ')}; adapter ${adapterName(manifest.adapter)})`;
  if (granted === 'exact') {
    return {
      backend: gpuAvailable ? 'gpu' : 'cpu',
      canReplay: true,
      level: 'exact',
      reason: `${where} at level exact: the same bits on every backend, so ${gpuAvailable ? 'this GPU' : 'this CPU'} replays it${free}`,
    };
  }
  if (gpuAvailable) {
    return {
      backend: 'gpu',
      canReplay: true,
      level: unrecorded.length ? 'none' : 'run-to-run',
      reason: `${where}: replayed on this GPU, following the recorded backends; run-to-run promises the same bits only on the same adapter, browser and driver${free}`,
    };
  }
  return {
    backend: 'cpu',
    canReplay: false,
    level: 'none',
    reason:
      `${where} at level ${granted}, and this environment has no WebGPU: the CPU's arithmetic is not the GPU's, ` +
      'so no replay here can be compared bit for bit; replay it where that GPU is (a browser with WebGPU)',
  };
}

// ---- diff ------------------------------------------------------------------

// Fields that say where a run ran, not what it computed (and, below, how a
// setting was given when its value is the same).
const ENVIRONMENT = new Set(['user_agent', 'reprolab_version']);

const sameArray = (a, b) => Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

/**
 * The diff of two manifests as the wrapper gives it: the differences in
 * what was computed apart from those only about the environment.
 */
export function diffOf(raw, a, b) {
  const d = toObject(raw);
  const all = d.differences.map(toObject).map(({ field, a: va, b: vb }) => ({ field, a: va, b: vb }));
  if ('results_identical' in d && Array.isArray(d.environment)) {
    return {
      identical: d.identical,
      resultsIdentical: d.results_identical,
      firstDivergentStep: d.first_divergent_step ?? null,
      differences: all,
      environment: d.environment.map(toObject).map(({ field, a: va, b: vb }) => ({ field, a: va, b: vb })),
      causes: d.causes,
    };
  }
  // An engine without the export's new fields: the same split, from the manifests.
  const changed = new Set(all.map((x) => x.field));
  const isEnvironment = (x) => {
    if (ENVIRONMENT.has(x.field)) return true;
    // How a setting was given (a config file, a flag, the default) when its
    // value is the same: nothing the run computed depends on it.
    const source = x.field.match(/^(config\.\w+)\.source$/);
    if (source) return !changed.has(source[1]);
    // Adapters that differ only in their description (the same GPU, named otherwise).
    if (x.field === 'adapter' && x.a && x.b) {
      const { description: _a, ...restA } = x.a;
      const { description: _b, ...restB } = x.b;
      return JSON.stringify(restA) === JSON.stringify(restB);
    }
    return false;
  };
  const environment = all.filter(isEnvironment);
  const differences = all.filter((x) => !isEnvironment(x));
  const firstDivergentStep = d.first_divergent_step ?? null;
  const resultsIdentical =
    firstDivergentStep === null &&
    sameArray(a.hash_chain, b.hash_chain) &&
    sameArray(a.train_loss, b.train_loss) &&
    a.weights_hash === b.weights_hash &&
    a.initial_weights_hash === b.initial_weights_hash;
  const identical = differences.length === 0 && firstDivergentStep === null;
  return {
    identical,
    resultsIdentical,
    firstDivergentStep,
    differences,
    environment,
    // Nothing to explain once only the environment differs.
    causes: identical ? [] : d.causes,
  };
}

// ---- the backend decision ----------------------------------------------------

/**
 * Why a run is on its backend: {backend, kind, text}, as the engine decided
 * it (src/driver.rs holds the one backend policy; the wrapper only passes the
 * caller's request on and reads the decision back as data).
 */
export function backendDecisionOf(trainer) {
  const d = toObject(trainer.backendDecision);
  return { backend: d.backend, kind: d.kind, text: d.text };
}
