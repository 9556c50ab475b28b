// The JavaScript API of reprolab, independent of how the engine is loaded.
// index.js (browsers, bundlers) and node.js (Node.js) each give it a loader
// and re-export what it returns; see index.d.ts for the types and README.md
// for the guide.
//
// Three rules hold everywhere in this file:
//   - every call into the engine goes through `guard`, which turns a Rust
//     panic (a WebAssembly trap: "unreachable") into an EngineCrashError,
//     marks the engine instance broken, and makes the next createRun start a
//     fresh instance; objects of a broken instance refuse every later call;
//   - the engine's own errors keep their message; those that name a setting
//     become ConfigErrors with that `field`;
//   - objects the wrapper makes have camelCase keys; the manifest, the
//     checkpoint and the configuration are file formats and keep their
//     snake_case keys (the same keys as the command-line tool and the page).

import { WorkerPool } from './threads.js';

const BACKENDS = ['auto', 'gpu', 'cpu'];
const RUN_OPTIONS = ['free', 'backend', 'workers'];
const RESUME_OPTIONS = ['backend', 'workers'];
const MAX_STEP = 2 ** 32 - 1;
const DEFAULT_TARGET_MS = 15;
const START_WORKERS = Symbol('startWorkers');

/** A setting (or an option) that was refused; `field` names it. */
export class ConfigError extends Error {
  constructor(message, field, options) {
    super(message, options);
    this.name = 'ConfigError';
    this.field = field;
  }
}

/**
 * The engine panicked (a bug in reprolab, or memory ran out). The run that
 * was using it, and every other run of the same engine instance, refuses
 * every later call; the next createRun (or resumeRun, rerun, ...) starts a
 * fresh instance.
 */
export class EngineCrashError extends Error {
  constructor(message, panic, options) {
    super(message, options);
    this.name = 'EngineCrashError';
    this.panic = panic ?? null;
  }
}

// Messages the engine's glue gives when the instance is no longer usable.
const CRASH_MESSAGES =
  /unreachable|recursive use of an object detected|attempted to take ownership of Rust value while it was borrowed|null pointer passed to rust|Invalid stale object from previous Wasm instance|Module terminated/;

function isCrash(e) {
  return (
    (typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError) ||
    (e instanceof Error && !(e instanceof ConfigError) && typeof e.field !== 'string' && CRASH_MESSAGES.test(e.message))
  );
}

// The words of a crash: the panic's message where the engine reported it,
// else a pointer to the console (where the engine's panic hook logs it). The
// trap itself ("unreachable") stays in `cause`.
function crashText(panic) {
  const what = panic ?? 'a Rust panic; its message is in the console';
  return `reprolab: the engine crashed (${what}); create a new run`;
}

