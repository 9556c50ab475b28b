// The "CPU threads" of a run in the browser: a pool of Web Workers, each with
// its own instance of the engine (chunk-worker.js), computing the chunks of
// every training step. Each worker gets the page's compiled
// WebAssembly.Module with its setup (postMessage clones a module), so the
// .wasm is fetched and compiled once, not once per worker. No
// SharedArrayBuffer: the weights go out and the partial results come back by
// postMessage, so any static server will do. Used by run.js for CPU runs
// with threads > 1, and by init({ workers }) to start warm workers; not part
// of the public API.
//
//   const pool = await WorkerPool.create(engine, 3, module); // engine: a run's Trainer, or an object with the same
//                                                            // workerSetup, chunkJob, paramCount, writeParams,
//                                                            // takePartial, applyPartials (and computeChunk)
//   const report = await pool.run(10);                       // 10 steps: the engine's raw report, or null
//   pool.terminate();                                        // its workers end, or wait warm for the next pool
//
// Three threads are the coordinator (the thread that runs the pool: a run's
// own Web Worker on the page) and two Web Workers: the coordinator computes
// the first chunks of each step itself (`computeChunk`, no copy) while the
// workers compute the others, rather than waiting for them. Without
// `computeChunk` the pool has one worker per thread.
//
// Each step hands the workers' chunks out as a queue, keeping up to two requests
// with each worker (so that it starts its next chunk without waiting for a
// message), and gives the engine the partial results in the order they
// arrive; the engine
// combines them in that order when `cpu_threads` is free, and in chunk order
// when it is pinned.
//
// No buffer is made or copied per step: each worker has a weights buffer
// that goes to it (transferred, not cloned) with its first chunk of a step
// and comes back with the answer, and gradient buffers that go back and
// forth the same way; the engines copy into and out of them once. A
// worker's next chunk is sent before the engine takes the chunk it answered,
// so the copy overlaps the worker's work.

// serde-wasm-bindgen may give a Map for a Rust struct; accept either.
const toObject = (value) => (value instanceof Map ? Object.fromEntries(value) : value);

// One worker, answering its requests one at a time in the order they were
// sent (several may wait in its queue). Once it has failed (an error reply,
// a script that would not load, a message that could not be read) or has
// been terminated, every request is refused with the reason.
let started = 0; // workers started, for their names

class Channel {
  constructor() {
    this.name = `Web Worker ${++started}`;
    this.pending = []; // { resolve, reject } of the requests sent, oldest first
    this.broken = null; // the Error that ended this worker
    this.step = -1; // the step whose weights the worker holds
    this.params = null; // the buffer for the weights it gets (while not with the worker)
    this.spare = []; // gradient buffers to hand back to the worker
    // Written out in full so that bundlers (Vite, webpack, esbuild with a
    // plugin) find the worker script and bundle it.
    this.worker = new Worker(new URL('./chunk-worker.js', import.meta.url), { type: 'module' });
    // Nothing is sent before the worker says its handler is in place: a
    // module worker can lose messages that arrive while its script loads.
    this.hello = new Promise((resolve) => {
      this.helloResolve = resolve;
    });
    this.worker.onmessage = ({ data }) => {
      if (data?.hello === true) this.helloResolve();
      else if (typeof data?.error === 'string') this.fail(new Error(`${this.name}: ${data.error}`));
      else this.settle(null, data);
    };
    this.worker.onerror = (event) => {
      event.preventDefault(); // it becomes the step's error instead
      this.fail(new Error(`${this.name} failed: ${event.message || 'its script could not be loaded'}`));
    };
    this.worker.onmessageerror = () => this.fail(new Error(`${this.name} sent a message that could not be read`));
  }

