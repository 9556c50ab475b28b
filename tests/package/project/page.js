// A page built by Vite from the installed package. The test (tests/package/
// consumer.mjs) drives it through window.consumer in headless Chromium.
import { EngineCrashError, createRun, debugPanic, engineVersion } from 'reprolab';

// Trains one run to the end; what it did, as plain data.
async function train(config, options) {
  const run = await createRun(config, options);
  const began = performance.now();
  let reports = 0;
  await run.train({ onMetrics: () => (reports += 1) });
  const result = {
    backend: run.backend,
    backendReason: run.backendReason,
    adapter: run.adapter,
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

// A forced panic, then a new run: the errors as the caller sees them.
async function panic(config) {
  const before = await createRun(config, { backend: 'cpu' });
  await before.step(3);
  let crash = null;
  try {
    await debugPanic();
  } catch (e) {
    crash = { name: e.name, message: e.message, isCrashError: e instanceof EngineCrashError };
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
    return { name: e.name, field: e.field, message: e.message };
  }
}

window.consumer = { train, panic, invalid, engineVersion };
document.body.dataset.state = 'ready';
