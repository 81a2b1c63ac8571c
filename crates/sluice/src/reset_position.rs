//! `sluice reset-position`: forgets the stored position of a client_id, so
//! that the next start begins at `--init_position` (or, without it, at the
//! server's current position). A stored position always wins over
//! `--init_position`; this is the way to move it (a wrong one, or a
//! deliberate jump). Takes the daemon's options (a `--config` file works as
//! is); run it while that client_id's sluice is stopped.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::config::{self, Config, Parsed};
use crate::error::Error;

pub fn help() -> String {
    "sluice reset-position: forget the stored position of a client_id\n\n\
     usage: sluice reset-position [the daemon's options: host, port, user, password, schema_database,\n\
     \x20      client_id, config, ...]\n\n\
     Stop that client_id's sluice first (a running one stores its position again). The next start\n\
     begins at --init_position (checked against the server), or at the server's current position.\n"
        .to_string()
}

/// Runs the subcommand (`args` after `reset-position`).
pub fn main(args: &[String], env: &BTreeMap<String, String>) -> ExitCode {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", help());
        return ExitCode::SUCCESS;
    }
    let cfg = match config::parse(args, env) {
        Ok(Parsed::Run(c)) => c,
        Ok(_) => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sluice reset-position: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match crate::subcommand::block_on("sluice reset-position", run(&cfg)) {
        Ok(outcome) => outcome,
        Err(code) => return code,
    };
    match outcome {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sluice reset-position: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(cfg: &Config) -> Result<String, Error> {
    let state = &cfg.servers.state;
    let mut conn = state.connect(&cfg.servers.auth).await?;
    let forgotten = crate::positions::forget(&mut conn, &cfg.schema_database, &cfg.client_id)
        .await
        .map_err(|e| {
            Error::definite(format!(
                "{e} (in database '{}' on {}; the user needs all rights on it)",
                cfg.schema_database,
                state.address()
            ))
        })?;
    let next = match &cfg.init_position {
        Some(p) => format!("the next start with --init_position={p} begins there"),
        None => "the next start begins at --init_position if given, else at the server's current position".into(),
    };
    if forgotten.is_empty() {
        return Ok(format!(
            "client_id '{}' has no stored position in {}.positions on {}: nothing to reset; {next}",
            cfg.client_id,
            cfg.schema_database,
            state.address()
        ));
    }
    let list: Vec<String> = forgotten
        .iter()
        .map(|(server_id, p)| match &p.gtid {
            Some(g) => format!("{p} (gtid {g}) of server_id {server_id}"),
            None => format!("{p} of server_id {server_id}"),
        })
        .collect();
    Ok(format!(
        "forgot the stored position of client_id '{}': {}; {next}",
        cfg.client_id,
        list.join(", ")
    ))
}
