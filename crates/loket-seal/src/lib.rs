//! Sealing what a tenant keeps at rest: journal records and snapshots,
//! encrypted and authenticated with AES-256-GCM (`aws-lc-rs`).
//!
//! ```
//! use loket_seal::{Key, Keyring, Opened, Purpose};
//!
//! let key = Key::from_hex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")?;
//! let keyring = Keyring::new(key, Vec::new());
//! let mut sealed = Vec::new();
//! keyring.seal(Purpose::JournalRecord, b"hello", &mut sealed)?;
//! assert!(!sealed.windows(5).any(|w| w == b"hello"));
//! match keyring.open(Purpose::JournalRecord, &sealed)? {
//!     Opened::Sealed(plain) => assert_eq!(plain, b"hello"),
//!     Opened::Plain(_) => unreachable!(),
//! }
//! # Ok::<(), loket_seal::SealError>(())
//! ```
//!
//! # Envelope
//!
//! `MAGIC` (8 bytes) · key fingerprint (4) · nonce (12) · ciphertext · tag
//! (16). The nonce is random for every seal (a journal may rewrite a torn
//! record's position with other bytes, so positions cannot be nonces); with
//! 96-bit random nonces a key should seal fewer than 2^32 items, which the
//! rotation in `docs/loketd.md` keeps far away. The purpose (journal record
//! or snapshot) is authenticated as associated data, so one cannot stand in
//! for the other. The fingerprint (the first four bytes of the key's
//! SHA-256) names the key without revealing it, so opening with a key that
//! did not seal is a clear [`SealError::UnknownKey`], never garbage.
//!
//! # Plain input
//!
//! Bytes without the magic are [`Opened::Plain`]: what a tenant wrote before
//! it had a key is still read (and is gone once snapshots and journal
//! trimming have moved past it). The magic starts with `0xFF`, which no
//! UTF-8 text has, so what a customer wrote cannot pass for an envelope.

#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::digest::{SHA256, digest};

/// The first bytes of every envelope.
pub const MAGIC: [u8; 8] = *b"\xffLKSEAL\x01";
/// Bytes of a key's fingerprint in an envelope.
pub const FINGERPRINT_LEN: usize = 4;
/// Bytes of the authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes an envelope adds to what it seals.
pub const OVERHEAD: usize = MAGIC.len() + FINGERPRINT_LEN + NONCE_LEN + TAG_LEN;
/// Bytes of a key.
pub const KEY_LEN: usize = 32;

/// What sealed bytes are for: authenticated with them, so bytes sealed for
/// one purpose do not open for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// One journal record (also as it travels in a cluster's stream).
    JournalRecord,
    /// A whole snapshot.
    Snapshot,
    /// An event waiting for delivery to a webhook, or an endpoint's state
    /// file (cursors and dead letters).
    Webhook,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Purpose::JournalRecord => b"loket journal record",
            Purpose::Snapshot => b"loket snapshot",
            Purpose::Webhook => b"loket webhook",
        }
    }
}

/// Why a key could not be loaded or bytes could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// A key's text is not 64 hexadecimal digits.
    #[error("a key is 64 hexadecimal digits (32 bytes); {0}")]
    KeyFormat(String),
    /// A key file cannot be read.
    #[error("cannot read key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key's environment variable is not set (or not Unicode).
    #[error("environment variable {0} (a key) is not set")]
    KeyVariable(String),
    /// Sealed with a key the keyring does not have.
    #[error("sealed with key {found}, which is not configured (configured: {configured})")]
    UnknownKey {
        /// The sealing key's fingerprint.
        found: Fingerprint,
        /// The keyring's fingerprints, current first.
        configured: String,
    },
    /// Sealed bytes, but no key is configured.
    #[error("sealed with key {0}, but no key is configured")]
    NoKey(Fingerprint),
    /// The envelope is cut short.
    #[error("a sealed item of {0} bytes is shorter than its envelope")]
    Truncated(usize),
    /// The key is right but the bytes do not authenticate: damaged, or
    /// sealed for another purpose.
    #[error("sealed bytes do not authenticate with key {0}: damaged or not a {1:?}")]
    Damaged(Fingerprint, Purpose),
    /// The cryptographic library refused (no randomness, say).
    #[error("sealing failed")]
    Crypto,
}

impl SealError {
    /// A key format error, naming where the key came from.
    fn naming_origin(self, origin: &str) -> SealError {
        match self {
            SealError::KeyFormat(why) => SealError::KeyFormat(format!("{origin}: {why}")),
            other => other,
        }
    }
}

