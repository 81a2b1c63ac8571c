//! Maxwell's `filter` option: `include:`, `exclude:` and `blacklist:` rules
//! on `database.table` (names, `*`, quoted names or Java `/regex/`), with
//! optional column-value conditions (`db.tbl.col=value`). The last matching
//! rule wins and everything starts out included, exactly as in Maxwell 1.45
//! (spec `maxwell-compat.md` §1).
//!
//! - [`Filter::includes`]: rows and DDL events of a table are output.
//! - [`Filter::is_table_blacklisted`] / [`Filter::is_database_blacklisted`]:
//!   the table is never decoded and its DDL never applied.
//! - [`Filter::for_table`]: the per-table part, for column-value rules
//!   evaluated on each row.

pub mod ddl;
mod eval;
mod java_regex;
mod legacy;
mod parse;
mod value;

#[cfg(test)]
mod tests;

pub use eval::{is_system_blacklisted, ColumnValue, TableFilter};
pub use java_regex::JavaRegex;
pub use legacy::LegacyOptions;
pub use parse::RuleKind;
pub use value::{value_text, ValueKind};

use parse::Rule;

/// A `filter` value that cannot be used. Maxwell refuses these too (or hangs
/// or crashes on them: an unterminated or invalid regex).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter: rule {rule} ({text:?}{}): {message}", if *line > 1 { format!(", line {line}") } else { String::new() })]
pub struct FilterError {
    /// 1-based index of the rule.
    pub rule: usize,
    /// The rule's text up to where it went wrong.
    pub text: String,
    pub line: usize,
    pub message: String,
}

/// A parsed `filter`.
#[derive(Debug, Clone)]
pub struct Filter {
    rules: Vec<Rule>,
    schema_database: String,
}

impl Filter {
    /// Parses a `filter` value. `schema_database` is sluice's own state
    /// database (never blacklisted; its `bootstrap` and `heartbeats` tables
    /// are always read).
    pub fn parse(text: &str, schema_database: &str) -> Result<Filter, FilterError> {
        Ok(Filter {
            rules: parse::parse_rules(text)?,
            schema_database: schema_database.to_string(),
        })
    }

    /// The filter Maxwell (before 1.37.1) built from its older options, or
    /// `None` when none of them is set. The text of the equivalent `filter`
    /// is the filter's `to_string()`.
    pub fn from_legacy(
        opts: &LegacyOptions<'_>,
        schema_database: &str,
    ) -> Result<Option<Filter>, FilterError> {
        match opts.filter_text()? {
            None => Ok(None),
            Some(text) => Filter::parse(&text, schema_database).map(Some),
        }
    }

    /// No rules: everything is included.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Maxwell's `includes(db, table)`.
    pub fn includes(&self, db: &str, table: &str) -> bool {
        self.for_table(db, table).includes()
    }

    /// Maxwell's `includes(db, table, data)` (see [`TableFilter::includes_row`]).
    pub fn includes_row(
        &self,
        db: &str,
        table: &str,
        lookup: impl FnMut(&str, &mut String) -> ColumnValue,
    ) -> bool {
        self.for_table(db, table).includes_row(lookup)
    }

    /// Maxwell's `couldIncludeFromColumnFilters`.
    pub fn could_include_from_column_filters<'c>(
        &self,
        db: &str,
        table: &str,
        columns: impl IntoIterator<Item = &'c str>,
    ) -> bool {
        self.for_table(db, table).could_include(columns)
    }

    /// The rules that concern `db.table`, evaluated once.
    pub fn for_table(&self, db: &str, table: &str) -> TableFilter {
        TableFilter::new(&self.rules, db, table)
    }

    /// Rows of the table are never read and its DDL is never applied.
    pub fn is_table_blacklisted(&self, db: &str, table: &str) -> bool {
        if is_system_blacklisted(db, table) {
            return true;
        }
        if db == self.schema_database {
            return false;
        }
        eval::blacklist_verdict(&self.rules, db, table)
    }

    /// Some `blacklist` rule covers every table of `db` (`blacklist: db.*`):
    /// its database-level DDL is not applied either.
    pub fn is_database_blacklisted(&self, db: &str) -> bool {
        if db == self.schema_database {
            return false;
        }
        // As Maxwell: any blacklist rule whose table pattern is `*`, column
        // condition or not.
        self.rules
            .iter()
            .any(|r| r.kind == RuleKind::Blacklist && r.table.is_any() && r.database.find(db))
    }

    /// sluice's own `bootstrap` and `heartbeats` tables: always read.
    pub fn is_system_whitelisted(&self, db: &str, table: &str) -> bool {
        db == self.schema_database && (table == "bootstrap" || table == "heartbeats")
    }

    /// Some rule has a column-value condition.
    pub fn has_column_rules(&self) -> bool {
        self.rules.iter().any(|r| r.column.is_some())
    }

    /// Rules that do not do what they look like they do, one sentence each,
    /// for a warning at startup.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut excluded_before = false;
        let mut blacklists: Vec<&Rule> = Vec::new();
        for r in &self.rules {
            match r.kind {
                RuleKind::Include if !excluded_before => out.push(format!(
                    "filter rule `{r}` has no effect: every table is included unless an earlier rule \
                     excludes it, and no rule before it does. To output only what it names, put \
                     `exclude: *.*` first: `exclude: *.*, {r}`"
                )),
                RuleKind::Include => {
                    let undoes = blacklists.iter().find(|b| {
                        b.database.is_any() || b.database.java() == r.database.java()
                    });
                    if let Some(b) = undoes {
                        out.push(format!(
                            "filter rule `{r}` cannot bring back tables of the earlier `{b}`: \
                             blacklisted tables are never read, whatever a later include says; \
                             use `exclude:` instead of `blacklist:` for tables you include again"
                        ));
                    }
                }
                RuleKind::Blacklist if r.column.is_some() => out.push(format!(
                    "filter rule `{r}` blacklists no table: with a column condition it only \
                     excludes the matching rows, as `exclude:` would; write `exclude:` to say so"
                )),
                RuleKind::Exclude | RuleKind::Blacklist => {}
            }
            if r.kind != RuleKind::Include {
                excluded_before = true;
            }
            if r.kind == RuleKind::Blacklist && r.column.is_none() {
                blacklists.push(r);
            }
            for p in [
                Some(&r.database),
                Some(&r.table),
                r.column.as_ref().map(|c| &c.value),
            ]
            .into_iter()
            .flatten()
            {
                let java = p.java();
                let name = java.strip_prefix('^').and_then(|s| s.strip_suffix('$'));
                if let Some(name) = name {
                    if name.contains([
                        '.', '$', '^', '(', ')', '[', ']', '{', '}', '|', '?', '+', '\\',
                    ]) {
                        out.push(format!(
                            "filter rule `{r}`: the name '{name}' is matched as the regular expression \
                             {java} (Maxwell does not escape names), so characters like . and $ are \
                             not literal"
                        ));
                    }
                }
            }
        }
        if let Some(last) = self.rules.last() {
            if last.kind != RuleKind::Include
                && last.column.is_none()
                && last.database.is_any()
                && last.table.is_any()
            {
                out.push(format!(
                    "filter ends with `{last}`: every table is excluded and no row will be output"
                ));
            }
        }
        out
    }
}

/// The normalised text (Maxwell's `toString`, what `GET /config` shows):
/// rules joined by `, `.
impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, r) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}