  // `transfer`: the buffers that go with the message (no longer usable here).
  request(message, transfer = []) {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.hello.then(() => {
        if (!this.broken) this.worker.postMessage(message, transfer);
      });
    });
  }

  // The answer to the oldest request.
  settle(error, value) {
    const pending = this.pending.shift();
    if (error) pending?.reject(error);
    else pending?.resolve(value);
  }

  fail(error) {
    this.broken ??= error;
    this.helloResolve?.();
    for (const pending of this.pending.splice(0)) pending.reject(this.broken);
  }

  terminate() {
    this.worker.terminate();
    this.fail(new Error('the Web Worker pool was stopped'));
  }
}

// Idle workers kept for later runs: only after warmWorkers(n) (init({
// workers: n })), at most n. A warm worker has loaded its script and the
// engine, so a later run needs no network and no start-up.
const idle = [];
let keepIdle = 0;

/** Starts workers until n are idle and ready (their engine loaded from `module`), and keeps up to n idle from then on. */
export async function warmWorkers(n, module) {
  keepIdle = Math.max(keepIdle, n);
  const fresh = [];
  while (idle.length + fresh.length < n) fresh.push(new Channel());
  try {
    await Promise.all(fresh.map((channel) => channel.request(module ? { module } : {})));
  } catch (e) {
    for (const channel of fresh) channel.terminate();
    throw e;
  }
  idle.push(...fresh);
}

/** Workers idle now (warm, for later runs). */
export const idleWorkers = () => idle.length;

const takeChannel = () => idle.pop() ?? new Channel();

// A worker whose pool ended: kept warm when wanted and healthy and not in
// the middle of a request (a late answer must not reach its next pool), else
// terminated.
function giveBack(channel) {
  if (!channel.broken && !channel.pending.length && idle.length < keepIdle) {
    channel.step = -1;
    channel.params = null;
    channel.spare = [];
    idle.push(channel);
  } else {
    channel.terminate();
  }
}

// Requests kept with each worker during a step.
const QUEUE = 2;

// Lets the messages that came in meanwhile (workers' answers) be handled,
// between two chunks the coordinator computes itself; a message rather
// than a timer, which browsers may delay by 4 ms and more. One channel,
// made at the first use and kept.
let yieldChannel = null;
const yieldWaiters = [];
const yieldToEvents = () =>
  new Promise((resolve) => {
    if (!yieldChannel) {
      yieldChannel = new MessageChannel();
      yieldChannel.port1.onmessage = () => yieldWaiters.shift()?.();
      yieldChannel.port1.unref?.(); // Node.js: an idle port keeps no process alive
    }
    yieldWaiters.push(resolve);
    yieldChannel.port2.postMessage(null);
  });

