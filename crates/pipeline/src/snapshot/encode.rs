//! Maxwell's `bootstrap-start`, `bootstrap-insert` and `bootstrap-complete`
//! lines (spec §2.4, `RowMap.toJSON`): `database`, `table`, `type`, `ts`
//! (wall-clock seconds when built), `_push_timestamp`, `comment` (when the
//! task has one), `primary_key`, `primary_key_columns`, `data`. No `xid`,
//! `commit`, `position`, `gtid`, `server_id`, `thread_id` or `query`: the
//! rows come from a query, not from a binlog transaction.

use sluice_schema::Table;

use crate::encode::OutputConfig;
use crate::encrypt::{EncryptError, EncryptMode, Encryptor};
use crate::json;

use super::values::{ColumnPlan, SnapValue};

/// How one chunk's rows become lines: the table as the stream's schema has
/// it at the high watermark, matched against the columns the query read.
pub struct TablePlan {
    pub database: String,
    pub table: String,
    columns: Vec<ColumnPlan>,
    /// Indices (in the row) of the primary key, and its names.
    primary_key: Vec<usize>,
    pub primary_key_names: Vec<String>,
    /// Indices of `producer_partition_columns` (`None`: no such column).
    partition: Vec<Option<usize>>,
    /// Indices of the columns the chunk is keyed by.
    chunk_key: Vec<usize>,
}

fn position_of(columns: &[ColumnPlan], name: &str) -> Option<usize> {
    columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
}

