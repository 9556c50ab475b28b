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

use crate::hash::Hash64;
use crate::manifest::{self, Manifest, ManifestError};
use crate::train::Trainer;

/// Version of the checkpoint format.
pub const CHECKPOINT_VERSION: u32 = 1;

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
    pub manifest: Manifest,
    /// SHA-256 of the canonical JSON without this field.
    pub checksum: String,
}

impl Checkpoint {
    /// The checkpoint of a trainer's current state.
    pub fn of(t: &Trainer) -> Checkpoint {
        let per_epoch = t.steps_per_epoch();
        let mut c = Checkpoint {
            checkpoint_version: CHECKPOINT_VERSION,
            step: t.step,
            chain_head: t.chain_head,
            params_bits: t.params.iter().map(|v| v.to_bits()).collect(),
            velocity_bits: t.velocity.iter().map(|v| v.to_bits()).collect(),
            streams: StreamPositions { shuffle_epoch: t.step / per_epoch, dropout_step: t.step, init_done: true },
            data_cursor: DataCursor {
                epoch: t.step / per_epoch,
                index: (t.step % per_epoch) * t.settings.config.batch_size,
            },
            manifest: Manifest::from_trainer(t),
            checksum: String::new(),
        };
        let text = serde_json::to_string(&c).expect("a checkpoint serialises");
        c.checksum = manifest::checksum_of(&serde_json::from_str(&text).expect("a checkpoint parses back"));
        c
    }

    /// JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a checkpoint serialises") + "\n"
    }

    /// Reads a checkpoint, refusing one that is truncated, of another version,
    /// or changed since it was written.
    pub fn from_json(text: &str) -> Result<Checkpoint, ManifestError> {
        let v = manifest::read_sealed(
            text,
            "checkpoint",
            CHECKPOINT_VERSION,
            "is corrupted or was changed after it was written",
        )?;
        serde_json::from_value(v).map_err(|e| ManifestError(format!("not a valid checkpoint: {e}")))
    }

    /// The trainer this checkpoint continues, in exactly the state it was
    /// saved in. `steps` may extend (or shorten) the run's length.
    pub fn resume(&self, steps: Option<usize>) -> Result<Trainer, ManifestError> {
        let m = &self.manifest;
        if m.steps_completed != self.step || m.hash_chain.last().copied().unwrap_or(self.chain_head) != self.chain_head
        {
            return Err(ManifestError(format!(
                "mismatched checkpoint: step {} and chain head {} disagree with its own record ({} steps)",
                self.step, self.chain_head, m.steps_completed
            )));
        }
        if let Some(s) = &m.stopped {
            return Err(ManifestError(format!("the run stopped and cannot be resumed: {}", s.reason)));
        }
        let mut inner = m.clone();
        if let Some(n) = steps {
            if n <= self.step || n > crate::config::MAX_STEPS {
                return Err(ManifestError(format!(
                    "steps: {n} must be beyond the checkpoint's step {} and at most {}",
                    self.step,
                    crate::config::MAX_STEPS
                )));
            }
            let entry = inner.config.get_mut("steps").expect("steps is recorded");
            entry.value = Value::from(n);
            entry.source = crate::config::Origin::Override;
        }
        let mut t = manifest::rerun_trainer(&inner, &[])?;
        if t.params.len() != self.params_bits.len() || t.velocity.len() != self.velocity_bits.len() {
            return Err(ManifestError(format!(
                "mismatched checkpoint: the network has {} parameters but the checkpoint holds {} weights and {} \
                 velocities",
                t.params.len(),
                self.params_bits.len(),
                self.velocity_bits.len()
            )));
        }
        let per_epoch = t.steps_per_epoch();
        let expect =
            DataCursor { epoch: self.step / per_epoch, index: (self.step % per_epoch) * t.settings.config.batch_size };
        if self.data_cursor != expect
            || self.streams.dropout_step != self.step
            || self.streams.shuffle_epoch != expect.epoch
        {
            return Err(ManifestError(
                "mismatched checkpoint: its stream positions or data cursor do not match its step".into(),
            ));
        }
        t.params = self.params_bits.iter().map(|b| f32::from_bits(*b)).collect();
        t.velocity = self.velocity_bits.iter().map(|b| f32::from_bits(*b)).collect();
        t.step = self.step;
        t.chain_head = self.chain_head;
        t.hash_chain = m.hash_chain.clone();
        t.train_loss = m.train_loss.clone();
        t.val_curve = m.val_error_curve.clone();
        // A run extended past its recorded end drops the point its old last
        // step added, as if it had never ended there.
        let eval_every = t.settings.config.eval_every;
        if t.val_curve.last().is_some_and(|p| p.step == self.step && self.step % eval_every != 0)
            && t.total_steps() > self.step
        {
            t.val_curve.pop();
        }
        t.adapter = m.adapter.clone();
        t.gpu_reduction = m.gpu_reduction;
        t.segments = m.backend_history.clone();
        Ok(t)
    }
}
