// Types of the reprolab package (hand-written; the same for the browser and
// the Node.js entry points). The guide, with an example per feature, is
// README.md.

// `using` and `await using` (TypeScript 5.2+): the well-known symbols, for
// projects whose `lib` predates them (as @types/node declares them).
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
    readonly asyncDispose: unique symbol;
  }
}

/** Where a run trains: `auto` (WebGPU if there is one, else the CPU), `gpu` (strict) or `cpu`. */
export type Backend = 'auto' | 'gpu' | 'cpu';

/** A backend a run is on. */
export type RunBackend = 'gpu' | 'cpu';

/**
 * The nine sources of run-to-run variation. Every source not named in
 * `free` is pinned; a free seed is drawn and recorded, so a free run replays.
 */
export type Source =
  | 'init'
  | 'shuffle'
  | 'dropout'
  | 'engine_version'
  | 'gpu_reduction'
  | 'cpu_threads'
  | 'backend'
  | 'data_drift'
  | 'hparam_drift';

/** Data sets; `digits` means its latest version (`digits@2`). */
export type Dataset = 'digits' | 'digits@1' | 'digits@2' | 'spiral' | 'xor' | 'circles' | 'gaussians';

/**
 * A number, or its text, as form fields (`input.value`) and `--set
 * key=value` give it: the engine parses and checks the text, and a text that
 * is not a number is refused with a `ConfigError` naming the setting.
 */
export type Num = number | string;

/**
 * A run's settings: the same keys as the command-line tool's `--set`, its
 * config files and the manifest's `config`. Every key is optional (left out:
 * its default, see `defaultConfig()`); unknown keys are refused. Every value
 * may also be given as its text (`"0.02"`, `"64,32"`): the engine parses and
 * checks it, as it does form fields.
 */
export interface Config {
  /** Data set. Default `digits`. */
  dataset?: Dataset;
  /** Hidden layer widths, e.g. `[128]` or `[256, 256]` (or the text `"256,256"`); `[]` for none. Default `[128]`. */
  hidden?: readonly number[] | number | string;
  /** Hidden activation. Default `relu`. */
  activation?: 'relu' | 'tanh';
  /** Inverted dropout on hidden layers, in [0, 1). Default 0.1. */
  dropout?: Num;
  /** SGD step, above 0. Default 0.05. */
  learning_rate?: Num;
  /** SGD momentum, in [0, 1). Default 0.9. */
  momentum?: Num;
  /** L2 weight decay on weights (not biases), 0 or more. Default 0.0001. */
  weight_decay?: Num;
  /** Examples per step, at most the training-set size. Default 32. */
  batch_size?: Num;
  /** Training steps (minibatches), 1 to 100000000. Default 1500. */
  steps?: Num;
  /** Fraction held out for validation, in (0, 1). Default 0.2. */
  val_fraction?: Num;
  /** Master seed, a whole number from 0 to 2^53-1 (a number, a bigint, or its text). Default 1. */
  seed?: number | bigint | string;
  /** Validation every this many steps (and at the end). Default 50. */
  eval_every?: Num;
  /** Kernel version: 1 sums batch rows ascending, 2 descending. Default 2. */
  engine_version?: Num;
  /** CPU worker threads: Web Workers in browsers (1 to 64). Default 1. */
  threads?: Num;
  /** Chunks the batch is cut into, each a partial sum (1, or at least 3 and more than threads). Default 1. */
  chunks?: Num;
  /**
   * Determinism level: `run-to-run` (default; the same bits on the same
   * stack) or `exact` (the same bits on the CPU, in wasm and on every GPU that
   * passes the start-up probe); `none` trains with the run-to-run arithmetic.
   * The level granted and why are in the manifest (`level_granted`, `level_reason`).
   */
  level?: 'run-to-run' | 'exact' | 'none';
  /** Config-file version; 1 if given. */
  version?: 1;
}

/** The name of a setting. */
export type ConfigKey = Exclude<keyof Config, 'version'>;

