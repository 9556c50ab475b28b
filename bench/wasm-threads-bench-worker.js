// The Web Worker of bench/wasm-threads-bench.html: times training steps of
// the WebAssembly-threads build (www/pkg-threads/) through its Trainer, the
// same runs as the other shape benchmarks (digits, the defaults otherwise,
// no validation during the timed steps), contenders interleaved round by
// round: cpu-1 (one thread, one chunk), cpu-1x4 (one thread, four chunks)
// and cpu-2x4 (two threads of the pool over the same four chunks: the same
// bits as cpu-1x4, which the driver checks).

import init, { Trainer, initThreadPool } from '../www/pkg-threads/reprolab.js';

const STEPS = '1000000'; // never reached: the runs do not end mid-benchmark
const CONTENDERS = [
  { name: 'cpu-1', threads: 1, chunks: 1 },
  { name: 'cpu-1x4', threads: 1, chunks: 4 },
  { name: 'cpu-2x4', threads: 2, chunks: 4 },
];

const ready = (async () => {
  await init();
  await initThreadPool(2);
})();

async function timed(trainer, n) {
  const t0 = performance.now();
  await trainer.step(n);
  return performance.now() - t0;
}

self.onmessage = async ({ data: { shapes, rounds, sampleMs } }) => {
  try {
    await ready;
    const results = [];
    for (const shape of shapes) {
      const runs = [];
      for (const c of CONTENDERS) {
        const settings = {
          dataset: 'digits',
          hidden: shape.hidden.join(','),
          batch_size: String(shape.batch),
          steps: STEPS,
          eval_every: STEPS,
          threads: String(c.threads),
          chunks: String(c.chunks),
        };
        runs.push({ c, trainer: await Trainer.create(settings, [], 'cpu'), samples: [] });
      }
      // Warm-up (the optimising compiler), then the pace of one step.
      for (const r of runs) await timed(r.trainer, 3);
      await new Promise((r) => setTimeout(r, 300));
      let one = Infinity;
      for (const r of runs) one = Math.min(one, await timed(r.trainer, 1));
      const steps = Math.min(10000, Math.max(1, Math.ceil(sampleMs / Math.max(one, 1e-3))));
      for (let round = 0; round < rounds; round++) {
        for (const r of runs) r.samples.push((await timed(r.trainer, steps)) / steps);
      }
      for (const r of runs) {
        results.push({
          shape: shape.name,
          hidden: shape.hidden,
          batch: shape.batch,
          contender: r.c.name,
          threads: r.c.threads,
          chunks: r.c.chunks,
          steps_per_sample: steps,
          samples_ms: r.samples,
          chain_head: r.trainer.hashChain().at(-1),
          steps: r.trainer.stepsDone,
        });
        r.trainer.free();
      }
    }
    self.postMessage({ userAgent: navigator.userAgent, results });
  } catch (e) {
    self.postMessage({ error: `${e?.message ?? e}` });
  }
};
