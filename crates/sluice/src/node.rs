//! This process as a node of the cluster: its runtime, its requests, its
//! telemetry and (with `--ha`) its leadership through ZooKeeper. The
//! supervisor decides; the node does.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::config::Config;
use crate::control::{Control, Request};
use crate::error::Error;
use crate::ha::{campaign, HaConfig, Term};
use crate::reader::ReaderEnd;
use crate::startup::EPOCH_WITHOUT_HA;
use crate::stream::{stream, Lease};
use crate::supervisor::Node;
use crate::telemetry::{node_identity, Role, Telemetry};

pub struct DaemonNode<'a> {
    pub rt: &'a Runtime,
    pub control: Control,
    pub telemetry: Arc<Telemetry>,
    /// Where this node's HTTP endpoint answers (for the leader record).
    pub http_address: String,
    epoch: u64,
    term: Option<Term>,
}

impl<'a> DaemonNode<'a> {
    pub fn new(
        rt: &'a Runtime,
        control: Control,
        telemetry: Arc<Telemetry>,
        http_address: String,
    ) -> Self {
        DaemonNode {
            rt,
            control,
            telemetry,
            http_address,
            epoch: EPOCH_WITHOUT_HA,
            term: None,
        }
    }
}

impl Node for DaemonNode<'_> {
    fn campaign(&mut self, cfg: &Config, floor: u64) -> Result<u64, Request> {
        let Some(ha) = &cfg.ha else {
            self.epoch = EPOCH_WITHOUT_HA;
            return Ok(self.epoch);
        };
        let election = HaConfig {
            zookeeper: ha.zookeeper.clone(),
            session_timeout: ha.session_timeout,
            connection_timeout: ha.connection_timeout,
            base_sleep: ha.base_sleep,
            max_retries: ha.max_retries,
            root: ha.root.clone(),
            client_id: cfg.client_id.clone(),
            identity: node_identity(),
            http_address: self.http_address.clone(),
        };
        self.telemetry.set_role(Role::Standby);
        let (telemetry, control) = (&self.telemetry, &mut self.control);
        let term = self.rt.block_on(async {
            tokio::select! {
                t = campaign(&election, telemetry, floor) => Ok(t),
                r = control.recv() => Err(r),
            }
        })?;
        self.epoch = term.epoch;
        self.term = Some(term);
        Ok(self.epoch)
    }

    fn stream(&mut self, cfg: &Config) -> Result<ReaderEnd, Error> {
        let lease = Lease {
            epoch: self.epoch,
            lost: self.term.as_ref().map(|t| t.lost.clone()),
        };
        stream(self.rt, cfg, &mut self.control, &self.telemetry, lease)
    }

    fn resign(&mut self) {
        if let Some(term) = self.term.take() {
            self.telemetry.set_role(Role::Standby);
            self.rt.block_on(term.resign());
        }
    }

    fn pause(&mut self, wait: Duration) -> Option<Request> {
        let control = &mut self.control;
        self.rt.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(wait) => None,
                r = control.recv() => Some(r),
            }
        })
    }
}
