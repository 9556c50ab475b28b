// The parallel-capacity probe of the browser benchmarks
// (bench/wasm-bench-page.js, bench/wasm-threads-bench.html), run on the page.

// How much two Web Workers can run side by side on this machine now: the
// kernels' inner loop in one worker, then in two at once, `tries` times;
// each try gives 2 x (one's wall time) / (two's wall time): 2 where two
// cores are free, 1 where the two share one core's time. The most two
// workers could gain over one thread while it was measured.
export async function measureCapacity(tries) {
  const iters = 2_000_000;
  const workers = [0, 1].map(() => new Worker(new URL('./peak-worker.js', import.meta.url), { type: 'module' }));
  const run = (list) =>
    Promise.all(
      list.map(
        (w) =>
          new Promise((resolve, reject) => {
            w.onmessage = ({ data }) => resolve(data);
            w.onerror = (e) => reject(new Error(`the capacity probe's worker failed: ${e.message}`));
            w.postMessage(iters);
          }),
      ),
    );
  try {
    await run(workers); // loaded and warm
    const ratios = [];
    for (let i = 0; i < tries; i++) {
      let t0 = performance.now();
      await run([workers[0]]);
      const one = performance.now() - t0;
      t0 = performance.now();
      await run(workers);
      ratios.push((2 * one) / (performance.now() - t0));
    }
    return ratios;
  } finally {
    for (const w of workers) w.terminate();
  }
}
