mod config;
mod ha;
mod http;
mod positions;
mod preflight;
mod reader;
mod run;
mod schema_history;
mod telemetry;

use std::collections::BTreeMap;
use std::process::ExitCode;

use config::Parsed;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: BTreeMap<String, String> = std::env::vars().collect();
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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "{},mysql_async=warn",
            cfg.log_level
        )))
        .init();
    // SIGHUP re-reads the same arguments, config file and environment.
    let reload = move || match config::parse(&args, &std::env::vars().collect()) {
        Ok(Parsed::Run(c)) => Ok(*c),
        Ok(_) => Err("unexpected --help/--version".to_string()),
        Err(e) => Err(e.to_string()),
    };
    match run::run(*cfg, &reload) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("sluice: {e:#}");
            ExitCode::from(1)
        }
    }
}
