//! The `sluice` binary: parse the configuration, start logging, run the
//! daemon with the process's signals.

use std::collections::BTreeMap;
use std::process::ExitCode;

use sluice::config::{self, Parsed};
use sluice::Controls;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: BTreeMap<String, String> = std::env::vars().collect();
    if args.first().map(String::as_str) == Some("bootstrap") {
        return sluice::bootstrap::cli::main(&args[1..], &env);
    }
    if args.first().map(String::as_str) == Some("reset-position") {
        return sluice::reset_position::main(&args[1..], &env);
    }
    let cfg = match config::parse(&args, &env) {
        Ok(Parsed::Help) => {
            print!("{}", config::help());
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("sluice {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(c)) => c,
        Err(e) => {
            eprintln!("sluice: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    cfg.log.init();
    for warning in &cfg.warnings {
        tracing::warn!("{warning}");
    }
    // SIGHUP re-reads the same arguments, config file and environment.
    let reload = move || match config::parse(&args, &std::env::vars().collect()) {
        Ok(Parsed::Run(c)) => Ok(*c),
        Ok(_) => Err(config::ConfigError::Usage(
            "unexpected --help/--version".into(),
        )),
        Err(e) => Err(e),
    };
    match sluice::run(*cfg, Controls::Signals, &reload) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}
