//! One test per file of the MySQL binlog corpus (`testdata/mysql-binlogs`,
//! origins and expected values in its READMEs): the file reader feeds the
//! processor, every event is handled, and the rows come out as Maxwell
//! renders them. Where a file lacks the CREATE TABLE of a table it writes,
//! the schema below is written from its README (column names invented
//! where the file does not log them).

mod common;

use common::*;
use serde_json::{json, Value};
use sluice_binlog::event::{types, Event};
use sluice_binlog::file::BinlogFile;
use sluice_binlog::rows::{read_row_image, read_shared_image, RowsHeader, TableMap};
use sluice_pipeline::OutputConfig;
use sluice_schema::ddl::Flavor;

const RMC: &str = "rust_mysql_common/binlogs";
const STD: &str = "rust_mysql_common/mysql-test-std_data";

fn with_gtids() -> OutputConfig {
    OutputConfig {
        gtid_position: true,
        ..OutputConfig::default()
    }
}

/// Runs a file that must decode completely; returns the run.
fn clean(rel: &str, schema: &str) -> Run {
    let flavor = if rel.contains("mariadb") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    };
    let r = run_file(rel, schema, flavor, with_gtids());
    assert_eq!(r.error, None, "{rel}");
    r
}

fn data(r: &Run) -> Vec<Value> {
    r.rows.iter().map(|x| x["data"].clone()).collect()
}

#[test]
fn json_binlog_rows_and_the_partial_update_needing_its_document() {
    let r = run_file(
        &format!("{RMC}/json.binlog.000001"),
        "",
        Flavor::MySql,
        with_gtids(),
    );
    // Inserts and the full update decode; the table (with virtual
    // generated columns) comes from the file's own CREATE TABLE.
    let d = data(&r);
    assert_eq!(d.len(), 12);
    assert_eq!(
        d[0],
        json!({"id":1,"json_col":{"age":24,"data":"xxxxxxxxxx","name":"Joe"},"name":"Joe","age":24})
    );
    assert_eq!(
        d[5]["json_col"],
        json!({"age":40,"data":"zzzzzzzzzz","name":"Pete"})
    );
    assert_eq!(
        r.rows[6]["old"],
        json!({"age":24,"json_col":{"age":24,"data":"xxxxxxxxxx","name":"Joe"}})
    );
    assert_eq!(d[11]["age"], json!(41));
    // The partial update's before image is `id` only (binlog_row_image=
    // MINIMAL): the diff has no document to apply to, and sluice says so
    // instead of emitting a row without its new document.
    let err = r.error.expect("the partial update stops the stream");
    assert!(
        err.contains("mysql.t.json_col") && err.contains(":3750"),
        "{err}"
    );
    assert!(err.contains("binlog_row_image=FULL"), "{err}");
}

