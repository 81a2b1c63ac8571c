//! Leader election through ZooKeeper. Candidates create ephemeral
//! sequential nodes under `/<root>/<client_id>/election`; the lowest leads,
//! every other watches only its predecessor. A new leader takes the next
//! epoch (compare-and-set on `/<root>/<client_id>/epoch`, so epochs only
//! grow) and records itself in `/<root>/<client_id>/leader`.
//!
//! A leader that cannot prove its session steps down: `Term::lost` fires
//! when the session is expired or closed, or when the connection has been
//! down for a quarter of the negotiated session timeout — well before the
//! ensemble can expire the session and let another candidate win.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use zookeeper_client as zk;

use crate::telemetry::Telemetry;

#[derive(Debug, Clone)]
pub struct HaConfig {
    pub zookeeper: String,
    pub session_timeout: Duration,
    pub connection_timeout: Duration,
    pub base_sleep: Duration,
    pub max_retries: u32,
    pub root: String,
    pub client_id: String,
    /// What the leader record says about this node.
    pub identity: String,
    pub http_address: String,
}

impl HaConfig {
    fn base(&self) -> String {
        format!("{}/{}", self.root.trim_end_matches('/'), self.client_id)
    }
}

/// One leadership: the session that won, and a signal that fires when the
/// node must stop reading and producing.
pub struct Term {
    pub epoch: u64,
    pub lost: watch::Receiver<bool>,
    client: zk::Client,
    monitor: tokio::task::JoinHandle<()>,
    /// Our election node and the leader record, deleted on resignation.
    nodes: [String; 2],
}

impl Term {
    /// Gives the leadership up: the leader record and our election node are
    /// deleted (the successor's watch fires at once), then the session is
    /// closed. Bounded: with ZooKeeper unreachable the session expiry does it.
    pub async fn resign(self) {
        self.monitor.abort();
        let client = &self.client;
        let nodes = &self.nodes;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            for n in nodes {
                let _ = client.delete(n, None).await;
            }
        })
        .await;
        drop(self.client);
    }
}

