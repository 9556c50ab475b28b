// A page built by Vite from the installed package. The test (tests/package/
// consumer.mjs) drives it through window.consumer in headless Chromium and
// Firefox. It awaits init({ workers: 3 }) at start-up: from then on nothing
// is fetched for the engine (the test checks it, and takes Chromium offline).
import { EngineCrashError, createRun, debugPanic, engineVersion, init, replay } from 'reprolab';

try {
  await init({ workers: 3 });
} catch (e) {
  document.body.dataset.error = `${e.name}: ${e.message}`;
  document.body.dataset.state = 'error';
  throw e;
}

// Trains one run to the end; what it did, as plain data.
async function train(config, options) {
  const run = await createRun(config, options);
  const began = performance.now();
  let reports = 0;
  await run.train({ onMetrics: () => (reports += 1) });
  const result = {
    backend: run.backend,
    backendReason: run.backendReason,
    backendDecision: run.backendDecision,
    adapter: run.adapter,
    adapterIsSoftware: run.adapterIsSoftware,
    level: run.level,
    workers: run.workers,
    arrivalOrder: run.arrivalOrder,
    hashChain: run.hashChain(),
    manifestBackend: run.manifest().backend,
    reports,
    ms: Math.round(performance.now() - began),
  };
  run.dispose();
  return result;
}

// A GPU run, then its replay: where it ran and what it promised.
async function gpuReplay(config) {
  const run = await createRun(config, { backend: 'gpu' });
  await run.train();
  const manifest = run.manifest();
  run.dispose();
  return replay(manifest);
}

// Timers during a CPU train(): a 20 ms setTimeout and a 50 ms setInterval
// note where the run is when they fire; the third tick cancels the run.
// Frames (requestAnimationFrame) are counted too. Starved timers would let
// the run end ("done") before any of them fired.
async function timers(config, trainOptions) {
  const run = await createRun(config, { backend: 'cpu' });
  const began = performance.now();
  const ticks = [];
  let timeout = null;
  let frames = 0;
  let counting = true;
  const frame = () => {
    if (!counting) return;
    frames += 1;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  setTimeout(() => (timeout = { step: run.stepsDone, state: run.state }), 20);
  const interval = setInterval(() => {
    ticks.push({ step: run.stepsDone, state: run.state });
    if (ticks.length === 3) run.cancel();
  }, 50);
  const last = await run.train(trainOptions);
  clearInterval(interval);
  counting = false;
  const out = { ticks, timeout, frames, state: run.state, steps: run.stepsDone, last: last.step, total: run.totalSteps, ms: Math.round(performance.now() - began) };
  run.dispose();
  return out;
}

// An AbortController aborted by a timer during a CPU train(): the steps at
// the abort and at the rejection, and the run going on afterwards.
async function abortTrain(config) {
  const run = await createRun(config, { backend: 'cpu' });
  const controller = new AbortController();
  let atAbort = null;
  setTimeout(() => {
    atAbort = run.stepsDone;
    controller.abort();
  }, 100);
  const e = await run.train({ signal: controller.signal }).then(
    () => null,
    (x) => x,
  );
  const out = {
    name: e?.name,
    isDOMException: e instanceof DOMException,
    message: e?.message,
    atAbort,
    atReject: run.stepsDone,
    state: run.state,
    total: run.totalSteps,
  };
  out.after = (await run.step(5)).step;
  const timeout = await run.train({ signal: AbortSignal.timeout(50) }).then(
    () => null,
    (x) => x,
  );
  out.timeout = { name: timeout?.name, cause: timeout?.cause?.name, steps: run.stepsDone };
  run.dispose();
  return out;
}

// A forced panic, then a new run: the errors as the caller sees them.
async function panic(config) {
  const before = await createRun(config, { backend: 'cpu' });
  await before.step(3);
  let crash = null;
  try {
    await debugPanic();
  } catch (e) {
    crash = { name: e.name, code: e.code, message: e.message, isCrashError: e instanceof EngineCrashError };
  }
  const refused = await before.step(1).then(
    () => null,
    (e) => ({ name: e.name, message: e.message }),
  );
  const after = await train(config, { backend: 'cpu' });
  return { crash, refused, after };
}

// Invalid settings from the page: the field named.
async function invalid(config, options) {
  try {
    (await createRun(config, options)).dispose();
    return null;
  } catch (e) {
    return { name: e.name, field: e.field, code: e.code, message: e.message };
  }
}

// The README's "Pause, resume and cancel" example, as shipped (written to
// readme-pause.js by the test); its console.log lines go to the test.
const readmePause = () => import('./readme-pause.js');

const hasGpu = async () => !!(navigator.gpu && (await navigator.gpu.requestAdapter().catch(() => null)));

window.consumer = { train, gpuReplay, timers, abortTrain, panic, invalid, readmePause, engineVersion, hasGpu };
document.body.dataset.state = 'ready';
