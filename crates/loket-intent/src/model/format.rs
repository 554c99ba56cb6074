//! The model file: header, [`ModelData`] (the rkyv payload), its
//! invariants, and [`ModelError`]. See the [module docs](super) for the
//! layout.

use std::path::PathBuf;

use rkyv::rancor;

use crate::features::FeatureConfig;
use crate::handoff::HandoffKind;

/// Magic bytes at the start of every model file.
pub const MAGIC: [u8; 8] = *b"LKINTENT";
/// The format version this build reads and writes.
///
/// Version 2 added word co-occurrence features
/// ([`FeatureConfig::pair_tokens`]); version 3 added the boolean feature
/// options (stems, content pairs, the negation token) and
/// [`ModelData::idf_squared`] (idf-normalised groups); version 4 added the
/// hand-off head ([`ModelData::handoff_class_scale`] and the fields after
/// it); version 5 stores the feature options as one archived
/// [`FeatureConfig`] ([`ModelData::features`]). Files of other versions are
/// refused with [`ModelError::UnsupportedVersion`]: retrain them (training
/// is deterministic).
pub const FORMAT_VERSION: u32 = 5;
/// Length of the header before the rkyv payload (a multiple of 16, so the
/// payload of a 16-aligned file is 16-aligned).
pub const HEADER_LEN: usize = 32;
/// The label reported for out-of-scope messages.
pub const OOS_LABEL: &str = "oos";
/// Most classes a model may have.
pub const MAX_CLASSES: usize = 4096;
/// Classes of a hand-off head: [`HandoffKind::ALL`].
pub const HANDOFF_CLASSES: usize = HandoffKind::ALL.len();

/// Errors from loading or writing a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The bytes do not start with [`MAGIC`].
    #[error("not a loket intent model (the file does not start with the LKINTENT magic bytes)")]
    NotAModel,
    /// The file is shorter (or longer) than its header says.
    #[error("model file has the wrong length: header promises {expected} bytes, file has {actual}")]
    Truncated {
        /// Length promised by the header (header included).
        expected: u64,
        /// Actual length.
        actual: u64,
    },
    /// Written by a newer or older, incompatible build.
    #[error("unsupported model format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The payload does not match its checksum.
    #[error(
        "model checksum mismatch: header says {expected:#010x}, payload hashes to {actual:#010x}"
    )]
    Checksum {
        /// Checksum in the header.
        expected: u32,
        /// Checksum of the payload.
        actual: u32,
    },
    /// The payload is not a valid archive.
    #[error("model data is corrupt: {0}")]
    Corrupt(String),
    /// The archive is well formed but the model breaks an invariant.
    #[error("model is inconsistent: {0}")]
    Invalid(String),
    /// The model file could not be read or written.
    #[error("cannot open {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (in the message, so not also a `source`).
        reason: std::io::Error,
    },
}

/// Everything a model file stores. Produced by [`crate::train::train`];
/// written with [`ModelData::to_bytes`]; read back zero-copy by [`Model`](super::Model).
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ModelData {
    /// Free-form provenance (training command, data sizes).
    pub description: String,
    /// The feature space the weights were trained in (buckets, n-gram
    /// lengths, group weights, pairs and the boolean options); scoring uses
    /// exactly this.
    pub features: FeatureConfig,
    /// Per bucket, the square of the idf factor folded into its weights:
    /// a feature group's norm is the sum of these over its occurrences (see
    /// [`crate::features::group_scale`]). Empty for a model without idf,
    /// where every occurrence counts 1.
    pub idf_squared: Vec<f32>,
    /// Class labels, one per class.
    pub labels: Vec<String>,
    /// Per class: whether it is a buying (pre-purchase) intent.
    pub buying: Vec<bool>,
    /// Index of the class labelled [`OOS_LABEL`], or `u32::MAX`.
    pub oos_class: u32,
    /// Messages whose confidence is below this are out of scope.
    pub oos_threshold: f32,
    /// Softmax inverse temperature applied to the class scores.
    pub temperature: f32,
    /// Per class dequantisation scale of the weights.
    pub class_scale: Vec<f32>,
    /// Per class bias.
    pub bias: Vec<f32>,
    /// Per hand-off class ([`HandoffKind::ALL`] order: none, doubt,
    /// complaint, human), the dequantisation scale of its weights; empty for
    /// a model without a hand-off head.
    pub handoff_class_scale: Vec<f32>,
    /// Per hand-off class, its bias (empty without a hand-off head).
    pub handoff_bias: Vec<f32>,
    /// Softmax inverse temperature of the hand-off classes.
    pub handoff_temperature: f32,
    /// A message is handed off when the probability of its most likely
    /// hand-off kind (doubt, complaint or human) is at least this.
    pub handoff_threshold: f32,
    /// `2^bucket_bits * stride` quantised weights, feature-major: per row
    /// the intent classes, then the hand-off classes, padded with zero
    /// weights to `stride`, the number of classes rounded up to a multiple
    /// of 16 (see [`row_stride`]).
    pub weights: Vec<i8>,
}

