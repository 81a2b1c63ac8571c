//! Evaluating the rules for one table: Maxwell's loop where the last
//! matching rule wins, starting from "included". Table-level rules are
//! settled once per table ([`TableFilter`]); only column-value rules are
//! evaluated per row.

use super::parse::{ColumnCondition, Rule, RuleKind};

/// A row's value of a column, as a column-value rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnValue {
    /// The row has no such column (`binlog_row_image=MINIMAL`, or a
    /// misspelt name): the rule is skipped.
    Absent,
    /// SQL NULL.
    Null,
    /// The value's text (written to the buffer given to the lookup).
    Text,
}

#[derive(Debug, Clone)]
enum Step {
    /// A table rule that matches this table: the verdict becomes `include`.
    Table { include: bool },
    /// A column-value rule for this table.
    Column {
        include: bool,
        condition: ColumnCondition,
    },
}

/// The rules that concern one table, in order, with the table-level
/// verdict precomputed.
#[derive(Debug, Clone)]
pub struct TableFilter {
    steps: Vec<Step>,
    includes: bool,
    has_column_rules: bool,
}

impl TableFilter {
    pub(crate) fn new<'r>(
        rules: impl IntoIterator<Item = &'r Rule>,
        db: &str,
        table: &str,
    ) -> Self {
        let mut steps = Vec::new();
        let mut includes = true;
        for r in rules {
            if !(r.database.find(db) && r.table.find(table)) {
                continue;
            }
            let include = r.kind == RuleKind::Include;
            match &r.column {
                None => {
                    includes = include;
                    steps.push(Step::Table { include });
                }
                Some(c) => steps.push(Step::Column {
                    include,
                    condition: c.clone(),
                }),
            }
        }
        let has_column_rules = steps.iter().any(|s| matches!(s, Step::Column { .. }));
        TableFilter {
            steps,
            includes,
            has_column_rules,
        }
    }

    /// Maxwell's `includes(db, table)`: table rules only (a `blacklist`
    /// rule counts as an exclude here).
    pub fn includes(&self) -> bool {
        self.includes
    }

    /// Some column-value rule applies to this table, so rows must be
    /// evaluated one by one.
    pub fn has_column_rules(&self) -> bool {
        self.has_column_rules
    }

    /// Some `include` column rule applies to this table: whether it could
    /// bring rows back depends on the table's columns.
    pub fn has_include_column_rules(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, Step::Column { include: true, .. }))
    }

    /// Maxwell's `couldIncludeFromColumnFilters`: an `include` column rule
    /// for this table names one of `columns` (case-sensitive).
    pub fn could_include<'c>(&self, columns: impl IntoIterator<Item = &'c str>) -> bool {
        let wanted: Vec<&str> = self
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Column {
                    include: true,
                    condition,
                } => Some(condition.column.as_str()),
                _ => None,
            })
            .collect();
        !wanted.is_empty() && columns.into_iter().any(|c| wanted.contains(&c))
    }

    /// Maxwell's `includes(db, table, data)`. `lookup(column, buf)` says
    /// whether the row has the column and, for a value, writes its text
    /// (Java's `toString` of Maxwell's value) into `buf`.
    pub fn includes_row(&self, mut lookup: impl FnMut(&str, &mut String) -> ColumnValue) -> bool {
        if !self.has_column_rules {
            return self.includes;
        }
        let mut verdict = true;
        let mut buf = String::new();
        for s in &self.steps {
            match s {
                Step::Table { include } => verdict = *include,
                Step::Column { include, condition } => {
                    buf.clear();
                    let matched = match lookup(&condition.column, &mut buf) {
                        ColumnValue::Absent => false,
                        ColumnValue::Null => condition.null || condition.value.is_any(),
                        ColumnValue::Text if condition.null => buf == "null" || buf == "NULL",
                        ColumnValue::Text => condition.value.find(&buf),
                    };
                    if matched {
                        verdict = *include;
                    }
                }
            }
        }
        verdict
    }
}

/// `mysql.ha_health_check` and `mysql.rds_heartbeat*` (RDS internals) are
/// never read, whatever the filter says.
pub fn is_system_blacklisted(db: &str, table: &str) -> bool {
    db == "mysql" && (table == "ha_health_check" || table.starts_with("rds_heartbeat"))
}

/// Maxwell's `isTableBlacklisted` over the `blacklist` table rules only.
pub(crate) fn blacklist_verdict<'r>(
    rules: impl IntoIterator<Item = &'r Rule>,
    db: &str,
    table: &str,
) -> bool {
    let mut included = true;
    for r in rules {
        if r.kind == RuleKind::Blacklist
            && r.column.is_none()
            && r.database.find(db)
            && r.table.find(table)
        {
            included = false;
        }
    }
    !included
}