impl TablePlan {
    /// `selected`: the columns the chunk query read, in order. They must be
    /// the table's columns at the high watermark; otherwise the table changed
    /// between the query and the watermark and the chunk must be read again.
    pub fn new(
        table: &Table,
        selected: &[String],
        chunk_key: &[String],
        cfg: &OutputConfig,
    ) -> Result<TablePlan, String> {
        let same = table.columns.len() == selected.len()
            && table
                .columns
                .iter()
                .zip(selected)
                .all(|(c, s)| c.name.eq_ignore_ascii_case(s));
        if !same {
            return Err(format!(
                "the columns of {}.{} changed between the chunk query and its high watermark",
                table.database, table.name
            ));
        }
        let columns: Vec<ColumnPlan> = table
            .columns
            .iter()
            .map(|c| {
                let mut plan =
                    ColumnPlan::new(c, cfg.exclude_columns.iter().any(|p| p.matches(&c.name)));
                // Data keys as binlog rows show them (output_naming_strategy).
                plan.key = json::key(&cfg.naming.apply(&c.name));
                plan
            })
            .collect();
        let primary_key: Vec<usize> = table
            .primary_key
            .iter()
            .filter_map(|k| position_of(&columns, k))
            .collect();
        let chunk_key = chunk_key
            .iter()
            .map(|k| {
                position_of(&columns, k).ok_or_else(|| {
                    format!(
                        "{}.{} has no column {k} any more",
                        table.database, table.name
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TablePlan {
            database: table.database.clone(),
            table: table.name.clone(),
            primary_key_names: primary_key
                .iter()
                .map(|&i| columns[i].name.clone())
                .collect(),
            partition: cfg
                .partition_columns
                .iter()
                .map(|p| position_of(&columns, p))
                .collect(),
            primary_key,
            columns,
            chunk_key,
        })
    }

    /// The chunk key of `row` as the binlog path renders it (a JSON array),
    /// for comparing with the keys the binlog changed.
    pub fn chunk_key(
        &self,
        row: &[SnapValue],
        null_zero_dates: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.clear();
        out.push(b'[');
        for (k, &i) in self.chunk_key.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            let v = row.get(i).ok_or("row shorter than its columns")?;
            self.columns[i].render_key(out, v, null_zero_dates)?;
        }
        out.push(b']');
        Ok(())
    }
}

/// The line being built and the routing values of the last row.
#[derive(Default)]
pub struct LineWriter {
    pub line: Vec<u8>,
    /// `[pk values]` of the last row (for keyed producers); empty if none.
    pub pk: Vec<u8>,
    /// `[partition column values]`, empty unless asked for.
    pub partition_values: Vec<u8>,
    crypt: Vec<u8>,
    /// `ts` of the lines: taken once per chunk ([`LineWriter::stamp`]),
    /// not per row.
    ts: u64,
    /// The schema history's id in force, shown on `bootstrap-insert` rows
    /// with `output_schema_id` (as in Maxwell; markers never show it).
    pub schema_id: Option<u64>,
}

/// What the start and complete events say about the table.
pub struct Marker<'a> {
    pub database: &'a str,
    pub table: &'a str,
    pub comment: Option<&'a str>,
    /// `bootstrap-start` carries the primary key columns (with null values),
    /// `bootstrap-complete` none (as in Maxwell).
    pub primary_key: &'a [String],
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl LineWriter {
    /// Takes the wall-clock time the next lines show as `ts`.
    pub fn stamp(&mut self) {
        self.ts = now_secs();
    }

    /// Everything before `primary_key`: names, type, ts, push time, comment.
    fn head(
        &mut self,
        cfg: &OutputConfig,
        database: &str,
        table: &str,
        kind: &str,
        comment: Option<&str>,
    ) {
        let schema_id = (kind == "bootstrap-insert" && cfg.schema_id).then_some(self.schema_id);
        let l = &mut self.line;
        l.clear();
        l.extend_from_slice(b"{\"database\":");
        json::write_str(l, database);
        l.extend_from_slice(b",\"table\":");
        json::write_str(l, table);
        l.extend_from_slice(b",\"type\":\"");
        l.extend_from_slice(kind.as_bytes());
        l.extend_from_slice(b"\",\"ts\":");
        json::write_int(l, self.ts);
        if let Some(id) = schema_id {
            cfg.write_schema_id(l, id);
        }
        if cfg.push_timestamp {
            cfg.write_push_timestamp(l);
        }
        if let Some(c) = comment {
            l.extend_from_slice(b",\"comment\":");
            json::write_str(l, c);
        }
    }

    /// Encrypts as `encrypt` says, from `data_at` (where `,"data":` starts).
    fn finish(&mut self, enc: Option<&Encryptor>, data_at: usize) -> Result<(), EncryptError> {
        match enc {
            Some(e) if e.mode() == EncryptMode::Data => {
                crate::encode::encrypt_data_part(e, &mut self.line, data_at, &mut self.crypt)
            }
            Some(e) if e.mode() == EncryptMode::All => {
                crate::encode::encrypt_line(e, &self.line, &mut self.crypt)?;
                std::mem::swap(&mut self.line, &mut self.crypt);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// `bootstrap-start` or `bootstrap-complete` (`kind`).
    pub fn marker(
        &mut self,
        cfg: &OutputConfig,
        kind: &str,
        m: &Marker<'_>,
        enc: Option<&Encryptor>,
    ) -> Result<(), EncryptError> {
        self.head(cfg, m.database, m.table, kind, m.comment);
        let l = &mut self.line;
        if cfg.primary_keys {
            l.extend_from_slice(cfg.primary_key_field());
            for k in 0..m.primary_key.len() {
                l.extend_from_slice(if k > 0 { b",null" } else { b"null" });
            }
            l.push(b']');
        }
        if cfg.primary_key_columns {
            cfg.write_primary_key_columns(l, m.primary_key.iter().map(String::as_str));
        }
        let data_at = l.len();
        l.extend_from_slice(b",\"data\":{}}");
        self.pk.clear();
        self.partition_values.clear();
        self.finish(enc, data_at)
    }

    /// One `bootstrap-insert`; `Err((column, problem))` for a value that
    /// cannot be rendered.
    pub fn row(
        &mut self,
        cfg: &OutputConfig,
        plan: &TablePlan,
        comment: Option<&str>,
        row: &[SnapValue],
        enc: Option<&Encryptor>,
    ) -> Result<(), (String, String)> {
        if row.len() != plan.columns.len() {
            return Err((
                String::new(),
                format!(
                    "row of {} values for {} columns",
                    row.len(),
                    plan.columns.len()
                ),
            ));
        }
        self.head(
            cfg,
            &plan.database,
            &plan.table,
            "bootstrap-insert",
            comment,
        );
        let nzd = cfg.null_zero_dates;
        let value = |i: usize, out: &mut Vec<u8>| -> Result<(), (String, String)> {
            plan.columns[i]
                .render(out, &row[i], nzd)
                .map_err(|m| (plan.columns[i].name.clone(), m))
        };
        self.pk.clear();
        self.partition_values.clear();
        if cfg.routing {
            self.pk.push(b'[');
            for (k, &i) in plan.primary_key.iter().enumerate() {
                if k > 0 {
                    self.pk.push(b',');
                }
                value(i, &mut self.pk)?;
            }
            self.pk.push(b']');
            if !plan.partition.is_empty() {
                self.partition_values.push(b'[');
                for (k, i) in plan.partition.iter().enumerate() {
                    if k > 0 {
                        self.partition_values.push(b',');
                    }
                    match i {
                        Some(i) => value(*i, &mut self.partition_values)?,
                        None => self.partition_values.extend_from_slice(b"null"),
                    }
                }
                self.partition_values.push(b']');
            }
        }
        let l = &mut self.line;
        if cfg.primary_keys {
            l.extend_from_slice(cfg.primary_key_field());
            for (k, &i) in plan.primary_key.iter().enumerate() {
                if k > 0 {
                    l.push(b',');
                }
                value(i, l)?;
            }
            l.push(b']');
        }
        if cfg.primary_key_columns {
            let names = plan.primary_key_names.iter().map(String::as_str);
            cfg.write_primary_key_columns(l, names);
        }
        let data_at = l.len();
        l.extend_from_slice(b",\"data\":{");
        let mut first = true;
        for (i, c) in plan.columns.iter().enumerate() {
            if c.excluded {
                continue;
            }
            let mark = l.len();
            if !first {
                l.push(b',');
            }
            l.extend_from_slice(&c.key);
            let value_at = l.len();
            value(i, l)?;
            // A zero date rendered as null is a null too (output_nulls).
            if !cfg.nulls && &l[value_at..] == b"null" {
                l.truncate(mark);
                continue;
            }
            first = false;
        }
        l.extend_from_slice(b"}}");
        self.finish(enc, data_at)
            .map_err(|e| (String::new(), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::tests::column as col;

    fn minimal() -> Table {
        Table {
            database: "shard_1".into(),
            name: "minimal".into(),
            charset: None,
            columns: vec![
                col("id", "bigint"),
                col("account_id", "int"),
                col("text_field", "varchar"),
            ],
            primary_key: vec!["id".into(), "text_field".into()],
        }
    }

    fn names(t: &Table) -> Vec<String> {
        t.columns.iter().map(|c| c.name.clone()).collect()
    }

    fn without_ts(line: &[u8]) -> String {
        let s = String::from_utf8(line.to_vec()).unwrap();
        let at = s.find(",\"ts\":").unwrap();
        let end = at + 6 + s[at + 6..].find(|c: char| !c.is_ascii_digit()).unwrap();
        format!("{}{}", &s[..at], &s[end..])
    }

    #[test]
    fn insert_in_maxwell_field_order() {
        let t = minimal();
        let cfg = OutputConfig {
            primary_keys: true,
            primary_key_columns: true,
            ..Default::default()
        };
        let plan = TablePlan::new(&t, &names(&t), &["id".into()], &cfg).unwrap();
        let mut w = LineWriter::default();
        w.stamp();
        let row = [
            SnapValue::Int(1),
            SnapValue::Int(1),
            SnapValue::Bytes(b"hello".to_vec()),
        ];
        w.row(&cfg, &plan, Some("some text"), &row, None).unwrap();
        assert_eq!(
            without_ts(&w.line),
            r#"{"database":"shard_1","table":"minimal","type":"bootstrap-insert","comment":"some text","primary_key":[1,"hello"],"primary_key_columns":["id","text_field"],"data":{"id":1,"account_id":1,"text_field":"hello"}}"#
        );
        let v: serde_json::Value = serde_json::from_slice(&w.line).unwrap();
        assert!(
            v["ts"].as_u64().unwrap() > 1_600_000_000,
            "wall-clock seconds"
        );
    }

    #[test]
    fn names_follow_output_naming_strategy_as_binlog_rows_do() {
        let t = minimal();
        let cfg = OutputConfig {
            primary_keys: true,
            primary_key_columns: true,
            push_timestamp: true,
            naming: crate::encode::Naming::UnderscoreToCamelCase,
            ..Default::default()
        };
        let plan = TablePlan::new(&t, &names(&t), &["id".into()], &cfg).unwrap();
        let mut w = LineWriter::default();
        let row = [
            SnapValue::Int(1),
            SnapValue::Int(7),
            SnapValue::Bytes(b"x".to_vec()),
        ];
        w.row(&cfg, &plan, None, &row, None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&w.line).unwrap();
        assert_eq!(v["primaryKey"], serde_json::json!([1, "x"]), "{v}");
        assert_eq!(
            v["primaryKeyColumns"],
            serde_json::json!(["id", "text_field"])
        );
        assert_eq!(
            v["data"],
            serde_json::json!({"id": 1, "accountId": 7, "textField": "x"})
        );
        assert!(v["PushTimestamp"].as_f64().unwrap() > 1.6e9, "{v}");
        let marker = Marker {
            database: "shard_1",
            table: "minimal",
            comment: None,
            primary_key: &plan.primary_key_names,
        };
        w.marker(&cfg, "bootstrap-start", &marker, None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&w.line).unwrap();
        assert_eq!(v["primaryKey"], serde_json::json!([null, null]), "{v}");
        assert_eq!(
            v["primaryKeyColumns"],
            serde_json::json!(["id", "text_field"])
        );
    }

    #[test]
    fn schema_id_on_bootstrap_inserts_only_with_output_schema_id() {
        let t = minimal();
        let mut cfg = OutputConfig {
            schema_id: true,
            push_timestamp: true,
            ..Default::default()
        };
        let plan = TablePlan::new(&t, &names(&t), &["id".into()], &cfg).unwrap();
        let mut w = LineWriter {
            schema_id: Some(42),
            ..Default::default()
        };
        let row = [SnapValue::Int(1), SnapValue::Int(7), SnapValue::Null];
        w.row(&cfg, &plan, Some("c"), &row, None).unwrap();
        let line = String::from_utf8(w.line.clone()).unwrap();
        assert!(
            line.contains(r#""type":"bootstrap-insert","ts":"#)
                && line.contains(r#","schema_id":42,"_push_timestamp":"#),
            "{line}"
        );
        let marker = Marker {
            database: "shard_1",
            table: "minimal",
            comment: None,
            primary_key: &[],
        };
        w.marker(&cfg, "bootstrap-start", &marker, None).unwrap();
        assert!(!String::from_utf8_lossy(&w.line).contains("schema_id"));
        cfg.schema_id = false;
        w.row(&cfg, &plan, None, &row, None).unwrap();
        assert!(!String::from_utf8_lossy(&w.line).contains("schema_id"));
    }

    #[test]
    fn nulls_and_excluded_columns_follow_the_output_options() {
        let t = minimal();
        let cfg = OutputConfig {
            nulls: false,
            exclude_columns: vec![crate::ColumnPattern::parse("account_id").unwrap()],
            ..Default::default()
        };
        let plan = TablePlan::new(&t, &names(&t), &["id".into()], &cfg).unwrap();
        let mut w = LineWriter::default();
        let row = [SnapValue::Int(1), SnapValue::Int(7), SnapValue::Null];
        w.row(&cfg, &plan, None, &row, None).unwrap();
        assert_eq!(
            without_ts(&w.line),
            r#"{"database":"shard_1","table":"minimal","type":"bootstrap-insert","data":{"id":1}}"#
        );
    }

    #[test]
    fn start_and_complete_markers() {
        let cfg = OutputConfig {
            primary_keys: true,
            ..Default::default()
        };
        let mut w = LineWriter::default();
        let pk = ["id".to_string()];
        let m = Marker {
            database: "shard_1",
            table: "minimal",
            comment: None,
            primary_key: &pk,
        };
        w.marker(&cfg, "bootstrap-start", &m, None).unwrap();
        assert_eq!(
            without_ts(&w.line),
            r#"{"database":"shard_1","table":"minimal","type":"bootstrap-start","primary_key":[null],"data":{}}"#
        );
        let m = Marker {
            primary_key: &[],
            ..m
        };
        w.marker(&cfg, "bootstrap-complete", &m, None).unwrap();
        assert_eq!(
            without_ts(&w.line),
            r#"{"database":"shard_1","table":"minimal","type":"bootstrap-complete","primary_key":[],"data":{}}"#
        );
    }

    #[test]
    fn changed_columns_reject_the_chunk() {
        let t = minimal();
        let cfg = OutputConfig::default();
        let e = TablePlan::new(
            &t,
            &["id".into(), "account_id".into()],
            &["id".into()],
            &cfg,
        )
        .err()
        .unwrap();
        assert!(e.contains("changed"), "{e}");
    }

    #[test]
    fn chunk_keys_render_like_binlog_keys() {
        let t = minimal();
        let cfg = OutputConfig::default();
        let plan =
            TablePlan::new(&t, &names(&t), &["id".into(), "text_field".into()], &cfg).unwrap();
        let mut k = Vec::new();
        plan.chunk_key(
            &[
                SnapValue::Int(5),
                SnapValue::Int(1),
                SnapValue::Bytes(b"x".to_vec()),
            ],
            false,
            &mut k,
        )
        .unwrap();
        assert_eq!(k, br#"[5,"x"]"#);
    }

    #[test]
    fn encrypt_data_hides_the_row() {
        let t = minimal();
        let cfg = OutputConfig::default();
        let plan = TablePlan::new(&t, &names(&t), &["id".into()], &cfg).unwrap();
        let enc = Encryptor::from_options("data", Some("aaaaaaaaaaaaaaaa"))
            .unwrap()
            .unwrap();
        let mut w = LineWriter::default();
        let row = [
            SnapValue::Int(1),
            SnapValue::Int(1),
            SnapValue::Bytes(b"secret".to_vec()),
        ];
        w.row(&cfg, &plan, None, &row, Some(&enc)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&w.line).unwrap();
        assert!(
            v.get("data").is_none() && v["encrypted"]["bytes"].is_string(),
            "{v}"
        );
        assert_eq!(v["type"], "bootstrap-insert");
    }
}
