//! Bad input gets a clear error and a non-zero exit: configuration, server
//! settings, a binlog that is gone.

use std::time::Duration;

use crate::common::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn unknown_option_is_named_with_exit_code_2() {
    let _gate = crate::common::module_gate(module_path!());
    let (code, err) = run_sluice(&["--hots=db1"], T);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("'hots'") && err.contains("did you mean 'host'"),
        "{err}"
    );
}

#[test]
fn bad_value_is_named_with_exit_code_2() {
    let _gate = crate::common::module_gate(module_path!());
    let (code, err) = run_sluice(&["--replica_server_id=-4"], T);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("replica_server_id") && err.contains("-4"),
        "{err}"
    );
}

#[test]
fn help_lists_options_and_defaults() {
    let _gate = crate::common::module_gate(module_path!());
    let out = std::process::Command::new(sluice_bin())
        .arg("--http_port=0")
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "--host",
        "--replica_server_id",
        "--init_position",
        "--output_file",
        "--exclude_columns",
    ] {
        assert!(text.contains(name), "{name} missing from --help");
    }
    assert!(text.contains("[default: 3306]"));
}

fn server_args(port: u16) -> Vec<String> {
    vec![
        "--host=127.0.0.1".into(),
        format!("--port={port}"),
        "--user=root".into(),
    ]
}

#[test]
fn refuses_a_server_without_binlog() {
    let _gate = crate::common::module_gate(module_path!());
    let port = ensure_extra_mariadb(23307, "off");
    let args = server_args(port);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, err) = run_sluice(&refs, T);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("binary logging is off") && err.contains("log_bin"),
        "{err}"
    );
}

#[test]
fn refuses_statement_based_binlog() {
    let _gate = crate::common::module_gate(module_path!());
    let port = ensure_extra_mariadb(23308, "statement");
    let args = server_args(port);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, err) = run_sluice(&refs, T);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("binlog_format is STATEMENT") && err.contains("binlog_format=ROW"),
        "{err}"
    );
}

/// Error 1236 for a file the server never had is not called purged: the
/// server's list of files (SHOW BINARY LOGS) tells the two apart.
#[test]
fn a_binlog_file_that_never_existed_is_not_found_not_purged() {
    let _gate = crate::common::module_gate(module_path!());
    let (code, err) = starting_at("mysql-bin.999999:4");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("mysql-bin.999999 was not found on the server")
            && err.contains("SHOW BINARY LOGS")
            && err.contains("--init_position"),
        "{err}"
    );
    assert!(!err.contains("purged"), "{err}");
}

#[test]
fn missing_binlog_before_the_first_says_purged_and_how_to_recover() {
    let _gate = crate::common::module_gate(module_path!());
    let (code, err) = starting_at("mysql-bin.000000:4");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("mysql-bin.000000 is no longer on the server (purged")
            && err.contains("--init_position"),
        "{err}"
    );
}

/// sluice told to start at `position` (a fresh client id), run to its end.
fn starting_at(position: &str) -> (Option<i32>, String) {
    let mut args = login_args(ensure_mariadb()).to_vec();
    args.push(format!("--init_position={position}"));
    args.push(unique_client_id());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_sluice(&args, T)
}

#[test]
fn wrong_password_is_a_clear_error() {
    let _gate = crate::common::module_gate(module_path!());
    let port = ensure_mariadb();
    let (code, err) = run_sluice(
        &[
            "--host=127.0.0.1",
            &format!("--port={port}"),
            "--user=sluice",
            "--password=wrong",
        ],
        T,
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("Access denied") && err.contains("sluice"),
        "{err}"
    );
}
