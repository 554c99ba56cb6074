//! Names numbered densely, for the groups the meter keys by integer.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Names and their numbers: the first name interned is 1, the next 2, and
/// so on; 0 is the empty name ("none"). Numbers are never reused, so a
/// report made later names every group it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    names: Vec<Box<str>>,
    #[serde(skip)]
    numbers: FxHashMap<Box<str>, u32>,
}

impl Labels {
    /// The number of `name`, numbering it on first sight; 0 for `""`.
    /// Saturates at `u32::MAX` (every further new name shares it).
    pub fn intern(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        if let Some(&number) = self.numbers.get(name) {
            return number;
        }
        let Ok(number) = u32::try_from(self.names.len() + 1) else {
            return u32::MAX;
        };
        self.names.push(name.into());
        self.numbers.insert(name.into(), number);
        number
    }

    /// The name numbered `number` (`""` for 0 and for numbers never given).
    pub fn name(&self, number: u32) -> &str {
        number
            .checked_sub(1)
            .and_then(|index| self.names.get(index as usize))
            .map_or("", |name| name)
    }

    /// How many names are numbered.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name is numbered.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Rebuilds the lookup after deserialising (the names are the truth).
    pub fn reindex(&mut self) {
        self.numbers =
            (1..).zip(&self.names).map(|(number, name)| (name.clone(), number)).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_dense_stable_and_zero_is_none() {
        let mut labels = Labels::default();
        assert_eq!(labels.intern(""), 0);
        assert_eq!(labels.intern("sales"), 1);
        assert_eq!(labels.intern("service"), 2);
        assert_eq!(labels.intern("sales"), 1);
        assert_eq!((labels.name(0), labels.name(2), labels.name(9)), ("", "service", ""));
        let json = serde_json::to_string(&labels).unwrap();
        let mut back: Labels = serde_json::from_str(&json).unwrap();
        back.reindex();
        assert_eq!(back.intern("service"), 2);
        assert_eq!(back, labels);
    }
}