const describe = (v) => {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'bigint') return `the bigint ${v}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
};

const isPlainObject = (v) =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && [Object.prototype, null].includes(Object.getPrototypeOf(v));

// serde-wasm-bindgen may give a Map for a Rust map; accept either.
const toObject = (v) => (v instanceof Map ? Object.fromEntries(v) : v);

function reportOf(r) {
  r = toObject(r);
  return {
    step: r.step,
    totalSteps: r.total_steps,
    trainLoss: r.train_loss ?? null,
    valError: r.val_error ?? null,
    valLoss: r.val_loss ?? null,
    done: r.done,
    stopped: r.stopped ?? null,
    weightsHash: r.weights_hash,
    backend: r.backend,
  };
}

function adapterOf(a) {
  a = toObject(a);
  if (!a) return null;
  return { vendor: a.vendor, architecture: a.architecture, description: a.description, graphicsBackend: a.graphics_backend };
}

// The next chunk of steps for a loop aiming at `targetMs` per chunk: scaled
// towards it, at most doubling each time (one quick chunk is weak evidence).
function nextChunk(k, took, targetMs) {
  const scaled = took > 0 ? Math.floor((k * targetMs) / took) : 2 * k;
  return Math.max(1, Math.min(2 * k, scaled));
}

// Lets the event loop run (timers, input, rendering) between chunks, so that
// pause() and cancel() from a click or a timer take effect.
function yieldToEventLoop() {
  if (typeof globalThis.scheduler?.yield === 'function') return globalThis.scheduler.yield();
  if (typeof globalThis.setImmediate === 'function') return new Promise((resolve) => globalThis.setImmediate(resolve));
  if (typeof MessageChannel === 'function') {
    return new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        channel.port1.close();
        resolve();
      };
      channel.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

const hasWebGpu = () => typeof globalThis.navigator === 'object' && globalThis.navigator !== null && !!globalThis.navigator.gpu;

// ---- configuration -----------------------------------------------------------

// Checks the JavaScript types of a configuration and turns it into what the
// engine takes (strings and numbers); the engine checks ranges, unknown keys
// and everything that involves several values, naming the field.
function settingsOf(config, defaults) {
  if (config === undefined || config === null) return {};
  if (!isPlainObject(config)) {
    throw new ConfigError(`config: expected an object of settings, got ${describe(config)}`, 'config');
  }
  const out = {};
  for (const [key, value] of Object.entries(config)) {
    if (key === 'version') {
      if (value !== 1 && value !== '1') {
        throw new ConfigError(`version: config version ${describe(value)} is not supported (this reprolab reads version 1)`, 'version');
      }
      continue;
    }
    if (value === undefined || value === null) {
      throw new ConfigError(`${key}: missing value (${describe(value)}); leave the key out for its default`, key);
    }
    if (typeof value === 'string') {
      out[key] = value; // text, as `--set key=value` and form fields give it
      continue;
    }
    if (!(key in defaults)) {
      // Unknown: the engine refuses it, with a "did you mean".
      out[key] = typeof value === 'number' ? value : String(value);
      continue;
    }
    const def = defaults[key];
    if (key === 'hidden') {
      const widths = typeof value === 'number' ? [value] : value;
      if (!Array.isArray(widths) || !widths.every((w) => typeof w === 'number' && Number.isInteger(w))) {
        throw new ConfigError(`hidden: expected an array of whole numbers (layer widths), got ${describe(value)}`, key);
      }
      out[key] = widths.join(',');
    } else if (key === 'seed' && typeof value === 'bigint') {
      out[key] = value.toString();
    } else if (typeof def === 'number') {
      if (typeof value !== 'number') {
        throw new ConfigError(`${key}: expected a number, got ${describe(value)}`, key);
      }
      if (!Number.isFinite(value)) throw new ConfigError(`${key}: expected a finite number, got ${value}`, key);
      if (key === 'seed' && !Number.isSafeInteger(value)) {
        throw new ConfigError(`seed: expected a whole number from 0 to 2^53-1 (a bigint or a string for any such seed), got ${value}`, key);
      }
      out[key] = value;
    } else {
      throw new ConfigError(`${key}: expected a string, got ${describe(value)}`, key);
    }
  }
  return out;
}

function checkOptions(options, known, what) {
  if (options === undefined || options === null) return {};
  if (!isPlainObject(options)) throw new ConfigError(`${what}: expected an object of options, got ${describe(options)}`, 'options');
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new ConfigError(`${key}: unknown option of ${what} (known: ${known.join(', ')})`, key);
    }
  }
  const { free, backend, workers } = options;
  if (free !== undefined && !(Array.isArray(free) && free.every((s) => typeof s === 'string'))) {
    throw new ConfigError(`free: expected an array of source names, got ${describe(free)}`, 'free');
  }
  if (backend !== undefined && !BACKENDS.includes(backend)) {
    throw new ConfigError(`backend: expected auto, gpu or cpu, got ${describe(backend)}`, 'backend');
  }
  if (workers !== undefined && typeof workers !== 'boolean') {
    throw new ConfigError(`workers: expected true or false, got ${describe(workers)}`, 'workers');
  }
  return options;
}

// Engine config values (hidden as "64,64") as typed values.
function typedConfig(values) {
  const out = {};
  for (const [key, value] of Object.entries(values)) {
    if (key === 'hidden') out[key] = String(value) === '' ? [] : String(value).split(',').map(Number);
    else out[key] = value;
  }
  return out;
}

// A manifest or checkpoint given as an object or JSON text, as JSON text.
// `required` are the top-level fields it must have (named when missing).
function documentText(doc, what, required) {
  let obj = doc;
  if (typeof doc === 'string') {
    try {
      obj = JSON.parse(doc);
    } catch {
      return doc; // the engine says what is wrong with it (truncated, ...)
    }
  }
  if (!isPlainObject(obj)) throw new ConfigError(`${what}: expected a ${what} object or its JSON text, got ${describe(doc)}`, what);
  for (const field of required) {
    if (!(field in obj)) throw new ConfigError(`${field}: the ${what} has no ${field} field`, field);
  }
  return typeof doc === 'string' ? doc : JSON.stringify(doc);
}

// "gpu" when the last stretch of the run in `text` ran on the GPU.
function recordedBackend(text, manifestOf) {
  try {
    const m = manifestOf(JSON.parse(text));
    return m?.backend_history?.at?.(-1)?.backend ?? m?.backend ?? 'cpu';
  } catch {
    return 'cpu'; // unreadable: the engine says why
  }
}

const MANIFEST_FIELDS = ['manifest_version', 'config', 'free', 'seeds', 'data', 'steps_completed', 'hash_chain', 'checksum'];
const CHECKPOINT_FIELDS = ['checkpoint_version', 'step', 'params_bits', 'velocity_bits', 'manifest', 'checksum'];

// ---- the API -------------------------------------------------------------------

/**
 * Builds the API around a loader:
 *   load(wasm)            initialises the engine's glue (wasm: an optional
 *                         source of the .wasm) and resolves to its exports
 *   reload(glue, n, wasm) a fresh instance after a crash (the n-th), resolving
 *                         to the exports to use from then on
 */
export function createApi(loader) {
  let wasmSource; // what init({ wasm }) was given
  let instances = 0;
  let current = null; // Promise of the current instance

  // One instance of the engine: its glue's exports and whether it crashed.
  class Instance {
    constructor(glue) {
      this.glue = glue;
      this.broken = null; // the EngineCrashError that ended it
      this.panic = null; // the panic's message, where the engine reports it
      this.id = ++instances;
      // Rejects once the engine reports a panic: a call whose work runs in a
      // microtask (an async step on the GPU) dies with the instance and never
      // settles; racing it against this turns that into a rejection.
      this.crashed = new Promise((_, reject) => {
        this.rejectCrashed = reject;
      });
      this.crashed.catch(() => {}); // only ever raced, never unhandled
      // Engines that offer it report their panic's message before trapping.
      if (typeof glue.setPanicListener === 'function') {
        glue.setPanicListener((message) => {
          this.panic = String(message);
          this.broken ??= new EngineCrashError(crashText(this.panic), this.panic);
          this.rejectCrashed(this.broken);
        });
      }
    }

    // Runs fn (a call into the engine); a trap breaks this instance.
    guard(fn) {
      if (this.broken) throw this.refusal();
      try {
        return fn(this.glue);
      } catch (e) {
        throw this.translate(e);
      }
    }

    async guardAsync(fn) {
      if (this.broken) throw this.refusal();
      try {
        return await Promise.race([fn(this.glue), this.crashed]);
      } catch (e) {
        throw this.translate(e);
      }
    }

    translate(e) {
      if (e instanceof ConfigError || e instanceof EngineCrashError) return e;
      if (isCrash(e)) {
        // The trap itself, when it reaches a caller, becomes the cause.
        if (!this.broken || this.broken.cause === undefined) {
          this.broken = new EngineCrashError(crashText(this.panic), this.panic, { cause: e });
        }
        this.rejectCrashed(this.broken);
        return this.broken;
      }
      if (e instanceof Error && typeof e.field === 'string') return new ConfigError(e.message, e.field, { cause: e });
      if (e instanceof Error) return e;
      return new Error(`reprolab: ${String(e)}`);
    }

    refusal() {
      return new EngineCrashError(
        `reprolab: the engine crashed earlier (${this.broken.panic ?? 'a Rust panic'}); ` +
          'this object can no longer be used: create a new run',
        this.broken.panic,
        { cause: this.broken },
      );
    }
  }

  // The engine instance to use now: the first, or a fresh one after a crash
  // (made once, however many calls ask for it at the same time).
  let dead = null; // the last crashed instance, until a fresh one is made
  async function engine() {
    for (;;) {
      if (!current) {
        const after = dead;
        current = (async () => new Instance(after ? await loader.reload(after.glue, after.id + 1, wasmSource) : await loader.load(wasmSource)))();
      }
      const pending = current;
      let inst;
      try {
        inst = await pending;
      } catch (e) {
        if (current === pending) current = null;
        throw new Error(`reprolab: could not load the engine's WebAssembly (${e?.message ?? e})`, { cause: e });
      }
      if (!inst.broken) {
        if (current === pending) dead = null;
        return inst;
      }
      if (current === pending) {
        dead = inst;
        current = null;
      }
    }
  }

  async function init(options = {}) {
    if (!isPlainObject(options)) throw new ConfigError(`init: expected an object of options, got ${describe(options)}`, 'options');
    for (const key of Object.keys(options)) {
      if (key !== 'wasm') throw new ConfigError(`${key}: unknown option of init (known: wasm)`, key);
    }
    if (options.wasm !== undefined) {
      if (current) throw new Error('reprolab: init({ wasm }) must come before the engine is first used');
      wasmSource = options.wasm;
    }
    await engine();
  }

  async function defaults(inst) {
    return toObject(inst.guard((g) => g.defaultSettings()));
  }

  // Puts a freshly made engine Trainer into a Run (starting its workers).
  async function makeRun(inst, trainer, { workers, reason }) {
    let run;
    try {
      run = new Run(inst, trainer, reason);
    } catch (e) {
      if (!inst.broken) trainer.free();
      throw e;
    }
    try {
      await run[START_WORKERS](workers);
    } catch (e) {
      run.dispose();
      throw e;
    }
    return run;
  }

  // The backend to ask the engine for. Where there is no WebGPU (Node.js,
  // older browsers) the wrapper never asks the engine for `auto` or `gpu`: it
  // picks the CPU itself, saying why, or refuses a strict `gpu`.
  //   requested  the caller's backend (undefined: the engine's default, which
  //              for resume and rerun is the backend the run was recorded on)
  //   recorded   "gpu" when the run being continued ran on the GPU
  function engineBackend(requested, { free = [], recorded = 'cpu', forcesAuto = false } = {}) {
    if (hasWebGpu()) return { backend: requested, reason: null };
    const why = 'this JavaScript environment has no WebGPU (no navigator.gpu)';
    if (requested === 'gpu') throw new ConfigError(`backend gpu: ${why}`, 'backend');
    if (free.includes('backend') && forcesAuto) {
      throw new ConfigError(
        `free: backend set free means "whatever this machine offers", and ${why}: leave backend out of free and use backend "cpu"`,
        'free',
      );
    }
    if (requested === 'auto' || (requested === undefined && free.includes('backend'))) {
      return { backend: 'cpu', reason: `auto: running on the CPU because ${why}` };
    }
    if (requested === undefined && recorded === 'gpu') {
      throw new ConfigError(`backend: this run was recorded on the GPU and ${why}; pass backend "cpu" to continue it on the CPU`, 'backend');
    }
    return { backend: 'cpu', reason: null };
  }

  async function createRun(config, options) {
    const { free = [], backend = 'auto', workers } = checkOptions(options, RUN_OPTIONS, 'createRun');
    const inst = await engine();
    const settings = settingsOf(config, await defaults(inst));
    const pick = engineBackend(backend, { free, forcesAuto: true });
    const trainer = await inst.guardAsync((g) => g.Trainer.create(settings, free, pick.backend));
    return makeRun(inst, trainer, { workers, reason: pick.reason });
  }

  async function resumeRun(checkpoint, options) {
    const { backend, workers } = checkOptions(options, RESUME_OPTIONS, 'resumeRun');
    const text = documentText(checkpoint, 'checkpoint', CHECKPOINT_FIELDS);
    const inst = await engine();
    const pick = engineBackend(backend, { recorded: recordedBackend(text, (ck) => ck.manifest) });
    const trainer = await inst.guardAsync((g) => g.Trainer.resume(text, pick.backend));
    return makeRun(inst, trainer, { workers, reason: pick.reason });
  }

  async function rerun(manifest, options) {
    const { free = [], backend, workers } = checkOptions(options, RUN_OPTIONS, 'rerun');
    const text = documentText(manifest, 'manifest', MANIFEST_FIELDS);
    const inst = await engine();
    const pick = engineBackend(backend, { free, recorded: recordedBackend(text, (m) => m) });
    const trainer = await inst.guardAsync((g) => g.Trainer.rerun(text, free, pick.backend));
    return makeRun(inst, trainer, { workers, reason: pick.reason });
  }

  async function replay(manifest) {
    const text = documentText(manifest, 'manifest', MANIFEST_FIELDS);
    const inst = await engine();
    const r = toObject(inst.guard((g) => g.replayManifest(text)));
    return r.identical
      ? { identical: true, steps: r.steps }
      : { identical: false, step: r.step, recorded: r.recorded ?? null, replayed: r.replayed ?? null };
  }

  async function diff(a, b) {
    const ta = documentText(a, 'manifest', MANIFEST_FIELDS);
    const tb = documentText(b, 'manifest', MANIFEST_FIELDS);
    const inst = await engine();
    const d = toObject(inst.guard((g) => g.diffManifests(ta, tb)));
    return {
      identical: d.identical,
      firstDivergentStep: d.first_divergent_step ?? null,
      differences: d.differences.map(toObject).map(({ field, a: va, b: vb }) => ({ field, a: va, b: vb })),
      causes: d.causes,
    };
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
    return inst.guard((g) => g.sourceInfo()).map(toObject).map(({ name, explanation }) => ({ name, explanation }));
  }

  async function engineVersion() {
    const inst = await engine();
    return inst.guard((g) => g.engineVersion());
  }

  // Test hook: makes the engine panic, to test the recovery. Never call it otherwise.
  async function debugPanic() {
    const inst = await engine();
    inst.guard((g) => g.debugPanic());
    throw new Error('reprolab: debugPanic returned without panicking');
  }

  // ---- a run -------------------------------------------------------------------

  class Run {
    #inst;
    #trainer;
    #reason; // the wrapper's reason for the backend, when it chose the CPU itself
    #queue = Promise.resolve(); // steps run one after another
    #busy = 0; // steps queued or running
    #state = 'ready';
    #paused = false;
    #wake = []; // resolvers of loops waiting while paused
    #cancelled = false;
    #disposed = false;
    #last = null; // the last StepReport
    #step; // steps done, as of the last report
    #backend; // as of the last report
    #backendReason; // as of the last report
    #adapter; // as of the last report
    #arrivalOrder;
    #totalSteps;
    #pool = null;
    #workers = null; // {size, chunks} of the pool, kept after it ends with the run
    #config;
    #free;

    constructor(inst, trainer, reason) {
      this.#inst = inst;
      this.#trainer = trainer;
      this.#reason = reason;
      const manifest = JSON.parse(this.#call((t) => t.manifest()));
      this.#config = typedConfig(Object.fromEntries(Object.entries(manifest.config).map(([k, e]) => [k, e.value])));
      this.#free = [...manifest.free];
      this.#totalSteps = this.#call((t) => t.totalSteps);
      this.#step = this.#call((t) => t.stepsDone);
      this.#arrivalOrder = this.#call((t) => t.arrivalOrder);
      this.#readBackend();
      if (manifest.stopped) this.#state = 'stopped';
      else if (this.#step >= this.#totalSteps) this.#state = 'done';
    }

    // Starts the Web Workers of a CPU run with threads > 1: by default where
    // the environment has Web Workers, always with workers: true, never with
    // workers: false (the engine then computes the chunks itself: the same
    // bits when cpu_threads is pinned).
    async [START_WORKERS](workers) {
      const threads = this.#config.threads;
      if (workers === false || threads < 2 || this.#backend !== 'cpu') return;
      if (typeof globalThis.Worker !== 'function') {
        if (workers === true) throw new ConfigError('workers: this JavaScript environment has no Web Workers', 'workers');
        return;
      }
      const engine = {
        workerSetup: () => this.#call((t) => t.workerSetup()),
        chunkJob: () => toObject(this.#call((t) => t.chunkJob())),
        applyPartials: (partials) => this.#call((t) => t.applyPartials(partials)),
      };
      try {
        this.#pool = await WorkerPool.create(engine, threads);
        this.#workers = { size: this.#pool.size, chunks: this.#config.chunks };
      } catch (e) {
        if (e instanceof EngineCrashError) throw e;
        throw new Error(`reprolab: could not start ${threads} Web Workers (${e.message})`, { cause: e });
      }
    }

    // Where the run is and why, as of now (read when no step is running).
    #readBackend() {
      this.#backend = this.#call((t) => t.backend);
      const reason = this.#call((t) => t.backendReason);
      // The engine says "backend cpu" when the wrapper chose the CPU for it.
      this.#backendReason = this.#reason && reason === 'backend cpu' ? this.#reason : reason;
      this.#adapter = adapterOf(this.#call((t) => t.adapter));
    }

    // A synchronous call into this run's engine trainer.
    #call(fn) {
      this.#usable();
      return this.#inst.guard(() => fn(this.#trainer));
    }

    #usable() {
      if (this.#inst.broken) {
        this.#state = 'crashed';
        throw this.#inst.refusal();
      }
      if (this.#disposed) throw new Error('reprolab: this run was disposed; create a new run');
    }

    // For what reads the engine's record: refused while steps are running.
    #idle(what) {
      this.#usable();
      if (this.#busy) {
        throw new Error(`reprolab: ${what} while the run is taking steps: await step() (or the end of the metrics loop) first`);
      }
    }

    /** Where the next step runs: "gpu" or "cpu". */
    get backend() {
      return this.#backend;
    }

    /** Why this backend, in words. */
    get backendReason() {
      return this.#backendReason;
    }

    /** The GPU adapter, or null on the CPU. */
    get adapter() {
      return this.#adapter && { ...this.#adapter };
    }

    /** Steps completed. */
    get stepsDone() {
      return this.#step;
    }

    /** Steps the run asks for (the setting `steps`). */
    get totalSteps() {
      return this.#totalSteps;
    }

    /** ready, running, paused, done, stopped, cancelled, crashed or disposed. */
    get state() {
      if (this.#inst.broken) return 'crashed';
      if (this.#disposed) return 'disposed';
      return this.#state;
    }

    /** True once every step has run, or a non-finite value stopped the run. */
    get done() {
      return this.#state === 'done' || this.#state === 'stopped';
    }

    /** Every setting of this run, as typed values. */
    get config() {
      return { ...this.#config, hidden: [...this.#config.hidden] };
    }

    /** The sources set free. */
    get free() {
      return [...this.#free];
    }

    /** The Web Workers computing (or, once the run ended, that computed) the chunks of every batch, or null. */
    get workers() {
      return this.#workers && { ...this.#workers };
    }

    /** True when partial sums combine in order of arrival (cpu_threads free). */
    get arrivalOrder() {
      return this.#arrivalOrder;
    }

    /** Runs up to n steps, after any steps already asked for; resolves to a StepReport. */
    step(n = 1) {
      if (!Number.isInteger(n) || n < 1 || n > MAX_STEP) {
        return Promise.reject(new RangeError(`reprolab: step(n): n must be a whole number from 1 to ${MAX_STEP}, got ${describe(n)}`));
      }
      this.#busy += 1;
      const task = this.#queue.then(() => this.#runSteps(n));
      this.#queue = task.catch(() => {});
      return task.finally(() => {
        this.#busy -= 1;
      });
    }

    async #runSteps(n) {
      this.#usable();
      if (this.#cancelled) throw new Error(`reprolab: this run was cancelled after step ${this.#step}; it takes no more steps`);
      if (this.done && this.#last) return this.#last;
      if (this.#state === 'ready') this.#state = 'running';
      let raw = null;
      try {
        if (this.#pool) raw = await this.#poolSteps(n);
        if (raw === null) raw = await this.#inst.guardAsync(() => this.#trainer.step(n));
      } catch (e) {
        if (this.#inst.broken) this.#state = 'crashed';
        throw e;
      }
      const report = reportOf(raw);
      this.#last = report;
      this.#step = report.step;
      if (report.backend !== this.#backend) this.#readBackend(); // the GPU handed over to the CPU
      if (report.stopped) this.#state = 'stopped';
      else if (report.done) this.#state = 'done';
      else if (this.#paused && this.#state === 'running') this.#state = 'paused';
      if (this.done) this.#stopWorkers();
      return report;
    }

    // Steps whose chunks the Web Workers compute; null when the engine hands
    // out no chunk jobs (finished, or on the GPU). A failed worker fails the
    // step (nothing of it is applied) and ends the pool: later steps run in
    // the engine itself.
    async #poolSteps(n) {
      try {
        return await this.#pool.run(n);
      } catch (e) {
        if (e instanceof EngineCrashError) throw e;
        this.#stopWorkers();
        this.#workers = null;
        throw new Error(`reprolab: ${e.message}; later steps run without Web Workers`, { cause: e });
      }
    }

    /**
     * Trains to the end, yielding a report after every chunk of steps:
     * `every` steps, or (by default) chunks sized to take about `targetMs`.
     * Ends after the last step, on a stop, or after cancel(); waits while paused.
     */
    async *metrics(options = {}) {
      if (!isPlainObject(options)) throw new ConfigError(`metrics: expected an object of options, got ${describe(options)}`, 'options');
      for (const key of Object.keys(options)) {
        if (!['every', 'targetMs'].includes(key)) throw new ConfigError(`${key}: unknown option of metrics (known: every, targetMs)`, key);
      }
      const { every, targetMs = DEFAULT_TARGET_MS } = options;
      if (every !== undefined && !(Number.isInteger(every) && every >= 1 && every <= MAX_STEP)) {
        throw new ConfigError(`every: expected a whole number of steps from 1, got ${describe(every)}`, 'every');
      }
      if (!(typeof targetMs === 'number' && targetMs > 0 && Number.isFinite(targetMs))) {
        throw new ConfigError(`targetMs: expected a number of milliseconds above 0, got ${describe(targetMs)}`, 'targetMs');
      }
      this.#usable();
      const began = performance.now();
      let k = every ?? 1;
      while (!this.done && !this.#cancelled) {
        if (this.#paused) {
          await new Promise((resolve) => this.#wake.push(resolve));
          if (this.#disposed) return;
          this.#usable();
          continue;
        }
        const t0 = performance.now();
        const report = await this.step(Math.max(1, Math.min(k, this.#totalSteps - this.#step)));
        if (every === undefined) k = nextChunk(k, performance.now() - t0, targetMs);
        yield { ...report, elapsedMs: performance.now() - began };
        if (report.done || report.stopped) return;
        await yieldToEventLoop();
        if (this.#disposed) return; // disposed of meanwhile: the loop ends, as on cancel()
        this.#usable();
      }
    }

    /** Trains to the end, calling onMetrics with every report; resolves to the last report. */
    async train(options = {}) {
      if (!isPlainObject(options)) throw new ConfigError(`train: expected an object of options, got ${describe(options)}`, 'options');
      const { onMetrics, ...rest } = options;
      if (onMetrics !== undefined && typeof onMetrics !== 'function') {
        throw new ConfigError(`onMetrics: expected a function, got ${describe(onMetrics)}`, 'onMetrics');
      }
      let last = this.#last;
      for await (const m of this.metrics(rest)) {
        last = m;
        onMetrics?.(m);
      }
      return last ?? this.step(1);
    }

    /** Holds metrics() and train() loops after the chunk in flight. */
    pause() {
      this.#usable();
      if (this.#cancelled || this.done) return;
      this.#paused = true;
      if (!this.#busy) this.#state = 'paused';
    }

    /** Lets paused loops go on. */
    resume() {
      this.#usable();
      this.#paused = false;
      if (this.#state === 'paused') this.#state = this.#last ? 'running' : 'ready';
      for (const wake of this.#wake.splice(0)) wake();
    }

    /** Ends the run after the chunk in flight: loops end, later step() calls reject. */
    cancel() {
      if (this.#disposed || this.#inst.broken) return;
      if (!this.done) this.#state = 'cancelled';
      this.#cancelled = true;
      this.#paused = false;
      for (const wake of this.#wake.splice(0)) wake();
      this.#stopWorkers();
    }

    /** The training loss of every completed step. */
    trainLoss() {
      this.#idle('trainLoss()');
      return this.#call((t) => t.trainLoss());
    }

    /** The validation curve: [{step, valError, valLoss}]. */
    valCurve() {
      this.#idle('valCurve()');
      return this.#call((t) => t.valCurve())
        .map(toObject)
        .map((p) => ({ step: p.step, valError: p.val_error, valLoss: p.val_loss ?? null }));
    }

    /** The hash chain: one 16-hex-digit link per completed step. */
    hashChain() {
      this.#idle('hashChain()');
      return this.#call((t) => t.hashChain());
    }

    /** A copy of the weights as they stand (on the GPU: as last read back). */
    params() {
      this.#idle('params()');
      return this.#call((t) => t.params());
    }

    /** The manifest as JSON text, exactly as the engine writes it. */
    manifestJson() {
      this.#idle('manifest()');
      return this.#call((t) => t.manifest());
    }

    /** The manifest (docs/MANIFEST.md), as an object. */
    manifest() {
      return JSON.parse(this.manifestJson());
    }

    /** A checkpoint as JSON text; resumeRun continues it bit for bit. */
    checkpointJson() {
      this.#idle('checkpoint()');
      return this.#call((t) => t.checkpoint());
    }

    /** A checkpoint, as an object; resumeRun continues it bit for bit. */
    checkpoint() {
      return JSON.parse(this.checkpointJson());
    }

    /** The predicted class over an n x n grid of the square [lo, hi]^2 (2-D data sets). */
    decisionGrid(n, lo, hi) {
      this.#idle('decisionGrid()');
      if (!Number.isInteger(n) || n < 1) {
        throw new RangeError(`reprolab: decisionGrid(n, lo, hi): n must be a whole number from 1, got ${describe(n)}`);
      }
      if (![lo, hi].every((v) => typeof v === 'number' && Number.isFinite(v)) || !(lo < hi)) {
        throw new RangeError(`reprolab: decisionGrid(n, lo, hi): needs finite numbers lo < hi, got ${describe(lo)} and ${describe(hi)}`);
      }
      const g = toObject(this.#call((t) => t.decisionGrid(n, lo, hi)));
      return { n: g.n, classes: g.classes, predicted: g.predicted, confidence: g.confidence };
    }

    #stopWorkers() {
      this.#pool?.terminate();
      this.#pool = null;
    }

    /** Cancels the run and frees its memory in the engine; every later call is refused. */
    dispose() {
      if (this.#disposed) return;
      this.cancel();
      this.#disposed = true;
      const trainer = this.#trainer;
      const inst = this.#inst;
      // Freed once no step is using it; never on a crashed instance.
      this.#queue.finally(() => {
        if (!inst.broken) {
          try {
            trainer.free();
          } catch (e) {
            inst.translate(e);
          }
        }
      });
    }
  }

  if (typeof Symbol.dispose === 'symbol') {
    Run.prototype[Symbol.dispose] = function dispose() {
      this.dispose();
    };
  }

  return {
    init,
    createRun,
    resumeRun,
    rerun,
    replay,
    diff,
    defaultConfig,
    configHelp,
    sources,
    engineVersion,
    debugPanic,
    Run,
  };
}