/** Every setting of a run, as typed values. */
export interface FullConfig {
  dataset: string;
  hidden: number[];
  activation: 'relu' | 'tanh';
  dropout: number;
  learning_rate: number;
  momentum: number;
  weight_decay: number;
  batch_size: number;
  steps: number;
  val_fraction: number;
  seed: number;
  eval_every: number;
  engine_version: number;
  threads: number;
  chunks: number;
  level: 'run-to-run' | 'exact' | 'none';
}

// Global types that exist only with the DOM library or @types/node: `never`
// elsewhere, so that these types compile in any project.
type GlobalInstance<K extends string> = typeof globalThis extends { [P in K]: { prototype: infer T } } ? T : never;
type WasmModule = typeof globalThis extends { WebAssembly: { Module: { prototype: infer T } } } ? T : never;

/** An AbortSignal (`AbortController`'s, or `AbortSignal.timeout(ms)`). */
export type Signal = GlobalInstance<'AbortSignal'>;

/** Options of every call that can be cancelled. */
export interface Abortable {
  /**
   * Cancels the call: it rejects with a DOMException named `AbortError`
   * (its `cause` the signal's reason) at the next slice of work (a few
   * milliseconds on the CPU; on the GPU, once the engine call in flight,
   * a `step(n)` or a chunk of `metrics()`, has ended). Steps already taken
   * stay taken.
   */
  signal?: Signal;
}

/** Options of `createRun` and `rerun`. */
export interface RunOptions extends Abortable {
  /** Sources set free; every other source is pinned. Default `[]`. */
  free?: readonly Source[];
  /** Default `auto` for `createRun`; for `rerun`, the backend the run was recorded on. */
  backend?: Backend;
  /**
   * CPU runs with `threads` > 1: compute the chunks of every batch in that
   * many Web Workers. Default: where the environment has Web Workers;
   * `false` computes them in the engine itself (the same bits while
   * `cpu_threads` is pinned).
   */
  workers?: boolean;
}

/** Options of `resumeRun`. */
export interface ResumeOptions extends Abortable {
  /** Default: the backend the checkpointed run was on. */
  backend?: Backend;
  /** As in `RunOptions`. */
  workers?: boolean;
}

/** Where a run stands after a `step()`. */
export interface StepReport {
  /** Steps completed. */
  step: number;
  totalSteps: number;
  /** The loss of the last step, or null before the first. */
  trainLoss: number | null;
  /** The last validation error (a fraction in [0, 1]), or null before the first evaluation. */
  valError: number | null;
  valLoss: number | null;
  /** True once every step has run (or the run stopped). */
  done: boolean;
  /** Why the run stopped early (a non-finite loss or weight), or null. */
  stopped: string | null;
  /** 16 hex digits: the hash of the weights after the last step. */
  weightsHash: string;
  /** Where the last step ran. */
  backend: RunBackend;
}

/** What `metrics()` yields: a StepReport and the time since the loop began. */
export interface Metrics extends StepReport {
  elapsedMs: number;
}

/** Options of `metrics()`. */
export interface MetricsOptions extends Abortable {
  /** A report every this many steps. Without it, chunks sized to take about `targetMs`. */
  every?: number;
  /** The length of a chunk of steps when `every` is not given, in milliseconds. Default 15. */
  targetMs?: number;
}

/** Options of `train()`. */
export interface TrainOptions extends MetricsOptions {
  /** Called with every report. */
  onMetrics?: (metrics: Metrics) => void;
}

/**
 * The state of a run: `ready` (more steps to take, none being taken),
 * `running` (steps being taken, or a `metrics()` loop under way), `paused`,
 * `done`, `stopped` (a non-finite value), `cancelled`, `crashed`, `disposed`.
 */
export type RunState = 'ready' | 'running' | 'paused' | 'done' | 'stopped' | 'cancelled' | 'crashed' | 'disposed';

/** The GPU a run trains on (browsers may withhold the first three). */
export interface Adapter {
  vendor: string;
  architecture: string;
  description: string;
  graphicsBackend: string;
}

/** One point of the validation curve. */
export interface ValPoint {
  step: number;
  valError: number;
  valLoss: number | null;
}

