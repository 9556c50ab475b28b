//! The run configuration: every setting with its default, its parser, its
//! validation, and where each value came from (default, config file or
//! override). The same keys are used in config files, in `--set`, in the
//! manifest and in the page's URL.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::{self, DatasetRef};
use crate::error::{echo, Error};
use crate::spec;

pub use crate::model::Activation;

/// Where a setting's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The code's default.
    Default,
    /// A config file (`--config`).
    Config,
    /// A run-time override (`--set`, `--seed`, `--steps`, the page's controls).
    Override,
}

impl Origin {
    /// The name used in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Default => "default",
            Origin::Config => "config",
            Origin::Override => "override",
        }
    }
}

/// A refused setting: [`Error::Config`], whose `field` names it.
pub type ConfigError = Error;

fn err(field: &str, message: impl Into<String>) -> ConfigError {
    Error::config(field, message)
}

/// Every setting key, in the order they are shown, with a one-line help.
pub const KEYS: [(&str, &str); 16] = [
    ("dataset", "data set: digits (the latest, digits@2), digits@1, spiral, xor, circles, gaussians"),
    ("hidden", "hidden layer widths as a comma list, e.g. 128 or 256,256 (empty: no hidden layer)"),
    ("activation", "hidden activation: relu or tanh"),
    ("dropout", "dropout probability on hidden layers, in [0, 1)"),
    ("learning_rate", "SGD learning rate, above 0"),
    ("momentum", "SGD momentum, in [0, 1)"),
    ("weight_decay", "L2 weight decay on weights (not biases), 0 or more"),
    ("batch_size", "examples per step, at most the training-set size"),
    ("steps", "training steps (minibatches)"),
    ("val_fraction", "fraction of the data held out for validation, in (0, 1)"),
    ("seed", "master seed, a whole number from 0 to 2^53-1"),
    ("eval_every", "measure validation error every this many steps"),
    ("engine_version", "engine (kernel) version: 1 or 2, the same maths summed in another order"),
    ("threads", "CPU worker threads computing the batch's chunks (1 to 64)"),
    ("chunks", "chunks the batch is cut into, each a partial sum (1, or at least 3 and more than threads)"),
    (
        "level",
        "determinism level: run-to-run (the same bits on the same stack) or exact (the same bits on every stack that \
         passes the start-up probe); none trains with the run-to-run arithmetic",
    ),
];

/// Keys a manifest may lack (written by an older version): they read as their
/// default. `level` came with the `exact` level; older runs were run-to-run.
pub const OPTIONAL_KEYS: [&str; 1] = ["level"];

/// Most CPU worker threads.
pub const MAX_THREADS: usize = 64;

/// Largest seed JavaScript can hold exactly (2^53 - 1), so URLs and JSON keep it.
pub const MAX_SEED: u64 = (1 << 53) - 1;
/// Upper bound on a layer's width, so a typo cannot exhaust memory.
pub const MAX_WIDTH: usize = 16_384;
/// Upper bound on the number of steps of one run: what the manifest format
/// can carry. A manifest is read whole (at most [`MAX_FILE_BYTES`]) and keeps
/// a chain link and a loss per step (about 43 bytes written pretty) and a
/// validation point per `eval_every` steps (about 110 bytes), so a run of the
/// most steps writes a manifest of 43 MB, 151 MB when it evaluates after
/// every step: under the read limit either way, where 10^7 steps would not
/// be. Written, a manifest is streamed and the record keeps 12 bytes a step
/// in memory (a 10^6-step run peaks near 20 MB: `bench --soak`).
pub const MAX_STEPS: usize = 1_000_000;
/// Most data-set rows one run records with `train --record-batches`
/// (steps times batch size): each costs about 13 bytes in the manifest, so
/// the most rows and the most steps evaluated after every step still write a
/// manifest under [`MAX_FILE_BYTES`].
pub const MAX_RECORDED_ROWS: usize = 8_000_000;
/// Most hidden layers.
pub const MAX_LAYERS: usize = 16;
/// Most parameters (weights and biases) of a network: each costs about 24
/// bytes on the CPU engine (weights, velocity, gradient, last good copy and
/// the partial sums), so the largest network takes about 100 MB, which a
/// browser tab can hold.
pub const MAX_PARAMS: usize = 4_000_000;
/// Most activations one forward pass holds: the batch (or the 256-row
/// validation block, whichever is larger) times the sum of the layer widths.
pub const MAX_ACTIVATIONS: usize = 8_000_000;
/// Largest input file read whole (config files, manifests, checkpoints).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// A run's configuration: plain values, no provenance.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub dataset: DatasetRef,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub dropout: f32,
    pub learning_rate: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub batch_size: usize,
    pub steps: usize,
    pub val_fraction: f32,
    pub seed: u64,
    pub eval_every: usize,
    pub engine_version: u32,
    pub threads: usize,
    pub chunks: usize,
    /// The level asked for: [`spec::DeterminismLevel::Exact`] trains with
    /// the `exact` arithmetic (spec: [`spec::EXACT_ARITHMETIC`]); the other
    /// two with the default one.
    pub level: spec::DeterminismLevel,
}

