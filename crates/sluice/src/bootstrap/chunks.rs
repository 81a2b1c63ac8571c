//! The chunk reader: which key a table is read by, and the keyset query of
//! one chunk, `SELECT … WHERE (<where_clause>) AND <key after cursor>
//! ORDER BY <key> LIMIT <chunk size>`. Each chunk is one short statement
//! (autocommit): no long-running SELECT, no long transaction, no lock
//! beyond what a plain InnoDB read takes (none). Values come through the
//! binary protocol, typed.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_pipeline::snapshot::SnapValue;
use sluice_schema::Table;

use super::cursor::{from_mysql, param};
use super::tables::quote;

/// The columns chunks are keyed by: the primary key; else the unique key of
/// NOT NULL columns with the fewest columns; else none (the table is read
/// in one pass). A unique key with a nullable column cannot order rows
/// exactly (NULLs repeat), so it does not count.
pub async fn choose_key(conn: &mut Conn, def: &Table) -> Result<Vec<String>, mysql_async::Error> {
    if !def.primary_key.is_empty() {
        return Ok(def.primary_key.clone());
    }
    let rows: Vec<(String, String, String)> = conn
        .exec(
            "SELECT s.INDEX_NAME, s.COLUMN_NAME, c.IS_NULLABLE FROM information_schema.STATISTICS s \
             JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA \
               AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME \
             WHERE s.TABLE_SCHEMA = ? AND s.TABLE_NAME = ? AND s.NON_UNIQUE = 0 \
             ORDER BY s.INDEX_NAME, s.SEQ_IN_INDEX",
            (&def.database, &def.name),
        )
        .await?;
    Ok(pick_unique_key(&rows))
}

/// (index, column, IS_NULLABLE) rows in index order → the chosen key.
fn pick_unique_key(rows: &[(String, String, String)]) -> Vec<String> {
    let mut keys: Vec<(String, Vec<String>, bool)> = Vec::new();
    for (index, column, nullable) in rows {
        if keys.last().map(|k| &k.0) != Some(index) {
            keys.push((index.clone(), Vec::new(), true));
        }
        if let Some(k) = keys.last_mut() {
            k.1.push(column.clone());
            k.2 &= nullable.eq_ignore_ascii_case("NO");
        }
    }
    keys.into_iter()
        .filter(|(_, _, not_null)| *not_null)
        .min_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| a.0.cmp(&b.0)))
        .map(|(_, cols, _)| cols)
        .unwrap_or_default()
}

/// The queries of one table's chunks.
#[derive(Debug, Clone)]
pub struct ChunkReader {
    /// The first chunk (no cursor yet).
    first: String,
    /// Every later chunk: rows after the cursor.
    next: String,
    pub columns: Vec<String>,
    pub key: Vec<String>,
    key_at: Vec<usize>,
    /// None: the whole table in one query (no key to page by).
    pub limit: Option<u64>,
}

impl ChunkReader {
    pub fn new(def: &Table, key: &[String], where_clause: Option<&str>, chunk_size: u64) -> Self {
        let columns: Vec<String> = def.columns.iter().map(|c| c.name.clone()).collect();
        let key_at = key
            .iter()
            .filter_map(|k| columns.iter().position(|c| c.eq_ignore_ascii_case(k)))
            .collect();
        let select = format!(
            "SELECT {} FROM {}.{}",
            columns
                .iter()
                .map(|c| quote(c))
                .collect::<Vec<_>>()
                .join(", "),
            quote(&def.database),
            quote(&def.name)
        );
        let user = where_clause.map(|w| format!("({w})"));
        let build = |after: Option<String>| {
            let conds: Vec<String> = user.iter().cloned().chain(after).collect();
            let mut sql = select.clone();
            if !conds.is_empty() {
                sql.push_str(" WHERE ");
                sql.push_str(&conds.join(" AND "));
            }
            if !key.is_empty() {
                sql.push_str(" ORDER BY ");
                sql.push_str(&key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", "));
                sql.push_str(&format!(" LIMIT {chunk_size}"));
            }
            sql
        };
        ChunkReader {
            first: build(None),
            next: build((!key.is_empty()).then(|| after_cursor(key))),
            columns,
            key: key.to_vec(),
            key_at,
            limit: (!key.is_empty()).then_some(chunk_size),
        }
    }

    /// The statement and parameters of the chunk after `cursor`.
    pub fn statement(&self, cursor: Option<&[SnapValue]>) -> (&str, Vec<mysql_async::Value>) {
        match cursor {
            None => (&self.first, Vec::new()),
            Some(c) => {
                // (k1 > ?) OR (k1 = ? AND k2 > ?) OR …: each disjunct binds
                // the cursor's first i+1 values.
                let mut params = Vec::new();
                for i in 0..c.len() {
                    params.extend(c[..=i].iter().map(param));
                }
                (&self.next, params)
            }
        }
    }

    /// Reads the chunk after `cursor`.
    pub async fn read(
        &self,
        conn: &mut Conn,
        cursor: Option<&[SnapValue]>,
    ) -> Result<Vec<Vec<SnapValue>>, mysql_async::Error> {
        let (sql, params) = self.statement(cursor);
        let result = if params.is_empty() {
            conn.exec_iter(sql, ()).await?
        } else {
            conn.exec_iter(sql, params).await?
        };
        result
            .map_and_drop(|row| {
                row.unwrap_raw()
                    .into_iter()
                    .map(|v| v.map(from_mysql).unwrap_or(SnapValue::Null))
                    .collect()
            })
            .await
    }

    /// The key of the last row of a chunk: where the next one starts.
    pub fn last_key(&self, rows: &[Vec<SnapValue>]) -> Option<Vec<SnapValue>> {
        let last = rows.last()?;
        self.key_at.iter().map(|&i| last.get(i).cloned()).collect()
    }

    /// Whether a chunk of `rows` rows was the last one.
    pub fn is_last(&self, rows: usize) -> bool {
        self.limit.is_none_or(|l| (rows as u64) < l)
    }
}