/** The model's prediction over an n x n grid (2-D data sets). */
export interface DecisionGrid {
  n: number;
  classes: number;
  /** n * n predicted classes, row by row. */
  predicted: Uint8Array;
  /** n * n probabilities of the predicted class. */
  confidence: Float32Array;
}

/** The examples a run trains on (its training split, in split order), for drawing on a decision-boundary map. */
export interface DataPoints {
  /** Features per example (2 for the 2-D data sets). */
  dim: number;
  classes: number;
  /** Number of examples. */
  n: number;
  /** n * dim features, row by row; on a 2-D data set in the square `decisionGrid` spans. */
  x: Float32Array;
  /** n labels, 0 to classes - 1. */
  labels: Uint8Array;
}

/** The one change that would let an inert source act: settings to set, or a backend to choose. */
export type SourceFix = { set: Record<string, string> } | { backend: 'gpu' | 'cpu' };

/** A free source that could not act in a run: why not, and the change that would let it (or null). */
export interface InertSource {
  source: Source;
  acts: false;
  why: string;
  fix: SourceFix | null;
}

/** The threads computing a CPU run's chunks: `size` Web Workers and the run's own thread (`threads` = `size` + 1). */
export interface Workers {
  size: number;
  threads: number;
  chunks: number;
  /**
   * True with the WebAssembly-threads build (the repository's js/threaded.js,
   * not in this package): the threads are Web Workers sharing the engine's
   * memory, started by its init, and `size` is 0.
   */
  shared?: boolean;
}

/** A setting as the manifest records it. */
export interface ConfigEntry {
  value: string | number;
  source: 'default' | 'config' | 'override';
}

/** One stretch of steps on one backend. */
export interface BackendSegment {
  backend: RunBackend;
  from_step: number;
  to_step: number;
  reason: string;
}

/**
 * A run's manifest (manifest_version 1): what it depended on and what it
 * produced, field by field as in the repository's docs/MANIFEST.md. The
 * `checksum` covers the content: an edited manifest is refused.
 */
export interface Manifest {
  manifest_version: 1;
  engine_version: number;
  reprolab_version: string;
  backend: RunBackend;
  adapter: { vendor: string; architecture: string; description: string; graphics_backend: string } | null;
  backend_history: BackendSegment[];
  gpu_reduction: 'fixed' | 'atomic';
  user_agent: string;
  level_requested: string;
  level_granted: string;
  level_reason: string;
  config_version: number;
  config: Record<ConfigKey, ConfigEntry>;
  free: Source[];
  /** Every stream's 64-bit seed, as a decimal string. */
  seeds: Record<string, string>;
  data: { name: string; version: number; size: number; dim: number; classes: number; fingerprint: string };
  data_fingerprint: string;
  parameters: number;
  steps_completed: number;
  stopped: { step: number; reason: string } | null;
  train_loss: number[];
  val_error_curve: { step: number; val_error: number; val_loss: number | null }[];
  val_error: number | null;
  val_loss: number | null;
  initial_weights_hash: string;
  weights_hash: string;
  /** One 16-hex-digit link per completed step. */
  hash_chain: string[];
  checksum: string;
  [field: string]: unknown;
}

/** A checkpoint (checkpoint_version 1): `resumeRun` continues it bit for bit. */
export interface Checkpoint {
  checkpoint_version: 1;
  step: number;
  chain_head: string;
  params_bits: number[];
  velocity_bits: number[];
  streams: Record<string, unknown>;
  data_cursor: { epoch: number; index: number };
  manifest: Manifest;
  checksum: string;
  [field: string]: unknown;
}

/** Determinism levels: what a run (or a replay) promises. */
export type Level = 'none' | 'run-to-run' | 'exact';

/** Where a replay of a manifest can run here, and what it can promise. */
export interface ReplayPlan {
  /** The backend a comparable replay runs on. */
  backend: RunBackend;
  /** False when no replay here can be compared bit for bit (e.g. a GPU record without WebGPU). */
  canReplay: boolean;
  /** Why, in words. */
  reason: string;
  /** The level a replay here can promise. */
  level: Level;
}