impl Default for Config {
    /// The defaults train `digits` with every seeded source active (dropout
    /// above zero), to below 4% validation error (README, "Learning").
    fn default() -> Config {
        Config {
            dataset: DatasetRef { name: "digits".into(), version: None, pinned: None },
            hidden: vec![128],
            activation: Activation::Relu,
            dropout: 0.1,
            learning_rate: 0.05,
            momentum: 0.9,
            weight_decay: 0.0001,
            batch_size: 32,
            steps: 1500,
            val_fraction: 0.2,
            seed: 1,
            eval_every: 50,
            engine_version: crate::spec::KERNEL_VERSION,
            threads: 1,
            chunks: 1,
            level: spec::DeterminismLevel::RunToRun,
        }
    }
}

fn parse_f32(field: &str, text: &str) -> Result<f32, ConfigError> {
    let shown = echo(text);
    let wide: f64 = text.trim().parse().map_err(|_| err(field, format!("expected a number, got \"{shown}\"")))?;
    if !wide.is_finite() {
        return Err(err(field, format!("must be a finite number, got \"{shown}\"")));
    }
    let v = wide as f32;
    if !v.is_finite() {
        return Err(err(field, format!("{shown} is beyond the largest 32-bit float ({:e})", f32::MAX)));
    }
    Ok(v)
}

fn parse_usize(field: &str, text: &str) -> Result<usize, ConfigError> {
    let t = text.trim();
    t.parse().map_err(|_| {
        let shown = echo(text);
        if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
            err(field, format!("{shown} is too large"))
        } else {
            err(field, format!("expected a whole number, got \"{shown}\""))
        }
    })
}

/// Parses a comma list of layer widths.
pub fn parse_hidden(text: &str) -> Result<Vec<usize>, ConfigError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let layers = text.split(',').count();
    if layers > MAX_LAYERS {
        return Err(Error::limit("hidden", format!("at most {MAX_LAYERS} hidden layers (MAX_LAYERS), got {layers}")));
    }
    text.split(',')
        .map(|w| {
            let n: usize = w.trim().parse().map_err(|_| {
                err("hidden", format!("expected layer widths like 128 or 256,256, got \"{}\"", echo(text)))
            })?;
            if n == 0 {
                return Err(err("hidden", format!("a layer needs at least 1 unit, got \"{}\"", echo(text))));
            }
            if n > MAX_WIDTH {
                return Err(Error::limit(
                    "hidden",
                    format!("a layer may have at most {MAX_WIDTH} units (MAX_WIDTH), got {n}"),
                ));
            }
            Ok(n)
        })
        .collect()
}

