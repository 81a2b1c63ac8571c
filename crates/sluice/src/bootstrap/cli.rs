//! `sluice bootstrap`: Maxwell's `maxwell-bootstrap` utility. It only
//! enqueues: it counts the rows, inserts a request into
//! `<schema_database>.bootstrap` (the same row Maxwell's tooling or a plain
//! SQL insert would write), then follows it until it completes (exit 0) or
//! fails (exit 1 with the server's message). The running daemon (the
//! leader with the same client_id) does the work. Ctrl-C leaves the
//! snapshot running.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use sluice_core::{declare_options, Opt, OptionInfo, Section, Values};

use super::progress::Meter;
use super::tables::{self, quote};
use crate::config::options::{CLIENT_ID, HOST, PASSWORD, PORT, SCHEMA_DATABASE, USER};

declare_options! { CLI_OPTIONS;
    DATABASE: String = Opt::new("database", Section::General, "", "database of the table to snapshot");
    TABLE: String = Opt::new("table", Section::General, "", "table to snapshot");
    WHERE: String = Opt::new("where", Section::General, "",
        "only rows matching this SQL condition (used verbatim; an empty one is ignored)");
    COMMENT: String = Opt::new("comment", Section::General, "",
        "text carried in the comment field of the bootstrap events");
    ABORT: u64 = Opt::new("abort", Section::General, "0",
        "delete request ID: the daemon stops its snapshot and emits bootstrap-complete");
    MONITOR: u64 = Opt::new("monitor", Section::General, "0", "follow the progress of request ID");
}

/// Poll period of the request row (Maxwell's).
const POLL: Duration = Duration::from_millis(250);
/// Without a terminal, a progress line every this many rows (Maxwell's).
const LINE_EVERY_ROWS: u64 = 100_000;

pub fn help() -> String {
    let mut s = String::from(
        "sluice bootstrap: request a snapshot of a table's existing rows from the running sluice\n\n\
         usage: sluice bootstrap --database=DB --table=TABLE [--where=COND] [--comment=TEXT] [--client_id=ID]\n\
         \x20      sluice bootstrap --monitor=ID | --abort=ID\n\n\
         Connection options (host, port, user, password, schema_database, client_id, config,\n\
         env_config_prefix) are the daemon's; a daemon's --config file works as is.\n\n",
    );
    for o in CLI_OPTIONS {
        s.push_str(&format!("  --{:<12} {}\n", o.name, o.help));
    }
    s
}

/// Every name the subcommand accepts: its own and the daemon's (so the
/// daemon's config file can be given).
fn known_options() -> Vec<&'static OptionInfo> {
    let mut all = crate::config::all_options();
    all.extend(CLI_OPTIONS.iter());
    all
}

enum Failure {
    Usage(String),
    Failed(String),
}

impl From<mysql_async::Error> for Failure {
    fn from(e: mysql_async::Error) -> Self {
        Failure::Failed(match e {
            mysql_async::Error::Server(s) => s.message,
            other => other.to_string(),
        })
    }
}

/// Runs the subcommand (`args` after `bootstrap`).
pub fn main(args: &[String], env: &BTreeMap<String, String>) -> ExitCode {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", help());
        return ExitCode::SUCCESS;
    }
    let options = known_options();
    let known = crate::config::sources::Known {
        options: &options,
        passthrough: sluice_producers::registry::is_passthrough,
    };
    let values = match crate::config::sources::gather(args, env, &known) {
        Ok(crate::config::sources::Request::Run(v)) => v,
        Ok(_) => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sluice bootstrap: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match crate::subcommand::block_on("sluice bootstrap", run(&values)) {
        Ok(outcome) => outcome,
        Err(code) => return code,
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Usage(m)) => {
            eprintln!("sluice bootstrap: {m}\n\n{}", help());
            ExitCode::from(2)
        }
        Err(Failure::Failed(m)) => {
            eprintln!("sluice bootstrap: {m}");
            ExitCode::from(1)
        }
    }
}

