//! The schema sluice derives from the binlog equals what the server has.
//!
//! - `followed_schema_equals_recaptured`: 60+ DDL scenarios run on the
//!   private MariaDB; sluice follows them (`output_ddl`) and the last
//!   definition it emitted for every table (and the charset of every
//!   database) equals a fresh capture from `information_schema`, rendered
//!   the same way.
//! - `rows_decode_with_the_schema_of_their_position`: on a server that logs
//!   no column names (`binlog_row_metadata=MINIMAL`), a table is changed
//!   between inserts while sluice is stopped; after the restart every row is
//!   decoded with the columns it was written with.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use mysql_async::prelude::Queryable;
use serde_json::Value;
use sluice_pipeline::ddl_json::{render, DdlInfo};
use sluice_schema::ddl::Change;

/// `{db}` stands for the scenario's database, `{db2}` for a second one.
const SCENARIOS: &[&[&str]] = &[
    &["CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(20))"],
    &["CREATE TABLE t (a INT UNSIGNED, b BIGINT UNSIGNED ZEROFILL, c TINYINT(1), d BOOL, e SMALLINT, f MEDIUMINT UNSIGNED, g INTEGER, h INT8)"],
    &["CREATE TABLE t (a DECIMAL(10,2), b FLOAT, c DOUBLE, d REAL, e NUMERIC(5), f FLOAT(30), g DOUBLE PRECISION, h DEC, i FLOAT(7,3))"],
    &["CREATE TABLE t (a DATE, b TIME(3), c DATETIME(6), d TIMESTAMP(2) NULL, e YEAR, f DATETIME, g TIMESTAMP NULL DEFAULT NULL)"],
    &["CREATE TABLE t (a CHAR(3), b VARCHAR(255) CHARACTER SET latin1, c TEXT, d TINYTEXT, e MEDIUMTEXT, f LONGTEXT COLLATE utf8mb4_bin, g CHAR)"],
    &["CREATE TABLE t (a BINARY(4), b VARBINARY(10), c BLOB, d TINYBLOB, e MEDIUMBLOB, f LONGBLOB, g BINARY)"],
    &["CREATE TABLE t (a ENUM('x','y','z'), b SET('a','b','c') CHARACTER SET latin1, c ENUM('it''s','a\"b'))"],
    &["CREATE TABLE t (a JSON, b BIT(5), c GEOMETRY, d POINT, e BIT)"],
    &["CREATE TABLE t (a TEXT(100), b TEXT(1000), c BLOB(70000), d LONG, e LONG VARBINARY, f LONG VARCHAR)"],
    &["CREATE TABLE t (a NATIONAL CHAR(5), b NCHAR VARYING(5), c CHAR(5) BINARY, d VARCHAR(5) CHARACTER SET binary, e NVARCHAR(3), f TEXT CHARACTER SET binary)"],
    &["CREATE TABLE t (a INT) DEFAULT CHARSET=latin1", "ALTER TABLE t ADD b VARCHAR(5)"],
    &["CREATE TABLE t (a INT, b INT, PRIMARY KEY (b, a))"],
    &["CREATE TABLE t (a SERIAL, b INT)"],
    &["CREATE TABLE t (id INT)", "ALTER TABLE t ADD COLUMN x INT FIRST"],
    &["CREATE TABLE t (id INT, z INT)", "ALTER TABLE t ADD y VARCHAR(3) AFTER id"],
    &["CREATE TABLE t (id INT)", "ALTER TABLE t ADD (p INT, q VARCHAR(3), r ENUM('a'))"],
    &["CREATE TABLE t (id INT, a INT, b INT)", "ALTER TABLE t DROP COLUMN a", "ALTER TABLE t DROP b"],
    &["CREATE TABLE t (id INT, a INT)", "ALTER TABLE t MODIFY a BIGINT UNSIGNED"],
    &["CREATE TABLE t (id INT, a INT, b INT)", "ALTER TABLE t MODIFY b INT FIRST", "ALTER TABLE t MODIFY COLUMN id INT AFTER a"],
    &["CREATE TABLE t (id INT, a INT)", "ALTER TABLE t CHANGE a b VARCHAR(10) CHARACTER SET latin1"],
    &["CREATE TABLE t (id INT, a INT)", "ALTER TABLE t RENAME COLUMN a TO a2"],
    &["CREATE TABLE t (id INT NOT NULL, a INT)", "ALTER TABLE t ADD PRIMARY KEY (id)"],
    &["CREATE TABLE t (id INT PRIMARY KEY, a INT)", "ALTER TABLE t DROP PRIMARY KEY"],
    &["CREATE TABLE t (id INT PRIMARY KEY, b INT NOT NULL)", "ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (b)"],
    &["CREATE TABLE t (id INT PRIMARY KEY, a INT)", "ALTER TABLE t CHANGE id ident BIGINT NOT NULL"],
    &["CREATE TABLE t (a INT, b INT, c INT NOT NULL, PRIMARY KEY (a, b))", "ALTER TABLE t DROP PRIMARY KEY, DROP COLUMN b, ADD PRIMARY KEY (c, a)"],
    &["CREATE TABLE t (a VARCHAR(5), b TEXT, c ENUM('x')) CHARSET utf8mb4", "ALTER TABLE t CONVERT TO CHARACTER SET latin1"],
    &["CREATE TABLE t (a VARCHAR(5), b TEXT, c TINYTEXT, d MEDIUMTEXT, e INT) CHARSET latin1", "ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4"],
    &["CREATE TABLE t (a INT)", "ALTER TABLE t DEFAULT CHARACTER SET latin1", "ALTER TABLE t ADD c VARCHAR(3)"],
    &["CREATE TABLE t (a INT)", "ALTER TABLE t CHARACTER SET utf8mb3 COLLATE utf8mb3_bin, ADD b TEXT"],
    &["CREATE TABLE t (a INT)", "ALTER TABLE t RENAME TO t2"],
    &["CREATE DATABASE {db2}", "CREATE TABLE t (a INT)", "ALTER TABLE t RENAME {db2}.moved"],
    &["CREATE DATABASE {db2}", "CREATE TABLE {db2}.t (a INT)", "ALTER TABLE {db2}.t RENAME t3"],
    &["CREATE TABLE a (x INT)", "CREATE TABLE b (y VARCHAR(3))", "RENAME TABLE a TO tmp, b TO a, tmp TO b"],
    &["CREATE DATABASE {db2}", "CREATE TABLE t (a INT)", "RENAME TABLE t TO {db2}.t"],
    &["CREATE TABLE a (x INT)", "CREATE TABLE b (x INT)", "CREATE TABLE c (x INT)", "DROP TABLE a, b"],
    &["CREATE TABLE a (x INT)", "DROP TABLE IF EXISTS a, missing"],
    &["CREATE TABLE s (id INT PRIMARY KEY, e ENUM('a','b'), j JSON) CHARSET latin1", "CREATE TABLE l LIKE s", "ALTER TABLE l ADD z INT"],
    &["CREATE TABLE t (a INT)", "CREATE TABLE IF NOT EXISTS t (b VARCHAR(3))"],
    &["CREATE TABLE s (a INT, b VARCHAR(4))", "INSERT INTO s VALUES (1, 'x')", "CREATE TABLE c AS SELECT a, b, a + 1 AS c FROM s"],
    &["CREATE TABLE t (a INT)", "CREATE OR REPLACE TABLE t (b TEXT, c INT)"],
    &["CREATE TABLE t (a INT)", "CREATE TEMPORARY TABLE tmp (z INT)", "ALTER TABLE tmp ADD y INT", "DROP TEMPORARY TABLE tmp"],
    &["/*!40101 CREATE TABLE t (a INT) */", "/*!50100 ALTER TABLE t ADD b INT */"],
    &["CREATE TABLE Mixed (A INT)", "ALTER TABLE Mixed ADD b INT", "CREATE TABLE mixed (c INT)"],
    &["CREATE TABLE t (e ENUM('x','y'))", "ALTER TABLE t MODIFY e ENUM('x','y','w')"],
    &["CREATE TABLE t (a VARCHAR(5))", "ALTER TABLE t MODIFY a VARCHAR(500)"],
    &["CREATE TABLE t (a INT, b INT)", "ALTER TABLE t ADD INDEX ia (a), ADD UNIQUE KEY ub (b), ENGINE=InnoDB, COMMENT 'c'"],
    &["CREATE TABLE t (a INT, b INT)", "CREATE INDEX i ON t (a)", "DROP INDEX i ON t", "CREATE UNIQUE INDEX u ON t (b)"],
    &["CREATE TABLE t (a INT)", "ALTER TABLE t ADD COLUMN IF NOT EXISTS a INT", "ALTER TABLE t ADD COLUMN IF NOT EXISTS b INT"],
    &["CREATE TABLE t (a INT)", "ALTER TABLE t DROP COLUMN IF EXISTS nope", "ALTER TABLE t MODIFY COLUMN IF EXISTS a BIGINT"],
    &["CREATE DATABASE {db2} CHARACTER SET latin1", "CREATE TABLE {db2}.t (a VARCHAR(3), b TEXT)"],
    &["CREATE DATABASE {db2}", "ALTER DATABASE {db2} CHARACTER SET latin2", "CREATE TABLE {db2}.t (a VARCHAR(3))"],
    &["CREATE DATABASE {db2}", "CREATE TABLE {db2}.t (a INT)", "DROP DATABASE {db2}"],
    &["CREATE TABLE t (a INT, b INT AS (a + 1) VIRTUAL, c INT GENERATED ALWAYS AS (a * 2) STORED, d VARCHAR(10) AS (CONCAT(a, 'x')) PERSISTENT)"],
    &["CREATE TABLE t (a INT NOT NULL DEFAULT 5 COMMENT 'x, y', b TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, c VARCHAR(10) DEFAULT 'a,b)' CHECK (c <> ''), d DOUBLE DEFAULT -1.5e3)"],
    &["CREATE TABLE p (id INT PRIMARY KEY)", "CREATE TABLE c (id INT, pid INT, CONSTRAINT fk FOREIGN KEY (pid) REFERENCES p (id) ON DELETE CASCADE ON UPDATE SET NULL)"],
    &["CREATE TABLE t (id INT, PRIMARY KEY (id)) PARTITION BY HASH (id) PARTITIONS 4", "ALTER TABLE t ADD x INT"],
    &["CREATE TABLE `select` (`from` INT, `key` INT, `a b` VARCHAR(2))", "ALTER TABLE `select` CHANGE `a b` `c``d` INT"],
    &["CREATE TABLE t (a UUID, b INET6, c INT)"],
    &["CREATE TABLE t (a INT, b VARCHAR(5))", "ALTER TABLE t ALTER COLUMN a SET DEFAULT 3", "ALTER TABLE t ALTER b DROP DEFAULT"],
    &["CREATE TABLE t (a INT, b VARCHAR(5))", "ALTER TABLE t MODIFY b VARCHAR(5) CHARACTER SET latin1 COLLATE latin1_bin"],
    &["CREATE TABLE t (a INT)", "INSERT INTO t VALUES (1)", "TRUNCATE TABLE t"],
    &["CREATE TABLE t (a INT KEY, b INT)"],
    &["CREATE TABLE t (a INT, b INT)", "ALTER TABLE t CHANGE a A INT"],
    &["CREATE TABLE t (a INT) ENGINE=InnoDB", "ALTER TABLE t ENGINE=MyISAM", "ALTER TABLE t ENGINE=InnoDB ROW_FORMAT=DYNAMIC"],
    &["CREATE TABLE t (a INT, b INT, c INT)", "ALTER TABLE t ADD d INT, DROP b, CHANGE c cc TEXT FIRST, MODIFY a BIGINT AFTER cc"],
    &["CREATE TABLE t (a LONGTEXT CHECK (json_valid(a)), b INT)", "ALTER TABLE t ADD c JSON AFTER a"],
    &["CREATE TABLE t (a INT) /* comment */ ", "# comment only line\nALTER TABLE t ADD b INT -- trailing\n"],
    &["CREATE TABLE t (id INT PRIMARY KEY) WITH SYSTEM VERSIONING", "SET SESSION system_versioning_alter_history = KEEP", "ALTER TABLE t ADD x INT", "CREATE TABLE u (a INT)", "ALTER TABLE u ADD SYSTEM VERSIONING", "CREATE TABLE w (a INT) WITH SYSTEM VERSIONING", "ALTER TABLE w DROP SYSTEM VERSIONING"],
    &["CREATE SEQUENCE s", "CREATE TABLE t (a INT DEFAULT NEXT VALUE FOR s, b INT)", "CREATE SEQUENCE IF NOT EXISTS s2 START WITH 10 INCREMENT BY 2", "DROP SEQUENCE s2"],
    &["CREATE TABLE t (a INT)", "CREATE VIEW v AS SELECT a FROM t", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = NEW.a + 1", "DROP TRIGGER tr", "DROP VIEW v"],
];

fn expand(sql: &str, db: &str) -> String {
    sql.replace("{db2}", &format!("{db}_b")).replace("{db}", db)
}

/// Derived state: (db, table) -> def, db -> charset.
#[derive(Default)]
struct Derived {
    tables: BTreeMap<(String, String), Value>,
    dbs: BTreeMap<String, String>,
}

impl Derived {
    fn apply(&mut self, ev: &Value) {
        let s = |k: &str| ev[k].as_str().unwrap_or_default().to_string();
        match ev["type"].as_str() {
            Some("database-create") | Some("database-alter") => {
                self.dbs.insert(s("database"), s("charset"));
            }
            Some("database-drop") => {
                let db = s("database");
                self.dbs.remove(&db);
                self.tables.retain(|(d, _), _| *d != db);
            }
            Some("table-create") => {
                self.tables
                    .insert((s("database"), s("table")), ev["def"].clone());
            }
            Some("table-alter") => {
                self.tables.remove(&(s("database"), s("table")));
                let def = &ev["def"];
                let key = (
                    def["database"].as_str().unwrap_or_default().to_string(),
                    def["table"].as_str().unwrap_or_default().to_string(),
                );
                self.tables.insert(key, def.clone());
            }
            Some("table-drop") => {
                self.tables.remove(&(s("database"), s("table")));
            }
            _ => {}
        }
    }
}

fn def_json(t: &sluice_schema::Table) -> Value {
    let info = DdlInfo {
        sql: "",
        ts_ms: 0,
        position: None,
        gtid: None,
    };
    let change = Change::TableCreate {
        def: std::sync::Arc::new(t.clone()),
    };
    let (_, _, json) = render(&change, &info).expect("rendered");
    let v: Value = serde_json::from_slice(&json).expect("json");
    v["def"].clone()
}

#[test]
fn followed_schema_equals_recaptured() {
    let _gate = crate::common::module_gate(module_path!());
    assert!(SCENARIOS.len() >= 50);
    let rt = runtime();
    let prefix = format!("sf{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let child = spawn_sluice(&[
        "--producer=file",
        &format!("--output_file={}", out.display()),
        "--output_ddl",
        "--log_level=info",
    ]);
    // Streaming once a marker statement written after its start shows up.
    let mut n = 0;
    let started = wait_for(Duration::from_secs(30), || {
        n += 1;
        rt.block_on(async {
            let mut conn = root_conn().await;
            conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {prefix}ready{n}"))
                .await
                .unwrap();
        });
        std::thread::sleep(Duration::from_millis(300));
        read_lines(&out)
            .iter()
            .any(|l| l["type"] == "database-create")
    });
    assert!(started, "sluice did not start streaming");
    let dbs: Vec<String> = (0..SCENARIOS.len())
        .map(|i| format!("{prefix}_{i}"))
        .collect();
    rt.block_on(async {
        let mut conn = root_conn().await;
        for (i, sc) in SCENARIOS.iter().enumerate() {
            let db = &dbs[i];
            conn.query_drop(format!("CREATE DATABASE {db}"))
                .await
                .unwrap();
            conn.query_drop(format!("USE {db}")).await.unwrap();
            for sql in sc.iter() {
                let sql = expand(sql, db);
                conn.query_drop(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("scenario {i}: {sql}: {e}"));
            }
        }
        conn.query_drop(format!("CREATE DATABASE {prefix}done"))
            .await
            .unwrap();
    });
    let done = wait_for(Duration::from_secs(60), || {
        read_lines(&out)
            .iter()
            .any(|l| l["database"] == format!("{prefix}done"))
    });
    let output = stop(child);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(done, "sluice did not follow every statement:\n{log}");
    assert!(!log.contains("ERROR"), "sluice logged errors:\n{log}");

    let mut derived = Derived::default();
    for ev in read_lines(&out) {
        derived.apply(&ev);
    }
    let captured = rt.block_on(async {
        let mut conn = root_conn().await;
        sluice_schema::capture_catalog(&mut conn).await.unwrap()
    });
    let ours = |db: &str| db.starts_with(&format!("{prefix}_"));
    let mut failures = Vec::new();
    let mut compared = 0;
    for t in captured
        .sorted_tables()
        .into_iter()
        .filter(|t| ours(&t.database))
    {
        let want = def_json(t);
        match derived.tables.get(&(t.database.clone(), t.name.clone())) {
            Some(got) if *got == want => compared += 1,
            Some(got) => failures.push(format!(
                "{}.{}:\n  derived  {got}\n  captured {want}",
                t.database, t.name
            )),
            None => failures.push(format!("{}.{}: not derived", t.database, t.name)),
        }
    }
    for (db, t) in derived.tables.keys().filter(|(d, _)| ours(d)) {
        if captured.get(db, t).is_none() {
            failures.push(format!("{db}.{t}: derived but not on the server"));
        }
    }
    for d in captured.databases.values().filter(|d| ours(&d.name)) {
        if derived.dbs.get(&d.name) != Some(&d.charset) {
            failures.push(format!(
                "database {}: derived charset {:?}, captured {}",
                d.name,
                derived.dbs.get(&d.name),
                d.charset
            ));
        }
    }
    for db in derived.dbs.keys().filter(|d| ours(d)) {
        if captured.database(db).is_none() {
            failures.push(format!("database {db}: derived but not on the server"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared >= 60, "only {compared} tables compared");
    rt.block_on(async {
        let mut conn = root_conn().await;
        let all: Vec<String> = conn
            .query(format!("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{prefix}%'"))
            .await
            .unwrap();
        for d in all {
            conn.query_drop(format!("DROP DATABASE `{d}`")).await.unwrap();
        }
    });
}

/// A private server that logs no column names: decoding depends entirely on
/// the schema sluice restores and follows.
const MINIMAL_PORT: u16 = 23314;

fn sluice_on(
    port: u16,
    client: &str,
    server_id: &str,
    out: &std::path::Path,
) -> std::process::Child {
    std::process::Command::new(sluice_bin())
        .args(login_args(port))
        .args([
            "--producer=file",
            &format!("--output_file={}", out.display()),
            "--http_port=0",
            "--log_level=info",
            client,
            server_id,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sluice")
}

fn rows_of(out: &std::path::Path, table: &str) -> Vec<Value> {
    read_lines(out)
        .into_iter()
        .filter(|l| l["table"] == table && l["type"] == "insert")
        .map(|l| l["data"].clone())
        .collect()
}

#[test]
fn rows_decode_with_the_schema_of_their_position() {
    let _gate = crate::common::module_gate(module_path!());
    let port = ensure_extra_mariadb(MINIMAL_PORT, "row-minimal");
    let rt = runtime();
    let db = format!("rd{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let (client, server_id) = (unique_client_id(), unique_server_id());
    let sql = |stmts: Vec<String>| sql_at(&rt, port, &stmts);
    sql(vec![
        format!("CREATE DATABASE {db}"),
        format!("CREATE TABLE {db}.t (a INT, b VARCHAR(10), c INT)"),
        format!("CREATE TABLE {db}.m (n INT)"),
    ]);
    let child = sluice_on(port, &client, &server_id, &out);
    let mut n = 0;
    let streaming = wait_for(Duration::from_secs(30), || {
        n += 1;
        sql(vec![format!("INSERT INTO {db}.m VALUES ({n})")]);
        std::thread::sleep(Duration::from_millis(200));
        !rows_of(&out, "m").is_empty()
    });
    assert!(streaming, "sluice did not start streaming");
    sql(vec![format!("INSERT INTO {db}.t VALUES (1, 'one', 10)")]);
    assert!(wait_for(Duration::from_secs(10), || rows_of(&out, "t")
        .len()
        == 1));
    let first = stop(child);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    // While sluice is stopped: rows between changes that add, drop,
    // rename, reorder and retype columns.
    sql(vec![
        format!("INSERT INTO {db}.t VALUES (2, 'two', 20)"),
        format!("ALTER TABLE {db}.t ADD d INT FIRST"),
        format!("INSERT INTO {db}.t VALUES (300, 3, 'three', 30)"),
        format!("ALTER TABLE {db}.t DROP COLUMN b"),
        format!("INSERT INTO {db}.t VALUES (400, 4, 40)"),
        format!("ALTER TABLE {db}.t RENAME COLUMN a TO a2"),
        format!("INSERT INTO {db}.t VALUES (500, 5, 50)"),
        format!("ALTER TABLE {db}.t MODIFY c BIGINT FIRST"),
        format!("INSERT INTO {db}.t VALUES (60, 600, 6)"),
        format!("ALTER TABLE {db}.t CHANGE a2 b VARCHAR(10)"),
        format!("INSERT INTO {db}.t VALUES (70, 700, 'seven')"),
    ]);
    let child = sluice_on(port, &client, &server_id, &out);
    let all = wait_for(Duration::from_secs(30), || rows_of(&out, "t").len() >= 7);
    let second = stop(child);
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(all, "not every row arrived:\n{log}");
    assert!(log.contains("schema restored from the history"), "{log}");
    let want: Vec<Value> = [
        r#"{"a":1,"b":"one","c":10}"#,
        r#"{"a":2,"b":"two","c":20}"#,
        r#"{"d":300,"a":3,"b":"three","c":30}"#,
        r#"{"d":400,"a":4,"c":40}"#,
        r#"{"d":500,"a2":5,"c":50}"#,
        r#"{"c":60,"d":600,"a2":6}"#,
        r#"{"c":70,"d":700,"b":"seven"}"#,
    ]
    .iter()
    .map(|s| serde_json::from_str(s).unwrap())
    .collect();
    let got = rows_of(&out, "t");
    assert_eq!(got, want);
    // Column order too (serde_json's maps do not keep it).
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains(r#""data":{"c":60,"d":600,"a2":6}"#), "{text}");
    sql(vec![format!("DROP DATABASE {db}")]);
}
