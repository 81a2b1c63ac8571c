//! A primary and its replica: two private MariaDB servers, the second
//! replicating the first by GTID from the primary's current position.

use std::process::{Command, Stdio};

use mysql_async::prelude::Queryable;

use super::{repo_root, root_conn_at};

/// Starts a private MariaDB on `port` with `server_id` (row binlog,
/// log_slave_updates on, a small buffer pool).
pub fn start_server(port: u16, server_id: &str) {
    let st = Command::new(repo_root().join("scripts/mariadb.sh"))
        .arg("start")
        .env("SLUICE_MYSQL_PORT", port.to_string())
        .env("SLUICE_MYSQL_SERVER_ID", server_id)
        .env("SLUICE_MYSQL_BUFFER_POOL", "32M")
        .stdout(Stdio::null())
        .status()
        .expect("run scripts/mariadb.sh");
    assert!(st.success(), "scripts/mariadb.sh start on {port} failed");
}

pub async fn gtid_pos(port: u16, var: &str) -> String {
    let mut c = root_conn_at(port).await.unwrap();
    c.query_first::<String, _>(format!("SELECT @@{var}"))
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Makes `replica` replicate `primary` from the primary's current GTID
/// position. `drop` databases are dropped on both first (on the replica
/// without binlogging: its binlog holds only the primary's transactions,
/// in order); `replica_settings` are `SET GLOBAL` assignments made while
/// the replica is stopped (replication filters, say).
pub async fn replicate(primary: u16, replica: u16, drop: &[&str], replica_settings: &[&str]) {
    let mut p = root_conn_at(primary).await.unwrap();
    for db in drop {
        p.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
            .await
            .unwrap();
    }
    let primary_pos = gtid_pos(primary, "gtid_binlog_pos").await;
    let mut r = root_conn_at(replica).await.unwrap();
    let mut stmts = vec![
        "SET sql_log_bin = 0".to_string(),
        "STOP SLAVE".into(),
        "RESET SLAVE ALL".into(),
    ];
    stmts.extend(
        drop.iter()
            .map(|db| format!("DROP DATABASE IF EXISTS `{db}`")),
    );
    stmts.extend(replica_settings.iter().map(|s| format!("SET GLOBAL {s}")));
    stmts.extend([
        format!("SET GLOBAL gtid_slave_pos = '{primary_pos}'"),
        format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary}, MASTER_USER='sluice', \
             MASTER_PASSWORD='sluice', MASTER_USE_GTID=slave_pos"
        ),
        "START SLAVE".into(),
    ]);
    for sql in stmts {
        r.query_drop(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}
