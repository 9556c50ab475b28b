// The engine's WebAssembly instances: loading the first, guarding every call
// into it, and replacing it after a crash.
//
//   - every call into the engine goes through `guard` (synchronous) or
//     `guardAsync`, which turn a Rust panic (a WebAssembly trap:
//     "unreachable") into an EngineCrashError, mark the instance broken, and
//     make the next call of the API start a fresh instance; objects of a
//     broken instance refuse every later call;
//   - the engine's own errors become the package's (errors.js: fromEngine).

import { EngineCrashError, EngineLoadError, ReprolabError, crashText, fromEngine, isCrash } from './errors.js';

// A panic inside an async export (Trainer.create, resume, rerun, a GPU step)
// happens in a microtask that the engine's futures queue through the global
// queueMicrotask, so its trap would be an uncaught exception (Node.js exits,
// a page logs "Uncaught RuntimeError"). While such calls are in flight, the
// global queueMicrotask wraps its callbacks: a WebAssembly trap there ends
// the instances in flight (their calls reject with an EngineCrashError) and
// goes no further; every other error is rethrown as it was. Put back as soon
// as no such call is in flight.
const trapping = new Set(); // instances with async calls in flight
let plainQueueMicrotask = null;

function catchTraps(inst) {
  trapping.add(inst);
  inst.asyncCalls += 1;
  if (plainQueueMicrotask || typeof globalThis.queueMicrotask !== 'function') return;
  const plain = globalThis.queueMicrotask;
  plainQueueMicrotask = plain;
  globalThis.queueMicrotask = function queueMicrotask(callback) {
    if (typeof callback !== 'function') return plain.call(this, callback);
    const during = [...trapping]; // the instances whose calls were in flight when it was queued
    return plain.call(this, () => {
      try {
        callback();
      } catch (e) {
        if (!(typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError)) throw e;
        // The instances that reported a panic; else every one in flight.
        const reported = during.filter((i) => i.panic !== null);
        for (const i of reported.length ? reported : during) i.translate(e);
      }
    });
  };
}

function releaseTraps(inst) {
  inst.asyncCalls -= 1;
  if (inst.asyncCalls === 0) trapping.delete(inst);
  if (trapping.size === 0 && plainQueueMicrotask) {
    globalThis.queueMicrotask = plainQueueMicrotask;
    plainQueueMicrotask = null;
  }
}

/** One instance of the engine: its glue's exports and whether it crashed. */
export class Instance {
  constructor(glue, id) {
    this.glue = glue;
    this.id = id;
    this.broken = null; // the EngineCrashError that ended it
    this.panic = null; // the panic's message, where the engine reports it
    // The rejecters of the async calls in flight: a call whose work runs in a
    // microtask (an async step on the GPU) dies with the instance and never
    // settles; a crash rejects it through here. Each call removes its own
    // entry when it settles, so nothing a call holds stays reachable.
    this.inFlight = new Set();
    this.asyncCalls = 0; // guardAsync calls in flight (catchTraps)
    // Engines that offer it report their panic's message before trapping.
    if (typeof glue.setPanicListener === 'function') {
      glue.setPanicListener((message) => {
        this.panic = String(message);
        this.broken ??= new EngineCrashError(crashText(this.panic), this.panic);
        this.#rejectInFlight();
      });
    }
  }

  #rejectInFlight() {
    for (const reject of [...this.inFlight]) reject(this.broken);
  }

  /** Runs fn(glue) (a call into the engine); a trap breaks this instance. */
  guard(fn, context) {
    if (this.broken) throw this.refusal();
    try {
      return fn(this.glue);
    } catch (e) {
      throw this.translate(e, context);
    }
  }

  /** As guard, for a call that returns a promise. */
  guardAsync(fn, context) {
    if (this.broken) return Promise.reject(this.refusal());
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = () => {
        if (settled) return false;
        settled = true;
        this.inFlight.delete(onCrash);
        releaseTraps(this);
        return true;
      };
      const onCrash = (e) => {
        if (done()) reject(e);
      };
      this.inFlight.add(onCrash);
      catchTraps(this);
      let pending;
      try {
        pending = Promise.resolve(fn(this.glue));
      } catch (e) {
        done();
        reject(this.translate(e, context));
        return;
      }
      pending.then(
        (value) => {
          if (done()) resolve(value);
        },
        (e) => {
          if (done()) reject(this.translate(e, context));
        },
      );
    });
  }

  /** The package's error for what a call into the engine threw. */
  translate(e, context) {
    if (e instanceof ReprolabError) return e;
    if (isCrash(e)) {
      // The trap itself, when it reaches a caller, becomes the cause.
      if (!this.broken || this.broken.cause === undefined) {
        this.broken = new EngineCrashError(crashText(this.panic), this.panic, { cause: e });
      }
      this.#rejectInFlight();
      return this.broken;
    }
    return fromEngine(e, context);
  }

  /** The error of every call on an object of this instance after its crash. */
  refusal() {
    return new EngineCrashError(
      `reprolab: the engine crashed earlier (${this.broken.panic ?? 'a Rust panic'}); ` + 'this object can no longer be used: create a new run',
      this.broken.panic,
      { cause: this.broken },
    );
  }
}

/**
 * The engine instances of one API, made by a loader:
 *   load(wasm)        initialises the engine's glue (wasm: an optional source
 *                     of the .wasm) and resolves to {glue, module}, module
 *                     the compiled WebAssembly.Module (for Web Workers)
 *   reload(glue, n, module)
 *                     a fresh instance after a crash (the n-th), from the
 *                     compiled module, resolving to the glue to use then
 */
export function instances(loader) {
  let wasmSource; // what init({ wasm }) was given
  let count = 0;
  let current = null; // Promise of the current instance
  let dead = null; // the last crashed instance, until a fresh one is made
  let module = null; // the compiled module, once loaded

  async function make(after) {
    if (!after) {
      const loaded = await loader.load(wasmSource);
      module = loaded.module ?? null;
      return new Instance(loaded.glue, ++count);
    }
    return new Instance(await loader.reload(after.glue, after.id + 1, module ?? wasmSource), ++count);
  }

  /** The instance to use now: the first, or a fresh one after a crash (made once, however many calls ask at the same time). */
  async function engine() {
    for (;;) {
      if (!current) current = make(dead);
      const pending = current;
      let inst;
      try {
        inst = await pending;
      } catch (e) {
        if (current === pending) current = null;
        if (e instanceof ReprolabError) throw e;
        throw new EngineLoadError(`reprolab: could not load the engine's WebAssembly (${e?.message ?? e})`, { cause: e });
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

  return {
    engine,
    /** Sets where the .wasm comes from; only before the first load. */
    setSource(wasm) {
      if (current || count) throw new ReprolabError('reprolab: init({ wasm }) must come before the engine is first used', 'engine');
      wasmSource = wasm;
    },
    /** The compiled WebAssembly.Module, once loaded (null where the loader keeps none). */
    module: () => module,
  };
}