/** Where a replay ran and what it promised: in every `ReplayResult`. */
export interface ReplayContext {
  /** Where it ran (or, when it did not, where it would have to). */
  backend: RunBackend;
  /** The level that can be promised here. */
  level: Level;
  /** Why this backend and level, in words. */
  reason: string;
  /** True when the replay ran where the record can be compared bit for bit. */
  comparable: boolean;
}

/**
 * What `replay` found: every link equal, the first step where they part, or
 * (`identical: null`) no replay here, with the reason.
 */
export type ReplayResult =
  | ({ identical: true; steps: number } & ReplayContext)
  | ({ identical: false; step: number; recorded: string | null; replayed: string | null } & ReplayContext)
  | ({ identical: null; step: null } & ReplayContext);

/** Options of `replay`. */
export interface ReplayOptions extends Abortable {
  /** `auto` (default): where the plan says, or not at all; `cpu` or `gpu`: there, comparable or not. */
  backend?: Backend;
}

/** A difference between two manifests. */
export interface Difference {
  /** The manifest field, e.g. `config.seed`, `hash_chain[step 1]`, `user_agent`. */
  field: string;
  a: unknown;
  b: unknown;
}

/** What `diff` found. */
export interface DiffResult {
  /** The same run: no difference but the environment's. */
  identical: boolean;
  /** The same results: hash chain, losses and final weights. */
  resultsIdentical: boolean;
  /** The first step (1-based) whose hash-chain links differ, or null. */
  firstDivergentStep: number | null;
  /** Every difference in what the runs depended on or computed. */
  differences: Difference[];
  /** Differences only about where they ran (user agent, reprolab version, adapter name). */
  environment: Difference[];
  /** The sources that explain the differences. */
  causes: Source[];
}

/** Why a run is on its backend. */
export interface BackendDecision {
  backend: RunBackend;
  /**
   * `requested` (asked explicitly), `auto_gpu`, `auto_no_gpu`,
   * `auto_software_gpu` (auto prefers the CPU to a software adapter),
   * `auto_gpu_refused` (the GPU cannot take this run), `device_lost` (the
   * GPU failed mid-run; the run went on on the CPU), `recorded` (following
   * a record's backends).
   */
  kind: 'requested' | 'auto_gpu' | 'auto_no_gpu' | 'auto_software_gpu' | 'auto_gpu_refused' | 'device_lost' | 'recorded';
  /** The same, in words (for people: no code should parse it). */
  text: string;
}

/** A source of variation and what it covers. */
export interface SourceInfo {
  name: Source;
  explanation: string;
}

/** A training run, on the GPU (WebGPU) or the CPU. Made by `createRun`, `resumeRun` and `rerun`. */
export declare class Run {
  private constructor();
  /** Where the next step runs. */
  readonly backend: RunBackend;
  /** Why this backend, in words (e.g. "auto: running on the CPU because ..."): `backendDecision.text`. */
  readonly backendReason: string;
  /** Why this backend, as data. */
  readonly backendDecision: BackendDecision;
  /** The GPU adapter, or null on the CPU. */
  readonly adapter: Adapter | null;
  /** The determinism level granted (the manifest's `level_granted`). */
  readonly level: Level;
  /** Why the level is what it is, in words (the manifest's `level_reason`). */
  readonly levelReason: string;
  /** The free sources that could not act in this run (empty when every free source could). */
  readonly inertSources: InertSource[];
  /** True when the run trains on a software GPU adapter (SwiftShader, lavapipe): the GPU emulated on the CPU. */
  readonly adapterIsSoftware: boolean;
  /** Steps completed. */
  readonly stepsDone: number;
  /** Steps the run asks for (the setting `steps`). */
  readonly totalSteps: number;
  readonly state: RunState;
  /** True once every step has run, or a non-finite value stopped the run. */
  readonly done: boolean;
  /** Every setting of the run, as typed values. */
  readonly config: FullConfig;
  /** The sources set free. */
  readonly free: Source[];
  /** The Web Workers computing (or, once the run has ended, that computed) the chunks of every batch, or null. */
  readonly workers: Workers | null;
  /** True when partial sums combine in order of arrival (`cpu_threads` free). */
  readonly arrivalOrder: boolean;

