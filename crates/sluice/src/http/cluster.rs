//! The cluster view (`/cluster`), aggregated on the server so that any node
//! shows every node without the browser reaching across origins: the
//! candidates and the leader record come from ZooKeeper (each candidate's
//! election node carries its identity and HTTP address), each candidate's
//! `/status` is fetched with a short deadline. Without `--ha` the cluster is
//! this node alone.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Mutex;
use zookeeper_client as zk;

use super::auth::BasicAuth;
use super::client::Client;
use crate::config::Config;
use crate::telemetry::{node_identity, unix_millis, Telemetry};

/// How long a peer's `/status` and each ZooKeeper read may take: the page
/// refreshes every few seconds and must not hang on a dead node.
const PEER_DEADLINE: Duration = Duration::from_millis(1500);

/// One candidate of the election, as its election node says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub sequence: u64,
    pub identity: String,
    /// `host:port` of its HTTP endpoint; empty when its node predates it.
    pub http: String,
}

impl Candidate {
    /// `data`: `{"identity":…,"http":…}`, or the bare identity that
    /// older nodes wrote.
    pub fn parse(name: &str, data: &[u8]) -> Option<Candidate> {
        let sequence = name.rsplit('-').next()?.parse().ok()?;
        let text = String::from_utf8_lossy(data);
        let (identity, http) = match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.is_object() => (
                v["identity"].as_str().unwrap_or("").to_string(),
                v["http"].as_str().unwrap_or("").to_string(),
            ),
            _ => (text.trim().to_string(), String::new()),
        };
        Some(Candidate {
            sequence,
            identity,
            http,
        })
    }
}

/// Where the candidates are listed.
struct Coordination {
    zookeeper: String,
    /// `/<root>/<client_id>`.
    base: String,
    session_timeout: Duration,
    /// A session of its own, opened on the first request, replaced when it
    /// fails.
    client: Mutex<Option<zk::Client>>,
}

/// What ZooKeeper says about the cluster.
struct Membership {
    candidates: Vec<Candidate>,
    leader: Value,
}

impl Coordination {
    async fn session(&self) -> Result<zk::Client, String> {
        let mut held = self.client.lock().await;
        if let Some(c) = held.as_ref().filter(|c| !c.state().is_terminated()) {
            return Ok(c.clone());
        }
        *held = None;
        let connect = zk::Client::connector()
            .with_session_timeout(self.session_timeout)
            .with_connection_timeout(PEER_DEADLINE)
            .connect(&self.zookeeper);
        let c = tokio::time::timeout(PEER_DEADLINE * 2, connect)
            .await
            .map_err(|_| "no ZooKeeper session within 3 s".to_string())?
            .map_err(|e| format!("zookeeper: {e}"))?;
        *held = Some(c.clone());
        Ok(c)
    }

    async fn read(&self) -> Result<Membership, String> {
        let client = self.session().await?;
        let result = tokio::time::timeout(PEER_DEADLINE, async {
            let election = format!("{}/election", self.base);
            let names = match client.list_children(&election).await {
                Ok(n) => n,
                Err(zk::Error::NoNode) => Vec::new(),
                Err(e) => return Err(format!("zookeeper: {e}")),
            };
            let mut candidates = Vec::new();
            for name in names {
                // A candidate may leave between the listing and the read.
                if let Ok((data, _)) = client.get_data(&format!("{election}/{name}")).await {
                    candidates.extend(Candidate::parse(&name, &data));
                }
            }
            candidates.sort_by_key(|c| c.sequence);
            let leader = match client.get_data(&format!("{}/leader", self.base)).await {
                Ok((data, _)) => serde_json::from_slice(&data).unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            Ok(Membership { candidates, leader })
        })
        .await
        .unwrap_or_else(|_| Err("ZooKeeper did not answer within 1.5 s".into()));
        if result.is_err() {
            // Start over with a new session next time.
            *self.client.lock().await = None;
        }
        result
    }
}

pub struct ClusterView {
    coordination: Option<Coordination>,
    peers: Client,
    /// `http_path_prefix` without its trailing `/`.
    prefix: String,
}

impl ClusterView {
    pub fn new(cfg: &Config) -> ClusterView {
        let coordination = cfg.ha.as_ref().map(|ha| Coordination {
            zookeeper: ha.zookeeper.clone(),
            base: format!("{}/{}", ha.root.trim_end_matches('/'), cfg.client_id),
            session_timeout: ha.session_timeout,
            client: Mutex::new(None),
        });
        ClusterView {
            coordination,
            peers: Client {
                tls: cfg.http.peer_tls.clone(),
                authorization: cfg
                    .http
                    .auth
                    .as_ref()
                    .map(|a: &BasicAuth| a.header().to_string()),
                timeout: PEER_DEADLINE,
            },
            prefix: cfg.http.path_prefix.trim_end_matches('/').to_string(),
        }
    }

