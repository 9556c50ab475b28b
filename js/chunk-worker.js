// One Web Worker of the CPU-threads pool (threads.js): its own instance of
// the engine, rebuilt from the run's setup, computing one chunk of a batch at
// a time.
//
// Messages in:  {setup, module?}          the JSON text of the run's workerSetup() and the page's
//                                         compiled WebAssembly.Module; first, once (without a
//                                         module the worker fetches the .wasm itself)
//               {module?}                 load the engine only (a warm worker, before any run)
//               {step, chunk, params?, buffers?}
//                                         a chunk of a step's batch; params (a Float32Array,
//                                         transferred) come with a worker's first chunk of each
//                                         step, are copied into the engine and go back with the
//                                         reply; buffers are Float32Arrays (transferred) for the
//                                         gradients of later chunks
// Messages out: {hello: true}             first, once this script (its imports loaded) has its
//                                         message handler in place (the pool sends nothing before
//                                         it: a module worker's early messages can be lost)
//               {ready: true}             after the setup
//               {step, chunk, loss_sum, grads, params?}
//                                         grads a Float32Array, params the step's weights buffer
//                                         when it came with this request, both transferred
//               {error}                   a one-line message; the pool fails the step with it
//
// No buffer is allocated per step: the weights and gradients travel in
// buffers that go back and forth by transfer (no copy in postMessage), and
// the engine copies into and out of them once.
//
// The engine loads with the first message (from its module). Every failure,
// the engine's load included, comes back as {error} rather than a silent
// death. After a panic the worker answers every later message with the same
// error.

import init, { ChunkWorker } from '../www/pkg/reprolab.js';

let loaded = null; // the engine's initialisation, started by the first message
let worker = null;
let spare = []; // Float32Arrays for gradients, sent by the pool
const KEEP_SPARE = 4;
let crashed = null; // the message of the panic that ended this worker's engine

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
    spare = [];
    return [{ ready: true }, []];
  }
  if (msg.step === undefined) return [{ ready: true }, []]; // loaded, and kept warm
  if (!worker) throw new Error('a chunk job came before the setup');
  const n = worker.paramCount;
  for (const b of msg.buffers ?? []) if (b instanceof Float32Array && b.length === n && spare.length < KEEP_SPARE) spare.push(b);
  const reply = { step: msg.step, chunk: msg.chunk };
  const transfer = [];
  if (msg.params) {
    worker.loadStep(msg.step, msg.params);
    reply.params = msg.params; // back to the pool, for the next step
    transfer.push(msg.params.buffer);
  }
  const grads = spare.pop() ?? new Float32Array(n);
  reply.loss_sum = worker.partial(msg.step, msg.chunk, grads);
  reply.grads = grads;
  transfer.push(grads.buffer);
  return [reply, transfer];
}

// One message at a time, in the order they came: the pool matches the
// answers to its requests by their order.
let queue = Promise.resolve();
self.onmessage = (event) => {
  queue = queue.then(async () => {
    try {
      const [reply, transfer] = await handle(event.data);
      self.postMessage(reply, transfer);
    } catch (e) {
      self.postMessage({ error: errorText(e) });
    }
  });
};
self.postMessage({ hello: true });
