// A Web Worker of bench/wasm-bench-page.js's parallel-capacity probe: runs
// the kernels' inner loop (peakProbe) for the number of iterations it is
// sent and answers with the milliseconds it took.

import init, { peakProbe } from '../www/pkg/reprolab.js';

// Warm: the optimising compiler has the loop before the first timed run.
const ready = init().then(() => {
  for (let i = 0; i < 3; i++) peakProbe(100_000);
});

self.onmessage = async ({ data: iters }) => {
  await ready;
  const t0 = performance.now();
  peakProbe(iters);
  self.postMessage(performance.now() - t0);
};
