//! The command-line face: arguments in, files and messages out; the driver
//! decides everything else.

mod files;
mod progress;
mod soak;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use reprolab::checkpoint::Checkpoint;
use reprolab::driver::{self, BackendRequest, Run};
use reprolab::manifest::{self, Manifest, ReplayOutcome};
use reprolab::record::{StopKind, Stopped};
use reprolab::sources::{self, Source};
use reprolab::{config, Error, Origin, Settings};

use files::{check_output, read_text, write_bytes, write_text, write_with, HistoryFile};
use progress::Progress;

#[derive(Parser)]
#[command(
    name = "reprolab",
    version,
    about = "Train a small MLP with every source of non-determinism pinned or free, and prove it bit for bit."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// The CPU engine.
    Cpu,
    /// The GPU engine (strict: fails with status 3 when unavailable).
    Gpu,
    /// A hardware GPU when there is one that can take the run, else the CPU
    /// (a software GPU such as lavapipe is slower than the CPU engine).
    Auto,
    /// Any GPU, software ones included, else the CPU (what a free `backend`
    /// source does).
    Any,
}

#[derive(Subcommand)]
enum Command {
    /// Train a run and write its manifest.
    Train {
        /// A JSON file of settings, e.g. {"hidden": "256,256", "learning_rate": 0.1}.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override one setting, e.g. --set learning_rate=0.1 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Master seed (same as --set seed=N).
        #[arg(long, allow_hyphen_values = true)]
        seed: Option<String>,
        /// Set a source free (repeatable): init, shuffle, dropout, engine_version, gpu_reduction,
        /// cpu_threads, backend, data_drift, hparam_drift.
        #[arg(long = "free", value_name = "SOURCE")]
        free: Vec<String>,
        /// Number of steps (same as --set steps=N).
        #[arg(long, allow_hyphen_values = true)]
        steps: Option<String>,
        /// Engine (kernel) version, 1 or 2 (same as --set engine_version=V).
        #[arg(long, allow_hyphen_values = true)]
        engine_version: Option<String>,
        /// CPU worker threads (same as --set threads=N).
        #[arg(long, allow_hyphen_values = true)]
        threads: Option<String>,
        /// Chunks the batch is cut into (same as --set chunks=M).
        #[arg(long, allow_hyphen_values = true)]
        chunks: Option<String>,
        /// Determinism level: run-to-run or exact (same as --set level=LEVEL).
        #[arg(long, value_name = "LEVEL", allow_hyphen_values = true)]
        level: Option<String>,
        /// Where to train.
        #[arg(long, value_enum, default_value = "auto")]
        backend: Backend,
        /// Where to write the manifest.
        #[arg(long)]
        out: PathBuf,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
        /// Write a checkpoint every N steps (needs --checkpoint-dir).
        #[arg(long, value_name = "N")]
        checkpoint_every: Option<usize>,
        /// Folder for the checkpoints (step-NNNNNNNN.checkpoint.json) and the
        /// history file (history-K.jsonl) that all but the first continue:
        /// keep them together.
        #[arg(long, value_name = "DIR")]
        checkpoint_dir: Option<PathBuf>,
        /// Record every step's batch (its data-set rows) in the manifest.
        #[arg(long)]
        record_batches: bool,
        /// Test hook: destroy the GPU device after this many steps.
        #[arg(long, hide = true)]
        lose_device_at: Option<usize>,
    },
    /// Continue a run from a checkpoint, bit for bit, on the backend it ran on.
    Resume {
        checkpoint: PathBuf,
        /// Where to write the finished run's manifest.
        #[arg(long)]
        out: PathBuf,
        /// Train to this many steps in all (default: the run's own).
        #[arg(long)]
        steps: Option<usize>,
        /// Keep writing checkpoints every N steps.
        #[arg(long, value_name = "N")]
        checkpoint_every: Option<usize>,
        #[arg(long, value_name = "DIR")]
        checkpoint_dir: Option<PathBuf>,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Re-run a manifest and check every step's hash.
    Replay {
        manifest: PathBuf,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Re-run a manifest with some sources set free, write the new run's
    /// manifest and say how it differs from the recorded one, and why.
    Rerun {
        manifest: PathBuf,
        /// Set a source free for the re-run (repeatable); the others stay pinned to the record.
        #[arg(long = "free", value_name = "SOURCE")]
        free: Vec<String>,
        /// Where to write the new run's manifest.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Name every recorded difference between two runs.
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// Print a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Train the default configuration for several seeds, print and save timings.
    Bench {
        /// Seeds to train, e.g. 1,2,3,4,5.
        #[arg(long, default_value = "1,2,3,4,5", value_delimiter = ',')]
        seeds: Vec<u64>,
        /// Override one setting (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Where to train: cpu or gpu (strict).
        #[arg(long, value_enum, default_value = "cpu")]
        backend: Backend,
        /// Levels to time, interleaved per seed, e.g. run-to-run,exact (the
        /// last one's time is also given as a ratio to the first's).
        #[arg(long, default_value = "run-to-run", value_delimiter = ',')]
        levels: Vec<String>,
        /// Where to save the figures (JSON; default bench/results.json, with
        /// --soak bench/soak.json).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Instead: soak runs of these many steps, e.g. 10000,100000,1000000,
        /// each in a child process of its own (a small network, hidden=8,
        /// unless --set says otherwise, with a checkpoint every
        /// --soak-checkpoint-every steps): seconds, peak memory, manifest and
        /// checkpoint bytes.
        #[arg(long, value_name = "STEPS", value_delimiter = ',')]
        soak: Vec<usize>,
        /// Checkpoint interval of the --soak runs.
        #[arg(long, value_name = "N", default_value = "1000")]
        soak_checkpoint_every: usize,
        /// Instead: time the CPU kernels per network shape (ms a step, GFLOP/s,
        /// fraction of a measured peak), every contender interleaved.
        #[arg(long)]
        shapes: bool,
        /// Shapes for --shapes, e.g. 128/64,256-256/128,1024-1024/128 (hidden/batch).
        #[arg(long, value_name = "LIST")]
        shape_list: Option<String>,
        /// Rounds for --shapes (medians are reported).
        #[arg(long, default_value = "5")]
        rounds: usize,
        /// GPU contenders for --shapes: `default` (the register-blocked
        /// matrix kernels as shipped), a tiling WXxWYxBK (e.g. 8x8x32),
        /// `unfused` (as shipped but softmax and loss sum, gradients and
        /// update in separate kernels), `reference` (the kernels before
        /// blocking and fusing), or `none`; comma-separated.
        /// With --backend gpu only these run (no CPU contenders).
        #[arg(long, value_name = "LIST", default_value = "default")]
        gpu: String,
    },
    /// Write a run's weights (a manifest replayed, or a checkpoint) as safetensors.
    Export {
        /// A manifest (its run is replayed to get the weights) or a checkpoint.
        input: PathBuf,
        /// Output format (only safetensors).
        #[arg(long, default_value = "safetensors")]
        format: String,
        /// Which weights: final, initial or (a checkpoint's) checkpoint.
        #[arg(long, default_value = "final")]
        weights: String,
        /// Where to write the file.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, short)]
        quiet: bool,
    },
    /// List every setting with its default and meaning.
    Settings,
}

impl Backend {
    fn request(self) -> BackendRequest {
        match self {
            Backend::Cpu => BackendRequest::Cpu,
            Backend::Gpu => BackendRequest::Gpu,
            Backend::Auto => BackendRequest::Auto,
            Backend::Any => BackendRequest::Any,
        }
    }
}

/// How a command ends: an exit status, or an error (whose status it carries).
enum Fail {
    Error(Error),
    /// Interrupted by Ctrl-C after the completed steps were saved.
    Interrupted,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Error(e)
    }
}

type Outcome = Result<i32, Fail>;

/// Set by SIGINT: the run stops at the next block and saves what it has.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn watch_interrupts() {
    #[cfg(unix)]
    {
        let flag = Arc::new(AtomicBool::new(false));
        if signal_hook::flag::register(signal_hook::consts::SIGINT, flag.clone()).is_ok() {
            std::thread::spawn(move || loop {
                if flag.load(Ordering::Relaxed) {
                    INTERRUPTED.store(true, Ordering::Relaxed);
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            });
        }
    }
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    watch_interrupts();
    let result = match cli.command {
        Command::Train {
            config,
            mut set,
            seed,
            free,
            steps,
            engine_version,
            threads,
            chunks,
            level,
            backend,
            out,
            quiet,
            checkpoint_every,
            checkpoint_dir,
            record_batches,
            lose_device_at,
        } => {
            for (k, v) in
                [("engine_version", engine_version), ("threads", threads), ("chunks", chunks), ("level", level)]
            {
                if let Some(v) = v {
                    set.push(format!("{k}={v}"));
                }
            }
            let opts = TrainOpts { backend, out, quiet, record_batches, lose_device_at };
            build_settings(config.as_deref(), &set, seed, steps).and_then(|s| {
                let ck = checkpoint_args(checkpoint_every, checkpoint_dir.as_deref())?;
                train_cmd(s, &free, &opts, ck, config.as_deref())
            })
        }
        Command::Resume { checkpoint, out, steps, checkpoint_every, checkpoint_dir, quiet } => {
            checkpoint_args(checkpoint_every, checkpoint_dir.as_deref())
                .and_then(|ck| resume_cmd(&checkpoint, &out, steps, quiet, ck))
        }
        Command::Replay { manifest, quiet } => replay_cmd(&manifest, quiet),
        Command::Diff { a, b, json } => diff_cmd(&a, &b, json),
        Command::Rerun { manifest, free, out, quiet } => rerun_cmd(&manifest, &free, &out, quiet),
        Command::Export { input, format, weights, out, quiet } => export_cmd(&input, &format, &weights, &out, quiet),
        Command::Bench { out, soak, set, soak_checkpoint_every, .. } if !soak.is_empty() => {
            soak_cmd(&soak, &set, soak_checkpoint_every, &out.unwrap_or_else(|| "bench/soak.json".into()))
        }
        Command::Bench { out, shapes: true, shape_list, rounds, gpu, backend, .. } => shapes_cmd(
            &out.unwrap_or_else(|| "bench/results.json".into()),
            shape_list.as_deref(),
            rounds,
            &gpu,
            backend,
        ),
        Command::Bench { seeds, set, backend, levels, out, .. } => {
            bench_cmd(&seeds, &set, backend, &levels, &out.unwrap_or_else(|| "bench/results.json".into()))
        }
        Command::Settings => {
            let d = Settings::default();
            for (k, help) in config::KEYS {
                println!("{k:14} {:>10}  {help}", d.config.get_text(k));
            }
            Ok(0)
        }
    };
    match result {
        Ok(code) => code,
        Err(Fail::Interrupted) => 130,
        Err(Fail::Error(e)) => {
            eprintln!("error: {e}");
            e.exit_status()
        }
    }
}

fn build_settings(
    config: Option<&Path>,
    set: &[String],
    seed: Option<String>,
    steps: Option<String>,
) -> Result<Settings, Fail> {
    let mut s = Settings::default();
    if let Some(path) = config {
        let text = read_text(path)?;
        s.apply_config_file(&text).map_err(|e| e.context(&path.display().to_string()))?;
    }
    for pair in set {
        s.set_pair(pair, Origin::Override)?;
    }
    if let Some(v) = seed {
        s.set("seed", &v, Origin::Override)?;
    }
    if let Some(v) = steps {
        s.set("steps", &v, Origin::Override)?;
    }
    s.config.validate()?;
    Ok(s)
}

/// Trains to `stop_at` steps (or the run's end), showing progress against
/// `shown_total`. A backend failure under a strict request is returned (the
/// record keeps the stop); Ctrl-C stops at the next step with the record of
/// the completed steps kept.
fn drive(run: &mut Run, label: &'static str, quiet: bool, stop_at: usize, shown_total: usize) -> Result<(), Error> {
    let mut p = Progress::new(label, quiet);
    let mut last_val = String::new();
    while !run.finished() && run.record.step < stop_at {
        if INTERRUPTED.load(Ordering::Relaxed) {
            let step = run.record.step + 1;
            run.record.stopped = Some(Stopped {
                step,
                reason: format!("step {step}: interrupted (Ctrl-C); the completed steps are kept"),
                kind: StopKind::Interrupted,
            });
            break;
        }
        let before = run.record.step;
        let block = if run.backend() == reprolab::spec::BackendKind::Cpu { 1 } else { stop_at - before };
        let block = block.min(stop_at - before);
        let result = pollster::block_on(run.advance(block));
        if let Some(v) = run.record.val_curve.last() {
            last_val = format!("val_error {:.2}%", v.val_error * 100.0);
        }
        let loss = run.record.train_loss.last().copied().unwrap_or(f32::NAN);
        p.update(run.record.step, shown_total, &format!("loss {loss:.4} {last_val}"));
        if let Some(note) = handed_over(run, before) {
            if !quiet {
                eprintln!("\nbackend: {note}");
            }
        }
        result?;
        if run.record.step == before {
            break;
        }
    }
    p.finish();
    Ok(())
}

/// The reason of a backend change since step `before`, if there was one.
fn handed_over(run: &Run, before: usize) -> Option<String> {
    run.record
        .segments
        .last()
        .filter(|s| s.from_step > before + 1 || (s.from_step == before + 1 && before > 0))
        .and_then(|s| (s.from_step > 1 && run.record.segments.len() > 1).then(|| s.reason.clone()))
}

/// Trains to the run's end, writing a checkpoint every `every` steps into
/// `dir` when asked. A checkpoint that cannot be written ends the run after
/// the completed steps (their manifest is still written).
fn drive_checkpointed(
    run: &mut Run,
    label: &'static str,
    quiet: bool,
    checkpoints: Option<(usize, &Path)>,
) -> Result<(), Error> {
    let total = run.record.total_steps();
    let Some((every, dir)) = checkpoints else {
        return drive(run, label, quiet, total, total);
    };
    // The first checkpoint holds the whole history (version 1); the history
    // file then created beside it takes every step once, and each later
    // checkpoint holds only the steps since the one before (version 2).
    let mut history: Option<HistoryFile> = None;
    loop {
        let at = run.record.step;
        let next = ((at / every + 1) * every).min(total);
        drive(run, label, quiet, next, total)?;
        if run.finished() && run.record.step < next || run.record.stopped.is_some() {
            return Ok(());
        }
        if run.record.step % every == 0 {
            let path = dir.join(format!("step-{:08}.checkpoint.json", run.record.step));
            let stopped = |e: Error| {
                Error::Io(format!(
                    "{e}; stopped after step {} (no further checkpoints could be saved)",
                    run.record.step
                ))
            };
            let ck = run.checkpoint_after(history.as_ref().map(HistoryFile::reference));
            write_with(&path, &mut |w| ck.write_json(w)).map_err(stopped)?;
            drop(ck);
            if history.is_none() {
                history = Some(HistoryFile::create(dir).map_err(stopped)?);
            }
            if let Some(h) = history.as_mut() {
                h.append(&run.record).map_err(stopped)?;
            }
            if !quiet {
                eprintln!("checkpoint: {}", path.display());
            }
        }
        if run.record.step >= total {
            return Ok(());
        }
    }
}

fn checkpoint_args(every: Option<usize>, dir: Option<&Path>) -> Result<Option<(usize, &Path)>, Fail> {
    let bad = |field: &str, m: &str| Err(Fail::Error(Error::config(field, m)));
    match (every, dir) {
        (None, None) => Ok(None),
        (Some(0), _) => bad("checkpoint_every", "must be at least 1"),
        (Some(n), Some(d)) => {
            if d.exists() && !d.is_dir() {
                return bad("checkpoint_dir", &format!("{} exists and is not a folder", d.display()));
            }
            Ok(Some((n, d)))
        }
        (Some(_), None) => bad("checkpoint_dir", "--checkpoint-every needs --checkpoint-dir DIR"),
        (None, Some(_)) => bad("checkpoint_every", "--checkpoint-dir needs --checkpoint-every N"),
    }
}

struct TrainOpts {
    backend: Backend,
    out: PathBuf,
    quiet: bool,
    record_batches: bool,
    lose_device_at: Option<usize>,
}

fn train_cmd(
    settings: Settings,
    free: &[String],
    o: &TrainOpts,
    checkpoints: Option<(usize, &Path)>,
    config: Option<&Path>,
) -> Outcome {
    check_output(&o.out, &config.into_iter().collect::<Vec<_>>())?;
    let free = sources::parse_all(free)?;
    // backend free: whatever this machine offers.
    let request = if free.contains(&Source::Backend) { BackendRequest::Any } else { o.backend.request() };
    let setup = driver::new_setup(settings, &free)?;
    let mut run = pollster::block_on(Run::start(setup, request))?;
    if !o.quiet {
        eprintln!("backend: {}", run.decision().text);
        for i in &run.record.inert {
            eprintln!("note: {} is free but cannot act here: {}", i.source, i.why);
        }
    }
    if let Some(n) = o.lose_device_at {
        run.lose_device_at(n);
    }
    if o.record_batches {
        check_recorded_rows(&run)?;
        run.record_batches();
    }
    let failure = drive_checkpointed(&mut run, "train", o.quiet, checkpoints).err();
    finish_run(&run, &o.out, failure, o.quiet)
}

fn resume_cmd(path: &Path, out: &Path, steps: Option<usize>, quiet: bool, ck: Option<(usize, &Path)>) -> Outcome {
    check_output(out, &[path])?;
    let at = |e: Error| e.context(&path.display().to_string());
    let checkpoint = read_checkpoint(path)?;
    let mut run = pollster::block_on(Run::resume(&checkpoint, steps, None)).map_err(at)?;
    if run.record.batches.is_some() {
        check_recorded_rows(&run)?;
    }
    if !quiet {
        eprintln!(
            "resuming at step {} of {} on the {}",
            run.record.step,
            run.record.total_steps(),
            run.backend().name().to_uppercase()
        );
    }
    let failure = drive_checkpointed(&mut run, "resume", quiet, ck).err();
    finish_run(&run, out, failure, quiet)
}

/// Refuses `--record-batches` on a run whose batches the manifest could not
/// carry ([`config::MAX_RECORDED_ROWS`]).
fn check_recorded_rows(run: &Run) -> Result<(), Error> {
    let cfg = &run.record.settings.config;
    let rows = cfg.steps.saturating_mul(cfg.batch_size);
    if rows > config::MAX_RECORDED_ROWS {
        return Err(Error::limit(
            "record_batches",
            format!(
                "{} steps of {} rows would record {rows} rows, more than a manifest carries ({} rows, \
                 MAX_RECORDED_ROWS): record fewer steps or a smaller batch",
                cfg.steps,
                cfg.batch_size,
                config::MAX_RECORDED_ROWS
            ),
        ));
    }
    Ok(())
}

/// Reads a checkpoint, and the history file beside it that a version 2
/// checkpoint continues.
fn read_checkpoint(path: &Path) -> Result<Checkpoint, Error> {
    let at = |e: Error| e.context(&path.display().to_string());
    Checkpoint::from_json_with(&read_text(path)?, |h| files::read_history(path, h)).map_err(at)
}

fn finish_run(run: &Run, out: &Path, failure: Option<Error>, quiet: bool) -> Outcome {
    // Streamed: neither the manifest's text nor a copy of the history is held.
    let m = run.manifest_view();
    write_with(out, &mut |w| m.write_json(w))?;
    let steps = run.record.step;
    if let Some(f) = failure {
        eprintln!("the manifest of the {steps} completed steps is in {}", out.display());
        return Err(f.into());
    }
    if let Some(s) = &run.record.stopped {
        if s.kind == StopKind::Interrupted {
            eprintln!("\ninterrupted: the manifest of the {steps} completed steps is in {}", out.display());
            return Err(Fail::Interrupted);
        }
        eprintln!("error: training stopped at {}", s.reason);
        eprintln!("the manifest of the {steps} completed steps is in {}", out.display());
        return Ok(1);
    }
    if !quiet {
        eprintln!(
            "done: {steps} steps on {}, val_error {:.2}%, weights {}, level {}; manifest in {}",
            m.backend,
            m.val_error * 100.0,
            m.weights_hash,
            m.level_granted.name(),
            out.display()
        );
    }
    Ok(0)
}

fn read_manifest(path: &Path) -> Result<Manifest, Error> {
    Manifest::from_json(&read_text(path)?).map_err(|e| e.context(&path.display().to_string()))
}

fn replay_cmd(path: &Path, quiet: bool) -> Outcome {
    let m = read_manifest(path)?;
    let mut p = Progress::new("replay", quiet);
    let r = pollster::block_on(Run::replay(&m, |s, total| p.update(s, total, "")))
        .map_err(|e| e.context(&path.display().to_string()))?;
    p.finish();
    for f in &r.facts {
        println!("note: {} differs from the recording: recorded {}, here {}", f.field, f.a, f.b);
    }
    match r.outcome {
        ReplayOutcome::Identical { steps } => {
            println!(
                "identical: all {steps} steps reproduce the recorded hash chain (final weights {})",
                m.weights_hash
            );
            Ok(0)
        }
        ReplayOutcome::Diverged { step, recorded, replayed, recorded_loss, replayed_loss } => {
            let h = |v: Option<reprolab::Hash64>| v.map_or("(none)".to_string(), |h| h.to_string());
            let l = |v: Option<f32>| v.map_or("(none)".to_string(), |x| format!("{x} (bits 0x{:08x})", x.to_bits()));
            println!("diverged at step {step}: recorded hash {}, replayed hash {}", h(recorded), h(replayed));
            println!("  train loss at step {step}: recorded {}, replayed {}", l(recorded_loss), l(replayed_loss));
            Ok(1)
        }
    }
}

fn rerun_cmd(path: &Path, free: &[String], out: &Path, quiet: bool) -> Outcome {
    check_output(out, &[path])?;
    let m = read_manifest(path)?;
    let free = sources::parse_all(free)?;
    let at = |e: Error| e.context(&path.display().to_string());
    let mut run = pollster::block_on(Run::rerun(&m, &free, None)).map_err(at)?;
    let total = run.record.total_steps();
    let failure = drive(&mut run, "rerun", quiet, total, total).err();
    if let Some(e) = failure {
        return Err(at(e).into());
    }
    let new = run.manifest();
    write_with(out, &mut |w| new.view().write_json(w))?;
    let d = manifest::diff(&m, &new);
    print_diff(&d, m.steps_completed);
    Ok(if d.identical { 0 } else { 1 })
}

fn print_diff(d: &manifest::Diff, steps: usize) {
    if d.identical {
        println!(
            "identical: same configuration, seeds, data, backend and engine; hash chains equal over {steps} steps"
        );
    } else {
        let results = if d.results_identical { "identical results" } else { "different results" };
        println!("{} differences ({results}):", d.differences.len());
        for x in &d.differences {
            println!("  {}: {} vs {}", x.field, x.a, x.b);
        }
        match d.first_divergent_step {
            Some(s) => println!("hash chains part at step {s}"),
            None => println!("hash chains are equal over {steps} steps"),
        }
        if !d.causes.is_empty() {
            println!("causes: {}", d.causes.join(", "));
        }
    }
    if !d.environment.is_empty() {
        let fields: Vec<&str> = d.environment.iter().map(|x| x.field.as_str()).collect();
        println!("environment differs (not the results): {}", fields.join(", "));
    }
}

fn diff_cmd(a: &Path, b: &Path, json: bool) -> Outcome {
    let (ma, mb) = (read_manifest(a)?, read_manifest(b)?);
    let d = manifest::diff(&ma, &mb);
    if json {
        println!("{}", serde_json::to_string_pretty(&d).expect("a diff serialises"));
    } else {
        print_diff(&d, ma.steps_completed);
    }
    Ok(if d.identical { 0 } else { 1 })
}

fn export_cmd(input: &Path, format: &str, which: &str, out: &Path, quiet: bool) -> Outcome {
    if format != "safetensors" {
        return Err(Error::config(
            "format",
            format!("only safetensors is supported, got \"{}\"", reprolab::error::echo(format)),
        )
        .into());
    }
    check_output(out, &[input])?;
    let text = read_text(input)?;
    let at = |e: Error| e.context(&input.display().to_string());
    let is_checkpoint = text.contains("\"checkpoint_version\"");
    let (setup, params, step) = if is_checkpoint {
        let ck = read_checkpoint(input)?;
        let (setup, rec, state) = ck.restore(None).map_err(at)?;
        match which {
            "final" | "checkpoint" => (setup, state.params, rec.step),
            "initial" => {
                let p = setup.initial_state().params;
                (setup, p, 0)
            }
            _ => return Err(Error::config("weights", "expected final, initial or checkpoint").into()),
        }
    } else {
        let m = Manifest::from_json(&text).map_err(at)?;
        match which {
            "initial" => {
                let setup = driver::rerun_setup(&m, &[]).map_err(at)?;
                let p = setup.initial_state().params;
                (setup, p, 0)
            }
            "final" => {
                // The manifest holds hashes, not weights: replay the run and
                // check every link before trusting the weights.
                let mut run = pollster::block_on(Run::rerun(&m, &[], None)).map_err(at)?;
                drive(&mut run, "export", quiet, m.steps_completed, m.steps_completed).map_err(at)?;
                if let ReplayOutcome::Diverged { step, .. } = manifest::compare(&m, &run.record) {
                    if run.record.hash_chain[..] != m.hash_chain[..] {
                        return Err(Error::Record(format!(
                            "{}: the replay parts from the record at step {step}: its weights would not be the run's",
                            input.display()
                        ))
                        .into());
                    }
                }
                let p = run.params().to_vec();
                let step = run.record.step;
                (run.setup().clone(), p, step)
            }
            "checkpoint" => return Err(Error::config("weights", "checkpoint weights need a checkpoint file").into()),
            _ => return Err(Error::config("weights", "expected final, initial or checkpoint").into()),
        }
    };
    let bytes = reprolab::export::safetensors(&setup.net, &params, step);
    write_bytes(out, &bytes)?;
    if !quiet {
        eprintln!("{} weights after step {step} ({} parameters) in {}", which, params.len(), out.display());
    }
    Ok(0)
}

fn shapes_cmd(out: &Path, shapes: Option<&str>, rounds: usize, gpu: &str, backend: Backend) -> Outcome {
    use reprolab::bench;
    let mut opts = bench::BenchOptions { rounds, ..bench::BenchOptions::default() };
    if let Some(text) = shapes {
        opts.shapes = bench::parse_shapes(text).map_err(|e| Error::config("shape_list", e))?;
    }
    let mut gpu_contenders = Vec::new();
    for part in gpu.split(',').map(str::trim).filter(|p| !p.is_empty() && *p != "none") {
        let default = bench::GpuContender::DEFAULT;
        gpu_contenders.push(match part {
            "reference" => bench::GpuContender { reference: true, fused: false, ..default },
            "default" => default,
            "unfused" => bench::GpuContender { fused: false, ..default },
            t => bench::GpuContender {
                tiling: reprolab::gpu::Tiling::parse(t).map_err(|e| Error::config("gpu", e))?,
                ..default
            },
        });
    }
    if backend == Backend::Gpu {
        if gpu_contenders.is_empty() {
            return Err(Error::config("gpu", "--backend gpu with --shapes needs GPU contenders (--gpu)").into());
        }
        opts.contenders.clear();
    }
    let t0 = Instant::now();
    let clock = move || t0.elapsed().as_secs_f64() * 1e3;
    let (peak, why) = bench::measure_peak_gflops(&clock, 5);
    opts.peak_gflops_per_core = peak;
    opts.peak_assumption = why;
    let mut report = bench::run(&opts, &clock).map_err(|e| Error::config("bench", e))?;
    if !gpu_contenders.is_empty() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match pollster::block_on(bench::run_gpu(&opts, &gpu_contenders, true, cores, &clock)) {
            Ok(g) => report.add_gpu(g),
            Err(e) if backend == Backend::Gpu => return Err(Error::Backend(e).into()),
            Err(e) => eprintln!("bench: the GPU contenders did not run: {e}"),
        }
    }
    print!("{}", report.table());
    write_text(out, &(serde_json::to_string_pretty(&report).expect("plain data") + "\n"))?;
    println!("saved to {}", out.display());
    Ok(0)
}

fn bench_cmd(seeds: &[u64], set: &[String], backend: Backend, levels: &[String], out: &Path) -> Outcome {
    let mut rows = Vec::new();
    let used = build_settings(None, set, None, None)?;
    if backend == Backend::Auto || backend == Backend::Any {
        return Err(Error::config("backend", "bench needs --backend cpu or --backend gpu (auto would mix them)").into());
    }
    let mut adapter = None;
    // Seconds per level, the levels interleaved within each seed.
    let mut per_level = vec![0.0f64; levels.len()];
    println!("{:>5} {:>10} {:>7} {:>9} {:>11} {:>10}", "seed", "level", "steps", "seconds", "steps/s", "val_error");
    for (&seed, (li, level)) in
        seeds.iter().flat_map(|s| std::iter::repeat(s).zip(levels.iter().enumerate()).collect::<Vec<_>>())
    {
        let mut set = set.to_vec();
        set.push(format!("level={level}"));
        let settings = build_settings(None, &set, Some(seed.to_string()), None)?;
        let setup = driver::new_setup(settings, &[])?;
        // Device and pipelines are set up before the clock starts.
        let mut run = pollster::block_on(Run::start(setup, backend.request()))?;
        adapter = run.adapter().cloned().or(adapter);
        let total = run.record.total_steps();
        let start = Instant::now();
        pollster::block_on(run.advance(total))?;
        let secs = start.elapsed().as_secs_f64();
        let m = run.manifest();
        let steps = run.record.step;
        per_level[li] += secs;
        println!(
            "{seed:>5} {level:>10} {steps:>7} {secs:>9.2} {:>11.0} {:>9.2}%",
            steps as f64 / secs,
            m.val_error * 100.0
        );
        rows.push(serde_json::json!({
            "seed": seed, "level": level, "level_granted": m.level_granted.name(), "steps": steps,
            "seconds": secs, "steps_per_second": steps as f64 / secs,
            "val_error": m.val_error, "weights_hash": m.weights_hash.to_string(),
        }));
    }
    let ratios: Vec<serde_json::Value> = levels
        .iter()
        .zip(&per_level)
        .skip(1)
        .map(|(l, t)| {
            let r = t / per_level[0];
            println!("{l} / {}: {r:.2}x the time (same seeds, interleaved)", levels[0]);
            serde_json::json!({ "level": l, "against": levels[0], "time_ratio": r })
        })
        .collect();
    let report = serde_json::json!({
        "command": std::iter::once("reprolab".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" "),
        "engine": reprolab::engine_version(),
        "machine": reprolab::platform::user_agent(),
        "backend": if backend == Backend::Gpu { "gpu" } else { "cpu" },
        "adapter": adapter,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "config": used.entries(),
        "runs": rows,
        "time_ratios": ratios,
    });
    write_text(out, &(serde_json::to_string_pretty(&report).expect("serialises") + "\n"))?;
    println!("saved to {}", out.display());
    Ok(0)
}

fn soak_cmd(sizes: &[usize], set: &[String], every: usize, out: &Path) -> Outcome {
    if every == 0 {
        return Err(Error::config("soak_checkpoint_every", "must be at least 1").into());
    }
    let mut settings = vec!["hidden=8".to_string()];
    settings.extend_from_slice(set);
    // Refuse bad settings here, before any child runs.
    for &n in sizes {
        build_settings(None, &settings, None, Some(n.to_string()))?;
    }
    let scratch = std::env::temp_dir().join(format!("reprolab-soak-{}", std::process::id()));
    println!(
        "{:>9} {:>8} {:>10} {:>12} {:>6} {:>14} {:>9} {:>9}",
        "steps", "seconds", "peak MB", "manifest MB", "ckpts", "checkpoint MB", "man B/st", "ckpt B/st"
    );
    let mut rows = Vec::new();
    for &n in sizes {
        let r = soak::soak_one(n, &settings, every, &scratch);
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(e.into());
            }
        };
        let mb = |b: u64| b as f64 / 1e6;
        println!(
            "{:>9} {:>8.1} {:>10.1} {:>12.2} {:>6} {:>14.2} {:>9.1} {:>9.1}",
            r.steps,
            r.seconds,
            mb(r.peak_rss_bytes),
            mb(r.manifest_bytes),
            r.checkpoints,
            mb(r.checkpoint_folder_bytes),
            r.manifest_bytes_per_step,
            r.checkpoint_bytes_per_step
        );
        rows.push(r);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    // Memory a step costs: the peak's growth between the shortest and the
    // longest run, per step between them.
    let growth = match (rows.first(), rows.last()) {
        (Some(a), Some(b)) if b.steps > a.steps => {
            let per_step = (b.peak_rss_bytes as f64 - a.peak_rss_bytes as f64) / (b.steps - a.steps) as f64;
            println!("peak memory grows {per_step:.1} bytes a step between {} and {} steps", a.steps, b.steps);
            Some(per_step)
        }
        _ => None,
    };
    let report = serde_json::json!({
        "command": std::iter::once("reprolab".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" "),
        "engine": reprolab::engine_version(),
        "machine": reprolab::platform::user_agent(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "settings": settings,
        "checkpoint_every": every,
        "peak_measured_as": "ru_maxrss of the child process (wait4)",
        "runs": rows,
        "peak_rss_bytes_per_step": growth,
    });
    write_text(out, &(serde_json::to_string_pretty(&report).expect("serialises") + "\n"))?;
    println!("saved to {}", out.display());
    Ok(0)
}
