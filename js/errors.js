// The errors of the reprolab package. Every error the wrapper rejects with
// is a ReprolabError with a `code`, except a cancellation by an AbortSignal,
// which rejects with a DOMException named "AbortError" (the platform's own
// convention: `e.name === 'AbortError'`), its `cause` the signal's reason.
//
//   code                 class                  when
//   invalid_settings     ConfigError            a setting, an option or an argument refused (`field` names it)
//   limit                ConfigError            a resource limit (parameters, layers, batch x width, ...)
//   backend_unavailable  ConfigError            a strict `gpu` without a usable GPU (`field` is "backend")
//   invalid_record       RecordError            a manifest or checkpoint refused (edited, truncated, ...)
//   busy                 RunBusyError           the record read while the run is taking steps
//   cancelled            RunCancelledError      a step asked of a cancelled run
//   disposed             RunDisposedError       any call on a disposed run
//   crashed              EngineCrashError       the engine panicked (a bug, or memory ran out)
//   engine_load          EngineLoadError        the engine's WebAssembly could not be fetched or compiled
//   engine               ReprolabError          any other failure inside the engine

/** The base of every error of this package; `code` says which failure it is. */
export class ReprolabError extends Error {
  constructor(message, code = 'engine', options) {
    super(message, options);
    this.name = 'ReprolabError';
    this.code = code;
  }
}

/** A setting, an option or an argument that was refused; `field` names it. */
export class ConfigError extends ReprolabError {
  constructor(message, field, options, code = 'invalid_settings') {
    super(message, code, options);
    this.name = 'ConfigError';
    this.field = field;
  }
}

/** A manifest or a checkpoint that the engine refused. */
export class RecordError extends ReprolabError {
  constructor(message, options) {
    super(message, 'invalid_record', options);
    this.name = 'RecordError';
  }
}

/** The run's record was read while it was taking steps. */
export class RunBusyError extends ReprolabError {
  constructor(message, options) {
    super(message, 'busy', options);
    this.name = 'RunBusyError';
  }
}

/** A step was asked of a cancelled run. */
export class RunCancelledError extends ReprolabError {
  constructor(message, options) {
    super(message, 'cancelled', options);
    this.name = 'RunCancelledError';
  }
}

/** A disposed run was used. */
export class RunDisposedError extends ReprolabError {
  constructor(message, options) {
    super(message, 'disposed', options);
    this.name = 'RunDisposedError';
  }
}

/**
 * The engine panicked (a bug in reprolab, or memory ran out). The run that
 * was using it, and every other run of the same engine instance, refuses
 * every later call; the next createRun (or resumeRun, rerun, ...) starts a
 * fresh instance.
 */
export class EngineCrashError extends ReprolabError {
  constructor(message, panic, options) {
    super(message, 'crashed', options);
    this.name = 'EngineCrashError';
    this.panic = panic ?? null;
  }
}

/** The engine's WebAssembly could not be loaded (fetched, compiled or instantiated). */
export class EngineLoadError extends ReprolabError {
  constructor(message, options) {
    super(message, 'engine_load', options);
    this.name = 'EngineLoadError';
  }
}

// Messages the engine's glue gives when the instance is no longer usable.
const CRASH_MESSAGES =
  /unreachable|recursive use of an object detected|attempted to take ownership of Rust value while it was borrowed|null pointer passed to rust|Invalid stale object from previous Wasm instance|Module terminated/;

/** True when `e` (thrown by a call into the engine) means that the instance died. */
export function isCrash(e) {
  return (
    (typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError) ||
    (e instanceof Error && !(e instanceof ReprolabError) && typeof e.code !== 'string' && typeof e.field !== 'string' && CRASH_MESSAGES.test(e.message))
  );
}

// The words of a crash: the panic's message where the engine reported it,
// else a pointer to the console (where the engine's panic hook logs it). The
// trap itself ("unreachable") stays in `cause`.
export function crashText(panic) {
  const what = panic ?? 'a Rust panic; its message is in the console';
  return `reprolab: the engine crashed (${what}); create a new run`;
}

/**
 * An error the engine threw (not a crash), as the package's own: the engine's
 * `code` (and `field`) where it gives them; `record` says that the call read
 * a manifest or checkpoint, so that an engine without codes still gets a
 * RecordError for a refused record.
 */
export function fromEngine(e, { record = false } = {}) {
  if (e instanceof ReprolabError) return e;
  if (!(e instanceof Error)) return new ReprolabError(`reprolab: ${String(e)}`, 'engine');
  const code = typeof e.code === 'string' ? e.code : null;
  const field = typeof e.field === 'string' ? e.field : null;
  const options = { cause: e };
  switch (code) {
    case 'invalid_settings':
    case 'limit':
      return new ConfigError(e.message, field ?? 'config', options, code);
    case 'backend_unavailable':
      return new ConfigError(e.message, field ?? 'backend', options, code);
    case 'invalid_record':
      return new RecordError(e.message, options);
    case 'busy':
      return new RunBusyError(e.message, options);
    case null:
      if (field) return new ConfigError(e.message, field, options);
      return record ? new RecordError(e.message, options) : new ReprolabError(e.message, 'engine', options);
    default:
      return new ReprolabError(e.message, code, options);
  }
}

/**
 * The rejection of a call cancelled by an AbortSignal: a DOMException named
 * AbortError (as fetch gives), whose `cause` is the signal's reason.
 */
export function abortError(signal, what) {
  const reason = signal?.reason;
  const why = reason instanceof Error && reason.name !== 'AbortError' ? ` (${reason.name}: ${reason.message})` : '';
  const e = new DOMException(`reprolab: ${what} was aborted${why}`, 'AbortError');
  if (reason !== undefined) {
    try {
      Object.defineProperty(e, 'cause', { value: reason, configurable: true, writable: true });
    } catch {
      // a frozen DOMException: the reason is in the message
    }
  }
  return e;
}

/** Throws the AbortError of `signal` when it has been aborted. */
export function throwIfAborted(signal, what) {
  if (signal?.aborted) throw abortError(signal, what);
}
