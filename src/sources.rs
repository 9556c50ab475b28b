//! The nine sources of run-to-run variation (the README's switchboard), each
//! a switch: pinned or free. What "free" does to a run lives here, in one
//! place: a fresh seed for the seeded streams, the scheduler's order for the
//! reductions, and "whatever it means now" for the recorded facts.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{Config, Origin, Settings};
use crate::error::{Error, Result};
use crate::rng::Stream;
use crate::spec::{self, BackendKind};

/// A source of run-to-run variation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Init,
    Shuffle,
    Dropout,
    EngineVersion,
    GpuReduction,
    CpuThreads,
    Backend,
    DataDrift,
    HparamDrift,
}

impl Source {
    /// Every source, in the contract's order.
    pub const ALL: [Source; 9] = [
        Source::Init,
        Source::Shuffle,
        Source::Dropout,
        Source::EngineVersion,
        Source::GpuReduction,
        Source::CpuThreads,
        Source::Backend,
        Source::DataDrift,
        Source::HparamDrift,
    ];

    /// The name used on the command line, in the API, the URL and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Source::Init => "init",
            Source::Shuffle => "shuffle",
            Source::Dropout => "dropout",
            Source::EngineVersion => "engine_version",
            Source::GpuReduction => "gpu_reduction",
            Source::CpuThreads => "cpu_threads",
            Source::Backend => "backend",
            Source::DataDrift => "data_drift",
            Source::HparamDrift => "hparam_drift",
        }
    }

    /// Parses a source name; the error names every source.
    pub fn parse(name: &str) -> Result<Source> {
        Source::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Source::ALL.iter().map(|s| s.name()).collect();
            Error::config(
                "free",
                format!("unknown source \"{}\"; sources: {}", crate::error::echo(name), names.join(", ")),
            )
        })
    }

    /// The random stream a seeded source draws from.
    pub fn stream(self) -> Option<Stream> {
        match self {
            Source::Init => Some(Stream::Init),
            Source::Shuffle => Some(Stream::Shuffle),
            Source::Dropout => Some(Stream::Dropout),
            _ => None,
        }
    }

    /// What the switch does physically, in one line.
    pub fn explanation(self) -> &'static str {
        match self {
            Source::Init => "the starting weights: drawn from the run's seed, or from a fresh seed when free",
            Source::Shuffle => "the train/validation split and the order of the examples in every epoch",
            Source::Dropout => "which hidden units each example drops at each step",
            Source::EngineVersion => {
                "the engine's kernels: the recorded version, or the current one, which sums the batch in another order"
            }
            Source::GpuReduction => {
                "how the GPU adds up gradients: a fixed order, or float atomics in whatever order the scheduler picks"
            }
            Source::CpuThreads => {
                "how the CPU threads' partial sums are combined: in chunk order, or in the order the threads finish"
            }
            Source::Backend => {
                "where the run trains: the recorded backend and adapter, or whatever this machine offers"
            }
            Source::DataDrift => {
                "which data: the recorded version (checked by fingerprint), or whatever the name means now"
            }
            Source::HparamDrift => {
                "the hyper-parameters: the recorded values, overrides included, or the code's defaults, as when \
                 someone reruns the script without the flags"
            }
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Source, D::Error> {
        let name = String::deserialize(d)?;
        Source::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// Parses a list of source names (`--free`, the API's `free` array).
pub fn parse_all(names: &[String]) -> Result<Vec<Source>> {
    let mut out: Vec<Source> = names.iter().map(|n| Source::parse(n)).collect::<Result<_, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// The hyper-parameters `hparam_drift` returns to the code's defaults when
/// free (the run's data, seed, length and engine settings stay).
pub const HPARAM_KEYS: [&str; 8] =
    ["hidden", "activation", "dropout", "learning_rate", "momentum", "weight_decay", "batch_size", "val_fraction"];

/// What setting sources free does to the settings themselves:
/// `engine_version` takes the current version, `data_drift` whatever the
/// data set's name means now, `hparam_drift` the code's defaults in place of
/// overrides.
pub fn apply_free_settings(settings: &mut Settings, free: &[Source]) {
    let defaults = Settings::default();
    if free.contains(&Source::EngineVersion) {
        settings.config.engine_version = spec::KERNEL_VERSION;
    }
    if free.contains(&Source::DataDrift) {
        settings.config.dataset.version = None;
        settings.config.dataset.pinned = None;
    }
    if free.contains(&Source::HparamDrift) {
        for key in HPARAM_KEYS {
            if settings.origins.get(key) == Some(&Origin::Override) {
                let text = defaults.config.get_text(key);
                settings.set(key, &text, Origin::Default).expect("a default value is valid");
            }
        }
    }
}

/// The one change that would let an inert source act.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fix {
    /// Change these settings (key, value as text).
    Set(std::collections::BTreeMap<String, String>),
    /// Train on this backend.
    Backend(BackendKind),
}

/// Whether a free source can change anything in a run, why not, and the
/// change that would let it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Effect {
    pub source: Source,
    pub acts: bool,
    pub why: String,
    pub fix: Option<Fix>,
}

fn set_fix(pairs: &[(&str, String)]) -> Option<Fix> {
    Some(Fix::Set(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()))
}

/// What setting `source` free does to a run of `settings` on `backend`
/// (`None`: not decided yet) on a machine where a GPU is or is not available.
/// The rules that decide whether a free source can act live here and only here.
pub fn effect(source: Source, settings: &Settings, backend: Option<BackendKind>, gpu_available: bool) -> Effect {
    let cfg: &Config = &settings.config;
    let (acts, why, fix) = match source {
        Source::Init | Source::Shuffle => (true, "a fresh seed for its stream".to_string(), None),
        Source::Dropout if cfg.dropout > 0.0 => (true, "a fresh seed for the dropout masks".into(), None),
        Source::Dropout => (false, "dropout is 0: no masks are drawn".into(), set_fix(&[("dropout", "0.1".into())])),
        Source::EngineVersion if cfg.engine_version != spec::KERNEL_VERSION => (
            true,
            format!(
                "the run's engine version {} gives way to the current {}",
                cfg.engine_version,
                spec::KERNEL_VERSION
            ),
            None,
        ),
        Source::EngineVersion => {
            let other = spec::ENGINE_VERSIONS.iter().copied().find(|v| *v != spec::KERNEL_VERSION).unwrap_or(1);
            (
                false,
                format!("the run already uses the current engine version {}", spec::KERNEL_VERSION),
                set_fix(&[("engine_version", other.to_string())]),
            )
        }
        Source::GpuReduction if backend != Some(BackendKind::Gpu) && cfg.chunks > 1 => {
            (false, format!("chunks = {} keeps the run on the CPU, which has no GPU reduction", cfg.chunks), None)
        }
        Source::GpuReduction => match backend {
            Some(BackendKind::Gpu) => (true, "float atomics reorder the GPU's gradient sums".into(), None),
            Some(BackendKind::Cpu) => (
                false,
                "the run trains on the CPU, which has no GPU reduction".into(),
                gpu_available.then_some(Fix::Backend(BackendKind::Gpu)),
            ),
            None if gpu_available => (true, "float atomics reorder the GPU's gradient sums (on the GPU)".into(), None),
            None => (false, "no GPU here: the run trains on the CPU".into(), None),
        },
        Source::CpuThreads => {
            if backend == Some(BackendKind::Gpu) {
                (false, "the run trains on the GPU, which has no CPU threads".into(), None)
            } else if cfg.threads < 2 || cfg.chunks < 3 {
                let chunks = 4.min(cfg.batch_size).max(3);
                (
                    false,
                    format!(
                        "needs threads >= 2 and chunks >= 3 to combine partial sums in another order (threads {}, chunks {})",
                        cfg.threads, cfg.chunks
                    ),
                    set_fix(&[("threads", "2".into()), ("chunks", chunks.to_string())]),
                )
            } else {
                (true, "threads finish in any order and their partial sums are added as they arrive".into(), None)
            }
        }
        Source::Backend if cfg.chunks > 1 => {
            (false, format!("chunks = {} runs on the CPU engine only, wherever it is", cfg.chunks), None)
        }
        Source::Backend if gpu_available => (true, "whatever this machine offers: its GPU".into(), None),
        Source::Backend => (false, "this machine offers only the CPU".into(), None),
        Source::DataDrift => {
            let latest = crate::data::latest_version(&cfg.dataset.name);
            match cfg.dataset.version.or(cfg.dataset.pinned) {
                Some(v) if v < latest => (
                    true,
                    format!("{}@{v} gives way to the newer {}@{latest}", cfg.dataset.name, cfg.dataset.name),
                    None,
                ),
                _ if latest > 1 => (
                    false,
                    format!("{} already names its latest version {latest}", cfg.dataset.name),
                    set_fix(&[("dataset", format!("{}@{}", cfg.dataset.name, latest - 1))]),
                ),
                _ => (
                    false,
                    format!("{} has only one version", cfg.dataset.name),
                    set_fix(&[("dataset", "digits@1".into())]),
                ),
            }
        }
        Source::HparamDrift => {
            let defaults = Config::default();
            let overridden: Vec<&str> = HPARAM_KEYS
                .iter()
                .copied()
                .filter(|k| settings.origins.get(*k) == Some(&Origin::Override) && cfg.get(k) != defaults.get(k))
                .collect();
            if overridden.is_empty() {
                let other = if defaults.hidden == [64] { "32" } else { "64" };
                (
                    false,
                    "every hyper-parameter already has its default value".into(),
                    set_fix(&[("hidden", other.into())]),
                )
            } else {
                (true, format!("{} return to their defaults", overridden.join(", ")), None)
            }
        }
    };
    Effect { source, acts, why, fix }
}