impl Config {
    /// Sets one key from its text form (as in `--set key=value`). Range checks
    /// that involve one value only happen here; [`Config::validate`] checks
    /// the ones that involve several.
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), ConfigError> {
        let shown = echo(text);
        match key {
            // DatasetRef's messages quote the name and version whole.
            "dataset" => {
                self.dataset = DatasetRef::parse(text.trim()).map_err(|m| err(key, crate::sealed::one_line(&m)))?
            }
            "hidden" => self.hidden = parse_hidden(text)?,
            "activation" => {
                self.activation = Activation::from_name(text.trim())
                    .ok_or_else(|| err(key, format!("expected relu or tanh, got \"{shown}\"")))?
            }
            "dropout" => {
                let v = parse_f32(key, text)?;
                if !(0.0..1.0).contains(&v) {
                    return Err(err(key, format!("must be in [0, 1), got {shown}")));
                }
                self.dropout = v;
            }
            "learning_rate" => {
                let v = parse_f32(key, text)?;
                if v <= 0.0 {
                    return Err(err(key, format!("must be above 0, got {shown}")));
                }
                self.learning_rate = v;
            }
            "momentum" => {
                let v = parse_f32(key, text)?;
                if !(0.0..1.0).contains(&v) {
                    return Err(err(key, format!("must be in [0, 1), got {shown}")));
                }
                self.momentum = v;
            }
            "weight_decay" => {
                let v = parse_f32(key, text)?;
                if v < 0.0 {
                    return Err(err(key, format!("must be 0 or more, got {shown}")));
                }
                self.weight_decay = v;
            }
            "batch_size" => {
                let v = parse_usize(key, text)?;
                if v == 0 {
                    return Err(err(key, "must be at least 1"));
                }
                self.batch_size = v;
            }
            "steps" => {
                let v = parse_usize(key, text)?;
                if v == 0 || v > MAX_STEPS {
                    return Err(err(key, format!("must be from 1 to {MAX_STEPS}, got {shown}")));
                }
                self.steps = v;
            }
            "val_fraction" => {
                let v = parse_f32(key, text)?;
                if !(v > 0.0 && v < 1.0) {
                    return Err(err(key, format!("must be in (0, 1), got {shown}")));
                }
                self.val_fraction = v;
            }
            "seed" => {
                let v: u64 = text.trim().parse().ok().filter(|v| *v <= MAX_SEED).ok_or_else(|| {
                    err(key, format!("expected a whole number from 0 to {MAX_SEED}, got \"{shown}\""))
                })?;
                self.seed = v;
            }
            "eval_every" => {
                let v = parse_usize(key, text)?;
                if v == 0 {
                    return Err(err(key, "must be at least 1"));
                }
                self.eval_every = v;
            }
            "engine_version" => {
                let v: u32 =
                    text.trim().parse().map_err(|_| err(key, format!("expected a whole number, got \"{shown}\"")))?;
                if !spec::ENGINE_VERSIONS.contains(&v) {
                    return Err(err(
                        key,
                        format!("this build has engine versions {:?}, not {v}", spec::ENGINE_VERSIONS),
                    ));
                }
                self.engine_version = v;
            }
            "threads" => {
                let v = parse_usize(key, text)?;
                if v == 0 || v > MAX_THREADS {
                    return Err(err(key, format!("must be from 1 to {MAX_THREADS}, got {shown}")));
                }
                self.threads = v;
            }
            "chunks" => {
                let v = parse_usize(key, text)?;
                if v == 0 {
                    return Err(err(key, "must be at least 1"));
                }
                self.chunks = v;
            }
            "level" => {
                self.level = spec::DeterminismLevel::from_name(text.trim())
                    .ok_or_else(|| err(key, format!("expected run-to-run, exact or none, got \"{shown}\"")))?
            }
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }

    /// The value of one key as JSON (numbers as numbers, lists and names as
    /// strings), the form written to manifests.
    pub fn get(&self, key: &str) -> Value {
        match key {
            "dataset" => Value::from(self.dataset.to_string()),
            "hidden" => Value::from(self.hidden.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(",")),
            "activation" => Value::from(self.activation.name()),
            "dropout" => f32_value(self.dropout),
            "learning_rate" => f32_value(self.learning_rate),
            "momentum" => f32_value(self.momentum),
            "weight_decay" => f32_value(self.weight_decay),
            "batch_size" => Value::from(self.batch_size),
            "steps" => Value::from(self.steps),
            "val_fraction" => f32_value(self.val_fraction),
            "seed" => Value::from(self.seed),
            "eval_every" => Value::from(self.eval_every),
            "engine_version" => Value::from(self.engine_version),
            "threads" => Value::from(self.threads),
            "chunks" => Value::from(self.chunks),
            "level" => Value::from(self.level.name()),
            _ => Value::Null,
        }
    }

    /// The value of one key in its text form (as `--set` and URLs take it).
    pub fn get_text(&self, key: &str) -> String {
        value_text(&self.get(key)).unwrap_or_default()
    }

    /// Checks what involves several values: the split and the batch against
    /// the data set's size.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_limits()?;
        let n = data::size(&self.dataset);
        let (n_train, n_val) = split_sizes(n, self.val_fraction);
        if n_val == 0 || n_train == 0 {
            return Err(err(
                "val_fraction",
                format!(
                    "{} leaves {n_train} training and {n_val} validation examples out of {n}; both need at least 1",
                    self.val_fraction
                ),
            ));
        }
        if self.chunks > self.batch_size {
            return Err(err("chunks", format!("{} chunks cannot split a batch of {}", self.chunks, self.batch_size)));
        }
        if self.chunks == 2 {
            return Err(err(
                "chunks",
                "2 partial sums can never change a float sum's bits (a + b == b + a): use 1, or 3 and more",
            ));
        }
        if self.threads > 1 && self.chunks <= self.threads {
            return Err(err(
                "chunks",
                format!("{} threads need more chunks than threads (and at least 3), got {}", self.threads, self.chunks),
            ));
        }
        if self.batch_size > n_train {
            return Err(err(
                "batch_size",
                format!("{} is larger than the {n_train} training examples of {}", self.batch_size, self.dataset),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Refuses, before anything is allocated, a network or batch beyond the
    /// limits ([`MAX_LAYERS`], [`MAX_PARAMS`], [`MAX_ACTIVATIONS`]), with
    /// checked arithmetic so no product can wrap.
    pub fn check_limits(&self) -> Result<(), ConfigError> {
        if self.hidden.len() > MAX_LAYERS {
            return Err(Error::limit(
                "hidden",
                format!("at most {MAX_LAYERS} hidden layers (MAX_LAYERS), got {}", self.hidden.len()),
            ));
        }
        let (dim, classes) = data::shape(&self.dataset.name);
        let mut widths = vec![dim];
        widths.extend_from_slice(&self.hidden);
        widths.push(classes);
        let too_big = || {
            Error::limit(
                "hidden",
                format!(
                    "a network {} has more than {MAX_PARAMS} parameters (MAX_PARAMS, about 100 MB of memory)",
                    widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-")
                ),
            )
        };
        let mut params = 0usize;
        for pair in widths.windows(2) {
            let layer = pair[0].checked_mul(pair[1]).and_then(|w| w.checked_add(pair[1])).ok_or_else(too_big)?;
            params = params.checked_add(layer).ok_or_else(too_big)?;
        }
        if params > MAX_PARAMS {
            return Err(too_big());
        }
        let width_sum: usize = widths.iter().sum();
        let rows = self.batch_size.max(256);
        let acts = rows.saturating_mul(width_sum);
        if acts > MAX_ACTIVATIONS {
            let field = if self.batch_size > 256 { "batch_size" } else { "hidden" };
            return Err(Error::limit(
                field,
                format!(
                    "batch {} x layer widths {width_sum} is more than {MAX_ACTIVATIONS} activations \
                     (MAX_ACTIVATIONS): use a smaller batch or narrower layers",
                    self.batch_size
                ),
            ));
        }
        Ok(())
    }
}

/// Training and validation sizes for `n` examples (spec: the first
/// `round(n * val_fraction)` examples of the split permutation validate).
pub fn split_sizes(n: usize, val_fraction: f32) -> (usize, usize) {
    let n_val = ((n as f64) * f64::from(val_fraction)).round() as usize;
    let n_val = n_val.min(n);
    (n - n_val, n_val)
}

/// An f32 as a JSON number that prints as its shortest round-tripping form.
fn f32_value(v: f32) -> Value {
    // f32 -> shortest decimal -> f64 keeps "0.1" as 0.1 rather than
    // 0.10000000149011612.
    let shortest: f64 = v.to_string().parse().expect("f32 display parses");
    Value::from(shortest)
}

/// The text form of a JSON setting value: strings as they are, numbers in
/// their shortest form, lists of numbers joined by commas.
pub fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => items
            .iter()
            .map(|i| if i.is_number() { value_text(i) } else { None })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        _ => None,
    }
}

fn unknown_key(key: &str) -> ConfigError {
    let best = (key.len() <= 64)
        .then(|| KEYS.iter().map(|(k, _)| (edit_distance(key, k), *k)).min())
        .flatten()
        .filter(|(d, _)| *d <= 3);
    let hint = match best {
        Some((_, k)) => format!("; did you mean {k:?}?"),
        None => String::new(),
    };
    let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
    err(&echo(key), format!("unknown setting{hint} (known: {})", known.join(", ")))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// One setting as a manifest records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub value: Value,
    pub source: Origin,
}

/// A configuration with the origin of every value.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub config: Config,
    pub origins: BTreeMap<&'static str, Origin>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { config: Config::default(), origins: KEYS.iter().map(|(k, _)| (*k, Origin::Default)).collect() }
    }
}

