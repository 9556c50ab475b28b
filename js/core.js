// The JavaScript API of reprolab, independent of how the engine is loaded.
// index.js (browsers, bundlers) and node.js (Node.js) each give it a loader
// and re-export what it returns; see index.d.ts for the types and README.md
// for the guide. The parts:
//
//   errors.js     the error classes and their codes; AbortError
//   validate.js   checks of settings, options, arguments and records
//   instance.js   the engine's WebAssembly instances: loading, guarding every
//                 call, a fresh instance after a crash
//   schedule.js   yielding to the event loop between slices of work
//   run.js        the Run class
//   records.js    replay plans, diffs, backend decisions
//   threads.js    the Web Workers of CPU runs with threads > 1
//
// Objects the wrapper makes have camelCase keys; the manifest, the checkpoint
// and the configuration are file formats and keep their snake_case keys (the
// same keys as the command-line tool and the page).

import { ConfigError, RecordError, ReprolabError, abortError, throwIfAborted } from './errors.js';
import { instances } from './instance.js';
import { diffOf, replayPlan as planOf } from './records.js';
import { Run } from './run.js';
import { abortable } from './schedule.js';
import { warmWorkers } from './threads.js';
import {
  CHECKPOINT_FIELDS,
  MANIFEST_FIELDS,
  checkOptions,
  describe,
  documentOf,
  isPlainObject,
  settingsOf,
  toObject,
  typedConfig,
} from './validate.js';

const RUN_OPTIONS = ['free', 'backend', 'workers', 'signal'];
const RESUME_OPTIONS = ['backend', 'workers', 'signal'];
const REPLAY_OPTIONS = ['backend', 'signal'];
const MAX_WORKERS = 64; // the most threads a run may have
const RECORD = { record: true }; // calls that read a manifest or a checkpoint

const hasWebGpu = () => typeof globalThis.navigator === 'object' && globalThis.navigator !== null && !!globalThis.navigator.gpu;

/**
 * Builds the API around a loader (instance.js: `instances`):
 *   load(wasm)             resolves to {glue, module}
 *   reload(glue, n, module) a fresh instance after a crash
 */
