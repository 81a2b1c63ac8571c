//! Configuration rules, tested without a server.

use super::*;

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn run(v: &[&str]) -> Result<Config, ConfigError> {
    match parse(&args(v), &BTreeMap::new())? {
        Parsed::Run(c) => Ok(*c),
        _ => panic!("not a run"),
    }
}

#[test]
fn defaults_match_maxwell() {
    let c = run(&[]).unwrap();
    assert_eq!(c.servers.state.endpoint.host, "localhost");
    assert_eq!(c.servers.state.endpoint.port, 3306);
    assert_eq!(c.servers.state.endpoint.user, "maxwell");
    assert_eq!(c.client_id, "maxwell");
    assert_eq!(c.replica_server_id, 6379);
    assert_eq!(c.producer.name(), "stdout");
    assert!(c.output.commit_info && c.output.nulls && !c.output.xoffset);
}

#[test]
fn both_argument_forms() {
    let c = run(&[
        "--host",
        "db1",
        "--port=3307",
        "--output_xoffset",
        "--producer=file",
        "--output_file",
        "/tmp/x",
    ])
    .unwrap();
    assert_eq!(c.servers.state.endpoint.host, "db1");
    assert_eq!(c.servers.state.endpoint.port, 3307);
    assert!(c.output.xoffset);
    assert_eq!(
        format!("{:?}", c.producer),
        r#"FileConfig { path: "/tmp/x" }"#
    );
}

#[test]
fn unknown_and_bad_values_name_the_option() {
    let e = run(&["--hots=x"]).unwrap_err().to_string();
    assert!(
        e.contains("'hots'") && e.contains("did you mean 'host'"),
        "{e}"
    );
    let e = run(&["--port=abc"]).unwrap_err().to_string();
    assert!(e.contains("'port'") && e.contains("abc"), "{e}");
    let e = run(&["--output_nulls=maybe"]).unwrap_err().to_string();
    assert!(
        e.contains("output_nulls") && e.contains("true or false"),
        "{e}"
    );
    let e = run(&["--producer=file"]).unwrap_err().to_string();
    assert!(e.contains("output_file"), "{e}");
    let e = run(&["--init_position=nope"]).unwrap_err().to_string();
    assert!(e.contains("init_position"), "{e}");
    let e = run(&["--exclude_columns=/(/"]).unwrap_err().to_string();
    assert!(e.contains("exclude_columns"), "{e}");
}

#[test]
fn file_env_and_cli_precedence() {
    let dir = std::env::temp_dir().join(format!("sluice-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("config.properties");
    std::fs::write(
        &f,
        "# comment\nhost=fromfile\nport=1111\nuser=u1\nenv_config_prefix=SLX_\n",
    )
    .unwrap();
    let mut env = BTreeMap::new();
    env.insert("SLX_PORT".to_string(), "2222".to_string());
    env.insert("SLX_USER".to_string(), "fromenv".to_string());
    env.insert("OTHER".to_string(), "x".to_string());
    let p = parse(
        &args(&["--config", f.to_str().unwrap(), "--user=fromcli"]),
        &env,
    )
    .unwrap();
    let Parsed::Run(c) = p else { panic!() };
    assert_eq!(c.servers.state.endpoint.host, "fromfile");
    assert_eq!(c.servers.state.endpoint.port, 2222);
    assert_eq!(c.servers.state.endpoint.user, "fromcli");
    std::fs::write(&f, "hostt=x\n").unwrap();
    let e = parse(&args(&["--config", f.to_str().unwrap()]), &env)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("hostt") && e.contains("config.properties:1"),
        "{e}"
    );
    let mut env = BTreeMap::new();
    env.insert("SLX_PORT".to_string(), "zz".to_string());
    let e = parse(&args(&["--env_config_prefix=SLX_"]), &env)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("SLX_PORT"), "{e}");
}