impl Settings {
    /// Sets `key` from text and records where the value came from.
    pub fn set(&mut self, key: &str, text: &str, origin: Origin) -> Result<(), ConfigError> {
        self.config.set(key, text)?;
        let k = KEYS.iter().find(|(k, _)| *k == key).map(|(k, _)| *k).expect("set accepted a known key");
        self.origins.insert(k, origin);
        Ok(())
    }

    /// Applies `key=value` (as `--set` takes it).
    pub fn set_pair(&mut self, pair: &str, origin: Origin) -> Result<(), ConfigError> {
        let (k, v) =
            pair.split_once('=').ok_or_else(|| err(pair.trim(), format!("expected key=value, got {pair:?}")))?;
        self.set(k.trim(), v, origin)
    }

    /// Applies a config file's text: a JSON object of settings, optionally
    /// with `"version": 1`.
    pub fn apply_config_file(&mut self, text: &str) -> Result<(), ConfigError> {
        let v: Value = serde_json::from_str(text).map_err(|e| err("config", format!("not valid JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| err("config", "expected a JSON object of settings"))?;
        for (k, v) in obj {
            if k == "version" {
                if v.as_u64() != Some(u64::from(spec::CONFIG_VERSION)) {
                    return Err(err(
                        "version",
                        format!(
                            "config version {} is not supported (this reprolab reads version {})",
                            echo(&v.to_string()),
                            spec::CONFIG_VERSION
                        ),
                    ));
                }
                continue;
            }
            let text = value_text(v).ok_or_else(|| {
                err(&echo(k), format!("expected a string, a number or a list of numbers, got {}", echo(&v.to_string())))
            })?;
            self.set(k, &text, Origin::Config)?;
        }
        Ok(())
    }

    /// Every setting with its value and origin, as the manifest records them.
    pub fn entries(&self) -> BTreeMap<String, Entry> {
        KEYS.iter()
            .map(|(k, _)| (k.to_string(), Entry { value: self.config.get(k), source: self.origins[k] }))
            .collect()
    }

    /// Rebuilds settings from a manifest's entries (every key must be there,
    /// except the [`OPTIONAL_KEYS`] of older versions, which take their
    /// defaults).
    pub fn from_entries(entries: &BTreeMap<String, Entry>) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        for (k, e) in entries {
            let text = value_text(&e.value)
                .ok_or_else(|| err(&echo(k), format!("unreadable value {}", echo(&e.value.to_string()))))?;
            s.set(k, &text, e.source)?;
        }
        for (k, _) in KEYS {
            if !entries.contains_key(k) && !OPTIONAL_KEYS.contains(&k) {
                return Err(err(k, "missing from the recorded configuration"));
            }
        }
        s.config.validate()?;
        Ok(s)
    }
}

/// Settings travel (in a [`crate::record::RunRecord`]) as their entries:
/// every key with its value and origin, as a manifest's `config` holds them.
impl Serialize for Settings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.entries().serialize(serializer)
    }
}

