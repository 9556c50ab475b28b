//! The `reprolab` command-line tool: train, replay, diff, bench.
//!
//! Exit status: 0 success (or identical), 1 runs differ / training stopped on
//! a non-finite value, 2 invalid input (settings, files, manifests),
//! 3 backend unavailable.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    // Mesa's Vulkan drivers complain on stderr when this is unset (headless
    // machines, CI); set before any thread starts.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    std::process::exit(cli::main());
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::io::{IsTerminal, Write};
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    use clap::{Parser, Subcommand, ValueEnum};
    use reprolab::checkpoint;
    use reprolab::gpu::{Gpu, GpuTrainer};
    use reprolab::manifest::{self, Manifest, ReplayOutcome};
    use reprolab::sources::Source;
    use reprolab::spec::GpuReduction;
    use reprolab::train::{self, Trainer};
    use reprolab::{config, Origin, Settings};

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
        /// The GPU when it can, else the CPU, saying which and why.
        Auto,
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
            /// Folder for the checkpoints (step-NNNNNNNN.checkpoint.json).
            #[arg(long, value_name = "DIR")]
            checkpoint_dir: Option<PathBuf>,
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
            /// Where to save the figures (JSON).
            #[arg(long, default_value = "bench/results.json")]
            out: PathBuf,
        },
        /// List every setting with its default and meaning.
        Settings,
    }

    /// An error with its exit status.
    struct Fail(i32, String);

    fn input(msg: impl Into<String>) -> Fail {
        Fail(2, msg.into())
    }

    pub fn main() -> i32 {
        let cli = Cli::parse();
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
                backend,
                out,
                quiet,
                checkpoint_every,
                checkpoint_dir,
                lose_device_at,
            } => {
                for (k, v) in [("engine_version", engine_version), ("threads", threads), ("chunks", chunks)] {
                    if let Some(v) = v {
                        set.push(format!("{k}={v}"));
                    }
                }
                let settings = build_settings(config.as_deref(), &set, seed, steps);
                checkpoint_args(checkpoint_every, checkpoint_dir.as_deref())
                    .and_then(|ck| settings.and_then(|s| train_cmd(s, &free, backend, &out, quiet, lose_device_at, ck)))
            }
            Command::Resume { checkpoint, out, steps, checkpoint_every, checkpoint_dir, quiet } => {
                checkpoint_args(checkpoint_every, checkpoint_dir.as_deref())
                    .and_then(|ck| resume_cmd(&checkpoint, &out, steps, quiet, ck))
            }
            Command::Replay { manifest, quiet } => replay_cmd(&manifest, quiet),
            Command::Diff { a, b, json } => diff_cmd(&a, &b, json),
            Command::Rerun { manifest, free, out, quiet } => rerun_cmd(&manifest, &free, &out, quiet),
            Command::Bench { seeds, set, backend, out } => bench_cmd(&seeds, &set, backend, &out),
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
            Err(Fail(code, msg)) => {
                eprintln!("error: {msg}");
                code
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
            let text = std::fs::read_to_string(path)
                .map_err(|e| input(format!("cannot read config file {}: {e}", path.display())))?;
            s.apply_config_file(&text).map_err(|e| input(format!("{}: {e}", path.display())))?;
        }
        for pair in set {
            s.set_pair(pair, Origin::Override).map_err(|e| input(e.to_string()))?;
        }
        if let Some(v) = seed {
            s.set("seed", &v, Origin::Override).map_err(|e| input(e.to_string()))?;
        }
        if let Some(v) = steps {
            s.set("steps", &v, Origin::Override).map_err(|e| input(e.to_string()))?;
        }
        s.config.validate().map_err(|e| input(e.to_string()))?;
        Ok(s)
    }

    /// Progress on stderr: a redrawn line on a terminal, a line every 10% otherwise.
    struct Progress {
        tty: bool,
        quiet: bool,
        start: Instant,
        last_draw: Option<Instant>,
        last_tenth: usize,
        first_step: Option<usize>,
        label: &'static str,
    }

    impl Progress {
        fn new(label: &'static str, quiet: bool) -> Progress {
            Progress {
                tty: std::io::stderr().is_terminal(),
                quiet,
                start: Instant::now(),
                last_draw: None,
                last_tenth: 0,
                first_step: None,
                label,
            }
        }

        fn update(&mut self, step: usize, total: usize, detail: &str) {
            if self.quiet || total == 0 {
                return;
            }
            // Steps per second of this session (a resumed run starts mid-way).
            let first = *self.first_step.get_or_insert(step.saturating_sub(1));
            let rate = (step - first) as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
            if self.tty {
                let due = self.last_draw.is_none_or(|t| t.elapsed().as_millis() >= 100) || step == total;
                if due {
                    let width = 24;
                    let filled = step * width / total;
                    eprint!(
                        "\r{} [{}{}] {step}/{total} {detail} {rate:.0} steps/s ",
                        self.label,
                        "#".repeat(filled),
                        " ".repeat(width - filled)
                    );
                    let _ = std::io::stderr().flush();
                    self.last_draw = Some(Instant::now());
                }
            } else {
                let tenth = step * 10 / total;
                if tenth > self.last_tenth || step == total {
                    self.last_tenth = tenth;
                    eprintln!("{} step {step}/{total} {detail} ({rate:.0} steps/s)", self.label);
                }
            }
        }

        fn finish(&self) {
            if self.tty && !self.quiet {
                eprintln!();
            }
        }
    }

    /// A run on one backend or the other.
    enum Run {
        Cpu(Box<Trainer>),
        Gpu(Box<GpuTrainer>),
    }

    impl Run {
        fn record(&self) -> &Trainer {
            match self {
                Run::Cpu(t) => t,
                Run::Gpu(g) => &g.cpu,
            }
        }

        fn into_record(self) -> Trainer {
            match self {
                Run::Cpu(t) => *t,
                Run::Gpu(g) => g.cpu,
            }
        }
    }

    /// Opens the backend asked for: `gpu` strictly (exit 3 without one),
    /// `auto` the GPU when it can and the CPU otherwise, saying which and why.
    fn start(mut t: Trainer, backend: Backend, quiet: bool) -> Result<Run, Fail> {
        let reduction = t.gpu_reduction;
        if backend == Backend::Cpu {
            t.switch_backend("cpu", "--backend cpu");
            return Ok(Run::Cpu(Box::new(t)));
        }
        let opened = pollster::block_on(Gpu::open()).and_then(|gpu| {
            let why = format!(
                "{} GPU: {}",
                if backend == Backend::Gpu { "--backend gpu:" } else { "auto: found a" },
                gpu.adapter.description
            );
            // Keep the CPU record: under auto a GPU that cannot take the run
            // (too large, a feature missing) hands it to the CPU.
            GpuTrainer::new(gpu, t.clone(), reduction, &why).map(|g| (g, why))
        });
        match opened {
            Ok((g, why)) => {
                if !quiet {
                    eprintln!("backend: {why}");
                }
                Ok(Run::Gpu(Box::new(g)))
            }
            Err(e) if backend == Backend::Gpu => Err(Fail(3, format!("backend gpu: {e}"))),
            Err(e) => {
                let why = format!("auto: running on the CPU because {e}");
                if !quiet {
                    eprintln!("backend: {why}");
                }
                t.switch_backend("cpu", why);
                Ok(Run::Cpu(Box::new(t)))
            }
        }
    }

    /// Trains to the end: the CPU step by step, the GPU a read-back block at a
    /// time. A GPU failure under `auto` moves the run to the CPU from the last
    /// state read back; under `gpu` it ends the run with status 3.
    fn drive(run: Run, backend: Backend, quiet: bool, label: &'static str, stop_at: usize) -> (Run, Option<Fail>) {
        drive_shown(run, backend, quiet, label, stop_at, stop_at)
    }

    /// [`drive`], showing progress against `shown_total` (a checkpointed run
    /// stops at every checkpoint but shows where it stands in the whole run).
    fn drive_shown(
        mut run: Run,
        backend: Backend,
        quiet: bool,
        label: &'static str,
        stop_at: usize,
        shown_total: usize,
    ) -> (Run, Option<Fail>) {
        let total = stop_at;
        let mut p = Progress::new(label, quiet);
        let mut last_val = String::new();
        loop {
            match run {
                Run::Cpu(ref mut t) => {
                    if t.step >= total {
                        break;
                    }
                    let Some(r) = t.step() else { break };
                    if let Some(v) = r.val {
                        last_val = format!("val_error {:.2}%", v.val_error * 100.0);
                    }
                    p.update(r.step, shown_total, &format!("loss {:.4} {last_val}", r.train_loss));
                }
                Run::Gpu(ref mut g) => {
                    if g.finished() || g.step() >= total {
                        break;
                    }
                    match pollster::block_on(g.run(total - g.step())) {
                        Ok(_) => {
                            let t = &g.cpu;
                            if let Some(v) = t.val_curve.last() {
                                last_val = format!("val_error {:.2}%", v.val_error * 100.0);
                            }
                            let loss = t.train_loss.last().copied().unwrap_or(f32::NAN);
                            p.update(t.step, shown_total, &format!("loss {loss:.4} {last_val}"));
                            if t.stopped.is_some() {
                                break;
                            }
                        }
                        Err(e) => {
                            let Run::Gpu(g) = run else { unreachable!() };
                            let at = g.step();
                            if backend == Backend::Gpu {
                                let mut t = g.cpu;
                                let reason = format!(
                                    "step {}: the GPU failed ({e}); --backend gpu does not fall back to the CPU",
                                    at + 1
                                );
                                t.stopped = Some(train::Stopped { step: at + 1, reason, kind: "backend".into() });
                                return (
                                    Run::Cpu(Box::new(t)),
                                    Some(Fail(3, format!("backend gpu failed after step {at}: {e}"))),
                                );
                            }
                            let why = format!("auto: the GPU failed after step {at} ({e}); continuing on the CPU from the state read back at step {at}");
                            if !quiet {
                                eprintln!("\nbackend: {why}");
                            }
                            run = Run::Cpu(Box::new(g.into_cpu(&why)));
                        }
                    }
                }
            }
        }
        p.finish();
        (run, None)
    }

    /// Trains to `total`, writing a checkpoint every `every` steps into `dir`
    /// (named by step) when asked.
    fn drive_checkpointed(
        mut run: Run,
        backend: Backend,
        quiet: bool,
        label: &'static str,
        total: usize,
        checkpoints: Option<(usize, &Path)>,
    ) -> Result<(Trainer, Option<Fail>), Fail> {
        let Some((every, dir)) = checkpoints else {
            let (run, failure) = drive(run, backend, quiet, label, total);
            return Ok((run.into_record(), failure));
        };
        loop {
            let at = run.record().step;
            let next = ((at / every + 1) * every).min(total);
            let (r, failure) = drive_shown(run, backend, quiet, label, next, total);
            run = r;
            let t = run.record();
            if failure.is_some() || t.stopped.is_some() || t.step < next {
                return Ok((run.into_record(), failure));
            }
            if t.step % every == 0 {
                let path = dir.join(format!("step-{:08}.checkpoint.json", t.step));
                write_file(&path, &checkpoint::Checkpoint::of(t).to_json())?;
                if !quiet {
                    eprintln!("checkpoint: {}", path.display());
                }
            }
            if t.step >= total {
                return Ok((run.into_record(), None));
            }
        }
    }

    fn checkpoint_args(every: Option<usize>, dir: Option<&Path>) -> Result<Option<(usize, &Path)>, Fail> {
        match (every, dir) {
            (None, None) => Ok(None),
            (Some(0), _) => Err(input("checkpoint_every: must be at least 1")),
            (Some(n), Some(d)) => Ok(Some((n, d))),
            (Some(_), None) => Err(input("checkpoint_dir: --checkpoint-every needs --checkpoint-dir DIR")),
            (None, Some(_)) => Err(input("checkpoint_every: --checkpoint-dir needs --checkpoint-every N")),
        }
    }

    fn resume_cmd(
        path: &Path,
        out: &Path,
        steps: Option<usize>,
        quiet: bool,
        checkpoints: Option<(usize, &Path)>,
    ) -> Result<i32, Fail> {
        let text = std::fs::read_to_string(path).map_err(|e| input(format!("cannot read {}: {e}", path.display())))?;
        let ck = checkpoint::Checkpoint::from_json(&text).map_err(|e| input(format!("{}: {e}", path.display())))?;
        let t = ck.resume(steps).map_err(|e| input(format!("{}: {e}", path.display())))?;
        // The same backend it ran on: a GPU run needs a GPU to continue bit for bit.
        let on_gpu = t.segments.last().is_some_and(|s| s.backend == "gpu");
        let backend = if on_gpu { Backend::Gpu } else { Backend::Cpu };
        if !quiet {
            eprintln!(
                "resuming at step {} of {} on the {}",
                t.step,
                t.total_steps(),
                if on_gpu { "GPU" } else { "CPU" }
            );
        }
        let run = if on_gpu { start(t, Backend::Gpu, quiet)? } else { Run::Cpu(Box::new(t)) };
        let total = run.record().total_steps();
        let (t, failure) = drive_checkpointed(run, backend, quiet, "resume", total, checkpoints)?;
        finish_run(&t, out, failure, quiet)
    }

    fn finish_run(t: &Trainer, out: &Path, failure: Option<Fail>, quiet: bool) -> Result<i32, Fail> {
        let m = Manifest::from_trainer(t);
        write_file(out, &m.to_json())?;
        if let Some(f) = failure {
            eprintln!("the manifest of the {} completed steps is in {}", t.step, out.display());
            return Err(f);
        }
        if let Some(s) = &t.stopped {
            eprintln!("error: training stopped at {}", s.reason);
            eprintln!("the manifest of the {} completed steps is in {}", t.step, out.display());
            return Ok(1);
        }
        if !quiet {
            eprintln!(
                "done: {} steps on {}, val_error {:.2}%, weights {}, level {}; manifest in {}",
                t.step,
                m.backend,
                m.val_error * 100.0,
                m.weights_hash,
                m.level_granted.name(),
                out.display()
            );
        }
        Ok(0)
    }

    #[allow(clippy::too_many_arguments)]
    fn train_cmd(
        settings: Settings,
        free: &[String],
        backend: Backend,
        out: &Path,
        quiet: bool,
        lose_device_at: Option<usize>,
        checkpoints: Option<(usize, &Path)>,
    ) -> Result<i32, Fail> {
        let free = train::parse_free(free).map_err(|e| input(e.to_string()))?;
        // backend free: whatever this machine offers.
        let backend = if free.contains(&Source::Backend) { Backend::Auto } else { backend };
        let t = Trainer::with_free(settings, &free).map_err(|e| input(e.to_string()))?;
        let reduction = t.gpu_reduction;
        let mut run = start(t, backend, quiet)?;
        if let (Run::Gpu(g), Some(n)) = (&mut run, lose_device_at) {
            g.lose_device_at(n);
        }
        if reduction == GpuReduction::Atomic && matches!(run, Run::Cpu(_)) && !quiet {
            eprintln!("note: gpu_reduction is free but the run is on the CPU, where it changes nothing");
        }
        let total = run.record().total_steps();
        let (t, failure) = drive_checkpointed(run, backend, quiet, "train", total, checkpoints)?;
        finish_run(&t, out, failure, quiet)
    }

    fn write_file(path: &Path, text: &str) -> Result<(), Fail> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| input(format!("cannot create {}: {e}", dir.display())))?;
        }
        // Write beside and rename, so an interrupted write never leaves half a file.
        let tmp = path.with_extension("tmp~");
        std::fs::write(&tmp, text).map_err(|e| input(format!("cannot write {}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(|e| input(format!("cannot write {}: {e}", path.display())))
    }

    fn read_manifest(path: &Path) -> Result<Manifest, Fail> {
        let text = std::fs::read_to_string(path).map_err(|e| input(format!("cannot read {}: {e}", path.display())))?;
        Manifest::from_json(&text).map_err(|e| input(format!("{}: {e}", path.display())))
    }

    /// Re-runs a manifest with `free` sources free: each recorded stretch of
    /// steps on the backend that ran it when `backend` is pinned (a GPU
    /// stretch needs a GPU here), or whatever this machine offers when free.
    /// `to_end`: train to the run's last step (a re-run); otherwise stop where
    /// the record stops (a replay, which is compared with it).
    fn rerun(
        m: &Manifest,
        free: &[Source],
        quiet: bool,
        label: &'static str,
        to_end: bool,
    ) -> Result<(Trainer, &'static str, Option<manifest::Adapter>), Fail> {
        let bad = |e: manifest::ManifestError| input(e.to_string());
        let mut t = manifest::rerun_trainer(m, free).map_err(bad)?;
        let stop_at = if to_end {
            t.total_steps()
        } else {
            m.steps_completed + usize::from(m.stopped.as_ref().is_some_and(|s| s.is_non_finite()))
        };
        let segments = if free.contains(&Source::Backend) {
            // One stretch, wherever this machine trains best, to the end.
            vec![train::Segment {
                backend: "auto".into(),
                from_step: 1,
                to_step: t.total_steps(),
                reason: String::new(),
            }]
        } else {
            let mut segs = m.backend_history.clone();
            segs.retain(|s| s.from_step <= stop_at);
            if let Some(last) = segs.last_mut() {
                last.to_step = stop_at;
            }
            segs
        };
        let mut backend = "cpu";
        let mut adapter = None;
        for seg in &segments {
            let run = match seg.backend.as_str() {
                // Pinned: a GPU stretch needs a GPU here (exit 3 without one).
                "gpu" => start(t, Backend::Gpu, quiet).map_err(|Fail(c, e)| {
                    Fail(
                        c,
                        format!("{e}; the run trained on the GPU and backend is pinned (set it free to re-run here)"),
                    )
                })?,
                "auto" => start(t, Backend::Auto, quiet)?,
                _ => {
                    t.switch_backend("cpu", seg.reason.clone());
                    Run::Cpu(Box::new(t))
                }
            };
            backend = "cpu";
            if let Run::Gpu(g) = &run {
                backend = "gpu";
                adapter = Some(g.adapter().clone());
            }
            let strict = if seg.backend == "gpu" { Backend::Gpu } else { Backend::Auto };
            let (done, failure) = drive(run, strict, quiet, label, seg.to_step);
            if let Some(f) = failure {
                return Err(f);
            }
            t = done.into_record();
            if t.stopped.is_some() {
                break;
            }
        }
        Ok((t, backend, adapter))
    }

    fn replay_cmd(path: &Path, quiet: bool) -> Result<i32, Fail> {
        let m = read_manifest(path)?;
        let bad = |e: manifest::ManifestError| input(format!("{}: {e}", path.display()));
        let r = if m.backend_history.iter().any(|s| s.backend == "gpu") {
            let (t, backend, adapter) = rerun(&m, &[], quiet, "replay", false)
                .map_err(|Fail(c, e)| Fail(c, format!("{}: {e}", path.display())))?;
            manifest::Replay {
                facts: manifest::replay_facts(&m, &t, backend, adapter.as_ref()),
                outcome: manifest::compare(&m, &t),
            }
        } else {
            let mut p = Progress::new("replay", quiet);
            let r = manifest::replay(&m, |s, total| p.update(s, total, "")).map_err(bad)?;
            p.finish();
            r
        };
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
                let l =
                    |v: Option<f32>| v.map_or("(none)".to_string(), |x| format!("{x} (bits 0x{:08x})", x.to_bits()));
                println!("diverged at step {step}: recorded hash {}, replayed hash {}", h(recorded), h(replayed));
                println!("  train loss at step {step}: recorded {}, replayed {}", l(recorded_loss), l(replayed_loss));
                Ok(1)
            }
        }
    }

    fn rerun_cmd(path: &Path, free: &[String], out: &Path, quiet: bool) -> Result<i32, Fail> {
        let m = read_manifest(path)?;
        let free = train::parse_free(free).map_err(|e| input(e.to_string()))?;
        let (t, _, _) =
            rerun(&m, &free, quiet, "rerun", true).map_err(|Fail(c, e)| Fail(c, format!("{}: {e}", path.display())))?;
        let new = Manifest::from_trainer(&t);
        write_file(out, &new.to_json())?;
        let d = manifest::diff(&m, &new);
        print_diff(&d, m.steps_completed);
        Ok(if d.identical { 0 } else { 1 })
    }

    fn print_diff(d: &manifest::Diff, steps: usize) {
        if d.identical {
            println!(
                "identical: same configuration, seeds, data, backend and engine; hash chains equal over {steps} steps"
            );
            return;
        }
        println!("{} differences:", d.differences.len());
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

    fn diff_cmd(a: &Path, b: &Path, json: bool) -> Result<i32, Fail> {
        let (ma, mb) = (read_manifest(a)?, read_manifest(b)?);
        let d = manifest::diff(&ma, &mb);
        if json {
            println!("{}", serde_json::to_string_pretty(&d).expect("a diff serialises"));
        } else {
            print_diff(&d, ma.steps_completed);
        }
        Ok(if d.identical { 0 } else { 1 })
    }

    fn bench_cmd(seeds: &[u64], set: &[String], backend: Backend, out: &Path) -> Result<i32, Fail> {
        let mut rows = Vec::new();
        let used = build_settings(None, set, None, None)?;
        if backend == Backend::Auto {
            return Err(input("backend: bench needs --backend cpu or --backend gpu (auto would mix them)"));
        }
        let mut adapter = None;
        println!("{:>5} {:>7} {:>9} {:>11} {:>10}", "seed", "steps", "seconds", "steps/s", "val_error");
        for &seed in seeds {
            let settings = build_settings(None, set, Some(seed.to_string()), None)?;
            let t = Trainer::with_free(settings, &[]).map_err(|e| input(e.to_string()))?;
            // Device and pipelines are set up before the clock starts.
            let run = start(t, backend, true)?;
            if let Run::Gpu(g) = &run {
                adapter = Some(g.adapter().clone());
            }
            let total = run.record().total_steps();
            let start = Instant::now();
            let (run, failure) = drive(run, backend, true, "bench", total);
            if let Some(f) = failure {
                return Err(f);
            }
            let t = run.into_record();
            let secs = start.elapsed().as_secs_f64();
            let m = Manifest::from_trainer(&t);
            println!(
                "{seed:>5} {:>7} {secs:>9.2} {:>11.0} {:>9.2}%",
                t.step,
                t.step as f64 / secs,
                m.val_error * 100.0
            );
            rows.push(serde_json::json!({
                "seed": seed, "steps": t.step, "seconds": secs, "steps_per_second": t.step as f64 / secs,
                "val_error": m.val_error, "weights_hash": m.weights_hash.to_string(),
            }));
        }
        let report = serde_json::json!({
            "command": std::iter::once("reprolab".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" "),
            "engine": reprolab::engine_version(),
            "machine": reprolab::platform::user_agent(),
            "backend": if backend == Backend::Gpu { "gpu" } else { "cpu" },
            "adapter": adapter,
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "config": used.entries(),
            "runs": rows,
        });
        write_file(out, &(serde_json::to_string_pretty(&report).expect("serialises") + "\n"))?;
        println!("saved to {}", out.display());
        Ok(0)
    }
}
