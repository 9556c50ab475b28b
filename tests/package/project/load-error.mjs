// Node.js, the installed package: an engine that cannot load (bytes that are
// no WebAssembly module) rejects init() with an EngineLoadError, code
// engine_load, and so does every later call until init() is given a good
// one; nothing else loads it meanwhile.
//
//   node load-error.mjs

import assert from 'node:assert/strict';
import { EngineLoadError, ReprolabError, createRun, init } from 'reprolab';

const broken = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 0xff]);
const e = await init({ wasm: broken }).catch((x) => x);
assert.ok(e instanceof EngineLoadError && e instanceof ReprolabError, `init() with a broken wasm gave ${e}`);
assert.equal(e.code, 'engine_load');
assert.match(e.message, /^reprolab: could not load the engine's WebAssembly \(.+\)$/);
assert.ok(e.cause instanceof WebAssembly.CompileError);
const later = await createRun().catch((x) => x);
assert.ok(later instanceof EngineLoadError, `createRun after a failed load gave ${later}`);
console.log(`load-error: a wasm that does not compile: ${e.name} (${e.code}): "${e.message}"`);