export class WorkerPool {
  // A pool of n threads: when the engine has `computeChunk`, the thread
  // that runs the pool (the coordinator) computes a share of each step's
  // chunks itself, beside n - 1 workers (at least one); otherwise n
  // workers. Each worker instantiates `module` (the compiled engine; when
  // null, each fetches its own) and rebuilds the run from its setup;
  // resolves once all of them are ready.
  static async create(engine, n, module = null) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`a worker pool needs at least one thread, got ${n}`);
    const shares = typeof engine.computeChunk === 'function';
    const workers = shares ? Math.max(1, n - 1) : n;
    const setup = engine.workerSetup();
    const pool = new WorkerPool(engine, Array.from({ length: workers }, takeChannel), shares);
    try {
      await Promise.all(pool.channels.map((channel) => channel.request(module ? { setup, module } : { setup })));
    } catch (e) {
      pool.terminate();
      throw e;
    }
    return pool;
  }

  constructor(engine, channels, shares = false) {
    this.engine = engine;
    this.channels = channels;
    this.size = channels.length; // Web Workers
    this.shares = shares; // the coordinator computes chunks too
    this.threads = this.size + (shares ? 1 : 0);
    this.chunks = 0; // chunks per step, once a step has run
    this.stopped = false;
  }

  // One step: resolves to the engine's report, or to null when the engine
  // has no job for workers (finished or stopped). A worker's failure rejects
  // with its message and ends the pool.
  async step() {
    if (this.stopped) throw new Error('the Web Worker pool was stopped');
    const engine = this.engine;
    const job = toObject(engine.chunkJob());
    if (!job) return null;
    const { step, chunks } = job;
    const n = engine.paramCount;
    this.chunks = chunks;
    // The coordinator's share, a whole share each thread rounded down (it
    // also takes, sums and applies the results): the first chunks when the
    // order is pinned (in turn first, so they are summed at once); the last
    // ones when it is free (the order of arrival), so that they race the
    // workers' first ones and the order of the sum follows the timing.
    const own = this.shares ? Math.floor(chunks / this.threads) : 0;
    const ownAtStart = engine.arrivalOrder !== true;
    const ownLo = ownAtStart ? 0 : chunks - own; // the coordinator's: ownLo .. ownLo + own
    let next = ownAtStart ? own : 0; // the workers': next .. end
    const end = ownAtStart ? chunks : chunks - own;
    let failed = false;
    // The request for the queue's next chunk to `channel`.
    const send = (channel) => {
      // A stopped pool's idle workers may already serve another pool.
      if (this.stopped) throw new Error('the Web Worker pool was stopped');
      const message = { step, chunk: next++ };
      const transfer = [];
      if (channel.step !== step) {
        // The weights, once per worker and step.
        const params = channel.params?.length === n ? channel.params : new Float32Array(n);
        channel.params = null;
        engine.writeParams(params);
        message.params = params;
        transfer.push(params.buffer);
        channel.step = step;
      }
      if (channel.spare.length) {
        message.buffers = channel.spare;
        transfer.push(...channel.spare.map((b) => b.buffer));
        channel.spare = [];
      }
      return channel.request(message, transfer);
    };
    // Requests in flight per worker, oldest first.
    const inFlight = new Map(this.channels.map((channel) => [channel, []]));
    const request = (channel) => {
      const r = send(channel);
      r.catch(() => {}); // its failure is awaited below, or dropped once the step failed
      inFlight.get(channel).push(r);
    };
    // The first chunks go round the workers (0 to the first, 1 to the
    // second, ...), so that pinned chunk order finds them arriving roughly
    // in order and sums them as they come rather than all at the end.
    const start = () => {
      for (let depth = 0; depth < QUEUE; depth++) {
        for (const channel of this.channels) if (next < end) request(channel);
      }
    };
    const work = async (channel) => {
      const queue = inFlight.get(channel);
      while (queue.length) {
        const reply = await queue.shift();
        if (!failed && next < end) request(channel);
        if (reply.params instanceof Float32Array) channel.params = reply.params;
        engine.takePartial(reply.step, reply.chunk, reply.loss_sum, reply.grads);
        channel.spare.push(reply.grads);
      }
    };
    try {
      start();
      const answers = Promise.all(this.channels.map(work));
      // Awaited below, once the coordinator's chunks are done; a worker's
      // failure stops the coordinator's chunks too.
      answers.catch(() => {
        failed = true;
      });
      for (let c = ownLo; c < ownLo + own && !failed; c++) {
        await yieldToEvents(); // also sends the requests just queued, and takes the answers come meanwhile
        engine.computeChunk(step, c);
      }
      await answers;
    } catch (e) {
      failed = true;
      this.terminate(); // the others' requests are refused; their errors are dropped
      throw e;
    }
    return engine.applyPartials();
  }

  // Up to k steps; resolves to the last report (null if none ran).
  async run(k) {
    let report = null;
    for (let i = 0; i < k; i++) {
      const next = await this.step();
      if (!next) break;
      report = toObject(next);
      if (report.done || report.stopped) break;
    }
    return report;
  }

  terminate() {
    if (this.stopped) return;
    this.stopped = true;
    for (const channel of this.channels) giveBack(channel);
  }
}
