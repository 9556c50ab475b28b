// Stand-ins for engine exports this build of the engine does not have yet
// (engine.js uses the engine's own wherever it has them). Each says less
// than the engine will, never more: the lists below are only what older
// engines refuse or accept, and the limits are deliberately small. Delete
// this file once engineInfo, freeSourceEffects and replayPlan have landed.

import { resolveBackend } from './env.js';
import { toText } from './format.js';

// Older engines list neither their data sets nor their engine versions.
const DATASETS = [
  { name: 'digits', latest_version: 2, versions: [1, 2], dim: 64, classes: 10 },
  { name: 'spiral', latest_version: 1, versions: [1], dim: 2, classes: 3 },
  { name: 'xor', latest_version: 1, versions: [1], dim: 2, classes: 2 },
  { name: 'circles', latest_version: 1, versions: [1], dim: 2, classes: 2 },
  { name: 'gaussians', latest_version: 1, versions: [1], dim: 2, classes: 2 },
];
const ENGINE_VERSIONS = [1, 2];
const HPARAMS = ['hidden', 'activation', 'dropout', 'learning_rate', 'momentum', 'weight_decay', 'batch_size', 'val_fraction'];
const SEEDED = ['init', 'shuffle', 'dropout'];
// What a tab can hold, conservatively, until the engine states its limits:
// a few copies of the weights in the engine and at the page's distance samples.
const LIMITS = {
  max_params: 5_000_000,
  max_layers: 16,
  max_width: 16_384,
  max_batch: 65_536,
  max_batch_x_width: 4_194_304,
  max_steps: 100_000_000,
  max_record_bytes: null,
};

export function info({ config, help, sources, version }) {
  return {
    engine: version,
    kernel_version: Math.max(...ENGINE_VERSIONS),
    engine_versions: ENGINE_VERSIONS,
    levels: ['none', 'run-to-run'],
    sources: sources.map(({ name, explanation }) => ({ name, explanation, seeded: SEEDED.includes(name) })),
    settings: Object.entries(config).map(([key, value]) => ({ key, default: toText(value), help: help[key] ?? '', hparam: HPARAMS.includes(key) })),
    datasets: DATASETS,
    limits: LIMITS,
    fromEngine: false,
  };
}

const number = (v) => Number(String(v).trim());


export function freeSourceEffects(settings, free, backend, gpu, engineInfo) {
  const defaults = Object.fromEntries(engineInfo.settings.map((s) => [s.key, s.default]));
  const hparams = engineInfo.settings.filter((s) => s.hparam).map((s) => s.key);
  const [name, at] = String(settings.dataset).split('@');
  const ds = engineInfo.datasets.find((d) => d.name === name);
  const latestEngine = Math.max(...engineInfo.engine_versions);
  const run1 = resolveBackend(backend, gpu);
  const rerunFree = gpu.available ? 'gpu' : 'cpu'; // free, the re-runs take whatever this machine offers
  const other = run1 === 'gpu' ? 'cpu' : 'gpu';
  const effect = (source, acts, why = '', fix = null) => ({ source, acts, why: acts ? '' : why, fix: acts ? null : fix });
  return free.map((source) => {
    switch (source) {
      case 'init':
      case 'shuffle':
        return effect(source, true);
      case 'dropout':
        return effect(source, number(settings.dropout) > 0, 'dropout is 0: no unit is ever dropped', { set: { dropout: '0.1' } });
      case 'engine_version':
        return effect(
          source,
          number(settings.engine_version) < latestEngine,
          `run 1 already uses the current engine version (${latestEngine})`,
          { set: { engine_version: String(Math.min(...engineInfo.engine_versions)) } },
        );
      case 'data_drift': {
        const older = ds && at !== undefined && Number(at) < ds.latest_version;
        const versioned = engineInfo.datasets.find((d) => d.versions.length > 1);
        return effect(
          source,
          Boolean(older),
          ds && ds.versions.length > 1 ? `${settings.dataset} is already the latest version of ${name}` : `${name} has only one version`,
          versioned ? { set: { dataset: `${versioned.name}@${versioned.versions[0]}` } } : null,
        );
      }
      case 'hparam_drift': {
        const changed = hparams.some((k) => String(settings[k]).trim() !== defaults[k]);
        const lr = number(defaults.learning_rate);
        return effect(source, changed, 'every hyper-parameter has its default', { set: { learning_rate: String(Number((lr * 0.4).toPrecision(2))) } });
      }
      case 'gpu_reduction':
        if (!gpu.available) return effect(source, false, 'no WebGPU here: every run trains on the CPU, where no GPU reduction takes place');
        return effect(source, run1 === 'gpu', 'run 1 trains on the CPU, where no GPU reduction takes place', { backend: 'gpu' });
      case 'cpu_threads': {
        const threads = number(settings.threads);
        const chunks = number(settings.chunks);
        if (!(threads >= 2 && chunks >= 3)) {
          return effect(source, false, `one CPU thread (threads ${threads}, chunks ${chunks}) has no partial sums to combine in another order`, {
            set: { threads: '3', chunks: '6' },
            ...(run1 === 'gpu' ? { backend: 'cpu' } : {}),
          });
        }
        return effect(source, run1 === 'cpu', 'run 1 trains on the GPU, where the CPU threads take no part', { backend: 'cpu' });
      }
      case 'backend':
        if (!gpu.available) return effect(source, false, 'no WebGPU here: whatever the backend, runs train on the CPU');
        return effect(
          source,
          run1 !== rerunFree,
          'free, the re-runs take whatever this machine offers, the GPU, where run 1 trains too',
          { backend: other },
        );
      default:
        return effect(source, false, 'unknown to this page');
    }
  });
}

export function replayPlan(text, gpu) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    return { backend: 'cpu', can_replay: true, reason: '', level: null }; // the engine says what is wrong with it
  }
  const onGpu = (m?.backend_history ?? []).some((s) => s.backend === 'gpu') || m?.backend === 'gpu';
  if (onGpu && !gpu.available) {
    return {
      backend: 'cpu',
      can_replay: true,
      reason: 'the record ran on the GPU and this browser has no WebGPU here: the replay runs on the CPU, so its bits part from the record',
      level: m?.level_granted ?? null,
    };
  }
  return { backend: onGpu ? 'gpu' : 'cpu', can_replay: true, reason: '', level: m?.level_granted ?? null };
}