fn get<T: sluice_core::options::OptionValue>(opt: Opt<T>, v: &dyn Values) -> Result<T, Failure> {
    opt.get(v).map_err(|e| Failure::Usage(e.to_string()))
}

async fn run(v: &dyn Values) -> Result<u8, Failure> {
    let (host, port, user) = (get(HOST, v)?, get(PORT, v)?, get(USER, v)?);
    let opts = OptsBuilder::default()
        .ip_or_hostname(host.clone())
        .tcp_port(port)
        .user(Some(user.clone()))
        .pass(Some(get(PASSWORD, v)?))
        .prefer_socket(false);
    let mut conn = Conn::new(opts).await.map_err(|e| {
        Failure::Failed(format!(
            "cannot connect to MySQL at {host}:{port} as '{user}': {e}"
        ))
    })?;
    let schema_db = get(SCHEMA_DATABASE, v)?;
    let client_id = get(CLIENT_ID, v)?;
    let (abort, monitor) = (get(ABORT, v)?, get(MONITOR, v)?);
    let (database, table) = (get(DATABASE, v)?, get(TABLE, v)?);
    let requests = format!(
        "{}.`{}`",
        quote(&schema_db),
        sluice_pipeline::snapshot::REQUEST_TABLE
    );
    if abort > 0 {
        if monitor > 0 || !database.is_empty() || !table.is_empty() {
            return Err(Failure::Usage(
                "--abort goes alone (not with --monitor, --database or --table)".into(),
            ));
        }
        let deleted = conn
            .exec_iter(format!("DELETE FROM {requests} WHERE id = ?"), (abort,))
            .await?
            .affected_rows();
        if deleted == 0 {
            return Err(Failure::Failed(format!(
                "there is no bootstrap request {abort}"
            )));
        }
        println!("bootstrap request {abort} deleted: the daemon stops its snapshot and emits bootstrap-complete");
        return Ok(0);
    }
    let id = if monitor > 0 {
        monitor
    } else {
        if database.is_empty() || table.is_empty() {
            return Err(Failure::Usage(
                "--database and --table are required (or --monitor / --abort)".into(),
            ));
        }
        let where_clause = Some(get(WHERE, v)?).filter(|w| !w.trim().is_empty());
        let comment = Some(get(COMMENT, v)?).filter(|c| !c.is_empty());
        let count_sql = format!(
            "SELECT COUNT(*) FROM {}.{}{}",
            quote(&database),
            quote(&table),
            where_clause
                .as_deref()
                .map(|w| format!(" WHERE ({w})"))
                .unwrap_or_default()
        );
        let total: u64 = conn
            .query_first(count_sql)
            .await
            .map_err(|e| {
                Failure::Failed(format!(
                    "cannot count the rows of {database}.{table}: {}",
                    Failure::from(e).message()
                ))
            })?
            .unwrap_or(0);
        tables::ensure(&mut conn, &schema_db).await.map_err(|e| {
            Failure::Failed(format!(
                "cannot create the bootstrap tables in {schema_db}: {e}"
            ))
        })?;
        conn.exec_drop(
            format!(
                "INSERT INTO {requests} (database_name, table_name, where_clause, total_rows, client_id, comment) \
                 VALUES (?, ?, ?, ?, ?, ?)"
            ),
            (&database, &table, &where_clause, total, &client_id, &comment),
        )
        .await?;
        let id = conn.last_insert_id().unwrap_or(0);
        println!(
            "bootstrap request {id}: {database}.{table} ({total} rows) for client_id '{client_id}'"
        );
        warn_if_no_daemon(&mut conn, &schema_db, &client_id).await;
        id
    };
    follow(&mut conn, &schema_db, id).await
}

impl Failure {
    fn message(self) -> String {
        match self {
            Failure::Usage(m) | Failure::Failed(m) => m,
        }
    }
}

