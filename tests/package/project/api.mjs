// Node.js 20, ES modules, the installed package: every part of the API as a
// consumer uses it, with assertions. Invalid configurations must reject with
// the field named; a forced panic must leave a clear error, refusing objects
// and a working next createRun; "unreachable" and "recursive use of an
// object" must never reach the caller. Cancellation by AbortSignal rejects
// with an AbortError; every other failure is a ReprolabError with its code.
// A manifest the native CLI recorded on the GPU (cli-gpu.json, lavapipe)
// replays here, on Node's CPU, as "not comparable", with the reason.
//
//   node api.mjs

import assert from 'node:assert/strict';
import * as reprolab from 'reprolab';
import {
  ConfigError,
  EngineCrashError,
  RecordError,
  ReprolabError,
  RunBusyError,
  RunCancelledError,
  RunDisposedError,
  configHelp,
  createRun,
  debugPanic,
  defaultConfig,
  diff,
  engineVersion,
  replay,
  replayPlan,
  rerun,
  resumeRun,
  sources,
} from 'reprolab';
import { readFileSync } from 'node:fs';

const SMALL = { steps: 60, hidden: [32], eval_every: 20 };
const FORBIDDEN = /unreachable|recursive use of an object/i;
let checks = 0;

function ok(what) {
  checks += 1;
  console.log(`api: ok ${what}`);
}

// A rejection that names `field`, with a readable message.
async function rejectsWithField(promise, field, what) {
  let error;
  try {
    const run = await promise;
    run?.dispose?.();
  } catch (e) {
    error = e;
  }
  assert.ok(error, `${what}: accepted, should reject naming ${field}`);
  assert.ok(error instanceof Error, `${what}: rejected with a non-Error ${error}`);
  assert.ok(error instanceof ConfigError, `${what}: rejected with ${error.name}, not a ConfigError: ${error.message}`);
  assert.equal(error.field, field, `${what}: field is ${error.field}, expected ${field} (${error.message})`);
  assert.ok(error.message.includes(field), `${what}: the message does not name ${field}: ${error.message}`);
  assert.doesNotMatch(error.message, FORBIDDEN);
  return error;
}

// ---- the basics ----------------------------------------------------------------

assert.equal(typeof globalThis.navigator, 'undefined', 'Node 20 has no global navigator; this test expects none');
assert.match(await engineVersion(), /^reprolab \d+\.\d+\.\d+, kernels v\d+$/);
const defaults = await defaultConfig();
assert.deepEqual(defaults.hidden, [128]);
assert.equal(defaults.steps, 1500);
const help = await configHelp();
assert.deepEqual(Object.keys(help).sort(), Object.keys(defaults).sort());
assert.equal((await sources()).length, 9);
ok(`engineVersion, defaultConfig (${Object.keys(defaults).length} settings), configHelp, sources`);

const auto = await createRun(SMALL);
assert.equal(auto.backend, 'cpu');
assert.match(auto.backendReason, /^auto: running on the CPU because .*no WebGPU/);
assert.equal(auto.adapter, null);
assert.equal(auto.state, 'ready');
assert.deepEqual(auto.backendDecision, { backend: 'cpu', kind: 'auto_no_gpu', text: auto.backendReason });
assert.deepEqual(auto.config.hidden, [32]);
assert.deepEqual(auto.free, []);
ok(`auto picks the CPU without WebGPU: "${auto.backendReason}"`);