    /// A node without leader election (tests).
    pub fn single() -> ClusterView {
        ClusterView {
            coordination: None,
            peers: Client::default(),
            prefix: String::new(),
        }
    }

    /// The cluster as JSON: `nodes` in election order (the leader first).
    pub async fn json(&self, t: &Telemetry, address: &str) -> Value {
        let own = t.status(address, &t.session());
        let me = json!({
            "identity": node_identity(), "http": address, "self": true,
            "reachable": true, "error": null, "status": own,
        });
        let Some(coordination) = &self.coordination else {
            return json!({
                "client_id": t.client_id, "ha": false, "generated_at_ms": unix_millis(),
                "coordination": null, "leader": me["status"]["leader"].clone(), "nodes": [me],
            });
        };
        let (membership, error) = match coordination.read().await {
            Ok(m) => (m, Value::Null),
            Err(e) => (
                Membership {
                    candidates: Vec::new(),
                    leader: Value::Null,
                },
                Value::String(e),
            ),
        };
        let mut nodes = Vec::new();
        let mut fetches = tokio::task::JoinSet::new();
        let mut listed_self = false;
        for (i, c) in membership.candidates.iter().enumerate() {
            if c.http == address && c.identity == node_identity() {
                listed_self = true;
                nodes.push((i, me.clone()));
                continue;
            }
            let (peers, c, path) = (
                self.peers.clone(),
                c.clone(),
                format!("{}/status", self.prefix),
            );
            fetches.spawn(async move { (i, peer(&peers, &c, &path).await) });
        }
        while let Some(done) = fetches.join_next().await {
            if let Ok(node) = done {
                nodes.push(node);
            }
        }
        if !listed_self {
            // Not a candidate right now (connecting to ZooKeeper, or cut
            // off from it): still shown, last.
            nodes.push((usize::MAX, me));
        }
        nodes.sort_by_key(|(i, _)| *i);
        json!({
            "client_id": t.client_id,
            "ha": true,
            "generated_at_ms": unix_millis(),
            "coordination": {"zookeeper": coordination.zookeeper, "ok": error.is_null(), "error": error},
            "leader": membership.leader,
            "nodes": nodes.into_iter().map(|(_, n)| n).collect::<Vec<_>>(),
        })
    }
}

async fn peer(client: &Client, c: &Candidate, path: &str) -> Value {
    let fetched = if c.http.is_empty() {
        Err("its election node names no HTTP address (an older sluice)".to_string())
    } else {
        match client.get(&c.http, path).await {
            Ok((200, body)) => serde_json::from_str::<Value>(&body)
                .map_err(|e| format!("/status is not JSON: {e}")),
            Ok((status, _)) => Err(format!("/status answered {status}")),
            Err(e) => Err(e),
        }
    };
    let (status, error) = match fetched {
        Ok(s) => (s, Value::Null),
        Err(e) => (Value::Null, Value::String(e)),
    };
    json!({
        "identity": c.identity, "http": c.http, "self": false,
        "reachable": error.is_null(), "error": error, "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_from_election_nodes_old_and_new() {
        assert_eq!(
            Candidate::parse(
                "n-0000000012",
                br#"{"identity":"h1:42","http":"10.0.0.1:8080"}"#
            ),
            Some(Candidate {
                sequence: 12,
                identity: "h1:42".into(),
                http: "10.0.0.1:8080".into()
            })
        );
        assert_eq!(
            Candidate::parse("n-0000000003", b"h2:7"),
            Some(Candidate {
                sequence: 3,
                identity: "h2:7".into(),
                http: String::new()
            })
        );
        assert_eq!(Candidate::parse("junk", b""), None);
    }

    #[tokio::test]
    async fn without_ha_the_cluster_is_this_node() {
        let t = Telemetry::new("c9", "sluice");
        let v = ClusterView::single().json(&t, "127.0.0.1:5").await;
        assert_eq!(v["ha"], false);
        assert_eq!(v["client_id"], "c9");
        let nodes = v["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0]["self"], true);
        assert_eq!(nodes[0]["status"]["http"], "127.0.0.1:5");
    }

    #[tokio::test]
    async fn an_unreachable_peer_is_listed_with_its_error() {
        let client = Client {
            timeout: Duration::from_millis(300),
            ..Client::default()
        };
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let c = Candidate {
            sequence: 1,
            identity: "gone:1".into(),
            http: closed,
        };
        let v = peer(&client, &c, "/status").await;
        assert_eq!(v["reachable"], false);
        assert!(v["error"].as_str().unwrap().contains("connect"), "{v}");
        let old = Candidate {
            http: String::new(),
            ..c
        };
        assert!(peer(&client, &old, "/status").await["error"]
            .as_str()
            .unwrap()
            .contains("older"));
    }
}
