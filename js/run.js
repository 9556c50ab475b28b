// A training run: the Run class of the API around one engine Trainer.
//
// Work is queued (steps run one after another, in the order asked). On the
// CPU, which computes in the caller's thread, it is cut into slices of about
// SLICE_MS, with a macrotask between slices whenever a few milliseconds of
// work have gone by (schedule.js), so the page's timers, input and rendering
// keep running, and pause(), cancel() and an AbortSignal take effect at the
// next slice. On the GPU the thread is free while the GPU works; a piece of
// work (a step(n) call, a metrics chunk) is one engine call, since each ends
// with a read-back of the weights.
//
// A run that is dropped without dispose() is freed when it is garbage
// collected: a FinalizationRegistry frees its engine Trainer and stops its
// Web Workers. Nothing long-lived (the engine instance, a signal) holds a
// run: the registry's held value holds the trainer and the pool, never the
// run.

import {
  ConfigError,
  EngineCrashError,
  ReprolabError,
  RunBusyError,
  RunCancelledError,
  RunDisposedError,
  abortError,
  throwIfAborted,
} from './errors.js';
import { backendDecisionOf } from './records.js';
import { SLICE_MS, breathe, nextChunk } from './schedule.js';
import { WorkerPool } from './threads.js';
import { checkOptions, checkSignal, checkSteps, describe, isPlainObject, toObject, typedConfig } from './validate.js';

const DEFAULT_TARGET_MS = 15;
const TOKEN = Symbol('Run');
const now = () => performance.now();

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

// A fix of an inert source: {set: {key: value}}, {backend}, or null.
function fixOf(f) {
  f = toObject(f);
  if (!f) return null;
  return f.set ? { set: { ...toObject(f.set) } } : { ...f };
}

function adapterOf(a) {
  a = toObject(a);
  if (!a) return null;
  return { vendor: a.vendor, architecture: a.architecture, description: a.description, graphicsBackend: a.graphics_backend };
}

// What a run leaves to free: its engine Trainer and its Web Workers. Never
// on a crashed instance (its memory is gone, or already someone else's).
function release(held) {
  held.pool?.terminate();
  held.pool = null;
  const { trainer, inst } = held;
  held.trainer = null;
  if (trainer && !inst.broken) {
    try {
      trainer.free();
    } catch (e) {
      inst.translate(e);
    }
  }
}

// Frees what a run that was dropped without dispose() held, once it is
// garbage collected.
const dropRegistry = typeof FinalizationRegistry === 'function' ? new FinalizationRegistry(release) : null;

function metricsOptions(options, what) {
  if (options === undefined) options = {};
  if (!isPlainObject(options)) throw new ConfigError(`${what}: expected an object of options, got ${describe(options)}`, 'options');
  for (const key of Object.keys(options)) {
    if (!['every', 'targetMs', 'signal'].includes(key)) throw new ConfigError(`${key}: unknown option of ${what} (known: every, targetMs, signal${what === 'train()' ? ', onMetrics' : ''})`, key);
  }
  const { every, targetMs = DEFAULT_TARGET_MS, signal } = options;
  if (every !== undefined) checkSteps(every, 'every', `${what.slice(0, -1)}{ every })`);
  if (!(typeof targetMs === 'number' && targetMs > 0 && Number.isFinite(targetMs))) {
    throw new ConfigError(`targetMs: expected a number of milliseconds above 0, got ${describe(targetMs)}`, 'targetMs');
  }
  checkSignal(signal, what);
  return { every, targetMs, signal };
}