/// The first four bytes of a key's SHA-256, shown in hex: names a key in
/// errors and envelopes without revealing it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; FINGERPRINT_LEN]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A 256-bit key.
pub struct Key {
    key: RandomizedNonceKey,
    fingerprint: Fingerprint,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl Key {
    /// A key from 64 hexadecimal digits (surrounding whitespace ignored),
    /// as `openssl rand -hex 32` writes them.
    ///
    /// # Errors
    /// [`SealError::KeyFormat`], saying what is wrong (never the key).
    pub fn from_hex(text: &str) -> Result<Key, SealError> {
        let text = text.trim();
        if text.len() != 2 * KEY_LEN {
            return Err(SealError::KeyFormat(format!("this one has {} characters", text.len())));
        }
        let mut bytes = [0u8; KEY_LEN];
        for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(high), Some(low)) => bytes[i] = (high * 16 + low) as u8,
                _ => {
                    return Err(SealError::KeyFormat(format!(
                        "character {} is not a hexadecimal digit",
                        2 * i + 1
                    )));
                }
            }
        }
        Key::from_bytes(&bytes)
    }

    /// A key from its 32 bytes.
    ///
    /// # Errors
    /// [`SealError::Crypto`] if the library refuses the key.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<Key, SealError> {
        let mut fingerprint = [0u8; FINGERPRINT_LEN];
        fingerprint.copy_from_slice(&digest(&SHA256, bytes).as_ref()[..FINGERPRINT_LEN]);
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::Crypto)?;
        Ok(Key { key, fingerprint: Fingerprint(fingerprint) })
    }

    /// The key in a file, as for [`Key::from_hex`].
    ///
    /// # Errors
    /// [`SealError::KeyFile`] or [`SealError::KeyFormat`] (naming the file).
    pub fn from_file(path: &Path) -> Result<Key, SealError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SealError::KeyFile { path: path.to_owned(), source })?;
        Key::from_hex(&text).map_err(|error| error.naming_origin(&path.display().to_string()))
    }

    /// The key in an environment variable, as for [`Key::from_hex`].
    ///
    /// # Errors
    /// [`SealError::KeyVariable`] or [`SealError::KeyFormat`] (naming it).
    pub fn from_env(variable: &str) -> Result<Key, SealError> {
        let text =
            std::env::var(variable).map_err(|_| SealError::KeyVariable(variable.to_owned()))?;
        Key::from_hex(&text).map_err(|error| error.naming_origin(&format!("${variable}")))
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

/// The key that seals, and older keys that still open what they sealed.
#[derive(Debug)]
pub struct Keyring {
    current: Key,
    older: Vec<Key>,
}

/// What [`Keyring::open`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened<'a> {
    /// An envelope, opened.
    Sealed(Vec<u8>),
    /// Bytes without an envelope, as they were.
    Plain(&'a [u8]),
}

impl Opened<'_> {
    /// The plain bytes, however they were kept.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Opened::Sealed(bytes) => bytes,
            Opened::Plain(bytes) => bytes,
        }
    }
}

impl Keyring {
    /// A keyring that seals with `current` and opens with it and `older`.
    pub fn new(current: Key, older: Vec<Key>) -> Keyring {
        Keyring { current, older }
    }

    /// The fingerprint of the key that seals.
    pub fn fingerprint(&self) -> Fingerprint {
        self.current.fingerprint
    }

    /// Appends `plain`, sealed for `purpose`, to `out`.
    ///
    /// # Errors
    /// [`SealError::Crypto`] if the library fails (no randomness).
    pub fn seal(&self, purpose: Purpose, plain: &[u8], out: &mut Vec<u8>) -> Result<(), SealError> {
        out.reserve(plain.len() + OVERHEAD);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.current.fingerprint.0);
        let nonce_at = out.len();
        out.extend_from_slice(&[0; NONCE_LEN]);
        let body_at = out.len();
        out.extend_from_slice(plain);
        let (nonce, tag) = self
            .current
            .key
            .seal_in_place_separate_tag(Aad::from(purpose.aad()), &mut out[body_at..])
            .map_err(|_| SealError::Crypto)?;
        out[nonce_at..body_at].copy_from_slice(nonce.as_ref());
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// As [`Keyring::seal`], into a new vector.
    ///
    /// # Errors
    /// As [`Keyring::seal`].
    pub fn sealed(&self, purpose: Purpose, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut out = Vec::new();
        self.seal(purpose, plain, &mut out)?;
        Ok(out)
    }

