//! Every event of every file of the MySQL binlog corpus
//! (`testdata/mysql-binlogs`, origins and expected values in its READMEs)
//! is read by the file reader and parsed by this crate's parsers: GTIDs,
//! PREVIOUS_GTIDS, queries, table maps, row images (sliced per column),
//! compressed transactions. Values the READMEs state are checked here where
//! they live at this level; rendered row values are checked in
//! `crates/pipeline/tests/mysql_corpus.rs`.

use std::collections::HashMap;
use std::path::PathBuf;

use sluice_binlog::event::{self, types, Event, FormatDescription, Query, Rotate};
use sluice_binlog::file::{BinlogFile, FileError};
use sluice_binlog::mysql_gtid::{GtidSet, MysqlGtid};
use sluice_binlog::payload::{self, PayloadHeader};
use sluice_binlog::rows::{read_row_image, read_shared_image, RowsHeader, RowsKind, TableMap};

fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/mysql-binlogs")
        .join(rel)
}

/// What parsing a file found.
#[derive(Default, Debug)]
struct Parsed {
    /// Top-level event types in file order (after the artificial ROTATE).
    top: Vec<u8>,
    /// Event types inside each TRANSACTION_PAYLOAD.
    payloads: Vec<Vec<u8>>,
    payload_headers: Vec<PayloadHeader>,
    gtids: Vec<String>,
    previous: Vec<GtidSet>,
    queries: Vec<String>,
    row_queries: Vec<String>,
    tables: Vec<TableMap>,
    /// (kind, rows) per rows event.
    rows: Vec<(RowsKind, usize)>,
    server_version: String,
}

