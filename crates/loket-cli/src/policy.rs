//! The `--config` file of `loket route` and `loket report`: the routing
//! policy as JSON, with an optional `reports` object for measuring.

use std::path::Path;

use anyhow::Context;
use loket_replay::{MeterConfig, RouterConfig};

/// The routing policy and the measuring configuration of `path` (defaults
/// without one). The file is the routing policy's JSON (docs/formats.md);
/// its `reports` key, if present, is the measuring configuration
/// (docs/reports.md): `short_abandon_ms`, `order_window_ms`,
/// `retention_ms`, `sla`, `opening_hours`.
pub fn load(path: Option<&Path>) -> anyhow::Result<(RouterConfig, MeterConfig)> {
    let Some(path) = path else { return Ok((RouterConfig::default(), MeterConfig::default())) };
    let text = crate::files::read_to_string(path)?;
    let mut value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let reports = value.as_object_mut().and_then(|object| object.remove("reports"));
    let routing: RouterConfig = serde_path_to_error::deserialize(value)
        .with_context(|| format!("{} is not a routing policy", path.display()))?;
    let measuring: MeterConfig = match reports {
        None => MeterConfig::default(),
        Some(reports) => serde_path_to_error::deserialize(reports).with_context(|| {
            format!("{}: `reports` is not a measuring configuration", path.display())
        })?,
    };
    measuring.validate().with_context(|| format!("{}: `reports`", path.display()))?;
    let mut routing = routing;
    // `priority.sla_aware` queueing reads the reports' first-reply targets.
    for channel in loket_router::Channel::ALL {
        routing.priority.sla_first_reply_ms[channel.index()] =
            measuring.sla.defaults.get(channel).first_reply_ms;
    }
    Ok((routing, measuring))
}