/// Maxwell's utility does nothing without a daemon, silently (#2189): say
/// so when no position of this client_id was stored lately.
async fn warn_if_no_daemon(conn: &mut Conn, schema_db: &str, client_id: &str) {
    let newest: Result<Option<Option<i64>>, _> = conn
        .exec_first(
            format!(
                "SELECT MAX(heartbeat_at) FROM {}.`positions` WHERE client_id = ?",
                quote(schema_db)
            ),
            (client_id,),
        )
        .await;
    let now = crate::telemetry::unix_millis() as i64;
    let recent = matches!(newest, Ok(Some(Some(ms))) if now - ms < 60_000);
    if !recent {
        eprintln!(
            "warning: no sluice or Maxwell with client_id '{client_id}' stored a position in the last minute; \
             the request waits until one runs"
        );
    }
}

/// What the request row and its progress say now.
struct Seen {
    complete: bool,
    started: bool,
    rows: u64,
    total: u64,
    state: Option<String>,
    error: Option<String>,
}

async fn look(
    conn: &mut Conn,
    schema_db: &str,
    id: u64,
) -> Result<Option<Seen>, mysql_async::Error> {
    let db = quote(schema_db);
    type R = (
        u8,
        u64,
        u64,
        u8,
        Option<String>,
        Option<String>,
        Option<u64>,
    );
    let joined: Result<Option<R>, _> = conn
        .exec_first(
            format!(
                "SELECT b.is_complete, b.inserted_rows, b.total_rows, b.started_at IS NOT NULL, p.state, p.error, p.rows_emitted \
                 FROM {db}.`bootstrap` b LEFT JOIN {db}.`bootstrap_progress` p ON p.id = b.id WHERE b.id = ?"
            ),
            (id,),
        )
        .await;
    let row = match joined {
        Ok(r) => r,
        // A Maxwell install without sluice's progress table.
        Err(mysql_async::Error::Server(_)) => conn
            .exec_first::<(u8, u64, u64, u8), _, _>(
                format!("SELECT is_complete, inserted_rows, total_rows, started_at IS NOT NULL FROM {db}.`bootstrap` WHERE id = ?"),
                (id,),
            )
            .await?
            .map(|(c, i, t, s)| (c, i, t, s, None, None, None)),
        Err(e) => return Err(e),
    };
    Ok(row.map(
        |(complete, inserted, total, started, state, error, emitted)| Seen {
            complete: complete != 0,
            started: started != 0,
            rows: inserted.max(emitted.unwrap_or(0)),
            total,
            state,
            error,
        },
    ))
}

/// Follows request `id` until it ends; the exit code.
async fn follow(conn: &mut Conn, schema_db: &str, id: u64) -> Result<u8, Failure> {
    let tty = std::io::stdout().is_terminal();
    let mut meter = Meter::new();
    let mut waiting_said = false;
    let mut next_line_at = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let Some(seen) = look(conn, schema_db, id).await? else {
            if tty {
                println!();
            }
            println!("bootstrap aborted.");
            return Ok(1);
        };
        if seen.complete {
            if tty {
                println!();
            }
            if seen.state.as_deref() == Some("failed") {
                return Err(Failure::Failed(format!(
                    "bootstrap {id} failed: {}",
                    seen.error.unwrap_or_else(|| "(no message)".into())
                )));
            }
            println!("{}", meter.line(seen.rows, seen.total.max(seen.rows)));
            println!("bootstrap {id} complete: {} rows", seen.rows);
            return Ok(0);
        }
        if !seen.started {
            if !waiting_said {
                println!("waiting for bootstrap to start... ");
                waiting_said = true;
            }
        } else {
            let line = meter.line(seen.rows, seen.total);
            if tty {
                print!("\r{line}\x1b[K");
                let _ = std::io::stdout().flush();
            } else if seen.rows >= next_line_at {
                println!("{line}");
                next_line_at = (seen.rows / LINE_EVERY_ROWS + 1) * LINE_EVERY_ROWS;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = &mut ctrl_c => {
                println!(
                    "\nthe snapshot goes on in the daemon; follow it: sluice bootstrap --monitor={id}; stop it: sluice bootstrap --abort={id}"
                );
                return Ok(130);
            }
        }
    }
}
