//! The history file: a run's per-step history (chain links, losses,
//! validation points, batches) kept once, beside its checkpoints, so that a
//! checkpoint refers to it instead of copying it, and checkpoint disk grows
//! linearly with the steps.
//!
//! The file is append-only JSON lines. Each line is one chunk of consecutive
//! steps, `{"from_step":F,"hash_chain":[...],"train_loss":[...],
//! "val_error_curve":[...]}` (plus `"batches":[...]` when the run records
//! them): the steps F, F+1, ... in order, and the validation points measured
//! after them. A checkpoint of version 2 names the file, how many steps and
//! bytes of it it continues, and the SHA-256 of those bytes
//! ([`HistoryRef`]); the steps after those are in the checkpoint itself.
//! Lines written after the checkpoint (by later checkpoints, or a write cut
//! short) are not read.

use std::io::BufRead;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::Hash64;
use crate::record::{RunRecord, ValPoint};

/// Most steps written in one line (a run's first chunk is cut into lines of
/// this many steps, so no line is long).
pub const STEPS_PER_LINE: usize = 10_000;

/// The part of a history file a checkpoint continues.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryRef {
    /// The file's name, in the checkpoint's own folder.
    pub file: String,
    /// Steps in the first `bytes` bytes.
    pub steps: usize,
    pub bytes: u64,
    /// SHA-256 (lowercase hex) of the first `bytes` bytes.
    pub sha256: String,
}