// Backend set free without WebGPU: the engine's policy (not the wrapper's)
// trains on the CPU and records the source as one that could not act here.
const freeBackend = await createRun(SMALL, { free: ['backend'] });
assert.equal(freeBackend.backend, 'cpu');
assert.equal(freeBackend.backendDecision.kind, 'auto_no_gpu');
assert.match(freeBackend.backendReason, /^backend free: running on the CPU because .*no WebGPU/);
await freeBackend.step(2);
const freeInert = freeBackend.manifest().inert;
assert.ok(freeInert.some((i) => i.source === 'backend' && typeof i.why === 'string' && i.why.length > 0), JSON.stringify(freeInert));
assert.ok(freeBackend.inertSources.some((i) => i.source === 'backend' && i.acts === false), JSON.stringify(freeBackend.inertSources));
freeBackend.dispose();
ok(`free backend without WebGPU trains on the CPU and records backend as inert: "${freeBackend.backendReason}"`);

// The engine's level, inert sources and software-adapter flag, passed on.
assert.equal(auto.level, 'run-to-run');
assert.equal(auto.levelReason, auto.manifest().level_reason);
assert.match(auto.levelReason, /pinned/);
assert.deepEqual(auto.inertSources, []);
assert.equal(auto.adapterIsSoftware, false);
const exactRun = await createRun({ ...SMALL, level: 'exact' }, { backend: 'cpu' });
assert.equal(exactRun.level, 'exact');
assert.equal(exactRun.manifest().level_granted, 'exact');
// One thread, cpu_threads free: it cannot act; the engine says why and what would let it.
const inertRun = await createRun(SMALL, { free: ['cpu_threads', 'shuffle'], backend: 'cpu' });
assert.equal(inertRun.level, 'none');
assert.match(inertRun.levelReason, /free sources: .*cpu_threads/);
assert.equal(inertRun.inertSources.length, 1, JSON.stringify(inertRun.inertSources));
const [inert] = inertRun.inertSources;
assert.equal(inert.source, 'cpu_threads');
assert.equal(inert.acts, false);
assert.match(inert.why, /thread/);
assert.ok(inert.fix && inert.fix.set && Number(inert.fix.set.threads) >= 2, `cpu_threads fix: ${JSON.stringify(inert.fix)}`);
inertRun.inertSources[0].fix.set.threads = 'changed';
assert.notEqual(inertRun.inertSources[0].fix.set.threads, 'changed', 'inertSources hands out copies');
// The training points of a 2-D data set, in the square decisionGrid spans.
const spiral = await createRun({ dataset: 'spiral', hidden: [8], steps: 1, val_fraction: 0.25 }, { backend: 'cpu' });
const pts = spiral.dataPoints();
assert.equal(pts.dim, 2);
assert.ok(pts.x instanceof Float32Array && pts.labels instanceof Uint8Array);
assert.ok(pts.n > 0 && pts.x.length === 2 * pts.n && pts.labels.length === pts.n, `dataPoints: n ${pts.n}, x ${pts.x.length}, labels ${pts.labels.length}`);
const spiralSize = spiral.manifest().data.size;
assert.ok(Math.abs(pts.n - 0.75 * spiralSize) <= 1, `dataPoints: ${pts.n} training points of ${spiralSize} with val_fraction 0.25`);
assert.ok(pts.labels.every((l) => l < pts.classes) && new Set(pts.labels).size === pts.classes, 'every class is among the training points');
assert.ok(pts.x.every((v) => Number.isFinite(v) && Math.abs(v) <= 1.2), 'the points lie in [-1.2, 1.2]^2');
for (const r of [exactRun, inertRun, spiral]) r.dispose();
ok(`level ("${auto.level}"; exact asked: "${exactRun.level}"), levelReason, inertSources (${inert.source}: "${inert.why}"), adapterIsSoftware, dataPoints (${pts.n} spiral points)`);

// step(n) queues: two calls without awaiting run one after the other.
const [r1, r2] = await Promise.all([auto.step(5), auto.step(5)]);
assert.equal(r1.step, 5);
assert.equal(r2.step, 10);
assert.equal(auto.stepsDone, 10);
const busy = auto.step(5);
assert.throws(
  () => auto.hashChain(),
  (e) => e instanceof RunBusyError && e.code === 'busy' && /while the run is taking steps/.test(e.message) && !FORBIDDEN.test(e.message),
);
assert.equal(typeof auto.backendReason, 'string'); // where and why stay readable
await busy;
assert.equal(auto.hashChain().length, 15);
ok('step(n) queues; reading the record during a step is refused clearly');

