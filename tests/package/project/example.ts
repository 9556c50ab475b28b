// A TypeScript consumer of the installed package: `tsc --noEmit` checks it
// against the shipped types (tsconfig.json: bundler resolution with the DOM;
// tsconfig.node.json: Node16 resolution, no DOM, no @types/node). The lines
// after @ts-expect-error must be type errors, or tsc fails.
import {
  ConfigError,
  EngineCrashError,
  ReprolabError,
  RunCancelledError,
  createRun,
  defaultConfig,
  diff,
  replay,
  rerun,
  resumeRun,
  sources,
  type BackendDecision,
  type DataPoints,
  type InertSource,
  type Checkpoint,
  type Config,
  type ErrorCode,
  type Level,
  type ReplayResult,
  type DiffResult,
  type Manifest,
  type Metrics,
  type Run,
  type RunBackend,
  type Signal,
  type StepReport,
} from 'reprolab';

// No console without the DOM library or @types/node.
const log = (..._values: unknown[]): void => {};

export async function example(): Promise<string> {
  const config: Config = { dataset: 'digits', hidden: [64, 32], learning_rate: 0.02, seed: 7n, steps: 200 };
  const run: Run = await createRun(config, { free: ['shuffle'], backend: 'auto' });
  const backend: RunBackend = run.backend;
  const why: string = run.backendReason;
  const first: StepReport = await run.step(10);
  const hash: string = first.weightsHash;
  run.pause();
  run.resume();
  for await (const m of run.metrics({ every: 50 })) {
    const metrics: Metrics = m;
    if (metrics.valError !== null && metrics.valError < 0.05) run.cancel();
  }
  await run.train({ onMetrics: (m) => log(m.step, m.trainLoss) });
  const manifest: Manifest = run.manifest();
  const chain: string[] = manifest.hash_chain;
  const checkpoint: Checkpoint = run.checkpoint();
  const resumed: Run = await resumeRun(checkpoint);
  const replayed: ReplayResult = await replay(manifest);
  if (replayed.identical === false) log(replayed.step, replayed.recorded);
  if (replayed.identical === null) log(replayed.reason);
  const level: Level = replayed.level;
  const other = await rerun(manifest, { free: ['dropout'] });
  await other.train();
  const d: DiffResult = await diff(manifest, other.manifestJson());
  const step: number | null = d.firstDivergentStep;
  const same: boolean = d.resultsIdentical && d.environment.length >= 0;
  const decision: BackendDecision = run.backendDecision;
  const defaults = await defaultConfig();
  const widths: number[] = defaults.hidden;
  const names = (await sources()).map((s) => s.name);
  const loss: Float32Array = run.trainLoss();
  const granted: Level = run.level;
  const levelWhy: string = run.levelReason;
  const inert: InertSource[] = run.inertSources;
  const fixes = inert.map((i) => (i.fix && 'set' in i.fix ? Object.keys(i.fix.set).join() : i.fix?.backend));
  const software: boolean = run.adapterIsSoftware;
  const points: DataPoints = run.dataPoints();
  const xy: Float32Array = points.x;
  const labels: Uint8Array = points.labels;
  log(granted, levelWhy, fixes, software, xy.length, labels.length, points.dim);
  resumed.dispose();
  try {
    await createRun({ learning_rate: -1 });
  } catch (e) {
    if (e instanceof ConfigError) log(e.field, e.code);
    if (e instanceof EngineCrashError) log(e.panic);
    if (e instanceof RunCancelledError) {
      const cancelled: 'cancelled' = e.code;
      log(cancelled);
    }
    if (e instanceof ReprolabError) {
      const code: ErrorCode = e.code;
      log(code);
    }
  }
  // Text, as form fields give it.
  await createRun({ learning_rate: '0.02', hidden: '64,64', seed: '12345678901234567', engine_version: '1' });
  run[Symbol.dispose]();
  await other[Symbol.asyncDispose]();
  return [backend, why, hash, chain.length, step, widths, names, loss.length, level, same, decision.kind].join();
}

// A form's fields are text: every numeric setting takes it.
export async function fromForm(fields: { learningRate: string; steps: string; seed: string; hidden: string }): Promise<Run> {
  return createRun({ learning_rate: fields.learningRate, steps: fields.steps, seed: fields.seed, hidden: fields.hidden });
}

// Cancellation: a signal on createRun, train, metrics and step.
export async function cancellable(signal: Signal): Promise<void> {
  const run = await createRun({ steps: 100 }, { signal });
  await run.step(1, { signal });
  for await (const m of run.metrics({ every: 10, signal })) log(m.step);
  await run.train({ signal, onMetrics: (m) => log(m.elapsedMs) });
}

export async function mistakes(): Promise<void> {
  // @ts-expect-error learning_rate is a number
  await createRun({ learning_rate: true });
  // @ts-expect-error activation is relu or tanh
  await createRun({ activation: 'sigmoid' });
  // @ts-expect-error momentum is a number or its text
  await createRun({ momentum: true });
  // @ts-expect-error unknown setting
  await createRun({ lerning_rate: 0.1 });
  // @ts-expect-error unknown source
  await createRun({}, { free: ['weather'] });
  // @ts-expect-error backend is auto, gpu or cpu
  await createRun({}, { backend: 'tpu' });
  const run = await createRun();
  // @ts-expect-error backend is read-only
  run.backend = 'gpu';
  // @ts-expect-error level is read-only
  run.level = 'exact';
  // @ts-expect-error a level is none, run-to-run or exact
  await createRun({ level: 'bitwise' });
  // @ts-expect-error a manifest is an object or its JSON text
  await replay(42);
  // @ts-expect-error replay's backend is auto, gpu or cpu
  await replay('{}', { backend: 'tpu' });
  // @ts-expect-error the state is read-only
  run.state = 'ready';
}
