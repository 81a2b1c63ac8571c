use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `information_schema.COLUMNS.DATA_TYPE`, lower case (`int`, `varchar`, ...).
    pub data_type: String,
    /// Full type (`int(10) unsigned`, `enum('a','b')`, ...).
    pub column_type: String,
    /// Character set for character columns (`binary` for binary strings).
    pub charset: Option<String>,
    pub unsigned: bool,
    /// Values of an enum or set column, in definition order.
    pub values: Vec<String>,
    /// A JSON column (MySQL `json`, or MariaDB's `longtext` with a
    /// `json_valid()` check).
    pub is_json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub database: String,
    pub name: String,
    pub charset: Option<String>,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
}

impl Table {
    /// MariaDB's `WITH SYSTEM VERSIONING` without a declared period adds
    /// invisible `row_start`/`row_end` columns: `information_schema` hides
    /// them, the binlog logs them in every row. `row_end` joins the primary
    /// key.
    pub fn add_implicit_row_period(&mut self) {
        for name in ["row_start", "row_end"] {
            if self.column(name).is_none() {
                self.columns.push(Column {
                    name: name.into(),
                    data_type: "timestamp".into(),
                    column_type: "timestamp(6)".into(),
                    charset: None,
                    unsigned: false,
                    values: Vec::new(),
                    is_json: false,
                });
            }
        }
        if !self.primary_key.is_empty() && !self.primary_key.iter().any(|k| k == "row_end") {
            self.primary_key.push("row_end".into());
        }
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// A database and its default character set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub name: String,
    pub charset: String,
}

/// Every table and database, keyed by name under the server's case rules:
/// with `lower_case_table_names` = 0 (Linux default) names are
/// case-sensitive; with 1 or 2 they compare in lower case. Column names are
/// always case-insensitive.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: HashMap<(String, String), Arc<Table>>,
    pub databases: HashMap<String, Database>,
    /// Collation id -> character set name.
    pub collations: HashMap<u32, String>,
    /// Names compare case-insensitively (`lower_case_table_names` > 0).
    pub case_insensitive: bool,
    /// The server's own default charset (`character_set_server`).
    pub server_charset: String,
}

/// A (database, table) key under case-insensitive rules.
pub fn key(db: &str, table: &str) -> (String, String) {
    (db.to_ascii_lowercase(), table.to_ascii_lowercase())
}

impl Catalog {
    pub fn name_key(&self, name: &str) -> String {
        if self.case_insensitive {
            name.to_lowercase()
        } else {
            name.to_string()
        }
    }

    pub fn key(&self, db: &str, table: &str) -> (String, String) {
        (self.name_key(db), self.name_key(table))
    }

    pub fn get(&self, db: &str, table: &str) -> Option<&Arc<Table>> {
        self.tables.get(&self.key(db, table))
    }

    pub fn put(&mut self, t: Table) {
        let k = self.key(&t.database, &t.name);
        self.tables.insert(k, Arc::new(t));
    }

    pub fn remove(&mut self, db: &str, table: &str) -> Option<Arc<Table>> {
        let k = self.key(db, table);
        self.tables.remove(&k)
    }

    pub fn database(&self, db: &str) -> Option<&Database> {
        self.databases.get(&self.name_key(db))
    }

    pub fn put_database(&mut self, d: Database) {
        let k = self.name_key(&d.name);
        self.databases.insert(k, d);
    }

    /// Drops a database and its tables.
    pub fn remove_database(&mut self, db: &str) {
        let k = self.name_key(db);
        self.databases.remove(&k);
        self.tables.retain(|(d, _), _| *d != k);
    }

    pub fn charset_of_collation(&self, id: u32) -> Option<&str> {
        self.collations.get(&id).map(String::as_str)
    }

    /// Tables and databases in a stable order, for comparisons.
    pub fn sorted_tables(&self) -> Vec<&Arc<Table>> {
        let mut v: Vec<&Arc<Table>> = self.tables.values().collect();
        v.sort_by(|a, b| (&a.database, &a.name).cmp(&(&b.database, &b.name)));
        v
    }
}

/// Values of `enum('a','b''c')` / `set(...)` as information_schema prints them.
pub fn parse_enum_values(column_type: &str) -> Vec<String> {
    let open = match column_type.find('(') {
        Some(i) => i + 1,
        None => return Vec::new(),
    };
    let bytes: Vec<char> = column_type[open..].chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == '\'' {
            let mut s = String::new();
            i += 1;
            while i < bytes.len() {
                match bytes[i] {
                    '\'' if bytes.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    '\'' => {
                        i += 1;
                        break;
                    }
                    '\\' if i + 1 < bytes.len() => {
                        s.push(bytes[i + 1]);
                        i += 2;
                    }
                    c => {
                        s.push(c);
                        i += 1;
                    }
                }
            }
            out.push(s);
        } else if bytes[i] == ')' {
            break;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_values() {
        assert_eq!(
            parse_enum_values("enum('foo','bar','baz')"),
            vec!["foo", "bar", "baz"]
        );
        assert_eq!(parse_enum_values("set('a''b','c,d')"), vec!["a'b", "c,d"]);
        assert_eq!(parse_enum_values("enum('')"), vec![""]);
        assert!(parse_enum_values("int(11)").is_empty());
    }
}
