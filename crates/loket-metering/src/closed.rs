//! Conversations closed lately, by the platform's id: an order may name one
//! up to the order window after its close, when the router (and the id
//! interner) have already let it go.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

/// Closed conversations by name, each kept until its order window ends.
#[derive(Clone, Debug, Default)]
pub struct RecentlyClosed {
    /// Name → (router integer, expiry).
    by_name: FxHashMap<Box<str>, (u64, u64)>,
    /// (expiry, name), oldest first.
    by_expiry: VecDeque<(u64, Box<str>)>,
}

impl RecentlyClosed {
    /// Remembers that `name` (the router's `key`) closed, until `expiry`
    /// (ms). A name closed again is kept until its latest expiry.
    pub fn closed(&mut self, name: &str, key: u64, expiry: u64) {
        self.by_name.insert(name.into(), (key, expiry));
        self.by_expiry.push_back((expiry, name.into()));
    }

    /// The router integer of `name`, if it closed and its window is open.
    pub fn key(&self, name: &str) -> Option<u64> {
        self.by_name.get(name).map(|&(key, _)| key)
    }

    /// Forgets names whose window ended before `now`.
    pub fn expire(&mut self, now: u64) {
        while let Some(&(expiry, _)) = self.by_expiry.front() {
            if expiry >= now {
                break;
            }
            if let Some((expiry, name)) = self.by_expiry.pop_front()
                && self.by_name.get(&name).is_some_and(|&(_, latest)| latest == expiry)
            {
                // Only the latest close of a name removes it.
                self.by_name.remove(&name);
            }
        }
    }

    /// How many names are kept.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_kept_until_its_latest_window_ends() {
        let mut closed = RecentlyClosed::default();
        closed.closed("c1", 7, 100);
        closed.closed("c2", 8, 150);
        closed.closed("c1", 9, 200);
        closed.expire(120);
        assert_eq!((closed.key("c1"), closed.key("c2")), (Some(9), Some(8)));
        closed.expire(151);
        assert_eq!((closed.key("c1"), closed.key("c2"), closed.len()), (Some(9), None, 1));
        closed.expire(201);
        assert!(closed.is_empty());
    }
}
