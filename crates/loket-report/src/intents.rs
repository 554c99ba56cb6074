//! Intent names, interned per meter.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::IntentError;
use crate::fact::IntentId;

/// The longest intent name, in bytes.
pub const MAX_INTENT_BYTES: usize = 128;
/// The most intents a meter holds (the empty name included).
pub const MAX_INTENTS: usize = 65_536;

/// Intent names by [`IntentId`]; 0 is the empty name. Snapshots hold the
/// names in id order, so a restored meter gives the same ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub(crate) struct Intents {
    names: Vec<String>,
    ids: FxHashMap<String, u32>,
}

impl Default for Intents {
    fn default() -> Intents {
        Intents::from(Vec::new())
    }
}

impl From<Vec<String>> for Intents {
    /// The empty name is always id 0; duplicates keep their first id.
    fn from(mut names: Vec<String>) -> Intents {
        if names.first().is_none_or(|first| !first.is_empty()) {
            names.insert(0, String::new());
        }
        let mut ids = FxHashMap::default();
        for (id, name) in names.iter().enumerate() {
            ids.entry(name.clone()).or_insert(id as u32);
        }
        Intents { names, ids }
    }
}

impl From<Intents> for Vec<String> {
    fn from(intents: Intents) -> Vec<String> {
        intents.names
    }
}

impl Intents {
    pub(crate) fn intern(&mut self, name: &str) -> Result<IntentId, IntentError> {
        if let Some(&id) = self.ids.get(name) {
            return Ok(IntentId(id));
        }
        if name.len() > MAX_INTENT_BYTES {
            return Err(IntentError::TooLong(name.len()));
        }
        if self.names.len() >= MAX_INTENTS {
            return Err(IntentError::TooMany);
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        Ok(IntentId(id))
    }

    pub(crate) fn contains(&self, id: IntentId) -> bool {
        (id.0 as usize) < self.names.len()
    }

    /// The name of `id`; empty for an id never interned.
    pub(crate) fn name(&self, id: IntentId) -> &str {
        self.names.get(id.0 as usize).map_or("", String::as_str)
    }
}
