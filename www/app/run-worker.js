// One training run of the page, in a dedicated Web Worker with its own engine
// instance (WebGPU works in dedicated workers), so that the page stays
// responsive and 2 to 4 runs train side by side.
//
// Messages in:
//   {type: 'init', module, mode: 'create' | 'rerun', settings, free, backend,
//    manifest, samples, grid}   once: make the run (createRun, or rerun of a
//                                manifest) on the page's compiled engine
//                                (`module`: no second download or compile);
//                                `samples` are the steps at which to send the
//                                weights, `grid` {n, lo, hi} the decision-
//                                boundary grid (2-D data) or null
//   {type: 'go'}                 train to the end (again after a pause)
//   {type: 'pause'}              stop after the chunk in flight
//   {type: 'step'}               one step (while paused)
// Messages out:
//   {type: 'stage', text}        how far the start has got, in words
//   {type: 'ready', backend, backendReason, adapter, totalSteps, manifest, params, facts, points}
//   {type: 'progress', step, total, loss, chain, val, params, grid, done, stopped, backend}
//      loss (Float32Array) and chain (strings) are the steps since the last
//      message (every step is sent, the first on its own); params {step,
//      data} at a sample step; grid the latest decision grid
//   {type: 'finished', manifest, backend, backendReason, level, facts}
//   {type: 'error', message, field, code}
//
// One Worker object per run, so the run's state is this module's state.

// The engine is imported dynamically, so this script evaluates at once and
// its message handler is in place before any message can arrive (Firefox
// lost the first message of a worker still loading its static imports).
const apiReady = import('./engine.js');
apiReady.catch(() => {}); // reported by handle(), as an error message

const TARGET_MS = 30; // each chunk of steps should take about this long
const GRID_EVERY_MS = 150; // decision-boundary updates at most this often

class Training {
  constructor(api, run, { samples, grid }) {
    this.api = api;
    this.run = run;
    this.samples = [...new Set([...(samples ?? []), run.totalSteps])].sort((a, b) => a - b);
    this.grid = grid;
    this.sent = { loss: 0, chain: 0 };
    this.going = false; // a training loop is active
    this.paused = false;
    this.lastGrid = 0;
  }

  // The first sample step after `step` (or the last step).
  nextSample(step) {
    for (const s of this.samples) if (s > step) return s;
    return this.run.totalSteps;
  }

  ready() {
    const { run, api } = this;
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
        facts: api.runFacts(run),
        points: this.grid ? api.dataPointsOf(run) : null,
      },
      [data.buffer],
    );
  }

  progress(report, force) {
    const { run } = this;
    const loss = run.trainLoss().slice(this.sent.loss);
    const chain = run.hashChain().slice(this.sent.chain);
    this.sent.loss += loss.length;
    this.sent.chain += chain.length;
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
    if (this.samples.includes(report.step) || report.done) {
      const data = this.api.paramsOf(run);
      msg.params = { step: report.step, data };
      transfer.push(data.buffer);
    }
    const now = performance.now();
    if (this.grid && (force || report.done || now - this.lastGrid > GRID_EVERY_MS)) {
      this.lastGrid = now;
      const g = run.decisionGrid(this.grid.n, this.grid.lo, this.grid.hi);
      msg.grid = { n: g.n, classes: g.classes, predicted: g.predicted.slice(), confidence: g.confidence.slice() };
    }
    self.postMessage(msg, transfer);
  }

  finished() {
    const { run } = this;
    const manifest = run.manifestJson();
    self.postMessage({
      type: 'finished',
      manifest,
      backend: run.backend,
      backendReason: run.backendReason,
      level: JSON.parse(manifest).level_granted,
      facts: this.api.runFacts(run),
    });
  }

  // Steps up to `limit` steps (Infinity: to the end), never past a sample
  // step in one call, so the weights are read at exactly those steps. Chunks
  // grow from one step towards TARGET_MS each, on either backend (on the GPU
  // every step() call ends with a read-back), so the first step is plotted
  // as soon as it is done.
  async train(limit) {
    if (this.going) return;
    this.going = true;
    const { run } = this;
    try {
      let k = 1;
      let left = limit;
      while (!run.done && left > 0 && (!this.paused || limit !== Infinity)) {
        const toSample = this.nextSample(run.stepsDone) - run.stepsDone;
        const n = Math.max(1, Math.min(k, left, toSample));
        const t0 = performance.now();
        const report = await run.step(n);
        const took = performance.now() - t0;
        k = Math.max(1, Math.min(2 * k, took > 0 ? Math.floor((k * TARGET_MS) / took) : 2 * k));
        left -= n;
        this.progress(report, limit !== Infinity);
        if (report.done || report.stopped) {
          this.finished();
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 0)); // let 'pause' in
      }
    } catch (e) {
      self.postMessage(errorMessage(e));
    } finally {
      this.going = false;
    }
  }
}

function errorMessage(e) {
  return {
    type: 'error',
    message: e?.message ?? String(e),
    field: typeof e?.field === 'string' ? e.field : null,
    code: typeof e?.code === 'string' ? e.code : null,
  };
}

let training = null; // this worker's one run, once made

async function handle(msg) {
  const api = await apiReady;
  switch (msg.type) {
    case 'init': {
      await api.loadIn(msg.module);
      const { api: maker, note } = await api.runApi(msg);
      const threads = maker !== api.plainApi ? ' on WebAssembly threads' : Number(msg.settings?.threads) > 1 ? ' and its Web Workers' : '';
      self.postMessage({ type: 'stage', text: `engine loaded; making the run${threads}${note ? ` (${note})` : ''}` });
      const options = { free: msg.free, backend: msg.backend ?? undefined };
      const run = msg.mode === 'rerun' ? await maker.rerun(msg.manifest, options) : await maker.createRun(msg.settings, options);
      training = new Training(api, run, msg);
      training.ready();
      return;
    }
    case 'go':
      training.paused = false;
      training.train(Infinity);
      return;
    case 'pause':
      training.paused = true;
      return;
    case 'step':
      training.paused = true;
      if (!training.going) training.train(1);
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
