//! Properties checked by the `webhook_records` fuzz target (and by
//! `tests/fuzz_corpus.rs` on the checked-in seeds).

use super::{Entry, decode_state_file};

/// Arbitrary bytes as an outbox record and as an endpoint's state file:
/// decoding never panics, and a record that decodes encodes back to the
/// same bytes.
pub fn webhook_records(data: &[u8]) {
    if let Ok(entry) = Entry::decode(data) {
        let mut again = Vec::new();
        entry.encode(&mut again);
        assert_eq!(again, data, "a decoded record encodes to its bytes");
        assert_eq!(Entry::decode(&again), Ok(entry));
    }
    let _ = decode_state_file(None, data);
}