  /**
   * Runs up to `n` (a whole number from 1) steps, after any steps already
   * asked for. Rejects with a `RunCancelledError` once cancelled (a step in
   * flight when `cancel()` is called resolves with the steps it took), with
   * an AbortError when `signal` aborts.
   */
  step(n?: number, options?: Abortable): Promise<StepReport>;
  /**
   * Trains to the end, yielding a report after every chunk of steps; waits
   * while paused; ends on cancel(); rejects with an AbortError when `signal`
   * aborts. Leaving the loop early (`break`) leaves the run `ready`.
   */
  metrics(options?: MetricsOptions): AsyncGenerator<Metrics, void, undefined>;
  /** Trains to the end, calling `onMetrics` with every report; resolves to the last report. */
  train(options?: TrainOptions): Promise<StepReport>;
  /**
   * Holds `metrics()` and `train()` loops at the next slice of work (a few
   * milliseconds); resolves once the work in flight has ended (on the GPU,
   * a slice may still be running when `pause()` returns).
   */
  pause(): Promise<void>;
  /** Lets paused loops go on. */
  resume(): void;
  /** Ends the run at the next slice of work: loops end, later `step()` calls reject. What it recorded stays readable. */
  cancel(): void;
  /** Cancels the run and frees its memory in the engine; every later call is refused. A run dropped without it is freed when garbage collected. */
  dispose(): void;
  /** `using run = await createRun()`: `dispose()` at the end of the scope. */
  [Symbol.dispose](): void;
  /** `await using run = await createRun()`: `dispose()`, resolving once the engine's memory is freed. */
  [Symbol.asyncDispose](): Promise<void>;

  /** The training loss of every completed step. */
  trainLoss(): Float32Array;
  /** The validation curve. */
  valCurve(): ValPoint[];
  /** The hash chain: one 16-hex-digit link per completed step. */
  hashChain(): string[];
  /** A copy of the weights as they stand (on the GPU: as last read back). */
  params(): Float32Array;
  /** The manifest, as an object. */
  manifest(): Manifest;
  /** The manifest as JSON text, exactly as the engine writes it (save this one to a file). */
  manifestJson(): string;
  /** A checkpoint of the run as it stands. */
  checkpoint(): Checkpoint;
  /** A checkpoint as JSON text. */
  checkpointJson(): string;
  /** The predicted class over an n x n grid of the square [lo, hi]^2 (2-D data sets). */
  decisionGrid(n: number, lo: number, hi: number): DecisionGrid;
  /** The examples the run trains on (its training split), e.g. to draw on the decision grid. */
  dataPoints(): DataPoints;
}

/** What failed, as `code` on every error of this package. */
export type ErrorCode =
  | 'invalid_settings'
  | 'limit'
  | 'backend_unavailable'
  | 'invalid_record'
  | 'busy'
  | 'cancelled'
  | 'disposed'
  | 'crashed'
  | 'engine_load'
  | 'engine';

/**
 * The base of every error of this package. A call cancelled by an
 * AbortSignal rejects with a DOMException named `AbortError` instead.
 */
export declare class ReprolabError extends Error {
  readonly code: ErrorCode;
}

/** A setting, an option or an argument that was refused; `field` names it. */
export declare class ConfigError extends ReprolabError {
  readonly name: 'ConfigError';
  /** `invalid_settings`, `limit` (a resource limit) or `backend_unavailable` (a strict `gpu` without one). */
  readonly code: 'invalid_settings' | 'limit' | 'backend_unavailable';
  /** The setting, option or argument, e.g. `learning_rate`, `free`, `backend`, `every`. */
  readonly field: string;
}

/** A manifest or checkpoint refused (edited, truncated, another version, inconsistent). */
export declare class RecordError extends ReprolabError {
  readonly name: 'RecordError';
  readonly code: 'invalid_record';
}

/** The record was read while the run was taking steps. */
export declare class RunBusyError extends ReprolabError {
  readonly name: 'RunBusyError';
  readonly code: 'busy';
}