/// Read back through [`Settings::from_entries`], so every value is checked
/// as a fresh setting is.
impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Settings, D::Error> {
        let entries = BTreeMap::<String, Entry>::deserialize(deserializer)?;
        Settings::from_entries(&entries).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let s = Settings::default();
        s.config.validate().unwrap();
        let back = Settings::from_entries(&s.entries()).unwrap();
        assert_eq!(back, s);
        assert_eq!(s.config.get("learning_rate").to_string(), "0.05");
        assert!(s.config.dropout > 0.0, "defaults must exercise the dropout stream");
    }

    #[test]
    fn every_bad_value_names_its_field() {
        let cases = [
            ("hidden", "0"),
            ("hidden", "64,0"),
            ("hidden", "abc"),
            ("learning_rate", "-0.1"),
            ("learning_rate", "0"),
            ("learning_rate", "NaN"),
            ("learning_rate", "inf"),
            ("dropout", "1"),
            ("dropout", "-0.1"),
            ("dropout", "nan"),
            ("momentum", "1.5"),
            ("weight_decay", "-1"),
            ("batch_size", "0"),
            ("batch_size", "2.5"),
            ("steps", "0"),
            ("val_fraction", "0"),
            ("val_fraction", "1"),
            ("seed", "-1"),
            ("seed", "9007199254740992"),
            ("activation", "sigmoid"),
            ("dataset", "mnist"),
            ("eval_every", "0"),
        ];
        for (k, v) in cases {
            let mut s = Settings::default();
            let e = s.set(k, v, Origin::Override).unwrap_err();
            assert_eq!(e.field(), Some(k), "{k}={v}: {e}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn batch_larger_than_data_is_refused() {
        let mut s = Settings::default();
        s.set("batch_size", "5000", Origin::Override).unwrap();
        assert_eq!(s.config.validate().unwrap_err().field(), Some("batch_size"));
    }

    #[test]
    fn unknown_keys_are_refused_with_a_hint() {
        let mut s = Settings::default();
        let e = s.set_pair("learnin_rate=0.1", Origin::Override).unwrap_err();
        assert_eq!(e.field(), Some("learnin_rate"));
        assert!(e.to_string().contains("did you mean \"learning_rate\""), "{e}");
    }

    #[test]
    fn config_file_values_are_marked_config() {
        let mut s = Settings::default();
        s.apply_config_file(r#"{"version": 1, "hidden": [256, 256], "learning_rate": 0.1}"#).unwrap();
        assert_eq!(s.config.hidden, vec![256, 256]);
        assert_eq!(s.origins["hidden"], Origin::Config);
        assert_eq!(s.origins["momentum"], Origin::Default);
        assert_eq!(s.apply_config_file(r#"{"version": 2}"#).unwrap_err().field(), Some("version"));
        assert_eq!(s.apply_config_file(r#"{"bogus": 1}"#).unwrap_err().field(), Some("bogus"));
    }

    #[test]
    fn networks_beyond_the_limits_are_refused_before_allocating() {
        let mut s = Settings::default();
        // Each layer is within MAX_WIDTH; together they are far beyond MAX_PARAMS.
        s.set("hidden", "16384,16384", Origin::Override).unwrap();
        let e = s.config.validate().unwrap_err();
        assert_eq!((e.code(), e.field()), ("limit", Some("hidden")), "{e}");
        assert!(e.to_string().contains("MAX_PARAMS"), "{e}");
        let many = ["1"; MAX_LAYERS + 1].join(",");
        let e = s.set("hidden", &many, Origin::Override).unwrap_err();
        assert!(e.to_string().contains("MAX_LAYERS"), "{e}");
        let e = s.set("hidden", &["1"; 200_000].join(","), Origin::Override).unwrap_err();
        assert_eq!(e.code(), "limit");
        s.set("hidden", &["400"; MAX_LAYERS].join(","), Origin::Override).unwrap();
        s.set("batch_size", "1400", Origin::Override).unwrap();
        let e = s.config.validate().unwrap_err();
        assert!(e.to_string().contains("MAX_ACTIVATIONS"), "{e}");
    }

    #[test]
    fn messages_are_one_line_and_capped() {
        let mut s = Settings::default();
        let e = s.set("seed", &"9".repeat(200_000), Origin::Override).unwrap_err();
        assert!(e.to_string().len() < 300, "{} characters", e.to_string().len());
        let e = s.set_pair("learning_rate=0.1\nx", Origin::Override).unwrap_err();
        assert!(!e.to_string().contains('\n'), "{e}");
        let e = s.set_pair("bad\nkey=1", Origin::Override).unwrap_err();
        assert!(!e.to_string().contains('\n') && !e.field().unwrap().contains('\n'), "{e}");
        let e = s.set("weight_decay", "3.5e38", Origin::Override).unwrap_err();
        assert!(e.to_string().contains("largest 32-bit float"), "{e}");
    }
}
