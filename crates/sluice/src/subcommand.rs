//! What the subcommands (`sluice bootstrap`, `sluice reset-position`)
//! share: their work runs on a runtime of this thread.

use std::future::Future;
use std::process::ExitCode;

/// Runs `work` to its end on a new current-thread runtime; a runtime that
/// cannot start is said (as `name`) and is exit code 1.
pub fn block_on<F: Future>(name: &str, work: F) -> Result<F::Output, ExitCode> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Ok(rt.block_on(work)),
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            Err(ExitCode::from(1))
        }
    }
}