/// The same partial update with the before image the server logs under
/// binlog_row_image=FULL (spliced in from the previous update's after
/// images): `data` holds the full new document.
#[test]
fn json_binlog_partial_update_with_a_full_before_image() {
    let events: Vec<Event> = BinlogFile::open(corpus(&format!("{RMC}/json.binlog.000001")))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let map = events
        .iter()
        .rev()
        .find(|e| e.header.event_type == types::TABLE_MAP)
        .unwrap();
    let tm = TableMap::parse(&map.body).unwrap();
    let update = events
        .iter()
        .find(|e| e.header.event_type == types::UPDATE_ROWS)
        .unwrap();
    let partial_at = events
        .iter()
        .position(|e| e.header.event_type == types::PARTIAL_UPDATE_ROWS)
        .unwrap();
    let partial = &events[partial_at];
    // The after images of the full update, one per row (ids 1 to 6).
    let uh = RowsHeader::parse(types::UPDATE_ROWS, &update.body).unwrap();
    let (mut cells, mut absent) = (Vec::new(), Vec::new());
    let mut afters = Vec::new();
    let mut pos = uh.rows_offset;
    while pos < update.body.len() {
        pos = read_row_image(&update.body, pos, &tm, &uh.present, &mut cells, &mut absent).unwrap();
        let at = pos;
        pos = read_row_image(
            &update.body,
            pos,
            &tm,
            &uh.present_after,
            &mut cells,
            &mut absent,
        )
        .unwrap();
        afters.push(update.body[at..pos].to_vec());
    }
    // Rebuild the partial event with all columns in its before images.
    let ph = RowsHeader::parse(types::PARTIAL_UPDATE_ROWS, &partial.body).unwrap();
    let b = &partial.body;
    let bitmap_at = ph.rows_offset - 2 * ph.present.len();
    let mut body = b[..bitmap_at].to_vec();
    body.push(0x0F);
    body.extend_from_slice(&ph.present_after);
    let mut partial_bits = Vec::new();
    let mut pos = ph.rows_offset;
    let mut row = 0;
    while pos < b.len() {
        pos = read_row_image(b, pos, &tm, &ph.present, &mut cells, &mut absent).unwrap();
        body.extend_from_slice(&afters[row]);
        let shared = pos;
        pos = read_shared_image(b, pos, &tm, &mut partial_bits).unwrap();
        assert_eq!(partial_bits, vec![false, true, false, false]);
        let after =
            read_row_image(b, pos, &tm, &ph.present_after, &mut cells, &mut absent).unwrap();
        body.extend_from_slice(&b[shared..after]);
        pos = after;
        row += 1;
    }
    let mut full = partial.clone();
    full.body = body;
    let mut evs: Vec<Event> = events[..partial_at].to_vec();
    evs.push(full);
    evs.extend_from_slice(&events[partial_at + 1..]);
    let r = run_events(
        evs.into_iter().map(Ok),
        "",
        Flavor::MySql,
        OutputConfig::default(),
    );
    assert_eq!(r.error, None);
    let last: Vec<&Value> = r.rows[12..].iter().collect();
    assert_eq!(last.len(), 6);
    assert_eq!(
        last[0]["data"],
        json!({"id":1,"json_col":{"age":26,"data":"xxxxxxxxxx","name":"Joe"},"name":"Joe","age":26})
    );
    assert_eq!(
        last[0]["old"],
        json!({"age":25,"json_col":{"age":25,"data":"xxxxxxxxxx","name":"Joe"}})
    );
    assert_eq!(
        last[1]["data"]["json_col"],
        json!({"age":34,"data":"yyyyyyyyyy","name":"Sue"})
    );
    assert_eq!(
        last[5]["data"]["json_col"],
        json!({"age":42,"data":"zzzzzzzzzz","name":"Pete"})
    );
    assert_eq!(last[0]["type"], "update");
}

#[test]
fn transaction_compression() {
    let r = clean(
        &format!("{RMC}/transaction_compression.000001"),
        "CREATE TABLE test.tb1 (id INT)",
    );
    assert_eq!(r.raw.len(), 1);
    assert_eq!(r.rows[0]["data"], json!({"id":1}));
    assert_eq!(
        (r.rows[0]["database"].as_str(), r.rows[0]["table"].as_str()),
        (Some("test"), Some("tb1"))
    );
    // The checkpoint moved to the end of the payload event (431), then the
    // ROTATE named the next file.
    assert_eq!(r.processor.checkpoint().file, "binlog.000043");
}

#[test]
fn compressed_transaction_checkpoint_is_the_payload_end() {
    let events: Vec<Event> =
        BinlogFile::open(corpus(&format!("{RMC}/transaction_compression.000001")))
            .unwrap()
            .map(Result::unwrap)
            .take_while(|e| e.header.event_type != types::ROTATE || e.header.log_pos == 0)
            .collect();
    let r = run_events(
        events.into_iter().map(Ok),
        "CREATE TABLE test.tb1 (id INT)",
        Flavor::MySql,
        with_gtids(),
    );
    assert_eq!(r.error, None);
    assert_eq!(r.processor.checkpoint().offset, 431);
    assert_eq!(r.raw.len(), 1);
}