export function createApi(loader) {
  const engines = instances(loader);
  const { engine } = engines;
  let gpuHere = null; // Promise<boolean>: a WebGPU adapter is available

  function gpuAvailable() {
    gpuHere ??= (async () => {
      if (!hasWebGpu()) return false;
      try {
        return (await globalThis.navigator.gpu.requestAdapter()) !== null;
      } catch {
        return false;
      }
    })();
    return gpuHere;
  }

  // The engine instance, or an AbortError as soon as `signal` aborts.
  const engineFor = (signal, what) => abortable(engine(), signal, () => abortError(signal, what));

  // A Trainer the engine is making, or an AbortError as soon as `signal`
  // aborts (the trainer, when it comes, is freed).
  const trainerFor = (promise, signal, what) =>
    abortable(
      promise,
      signal,
      () => abortError(signal, what),
      (trainer) => trainer.free(),
    );

  async function init(options = {}) {
    if (!isPlainObject(options)) throw new ConfigError(`init: expected an object of options, got ${describe(options)}`, 'options');
    for (const key of Object.keys(options)) {
      if (key !== 'wasm' && key !== 'workers') throw new ConfigError(`${key}: unknown option of init (known: wasm, workers)`, key);
    }
    const { wasm, workers } = options;
    if (workers !== undefined) {
      if (!Number.isInteger(workers) || workers < 0 || workers > MAX_WORKERS) {
        throw new ConfigError(`workers: expected a whole number of Web Workers from 0 to ${MAX_WORKERS}, got ${describe(workers)}`, 'workers');
      }
      if (workers > 0 && typeof globalThis.Worker !== 'function') {
        throw new ConfigError('workers: this JavaScript environment has no Web Workers', 'workers');
      }
    }
    if (wasm !== undefined) engines.setSource(wasm);
    await engine();
    if (workers) {
      try {
        await warmWorkers(workers, engines.module());
      } catch (e) {
        throw new ReprolabError(`reprolab: could not start ${workers} Web Workers (${e.message})`, 'engine', { cause: e });
      }
    }
  }

  async function defaults(inst) {
    return toObject(inst.guard((g) => g.defaultSettings()));
  }

  async function createRun(config, options) {
    const { free = [], backend = 'auto', workers, signal } = checkOptions(options, RUN_OPTIONS, 'createRun');
    throwIfAborted(signal, 'createRun()');
    const inst = await engineFor(signal, 'createRun()');
    const settings = settingsOf(config, await defaults(inst));
    // The engine decides where the run trains (src/driver.rs: the one
    // backend policy); the wrapper passes the request on as it came.
    const trainer = await trainerFor(
      inst.guardAsync((g) => g.Trainer.create(settings, free, backend)),
      signal,
      'createRun()',
    );
    return Run.make(inst, trainer, { workers, module: engines.module(), signal, what: 'createRun()' });
  }

  async function resumeRun(checkpoint, options) {
    const { backend, workers, signal } = checkOptions(options, RESUME_OPTIONS, 'resumeRun');
    throwIfAborted(signal, 'resumeRun()');
    const { text } = documentOf(checkpoint, 'checkpoint', CHECKPOINT_FIELDS);
    const inst = await engineFor(signal, 'resumeRun()');
    const trainer = await trainerFor(
      inst.guardAsync((g) => g.Trainer.resume(text, backend), RECORD),
      signal,
      'resumeRun()',
    );
    return Run.make(inst, trainer, { workers, module: engines.module(), signal, what: 'resumeRun()' });
  }

  async function rerun(manifest, options) {
    const { free = [], backend, workers, signal } = checkOptions(options, RUN_OPTIONS, 'rerun');
    throwIfAborted(signal, 'rerun()');
    const { text } = documentOf(manifest, 'manifest', MANIFEST_FIELDS);
    const inst = await engineFor(signal, 'rerun()');
    const trainer = await trainerFor(
      inst.guardAsync((g) => g.Trainer.rerun(text, free, backend), RECORD),
      signal,
      'rerun()',
    );
    return Run.make(inst, trainer, { workers, module: engines.module(), signal, what: 'rerun()' });
  }

  // A manifest whose text is not JSON: the engine's own words for what is
  // wrong with it (truncated, ...), as a RecordError.
  function unreadable(inst, text, obj) {
    if (obj) return;
    inst.guard((g) => g.diffManifests(text, text), RECORD);
    throw new RecordError('reprolab: the manifest is not JSON');
  }

  /** Where a replay of `manifest` can run here and what it promises. */
  async function replayPlan(manifest) {
    const { text, obj } = documentOf(manifest, 'manifest', MANIFEST_FIELDS);
    const inst = await engine();
    unreadable(inst, text, obj);
    const gpu = await gpuAvailable();
    return inst.guard((g) => planOf(g, obj, text, gpu), RECORD);
  }

  // Re-runs a manifest on `backend` (undefined: following its recorded
  // backends) and compares its hash chain with the record, at doubling
  // intervals so that a replay that parts early ends early.
  async function compareReplay(inst, text, obj, backend, signal) {
    const trainer = await trainerFor(
      inst.guardAsync((g) => g.Trainer.rerun(text, [], backend), RECORD),
      signal,
      'replay()',
    );
    const run = await Run.make(inst, trainer, { workers: undefined, module: engines.module(), signal, what: 'replay()' });
    try {
      const recorded = obj.hash_chain;
      const total = obj.steps_completed;
      // The first link in [from, to) where the chains differ, as a step (1-based).
      const parted = (chain, from, to) => {
        for (let i = from; i < to; i++) if (chain[i] !== recorded[i]) return i + 1;
        return null;
      };
      const answer = (chain, step) => ({ step, recorded: recorded[step - 1] ?? null, replayed: chain[step - 1] ?? null });
      let chain = [];
      let until = 32;
      while (run.stepsDone < total && !run.done) {
        await run.step(Math.min(until, total) - run.stepsDone, { signal });
        const checked = chain.length;
        chain = run.hashChain();
        const step = parted(chain, checked, chain.length);
        if (step !== null) return answer(chain, step);
        until *= 2;
      }
      // A recorded run that stopped early must stop at the same step here.
      if (obj.stopped && !run.done) {
        await run.step(1, { signal });
        chain = run.hashChain();
      }
      const step = parted(chain, 0, Math.max(chain.length, recorded.length));
      return step === null ? { step: null } : answer(chain, step);
    } finally {
      run.dispose();
    }
  }

  async function replay(manifest, options) {
    const { backend = 'auto', signal } = checkOptions(options, REPLAY_OPTIONS, 'replay');
    throwIfAborted(signal, 'replay()');
    const { text, obj } = documentOf(manifest, 'manifest', MANIFEST_FIELDS);
    const inst = await engineFor(signal, 'replay()');
    unreadable(inst, text, obj);
    const gpu = await gpuAvailable();
    const plan = inst.guard((g) => planOf(g, obj, text, gpu), RECORD);
    const where = { backend: plan.backend, level: plan.level, reason: plan.reason, comparable: plan.canReplay };
    if (backend === 'auto' && !plan.canReplay) return { identical: null, step: null, ...where };
    if (backend === 'gpu' && !gpu) {
      throw new ConfigError('backend gpu: no WebGPU adapter here to replay on', 'backend', undefined, 'backend_unavailable');
    }
    const on = backend === 'auto' ? plan.backend : backend;
    const r = await compareReplay(inst, text, obj, on === 'gpu' ? (plan.backend === 'gpu' ? undefined : 'gpu') : 'cpu', signal);
    if (!plan.canReplay || on !== plan.backend) {
      // Where the caller asked, not where it compares.
      where.backend = on;
      where.comparable = false;
      where.level = 'none';
      where.reason = `replayed on the ${on.toUpperCase()} as asked, though ${plan.reason}`;
    }
    if (r.step === null) return { identical: true, steps: obj.steps_completed, ...where };
    return { identical: false, step: r.step, recorded: r.recorded, replayed: r.replayed, ...where };
  }

  async function diff(a, b) {
    const da = documentOf(a, 'manifest', MANIFEST_FIELDS);
    const db = documentOf(b, 'manifest', MANIFEST_FIELDS);
    const inst = await engine();
    const raw = inst.guard((g) => g.diffManifests(da.text, db.text), RECORD);
    return diffOf(raw, da.obj ?? JSON.parse(da.text), db.obj ?? JSON.parse(db.text));
  }

  async function defaultConfig() {
    const inst = await engine();
    return typedConfig(await defaults(inst));
  }

  async function configHelp() {
    const inst = await engine();
    return { ...toObject(inst.guard((g) => g.settingHelp())) };
  }

  async function sources() {
    const inst = await engine();
    return inst
      .guard((g) => g.sourceInfo())
      .map(toObject)
      .map(({ name, explanation }) => ({ name, explanation }));
  }

  async function engineVersion() {
    const inst = await engine();
    return inst.guard((g) => g.engineVersion());
  }

  // Test hook: makes the engine panic, to test the recovery. Never call it
  // otherwise. `{ async: true }`: inside an async export, in a microtask, as
  // a panic inside createRun or resumeRun would.
  async function debugPanic(options = {}) {
    const inst = await engine();
    if (options?.async === true) {
      await inst.guardAsync((g) => g.debugPanicAsync());
    } else {
      inst.guard((g) => g.debugPanic());
    }
    throw new Error('reprolab: debugPanic returned without panicking');
  }

  return {
    init,
    createRun,
    resumeRun,
    rerun,
    replay,
    replayPlan,
    diff,
    defaultConfig,
    configHelp,
    sources,
    engineVersion,
    debugPanic,
    Run,
  };
}
