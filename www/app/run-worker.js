// One training run of the page, in a dedicated Web Worker with its own engine
// instance (WebGPU works in dedicated workers), so that the page stays
// responsive and 2 to 4 runs train side by side.
//
// Messages in:
//   {type: 'init', mode: 'create' | 'rerun', settings, free, backend,
//    manifest, samples, grid}   once: make the run (createRun, or rerun of a
//                                manifest); `samples` are the steps at which
//                                to send the weights, `grid` {n, lo, hi} the
//                                decision-boundary grid (2-D data) or null
//   {type: 'go'}                 train to the end (again after a pause)
//   {type: 'pause'}              stop after the chunk in flight
//   {type: 'step'}               one step (while paused)
// Messages out:
//   {type: 'ready', backend, backendReason, adapter, totalSteps, manifest, params}
//   {type: 'progress', step, total, loss, chain, val, params, grid, done, stopped, backend}
//      loss (Float32Array) and chain (strings) are the steps since the last
//      message; params {step, data} at a sample step; grid the latest grid
//   {type: 'finished', manifest, backend, backendReason, level}
//   {type: 'error', message, field}

// The engine is imported dynamically, so this script evaluates at once and
// its message handler is in place before any message can arrive (Firefox
// lost the first message of a worker still loading its static imports).
let api = null;
const apiReady = import('./engine.js').then((m) => {
  api = m;
});
apiReady.catch(() => {}); // reported by handle(), as an error message

const TARGET_MS = 30; // each chunk of steps should take about this long
const GRID_EVERY_MS = 250; // decision-boundary updates at most this often
const GPU_BLOCK = 64; // the engine's GPU read-back interval (spec::GPU_READBACK_STEPS)

let run = null;
let samples = [];
let grid = null;
let sent = { loss: 0, chain: 0 };
let going = false; // a training loop is active
let paused = false;
let lastGrid = 0;

function errorMessage(e) {
  return { type: 'error', message: e?.message ?? String(e), field: typeof e?.field === 'string' ? e.field : null };
}

// The first sample step after `step` (or the last step).
function nextSample(step) {
  for (const s of samples) if (s > step) return s;
  return run.totalSteps;
}

function progress(report, force) {
  const loss = run.trainLoss().slice(sent.loss);
  const chain = run.hashChain().slice(sent.chain);
  sent.loss += loss.length;
  sent.chain += chain.length;
  const msg = {
    type: 'progress',
    step: report.step,
    total: report.totalSteps,
    loss,
    chain,
    val: run.valCurve(),
    params: null,
    grid: null,
    done: report.done,
    stopped: report.stopped,
    backend: report.backend,
  };
  const transfer = [loss.buffer];
  if (samples.includes(report.step) || report.done) {
    const data = api.paramsOf(run);
    msg.params = { step: report.step, data };
    transfer.push(data.buffer);
  }
  const now = performance.now();
  if (grid && (force || report.done || now - lastGrid > GRID_EVERY_MS)) {
    lastGrid = now;
    const g = run.decisionGrid(grid.n, grid.lo, grid.hi);
    msg.grid = { n: g.n, classes: g.classes, predicted: g.predicted.slice(), confidence: g.confidence.slice() };
  }
  self.postMessage(msg, transfer);
}

function finished() {
  const manifest = run.manifestJson();
  const m = JSON.parse(manifest);
  self.postMessage({
    type: 'finished',
    manifest,
    backend: run.backend,
    backendReason: run.backendReason,
    level: m.level_granted,
  });
}

const breathe = () => new Promise((resolve) => setTimeout(resolve, 0));

// Steps up to `limit` steps (Infinity: to the end), never past a sample step
// in one call, so the weights are read at exactly those steps.
async function train(limit) {
  if (going) return;
  going = true;
  try {
    let k = 1;
    let left = limit;
    while (!run.done && left > 0 && (!paused || limit !== Infinity)) {
      // On the GPU every step() call ends with a read-back (slow in some
      // browsers): whole blocks up to the next sample step. On the CPU,
      // chunks sized to take about TARGET_MS.
      const toSample = nextSample(run.stepsDone) - run.stepsDone;
      const n = Math.max(1, Math.min(run.backend === 'gpu' ? toSample : k, left, toSample));
      const t0 = performance.now();
      const report = await run.step(n);
      const took = performance.now() - t0;
      k = Math.max(1, Math.min(2 * k, took > 0 ? Math.floor((k * TARGET_MS) / took) : 2 * k));
      left -= n;
      progress(report, limit !== Infinity);
      if (report.done || report.stopped) {
        finished();
        break;
      }
      await breathe(); // let 'pause' in
    }
  } catch (e) {
    self.postMessage(errorMessage(e));
  } finally {
    going = false;
  }
}

async function handle(msg) {
  await apiReady;
  switch (msg.type) {
    case 'init': {
      const options = { free: msg.free, backend: msg.backend ?? undefined };
      run = msg.mode === 'rerun' ? await api.rerun(msg.manifest, options) : await api.createRun(msg.settings, options);
      // The GPU reads its weights back every GPU_BLOCK steps anyway: sample
      // there (every run samples those steps, so a GPU run and a CPU run
      // still meet); the CPU also samples at the steps the page asked for.
      const blocks = [];
      for (let s = GPU_BLOCK; s < run.totalSteps; s += GPU_BLOCK) blocks.push(s);
      const asked = run.backend === 'gpu' ? [] : (msg.samples ?? []);
      samples = [...new Set([...asked, ...blocks, run.totalSteps])].sort((a, b) => a - b);
      grid = msg.grid;
      const data = api.paramsOf(run);
      self.postMessage(
        {
          type: 'ready',
          backend: run.backend,
          backendReason: run.backendReason,
          adapter: run.adapter,
          totalSteps: run.totalSteps,
          manifest: run.manifestJson(),
          params: { step: 0, data },
          workers: run.workers,
          arrivalOrder: run.backend === 'cpu' ? run.arrivalOrder : false,
        },
        [data.buffer],
      );
      return;
    }
    case 'go':
      paused = false;
      train(Infinity);
      return;
    case 'pause':
      paused = true;
      return;
    case 'step':
      paused = true;
      if (!going) train(1);
      return;
    default:
      throw new Error(`run worker: unknown message ${JSON.stringify(msg.type)}`);
  }
}

self.onmessage = async (event) => {
  try {
    await handle(event.data);
  } catch (e) {
    self.postMessage(errorMessage(e));
  }
};
