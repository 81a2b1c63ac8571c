//! The daemon's bootstrap options: Maxwell's `bootstrapper`, and sluice's
//! chunk size, rate limit and resume switch.

use sluice_core::{declare_options, ConfigError, Opt, Section, Values};

declare_options! { OPTIONS;
    BOOTSTRAPPER: String = Opt::new("bootstrapper", Section::Replication, "async",
        "how requests in schema_database.bootstrap run: async | sync (both chunked beside the stream, consistent by watermarks) | none (not run; their insert rows are still emitted)");
    BOOTSTRAP_CHUNK_SIZE: u64 = Opt::new("bootstrap_chunk_size", Section::Replication, "10000",
        "most rows per snapshot chunk (one key-range query between two watermarks); a table gets at least 100 chunks (of at least 100 rows), so an interrupted snapshot re-reads little");
    BOOTSTRAP_MAX_ROWS_PER_SECOND: u64 = Opt::new("bootstrap_max_rows_per_second", Section::Replication, "0",
        "rate limit of snapshot reads, in rows per second, to protect the server (0 = no limit)");
    BOOTSTRAP_RESUME: bool = Opt::new("bootstrap_resume", Section::Replication, "true",
        "an interrupted snapshot continues after its last delivered chunk; false: it starts again from the first row with a new bootstrap-start (Maxwell's behaviour)");
}

/// `bootstrapper`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrapper {
    Async,
    /// Maxwell's sync mode stops the replicator while a table is read. With
    /// watermarks the rows are in binlog order anyway, so sluice runs it
    /// like `async` instead of blocking every other table.
    Sync,
    None,
}

#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    pub mode: Bootstrapper,
    pub chunk_size: u64,
    /// 0: no limit.
    pub max_rows_per_second: u64,
    pub resume: bool,
}

impl BootstrapOptions {
    pub fn from_options(v: &dyn Values) -> Result<BootstrapOptions, ConfigError> {
        let mode = match BOOTSTRAPPER.get(v)?.to_ascii_lowercase().as_str() {
            "async" => Bootstrapper::Async,
            "sync" => Bootstrapper::Sync,
            "none" => Bootstrapper::None,
            other => {
                return Err(BOOTSTRAPPER.error(v, format!("'{other}' is not async, sync or none")))
            }
        };
        let chunk_size = BOOTSTRAP_CHUNK_SIZE.get(v)?;
        if !(1..=10_000_000).contains(&chunk_size) {
            return Err(BOOTSTRAP_CHUNK_SIZE.error(v, "must be between 1 and 10000000 rows"));
        }
        Ok(BootstrapOptions {
            mode,
            chunk_size,
            max_rows_per_second: BOOTSTRAP_MAX_ROWS_PER_SECOND.get(v)?,
            resume: BOOTSTRAP_RESUME.get(v)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::Given;

    #[test]
    fn defaults_and_modes() {
        let o = BootstrapOptions::from_options(&Given::new(&[])).unwrap();
        assert_eq!(o.mode, Bootstrapper::Async);
        assert_eq!(
            (o.chunk_size, o.max_rows_per_second, o.resume),
            (10_000, 0, true)
        );
        let o = BootstrapOptions::from_options(&Given::new(&[("bootstrapper", "NONE")])).unwrap();
        assert_eq!(o.mode, Bootstrapper::None);
    }

    #[test]
    fn bad_values_name_the_option() {
        let e = BootstrapOptions::from_options(&Given::new(&[("bootstrapper", "later")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bootstrapper") && e.contains("async, sync or none"),
            "{e}"
        );
        let e = BootstrapOptions::from_options(&Given::new(&[("bootstrap_chunk_size", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bootstrap_chunk_size"), "{e}");
    }
}