#[test]
fn ha_needs_a_zookeeper_and_an_absolute_root() {
    let e = run(&["--ha"]).unwrap_err().to_string();
    assert!(e.contains("'zookeeper'") && e.contains("--ha needs"), "{e}");
    let e = run(&["--ha", "--zookeeper=z:2181", "--zookeeper_root=x"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("zookeeper_root"), "{e}");
    let c = run(&["--ha", "--zookeeper=z1:2181,z2:2181"]).unwrap();
    let ha = c.ha.unwrap();
    assert_eq!(ha.zookeeper, "z1:2181,z2:2181");
    assert_eq!(ha.root, "/sluice");
    assert!(run(&[]).unwrap().ha.is_none());
    let e = run(&["--http_path_prefix=x"]).unwrap_err().to_string();
    assert!(e.contains("http_path_prefix"), "{e}");
}

#[test]
fn help_lists_every_option_with_defaults() {
    let h = help();
    for o in all_options() {
        assert!(h.contains(&format!("--{}", o.name)), "{}", o.name);
    }
    assert!(h.contains("[default: 6379]"));
}

#[test]
fn every_option_is_declared_once() {
    let mut seen = std::collections::HashSet::new();
    for o in all_options() {
        assert!(seen.insert(o.name), "'{}' is declared twice", o.name);
    }
}

#[test]
fn help_is_grouped_by_section() {
    let h = help();
    let at = |s: &str| h.find(s).unwrap_or_else(|| panic!("{s} missing:\n{h}"));
    assert!(at("Connection to MySQL/MariaDB:") < at("--host "));
    assert!(at("producer=redis:") < at("--redis_key "));
    assert!(at("High availability:") < at("--zookeeper "));
    assert!(at("--kafka.NAME") > at("producer=kafka:"));
}

#[test]
fn a_producer_option_is_read_by_its_producer() {
    let c = run(&["--producer=redis", "--redis_key=k", "--redis_type=xadd"]).unwrap();
    let shown = format!("{:?}", c.producer);
    assert!(
        shown.contains("key: \"k\"") && shown.contains("Xadd"),
        "{shown}"
    );
    let e = run(&["--producer=redis", "--redis_type=list"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("'redis_type'") && e.contains("lpush"), "{e}");
    let e = run(&["--producer=kinesis"]).unwrap_err().to_string();
    assert!(e.contains("not available") && e.contains("kafka"), "{e}");
}

/// The option names in the README's tables (`| option | default | meaning |`).
fn readme_options() -> std::collections::BTreeSet<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let mut names = std::collections::BTreeSet::new();
    let mut in_table = false;
    for line in readme.lines() {
        if line.starts_with("| option |") {
            in_table = true;
            continue;
        }
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        let first = line.split('|').nth(1).unwrap_or("");
        for (i, part) in first.split('`').enumerate() {
            if i % 2 == 1 {
                names.insert(part.to_string());
            }
        }
    }
    names
}

#[test]
fn the_readme_and_help_name_the_same_options() {
    let documented = readme_options();
    let mut declared: std::collections::BTreeSet<String> =
        all_options().iter().map(|o| o.name.to_string()).collect();
    declared.insert("kafka.NAME".into());
    let missing: Vec<_> = declared.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&declared).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "README option tables out of step with the declarations: not in the README {missing:?}, \
         not declared {unknown:?}"
    );
    let h = help();
    for name in &documented {
        assert!(h.contains(&format!("--{name} ")), "--help lacks {name}");
    }
}

#[test]
fn maxwell_options_that_sluice_implements_are_declared() {
    let declared: std::collections::HashSet<&str> = all_options().iter().map(|o| o.name).collect();
    for (name, d) in maxwell::MAXWELL_OPTIONS {
        if *d != maxwell::Disposition::Implemented
            || maxwell::NOT_YET_IN_SLUICE.contains(name)
            || name.starts_with("kafka.")
            || name.starts_with("kafka_partition_")
            || *name == "help"
        {
            continue;
        }
        assert!(
            declared.contains(name),
            "{name} is Implemented but not declared"
        );
    }
    for name in maxwell::NOT_YET_IN_SLUICE {
        assert!(
            !declared.contains(name),
            "{name} is declared: take it off NOT_YET_IN_SLUICE"
        );
    }
}

