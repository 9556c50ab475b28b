// The wrapper's crash handling against a mock engine that reports its
// panics' messages through setPanicListener (as src/wasm.rs exports it)
// and, like the real one, can die inside an async export: its futures run
// in a microtask queued through the global queueMicrotask (as
// wasm-bindgen-futures does), so the trap is thrown there and the promise
// never settles. Without the wrapper's guard, Node.js exits on the uncaught
// trap (issue 10 item 3). Run by consumer.mjs; imports js/core.js, the file
// the package ships.
//
//   node tests/package/mock-engine.mjs

import assert from 'node:assert/strict';
import { createApi } from '../../js/core.js';
import { EngineCrashError } from '../../js/errors.js';

const PANIC = 'panicked at src/gpu.rs:1:1: a mock panic';

// One mock instance of the engine's glue.
function mockGlue() {
  let listener = null;
  const panic = () => {
    listener?.(PANIC);
    throw new WebAssembly.RuntimeError('unreachable');
  };
  let step = 0;
  const trainer = {
    manifest: () => JSON.stringify({ config: { threads: { value: 1 }, hidden: { value: '8' } }, free: [], stopped: null }),
    totalSteps: 10,
    get stepsDone() {
      return step;
    },
    backend: 'gpu',
    backendDecision: { backend: 'gpu', kind: 'requested', text: 'mock' },
    adapter: null,
    arrivalOrder: false,
    // Step 3 dies in a microtask: the promise never settles.
    step: (n) => {
      if (step + n >= 3 && step < 3) {
        queueMicrotask(() => listener?.(PANIC));
        return new Promise(() => {});
      }
      step += n;
      return Promise.resolve({ step, total_steps: 10, done: step >= 10, weights_hash: '0', backend: 'gpu' });
    },
    hashChain: () => [],
    free: () => {},
  };
  return {
    setPanicListener: (fn) => {
      listener = fn;
    },
    defaultSettings: () => ({ steps: 10, hidden: '8', threads: 1 }),
    engineVersion: () => 'mock',
    debugPanic: panic,
    Trainer: {
      // steps 666: a panic inside the async create, as a future's poll in a microtask.
      create: (settings) => {
        if (settings.steps === 666) {
          queueMicrotask(() => {
            listener?.(PANIC);
            throw new WebAssembly.RuntimeError('unreachable');
          });
          return new Promise(() => {});
        }
        return Promise.resolve(trainer);
      },
      // The same inside resume, without a panic message (an abort: no hook).
      resume: () => {
        queueMicrotask(() => {
          throw new WebAssembly.RuntimeError('unreachable');
        });
        return new Promise(() => {});
      },
    },
  };
}

let reloads = 0;
const api = createApi({
  load: async () => ({ glue: mockGlue(), module: null }),
  reload: async () => {
    reloads += 1;
    return mockGlue();
  },
});

// A panic in an async step: the step rejects (no hang), with the message.
const run = await api.createRun({ steps: 10 });
await run.step(2);
const hang = setTimeout(() => assert.fail('the step of a dead instance never settled'), 2000);
const e = await run.step(2).catch((x) => x);
clearTimeout(hang);
assert.ok(e instanceof EngineCrashError, `got ${e}`);
assert.equal(e.message, `reprolab: the engine crashed (${PANIC}); create a new run`);
assert.equal(e.panic, PANIC);
assert.equal(run.state, 'crashed');
await assert.rejects(run.step(1), /crashed earlier \(panicked at .*a mock panic\).*create a new run/);
console.log(`mock: an async step that dies rejects with "${e.message}"`);

// The next createRun starts a fresh instance.
const next = await api.createRun({});
assert.equal(reloads, 1);
assert.equal((await next.step(1)).step, 1);

// A synchronous panic with its message.
const sync = await api.debugPanic().catch((x) => x);
assert.ok(sync instanceof EngineCrashError && sync.panic === PANIC && sync.cause instanceof WebAssembly.RuntimeError);
assert.doesNotMatch(sync.message, /unreachable/);
await api.engineVersion();
assert.equal(reloads, 2);
console.log('mock: a synchronous panic carries its message; each crash re-instantiates once');

// Calls that arrive together after a crash share one fresh instance.
await api.debugPanic().catch(() => {});
const together = await Promise.all([api.createRun({}), api.createRun({}), api.engineVersion()]);
assert.equal(reloads, 3);
assert.equal((await together[0].step(1)).step, 1);
console.log('mock: calls that arrive together after a crash share one fresh instance');

// A panic inside the async createRun and resumeRun: an EngineCrashError, and
// the process goes on (Node.js would exit on the trap thrown in the microtask).
const plainQueueMicrotask = globalThis.queueMicrotask;
const inCreate = await api.createRun({ steps: 666 }).catch((x) => x);
assert.ok(inCreate instanceof EngineCrashError, `createRun gave ${inCreate}`);
assert.equal(inCreate.panic, PANIC);
const inResume = await api
  .resumeRun({ checkpoint_version: 1, step: 0, params_bits: [], velocity_bits: [], manifest: {}, checksum: '' })
  .catch((x) => x);
assert.ok(inResume instanceof EngineCrashError, `resumeRun gave ${inResume}`);
assert.equal(inResume.panic, null);
assert.ok(inResume.cause instanceof WebAssembly.RuntimeError);
assert.equal(globalThis.queueMicrotask, plainQueueMicrotask, 'the global queueMicrotask is put back');
assert.equal((await (await api.createRun({})).step(1)).step, 1);
// Other errors thrown in microtasks are not the wrapper's to catch.
const seen = [];
process.once('uncaughtException', (x) => seen.push(x));
queueMicrotask(() => {
  throw new Error('not the engine');
});
await new Promise((resolve) => setTimeout(resolve, 10));
assert.equal(seen[0]?.message, 'not the engine');
console.log('mock: a panic inside the async createRun or resumeRun rejects with an EngineCrashError; the process goes on');
