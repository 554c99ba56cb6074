//! Bearer tokens to tenants, looked up in constant time.
//!
//! A token is never compared byte by byte: the table keeps the SHA-256
//! digest of every token, hashes the presented token once and compares its
//! digest with every stored digest in constant time, without stopping at a
//! match. How long a lookup takes therefore depends on the number of tokens
//! configured, never on how much of a secret a guess got right.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every tenant's tokens; see the module docs.
pub struct TokenTable<T> {
    entries: Vec<([u8; 32], Arc<T>)>,
}

impl<T> TokenTable<T> {
    /// An empty table.
    pub fn new() -> TokenTable<T> {
        TokenTable { entries: Vec::new() }
    }

    /// Adds `token` for `tenant`. Returns false (and changes nothing) if the
    /// token is already in the table.
    pub fn insert(&mut self, token: &str, tenant: Arc<T>) -> bool {
        if self.get(token).is_some() {
            return false;
        }
        self.entries.push((digest(token), tenant));
        true
    }

    /// The tenant `token` belongs to, if any. Takes the same time for every
    /// token of a given length (the digest covers the token's bytes once).
    pub fn get(&self, token: &str) -> Option<&Arc<T>> {
        let presented = digest(token);
        let mut found = None;
        for (stored, tenant) in &self.entries {
            // No early exit: every entry is compared.
            if bool::from(stored.ct_eq(&presented)) {
                found = Some(tenant);
            }
        }
        found
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds no token.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<T> Default for TokenTable<T> {
    fn default() -> Self {
        TokenTable::new()
    }
}

impl<T> fmt::Debug for TokenTable<T> {
    /// Never prints digests: only how many tokens there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenTable").field("tokens", &self.entries.len()).finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_tenant_by_its_own_tokens_only() {
        let mut table = TokenTable::new();
        let shop = Arc::new("shop");
        let desk = Arc::new("desk");
        assert!(table.insert("shop-token-1", shop.clone()));
        assert!(table.insert("shop-token-2", shop.clone()));
        assert!(table.insert("desk-token-1", desk.clone()));
        assert_eq!(table.len(), 3);
        assert_eq!(table.get("shop-token-1").map(|t| **t), Some("shop"));
        assert_eq!(table.get("shop-token-2").map(|t| **t), Some("shop"));
        assert_eq!(table.get("desk-token-1").map(|t| **t), Some("desk"));
        // Prefixes, extensions and near misses are unknown.
        for guess in ["", "shop-token-", "shop-token-12", "Shop-token-1", "desk-token-2"] {
            assert!(table.get(guess).is_none(), "{guess:?}");
        }
    }

    #[test]
    fn a_token_is_taken_once_and_never_printed() {
        let mut table = TokenTable::new();
        assert!(table.insert("secret-token", Arc::new(1)));
        assert!(!table.insert("secret-token", Arc::new(2)), "a second owner is refused");
        assert_eq!(table.get("secret-token").map(|t| **t), Some(1));
        let shown = format!("{table:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(shown, "TokenTable { tokens: 1 }");
    }
}