/** A training run, on the GPU (WebGPU) or the CPU. Made by createRun, resumeRun and rerun. */
export class Run {
  #inst;
  #trainer;
  #held; // {inst, trainer, pool}: what finalization frees
  #queue = Promise.resolve(); // work runs one piece after another
  #freed = null; // resolves once the engine's memory is freed (after dispose)
  #busy = 0; // pieces of work queued or running
  #loops = 0; // metrics() loops running
  #paused = false;
  #wake = new Set(); // wakers of loops waiting while paused
  #cancelled = false;
  #disposed = false;
  #end = null; // "done" or "stopped"
  #last = null; // the last StepReport
  #slice = 1; // steps per slice, sized to take about SLICE_MS
  #step; // steps done, as of the last report
  #backend; // as of the last report
  #decision; // as of the last report
  #adapter; // as of the last report
  #level; // {level, reason}, as of the last report
  #inert; // the engine's inertSources, as of the last report
  #software; // the engine's adapterIsSoftware, as of the last report
  #arrivalOrder;
  #totalSteps;
  #pool = null;
  #workers = null; // {size, chunks} of the pool, kept after it ends with the run
  #config;
  #free;

  constructor(token, inst, trainer) {
    if (token !== TOKEN) throw new TypeError('reprolab: a Run is made by createRun, resumeRun or rerun');
    this.#inst = inst;
    this.#trainer = trainer;
    this.#held = { inst, trainer, pool: null };
    const manifest = JSON.parse(this.#call((t) => t.manifest()));
    this.#config = typedConfig(Object.fromEntries(Object.entries(manifest.config).map(([k, e]) => [k, e.value])));
    this.#free = [...manifest.free];
    this.#totalSteps = this.#call((t) => t.totalSteps);
    this.#step = this.#call((t) => t.stepsDone);
    this.#arrivalOrder = this.#call((t) => t.arrivalOrder);
    this.#readBackend();
    if (manifest.stopped) this.#end = 'stopped';
    else if (this.#step >= this.#totalSteps) this.#end = 'done';
    dropRegistry?.register(this, this.#held, this.#held);
  }

  /**
   * Makes a Run of a fresh engine Trainer, starting its Web Workers; frees
   * the trainer if that fails or `signal` aborts meanwhile.
   */
  static async make(inst, trainer, { workers, module, signal, what }) {
    let run;
    try {
      run = new Run(TOKEN, inst, trainer);
    } catch (e) {
      if (!inst.broken) trainer.free();
      throw e;
    }
    try {
      await run.#startWorkers(workers, module);
      throwIfAborted(signal, what);
    } catch (e) {
      run.dispose();
      throw e;
    }
    return run;
  }

  // Starts the Web Workers of a CPU run with threads > 1: by default where
  // the environment has Web Workers, always with workers: true, never with
  // workers: false (the engine then computes the chunks itself: the same
  // bits when cpu_threads is pinned). The workers get the compiled module.
  async #startWorkers(workers, module) {
    const threads = this.#config.threads;
    if (workers === false || threads < 2 || this.#backend !== 'cpu') return;
    // The WebAssembly-threads build (js/threaded.js) computes the chunks on
    // its own pool of Web Workers, which share its memory.
    if (this.#inst.guard((g) => g.sharedMemoryThreads?.() === true)) {
      this.#workers = { size: 0, threads, chunks: this.#config.chunks, shared: true };
      return;
    }
    if (typeof globalThis.Worker !== 'function') {
      if (workers === true) throw new ConfigError('workers: this JavaScript environment has no Web Workers', 'workers');
      return;
    }
    // The pool's view of the engine holds the trainer, never the run.
    const inst = this.#inst;
    const trainer = this.#trainer;
    const engine = {
      workerSetup: () => inst.guard(() => trainer.workerSetup()),
      chunkJob: () => toObject(inst.guard(() => trainer.chunkJob())),
      get paramCount() {
        return inst.guard(() => trainer.paramCount);
      },
      writeParams: (out) => inst.guard(() => trainer.writeParams(out)),
      takePartial: (step, chunk, lossSum, grads) => inst.guard(() => trainer.takePartial(step, chunk, lossSum, grads)),
      applyPartials: () => inst.guard(() => trainer.applyPartials()),
      computeChunk: (step, chunk) => inst.guard(() => trainer.computeChunk(step, chunk)),
      get arrivalOrder() {
        return inst.guard(() => trainer.arrivalOrder);
      },
    };
    try {
      this.#pool = await WorkerPool.create(engine, threads, module);
      this.#held.pool = this.#pool;
      this.#workers = { size: this.#pool.size, threads: this.#pool.threads, chunks: this.#config.chunks };
    } catch (e) {
      if (e instanceof ReprolabError) throw e;
      throw new ReprolabError(`reprolab: could not start the Web Workers of ${threads} threads (${e.message})`, 'engine', { cause: e });
    }
  }

  // Where the run is and why, as of now (read when no step is running).
  #readBackend() {
    this.#backend = this.#call((t) => t.backend);
    this.#decision = this.#call((t) => backendDecisionOf(t));
    this.#adapter = adapterOf(this.#call((t) => t.adapter));
    this.#level = { level: this.#call((t) => t.level), reason: this.#call((t) => t.levelReason) };
    this.#inert = (toObject(this.#call((t) => t.inertSources)) ?? []).map((e) => {
      e = toObject(e);
      return { source: e.source, acts: e.acts, why: e.why, fix: fixOf(e.fix) };
    });
    this.#software = this.#call((t) => t.adapterIsSoftware);
  }