async fn ensure_path(client: &zk::Client, path: &str) -> Result<(), zk::Error> {
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        match client.create(&at, b"", &opts).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The next epoch: read, add one, write back only if nobody wrote between.
/// `floor`: an epoch known to be taken already (seen in the position store:
/// after ZooKeeper lost its data, its counter starts again from zero).
async fn next_epoch(client: &zk::Client, path: &str, floor: u64) -> Result<u64, zk::Error> {
    loop {
        let (data, stat) = match client.get_data(path).await {
            Ok(v) => v,
            Err(zk::Error::NoNode) => {
                let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
                match client.create(path, b"0", &opts).await {
                    Ok(_) | Err(zk::Error::NodeExists) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let current: u64 = std::str::from_utf8(&data)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let next = current.max(floor) + 1;
        match client
            .set_data(path, next.to_string().as_bytes(), Some(stat.version))
            .await
        {
            Ok(_) => return Ok(next),
            Err(zk::Error::BadVersion) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn sequence_of(name: &str) -> Option<u64> {
    name.rsplit('-').next().and_then(|s| s.parse().ok())
}

/// Campaigns with a new session until this node leads. Retries forever
/// (with exponential backoff from `base_sleep`): an ensemble that is down
/// or restarting is waited for, not fatal.
pub async fn campaign(cfg: &HaConfig, telemetry: &Arc<Telemetry>, floor: u64) -> Term {
    let mut failures = 0u32;
    loop {
        match try_campaign(cfg, telemetry, floor).await {
            Ok(term) => return term,
            Err(e) => {
                failures += 1;
                let wait = cfg
                    .base_sleep
                    .saturating_mul(1 << failures.min(cfg.max_retries.clamp(1, 10)))
                    .min(Duration::from_secs(10));
                tracing::warn!(error = %e, zookeeper = %cfg.zookeeper, retry_in = ?wait, "election: no leadership yet; starting over with a new session");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Why a campaign must start over with a new session (always retried).
#[derive(Debug, thiserror::Error)]
enum CampaignError {
    #[error("zookeeper: {0}")]
    ZooKeeper(#[from] zk::Error),
    #[error("{0}")]
    Lost(String),
}

async fn try_campaign(
    cfg: &HaConfig,
    telemetry: &Arc<Telemetry>,
    floor: u64,
) -> Result<Term, CampaignError> {
    telemetry.campaigns.fetch_add(1, Relaxed);
    let client = zk::Client::connector()
        .with_session_timeout(cfg.session_timeout)
        .with_connection_timeout(cfg.connection_timeout)
        .connect(&cfg.zookeeper)
        .await?;
    telemetry.set_session(format!("{:?}", client.state()));
    let base = cfg.base();
    let election = format!("{base}/election");
    ensure_path(&client, &election).await?;
    let opts = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    // Who the candidate is and where its HTTP endpoint answers: the
    // cluster view lists every candidate from these.
    let candidate = serde_json::json!({"identity": cfg.identity, "http": cfg.http_address});
    let (_, seq) = client
        .create(
            &format!("{election}/n-"),
            candidate.to_string().as_bytes(),
            &opts,
        )
        .await?;
    let mine: u64 = seq
        .to_string()
        .parse()
        .map_err(|_| CampaignError::Lost(format!("unexpected sequence {seq}")))?;
    tracing::info!(node = %format!("{election}/n-{seq}"), "election: candidate");
    let mut state = client.state_watcher();
    loop {
        let mut children: Vec<(u64, String)> = client
            .list_children(&election)
            .await?
            .into_iter()
            .filter_map(|c| sequence_of(&c).map(|s| (s, c)))
            .collect();
        children.sort();
        let Some(pos) = children.iter().position(|(s, _)| *s == mine) else {
            return Err(CampaignError::Lost(
                "our election node is gone (session expired?)".into(),
            ));
        };
        if pos == 0 {
            break;
        }
        let predecessor = format!("{election}/{}", children[pos - 1].1);
        let (stat, watcher) = client.check_and_watch_stat(&predecessor).await?;
        if stat.is_none() {
            continue;
        }
        let changed = watcher.changed();
        tokio::pin!(changed);
        loop {
            // /status of a standby names the current leader: re-read its
            // record while waiting.
            let record = client.get_data(&format!("{base}/leader")).await.ok();
            telemetry
                .set_leader_record(record.map(|(d, _)| String::from_utf8_lossy(&d).into_owned()));
            tokio::select! {
                _ = &mut changed => break,
                s = state.changed() => {
                    telemetry.set_session(format!("{s:?}"));
                    if s.is_terminated() {
                        return Err(CampaignError::Lost(format!("session {s:?} while waiting for the predecessor")));
                    }
                    break;
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
    let epoch = next_epoch(&client, &format!("{base}/epoch"), floor).await?;
    let leader = format!("{base}/leader");
    let record = serde_json::json!({
        "identity": cfg.identity,
        "http": cfg.http_address,
        "epoch": epoch,
    })
    .to_string();
    match client.delete(&leader, None).await {
        Ok(()) | Err(zk::Error::NoNode) => {}
        Err(e) => return Err(e.into()),
    }
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    client.create(&leader, record.as_bytes(), &eph).await?;
    tracing::info!(epoch, "election: leader");
    telemetry.elections_won.fetch_add(1, Relaxed);
    telemetry.set_leader_record(None);
    let (tx, lost) = watch::channel(false);
    let step_down_after = client.session_timeout() / 4;
    let monitor = tokio::spawn(watch_session(
        client.state_watcher(),
        step_down_after,
        tx,
        telemetry.clone(),
    ));
    Ok(Term {
        epoch,
        lost,
        client,
        monitor,
        nodes: [leader, format!("{election}/n-{seq}")],
    })
}

/// Fires `lost` on a terminal session state, or when disconnected for
/// `grace` without the session coming back.
async fn watch_session(
    mut state: zk::StateWatcher,
    grace: Duration,
    lost: watch::Sender<bool>,
    telemetry: Arc<Telemetry>,
) {
    loop {
        let s = state.changed().await;
        telemetry.set_session(format!("{s:?}"));
        if s.is_terminated() {
            tracing::warn!(state = ?s, "zookeeper session over: stepping down");
            let _ = lost.send(true);
            return;
        }
        if s == zk::SessionState::Disconnected {
            tokio::select! {
                back = state.changed() => {
                    telemetry.set_session(format!("{back:?}"));
                    if back.is_terminated() {
                        tracing::warn!(state = ?back, "zookeeper session over: stepping down");
                        let _ = lost.send(true);
                        return;
                    }
                    if back == zk::SessionState::SyncConnected {
                        continue;
                    }
                }
                _ = tokio::time::sleep(grace) => {
                    tracing::warn!(after = ?grace, "zookeeper unreachable: stepping down before the session can expire");
                    let _ = lost.send(true);
                    return;
                }
            }
        }
    }
}
