//! Data sets: `digits` carried inside the crate, and synthetic 2-D sets drawn
//! from the `data` stream. Each data set has a SHA-256 fingerprint of the
//! exact bytes the run trains on.

use sha2::{Digest, Sha256};

use crate::rng::{Stream, StreamRng};
use crate::spec;

/// The 1797 8x8 digits (UCI, as scikit-learn 1.9.1 ships it), one row per
/// image: 64 pixels 0..=16 then the label 0..=9, as bytes. Made from
/// `data/digits.csv.gz` (see `data/README.md`); a test re-derives it.
pub const DIGITS_V1: &[u8] = include_bytes!("../data/digits-v1.bin");

/// SHA-256 of [`DIGITS_V1`]: the fingerprint of `digits@1`.
pub const DIGITS_V1_SHA256: &str = "68aea062d35a127749050fa0e52dca09d6569ac08092c925610e0954e172dde2";

/// Names of the synthetic 2-D sets.
pub const SYNTHETIC_NAMES: [&str; 4] = ["spiral", "xor", "circles", "gaussians"];

/// Every data-set name the engine knows.
pub const NAMES: [&str; 5] = ["digits", "spiral", "xor", "circles", "gaussians"];

/// A data set name with an optional version (`digits`, `digits@1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetRef {
    pub name: String,
    /// `None` means "the latest version", as an unchanged path would.
    pub version: Option<u32>,
    /// The version a re-run pins a bare name to (the recorded one, when the
    /// `data_drift` source is pinned); not part of the name as written.
    pub pinned: Option<u32>,
}

impl DatasetRef {
    /// Parses `name` or `name@version`.
    pub fn parse(text: &str) -> Result<DatasetRef, String> {
        let (name, version) = match text.split_once('@') {
            Some((n, v)) => {
                let v: u32 = v
                    .parse()
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or_else(|| format!("version {v:?} of {n:?} is not a whole number from 1 up"))?;
                (n, Some(v))
            }
            None => (text, None),
        };
        if !NAMES.contains(&name) {
            return Err(format!(
                "unknown data set \"{}\"; known: {} (digits@1 and digits@2 name its versions)",
                crate::error::echo(name),
                NAMES.join(", ")
            ));
        }
        let latest = latest_version(name);
        if let Some(v) = version {
            if v > latest {
                return Err(format!("{name} has no version {v}; its versions are 1 to {latest}"));
            }
        }
        Ok(DatasetRef { name: name.to_string(), version, pinned: None })
    }

    /// The version this reference means now.
    pub fn resolved_version(&self) -> u32 {
        self.version.or(self.pinned).unwrap_or_else(|| latest_version(&self.name))
    }
}

impl std::fmt::Display for DatasetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.version {
            Some(v) => write!(f, "{}@{}", self.name, v),
            None => f.write_str(&self.name),
        }
    }
}

/// Number of examples of the data set a reference names (without loading it).
pub fn size(r: &DatasetRef) -> usize {
    match (r.name.as_str(), r.resolved_version()) {
        ("digits", 1) => DIGITS_V1.len() / 65,
        ("digits", _) => DIGITS_V1.len() / 65 + DIGITS_V2_APPENDED,
        _ => spec::SYNTHETIC_SAMPLES,
    }
}

/// Features and classes of the data set named `name` (without loading it).
pub fn shape(name: &str) -> (usize, usize) {
    match name {
        "digits" => (64, 10),
        "spiral" => (2, 3),
        _ => (2, 2),
    }
}

/// The newest version of a data set. `digits` grew once, as a folder of
/// images does: version 2 is version 1 plus [`DIGITS_V2_APPENDED`] images.
pub fn latest_version(name: &str) -> u32 {
    if name == "digits" {
        2
    } else {
        1
    }
}

/// Images appended in `digits@2`: copies of the first 300 images of version 1
/// shifted one pixel to the right (the left column becomes 0, the right one
/// falls off), with the same labels, appended after the 1797 originals.
pub const DIGITS_V2_APPENDED: usize = 300;