// ---- metrics, pause, resume, cancel ----------------------------------------

const long = await createRun({ ...SMALL, steps: 5000 });
const seen = [];
let pausedAt = null;
for await (const m of long.metrics({ every: 10 })) {
  seen.push(m.step);
  if (m.step === 30) {
    long.pause();
    assert.equal(long.state, 'paused');
    pausedAt = long.stepsDone;
    setTimeout(() => {
      // Nothing ran while paused.
      assert.equal(long.stepsDone, pausedAt);
      assert.equal(long.state, 'paused');
      long.resume();
    }, 100);
  }
  if (m.step === 100) long.cancel();
}
assert.deepEqual(seen, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
assert.equal(long.state, 'cancelled');
await assert.rejects(long.step(1), (e) => e instanceof RunCancelledError && e.code === 'cancelled' && /cancelled after step 100/.test(e.message));
assert.equal(long.manifest().steps_completed, 100);
ok('metrics({every: 10}) yields every 10 steps; pause() holds it, resume() goes on, cancel() ends it and refuses step()');

const cb = await createRun(SMALL);
const calls = [];
const final = await cb.train({ every: 25, onMetrics: (m) => calls.push(m.step) });
assert.deepEqual(calls, [25, 50, 60]);
assert.equal(final.done, true);
assert.equal(cb.state, 'done');
assert.equal(cb.valCurve().at(-1).step, 60);
assert.equal(cb.trainLoss().length, 60);
const weights = cb.params();
assert.ok(weights instanceof Float32Array && weights.length === cb.manifest().parameters, 'params() is every weight');
ok('train({onMetrics}) calls back every chunk and ends at the last step');

// Adaptive chunks (the default): still ends exactly at the last step.
const adaptive = await createRun({ ...SMALL, steps: 300 });
let lastStep = 0;
for await (const m of adaptive.metrics()) lastStep = m.step;
assert.equal(lastStep, 300);
ok('metrics() with adaptive chunks ends at the last step');

// ---- checkpoint, resume, replay, diff, rerun -------------------------------

const whole = await createRun({ ...SMALL, steps: 150 });
await whole.step(70);
const ck = whole.checkpoint();
const ckText = whole.checkpointJson();
await whole.train();
for (const [label, input] of [['object', ck], ['JSON text', ckText]]) {
  const resumed = await resumeRun(input);
  assert.equal(resumed.stepsDone, 70);
  await resumed.train();
  assert.deepEqual(resumed.hashChain(), whole.hashChain());
  resumed.dispose();
  ok(`resumeRun(checkpoint ${label}) continues bit for bit (150 links equal)`);
}

const manifest = whole.manifest();
const onCpu = { backend: 'cpu', level: 'run-to-run', comparable: true };
for (const input of [manifest, whole.manifestJson()]) {
  const r = await replay(input);
  assert.deepEqual({ ...r, reason: undefined }, { identical: true, steps: 150, ...onCpu, reason: undefined });
  assert.match(r.reason, /recorded on the CPU/);
}
const edited = { ...manifest, train_loss: manifest.train_loss.map((x, i) => (i === 3 ? x + 1 : x)) };
await assert.rejects(replay(edited), (e) => e instanceof RecordError && e.code === 'invalid_record' && /edited/.test(e.message));
ok('replay(manifest) is identical on the CPU (level run-to-run, with the reason); an edited manifest is a RecordError');

// A manifest the native CLI recorded on the GPU: Node has no WebGPU, so no
// replay here can be compared; the answer says so, never a bare "not identical".
const gpuRecord = JSON.parse(readFileSync('cli-gpu.json', 'utf8'));
assert.ok(gpuRecord.backend_history.some((s) => s.backend === 'gpu'), 'cli-gpu.json was recorded on the GPU');
const plan = await replayPlan(gpuRecord);
assert.equal(plan.canReplay, false);
assert.equal(plan.level, 'none');
assert.match(plan.reason, /recorded on the GPU.*no WebGPU/);
const notHere = await replay(gpuRecord);
assert.equal(notHere.identical, null);
assert.equal(notHere.comparable, false);
assert.equal(notHere.level, 'none');
assert.equal(notHere.reason, plan.reason);
console.log(`api: replay of the CLI's GPU manifest in Node.js: identical ${notHere.identical}, level ${notHere.level}: "${notHere.reason}"`);
// Re-running it pinned needs its GPU: the engine's policy refuses, naming the way out.
await assert.rejects(
  rerun(gpuRecord),
  (e) => e instanceof ConfigError && e.code === 'backend_unavailable' && e.field === 'backend' && /no WebGPU.*set it free/.test(e.message),
);
const rerunOnCpu = await rerun(gpuRecord, { backend: 'cpu' });
assert.equal(rerunOnCpu.backend, 'cpu');
assert.equal(rerunOnCpu.backendDecision.kind, 'requested');
rerunOnCpu.dispose();
const forced = await replay(gpuRecord, { backend: 'cpu' });
assert.equal(forced.comparable, false);
assert.equal(forced.backend, 'cpu');
assert.equal(forced.level, 'none');
assert.match(forced.reason, /^replayed on the CPU as asked, though recorded on the GPU/);
assert.equal(typeof forced.identical, 'boolean');
console.log(`api: forced onto the CPU: identical ${forced.identical}${forced.identical ? '' : ` (parts at step ${forced.step})`}, comparable false`);
ok('replay of a GPU manifest without WebGPU answers with its reason and level none (replayPlan agrees); backend: cpu replays it anyway, marked not comparable');

const other = await createRun({ ...SMALL, steps: 150, seed: 2 });
await other.train();
const d = await diff(manifest, other.manifest());
assert.equal(d.identical, false);
assert.equal(d.resultsIdentical, false);
assert.equal(d.firstDivergentStep, 1);
assert.ok(d.causes.includes('init'), `causes: ${d.causes}`);
assert.ok(d.differences.some((x) => x.field === 'config.seed'));
assert.deepEqual(await diff(manifest, manifest), {
  identical: true,
  resultsIdentical: true,
  firstDivergentStep: null,
  differences: [],
  environment: [],
  causes: [],
});
ok(`diff names the first divergent step (1) and the causes (${d.causes.join(', ')})`);

const shuffled = await rerun(manifest, { free: ['shuffle'] });
assert.deepEqual(shuffled.free, ['shuffle']);
await shuffled.train();
const ds = await diff(manifest, shuffled.manifest());
assert.ok(ds.causes.includes('shuffle'), `causes: ${ds.causes}`);
const again = await rerun(manifest);
await again.train();
assert.deepEqual(again.hashChain(), manifest.hash_chain);
// Why each is on the CPU, as data and in words (never the bare "backend cpu").
const explicit = await createRun(SMALL, { backend: 'cpu' });
for (const [what, run, kind, text] of [
  ['createRun(.., {backend: "cpu"})', explicit, 'requested', /^cpu: requested/],
  ['rerun(manifest)', again, 'recorded', /^cpu: the recorded run ran on the CPU, and this one follows it$/],
  ['resumeRun(checkpoint)', await resumeRun(ck), 'recorded', /^cpu: the checkpointed run ran on the CPU/],
  ['rerun(manifest, {backend: "cpu"})', await rerun(manifest, { backend: 'cpu' }), 'requested', /^cpu: requested/],
]) {
  assert.equal(run.backendDecision.kind, kind, `${what}: ${JSON.stringify(run.backendDecision)}`);
  assert.match(run.backendReason, text, what);
  assert.equal(run.backendReason, run.backendDecision.text);
}
ok(`backendReason for an explicit cpu and for a rerun or resume says why ("${explicit.backendReason}", "${again.backendReason}")`);
ok('rerun(manifest) re-runs identically; with shuffle free it parts, and diff names shuffle');

// ---- cancellation, errors and state -----------------------------------------

// step(0) and metrics({every: 0}) are refused the same way: a ConfigError naming the argument.
const refusing = await createRun(SMALL);
for (const [what, call, field] of [
  ['step(0)', () => refusing.step(0), 'n'],
  ['step(1.5)', () => refusing.step(1.5), 'n'],
  ['metrics({ every: 0 })', () => refusing.metrics({ every: 0 }).next(), 'every'],
  ['train({ every: 0 })', () => refusing.train({ every: 0 }), 'every'],
  ['metrics({ every: -1 })', () => refusing.metrics({ every: -1 }).next(), 'every'],
]) {
  const e = await rejectsWithField(call(), field, what);
  assert.equal(e.code, 'invalid_settings');
}
assert.equal(refusing.stepsDone, 0);
ok('step(0), step(1.5) and metrics/train({every: 0}) reject alike: a ConfigError naming the argument');

// {steps: undefined}: the field and why.
const undef = await rejectsWithField(createRun({ steps: undefined }), 'steps', 'createRun({steps: undefined})');
assert.match(undef.message, /^steps: the value is undefined; give a value, or leave the key out for its default$/);
ok(`{steps: undefined} names the field and why: "${undef.message}"`);

// break out of for await: the run is no longer running.
for await (const m of refusing.metrics({ every: 5 })) {
  assert.equal(refusing.state, 'running');
  if (m.step === 15) break;
}
assert.equal(refusing.state, 'ready');
assert.equal(refusing.stepsDone, 15);
ok('after break out of for await (run.metrics()), state is "ready" (no longer "running")');

// An AbortSignal: createRun, train, metrics and step reject with an AbortError.
const isAbort = (e) => e instanceof DOMException && e.name === 'AbortError' && !(e instanceof ReprolabError);
const aborted = new AbortController();
aborted.abort();
await assert.rejects(createRun(SMALL, { signal: aborted.signal }), isAbort);
await assert.rejects(rerun(manifest, { signal: aborted.signal }), isAbort);
await assert.rejects(replay(manifest, { signal: aborted.signal }), isAbort);
await rejectsWithField(createRun(SMALL, { signal: 'stop' }), 'signal', 'createRun(.., {signal: "stop"})');
const long2 = await createRun({ ...SMALL, steps: 100_000 });
const controller = new AbortController();
let atAbort = null;
setTimeout(() => {
  atAbort = long2.stepsDone;
  controller.abort();
}, 50);
const abortError = await long2.train({ signal: controller.signal }).catch((e) => e);
assert.ok(isAbort(abortError), `train({signal}) gave ${abortError}`);
assert.match(abortError.message, /^reprolab: train\(\) was aborted$/);
assert.ok(atAbort > 0 && atAbort < 100_000, `the timer fired during training (at step ${atAbort})`);
assert.equal(long2.stepsDone, atAbort, 'no step ran after the abort');
assert.equal(long2.state, 'ready');
console.log(`api: an abort from a 50 ms timer stopped train() at step ${atAbort}, taking no step after it`);
const timeout = await (async () => {
  for await (const _ of long2.metrics({ signal: AbortSignal.timeout(30) })) {
    // the signal's timer fires while the loop runs
  }
})().catch((e) => e);
assert.ok(isAbort(timeout) && timeout.cause?.name === 'TimeoutError', `metrics({signal: AbortSignal.timeout(30)}) gave ${timeout}`);
await assert.rejects(long2.step(10, { signal: aborted.signal }), isAbort);
assert.equal((await long2.step(5)).step, long2.stepsDone);
ok('an AbortSignal rejects createRun, rerun, replay, train, metrics and step with an AbortError; no step after the abort; the run goes on');

// Codes on every other failure.
const disposed = await createRun(SMALL);
disposed[Symbol.dispose]();
assert.equal(disposed.state, 'disposed');
await assert.rejects(disposed.step(1), (e) => e instanceof RunDisposedError && e.code === 'disposed');
assert.throws(() => disposed.manifest(), RunDisposedError);
const asyncDisposed = await createRun(SMALL);
await asyncDisposed.step(3);
await asyncDisposed[Symbol.asyncDispose]();
assert.equal(asyncDisposed.state, 'disposed');
await assert.rejects(createRun({ learning_rate: -1 }), (e) => e instanceof ConfigError && e instanceof ReprolabError && e.code === 'invalid_settings');
await assert.rejects(createRun({}, { backend: 'gpu' }), (e) => e instanceof ConfigError && e.code === 'backend_unavailable' && e.field === 'backend');
await assert.rejects(resumeRun('{"checkpoint_version": 1, "truncated'), (e) => e instanceof RecordError && e.code === 'invalid_record');
ok('errors carry their code: disposed ([Symbol.dispose], [Symbol.asyncDispose]), invalid_settings, backend_unavailable, invalid_record, busy, cancelled');

// ---- invalid configurations: the field named --------------------------------

const INVALID = [
  // wrong types
  [{ learning_rate: true }, undefined, 'learning_rate'],
  [{ steps: [100] }, undefined, 'steps'],
  [{ hidden: [64, 'x'] }, undefined, 'hidden'],
  [{ hidden: { width: 64 } }, undefined, 'hidden'],
  [{ dataset: 42 }, undefined, 'dataset'],
  [{ activation: 1 }, undefined, 'activation'],
  [{ seed: 1.5 }, undefined, 'seed'],
  [{ learning_rate: Number.NaN }, undefined, 'learning_rate'],
  [{ momentum: 'fast' }, undefined, 'momentum'],
  ['steps=5', undefined, 'config'],
  [[1, 2], undefined, 'config'],
  // missing values, unknown fields
  [{ steps: undefined }, undefined, 'steps'],
  [{ seed: null }, undefined, 'seed'],
  [{ lerning_rate: 0.1 }, undefined, 'lerning_rate'],
  [{ version: 2 }, undefined, 'version'],
  // out of range
  [{ steps: 0 }, undefined, 'steps'],
  [{ dropout: 1 }, undefined, 'dropout'],
  [{ learning_rate: -1 }, undefined, 'learning_rate'],
  [{ momentum: -0.1 }, undefined, 'momentum'],
  [{ batch_size: 100000 }, undefined, 'batch_size'],
  [{ val_fraction: 0 }, undefined, 'val_fraction'],
  [{ threads: 65 }, undefined, 'threads'],
  [{ engine_version: 9 }, undefined, 'engine_version'],
  [{ dataset: 'mnist' }, undefined, 'dataset'],
  [{ activation: 'sigmoid' }, undefined, 'activation'],
  // options
  [{}, { backend: 'tpu' }, 'backend'],
  [{}, { backend: 'gpu' }, 'backend'],
  [{}, { free: 'init' }, 'free'],
  [{}, { free: ['nope'] }, 'free'],
  [{}, { seeds: [1] }, 'seeds'],
  [{}, { workers: 'yes' }, 'workers'],
];
for (const [config, options, field] of INVALID) {
  await rejectsWithField(createRun(config, options), field, `createRun(${JSON.stringify(config) ?? String(config)}, ${JSON.stringify(options)})`);
}
ok(`${INVALID.length} invalid configurations and options reject with a ConfigError naming the field`);

const { hash_chain: _dropped, ...noChain } = manifest;
await rejectsWithField(replay(noChain), 'hash_chain', 'replay(a manifest without hash_chain)');
await rejectsWithField(resumeRun({ step: 3 }), 'checkpoint_version', 'resumeRun(an object that is no checkpoint)');
await rejectsWithField(diff(manifest, 42), 'manifest', 'diff(manifest, 42)');
await assert.rejects(resumeRun('{"checkpoint_version": 1, "truncated'), (e) => e instanceof Error && !FORBIDDEN.test(e.message));
ok('manifests and checkpoints missing a field reject naming it');

// ---- a panic ------------------------------------------------------------------

const before = await createRun(SMALL);
await before.step(10);
const reference = (await createRun(SMALL).then(async (r) => (await r.train(), r))).hashChain();
let crash;
try {
  await debugPanic();
} catch (e) {
  crash = e;
}
assert.ok(crash instanceof EngineCrashError, `debugPanic gave ${crash?.name}: ${crash?.message}`);
assert.equal(crash.code, 'crashed');
assert.ok(crash instanceof Error);
assert.match(crash.message, /^reprolab: the engine crashed \(.+\); create a new run$/);
assert.doesNotMatch(crash.message, FORBIDDEN);
console.log(`api: the panic reads: "${crash.message}"`);
if (crash.panic !== null) assert.match(crash.panic, /debugPanic/, 'the reported panic message');
console.log(`api: the engine ${crash.panic === null ? 'does not report' : 'reports'} its panic message to the wrapper`);
for (const [what, call] of [
  ['step()', () => before.step(1)],
  ['hashChain()', async () => before.hashChain()],
  ['manifest()', async () => before.manifest()],
  ['checkpoint()', async () => before.checkpoint()],
  ['params()', async () => before.params()],
  ['metrics()', async () => before.metrics().next()],
]) {
  await assert.rejects(call(), (e) => e instanceof EngineCrashError && /crashed earlier.*create a new run/.test(e.message) && !FORBIDDEN.test(e.message), `${what} after the panic`);
}
assert.equal(before.state, 'crashed');
assert.equal(typeof before.backendReason, 'string'); // properties keep their last values
before.dispose(); // harmless
console.log(`api: a run of the crashed instance refuses calls: "${await before.step(1).catch((e) => e.message)}"`);
ok('a panic rejects with a clear EngineCrashError; runs of the crashed instance refuse every later call');

const after = await createRun(SMALL);
await after.train();
assert.deepEqual(after.hashChain(), reference);
assert.equal((await replay(after.manifest())).identical, true);
ok('the next createRun starts a fresh engine instance: the same hash chain as before the panic');

// Twice: recovery is not a one-off.
await assert.rejects(debugPanic(), EngineCrashError);
const third = await createRun(SMALL);
await third.train();
assert.deepEqual(third.hashChain(), reference);
ok('a second panic recovers too');

// A panic inside an async export of the real engine (in a microtask, where a
// panic inside createRun or resumeRun happens): a rejection, not an uncaught
// trap that ends the process; a run of that instance refuses, the next trains.
const beforeAsync = await createRun(SMALL);
let asyncCrash;
try {
  await debugPanic({ async: true });
} catch (e) {
  asyncCrash = e;
}
assert.ok(asyncCrash instanceof EngineCrashError, `debugPanic({async: true}) gave ${asyncCrash?.name}: ${asyncCrash?.message}`);
assert.match(asyncCrash.message, /^reprolab: the engine crashed \(.*debugPanicAsync.*\); create a new run$/);
await assert.rejects(beforeAsync.step(1), EngineCrashError);
const fourth = await createRun(SMALL);
await fourth.train();
assert.deepEqual(fourth.hashChain(), reference);
ok(`a panic in an async export rejects with an EngineCrashError and the process goes on: "${asyncCrash.message}"`);

assert.equal(typeof reprolab.Run, 'function');
console.log(`api: all ${checks} checks passed`);
