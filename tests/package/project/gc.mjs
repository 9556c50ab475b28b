// Node.js with --expose-gc, the installed package: memory stays flat over
// long loops of small steps and after many runs dropped without dispose().
// Forces garbage collection and measures the JS heap (heapUsed) and the
// process's resident memory (RSS, which holds the engine's WebAssembly
// memory); prints every figure.
//
//   node --expose-gc gc.mjs [module]      (module: default 'reprolab')
//
// 1. 100,000 calls of step(1) on one run: the JS heap after 100k calls is
//    within HEAP_SLACK of the heap after 10k (before the fix it grew by
//    about 0.5 KB a call: 4.0 -> 51.7 MiB from 10k to 100k calls).
// 2. 200 runs created, stepped and dropped without dispose(), in two rounds
//    of 100, collected as they go: at least 95 of each round are collected
//    (WeakRef), and their engine memory is freed and reused, so RSS after
//    each round is within RSS_SLACK of RSS before it (before the fix: 72 ->
//    142 -> 210 MiB, about 0.7 MB of engine memory kept per dropped run).

import assert from 'node:assert/strict';

const { createRun } = await import(process.argv[2] ?? 'reprolab');

const MiB = 2 ** 20;
const HEAP_SLACK = 4 * MiB;
const RSS_SLACK = 16 * MiB;

assert.equal(typeof globalThis.gc, 'function', 'run with node --expose-gc');

// Full collections until finalizers have run (they run in later tasks).
async function collect() {
  for (let i = 0; i < 6; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
async function memory() {
  await collect();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapUsed, rss };
}
const mib = (n) => `${(n / MiB).toFixed(1)} MiB`;

// ---- 1. a long loop of step(1) ---------------------------------------------------

const CALLS = 100_000;
const run = await createRun({ dataset: 'xor', hidden: [8], batch_size: 8, steps: CALLS, eval_every: CALLS, dropout: 0 });
const heap = [];
const t0 = performance.now();
for (let i = 1; i <= CALLS; i++) {
  await run.step(1);
  if (i === 1000 || i === 10_000 || i === 50_000 || i === CALLS) heap.push([i, (await memory()).heapUsed]);
}
const seconds = ((performance.now() - t0) / 1000).toFixed(1);
assert.equal(run.stepsDone, CALLS);
assert.equal(run.state, 'done');
run.dispose();
console.log(`gc: ${CALLS} calls of step(1) in ${seconds} s; JS heap after ${heap.map(([i, h]) => `${i}: ${mib(h)}`).join(', ')}`);
const at10k = heap.find(([i]) => i === 10_000)[1];
const atEnd = heap.at(-1)[1];
assert.ok(atEnd - at10k < HEAP_SLACK, `the JS heap grew by ${mib(atEnd - at10k)} from 10k to ${CALLS} step(1) calls (allowed ${mib(HEAP_SLACK)})`);

// ---- 2. runs dropped without dispose() -------------------------------------------

// n runs, dropped; a collection after every 10, as a long-lived page would
// see them collected.
async function dropRuns(n) {
  const refs = [];
  for (let i = 0; i < n; i++) {
    const r = await createRun({ hidden: [64], steps: 100, seed: i + 1 });
    await r.step(5);
    refs.push(new WeakRef(r));
    if (i % 10 === 9) await collect();
  }
  await collect();
  return refs.filter((ref) => ref.deref() === undefined).length;
}

// Warm-up: the engine's memory and V8's heap reach their working size.
await dropRuns(20);
const base = await memory();
const collected1 = await dropRuns(100);
const after100 = await memory();
const collected2 = await dropRuns(100);
const after200 = await memory();
console.log(
  `gc: dropped runs collected: ${collected1}/100, then ${collected2}/100; ` +
    `JS heap ${mib(base.heapUsed)} -> ${mib(after100.heapUsed)} -> ${mib(after200.heapUsed)}; ` +
    `RSS ${mib(base.rss)} -> ${mib(after100.rss)} -> ${mib(after200.rss)} (after 20 warm-up runs, then 100, then 200 dropped)`,
);
assert.ok(collected1 >= 95 && collected2 >= 95, `only ${collected1} and ${collected2} of 100 dropped runs were collected`);
assert.ok(after200.heapUsed - after100.heapUsed < HEAP_SLACK, `the JS heap grew by ${mib(after200.heapUsed - after100.heapUsed)} over 100 dropped runs`);
for (const [from, to] of [[base, after100], [after100, after200]]) {
  assert.ok(to.rss - from.rss < RSS_SLACK, `RSS grew by ${mib(to.rss - from.rss)} over 100 dropped runs: their engine memory is not freed`);
}

// The same with dispose(): the reference figure.
const refs = [];
for (let i = 0; i < 100; i++) {
  const r = await createRun({ hidden: [64], steps: 100, seed: i + 1 });
  await r.step(5);
  r.dispose();
  refs.push(new WeakRef(r));
}
const disposed = await memory();
console.log(`gc: 100 more runs with dispose(): RSS ${mib(disposed.rss)}, JS heap ${mib(disposed.heapUsed)}`);
console.log('gc: ok');
