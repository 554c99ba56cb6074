//! Snapshots of a tenant's state: what is saved beside the router's own,
//! and how it comes back.

use super::*;

/// Saved state of a tenant at a journal position.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct TenantSnapshot {
    /// Format version.
    pub version: u32,
    /// Every journal record before this one is reflected.
    pub lsn: u64,
    /// The next event sequence number.
    pub next_seq: u64,
    /// The tenant clock.
    pub clock_ms: u64,
    /// The router.
    pub router: RouterSnapshot,
    /// Conversations' buying intent: id, value at last update, last update.
    pub scores: Vec<SavedScore>,
    /// Stock levels set through the API since the catalog was loaded.
    pub stock: Vec<SavedStock>,
    /// The platform's ids and their router integers.
    pub ids: SavedTenantIds,
    /// When customer ids kept for their history were last checked.
    pub ids_swept_ms: u64,
    /// The tenant's measuring (`loket_metering::Metering` as JSON); empty
    /// when the tenant does not measure.
    pub metering: Vec<u8>,
}

/// One conversation's buying-intent state.
#[derive(Debug, Clone, Copy, PartialEq, Archive, Serialize, Deserialize)]
pub struct SavedScore {
    /// Conversation.
    pub conversation: u64,
    /// Value at the last update.
    pub value: f32,
    /// Last update, ms.
    pub last_ms: u64,
}

/// One stock level set through the API.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct SavedStock {
    /// Product.
    pub sku: String,
    /// Units.
    pub stock: i64,
}

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 3;

impl TenantState {
    /// The state at journal position `lsn`. Call between commands.
    pub fn snapshot(&self, lsn: u64) -> TenantSnapshot {
        TenantSnapshot {
            version: SNAPSHOT_VERSION,
            lsn,
            next_seq: self.next_seq,
            clock_ms: self.clock_ms,
            router: self.router().snapshot(),
            scores: self
                .pipeline
                .conversation_scores()
                .into_iter()
                .map(|(id, score)| SavedScore {
                    conversation: id.0,
                    value: score.last_value(),
                    last_ms: score.last_update_ms(),
                })
                .collect(),
            stock: self
                .stock
                .iter()
                .map(|(sku, &stock)| SavedStock { sku: sku.clone(), stock })
                .collect(),
            ids: self.ids.read().save(),
            ids_swept_ms: self.ids_swept_ms,
            metering: self.metering.as_ref().map_or_else(Vec::new, |metering| {
                // Plain data (maps keyed by strings or as pairs): cannot fail.
                serde_json::to_vec(&*metering.read()).expect("metering serialises")
            }),
        }
    }

    /// Restores the non-router parts of a snapshot (the router is rebuilt
    /// from the snapshot before the pipeline is made).
    pub fn restore(&mut self, snapshot: &TenantSnapshot) -> Result<(), ApplyError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(ApplyError::Invalid(format!(
                "snapshot format {} (this build reads {SNAPSHOT_VERSION})",
                snapshot.version
            )));
        }
        let ids = TenantIds::restore(&snapshot.ids, self.recent_ids)
            .map_err(|e| ApplyError::Invalid(format!("snapshot ids: {e}")))?;
        *self.ids.write() = ids;
        self.ids_swept_ms = snapshot.ids_swept_ms;
        self.next_seq = snapshot.next_seq.max(1);
        self.clock_ms = snapshot.clock_ms;
        self.clock.set(Timestamp(self.clock_ms));
        self.pipeline.restore_conversation_scores(snapshot.scores.iter().map(|saved| {
            (
                ConversationId(saved.conversation),
                ConversationScore::from_parts(saved.value, saved.last_ms),
            )
        }));
        if let Some(metering) = &self.metering
            && !snapshot.metering.is_empty()
        {
            let restored: Metering = serde_json::from_slice(&snapshot.metering)
                .map_err(|e| ApplyError::Invalid(format!("snapshot metering: {e}")))?;
            let mut restored = restored.restored();
            // The configuration the tenant runs with now, not the one
            // saved with the snapshot: a changed `[tenants.reports]` takes
            // effect on restart.
            let config = metering.read().meter().config().clone();
            restored
                .reconfigure(config)
                .map_err(|e| ApplyError::Invalid(format!("reports configuration: {e}")))?;
            restored.set_observing(true);
            *metering.write() = restored;
        }
        self.stock.clear();
        for saved in &snapshot.stock {
            // A product that left the catalog since keeps no stock override.
            if let Some(catalog) = self.pipeline.catalog()
                && catalog.set_stock(&saved.sku, saved.stock).is_ok()
            {
                self.stock.insert(saved.sku.clone(), saved.stock);
            }
        }
        Ok(())
    }
}
