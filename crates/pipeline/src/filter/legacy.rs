//! Maxwell's filter options before `filter` (removed in Maxwell 1.37.1):
//! `include_dbs`, `exclude_dbs`, `include_tables`, `exclude_tables`,
//! `blacklist_dbs`, `blacklist_tables`, `include_column_values`, translated
//! into `filter` rules as Maxwell's `Filter.fromOldFormat` did.

use super::FilterError;

/// The older options' values, as given (comma-separated lists).
#[derive(Debug, Clone, Copy, Default)]
pub struct LegacyOptions<'a> {
    pub include_dbs: Option<&'a str>,
    pub exclude_dbs: Option<&'a str>,
    pub include_tables: Option<&'a str>,
    pub exclude_tables: Option<&'a str>,
    pub blacklist_dbs: Option<&'a str>,
    pub blacklist_tables: Option<&'a str>,
    /// `col=value[,col=value…]`.
    pub include_column_values: Option<&'a str>,
}

/// Java's `String.split(",")`: trailing empty pieces are dropped, and an
/// empty string is one empty piece.
fn java_split(s: &str, sep: char) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() == 1 && parts[0].is_empty() && !s.is_empty() {
        // "," splits to nothing in Java.
        parts.clear();
    }
    parts
}

impl LegacyOptions<'_> {
    /// The equivalent `filter` text, in Maxwell's order, or `None` when no
    /// older option is set.
    pub fn filter_text(&self) -> Result<Option<String>, FilterError> {
        let mut rules: Vec<String> = Vec::new();
        if let Some(v) = self.blacklist_dbs {
            rules.extend(
                java_split(v, ',')
                    .iter()
                    .map(|s| format!("blacklist: {s}.*")),
            );
        }
        if let Some(v) = self.blacklist_tables {
            rules.extend(
                java_split(v, ',')
                    .iter()
                    .map(|s| format!("blacklist: *.{s}")),
            );
        }
        // Any old-style include means "only these".
        if self.include_dbs.is_some() || self.include_tables.is_some() {
            rules.push("exclude: *.*".into());
        }
        if let Some(v) = self.include_dbs {
            rules.extend(java_split(v, ',').iter().map(|s| format!("include: {s}.*")));
        }
        if let Some(v) = self.exclude_dbs {
            rules.extend(java_split(v, ',').iter().map(|s| format!("exclude: {s}.*")));
        }
        if let Some(v) = self.include_tables {
            rules.extend(java_split(v, ',').iter().map(|s| format!("include: *.{s}")));
        }
        if let Some(v) = self.exclude_tables {
            rules.extend(java_split(v, ',').iter().map(|s| format!("exclude: *.{s}")));
        }
        if let Some(v) = self.include_column_values.filter(|v| !v.is_empty()) {
            for pair in java_split(v, ',') {
                let parts = java_split(pair, '=');
                let (Some(col), Some(val)) = (parts.first(), parts.get(1)) else {
                    return Err(FilterError {
                        rule: rules.len() + 1,
                        text: pair.to_string(),
                        line: 1,
                        message: "include_column_values needs column=value pairs, comma-separated"
                            .into(),
                    });
                };
                rules.push(format!("exclude: *.*.{col}=*"));
                rules.push(format!("include: *.*.{col}={val}"));
            }
        }
        let any_set = self.include_dbs.is_some()
            || self.exclude_dbs.is_some()
            || self.include_tables.is_some()
            || self.exclude_tables.is_some()
            || self.blacklist_dbs.is_some()
            || self.blacklist_tables.is_some()
            || self.include_column_values.is_some_and(|v| !v.is_empty());
        Ok(any_set.then(|| rules.join(", ")))
    }
}