#[test]
fn json_opaque_values_as_maxwell_renders_them() {
    let r = clean(&format!("{RMC}/json-opaque.binlog"), "");
    let a: Vec<String> = r
        .raw
        .iter()
        .map(|j| {
            let start = j.find("\"data\":{\"a\":").unwrap() + 12;
            j[start..j.len() - 2].to_string()
        })
        .collect();
    assert_eq!(
        a,
        [
            r#"{"a":"VQ=="}"#,
            r#"{"b":"2012-03-18"}"#,
            r#"{"c":"2012-03-18 11:30:45"}"#,
            r#"{"c":"87:31:46.654321"}"#,
            r#"{"d":123.456}"#,
            r#"{"e":9.00}"#,
            r#"{"e":[0,1,true,false]}"#,
            r#"{"e":null}"#,
        ]
    );
}

#[test]
fn vector_columns_are_float_arrays() {
    let r = clean(&format!("{RMC}/vector.binlog"), "");
    assert!(
        r.raw[0].contains(r#""data":{"id":1,"vector_column":[1.1,2.2,3.3]}"#),
        "{}",
        r.raw[0]
    );
    assert!(
        r.raw[1].contains(r#""data":{"id":2,"vector_column":[1.0,-1.0,0.0]}"#),
        "{}",
        r.raw[1]
    );
    assert_eq!(
        r.rows[3]["data"]["vector_column2"],
        json!([42.0, 43.0, 44.0, 45.0])
    );
    assert_eq!(
        r.rows[3]["data"]["foo"], "bar",
        "the TEXT column after a VECTOR keeps its collation"
    );
    assert_eq!(r.rows[8]["type"], "delete");
}

#[test]
fn invisible_columns_are_output() {
    let r = clean(&format!("{RMC}/binlog-invisible-columns.000001"), "");
    let d = data(&r);
    assert_eq!(
        d[0],
        json!({"f1":1,"f2":2,"f3":-3,"f4":"4","f5":"BQ==","f6":6000000000u64})
    );
    assert_eq!(
        d[1],
        json!({"f1":null,"f2":null,"f3":-33,"f4":"44","f5":"VQ==","f6":null})
    );
    assert_eq!(
        d[2],
        json!({"f1":111,"f2":222,"f3":-333,"f4":"444","f5":"VQ==","f6":null})
    );
    assert_eq!(
        r.rows[2]["old"],
        json!({"f1":null,"f2":null,"f3":-33,"f4":"44"})
    );
    let u = "97c7af02-4c50-11ec-acd8-681842034964";
    assert_eq!(r.rows[0]["gtid"], format!("{u}:3"));
    assert_eq!(
        r.processor.checkpoint().gtid.as_deref(),
        Some(format!("{u}:1-5").as_str())
    );
}

#[test]
fn enum_char_varchar_set_text() {
    let r = clean(&format!("{RMC}/mysql-enum-string-set.000001"), "");
    let digits = |n: usize| "0123456789".repeat(n.div_ceil(10))[..n].to_string();
    let d = data(&r);
    assert_eq!(d[0]["f1"], digits(100));
    assert_eq!(d[0]["f3"], "var1");
    assert_eq!(d[0]["f4"], json!(["one", "three"]));
    assert_eq!(d[0]["f5"], "0123456789");
    // The README's "300-character string": the file's length prefix says 298.
    assert_eq!(d[0]["f2"].as_str().map(str::len), Some(298));
    assert_eq!(d[1]["f1"], "field1");
    assert_eq!(d[1]["f2"], "field_2");
    assert_eq!(d[1]["f3"], "variant2");
    assert_eq!(d[1]["f4"], json!(["two", "four"]));
    assert_eq!(d[1]["f5"], d[0]["f2"]);
    assert_eq!(r.rows[1]["old"], d[0]);
    assert_eq!(r.rows[2]["type"], "delete");
    assert_eq!(d[2], d[1]);
}

#[test]
fn bits() {
    let r = clean(&format!("{RMC}/mysql_type_bit.000001"), "");
    assert_eq!(data(&r), vec![json!({"a":4,"b":"foo","c":32})]);
}

#[test]
fn negative_time_beyond_24_hours() {
    let r = clean(
        &format!("{RMC}/time_issue.000001"),
        "CREATE TABLE noria.t (t TIME)",
    );
    assert_eq!(data(&r), vec![json!({"t":"-507:48:27"})]);
}

#[test]
fn minimal_row_image() {
    let r = clean(
        &format!("{RMC}/minimal_row_metadata.000001"),
        "CREATE TABLE noria.t1 (a INT, b BLOB, c CHAR(1), d INT, e INT UNSIGNED)",
    );
    // Only columns 0, 2 and 4 are in the image; the CHAR's collation
    // (utf8mb4_0900_ai_ci, from the binlog) decodes it as text.
    assert_eq!(data(&r), vec![json!({"a":1,"c":"a","e":3230202323u64})]);
}

#[test]
fn tagged_gtid_per_row_and_in_the_checkpoint() {
    let r = clean(
        &format!("{RMC}/binlog_transaction_with_GTID_TAG.000001"),
        "CREATE TABLE test.orders (id INT, qty INT, amount DECIMAL(10,2))",
    );
    let u = "55778904-0299-11f1-b1b8-4ef0c4956feb";
    assert!(
        r.raw[0].contains(r#""data":{"id":3,"qty":100,"amount":250.00}"#),
        "{}",
        r.raw[0]
    );
    assert_eq!(r.rows[0]["gtid"], format!("{u}:mytag:3"));
    assert_eq!(
        r.processor.checkpoint().gtid.as_deref(),
        Some(format!("{u}:1-13:mytag:1-3").as_str())
    );
}

#[test]
fn untagged_previous_gtids_seed_the_checkpoint() {
    let r = clean(
        &format!("{RMC}/binlog_transaction_previous_GTID_no_tag.000001"),
        "",
    );
    assert!(r.raw.is_empty());
    assert_eq!(
        r.processor.checkpoint().gtid.as_deref(),
        Some("b9b88c66-0755-11f1-9899-4a9da94c4d71:1-2")
    );
}

#[test]
fn mariadb_full_row_metadata() {
    let r = clean(&format!("{RMC}/mariadb-bin.000001"), "");
    let d = data(&r);
    assert_eq!(
        d[0],
        json!({"id":62,"topic":"foo","event_type":"JSON","event":"eyJmb28iOjF9","created":"2022-04-20 22:18:04"})
    );
    assert_eq!(d[1]["id"], 63);
    assert_eq!(d[1]["created"], "2022-04-20 22:19:55"); // 1650493195
    assert_eq!(r.rows[0]["gtid"], "0-1-1");
}

#[test]
fn connector_rust_8_0_31_compressed_transactions() {
    let schema = "CREATE TABLE a.test_table_3 (product_id INT, product_item VARCHAR(255), d1 DATE, n1 INT, \
        description_1 TEXT, ts1 TIMESTAMP, enum_field ENUM('small','medium','big','large'), \
        set_field SET('a','b','c','d'), char_field BINARY(3), json_field JSON, product_item_2 VARCHAR(255), \
        d2 DATE, d3 DATE, n2 INT, description_3 TEXT, ts2 TIMESTAMP, d4 DATE, n3 INT, description_4 TEXT, \
        ts3 TIMESTAMP)";
    let r = clean("mysql-binlog-connector-rust/mysql-bin.000057", schema);
    let u = "76f3e7be-6720-11ed-9cad-0242ac110002";
    assert_eq!(r.rows.len(), 3);
    assert_eq!(r.rows[0]["data"], json!({"id":1}));
    assert_eq!(r.rows[0]["gtid"], format!("{u}:12"));
    let up = &r.rows[1];
    assert_eq!(up["type"], "update");
    assert_eq!(up["data"]["product_id"], 55555);
    assert_eq!(up["data"]["enum_field"], "large");
    assert_eq!(up["data"]["set_field"], json!(["c"]));
    assert_eq!(up["data"]["product_item_2"], "product_3_value");
    assert_eq!(
        up["old"],
        json!({"set_field":["d"],"product_item_2":"product_item_2_value"})
    );
    let ins = &r.rows[2]["data"];
    assert_eq!(ins["product_id"], 6666);
    assert_eq!(ins["product_item"], "product_item_value_2");
    assert_eq!(ins["d1"], "2022-11-20");
    assert_eq!(ins["ts1"], "2022-11-20 13:53:32"); // 1668952412
    assert_eq!(ins["n1"], 111);
    assert_eq!(ins["description_1"], "description_1");
    assert_eq!(ins["enum_field"], "large");
    assert_eq!(ins["set_field"], json!(["d"]));
    // The binlog logs this column with the binary collation (63), so it
    // is base64 as Maxwell renders binary strings: 'b3'.
    assert_eq!(ins["char_field"], "YjM=");
    assert_eq!(ins["json_field"], json!({"c":1}));
    assert_eq!(ins["product_item_2"], "product_item_2_value");
    assert_eq!(
        (ins["n2"].clone(), ins["n3"].clone()),
        (json!(2222), json!(222))
    );
    assert_eq!(ins["description_4"], "description_4_value");
    assert_eq!(r.rows[2]["gtid"], format!("{u}:13"));
    assert_eq!(
        r.processor.checkpoint().gtid.as_deref(),
        Some(format!("{u}:1-13").as_str())
    );
    assert_eq!(r.processor.checkpoint().offset, 1283);
    // The ROWS_QUERY events inside the compressed transactions annotate
    // their rows (output_row_query).
    let output = OutputConfig {
        row_query: true,
        ..OutputConfig::default()
    };
    let q = run_file(
        "mysql-binlog-connector-rust/mysql-bin.000057",
        schema,
        Flavor::MySql,
        output,
    );
    assert_eq!(q.error, None);
    assert_eq!(q.rows[0]["query"], "insert into b values(1)");
    assert!(q.rows[1]["query"]
        .as_str()
        .unwrap()
        .starts_with("update test_table_3 set enum_field='large'"));
    assert!(q.rows[2]["query"]
        .as_str()
        .unwrap()
        .starts_with("insert into test_table_3 values(6666,"));
}

#[test]
fn connector_rust_5_7_40() {
    let r = clean(
        "mysql-binlog-connector-rust/mysql-bin.000080",
        "CREATE TABLE a.b (id INT)",
    );
    let kinds: Vec<&str> = r.rows.iter().map(|x| x["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["delete", "delete", "delete", "delete", "insert", "insert", "insert"]
    );
    assert!(r.rows[..6].iter().all(|x| x["data"] == json!({"id":12})));
    assert_eq!(r.rows[6]["table"], "emoji");
    assert_eq!(r.rows[6]["data"], json!({"id":2,"value":""}));
    let u = "58cf6502-63db-11ed-8079-0242ac110002";
    assert_eq!(r.rows[0]["gtid"], format!("{u}:53"));
    assert_eq!(
        r.processor.checkpoint().gtid.as_deref(),
        Some(format!("{u}:1-62").as_str())
    );
}

#[test]
fn percona_5_7_24() {
    let r = clean("rust-mysql-binlog/bin-log.000001", "");
    let u = "87cee3a4-6b31-11e7-bdfd-0d98d6698870";
    assert!(
        r.raw[0].contains(r#""data":{"id":1,"val_decimal":0.10000,"comment":"zero point one"}"#),
        "{}",
        r.raw[0]
    );
    assert!(
        r.raw[1].contains(r#""data":{"id":2,"val_decimal":1.00000,"comment":"one point zero"}"#),
        "{}",
        r.raw[1]
    );
    assert_eq!(r.rows[0]["ts"], 1550192291);
    assert_eq!(r.rows[0]["gtid"], format!("{u}:14918"));
    assert_eq!(
        (r.rows[0]["database"].as_str(), r.rows[0]["table"].as_str()),
        (Some("bltest"), Some("foo"))
    );
}

/// The MySQL test-suite files: every event handled with the files' own
/// DDL (statement-based inserts carry no rows).
#[test]
fn mysql_test_suite_files() {
    for name in [
        "master-bin.000001",
        "bug27213339-bin.000001",
        "rpl_cross_version_default_utf8mb4_collation.000001",
        "rpl_atomic_ddl_rollback_full.000001",
        "rpl_atomic_ddl_rollback_table.000001",
        "rpl_atomic_ddl_rollback_view.000001",
        "slave-relay-bin.000001",
        "binlog_transaction_with_anonymous_GTID.000001",
    ] {
        let r = clean(&format!("{STD}/{name}"), "");
        assert!(r.raw.is_empty(), "{name}");
    }
    // A MyISAM table: rows end with COMMIT, not XID.
    let r = clean(&format!("{STD}/bug32407.001"), "");
    assert_eq!(data(&r), vec![json!({"a":1}), json!({"a":1})]);
}

/// MySQL 8.0.17 logged the hidden column of a functional index: the
/// binlog has a column the schema does not, and sluice stops rather than
/// misalign (schema drift, naming the table and position).
#[test]
fn hidden_generated_column_is_schema_drift() {
    let r = run_file(
        &format!("{STD}/rpl_unfiltered_hidden_gcol.000001"),
        "",
        Flavor::MySql,
        with_gtids(),
    );
    let err = r.error.unwrap();
    assert!(
        err.contains("schema drift") && err.contains("test.t") && err.contains("3 columns"),
        "{err}"
    );
}

#[test]
fn truncated_tail_stops_with_file_and_offset() {
    let r = run_file(
        &format!("{STD}/binlog_truncated_prev_gtid_event.000001"),
        "",
        Flavor::MySql,
        with_gtids(),
    );
    let err = r.error.unwrap();
    assert!(
        err.contains("binlog_truncated_prev_gtid_event.000001") && err.contains("offset 120"),
        "{err}"
    );
    assert_eq!(
        r.events, 2,
        "the artificial ROTATE and the FORMAT_DESCRIPTION"
    );
}

/// A stream that starts after PREVIOUS_GTIDS: seeded with the executed set
/// the checkpoint carries the whole set; unseeded, only the last GTID (it
/// cannot know the rest).
#[test]
fn mysql_gtid_set_seeded_at_a_mid_file_start() {
    let u = "87cee3a4-6b31-11e7-bdfd-0d98d6698870";
    let events: Vec<Event> = BinlogFile::open(corpus("rust-mysql-binlog/bin-log.000001"))
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| e.header.event_type != types::MYSQL_PREVIOUS_GTIDS)
        .collect();
    for seeded in [true, false] {
        let sink = Collect::default();
        let mut p = processor(
            catalog("", Flavor::MySql),
            Flavor::MySql,
            with_gtids(),
            sink.clone(),
        );
        if seeded {
            p.seed_mysql_gtids(
                sluice_binlog::mysql_gtid::GtidSet::parse(&format!("{u}:1-14916")).unwrap(),
            );
        }
        for e in &events {
            p.handle(&mut e.clone()).unwrap();
        }
        let want = if seeded {
            format!("{u}:1-14919")
        } else {
            format!("{u}:14919")
        };
        assert_eq!(
            p.checkpoint().gtid.as_deref(),
            Some(want.as_str()),
            "seeded: {seeded}"
        );
        assert_eq!(sink.0.lock().unwrap().len(), 2);
    }
}
