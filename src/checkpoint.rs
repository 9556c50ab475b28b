//! Checkpoints: everything a run needs to continue bit for bit, as if it had
//! never stopped: the weights and optimizer state (as exact f32 bits), the
//! step, the chain head, every stream's position, the data cursor and the
//! manifest so far. Versioned and checksummed; a corrupted or mismatched
//! checkpoint is refused with a clear message.
//!
//! Streams are counter-addressed (spec: `*_STREAM_ID`), so a stream's
//! position is a function of the step: it is recorded anyway, and checked on
//! resume, so that a checkpoint from another engine layout cannot resume
//! silently.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::hash::{self, Hash64};
use crate::history::{History, HistoryRef};
use crate::manifest::Manifest;
use crate::record::RunRecord;
use crate::setup::{EngineState, Setup};

/// Version of the checkpoint format written when a checkpoint continues a
/// history file ([`crate::history`]): its manifest holds only the steps after
/// the ones in that file. Version 1 (a checkpoint that holds its whole
/// history, as the first checkpoint of a run and every checkpoint of the
/// JavaScript API do) is read and written too.
pub const CHECKPOINT_VERSION: u32 = 2;

/// The version of a checkpoint that holds its whole history.
pub const SELF_CONTAINED_VERSION: u32 = 1;

/// Where every stream stands at the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamPositions {
    /// `shuffle`: the epoch whose permutation is in use (stream id
    /// `EPOCH_STREAM_BASE + epoch`).
    pub shuffle_epoch: usize,
    /// `dropout`: the next step's stream ids start at this step.
    pub dropout_step: usize,
    /// `init` and `data` are spent before the first step.
    pub init_done: bool,
}

/// The data cursor: where the next batch starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCursor {
    pub epoch: usize,
    /// First position in the epoch's permutation of the next batch.
    pub index: usize,
}

/// A checkpoint file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub checkpoint_version: u32,
    /// Steps completed.
    pub step: usize,
    pub chain_head: Hash64,
    /// The weights as f32 bit patterns (exact).
    pub params_bits: Vec<u32>,
    /// The optimizer's velocities as f32 bit patterns.
    pub velocity_bits: Vec<u32>,
    pub streams: StreamPositions,
    pub data_cursor: DataCursor,
    /// The run's record so far (settings, seeds, backend, chain, curves).
    /// In version 2 its per-step histories (`hash_chain`, `train_loss`,
    /// `val_error_curve`, `batches`) hold only the steps after those in the
    /// history file, and its own checksum is empty (the checkpoint's covers
    /// it).
    pub manifest: Manifest,
    /// Version 2: the history file this checkpoint continues, in its folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryRef>,
    /// SHA-256 of the canonical JSON without this field.
    pub checksum: String,
}

impl Checkpoint {
    /// The checkpoint of a run: its record `manifest` (whole, or only the
    /// steps after those of `history`), its record and its engine's state.
    pub fn of(
        manifest: Manifest,
        rec: &RunRecord,
        state: &EngineState,
        steps_per_epoch: usize,
        history: Option<HistoryRef>,
    ) -> Checkpoint {
        let per_epoch = steps_per_epoch;
        let mut c = Checkpoint {
            checkpoint_version: if history.is_some() { CHECKPOINT_VERSION } else { SELF_CONTAINED_VERSION },
            step: rec.step,
            chain_head: rec.chain_head,
            params_bits: state.params.iter().map(|v| v.to_bits()).collect(),
            velocity_bits: state.velocity.iter().map(|v| v.to_bits()).collect(),
            streams: StreamPositions { shuffle_epoch: rec.step / per_epoch, dropout_step: rec.step, init_done: true },
            data_cursor: DataCursor {
                epoch: rec.step / per_epoch,
                index: (rec.step % per_epoch) * rec.settings.config.batch_size,
            },
            manifest,
            history,
            checksum: String::new(),
        };
        c.seal();
        c
    }