/// Parses one event with the parser its type has; rows events are sliced
/// row by row, cell by cell.
fn parse_event(
    ev: &Event,
    maps: &mut HashMap<u64, TableMap>,
    out: &mut Parsed,
    inner: bool,
) -> Result<(), String> {
    let b = &ev.body;
    let e = |x: sluice_binlog::SourceError| x.to_string();
    match ev.header.event_type {
        types::ROTATE => {
            Rotate::parse(b).map_err(e)?;
        }
        types::FORMAT_DESCRIPTION => {
            // As received: the checksum footer is removed, the parser
            // looks for the algorithm byte only to learn the version.
            out.server_version = FormatDescription::parse_with_footer(b)
                .map_err(e)?
                .server_version;
        }
        types::QUERY => out
            .queries
            .push(String::from_utf8_lossy(Query::parse(b).map_err(e)?.sql).into_owned()),
        types::XID => {
            event::parse_xid(b).map_err(e)?;
        }
        types::MYSQL_GTID | types::MYSQL_GTID_TAGGED => out.gtids.push(
            MysqlGtid::parse(ev.header.event_type, b)
                .map_err(e)?
                .to_string(),
        ),
        types::MYSQL_PREVIOUS_GTIDS => out
            .previous
            .push(GtidSet::parse_previous_gtids(b).map_err(e)?),
        types::MARIADB_GTID => {
            event::MariadbGtid::parse(&ev.header, b).map_err(e)?;
        }
        types::MARIADB_GTID_LIST => {
            event::parse_mariadb_gtid_list(b).map_err(e)?;
        }
        types::ROWS_QUERY | types::MARIADB_ANNOTATE_ROWS => out.row_queries.push(
            String::from_utf8_lossy(event::row_query_text(ev.header.event_type, b)).into_owned(),
        ),
        types::TABLE_MAP => {
            let tm = TableMap::parse(b).map_err(e)?;
            maps.insert(tm.table_id, tm.clone());
            out.tables.push(tm);
        }
        t if RowsKind::of_event_type(t).is_some() => {
            let h = RowsHeader::parse(t, b).map_err(e)?;
            let tm = maps
                .get(&h.table_id)
                .ok_or_else(|| format!("rows event for unknown table id {}", h.table_id))?;
            if h.column_count != tm.columns.len() {
                return Err("rows event column count differs from its table map".into());
            }
            let (mut cells, mut absent, mut partial) = (Vec::new(), Vec::new(), Vec::new());
            let mut pos = h.rows_offset;
            let mut n = 0;
            while pos < b.len() {
                pos = read_row_image(b, pos, tm, &h.present, &mut cells, &mut absent).map_err(e)?;
                if h.kind == RowsKind::Update {
                    if h.partial {
                        pos = read_shared_image(b, pos, tm, &mut partial).map_err(e)?;
                    }
                    pos = read_row_image(b, pos, tm, &h.present_after, &mut cells, &mut absent)
                        .map_err(e)?;
                }
                n += 1;
            }
            out.rows.push((h.kind, n));
        }
        types::TRANSACTION_PAYLOAD => {
            if inner {
                return Err("TRANSACTION_PAYLOAD inside a TRANSACTION_PAYLOAD".into());
            }
            out.payload_headers
                .push(PayloadHeader::parse(b).map_err(e)?);
            let evs = payload::inner_events(ev).map_err(e)?;
            out.payloads
                .push(evs.iter().map(|x| x.header.event_type).collect());
            for x in &evs {
                if x.header.log_pos != ev.header.log_pos {
                    return Err("inner event without the payload's end position".into());
                }
                parse_event(x, maps, out, true)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads and parses the whole file; the first error stops it.
fn parse_file(rel: &str) -> Result<Parsed, String> {
    let f = BinlogFile::open(corpus(rel)).map_err(|e| e.to_string())?;
    let mut out = Parsed::default();
    let mut maps = HashMap::new();
    for (i, ev) in f.enumerate() {
        let ev = ev.map_err(|e| e.to_string())?;
        if i == 0 {
            assert_eq!(
                ev.header.event_type,
                types::ROTATE,
                "artificial ROTATE first"
            );
            continue;
        }
        out.top.push(ev.header.event_type);
        parse_event(&ev, &mut maps, &mut out, false)
            .map_err(|m| format!("{rel}: event {i} (type {}): {m}", ev.header.event_type))?;
    }
    Ok(out)
}

fn count(v: &[u8], t: u8) -> usize {
    v.iter().filter(|&&x| x == t).count()
}

const RMC: &str = "rust_mysql_common/binlogs";
const STD: &str = "rust_mysql_common/mysql-test-std_data";

#[test]
fn json_binlog_partial_update_rows() {
    let p = parse_file(&format!("{RMC}/json.binlog.000001")).unwrap();
    assert_eq!(p.server_version, "8.0.22");
    assert_eq!(count(&p.top, types::PARTIAL_UPDATE_ROWS), 1);
    assert_eq!(count(&p.top, types::WRITE_ROWS), 4);
    assert_eq!(count(&p.top, types::UPDATE_ROWS), 1);
    assert_eq!(p.rows.last(), Some(&(RowsKind::Update, 6)));
    assert_eq!(p.previous, vec![GtidSet::default()]);
}

#[test]
fn transaction_compression() {
    let p = parse_file(&format!("{RMC}/transaction_compression.000001")).unwrap();
    assert_eq!(p.server_version, "8.0.32");
    assert_eq!(
        p.previous[0].to_string(),
        "357df524-4139-11ee-9979-b033ee13919e:1"
    );
    // Exactly QUERY, TABLE_MAP, WRITE_ROWS, XID, and then it ends.
    assert_eq!(
        p.payloads,
        vec![vec![
            types::QUERY,
            types::TABLE_MAP,
            types::WRITE_ROWS,
            types::XID
        ]]
    );
    assert_eq!(p.payload_headers[0].uncompressed_size, 179);
    assert_eq!(p.payload_headers[0].compression, payload::COMPRESSION_ZSTD);
    assert_eq!(p.tables[0].database, "test");
    assert_eq!(p.tables[0].table, "tb1");
    assert_eq!(p.top.last(), Some(&types::ROTATE));
}

#[test]
fn json_opaque() {
    let p = parse_file(&format!("{RMC}/json-opaque.binlog")).unwrap();
    assert_eq!(p.server_version, "9.0.1");
    assert_eq!(p.rows.len(), 8);
    assert!(p
        .queries
        .iter()
        .any(|q| q.contains("create table test (a json)")));
}

#[test]
fn vector() {
    let p = parse_file(&format!("{RMC}/vector.binlog")).unwrap();
    assert_eq!(p.server_version, "9.0.1");
    assert_eq!(count(&p.top, types::TABLE_MAP), 6);
    assert_eq!(count(&p.top, types::WRITE_ROWS), 5);
    assert_eq!(count(&p.top, types::DELETE_ROWS), 1);
    let dims = |name: &str| {
        p.tables
            .iter()
            .find(|t| t.table == name)
            .map(|t| t.metadata.vector_dimensions.clone())
    };
    assert_eq!(dims("foo"), Some(vec![3]));
    assert_eq!(dims("bar"), Some(vec![2, 4]));
    assert_eq!(p.rows[0], (RowsKind::Insert, 2));
}

#[test]
fn invisible_columns() {
    let p = parse_file(&format!("{RMC}/binlog-invisible-columns.000001")).unwrap();
    assert_eq!(p.server_version, "8.0.26");
    let want: Vec<String> = (1..=5)
        .map(|n| format!("97c7af02-4c50-11ec-acd8-681842034964:{n}"))
        .collect();
    assert_eq!(p.gtids, want);
    assert_eq!(count(&p.top, types::TABLE_MAP), 3);
    let t1 = p.tables.iter().find(|t| t.table == "t1").unwrap();
    assert_eq!(
        t1.metadata.visible,
        vec![false, false, true, true, true, false]
    );
}

#[test]
fn enum_string_set() {
    let p = parse_file(&format!("{RMC}/mysql-enum-string-set.000001")).unwrap();
    assert_eq!(p.server_version, "8.0.28");
    assert_eq!(p.gtids.len(), 5);
    assert!(p.gtids[0].starts_with("93e95066-a2f4-11ec-9b69-9657f0ae95e2:"));
    let kinds: Vec<RowsKind> = p.rows.iter().map(|r| r.0).collect();
    assert_eq!(
        kinds,
        vec![RowsKind::Insert, RowsKind::Update, RowsKind::Delete]
    );
}

#[test]
fn type_bit() {
    let p = parse_file(&format!("{RMC}/mysql_type_bit.000001")).unwrap();
    assert_eq!(p.server_version, "8.0.26");
    assert_eq!(p.gtids.len(), 3);
    assert_eq!(p.rows, vec![(RowsKind::Insert, 1)]);
}

#[test]
fn time_issue() {
    let p = parse_file(&format!("{RMC}/time_issue.000001")).unwrap();
    assert_eq!(p.server_version, "8.0.40");
    assert_eq!(p.rows, vec![(RowsKind::Insert, 1)]);
}

#[test]
fn minimal_row_metadata() {
    let p = parse_file(&format!("{RMC}/minimal_row_metadata.000001")).unwrap();
    assert_eq!(p.server_version, "8.0.40");
    // Column 2 (CHAR) has collation utf8mb4_0900_ai_ci.
    assert_eq!(p.tables[0].metadata.collation[2], Some(255));
    assert_eq!(p.rows, vec![(RowsKind::Insert, 1)]);
}

#[test]
fn tagged_gtid() {
    let p = parse_file(&format!("{RMC}/binlog_transaction_with_GTID_TAG.000001")).unwrap();
    assert_eq!(p.server_version, "9.6.0");
    // Two entries: untagged [1,14) and tag mytag [1,3).
    let prev = &p.previous[0];
    type Entry = (String, String, Vec<(u64, u64)>);
    let entries: Vec<Entry> = prev
        .entries()
        .map(|(u, t, iv)| (u.to_string(), t.to_string(), iv.to_vec()))
        .collect();
    let uuid = "55778904-0299-11f1-b1b8-4ef0c4956feb".to_string();
    assert_eq!(
        entries,
        vec![
            (uuid.clone(), String::new(), vec![(1, 14)]),
            (uuid.clone(), "mytag".into(), vec![(1, 3)]),
        ]
    );
    assert_eq!(prev.to_string(), format!("{uuid}:1-13:mytag:1-2"));
    assert_eq!(p.gtids, vec![format!("{uuid}:mytag:3")]);
    assert!(p.top.contains(&types::MYSQL_GTID_TAGGED));
}

#[test]
fn previous_gtids_untagged() {
    let p = parse_file(&format!(
        "{RMC}/binlog_transaction_previous_GTID_no_tag.000001"
    ))
    .unwrap();
    assert_eq!(p.server_version, "8.0.40");
    assert_eq!(
        p.previous[0].to_string(),
        "b9b88c66-0755-11f1-9899-4a9da94c4d71:1-2"
    );
    assert_eq!(
        p.top,
        vec![
            types::FORMAT_DESCRIPTION,
            types::MYSQL_PREVIOUS_GTIDS,
            types::ROTATE
        ]
    );
}

#[test]
fn mariadb() {
    let p = parse_file(&format!("{RMC}/mariadb-bin.000001")).unwrap();
    assert!(
        p.server_version.contains("10.5.15-MariaDB"),
        "{}",
        p.server_version
    );
    assert_eq!(count(&p.top, types::WRITE_ROWS_V1), 2);
    let t = &p.tables[0];
    assert_eq!(
        (t.database.as_str(), t.table.as_str()),
        ("toddy_test", "outbox")
    );
    assert_eq!(
        t.metadata.names,
        ["id", "topic", "event_type", "event", "created"]
    );
    assert_eq!(t.metadata.primary_key, vec![0]);
    assert!(p.row_queries[0].starts_with("insert into outbox (topic, event_type, event)"));
}

#[test]
fn connector_rust_8_0_31_compressed_with_rows_query() {
    let p = parse_file("mysql-binlog-connector-rust/mysql-bin.000057").unwrap();
    assert_eq!(p.server_version, "8.0.31");
    // 8 top-level events counting the FORMAT_DESCRIPTION.
    assert_eq!(p.top.len(), 8);
    assert_eq!(count(&p.top, types::TRANSACTION_PAYLOAD), 2);
    assert_eq!(
        p.previous[0].to_string(),
        "76f3e7be-6720-11ed-9cad-0242ac110002:1-10"
    );
    let u = "76f3e7be-6720-11ed-9cad-0242ac110002";
    assert_eq!(
        p.gtids,
        vec![format!("{u}:11"), format!("{u}:12"), format!("{u}:13")]
    );
    // Header fields are length-encoded inside each field.
    let sizes: Vec<(u64, u64)> = p
        .payload_headers
        .iter()
        .map(|h| (h.payload_size, h.uncompressed_size))
        .collect();
    assert_eq!(sizes, vec![(161, 214), (516, 1255)]);
    assert_eq!(
        p.payloads[0],
        vec![
            types::QUERY,
            types::ROWS_QUERY,
            types::TABLE_MAP,
            types::WRITE_ROWS,
            types::XID
        ]
    );
    assert_eq!(p.row_queries[0], "insert into b values(1)");
    assert!(p.row_queries[1].starts_with("update test_table_3 set enum_field='large'"));
    assert!(p.row_queries[2].starts_with("insert into test_table_3 values(6666,"));
    assert_eq!(
        p.tables
            .iter()
            .filter(|t| t.table == "test_table_3")
            .count(),
        2
    );
    assert_eq!(
        p.tables
            .iter()
            .find(|t| t.table == "test_table_3")
            .unwrap()
            .columns
            .len(),
        20
    );
}

#[test]
fn connector_rust_5_7_40() {
    let p = parse_file("mysql-binlog-connector-rust/mysql-bin.000080").unwrap();
    assert_eq!(p.server_version, "5.7.40-log");
    assert_eq!(p.top.len(), 37);
    assert_eq!(
        p.previous[0].to_string(),
        "58cf6502-63db-11ed-8079-0242ac110002:1-52"
    );
    let want: Vec<String> = (53..=62)
        .map(|n| format!("58cf6502-63db-11ed-8079-0242ac110002:{n}"))
        .collect();
    assert_eq!(p.gtids, want);
    assert_eq!(count(&p.top, types::DELETE_ROWS), 2);
    assert_eq!(count(&p.top, types::WRITE_ROWS), 3);
    assert_eq!(count(&p.top, types::XID), 5);
}

#[test]
fn percona_5_7_24() {
    let p = parse_file("rust-mysql-binlog/bin-log.000001").unwrap();
    assert_eq!(p.server_version, "5.7.24-27-log");
    let u = "87cee3a4-6b31-11e7-bdfd-0d98d6698870";
    assert_eq!(p.previous[0].to_string(), format!("{u}:1-14916"));
    assert_eq!(
        p.gtids,
        vec![
            format!("{u}:14917"),
            format!("{u}:14918"),
            format!("{u}:14919")
        ]
    );
    assert_eq!(
        p.queries[0],
        "CREATE TABLE foo(id BIGINT AUTO_INCREMENT PRIMARY KEY, val_decimal DECIMAL(10, 5) NOT NULL, comment VARCHAR(255) NOT NULL)"
    );
    assert_eq!(p.rows, vec![(RowsKind::Insert, 1), (RowsKind::Insert, 1)]);
}

/// The MySQL test-suite files (GPL-2.0): parse-only.
#[test]
fn mysql_test_suite_files_parse() {
    for (name, version, rows) in [
        ("rpl_unfiltered_hidden_gcol.000001", "8.0.17-debug", 1usize),
        ("master-bin.000001", "8.0.2-dmr-debug-log-asan", 0),
        ("bug27213339-bin.000001", "5.7.22-debug-log", 0),
        (
            "rpl_cross_version_default_utf8mb4_collation.000001",
            "5.7.22-debug-log",
            0,
        ),
        ("rpl_atomic_ddl_rollback_full.000001", "5.7.22-debug-log", 0),
        (
            "rpl_atomic_ddl_rollback_table.000001",
            "5.7.22-debug-log",
            0,
        ),
        ("rpl_atomic_ddl_rollback_view.000001", "5.7.22-debug-log", 0),
        ("slave-relay-bin.000001", "5.7.25-debug-log", 0),
        (
            "binlog_transaction_with_anonymous_GTID.000001",
            "5.7.6-m16-debug-log",
            0,
        ),
        ("bug32407.001", "5.7.1-m11-log", 1),
    ] {
        let p = parse_file(&format!("{STD}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p.server_version, version, "{name}");
        assert_eq!(p.rows.len(), rows, "{name}");
    }
    // The relay log: a second FORMAT_DESCRIPTION (the source's) after the
    // relay log's own, each followed by a ROTATE.
    let relay = parse_file(&format!("{STD}/rpl_unfiltered_hidden_gcol.000001")).unwrap();
    assert_eq!(count(&relay.top, types::FORMAT_DESCRIPTION), 2);
    assert_eq!(
        relay.tables[0].columns.len(),
        3,
        "the hidden generated column is logged"
    );
    let ddl = parse_file(&format!("{STD}/bug27213339-bin.000001")).unwrap();
    assert_eq!(count(&ddl.top, types::MYSQL_ANONYMOUS_GTID), 46);
}

#[test]
fn truncated_tail_is_an_error_naming_file_and_offset() {
    let rel = format!("{STD}/binlog_truncated_prev_gtid_event.000001");
    let mut f = BinlogFile::open(corpus(&rel)).unwrap();
    let evs: Vec<Result<Event, FileError>> = f.by_ref().collect();
    assert_eq!(evs.len(), 3, "ROTATE, FORMAT_DESCRIPTION, error");
    let err = evs[2].as_ref().unwrap_err();
    // 129 bytes: magic, a 116-byte FDE, then 9 bytes of a header.
    assert!(
        matches!(err, FileError::Truncated { offset: 120, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("binlog_truncated_prev_gtid_event.000001"),
        "{text}"
    );
    assert!(text.contains("offset 120"), "{text}");
}
