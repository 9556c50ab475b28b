// The browser half of bench/wasm-bench.mjs: times training steps of the
// engine's WebAssembly build (www/pkg) through its public API, the same runs
// as the native benchmark (src/bench.rs: digits, the defaults otherwise, no
// validation during the timed steps), with contenders interleaved round by
// round. `cpu-2x4` runs the chunks of every step on two threads, the main
// thread and one Web Worker (js/threads.js, as the page and the npm package do).
//
// window.runBench({shapes, contenders, rounds, sampleMs}) resolves to
// {userAgent, simd, peak: {gflops, byCpu}, capacity: {before, after}, results: [{shape, contender, steps_per_sample,
// samples_ms, cpu_samples_ms, chain_head, steps}]}. window.cpuNow, when the
// driver provides it, returns the renderer's CPU milliseconds.

import init, { Trainer, peakProbe, setKernels } from '../www/pkg/reprolab.js';
import { WorkerPool } from '../js/threads.js';
import { measureCapacity } from './capacity.js';

// An older build to compare with (`--before DIR` of the driver, served at
// bench/pkg-before/): its own module instance, its own Trainer.
let before = null;
async function loadBefore() {
  const glue = await import('./pkg-before/reprolab.js');
  await glue.default();
  return glue;
}

const STEPS = '1000000'; // the engine's MAX_STEPS, never reached: the runs do not end mid-benchmark

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function cpuNow() {
  return typeof window.cpuNow === 'function' ? window.cpuNow() : null;
}

async function contenderRun(shape, c) {
  const settings = {
    dataset: 'digits',
    hidden: shape.hidden.join(','),
    batch_size: String(shape.batch),
    steps: STEPS,
    eval_every: STEPS,
    threads: String(c.threads),
    chunks: String(c.chunks),
  };
  const engine = c.build === 'before' ? (before ??= await loadBefore()) : { Trainer, setKernels };
  const trainer = await engine.Trainer.create(settings, [], c.backend ?? 'cpu');
  const pool = c.threads > 1 ? await WorkerPool.create(trainer, c.threads) : null;
  const toObject = (v) => (v instanceof Map ? Object.fromEntries(v) : v);
  return {
    trainer,
    pool,
    // n steps with this contender's kernels; resolves to [wall ms, cpu ms or null]
    async timed(n) {
      if (c.build !== 'before') setKernels(c.kernels);
      const cpu0 = await cpuNow();
      const t0 = performance.now();
      const report = toObject(pool ? await pool.run(n) : await trainer.step(n));
      const ms = performance.now() - t0;
      const cpu1 = await cpuNow();
      if (c.build !== 'before') setKernels('simd');
      if (!report || report.stopped || report.step === undefined) {
        throw new Error(`${shape.name} ${c.name}: a benchmark run stopped: ${report?.stopped ?? 'no report'}`);
      }
      return [ms, cpu0 === null || cpu1 === null ? null : cpu1 - cpu0];
    },
    close() {
      pool?.terminate();
      trainer.free();
    },
  };
}

// Flop of one peakProbe iteration (src/kernels/mod.rs PEAK_PROBE_FLOPS:
// two terms x 8 vectors x 4 lanes x a multiply and an add).
const PEAK_PROBE_FLOPS = 128;

// The best GFLOP/s of `tries` runs of the kernels' inner loop on data in L1,
// by renderer CPU time where the driver gives it, else by wall clock.
async function measurePeak(tries) {
  const iters = 4_000_000;
  // V8 and SpiderMonkey first run wasm from a baseline compiler and swap in
  // optimised code for later calls, compiled in the background: call it a
  // few times and give the compiler time before timing.
  for (let i = 0; i < 3; i++) peakProbe(100_000);
  await sleep(300);
  let best = 0;
  let byCpu = true;
  for (let i = 0; i < tries; i++) {
    const cpu0 = await cpuNow();
    const t0 = performance.now();
    peakProbe(iters);
    const wall = performance.now() - t0;
    const cpu1 = await cpuNow();
    let ms = wall;
    if (cpu0 !== null && cpu1 !== null && cpu1 > cpu0) ms = cpu1 - cpu0;
    else byCpu = false;
    best = Math.max(best, (iters * PEAK_PROBE_FLOPS) / (ms * 1e6));
  }
  return { gflops: best, byCpu };
}

// The adapter of a GPU run, in words.
function adapterName(trainer) {
  const a = trainer.adapter;
  const o = a instanceof Map ? Object.fromEntries(a) : a;
  return o ? `${o.vendor} ${o.description}`.trim() : null;
}

window.runBench = async ({ shapes, contenders, rounds, sampleMs }) => {
  const simd = setKernels('simd');
  const peak = await measurePeak(5);
  const capacity = { before: await measureCapacity(5) };
  const results = [];
  for (const shape of shapes) {
    const runs = [];
    for (const c of contenders) runs.push(await contenderRun(shape, c));
    // Warm-up: a few steps each, then a pause for the optimising compiler
    // (see measurePeak), then the pace of one step.
    for (const r of runs) await r.timed(3);
    await sleep(300);
    let warm = Infinity;
    for (const r of runs) warm = Math.min(warm, (await r.timed(1))[0]);
    const steps = Math.min(10000, Math.max(1, Math.ceil(sampleMs / Math.max(warm, 1e-3))));
    const samples = runs.map(() => []);
    const cpuSamples = runs.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const [i, r] of runs.entries()) {
        const [ms, cpu] = await r.timed(steps);
        samples[i].push(ms / steps);
        if (cpu !== null) cpuSamples[i].push(cpu / steps);
      }
    }
    for (const [i, c] of contenders.entries()) {
      results.push({
        shape: shape.name,
        hidden: shape.hidden,
        batch: shape.batch,
        contender: c.name,
        threads: c.threads,
        chunks: c.chunks,
        kernels: c.kernels,
        steps_per_sample: steps,
        samples_ms: samples[i],
        cpu_samples_ms: cpuSamples[i].length === rounds ? cpuSamples[i] : null,
        backend: c.backend ?? 'cpu',
        adapter: c.backend === 'gpu' ? adapterName(runs[i].trainer) : null,
        chain_head: runs[i].trainer.hashChain().at(-1),
        steps: runs[i].trainer.stepsDone,
      });
    }
    for (const r of runs) r.close();
  }
  capacity.after = await measureCapacity(5);
  return { userAgent: navigator.userAgent, simd, peak, capacity, results };
};

window.benchReady = init().then(() => true);
