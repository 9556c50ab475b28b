//! The nine sources of run-to-run variation (DETERMINISM.md section 1), each
//! a switch: pinned or free. What "free" does to a run lives here, in one
//! place: a fresh seed for the seeded streams, the scheduler's order for the
//! reductions, and "whatever it means now" for the recorded facts.

use crate::rng::Stream;

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
    pub fn parse(name: &str) -> Result<Source, String> {
        Source::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Source::ALL.iter().map(|s| s.name()).collect();
            format!("unknown source {name:?}; sources: {}", names.join(", "))
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

/// Parses a list of source names (`--free`, the API's `free` array).
pub fn parse_all(names: &[String]) -> Result<Vec<Source>, String> {
    let mut out: Vec<Source> = names.iter().map(|n| Source::parse(n)).collect::<Result<_, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}
