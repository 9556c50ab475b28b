// One Web Worker of the CPU-threads pool (threads.js): its own instance of
// the engine, rebuilt from the run's setup, computing one chunk of a batch at
// a time.
//
// Messages in:  {setup, module?}          the JSON text of the run's workerSetup() and the page's
//                                         compiled WebAssembly.Module; first, once (without a
//                                         module the worker fetches the .wasm itself)
//               {module?}                 load the engine only (a warm worker, before any run)
//               {step, chunk, params?}    a chunk of a step's batch; params (Float32Array) come
//                                         with a worker's first chunk of each step and are kept
// Messages out: {hello: true}             first, once this script (its imports loaded) has its
//                                         message handler in place (the pool sends nothing before
//                                         it: a module worker's early messages can be lost)
//               {ready: true}             after the setup
//               {chunk, loss_sum, grads}  grads a Float32Array, its buffer transferred
//               {error}                   a one-line message; the pool fails the step with it
//
// The engine loads with the first message (from its module). Every failure,
// the engine's load included, comes back as {error} rather than a silent
// death. After a panic the worker answers every later message with the same
// error.

import init, { ChunkWorker } from '../www/pkg/reprolab.js';

let loaded = null; // the engine's initialisation, started by the first message
let worker = null;
let params = null; // the weights of the step being computed
let paramsStep = -1;
let crashed = null; // the message of the panic that ended this worker's engine

// serde-wasm-bindgen may give a Map for a Rust struct; accept either.
const toObject = (value) => (value instanceof Map ? Object.fromEntries(value) : value);

function errorText(e) {
  // A Rust panic reaches JS as a WebAssembly.RuntimeError ("unreachable").
  if (e instanceof WebAssembly.RuntimeError) {
    crashed ??= `the engine crashed in this Web Worker (${e.name}; the panic message, if any, is in the console)`;
    return crashed;
  }
  return e instanceof Error ? e.message : String(e);
}

async function handle(msg) {
  loaded ??= init(msg.module instanceof WebAssembly.Module ? { module_or_path: msg.module } : undefined);
  try {
    await loaded;
  } catch (e) {
    throw new Error(`could not load the engine's WebAssembly (${errorText(e)})`);
  }
  if (crashed) throw new Error(crashed);
  if (msg.setup !== undefined) {
    worker?.free();
    worker = new ChunkWorker(msg.setup);
    return [{ ready: true }, []];
  }
  if (msg.step === undefined) return [{ ready: true }, []]; // loaded, and kept warm
  if (!worker) throw new Error('a chunk job came before the setup');
  if (msg.params) {
    params = msg.params;
    paramsStep = msg.step;
  }
  if (paramsStep !== msg.step) throw new Error(`chunk ${msg.chunk} of step ${msg.step} came without the weights`);
  const out = toObject(worker.partial(msg.step, msg.chunk, params));
  let grads = out.grads instanceof Float32Array ? out.grads : Float32Array.from(out.grads);
  // Only a buffer of its own can be transferred (never a view into the wasm memory).
  if (grads.byteOffset !== 0 || grads.byteLength !== grads.buffer.byteLength) grads = grads.slice();
  return [{ step: out.step, chunk: out.chunk, loss_sum: out.loss_sum, grads }, [grads.buffer]];
}

self.onmessage = async (event) => {
  try {
    const [reply, transfer] = await handle(event.data);
    self.postMessage(reply, transfer);
  } catch (e) {
    self.postMessage({ error: errorText(e) });
  }
};
self.postMessage({ hello: true });
