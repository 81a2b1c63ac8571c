//! Running sluice as an operator would: systemd notifications (READY once
//! streaming, the watchdog, STOPPING), log files without colour escapes and
//! JSON logs for shippers, HTTPS with basic authentication (probes open,
//! everything else guarded, the password never shown).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::ops::*;
use crate::common::*;

/// A streaming sluice (file producer) with extra arguments, environment and
/// stderr.
fn sluice_with(
    extra: &[String],
    env: &[(&str, &str)],
    stderr: Stdio,
    out: &std::path::Path,
) -> Child {
    Command::new(sluice_bin())
        .args(login_args(ensure_mariadb()))
        .args([
            "--producer=file",
            &format!("--output_file={}", out.display()),
        ])
        .arg(unique_server_id())
        .arg(unique_client_id())
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn sluice")
}

#[test]
fn systemd_hears_ready_once_streaming_then_the_watchdog_then_stopping() {
    let _gate = crate::common::module_gate(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::new();
    let http = free_port();
    let child = sluice_with(
        &[format!("--http_port={http}"), "--log_level=warn".into()],
        &[
            ("NOTIFY_SOCKET", notify.path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
        Stdio::piped(),
        &dir.path().join("out.json"),
    );
    let before_ready = notify.until(Duration::from_secs(30), |m| m.contains("READY=1"));
    let ready = before_ready.last().cloned().unwrap_or_default();
    assert!(ready.starts_with("READY=1\n"), "{before_ready:?}");
    assert!(ready.contains("STATUS=leader, streaming"), "{ready}");
    // READY follows the role: the node streams by now.
    assert_eq!(http_get(http, "/leader").map(|r| r.0), Some(200));

    // WATCHDOG=1 every 200 ms (half of WATCHDOG_USEC) while healthy.
    let t0 = Instant::now();
    let mut pings = Vec::new();
    while t0.elapsed() < Duration::from_millis(1500) {
        if let Some(m) = notify.recv(Duration::from_millis(500)) {
            assert_eq!(m, "WATCHDOG=1", "only watchdog pings while streaming");
            pings.push(t0.elapsed());
        }
    }
    assert!(pings.len() >= 4, "watchdog pings in 1.5 s: {pings:?}");
    let gaps: Vec<_> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
    assert!(
        mean >= Duration::from_millis(150) && mean <= Duration::from_millis(300),
        "mean gap {mean:?} ({gaps:?})"
    );

    unsafe_kill(child.id(), 15);
    let stopping = notify.until(Duration::from_secs(10), |m| m.starts_with("STOPPING=1"));
    assert!(
        stopping.last().is_some_and(|m| m.starts_with("STOPPING=1")),
        "{stopping:?}"
    );
    let output = stop(child);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn log_files_carry_no_colour_and_json_logs_parse_line_by_line() {
    let _gate = crate::common::module_gate(module_path!());
    let dir = tempfile::tempdir().unwrap();
    for format in ["text", "json"] {
        let log = dir.path().join(format!("sluice-{format}.log"));
        let http = free_port();
        let child = sluice_with(
            &[
                format!("--http_port={http}"),
                "--log_level=info".into(),
                format!("--log_format={format}"),
            ],
            // A terminal would get colours; a file never does, whatever
            // TERM says.
            &[("TERM", "xterm-256color")],
            Stdio::from(std::fs::File::create(&log).unwrap()),
            &dir.path().join(format!("out-{format}.json")),
        );
        assert!(
            wait_for(Duration::from_secs(30), || http_get(http, "/leader")
                .is_some_and(|r| r.0 == 200)),
            "{format}: not streaming"
        );
        assert!(stop(child).status.success());
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            !text.contains('\u{1b}'),
            "{format}: escape characters in {text}"
        );
        assert!(text.contains("http endpoint listening"), "{format}: {text}");
        if format == "json" {
            let mut lines = 0;
            for line in text.lines() {
                let v: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                assert!(v["level"].is_string() && v["target"].is_string(), "{line}");
                assert!(
                    v["message"].is_string() && v["fields"].is_object(),
                    "{line}"
                );
                lines += 1;
            }
            let listening: serde_json::Value = text
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|v| v["message"] == "http endpoint listening")
                .unwrap();
            assert_eq!(listening["level"], "INFO");
            assert_eq!(listening["target"], "sluice");
            assert_eq!(listening["fields"]["address"], format!("127.0.0.1:{http}"));
            assert!(lines >= 3, "{text}");
        }
    }
    let (code, err) = run_sluice(&["--log_format=xml"], Duration::from_secs(10));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("'log_format'") && err.contains("text or json"),
        "{err}"
    );
}

#[test]
fn https_and_basic_auth_guard_everything_but_the_probes() {
    let _gate = crate::common::module_gate(module_path!());
    const PASSWORD: &str = "Pa55-w0rd-never-shown";
    let auth = format!("ops:{PASSWORD}");
    let tls = tls_dir();
    let ca = tls.join("ca.pem");
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let mut args = tls_auth_args(&tls, &auth);
    args.extend([
        format!("--http_port={http}"),
        "--http_config=true".into(),
        "--log_level=debug".into(),
    ]);
    let child = sluice_with(&args, &[], Stdio::piped(), &dir.path().join("out.json"));
    assert!(
        wait_for(Duration::from_secs(30), || curl(&ca, http, "/leader", None)
            .is_some_and(|r| r.0 == 200)),
        "no HTTPS answer from a streaming node"
    );
    // Probes stay open.
    assert_eq!(curl(&ca, http, "/ping", None), Some((200, "pong\n".into())));
    assert_eq!(
        curl(&ca, http, "/healthcheck", None).map(|r| r.0),
        Some(200)
    );
    // Everything else needs the credentials.
    let mut bodies = String::new();
    for path in [
        "/",
        "/status",
        "/metrics",
        "/prometheus",
        "/config",
        "/diagnostic",
        "/cluster",
    ] {
        assert_eq!(
            curl(&ca, http, path, None).map(|r| r.0),
            Some(401),
            "{path}"
        );
        assert_eq!(
            curl(&ca, http, path, Some("ops:wrong")).map(|r| r.0),
            Some(401),
            "{path}"
        );
        let (code, body) = curl(&ca, http, path, Some(&auth)).unwrap();
        assert_eq!(code, 200, "{path}: {body}");
        bodies.push_str(&body);
    }
    let (_, metrics) = curl(&ca, http, "/metrics", Some(&auth)).unwrap();
    let (_, prometheus) = curl(&ca, http, "/prometheus", Some(&auth)).unwrap();
    let names = |m: &str| -> Vec<String> {
        m.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(names(&metrics), names(&prometheus));
    assert!(metrics.contains("sluice_info{client_id="), "{metrics}");
    assert_eq!(
        curl(&ca, http, "/config", Some(&auth)),
        Some((200, "{\"filter\":null}\n".into()))
    );
    let (_, diag) = curl(&ca, http, "/diagnostic", Some(&auth)).unwrap();
    let diag: serde_json::Value = serde_json::from_str(&diag).unwrap();
    assert_eq!(diag["success"], true, "{diag}");
    let (_, cluster) = curl(&ca, http, "/cluster", Some(&auth)).unwrap();
    let cluster: serde_json::Value = serde_json::from_str(&cluster).unwrap();
    assert_eq!(cluster["ha"], false);
    assert_eq!(cluster["nodes"].as_array().unwrap().len(), 1, "{cluster}");
    assert_eq!(cluster["nodes"][0]["status"]["role"], "leader");
    assert_eq!(cluster["nodes"][0]["status"]["producer"]["name"], "file");
    // Plain HTTP gets no answer from the HTTPS port; a client that does not
    // trust the CA gets no answer either.
    assert!(http_get(http, "/ping").is_none_or(|r| r.0 != 200));
    assert_eq!(curl(&tls.join("other-ca.pem"), http, "/ping", None), None);

    let output = stop(child);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    for (what, text) in [("a response", bodies.as_str()), ("the log", &log)] {
        assert!(!text.contains(PASSWORD), "the password shows in {what}");
    }
}

#[test]
fn http_tls_and_auth_settings_are_checked_at_start() {
    let _gate = crate::common::module_gate(module_path!());
    let tls = tls_dir();
    let cert = format!("--http_ssl_cert={}", tls.join("server.pem").display());
    let cases: [(Vec<String>, &str, &str); 4] = [
        (vec![cert.clone()], "'http_ssl_key'", "http_ssl_cert is set"),
        (
            vec![
                cert.clone(),
                format!("--http_ssl_key={}", tls.join("server.pem").display()),
            ],
            "'http_ssl_key'",
            "no usable PEM private key",
        ),
        (
            vec![
                cert.clone(),
                format!("--http_ssl_key={}", tls.join("client.key").display()),
            ],
            "'http_ssl_key'",
            "the key must be the certificate's own",
        ),
        (
            vec!["--http_auth=admin-Secr3tNoColon".into()],
            "'http_auth'",
            "user:password",
        ),
    ];
    for (args, option, why) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = run_sluice(&args, Duration::from_secs(10));
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(option) && err.contains(why), "{args:?}: {err}");
        assert!(!err.contains("Secr3t"), "the secret is echoed: {err}");
    }
}