    fn key(&self, fingerprint: Fingerprint) -> Result<&Key, SealError> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .find(|key| key.fingerprint == fingerprint)
            .ok_or_else(|| SealError::UnknownKey {
                found: fingerprint,
                configured: std::iter::once(&self.current)
                    .chain(&self.older)
                    .map(|key| key.fingerprint.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Opens bytes sealed for `purpose` by this keyring's current or an
    /// older key; bytes without an envelope come back as they are.
    ///
    /// # Errors
    /// [`SealError::UnknownKey`], [`SealError::Truncated`] or
    /// [`SealError::Damaged`].
    pub fn open<'a>(&self, purpose: Purpose, bytes: &'a [u8]) -> Result<Opened<'a>, SealError> {
        let Some(envelope) = Envelope::parse(bytes)? else {
            return Ok(Opened::Plain(bytes));
        };
        let key = self.key(envelope.fingerprint)?;
        let nonce = Nonce::assume_unique_for_key(envelope.nonce);
        let mut body = envelope.body.to_vec();
        let plain_len = key
            .key
            .open_in_place(nonce, Aad::from(purpose.aad()), &mut body)
            .map_err(|_| SealError::Damaged(envelope.fingerprint, purpose))?
            .len();
        body.truncate(plain_len);
        Ok(Opened::Sealed(body))
    }
}

/// Opens `bytes` with `keyring` if there is one; without one, sealed bytes
/// are [`SealError::NoKey`] and plain bytes come back as they are.
///
/// # Errors
/// As [`Keyring::open`], and [`SealError::NoKey`].
pub fn open<'a>(
    keyring: Option<&Keyring>,
    purpose: Purpose,
    bytes: &'a [u8],
) -> Result<Opened<'a>, SealError> {
    match keyring {
        Some(keyring) => keyring.open(purpose, bytes),
        None => match Envelope::parse(bytes)? {
            Some(envelope) => Err(SealError::NoKey(envelope.fingerprint)),
            None => Ok(Opened::Plain(bytes)),
        },
    }
}

/// Whether `bytes` start like an envelope.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// An envelope's parts.
struct Envelope<'a> {
    fingerprint: Fingerprint,
    nonce: [u8; NONCE_LEN],
    /// Ciphertext and tag.
    body: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// `None` for bytes without the magic.
    fn parse(bytes: &'a [u8]) -> Result<Option<Envelope<'a>>, SealError> {
        let Some(rest) = bytes.strip_prefix(&MAGIC) else { return Ok(None) };
        if bytes.len() < OVERHEAD {
            return Err(SealError::Truncated(bytes.len()));
        }
        let (fingerprint, rest) = rest.split_at(FINGERPRINT_LEN);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        Ok(Some(Envelope {
            fingerprint: Fingerprint(fingerprint.try_into().map_err(|_| SealError::Crypto)?),
            nonce: nonce.try_into().map_err(|_| SealError::Crypto)?,
            body,
        }))
    }
}

/// Properties checked by the `seal_open` fuzz target (and by
/// `tests/fuzz_corpus.rs` on the checked-in seeds).
pub mod fuzz_checks {
    use super::*;

    fn keyring(byte: u8) -> Keyring {
        Keyring::new(Key::from_bytes(&[byte; KEY_LEN]).expect("a key"), Vec::new())
    }

    /// Arbitrary bytes, as an envelope to open and as plain bytes to seal:
    /// opening never panics; bytes without the magic open as themselves;
    /// what is sealed opens to itself with the same key and purpose only,
    /// is refused with another key (naming it) or purpose, and is refused
    /// once any one byte of it is changed.
    pub fn seal_open(data: &[u8]) {
        let ring = keyring(1);
        let other = keyring(2);
        for purpose in [Purpose::JournalRecord, Purpose::Snapshot, Purpose::Webhook] {
            match ring.open(purpose, data) {
                Ok(Opened::Plain(plain)) => assert!(!is_sealed(data) && plain == data),
                Ok(Opened::Sealed(_)) => panic!("opened bytes nobody sealed"),
                Err(_) => assert!(is_sealed(data)),
            }
            let _ = open(None, purpose, data);
        }
        let sealed = ring.sealed(Purpose::JournalRecord, data).expect("seals");
        assert_eq!(sealed.len(), data.len() + OVERHEAD);
        let opened = ring.open(Purpose::JournalRecord, &sealed).expect("opens");
        assert_eq!(opened, Opened::Sealed(data.to_vec()));
        assert!(matches!(
            ring.open(Purpose::Snapshot, &sealed),
            Err(SealError::Damaged(_, Purpose::Snapshot))
        ));
        assert!(matches!(
            other.open(Purpose::JournalRecord, &sealed),
            Err(SealError::UnknownKey { .. })
        ));
        assert!(matches!(open(None, Purpose::JournalRecord, &sealed), Err(SealError::NoKey(_))));
        let rotated = Keyring::new(keyring(3).current, vec![keyring(1).current]);
        assert_eq!(rotated.open(Purpose::JournalRecord, &sealed).expect("older key"), opened);
        if !data.is_empty() {
            let at = usize::from(data[0]) % sealed.len();
            let mut bent = sealed.clone();
            bent[at] ^= 0x01;
            // A changed magic leaves plain bytes; anything else is refused.
            let opened = ring.open(Purpose::JournalRecord, &bent);
            assert!(!matches!(opened, Ok(Opened::Sealed(_))), "byte {at} changed");
            assert_eq!(opened.is_ok(), at < MAGIC.len(), "byte {at} changed");
        }
    }
}