#[test]
fn maxwell_names_are_accepted_ignored_or_refused_with_a_reason() {
    // Accepted with a warning said once logging runs.
    let c = run(&["--metrics_type=jmx", "--kafka_version=0.11"]).unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("metrics_type") && w.contains("/metrics")),
        "{:?}",
        c.warnings
    );
    // Refused, saying why and what instead.
    let e = run(&["--javascript=f.js"]).unwrap_err().to_string();
    assert!(e.contains("'javascript'") && e.contains("filter="), "{e}");
    let e = run(&["--producer=kinesis", "--kinesis_stream=s"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("Kinesis"), "{e}");
    // Not built yet: refused, not silently ignored.
    for name in maxwell::NOT_YET_IN_SLUICE {
        let e = run(&[&format!("--{name}=x")]).unwrap_err().to_string();
        assert!(e.contains("not available"), "{e}");
    }
    // The removed filter options: refused with the filter that says the same.
    let e = run(&["--include_dbs=a,b", "--blacklist_tables=t"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("filter=blacklist: *.t, exclude: *.*, include: a.*, include: b.*"),
        "{e}"
    );
    // Older names of declared options.
    let c = run(&[
        "--producer=kafka",
        "--kafka.bootstrap.servers=k:9092",
        "--kafka_partition_by=table",
    ]);
    if cfg!(feature = "kafka") {
        let c = c.unwrap();
        assert!(format!("{:?}", c.producer).contains("by: Table"));
        assert!(c.warnings.iter().any(|w| w.contains("kafka_partition_by")));
    }
    // Java-client kafka settings librdkafka would refuse are dropped with a warning.
    if cfg!(feature = "kafka") {
        let c = run(&[
            "--producer=kafka",
            "--kafka.bootstrap.servers=k:9092",
            "--kafka.key.serializer=org.apache.kafka.common.serialization.StringSerializer",
        ])
        .unwrap();
        assert!(!format!("{:?}", c.producer).contains("serializer"));
        assert!(c
            .warnings
            .iter()
            .any(|w| w.contains("kafka.key.serializer")));
    }
}

#[test]
fn a_java_properties_file_means_what_it_means_to_maxwell() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("config.properties");
    std::fs::write(
        &f,
        "\u{feff}# Maxwell's file\nhost : db1\nfilter= exclude: *.*, \\\n   include: shop./t_\\\\d+/\nsecret_key=aaaaaaaaaaaaaaaa\nencrypt=data\n",
    )
    .unwrap();
    let c = run(&["--config", f.to_str().unwrap()]).unwrap();
    assert_eq!(c.servers.state.endpoint.host, "db1");
    let filter = c.filter.expect("a filter").to_string();
    assert_eq!(filter, r"exclude: *.*, include: shop./t_\d+/");
    assert!(c.encryptor.is_some());
    // A bad value names the file and line.
    std::fs::write(&f, "host=x\n\nport=notaport\n").unwrap();
    let e = run(&["--config", f.to_str().unwrap()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("config.properties:3"), "{e}");
    // Not a config file: refused, not read forever.
    let e = run(&["--config=/dev/zero"]).unwrap_err().to_string();
    assert!(
        e.contains("/dev/zero") && e.contains("not a config file"),
        "{e}"
    );
}

#[test]
fn filter_and_encryption_errors_name_the_option() {
    let e = run(&["--filter=exclude: foo./unterminated"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("'filter'"), "{e}");
    let e = run(&["--filter=bl: foo.*"]).unwrap_err().to_string();
    assert!(e.contains("'filter'"), "{e}");
    let e = run(&["--encrypt=all", "--secret_key=short"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("'secret_key'") && e.contains("16"), "{e}");
    assert!(!e.contains("short"), "the key is not shown: {e}");
    let e = run(&["--encrypt=data"]).unwrap_err().to_string();
    assert!(e.contains("'encrypt'") && e.contains("secret_key"), "{e}");
    let e = run(&["--encrypt=rot13", "--secret_key=aaaaaaaaaaaaaaaa"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("'encrypt'"), "{e}");
    // A filter that filters nothing is said so.
    let c = run(&["--filter=include: foo.*"]).unwrap();
    assert!(
        c.warnings.iter().any(|w| w.starts_with("filter:")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn hosts_follow_maxwells_rules() {
    // Without replication_host the binlog is read from host.
    let c = run(&["--host=primary", "--ssl=REQUIRED"]).unwrap();
    assert_eq!(c.servers.replication.endpoint.host, "primary");
    assert_eq!(c.servers.schema.endpoint.host, "primary");
    assert_eq!(
        c.servers.replication.tls.mode,
        sluice_binlog::SslMode::Required
    );
    // A replica: binlog and captures from it, state on the primary, its
    // own port (never inherited) and ssl defaulting to ssl.
    let c = run(&[
        "--host=primary",
        "--port=3307",
        "--ssl=VERIFY_CA",
        "--ssl_ca=/ca.pem",
        "--replication_host=replica",
        "--replication_user=r",
        "--replication_password=rp",
    ])
    .unwrap();
    let r = &c.servers.replication;
    assert_eq!(
        (r.endpoint.host.as_str(), r.endpoint.port),
        ("replica", 3306)
    );
    assert_eq!(r.tls.mode, sluice_binlog::SslMode::VerifyCa);
    assert_eq!(r.tls.ca.as_deref(), Some(std::path::Path::new("/ca.pem")));
    assert_eq!(r.tls.option("ssl"), "replication_ssl");
    assert_eq!(c.servers.schema.endpoint.host, "replica");
    assert_eq!(c.servers.state.endpoint.port, 3307);
    // Half a replication host is an error, not silently ignored.
    let e = run(&["--replication_host=replica"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("replication_user"), "{e}");
    let e = run(&["--schema_host=s", "--schema_user=u", "--schema_password=p"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("replication_host"), "{e}");
    // jdbc_options: sslMode and connectTimeout are honoured, the rest named.
    let c =
        run(&["--jdbc_options=sslMode=REQUIRED&connectTimeout=2500&serverTimezone=UTC"]).unwrap();
    assert_eq!(c.servers.state.tls.mode, sluice_binlog::SslMode::Required);
    assert_eq!(c.servers.state.connect_timeout, Duration::from_millis(2500));
    assert!(c.warnings.iter().any(|w| w.contains("serverTimezone")));
    let e = run(&["--ssl=maybe"]).unwrap_err().to_string();
    assert!(e.contains("'ssl'") && e.contains("VERIFY_IDENTITY"), "{e}");
}

#[test]
fn env_config_reads_a_json_object_of_options() {
    let mut env = BTreeMap::new();
    env.insert(
        "MAXWELL_JSON".to_string(),
        r#"{"host":"fromjson","port":3310,"output_ddl":true}"#.to_string(),
    );
    let p = parse(&args(&["--env_config=MAXWELL_JSON", "--port=3311"]), &env).unwrap();
    let Parsed::Run(c) = p else { panic!() };
    assert_eq!(c.servers.state.endpoint.host, "fromjson");
    assert_eq!(c.servers.state.endpoint.port, 3311, "the command line wins");
    assert!(c.output.ddl);
    let e = parse(&args(&["--env_config=NOPE"]), &BTreeMap::new())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("env_config") && e.contains("NOPE"), "{e}");
}

#[test]
fn tmp_dir_must_be_a_writable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let ok = format!("--tmp_dir={}", dir.path().display());
    assert_eq!(run(&[&ok]).unwrap().tmp_dir.as_deref(), Some(dir.path()));
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let missing = dir.path().join("missing");
    for (path, why) in [
        (missing.as_path(), "does not exist"),
        (file.as_path(), "is not a directory"),
    ] {
        let e = run(&[&format!("--tmp_dir={}", path.display())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'tmp_dir'") && e.contains(why) && e.contains(&path.display().to_string()),
            "{e}"
        );
    }
    // A directory nobody may create files in (even root: /proc).
    let e = run(&["--tmp_dir=/proc"]).unwrap_err().to_string();
    assert!(e.contains("'tmp_dir'") && e.contains("spill file"), "{e}");
}

#[test]
fn positions_above_32_bits_are_refused_not_clamped() {
    let c = run(&["--init_position=mysql-bin.000001:4294967295"]).unwrap();
    assert_eq!(c.init_position.map(|p| p.offset), Some(4_294_967_295));
    for opt in ["init_position", "stop_position"] {
        let e = run(&[&format!("--{opt}=mysql-bin.000001:4294967296")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("'{opt}'")) && e.contains("4294967296") && e.contains("32-bit"),
            "{e}"
        );
    }
}