  // A synchronous call into this run's engine trainer.
  #call(fn) {
    this.#usable();
    return this.#inst.guard(() => fn(this.#trainer));
  }

  #usable() {
    if (this.#inst.broken) throw this.#inst.refusal();
    if (this.#disposed) throw new RunDisposedError('reprolab: this run was disposed; create a new run');
  }

  // For what reads the engine's record: refused while steps are running.
  #idle(what) {
    this.#usable();
    if (this.#busy) {
      throw new RunBusyError(`reprolab: ${what} while the run is taking steps: await step() (or the end of the metrics loop) first`);
    }
  }

  /** Where the next step runs: "gpu" or "cpu". */
  get backend() {
    return this.#backend;
  }

  /** Why this backend, in words. */
  get backendReason() {
    return this.#decision.text;
  }

  /** Why this backend, as data: {backend, kind, text}. */
  get backendDecision() {
    return { ...this.#decision };
  }

  /** The GPU adapter, or null on the CPU. */
  get adapter() {
    return this.#adapter && { ...this.#adapter };
  }

  /** The determinism level granted: "none", "run-to-run" or "exact" (the manifest's level_granted). */
  get level() {
    return this.#level.level;
  }

  /** Why the level is what it is, in words (the manifest's level_reason). */
  get levelReason() {
    return this.#level.reason;
  }

  /** The free sources that could not act in this run: [{source, acts: false, why, fix}]. */
  get inertSources() {
    return this.#inert.map((e) => ({ ...e, fix: e.fix && structuredClone(e.fix) }));
  }

  /** True when the run trains on a software GPU adapter (SwiftShader, lavapipe): the GPU emulated on the CPU. */
  get adapterIsSoftware() {
    return this.#software;
  }

  /** Steps completed. */
  get stepsDone() {
    return this.#step;
  }

  /** Steps the run asks for (the setting `steps`). */
  get totalSteps() {
    return this.#totalSteps;
  }

  /**
   * ready (more steps to take, none being taken), running (steps being
   * taken, or a metrics loop under way), paused, done, stopped, cancelled,
   * crashed or disposed.
   */
  get state() {
    if (this.#inst.broken) return 'crashed';
    if (this.#disposed) return 'disposed';
    if (this.#end) return this.#end;
    if (this.#cancelled) return 'cancelled';
    if (this.#busy) return 'running';
    if (this.#paused) return 'paused';
    return this.#loops ? 'running' : 'ready';
  }

  /** True once every step has run, or a non-finite value stopped the run. */
  get done() {
    return this.#end !== null;
  }

  /** Every setting of this run, as typed values. */
  get config() {
    return { ...this.#config, hidden: [...this.#config.hidden] };
  }

  /** The sources set free. */
  get free() {
    return [...this.#free];
  }

  /** The Web Workers computing (or, once the run ended, that computed) the chunks of every batch beside the run's own thread, or null. */
  get workers() {
    return this.#workers && { ...this.#workers };
  }

  /** True when partial sums combine in order of arrival (cpu_threads free). */
  get arrivalOrder() {
    return this.#arrivalOrder;
  }

  /** Runs up to n steps, after any steps already asked for; resolves to a StepReport. */
  step(n = 1, options = undefined) {
    let signal;
    try {
      checkSteps(n, 'n', 'step(n)');
      ({ signal } = checkOptions(options, ['signal'], 'step'));
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#enqueue(n, { signal, hold: false, what: 'step()' });
  }

  #enqueue(n, how) {
    this.#busy += 1;
    const task = this.#queue.then(() => this.#runSteps(n, how));
    this.#queue = task.catch(() => {});
    return task.finally(() => {
      this.#busy -= 1;
    });
  }

  // Up to n steps, slice by slice, with a macrotask before a slice whenever
  // a few milliseconds of work have gone by (schedule.js). What the event
  // loop ran meanwhile (a timer calling pause() or cancel(), an abort) is
  // seen before the next slice starts. `hold` (a metrics loop): returns
  // early, with the report so far (null if none), on pause() or cancel().
  // Else a cancel() ends it with the report so far, and one that came before
  // its first slice rejects.
  async #runSteps(n, { signal, hold, what }) {
    const goal = Math.min(this.#step + n, this.#totalSteps);
    let report = null;
    for (;;) {
      await breathe();
      if (this.#inst.broken) throw this.#inst.refusal();
      if (this.#cancelled || this.#disposed) {
        if (report || hold) break;
        if (this.#disposed) throw new RunDisposedError('reprolab: this run was disposed; create a new run');
        if (!this.#end) throw new RunCancelledError(`reprolab: this run was cancelled after step ${this.#step}; it takes no more steps`);
      }
      throwIfAborted(signal, what);
      if (hold && this.#paused) break;
      // A finished run answers with its last report (read from the engine if it has none yet).
      if (this.#end) return report ?? this.#last ?? this.#take(await this.#advance(1));
      if (this.#step >= goal) break;
      // The CPU computes in this thread: slices. The GPU computes while this
      // thread waits (the event loop runs meanwhile), and every engine call
      // there ends with a read-back of the weights: the whole piece at once.
      const k = this.#backend === 'gpu' ? goal - this.#step : Math.min(this.#slice, goal - this.#step);
      const t0 = now();
      report = this.#take(await this.#advance(k));
      this.#slice = nextChunk(this.#slice, now() - t0, SLICE_MS);
      if (this.#end || this.#step >= goal) break;
    }
    return report;
  }

  // k steps in the engine (or its Web Workers); the engine's raw report.
  async #advance(k) {
    let raw = null;
    if (this.#pool) raw = await this.#poolSteps(k);
    if (raw === null) raw = await this.#inst.guardAsync(() => this.#trainer.step(k));
    return raw;
  }

  #take(raw) {
    const report = reportOf(raw);
    this.#last = report;
    this.#step = report.step;
    if (report.backend !== this.#backend) this.#readBackend(); // the GPU handed over to the CPU
    if (report.stopped) this.#end = 'stopped';
    else if (report.done) this.#end = 'done';
    if (this.#end) this.#stopWorkers();
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
      throw new ReprolabError(`reprolab: ${e.message}; later steps run without Web Workers`, 'engine', { cause: e });
    }
  }

  // Waits while paused; wakes on resume(), cancel(), dispose() or an abort.
  #whilePaused(signal, what) {
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        this.#wake.delete(wake);
        signal?.removeEventListener('abort', abort);
      };
      const wake = () => {
        cleanup();
        resolve();
      };
      const abort = () => {
        cleanup();
        reject(abortError(signal, what));
      };
      this.#wake.add(wake);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  /**
   * Trains to the end, yielding a report after every chunk of steps:
   * `every` steps, or (by default) chunks sized to take about `targetMs`.
   * Ends after the last step, on a stop, or after cancel(); waits while
   * paused; an aborted `signal` rejects with an AbortError.
   */
  metrics(options) {
    return this.#loop(options, 'metrics()');
  }

  async *#loop(options, what) {
    const { every, targetMs, signal } = metricsOptions(options, what);
    this.#usable();
    throwIfAborted(signal, what);
    this.#loops += 1;
    try {
      const began = now();
      let k = every ?? 1;
      let goal = null; // the step of the next report
      while (!this.#end && !this.#cancelled && !this.#disposed) {
        if (this.#paused) {
          await this.#whilePaused(signal, what);
          continue;
        }
        goal ??= Math.min(this.#totalSteps, this.#step + (every ?? k));
        const t0 = now();
        await this.#enqueue(Math.max(1, goal - this.#step), { signal, hold: true, what });
        if (!this.#end && this.#step < goal) continue; // held by pause() or cancel() mid-chunk
        if (every === undefined) k = nextChunk(k, now() - t0, targetMs);
        goal = null;
        yield { ...this.#last, elapsedMs: now() - began };
      }
    } finally {
      this.#loops -= 1;
    }
  }

  /** Trains to the end, calling onMetrics with every report; resolves to the last report. */
  async train(options = {}) {
    if (!isPlainObject(options)) throw new ConfigError(`train: expected an object of options, got ${describe(options)}`, 'options');
    const { onMetrics, ...rest } = options;
    if (onMetrics !== undefined && typeof onMetrics !== 'function') {
      throw new ConfigError(`onMetrics: expected a function, got ${describe(onMetrics)}`, 'onMetrics');
    }
    for await (const m of this.#loop(rest, 'train()')) onMetrics?.(m);
    return this.#last ?? this.step(1);
  }

  /**
   * Holds metrics() and train() loops at the next slice; resolves once the
   * work in flight at the call has ended (at once on the CPU, where the
   * caller runs between slices; after the GPU's slice in flight there).
   */
  pause() {
    this.#usable();
    if (this.#cancelled || this.#end) return Promise.resolve();
    this.#paused = true;
    return this.#queue.then(() => {});
  }

  /** Lets paused loops go on. */
  resume() {
    this.#usable();
    this.#paused = false;
    for (const wake of [...this.#wake]) wake();
  }

  /** Ends the run at the next slice: loops end, a step() in flight resolves with the steps done, later step() calls reject. */
  cancel() {
    if (this.#disposed || this.#inst.broken) return;
    this.#cancelled = true;
    this.#paused = false;
    for (const wake of [...this.#wake]) wake();
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
      throw new ConfigError(`decisionGrid(n, lo, hi): n must be a whole number from 1, got ${describe(n)}`, 'n');
    }
    if (![lo, hi].every((v) => typeof v === 'number' && Number.isFinite(v)) || !(lo < hi)) {
      throw new ConfigError(`decisionGrid(n, lo, hi): needs finite numbers lo < hi, got ${describe(lo)} and ${describe(hi)}`, 'lo');
    }
    const g = toObject(this.#call((t) => t.decisionGrid(n, lo, hi)));
    return { n: g.n, classes: g.classes, predicted: g.predicted, confidence: g.confidence };
  }

  /**
   * The examples the run trains on (its training split, in split order):
   * {dim, classes, n, x: Float32Array (n x dim, row by row), labels: Uint8Array}.
   * On a 2-D data set, x lies in the square that decisionGrid spans.
   */
  dataPoints() {
    this.#idle('dataPoints()');
    const p = toObject(this.#call((t) => t.dataPoints()));
    return { dim: p.dim, classes: p.classes, n: p.n, x: p.x, labels: p.labels };
  }

  #stopWorkers() {
    this.#pool?.terminate();
    this.#pool = null;
    this.#held.pool = null;
  }

  /** Cancels the run and frees its memory in the engine; every later call is refused. */
  dispose() {
    if (this.#disposed) return;
    this.cancel();
    this.#disposed = true;
    dropRegistry?.unregister(this.#held);
    const held = this.#held;
    // Freed once no step is using it.
    this.#freed = this.#queue.finally(() => release(held));
  }

  /** `using run = await createRun(...)`: dispose() at the end of the scope. */
  [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() {
    this.dispose();
  }

  /** `await using run = await createRun(...)`: dispose(), resolving once the engine's memory is freed. */
  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    this.dispose();
    await this.#freed;
  }
}