impl HistoryRef {
    /// Refuses a name that is not a plain file name (a path would let a
    /// checkpoint read elsewhere), a digest that is not one, and more bytes
    /// than any file read ([`crate::config::MAX_FILE_BYTES`]).
    pub fn check_name(&self) -> Result<()> {
        let ok = !self.file.is_empty()
            && self.file.len() <= 100
            && !self.file.starts_with('.')
            && self.file.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        let hex = self.sha256.len() == 64 && self.sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !ok || !hex {
            return Err(Error::Record(format!(
                "not a valid checkpoint: its history reference (file \"{}\") is not a plain file name with a SHA-256",
                crate::error::echo(&self.file)
            )));
        }
        if self.bytes > crate::config::MAX_FILE_BYTES {
            return Err(Error::limit(
                "history",
                format!(
                    "the checkpoint continues {} bytes of its history file, more than the {} read (MAX_FILE_BYTES)",
                    self.bytes,
                    crate::config::MAX_FILE_BYTES
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct ChunkOut<'a> {
    from_step: usize,
    hash_chain: &'a [Hash64],
    train_loss: &'a [f32],
    val_error_curve: &'a [ValPoint],
    #[serde(skip_serializing_if = "Option::is_none")]
    batches: Option<&'a [Vec<u32>]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Chunk {
    from_step: usize,
    hash_chain: Vec<Hash64>,
    train_loss: Vec<f32>,
    val_error_curve: Vec<ValPoint>,
    #[serde(default)]
    batches: Option<Vec<Vec<u32>>>,
}

/// A run's history from step 1 to `hash_chain.len()`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub hash_chain: Vec<Hash64>,
    pub train_loss: Vec<f32>,
    pub val_curve: Vec<ValPoint>,
    pub batches: Option<Vec<Vec<u32>>>,
}

/// Writes the lines that append the steps after the first `from` of `rec`
/// (and the validation points measured after them) to a history file, one
/// line at a time; `each` sees every line written.
pub fn write_lines(
    rec: &RunRecord,
    from: usize,
    w: &mut dyn std::io::Write,
    each: &mut dyn FnMut(&[u8]),
) -> std::io::Result<()> {
    let mut start = from;
    let mut line = Vec::new();
    while start < rec.step {
        let end = (start + STEPS_PER_LINE).min(rec.step);
        let (lo, hi) =
            (rec.val_curve.partition_point(|p| p.step <= start), rec.val_curve.partition_point(|p| p.step <= end));
        let chunk = ChunkOut {
            from_step: start + 1,
            hash_chain: &rec.hash_chain[start..end],
            train_loss: &rec.train_loss[start..end],
            val_error_curve: &rec.val_curve[lo..hi],
            batches: rec.batches.as_ref().map(|b| &b[start..end]),
        };
        line.clear();
        serde_json::to_writer(&mut line, &chunk).expect("a history chunk serialises");
        line.push(b'\n');
        w.write_all(&line)?;
        each(&line);
        start = end;
    }
    Ok(())
}

/// Reads the part of a history file that `r` holds (the file's first
/// `href.bytes` bytes at most), refusing it in one line when it is shorter,
/// changed (its SHA-256), or not a history of `href.steps` steps. `shown`
/// names the file in messages.
pub fn read(r: impl BufRead, href: &HistoryRef, shown: &str) -> Result<History> {
    let mut r = r;
    let mut h = crate::sealed::Sha256Writer::new();
    let mut hist = History::default();
    let mut first_error: Option<String> = None;
    let mut line = Vec::new();
    let mut bytes = 0u64;
    let mut n = 0usize;
    loop {
        line.clear();
        let got = r.read_until(b'\n', &mut line).map_err(|e| Error::Io(format!("cannot read {shown}: {e}")))?;
        if got == 0 {
            break;
        }
        n += 1;
        bytes += got as u64;
        std::io::Write::write_all(&mut h, &line).expect("hashing does not fail");
        if first_error.is_none() {
            if let Err(e) = append_line(&mut hist, &line) {
                first_error = Some(format!("line {n}: {e}"));
            }
        }
    }
    if bytes < href.bytes {
        return Err(Error::Record(format!(
            "the history file {shown} has {bytes} bytes but the checkpoint continues its first {}: it was truncated",
            href.bytes
        )));
    }
    let digest = h.hex();
    if digest != href.sha256 {
        return Err(Error::Record(format!(
            "the history file {shown} was changed after the checkpoint was written: its first {} bytes hash to {digest}, \
             the checkpoint recorded {}",
            href.bytes, href.sha256
        )));
    }
    if let Some(e) = first_error {
        return Err(Error::Record(format!("the history file {shown} is not a valid history: {e}")));
    }
    if hist.hash_chain.len() != href.steps {
        return Err(Error::Record(format!(
            "the history file {shown} holds {} steps where the checkpoint continues {}",
            hist.hash_chain.len(),
            href.steps
        )));
    }
    Ok(hist)
}

fn append_line(hist: &mut History, line: &[u8]) -> std::result::Result<(), String> {
    let c: Chunk = serde_json::from_slice(line).map_err(|e| crate::sealed::one_line(&e.to_string()))?;
    let done = hist.hash_chain.len();
    let n = c.hash_chain.len();
    if c.from_step != done + 1 || n == 0 || c.train_loss.len() != n {
        return Err(format!(
            "a chunk of {n} links and {} losses from step {} does not continue step {done}",
            c.train_loss.len(),
            c.from_step
        ));
    }
    if c.val_error_curve.iter().any(|p| p.step <= done || p.step > done + n) {
        return Err(format!("a validation point lies outside the steps {}-{}", done + 1, done + n));
    }
    match (&mut hist.batches, c.batches) {
        (Some(all), Some(b)) if b.len() == n => all.extend(b),
        (None, Some(b)) if done == 0 && b.len() == n => hist.batches = Some(b),
        (None, None) => {}
        _ => return Err("its batches do not match its steps".into()),
    }
    hist.hash_chain.extend(c.hash_chain);
    hist.train_loss.extend(c.train_loss);
    hist.val_curve.extend(c.val_error_curve);
    Ok(())
}

/// The writer's side of a history file (the file itself is the caller's):
/// its name, how much of it is written, and the running digest.
#[derive(Clone)]
pub struct HistoryLog {
    file: String,
    steps: usize,
    bytes: u64,
    digest: crate::sealed::Sha256Writer,
}

impl HistoryLog {
    /// An empty history file named `file`.
    pub fn new(file: impl Into<String>) -> HistoryLog {
        HistoryLog { file: file.into(), steps: 0, bytes: 0, digest: crate::sealed::Sha256Writer::new() }
    }

    /// Steps written so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// What a checkpoint continuing the file as written so far records.
    pub fn reference(&self) -> HistoryRef {
        HistoryRef { file: self.file.clone(), steps: self.steps, bytes: self.bytes, sha256: self.digest.hex() }
    }

    /// Appends `rec`'s steps not yet written to the file `w` (positioned at
    /// its end). On an error the file may hold part of a line past what a
    /// checkpoint continues: no checkpoint refers to it.
    pub fn append(&mut self, rec: &RunRecord, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        let (digest, bytes) = (&mut self.digest, &mut self.bytes);
        write_lines(rec, self.steps, w, &mut |line| {
            std::io::Write::write_all(digest, line).expect("hashing does not fail");
            *bytes += line.len() as u64;
        })?;
        self.steps = rec.step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::driver::{new_setup, Run};
    use crate::sealed::{seal, small_object};
    use crate::{Origin, Settings};

    /// A small run of 30 steps, trained to `steps`, that evaluates every 7th
    /// and records its batches.
    fn run(steps: usize) -> Run {
        let mut s = Settings::default();
        for (k, v) in [("hidden", "8"), ("eval_every", "7"), ("batch_size", "4")] {
            s.set(k, v, Origin::Override).unwrap();
        }
        s.set("steps", "30", Origin::Override).unwrap();
        let mut r = Run::cpu(new_setup(s, &[]).unwrap());
        r.record_batches();
        while r.record.step < steps && r.step_now().is_some() {}
        r
    }

    #[test]
    fn streamed_seals_equal_the_whole_tree_seals() {
        let r = run(30);
        let mut m = r.manifest();
        // Floats whose f32 and f64 forms print differently, or not at all.
        let odd = [1e14f32, 1e-7, 3.0, 0.0, -0.0, f32::MAX, f32::MIN_POSITIVE, 1e-45, 0.1, 123456.79];
        m.train_loss[..odd.len()].copy_from_slice(&odd);
        assert_eq!(m.view().checksum(), seal(&m), "manifest");
        m.seal();
        assert_eq!(crate::manifest::Manifest::from_json(&m.to_json()).unwrap().checksum, m.checksum);
        let mut text = Vec::new();
        m.view().write_json(&mut text).unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), m.to_json(), "the streamed text");
        let c = r.checkpoint();
        assert_eq!(c.checksum, seal(&c), "checkpoint");
        assert!(small_object(&c).contains_key("params_bits"));
    }

    #[test]
    fn a_checkpoint_continues_its_history_file_bit_for_bit() {
        let mut r = run(20);
        let mut file = Vec::new();
        let mut log = HistoryLog::new("history-1.jsonl");
        log.append(&r.record, &mut file).unwrap();
        while r.record.step < 30 && r.step_now().is_some() {}
        let ck = r.checkpoint_after(Some(log.reference()));
        assert_eq!(ck.checkpoint_version, crate::checkpoint::CHECKPOINT_VERSION);
        assert_eq!(ck.manifest.hash_chain.len(), 10, "only the steps after the history file");
        assert_eq!(ck.checksum, seal(&ck));
        // Lines appended after the checkpoint are not read.
        log.append(&r.record, &mut file).unwrap();
        let text = ck.to_json();
        let whole = r.checkpoint();
        let read = |bytes: &[u8]| {
            Checkpoint::from_json_with(&text, |h| read(&bytes[..bytes.len().min(h.bytes as usize)], h, "history"))
        };
        let back = read(&file).unwrap();
        assert_eq!(back.manifest.hash_chain, whole.manifest.hash_chain);
        assert_eq!(back.manifest.train_loss, whole.manifest.train_loss);
        assert_eq!(back.manifest.val_error_curve, whole.manifest.val_error_curve);
        assert_eq!(back.manifest.batches, whole.manifest.batches);
        assert!(back.restore(None).is_ok());
        // Refused: another history, a cut one, and without one.
        let mut changed = file.clone();
        changed[3] ^= 1;
        assert!(read(&changed).unwrap_err().to_string().contains("was changed"));
        assert!(read(&file[..50]).unwrap_err().to_string().contains("truncated"));
        assert!(Checkpoint::from_json(&text).unwrap_err().to_string().contains("history-1.jsonl"));
    }

    #[test]
    fn a_history_that_hashes_right_but_is_wrong_is_refused_in_one_line() {
        let cases = [
            ("not json\n", "not a valid history"),
            ("{\"from_step\":2,\"hash_chain\":[\"0123456789abcdef\"],\"train_loss\":[1.0],\"val_error_curve\":[]}\n", "does not continue step 0"),
            ("{\"from_step\":1,\"hash_chain\":[\"0123456789abcdef\"],\"train_loss\":[],\"val_error_curve\":[]}\n", "0 losses"),
            ("{\"from_step\":1,\"hash_chain\":[\"0123456789abcdef\"],\"train_loss\":[1.0],\"val_error_curve\":[{\"step\":5,\"val_error\":0.5,\"val_loss\":null}]}\n", "outside the steps"),
            ("{\"from_step\":1,\"hash_chain\":[\"0123456789abcdef\"],\"train_loss\":[1.0],\"val_error_curve\":[]}\n", "holds 1 steps where the checkpoint continues 2"),
        ];
        for (text, needle) in cases {
            let mut d = crate::sealed::Sha256Writer::new();
            std::io::Write::write_all(&mut d, text.as_bytes()).unwrap();
            let href = HistoryRef { file: "h.jsonl".into(), steps: 2, bytes: text.len() as u64, sha256: d.hex() };
            let e = read(text.as_bytes(), &href, "h.jsonl").unwrap_err().to_string();
            assert!(e.contains(needle) && !e.contains('\n'), "{text}: {e}");
        }
        let bad = HistoryRef { file: "../x".into(), steps: 1, bytes: 1, sha256: "0".repeat(64) };
        assert!(bad.check_name().is_err());
    }
}
