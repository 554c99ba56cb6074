//! `GET /v1/cluster`: this node, the live nodes, and who leads the tenant.

use super::*;
use crate::cluster::{NodeAddress, StartedFrom};

/// The cluster as this node sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ClusterAnswer {
    /// This node.
    node: NodeAddress,
    /// The nodes whose heartbeat is recent, by name.
    nodes: Vec<NodeAddress>,
    /// The caller's tenant here.
    tenant: TenantPlace,
}

/// One tenant's place in the cluster.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TenantPlace {
    /// The tenant.
    name: String,
    /// `leader` or `follower` (this node).
    role: &'static str,
    /// The node holding the tenant's lease, as last seen; absent while
    /// none does (a failover in progress).
    #[serde(skip_serializing_if = "Option::is_none")]
    leader: Option<NodeAddress>,
    /// The live nodes that follow it (every live node but the leader).
    followers: Vec<String>,
    /// The last record of the tenant's stream applied on this node.
    applied_sequence: u64,
    /// The snapshot this node started the tenant from.
    started_from: StartedFrom,
    /// The tenant's stream; absent when JetStream did not answer in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<StreamBounds>,
    /// The tenant's snapshots in the object store; absent when JetStream
    /// did not answer in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<SnapshotObjects>,
}

/// The records a tenant's stream holds: sequences `first_sequence` to
/// `last_sequence` (the stream is trimmed behind the oldest snapshot kept
/// in the object store; `first_sequence` is `last_sequence + 1` when it
/// holds none, 0 when nothing was ever appended).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct StreamBounds {
    first_sequence: u64,
    last_sequence: u64,
}

/// A tenant's snapshots in the object store.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SnapshotObjects {
    /// The newest one's lsn (it holds stream sequences up to this one);
    /// absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    lsn: Option<u64>,
    /// How many there are.
    objects: usize,
}

/// The cluster: nodes and the tenant's leader.
///
/// Any node answers. Commands sent to a node that does not lead the tenant
/// are refused with 421 `not_leader`, whose message names the leader's
/// addresses; this route says the same in fields.
#[utoipa::path(get, path = "/v1/cluster", tag = "health",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cluster.", body = ClusterAnswer, example = json!({
            "node": {"node": "n1", "http": "127.0.0.1:7878", "binary": "127.0.0.1:7879"},
            "nodes": [
                {"node": "n1", "http": "127.0.0.1:7878", "binary": "127.0.0.1:7879"},
                {"node": "n2", "http": "127.0.0.1:7888", "binary": "127.0.0.1:7889"}],
            "tenant": {"name": "demo", "role": "leader",
                "leader": {"node": "n1", "http": "127.0.0.1:7878", "binary": "127.0.0.1:7879"},
                "followers": ["n2"], "applied_sequence": 1042,
                "started_from": {"snapshot_lsn": 600, "source": "object_store"},
                "stream": {"first_sequence": 301, "last_sequence": 1042},
                "snapshot": {"lsn": 900, "objects": 3}}})),
        Unauthorized,
        (status = 404, description = "`not_clustered`: the daemon runs on its own.", body = ErrorBody),
    ))]
pub(super) async fn cluster(
    State(state): State<AppState>,
    Authed(tenant): Authed,
) -> Result<Json<ClusterAnswer>, ApiError> {
    let (Some(node), Some(role)) = (&state.cluster, tenant.cluster()) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_clustered",
            "this daemon runs on its own: no [cluster] section".to_owned(),
        ));
    };
    let nodes = node.live_nodes().await;
    let leader = role.holder();
    let leader_name = leader.as_ref().map(|l| l.node.as_str());
    let followers = nodes
        .iter()
        .filter(|n| Some(n.node.as_str()) != leader_name)
        .map(|n| n.node.clone())
        .collect();
    let (bounds, lsns) = node.storage(tenant.name()).await;
    Ok(Json(ClusterAnswer {
        node: node.me().clone(),
        tenant: TenantPlace {
            name: tenant.name().to_owned(),
            role: if role.is_leading() { "leader" } else { "follower" },
            leader,
            followers,
            applied_sequence: role.applied(),
            started_from: role.started_from(),
            stream: bounds.map(|(first_sequence, last_sequence)| StreamBounds {
                first_sequence,
                last_sequence,
            }),
            snapshot: lsns
                .map(|lsns| SnapshotObjects { lsn: lsns.last().copied(), objects: lsns.len() }),
        },
        nodes,
    }))
}
