// Node.js 20, ES modules, the installed package: trains the pinned run of
// settings.json (backend auto, which is the CPU here: Node has no WebGPU) and
// compares its hash chain, link by link, with the native CLI's manifest for
// the same settings; then diff() of the two manifests must say that the
// results are identical, and list apart what differs only in the
// environment (the user agent; how each setting was given).
//
//   node hash-chain.mjs CLI_MANIFEST.json

import { readFileSync } from 'node:fs';
import { createRun, diff } from 'reprolab';

const cli = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const settings = JSON.parse(readFileSync(new URL('./settings.json', import.meta.url), 'utf8'));

if (typeof globalThis.navigator !== 'undefined') {
  console.warn(`node: this Node.js has a global navigator (${process.version}); the test is meant for Node 20, which has none`);
}
const run = await createRun(settings);
console.log(`node: ${process.version}, backend ${run.backend}: ${run.backendReason}`);
if (run.backend !== 'cpu') throw new Error(`expected the CPU in Node.js, got ${run.backend}`);
const last = await run.train({ every: 100 });
const ours = run.hashChain();
const theirs = cli.hash_chain;
let mismatches = 0;
for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
  if (ours[i] !== theirs[i]) {
    if (mismatches === 0) {
      console.error(`node: FIRST MISMATCH at step ${i + 1}: CLI ${theirs[i] ?? '(none)'}, Node.js ${ours[i] ?? '(none)'}`);
    }
    mismatches += 1;
  }
}
if (mismatches) {
  console.error(`node: ${mismatches} of ${Math.max(ours.length, theirs.length)} links differ`);
  process.exit(1);
}
const d = await diff(cli, run.manifestJson());
const shown = JSON.stringify(d).slice(0, 600);
if (d.firstDivergentStep !== null) throw new Error(`diff says the chains part at step ${d.firstDivergentStep}: ${shown}`);
if (!d.resultsIdentical) throw new Error(`diff says the results differ: ${shown}`);
if (!d.identical || d.differences.length || d.causes.length) throw new Error(`diff says the runs differ beyond their environment: ${shown}`);
if (!d.environment.some((x) => x.field === 'user_agent')) throw new Error(`diff lists no user_agent among the environment's differences: ${shown}`);
if (run.manifest().weights_hash !== cli.weights_hash) throw new Error('final weights hashes differ');
console.log(
  `node: all ${ours.length} hash-chain links equal the native CLI's (final ${last.weightsHash}); ` +
    `diff: identical, results identical, first divergent step none; environment only: ${[...new Set(d.environment.map((x) => x.field.replace(/^config\.\w+\.source$/, 'config.*.source')))].join(', ')}`,
);
