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
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// All captured tables, keyed by (database, table) in lower case: MySQL
/// compares identifiers case-insensitively on the default
/// `lower_case_table_names` of most installations, and so do we.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: HashMap<(String, String), Arc<Table>>,
    /// Collation id -> character set name.
    pub collations: HashMap<u32, String>,
}

pub fn key(db: &str, table: &str) -> (String, String) {
    (db.to_ascii_lowercase(), table.to_ascii_lowercase())
}

impl Catalog {
    pub fn get(&self, db: &str, table: &str) -> Option<&Arc<Table>> {
        self.tables.get(&key(db, table))
    }

    pub fn put(&mut self, t: Table) {
        self.tables.insert(key(&t.database, &t.name), Arc::new(t));
    }

    pub fn remove(&mut self, db: &str, table: &str) {
        self.tables.remove(&key(db, table));
    }

    pub fn remove_database(&mut self, db: &str) {
        let db = db.to_ascii_lowercase();
        self.tables.retain(|(d, _), _| *d != db);
    }

    pub fn charset_of_collation(&self, id: u32) -> Option<&str> {
        self.collations.get(&id).map(String::as_str)
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