/** A step was asked of a cancelled run. */
export declare class RunCancelledError extends ReprolabError {
  readonly name: 'RunCancelledError';
  readonly code: 'cancelled';
}

/** A disposed run was used. */
export declare class RunDisposedError extends ReprolabError {
  readonly name: 'RunDisposedError';
  readonly code: 'disposed';
}

/**
 * The engine panicked. Every object of that engine instance refuses later
 * calls with this error; the next `createRun` (or `resumeRun`, ...) starts a
 * fresh instance.
 */
export declare class EngineCrashError extends ReprolabError {
  readonly name: 'EngineCrashError';
  readonly code: 'crashed';
  /** The panic's message, where the engine reported it. */
  readonly panic: string | null;
}

/** The engine's WebAssembly could not be fetched, compiled or instantiated. */
export declare class EngineLoadError extends ReprolabError {
  readonly name: 'EngineLoadError';
  readonly code: 'engine_load';
}

/** Where to load the engine's WebAssembly from: a URL, a fetch Response, bytes or a compiled module. */
export type WasmSource = string | GlobalInstance<'URL'> | GlobalInstance<'Response'> | ArrayBuffer | ArrayBufferView | WasmModule;

/** Options of `init`. */
export interface InitOptions {
  /** Where the .wasm is, when the default (next to the glue) does not work for a host. */
  wasm?: WasmSource;
  /**
   * Web Workers to start now and keep warm (0 to 64; browsers only): later
   * runs with up to this many `threads` use them, with no network and no
   * start-up. Default 0.
   */
  workers?: number;
}

/**
 * Fetches, compiles and starts the engine now (it loads on first use
 * anyway): a page that awaits it at start-up needs the network no more for
 * the engine (runs, replays, a fresh instance after a crash, and the
 * CPU-thread Web Workers, which get the compiled module; with `workers`,
 * their scripts too). Rejects with an `EngineLoadError`.
 */
export function init(options?: InitOptions): Promise<void>;

/**
 * Starts a run. Rejects with a `ConfigError` naming the field for a refused
 * setting or option (wrong type, unknown key, value out of range), and for
 * `backend: 'gpu'` without WebGPU.
 */
export function createRun(config?: Config, options?: RunOptions): Promise<Run>;

/** Continues a checkpoint (object or JSON text) bit for bit. */
export function resumeRun(checkpoint: Checkpoint | string, options?: ResumeOptions): Promise<Run>;

/** Re-runs a manifest with the sources in `free` set free and the rest pinned to the record. */
export function rerun(manifest: Manifest | string, options?: RunOptions): Promise<Run>;

/**
 * Re-runs a manifest where it can be compared (the CPU, or the GPU for a
 * GPU record where there is WebGPU, following the recorded backends) and
 * compares every step's hash with the record. Where no replay here can be
 * compared, answers `identical: null` with the reason, without running.
 */
export function replay(manifest: Manifest | string, options?: ReplayOptions): Promise<ReplayResult>;

/** Where a replay of `manifest` can run here, and the level it can promise. */
export function replayPlan(manifest: Manifest | string): Promise<ReplayPlan>;

/**
 * Compares two manifests: every difference, the first divergent step, the
 * sources that explain them, and apart, the differences of environment only.
 */
export function diff(a: Manifest | string, b: Manifest | string): Promise<DiffResult>;

/** Every setting's default. */
export function defaultConfig(): Promise<FullConfig>;

/** One line of help per setting. */
export function configHelp(): Promise<Record<ConfigKey, string>>;

/** The nine sources of run-to-run variation. */
export function sources(): Promise<SourceInfo[]>;

/** The engine's version, e.g. `reprolab 0.1.0, kernels v2`. */
export function engineVersion(): Promise<string>;

/**
 * Test hook: makes the engine panic, to test recovery. Never call it otherwise.
 * `{ async: true }` panics inside an async export, in a microtask, as a panic
 * inside `createRun` or `resumeRun` would.
 */
export function debugPanic(options?: { async?: boolean }): Promise<never>;
