// A TypeScript consumer of the installed package: `tsc --noEmit` checks it
// against the shipped types (tsconfig.json: bundler resolution with the DOM;
// tsconfig.node.json: Node16 resolution, no DOM, no @types/node). The lines
// after @ts-expect-error must be type errors, or tsc fails.
import {
  ConfigError,
  EngineCrashError,
  createRun,
  defaultConfig,
  diff,
  replay,
  rerun,
  resumeRun,
  sources,
  type Checkpoint,
  type Config,
  type DiffResult,
  type Manifest,
  type Metrics,
  type Run,
  type RunBackend,
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
  const replayed = await replay(manifest);
  if (!replayed.identical) log(replayed.step, replayed.recorded);
  const other = await rerun(manifest, { free: ['dropout'] });
  await other.train();
  const d: DiffResult = await diff(manifest, other.manifestJson());
  const step: number | null = d.firstDivergentStep;
  const defaults = await defaultConfig();
  const widths: number[] = defaults.hidden;
  const names = (await sources()).map((s) => s.name);
  const loss: Float32Array = run.trainLoss();
  resumed.dispose();
  try {
    await createRun({ learning_rate: -1 });
  } catch (e) {
    if (e instanceof ConfigError) log(e.field);
    if (e instanceof EngineCrashError) log(e.panic);
  }
  // Text, as form fields give it.
  await createRun({ learning_rate: '0.02', hidden: '64,64', seed: '12345678901234567', engine_version: '1' });
  return [backend, why, hash, chain.length, step, widths, names, loss.length].join();
}

export async function mistakes(): Promise<void> {
  // @ts-expect-error learning_rate is a number
  await createRun({ learning_rate: true });
  // @ts-expect-error activation is relu or tanh
  await createRun({ activation: 'sigmoid' });
  // @ts-expect-error the text of a number must be a number
  await createRun({ momentum: 'fast' });
  // @ts-expect-error unknown setting
  await createRun({ lerning_rate: 0.1 });
  // @ts-expect-error unknown source
  await createRun({}, { free: ['weather'] });
  // @ts-expect-error backend is auto, gpu or cpu
  await createRun({}, { backend: 'tpu' });
  const run = await createRun();
  // @ts-expect-error backend is read-only
  run.backend = 'gpu';
  // @ts-expect-error a manifest is an object or its JSON text
  await replay(42);
}