/// The bytes of `digits@version` (65 per image: 64 pixels, then the label).
pub fn digits_bytes(version: u32) -> Vec<u8> {
    let mut bytes = DIGITS_V1.to_vec();
    if version >= 2 {
        for row in DIGITS_V1.chunks_exact(65).take(DIGITS_V2_APPENDED) {
            for y in 0..8 {
                bytes.push(0);
                bytes.extend_from_slice(&row[y * 8..y * 8 + 7]);
            }
            bytes.push(row[64]);
        }
    }
    bytes
}

/// A data set in memory, ready to train on.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: String,
    pub version: u32,
    /// Features per example.
    pub dim: usize,
    /// Number of classes; labels are `0..classes`.
    pub classes: usize,
    /// Row-major `[n x dim]`.
    pub features: Vec<f32>,
    pub labels: Vec<u8>,
    /// SHA-256 (hex) of the exact bytes trained on.
    pub fingerprint: String,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set has no example.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The features of example `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    /// Loads the data set a reference names; synthetic sets are drawn from the
    /// `data` stream seeded with `data_seed`.
    pub fn load(r: &DatasetRef, data_seed: u64) -> Dataset {
        let version = r.resolved_version();
        match r.name.as_str() {
            "digits" => digits(version),
            name => synthetic(name, version, data_seed),
        }
    }
}

/// `digits@version`, pixels scaled to [0, 1] by the exact factor 1/16.
pub fn digits(version: u32) -> Dataset {
    let bytes = digits_bytes(version);
    let rows = bytes.len() / 65;
    let mut features = Vec::with_capacity(rows * 64);
    let mut labels = Vec::with_capacity(rows);
    for row in bytes.chunks_exact(65) {
        features.extend(row[..64].iter().map(|&p| f32::from(p) * spec::DIGITS_PIXEL_SCALE));
        labels.push(row[64]);
    }
    Dataset { name: "digits".into(), version, dim: 64, classes: 10, features, labels, fingerprint: sha256_hex(&bytes) }
}

/// SHA-256 as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Draws a synthetic 2-D set of [`spec::SYNTHETIC_SAMPLES`] points. Example
/// `i` has label `i % classes`; its draws are consecutive words of stream id
/// [`spec::DATA_STREAM_ID`], example after example. The fingerprint is the
/// SHA-256 of every example's two coordinates (f32, little-endian) followed
/// by its label byte.
fn synthetic(name: &str, version: u32, seed: u64) -> Dataset {
    let n = spec::SYNTHETIC_SAMPLES;
    let mut rng = StreamRng::new(Stream::Data, seed);
    let r = rng.reader(spec::DATA_STREAM_ID, 0);
    let classes: usize = if name == "spiral" { 3 } else { 2 };
    let mut features = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    let tau = core::f32::consts::TAU;
    for i in 0..n {
        let label = i % classes;
        let (x, y) = match name {
            "spiral" => {
                // Arm `label`, position t along it, angular jitter.
                let t = r.unit_f32();
                let jitter = (r.unit_f32() - 0.5) * 0.4;
                let angle = label as f32 * tau / 3.0 + t * 4.0 + jitter;
                (t * libm::sinf(angle), t * libm::cosf(angle))
            }
            "xor" => {
                // Uniform in the square, label = sign of x*y; points are
                // redrawn until their quadrant matches the label.
                loop {
                    let x = r.unit_f32() * 2.0 - 1.0;
                    let y = r.unit_f32() * 2.0 - 1.0;
                    if ((x * y > 0.0) as usize) == label {
                        break (x, y);
                    }
                }
            }
            "circles" => {
                // Inner disc (label 0) or outer ring (label 1).
                let radius = if label == 0 { r.unit_f32() * 0.5 } else { 0.7 + r.unit_f32() * 0.3 };
                let angle = r.unit_f32() * tau;
                (radius * libm::cosf(angle), radius * libm::sinf(angle))
            }
            "gaussians" => {
                // Two blobs, Box-Muller with 1 - u in (0, 1] so ln is finite.
                let centre = if label == 0 { -0.4 } else { 0.4 };
                let u1 = 1.0 - r.unit_f32();
                let u2 = r.unit_f32();
                let rad = libm::sqrtf(-2.0 * libm::logf(u1)) * 0.3;
                (centre + rad * libm::cosf(tau * u2), centre + rad * libm::sinf(tau * u2))
            }
            other => unreachable!("synthetic set {other} passed DatasetRef::parse"),
        };
        features.push(x);
        features.push(y);
        labels.push(label as u8);
    }
    let mut bytes = Vec::with_capacity(n * 9);
    for i in 0..n {
        bytes.extend_from_slice(&features[2 * i].to_le_bytes());
        bytes.extend_from_slice(&features[2 * i + 1].to_le_bytes());
        bytes.push(labels[i]);
    }
    Dataset { name: name.into(), version, dim: 2, classes, features, labels, fingerprint: sha256_hex(&bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_versions_grow_like_a_folder() {
        let v1 = digits(1);
        let v2 = digits(2);
        assert_eq!(v2.len(), v1.len() + DIGITS_V2_APPENDED);
        assert_eq!(v2.features[..v1.features.len()], v1.features[..], "version 2 starts with version 1");
        assert_ne!(v1.fingerprint, v2.fingerprint);
        // The appended images are shifted copies: pixel (y, x) of the copy is (y, x-1) of the original.
        let (orig, copy) = (v1.row(5), v2.row(v1.len() + 5));
        for y in 0..8 {
            assert_eq!(copy[y * 8], 0.0);
            assert_eq!(copy[y * 8 + 1..y * 8 + 8], orig[y * 8..y * 8 + 7]);
        }
        assert_eq!(v2.labels[v1.len() + 5], v1.labels[5]);
        assert_eq!(DatasetRef::parse("digits").unwrap().resolved_version(), 2, "the bare name means the latest");
    }

    #[test]
    fn digits_has_its_documented_shape_and_fingerprint() {
        let d = digits(1);
        assert_eq!(d.len(), 1797);
        assert_eq!(d.fingerprint, DIGITS_V1_SHA256);
        let mut counts = [0usize; 10];
        for &l in &d.labels {
            counts[l as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (174..=183).contains(&c)), "{counts:?}");
        assert!(d.features.iter().all(|&x| (0.0..=1.0).contains(&x)));
    }

    #[test]
    fn synthetic_sets_depend_on_the_data_seed_only() {
        for name in SYNTHETIC_NAMES {
            let r = DatasetRef::parse(name).unwrap();
            let a = Dataset::load(&r, 1);
            let b = Dataset::load(&r, 1);
            let c = Dataset::load(&r, 2);
            assert_eq!(a.fingerprint, b.fingerprint, "{name}");
            assert_ne!(a.fingerprint, c.fingerprint, "{name}");
            assert_eq!(a.len(), spec::SYNTHETIC_SAMPLES);
            assert!(a.features.iter().all(|v| v.is_finite() && v.abs() <= 2.0), "{name}");
        }
    }

    #[test]
    fn references_parse_and_refuse() {
        assert_eq!(DatasetRef::parse("digits@1").unwrap().resolved_version(), 1);
        assert_eq!(DatasetRef::parse("digits").unwrap().version, None);
        assert!(DatasetRef::parse("digits@9").unwrap_err().contains("no version 9"));
        assert!(DatasetRef::parse("spiral@2").unwrap_err().contains("no version 2"));
        assert!(DatasetRef::parse("mnist").unwrap_err().contains("unknown data set"));
        assert!(DatasetRef::parse("digits@x").is_err());
    }
}