    /// Computes the checksum, streaming the long arrays (the weights and the
    /// record's histories are never held as a JSON tree).
    pub fn seal(&mut self) {
        let params = std::mem::take(&mut self.params_bits);
        let velocity = std::mem::take(&mut self.velocity_bits);
        let frame = crate::sealed::small_object(&*self);
        self.params_bits = params;
        self.velocity_bits = velocity;
        let manifest_frame = match frame.get("manifest") {
            Some(serde_json::Value::Object(m)) => m.clone(),
            _ => unreachable!("a checkpoint holds a manifest"),
        };
        let view = self.manifest.view();
        let mut h = crate::sealed::Sha256Writer::new();
        crate::sealed::write_canonical_object(&mut h, &frame, true, &mut |key, w| {
            match key {
                "params_bits" => crate::sealed::write_canonical_array(w, &self.params_bits)?,
                "velocity_bits" => crate::sealed::write_canonical_array(w, &self.velocity_bits)?,
                "manifest" => view.write_canonical_in(w, &manifest_frame, false)?,
                _ => return Ok(false),
            }
            Ok(true)
        })
        .expect("hashing does not fail");
        self.checksum = h.hex();
    }

    /// JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a checkpoint serialises") + "\n"
    }

    /// Writes the JSON text to `w` as it goes.
    pub fn write_json(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *w, self).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    }

    /// Reads a checkpoint that holds its whole history (version 1), refusing
    /// one that is truncated, of another version, changed since it was
    /// written, or whose record is inconsistent. A version 2 checkpoint is
    /// refused in words: read it with [`Checkpoint::from_json_with`].
    pub fn from_json(text: &str) -> Result<Checkpoint> {
        Checkpoint::from_json_with(text, |h| {
            Err(Error::Record(format!(
                "this checkpoint continues the history file {} kept beside it in its folder: resume it with the \
                 command line, from that folder",
                crate::error::echo(&h.file)
            )))
        })
    }

    /// [`Checkpoint::from_json`] for both versions: `load` reads the history
    /// file a version 2 checkpoint names (checking it against the reference:
    /// [`crate::history::read`]). The checkpoint returned holds its whole
    /// history (as version 1).
    pub fn from_json_with(text: &str, load: impl FnOnce(&HistoryRef) -> Result<History>) -> Result<Checkpoint> {
        let v = crate::sealed::read_versions(
            text,
            "checkpoint",
            &[SELF_CONTAINED_VERSION, CHECKPOINT_VERSION],
            "is corrupted or was changed after it was written",
        )?;
        let mut c: Checkpoint = serde_json::from_value(v).map_err(|e| {
            Error::Record(format!("not a valid checkpoint: {}", crate::sealed::one_line(&e.to_string())))
        })?;
        match (c.checkpoint_version, c.history.take()) {
            (SELF_CONTAINED_VERSION, None) => {}
            (CHECKPOINT_VERSION, Some(h)) => {
                h.check_name()?;
                let hist = load(&h)?;
                c.continue_history(hist)?;
                c.checkpoint_version = SELF_CONTAINED_VERSION;
            }
            (v, _) => {
                return Err(Error::Record(format!(
                    "not a valid checkpoint: a version {v} checkpoint {} a history file reference",
                    if v == SELF_CONTAINED_VERSION { "has no" } else { "needs" }
                )))
            }
        }
        c.manifest.validate().map_err(|e| Error::Record(format!("the checkpoint's record: {e}")))?;
        Ok(c)
    }

    /// Puts the steps of the history file before the record's own.
    fn continue_history(&mut self, hist: History) -> Result<()> {
        let m = &mut self.manifest;
        let mut chain = hist.hash_chain;
        chain.append(&mut m.hash_chain);
        m.hash_chain = chain;
        let mut losses = hist.train_loss;
        losses.append(&mut m.train_loss);
        m.train_loss = losses;
        let mut curve = hist.val_curve;
        curve.append(&mut m.val_error_curve);
        m.val_error_curve = curve;
        m.batches = match (hist.batches, m.batches.take()) {
            (Some(mut a), Some(mut b)) => {
                a.append(&mut b);
                Some(a)
            }
            (None, None) => None,
            (None, Some(b)) if m.train_loss.len() == b.len() => Some(b),
            _ => {
                return Err(Error::Record(
                    "the checkpoint's record: the history file and the checkpoint disagree on recording batches".into(),
                ))
            }
        };
        Ok(())
    }

    /// The setup, record and engine state this checkpoint continues, in
    /// exactly the state it was saved in. `steps` may extend (or shorten) the
    /// run's length.
    pub fn restore(&self, steps: Option<usize>) -> Result<(Setup, RunRecord, EngineState)> {
        let m = &self.manifest;
        if m.steps_completed != self.step || m.hash_chain.last().copied().unwrap_or(self.chain_head) != self.chain_head
        {
            return Err(Error::Record(format!(
                "mismatched checkpoint: step {} and chain head {} disagree with its own record ({} steps)",
                self.step, self.chain_head, m.steps_completed
            )));
        }
        if let Some(s) = &m.stopped {
            return Err(Error::Record(format!("the run stopped and cannot be resumed: {}", s.reason)));
        }
        let mut inner = m.clone();
        if let Some(n) = steps {
            if n <= self.step || n > crate::config::MAX_STEPS {
                return Err(Error::config(
                    "steps",
                    format!(
                        "{n} must be beyond the checkpoint's step {} and at most {}",
                        self.step,
                        crate::config::MAX_STEPS
                    ),
                ));
            }
            let entry = inner
                .config
                .get_mut("steps")
                .ok_or_else(|| Error::Record("the checkpoint's record has no steps setting".into()))?;
            entry.value = Value::from(n);
            entry.source = crate::config::Origin::Override;
        }
        let setup = crate::driver::rerun_setup(&inner, &[])?;
        if setup.net.n_params != self.params_bits.len() || setup.net.n_params != self.velocity_bits.len() {
            return Err(Error::Record(format!(
                "mismatched checkpoint: the network has {} parameters but the checkpoint holds {} weights and {} \
                 velocities",
                setup.net.n_params,
                self.params_bits.len(),
                self.velocity_bits.len()
            )));
        }
        let per_epoch = setup.steps_per_epoch();
        let expect = DataCursor {
            epoch: self.step / per_epoch,
            index: (self.step % per_epoch) * setup.settings.config.batch_size,
        };
        if self.data_cursor != expect
            || self.streams.dropout_step != self.step
            || self.streams.shuffle_epoch != expect.epoch
        {
            return Err(Error::Record(
                "mismatched checkpoint: its stream positions or data cursor do not match its step".into(),
            ));
        }
        let state = EngineState {
            step: self.step,
            params: self.params_bits.iter().map(|b| f32::from_bits(*b)).collect(),
            velocity: self.velocity_bits.iter().map(|b| f32::from_bits(*b)).collect(),
        };
        let initial = setup.initial_state();
        let mut rec = setup.new_record(hash::weights_hash(&initial.params));
        if rec.initial_hash != m.initial_weights_hash {
            return Err(Error::Record("mismatched checkpoint: its initial weights are not this run's".into()));
        }
        rec.step = self.step;
        rec.chain_head = self.chain_head;
        rec.hash_chain = m.hash_chain.clone();
        rec.train_loss = m.train_loss.clone();
        rec.val_curve = m.val_error_curve.clone();
        rec.batches = m.batches.clone();
        // A run extended past its recorded end drops the point its old last
        // step added, as if it had never ended there.
        let eval_every = setup.settings.config.eval_every;
        if rec.val_curve.last().is_some_and(|p| p.step == self.step && self.step % eval_every != 0)
            && rec.total_steps() > self.step
        {
            rec.val_curve.pop();
        }
        rec.adapter = m.adapter.clone();
        rec.gpu_reduction = m.gpu_reduction;
        rec.segments = m.backend_history.clone();
        rec.inert = m.inert.clone();
        Ok((setup, rec, state))
    }
}