impl ModelData {
    /// Serialises into a model file (header and payload).
    ///
    /// # Errors
    /// [`ModelError::Invalid`] when the model breaks an invariant.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        check_invariants(&View {
            config: self.features,
            idf_squared: &self.idf_squared,
            labels: self.labels.len(),
            buying: self.buying.len(),
            oos_class: self.oos_class,
            oos_threshold: self.oos_threshold,
            temperature: self.temperature,
            class_scale: &self.class_scale,
            bias: &self.bias,
            handoff_class_scale: &self.handoff_class_scale,
            handoff_bias: &self.handoff_bias,
            handoff_temperature: self.handoff_temperature,
            handoff_threshold: self.handoff_threshold,
            weights: self.weights.len(),
        })?;
        let payload = rkyv::to_bytes::<rancor::Error>(self)
            .map_err(|e| ModelError::Invalid(format!("cannot serialise: {e}")))?;
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&[0u8; 8]);
        out.extend_from_slice(&payload);
        Ok(out)
    }
}

/// What [`check_invariants`] needs, from either the native or the archived form.
pub(super) struct View<'a, F> {
    pub(super) config: FeatureConfig,
    pub(super) idf_squared: &'a [f32],
    pub(super) labels: usize,
    pub(super) buying: usize,
    pub(super) oos_class: u32,
    pub(super) oos_threshold: f32,
    pub(super) temperature: f32,
    pub(super) class_scale: &'a [F],
    pub(super) bias: &'a [F],
    pub(super) handoff_class_scale: &'a [F],
    pub(super) handoff_bias: &'a [F],
    pub(super) handoff_temperature: f32,
    pub(super) handoff_threshold: f32,
    pub(super) weights: usize,
}

pub(super) fn check_invariants<F: Copy + Into<f32>>(v: &View<'_, F>) -> Result<(), ModelError> {
    let invalid = |what: &str| Err(ModelError::Invalid(what.to_owned()));
    if !v.config.is_valid() {
        return invalid("feature configuration out of range");
    }
    if !v.idf_squared.is_empty() && v.idf_squared.len() != v.config.buckets() {
        return invalid("idf table size is neither 0 nor the number of buckets");
    }
    // Trained factors are at least 1, so a group's scale never exceeds its
    // weight (as without idf).
    if !v.idf_squared.iter().all(|&x| (1.0..1e6).contains(&x)) {
        return invalid("idf factors must be finite, at least 1 and below 1e3");
    }
    let n = v.labels;
    if n == 0 || n > MAX_CLASSES {
        return invalid("number of classes must be between 1 and 4096");
    }
    if v.buying.max(v.class_scale.len()).max(v.bias.len()) != n
        || v.buying.min(v.class_scale.len()).min(v.bias.len()) != n
    {
        return invalid("per-class arrays disagree with the number of labels");
    }
    let handoff = v.handoff_class_scale.len();
    if handoff != v.handoff_bias.len() || (handoff != 0 && handoff != HANDOFF_CLASSES) {
        return invalid("a hand-off head has exactly 4 scales and 4 biases (or none)");
    }
    if Some(v.weights) != v.config.buckets().checked_mul(row_stride(n + handoff)) {
        return invalid("weight table size is not buckets x row stride");
    }
    if v.oos_class != u32::MAX && v.oos_class as usize >= n {
        return invalid("oos class index out of range");
    }
    if !(0.0..=1.0).contains(&v.oos_threshold) {
        return invalid("oos threshold outside [0, 1]");
    }
    if !(v.temperature.is_finite() && v.temperature > 0.0) {
        return invalid("temperature must be finite and positive");
    }
    let finite = |xs: &[F]| xs.iter().all(|&x| x.into().is_finite() && x.into().abs() < 1e6);
    if !finite(v.class_scale) || !finite(v.bias) {
        return invalid("scales and biases must be finite and below 1e6");
    }
    if !finite(v.handoff_class_scale) || !finite(v.handoff_bias) {
        return invalid("hand-off scales and biases must be finite and below 1e6");
    }
    if handoff != 0 {
        if !(v.handoff_temperature.is_finite() && v.handoff_temperature > 0.0) {
            return invalid("hand-off temperature must be finite and positive");
        }
        if !(0.0..=1.0).contains(&v.handoff_threshold) {
            return invalid("hand-off threshold outside [0, 1]");
        }
    }
    Ok(())
}

/// Length of one weight row for `n_classes` classes: rounded up to a
/// multiple of 16 so the accumulation kernel needs no remainder loop.
pub const fn row_stride(n_classes: usize) -> usize {
    n_classes.div_ceil(16) * 16
}

pub(super) fn split_header(bytes: &[u8]) -> Result<&[u8], ModelError> {
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        return Err(ModelError::NotAModel);
    }
    if bytes.len() < HEADER_LEN {
        return Err(ModelError::Truncated {
            expected: HEADER_LEN as u64,
            actual: bytes.len() as u64,
        });
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(ModelError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    let crc = u32_at(12);
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[16..24]);
    let len = u64::from_le_bytes(len);
    let expected = len.saturating_add(HEADER_LEN as u64);
    if expected != bytes.len() as u64 {
        return Err(ModelError::Truncated { expected, actual: bytes.len() as u64 });
    }
    let payload = &bytes[HEADER_LEN..];
    let actual = crc32fast::hash(payload);
    if actual != crc {
        return Err(ModelError::Checksum { expected: crc, actual });
    }
    Ok(payload)
}
