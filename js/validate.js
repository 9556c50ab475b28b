// Checks of what callers give the API (settings, options, arguments, records)
// before anything reaches the engine, and the conversions between the
// engine's shapes and the wrapper's. Every refusal is a ConfigError naming
// the field; the engine checks ranges, unknown keys and everything that
// involves several values, naming the field too.

import { ConfigError } from './errors.js';

export const BACKENDS = ['auto', 'gpu', 'cpu'];
export const MAX_STEP = 2 ** 32 - 1;

export const MANIFEST_FIELDS = ['manifest_version', 'config', 'free', 'seeds', 'data', 'steps_completed', 'hash_chain', 'checksum'];
export const CHECKPOINT_FIELDS = ['checkpoint_version', 'step', 'params_bits', 'velocity_bits', 'manifest', 'checksum'];

/** A value, in words, for messages (never the whole of a long value). */
export const describe = (v) => {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'bigint') return `the bigint ${v}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'function') return 'a function';
  if (v === undefined) return 'undefined';
  return `${typeof v} ${String(v)}`;
};

export const isPlainObject = (v) =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && [Object.prototype, null].includes(Object.getPrototypeOf(v));

// serde-wasm-bindgen may give a Map for a Rust map; accept either.
export const toObject = (v) => (v instanceof Map ? Object.fromEntries(v) : v);

/** A count of steps (step(n), metrics({every})): a whole number from 1 to 2^32-1. */
export function checkSteps(n, field, what) {
  if (!Number.isInteger(n) || n < 1 || n > MAX_STEP) {
    throw new ConfigError(`${what}: ${field} must be a whole number of steps from 1 to ${MAX_STEP}, got ${describe(n)}`, field);
  }
  return n;
}

/** An AbortSignal, or undefined. */
export function checkSignal(signal, what) {
  if (signal === undefined) return undefined;
  const isSignal =
    (typeof AbortSignal === 'function' && signal instanceof AbortSignal) ||
    (signal !== null && typeof signal === 'object' && typeof signal.aborted === 'boolean' && typeof signal.addEventListener === 'function');
  if (!isSignal) throw new ConfigError(`signal: ${what} expects an AbortSignal, got ${describe(signal)}`, 'signal');
  return signal;
}

/**
 * Checks the JavaScript types of a configuration and turns it into what the
 * engine takes (strings and numbers). Every value may be its text ("0.02",
 * "64,32"), as form fields give it: the engine parses and checks it.
 */
export function settingsOf(config, defaults) {
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
      throw new ConfigError(`${key}: the value is ${value}; give a value, or leave the key out for its default`, key);
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
        throw new ConfigError(`${key}: expected a number (or its text), got ${describe(value)}`, key);
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

/** Checks an options object against the keys `known`; returns it (or {}). */
export function checkOptions(options, known, what) {
  if (options === undefined || options === null) return {};
  if (!isPlainObject(options)) throw new ConfigError(`${what}: expected an object of options, got ${describe(options)}`, 'options');
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new ConfigError(`${key}: unknown option of ${what} (known: ${known.join(', ')})`, key);
    }
  }
  const { free, backend, workers, signal } = options;
  if (free !== undefined && !(Array.isArray(free) && free.every((s) => typeof s === 'string'))) {
    throw new ConfigError(`free: expected an array of source names, got ${describe(free)}`, 'free');
  }
  if (backend !== undefined && !BACKENDS.includes(backend)) {
    throw new ConfigError(`backend: expected auto, gpu or cpu, got ${describe(backend)}`, 'backend');
  }
  if (workers !== undefined && typeof workers !== 'boolean') {
    throw new ConfigError(`workers: expected true or false, got ${describe(workers)}`, 'workers');
  }
  checkSignal(signal, what);
  return options;
}

/** Engine config values (hidden as "64,64") as typed values. */
export function typedConfig(values) {
  const out = {};
  for (const [key, value] of Object.entries(values)) {
    if (key === 'hidden') out[key] = String(value) === '' ? [] : String(value).split(',').map(Number);
    else out[key] = value;
  }
  return out;
}

/**
 * A manifest or checkpoint given as an object or JSON text, as JSON text and
 * (where it parses) the object. `required` are the top-level fields it must
 * have (named when missing).
 */
export function documentOf(doc, what, required) {
  let obj = doc;
  if (typeof doc === 'string') {
    try {
      obj = JSON.parse(doc);
    } catch {
      return { text: doc, obj: null }; // the engine says what is wrong with it (truncated, ...)
    }
  }
  if (!isPlainObject(obj)) throw new ConfigError(`${what}: expected a ${what} object or its JSON text, got ${describe(doc)}`, what);
  for (const field of required) {
    if (!(field in obj)) throw new ConfigError(`${field}: the ${what} has no ${field} field`, field);
  }
  return { text: typeof doc === 'string' ? doc : JSON.stringify(doc), obj };
}