/// `(k1 > ?) OR (k1 = ? AND k2 > ?) OR …`, which MariaDB and MySQL turn into
/// one index range (a row comparison `(k1, k2) > (?, ?)` is not always
/// optimised as one).
fn after_cursor(key: &[String]) -> String {
    let disjuncts: Vec<String> = (0..key.len())
        .map(|i| {
            let mut parts: Vec<String> = key[..i]
                .iter()
                .map(|k| format!("{} = ?", quote(k)))
                .collect();
            parts.push(format!("{} > ?", quote(&key[i])));
            format!("({})", parts.join(" AND "))
        })
        .collect();
    format!("({})", disjuncts.join(" OR "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_schema::Column;

    fn table(cols: &[&str], pk: &[&str]) -> Table {
        Table {
            database: "d".into(),
            name: "t".into(),
            charset: None,
            columns: cols
                .iter()
                .map(|c| Column {
                    name: c.to_string(),
                    data_type: "int".into(),
                    column_type: "int".into(),
                    charset: None,
                    unsigned: false,
                    values: vec![],
                    is_json: false,
                })
                .collect(),
            primary_key: pk.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn keyset_queries_with_a_composite_key_and_a_where_clause() {
        let t = table(&["a", "b", "v"], &["a", "b"]);
        let key = vec!["a".to_string(), "b".to_string()];
        let r = ChunkReader::new(&t, &key, Some("v > 1"), 500);
        let (first, p) = r.statement(None);
        assert_eq!(
            first,
            "SELECT `a`, `b`, `v` FROM `d`.`t` WHERE (v > 1) ORDER BY `a`, `b` LIMIT 500"
        );
        assert!(p.is_empty());
        let cursor = [SnapValue::Int(3), SnapValue::Int(9)];
        let (next, p) = r.statement(Some(&cursor));
        assert_eq!(
            next,
            "SELECT `a`, `b`, `v` FROM `d`.`t` WHERE (v > 1) AND ((`a` > ?) OR (`a` = ? AND `b` > ?)) ORDER BY `a`, `b` LIMIT 500"
        );
        assert_eq!(
            p,
            vec![
                mysql_async::Value::Int(3),
                mysql_async::Value::Int(3),
                mysql_async::Value::Int(9)
            ]
        );
        let rows = vec![
            vec![SnapValue::Int(1), SnapValue::Int(2), SnapValue::Null],
            vec![SnapValue::Int(4), SnapValue::Int(5), SnapValue::Int(6)],
        ];
        assert_eq!(
            r.last_key(&rows),
            Some(vec![SnapValue::Int(4), SnapValue::Int(5)])
        );
        assert!(!r.is_last(500) && r.is_last(499));
    }

    #[test]
    fn a_table_without_a_key_is_one_query() {
        let t = table(&["a"], &[]);
        let r = ChunkReader::new(&t, &[], None, 500);
        assert_eq!(r.statement(None).0, "SELECT `a` FROM `d`.`t`");
        assert!(r.is_last(100_000));
    }

    #[test]
    fn names_are_quoted() {
        let t = Table {
            name: "we`ird".into(),
            ..table(&["x`y"], &["x`y"])
        };
        let r = ChunkReader::new(&t, &["x`y".to_string()], None, 1);
        assert_eq!(
            r.statement(None).0,
            "SELECT `x``y` FROM `d`.`we``ird` ORDER BY `x``y` LIMIT 1"
        );
    }

    #[test]
    fn unique_keys_need_not_null_columns() {
        let rows = |v: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
            v.iter()
                .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
                .collect()
        };
        assert_eq!(
            pick_unique_key(&rows(&[
                ("u_ab", "a", "NO"),
                ("u_ab", "b", "NO"),
                ("u_c", "c", "NO"),
                ("u_n", "n", "YES")
            ])),
            vec!["c".to_string()]
        );
        assert!(pick_unique_key(&rows(&[("u_n", "n", "YES")])).is_empty());
        assert!(pick_unique_key(&[]).is_empty());
    }
}
