//! A recursive-descent parser for the DDL MySQL and MariaDB write to the
//! binlog. It reads exactly what decides how rows are logged (columns, their
//! types and charsets, order, primary key, table names) and parses past the
//! rest (indexes, table options, partitioning, expressions) by balanced
//! tokens, so new server options do not break it.

use super::ast::*;
use super::lex::{tokenize, Tok};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn parse(sql: &str) -> Result<Statement, ParseError> {
    let toks =
        tokenize(sql).map_err(|e| ParseError(format!("{} at offset {}", e.message, e.offset)))?;
    let mut p = Parser { toks, i: 0 };
    let st = p.statement()?;
    p.eat_punct(';');
    if p.i < p.toks.len() {
        return Err(p.err("end of statement"));
    }
    Ok(st)
}

/// Statements whose first word(s) say they never change a table's structure.
const NO_SCHEMA_CHANGE: &[&str] = &[
    "GRANT",
    "REVOKE",
    "TRUNCATE",
    "FLUSH",
    "ANALYZE",
    "OPTIMIZE",
    "REPAIR",
    "CHECK",
    "CHECKSUM",
    "SET",
    "INSERT",
    "UPDATE",
    "DELETE",
    "REPLACE",
    "LOAD",
    "CALL",
    "DO",
    "INSTALL",
    "UNINSTALL",
    "SAVEPOINT",
    "RELEASE",
    "LOCK",
    "UNLOCK",
    "RESET",
    "PURGE",
    "HANDLER",
    "SELECT",
    "WITH",
    "KILL",
    "SHOW",
    "USE",
    "XA",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "START",
    "STOP",
    "CHANGE",
    "SHUTDOWN",
    "BINLOG",
    "PREPARE",
    "EXECUTE",
    "DEALLOCATE",
    "CACHE",
    "BACKUP",
    "SIGNAL",
    "RESIGNAL",
    "DECLARE",
    "VALUES",
    "TABLE",
    "EXPLAIN",
    "DESCRIBE",
    "HELP",
];

/// Objects other than tables and databases that CREATE/ALTER/DROP may name.
const OTHER_OBJECTS: &[&str] = &[
    "INDEX",
    "VIEW",
    "TRIGGER",
    "PROCEDURE",
    "FUNCTION",
    "EVENT",
    "USER",
    "ROLE",
    "SERVER",
    "TABLESPACE",
    "LOGFILE",
    "SEQUENCE",
    "PACKAGE",
    "SPATIAL",
    "RESOURCE",
    "INSTANCE",
    "SYNONYM",
    "UNDO",
];

struct Parser {
    toks: Vec<Tok>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.i + n)
    }
    fn at_end(&self) -> bool {
        self.i >= self.toks.len() || self.peek() == Some(&Tok::Punct(';'))
    }
    fn peek_kw(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.is_kw(kw))
    }
    fn peek_kw_at(&self, n: usize, kw: &str) -> bool {
        self.peek_at(n).is_some_and(|t| t.is_kw(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_kws(&mut self, kws: &[&str]) -> bool {
        if kws.iter().enumerate().all(|(n, k)| self.peek_kw_at(n, k)) {
            self.i += kws.len();
            true
        } else {
            false
        }
    }
    fn expect_kw(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.err(kw))
        }
    }
    fn peek_punct(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }
    fn eat_punct(&mut self, c: char) -> bool {
        if self.peek_punct(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect_punct(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            Err(self.err(&format!("'{c}'")))
        }
    }

    fn err(&self, expected: &str) -> ParseError {
        let near: Vec<String> = self.toks[self.i.min(self.toks.len())..]
            .iter()
            .take(6)
            .map(|t| match t {
                Tok::Word { text, quoted: true } => format!("`{text}`"),
                Tok::Word { text, .. } | Tok::Num(text) | Tok::Hex(text) => text.clone(),
                Tok::Str(s) => format!("'{s}'"),
                Tok::Punct(c) => c.to_string(),
            })
            .collect();
        if near.is_empty() {
            ParseError(format!("expected {expected} at the end of the statement"))
        } else {
            ParseError(format!("expected {expected} near \"{}\"", near.join(" ")))
        }
    }

    /// An identifier: any word, quoted or not.
    fn ident(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Word { text, .. }) => {
                let t = text.clone();
                self.i += 1;
                Ok(t)
            }
            _ => Err(self.err("a name")),
        }
    }

    /// `[db.]name`.
    fn name(&mut self) -> Result<Name, ParseError> {
        let first = self.ident()?;
        if self.peek_punct('.') && matches!(self.peek_at(1), Some(Tok::Word { .. })) {
            self.i += 1;
            let name = self.ident()?;
            return Ok(Name {
                db: Some(first),
                name,
            });
        }
        Ok(Name {
            db: None,
            name: first,
        })
    }

    /// A charset or collation name: a word or a string.
    fn charset_name(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Word { text, .. }) | Some(Tok::Str(text)) => {
                let t = text.to_ascii_lowercase();
                self.i += 1;
                Ok(t)
            }
            _ => Err(self.err("a character set or collation name")),
        }
    }

    /// Skips one token, or a whole `( … )` group.
    fn skip_one(&mut self) {
        if self.eat_punct('(') {
            let mut depth = 1;
            while depth > 0 && self.i < self.toks.len() {
                match self.peek() {
                    Some(Tok::Punct('(')) => depth += 1,
                    Some(Tok::Punct(')')) => depth -= 1,
                    _ => {}
                }
                self.i += 1;
            }
        } else {
            self.i += 1;
        }
    }

    /// Skips to the `,` or `)` that ends the current list item.
    fn skip_item(&mut self) {
        while !self.at_end() && !self.peek_punct(',') && !self.peek_punct(')') {
            self.skip_one();
        }
    }

    /// Tokens of a parenthesised group (without the parens), consumed.
    fn group_tokens(&mut self) -> Vec<Tok> {
        let start = self.i;
        self.skip_one();
        let end = self.i;
        if end >= start + 2 {
            self.toks[start + 1..end - 1].to_vec()
        } else {
            Vec::new()
        }
    }

    fn if_not_exists(&mut self) -> bool {
        self.eat_kws(&["IF", "NOT", "EXISTS"])
    }
    fn if_exists(&mut self) -> bool {
        self.eat_kws(&["IF", "EXISTS"])
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        let Some(first) = self.peek() else {
            return Ok(Statement::NoSchemaChange("empty statement".into()));
        };
        let word = match first {
            Tok::Word {
                text,
                quoted: false,
            } => text.to_ascii_uppercase(),
            Tok::Punct('(') => return Ok(Statement::NoSchemaChange("query".into())),
            _ => return Err(self.err("a statement")),
        };
        match word.as_str() {
            "CREATE" => self.create(),
            "ALTER" => self.alter(),
            "DROP" => self.drop(),
            "RENAME" => self.rename(),
            w if NO_SCHEMA_CHANGE.contains(&w) => {
                self.i = self.toks.len();
                Ok(Statement::NoSchemaChange(word))
            }
            _ => Err(self.err("a statement")),
        }
    }

    /// Skips `DEFINER = user`, `ALGORITHM = x`, `SQL SECURITY x` and the
    /// like between CREATE/ALTER and the object keyword.
    fn object_kind(&mut self) -> Option<String> {
        loop {
            let Some(Tok::Word {
                text,
                quoted: false,
            }) = self.peek()
            else {
                return None;
            };
            let w = text.to_ascii_uppercase();
            match w.as_str() {
                "DEFINER" => {
                    self.i += 1;
                    self.eat_punct('=');
                    // user[@host], CURRENT_USER[()]
                    self.i += 1;
                    if self.eat_punct('(') {
                        self.eat_punct(')');
                    }
                    if self.eat_punct('@') {
                        self.i += 1;
                    }
                }
                "ALGORITHM" => {
                    self.i += 1;
                    self.eat_punct('=');
                    self.i += 1;
                }
                "SQL" => self.i += 3, // SQL SECURITY {DEFINER|INVOKER}
                "OR" | "ONLINE" | "OFFLINE" | "IGNORE" | "UNIQUE" | "FULLTEXT" | "AGGREGATE"
                | "REPLACE" | "TEMPORARY" => self.i += 1,
                _ => return Some(w),
            }
        }
    }

    fn create(&mut self) -> Result<Statement, ParseError> {
        self.i += 1;
        let or_replace = self.eat_kws(&["OR", "REPLACE"]);
        let temporary = self.peek_kw("TEMPORARY");
        let start = self.i;
        match self.object_kind().as_deref() {
            Some("DATABASE") | Some("SCHEMA") => {
                self.i += 1;
                let if_not_exists = self.if_not_exists();
                let name = self.ident()?;
                let (charset, collation) = self.database_options()?;
                Ok(Statement::CreateDatabase {
                    name,
                    if_not_exists,
                    or_replace,
                    charset,
                    collation,
                })
            }
            Some("TABLE") => {
                self.i += 1;
                self.create_table(or_replace, temporary)
            }
            Some("SEQUENCE") => {
                // MariaDB: a sequence is a one-row table of fixed columns,
                // and its updates are logged as rows.
                self.i += 1;
                let if_not_exists = self.if_not_exists();
                let name = self.name()?;
                self.i = self.toks.len();
                Ok(Statement::CreateTable {
                    name,
                    if_not_exists,
                    or_replace,
                    temporary,
                    body: CreateBody::Columns {
                        columns: sequence_columns(),
                        primary_key: None,
                        json_checks: Vec::new(),
                        as_select: false,
                        implicit_row_period: false,
                    },
                    charset: None,
                    collation: None,
                })
            }
            Some(w) if OTHER_OBJECTS.contains(&w) => {
                let _ = start;
                self.i = self.toks.len();
                Ok(Statement::NoSchemaChange(format!("CREATE {w}")))
            }
            _ => Err(self.err("DATABASE, TABLE or another object after CREATE")),
        }
    }

    fn database_options(&mut self) -> Result<(Option<String>, Option<String>), ParseError> {
        let (mut charset, mut collation) = (None, None);
        while !self.at_end() {
            self.eat_kw("DEFAULT");
            if self.eat_kws(&["CHARACTER", "SET"]) || self.eat_kw("CHARSET") {
                self.eat_punct('=');
                charset = Some(self.charset_name()?);
            } else if self.eat_kw("COLLATE") {
                self.eat_punct('=');
                collation = Some(self.charset_name()?);
            } else if self.eat_kw("COMMENT") || self.eat_kw("ENCRYPTION") {
                self.eat_punct('=');
                self.i += 1;
            } else if self.eat_kw("READ") {
                self.eat_kw("ONLY");
                self.eat_punct('=');
                self.i += 1;
            } else {
                return Err(self.err("a database option"));
            }
        }
        Ok((charset, collation))
    }

    fn create_table(&mut self, or_replace: bool, temporary: bool) -> Result<Statement, ParseError> {
        let if_not_exists = self.if_not_exists();
        let name = self.name()?;
        // `LIKE t` or `(LIKE t)`.
        let parenthesised = self.peek_punct('(') && self.peek_kw_at(1, "LIKE");
        if parenthesised || self.eat_kw("LIKE") {
            if parenthesised {
                self.i += 2;
            }
            let like = self.name()?;
            if parenthesised {
                self.expect_punct(')')?;
            }
            return Ok(Statement::CreateTable {
                name,
                if_not_exists,
                or_replace,
                temporary,
                body: CreateBody::Like(like),
                charset: None,
                collation: None,
            });
        }
        let mut columns = Vec::new();
        let mut primary_key = None;
        let mut json_checks = Vec::new();
        let mut as_select = false;
        let mut period = false;
        let mut system_versioning = false;
        if self.peek_punct('(') && !self.peek_kw_at(1, "SELECT") {
            self.i += 1;
            loop {
                period |= self.peek_kw("PERIOD");
                self.create_element(&mut columns, &mut primary_key, &mut json_checks)?;
                if self.eat_punct(',') {
                    continue;
                }
                self.expect_punct(')')?;
                break;
            }
        }
        let (mut charset, mut collation) = (None, None);
        while !self.at_end() {
            if self.eat_kws(&["WITH", "SYSTEM", "VERSIONING"]) {
                system_versioning = true;
                continue;
            }
            if self.peek_kw("SELECT")
                || self.peek_kw("AS")
                || self.peek_kw("WITH")
                || self.peek_punct('(')
            {
                as_select = true;
                self.i = self.toks.len();
                break;
            }
            if (self.peek_kw("IGNORE") || self.peek_kw("REPLACE"))
                && (self.peek_kw_at(1, "SELECT")
                    || self.peek_kw_at(1, "AS")
                    || self.peek_at(1) == Some(&Tok::Punct('(')))
            {
                as_select = true;
                self.i = self.toks.len();
                break;
            }
            self.table_option(&mut charset, &mut collation)?;
        }
        Ok(Statement::CreateTable {
            name,
            if_not_exists,
            or_replace,
            temporary,
            body: CreateBody::Columns {
                columns,
                primary_key,
                json_checks,
                as_select,
                implicit_row_period: system_versioning && !period,
            },
            charset,
            collation,
        })
    }

    /// One table option (or partitioning clause, or separator); records
    /// the default charset and collation.
    fn table_option(
        &mut self,
        charset: &mut Option<String>,
        collation: &mut Option<String>,
    ) -> Result<(), ParseError> {
        if self.eat_kw("DEFAULT") {
            return Ok(());
        }
        if self.eat_kws(&["CHARACTER", "SET"]) || self.eat_kw("CHARSET") {
            self.eat_punct('=');
            *charset = Some(self.charset_name()?);
        } else if self.eat_kw("COLLATE") {
            self.eat_punct('=');
            *collation = Some(self.charset_name()?);
        } else if self.eat_kw("PARTITION")
            || self.eat_kw("PARTITIONS")
            || self.eat_kw("SUBPARTITION")
        {
            // Partitioning runs to the end of the statement (or the list item).
            while !self.at_end()
                && !self.peek_punct(',')
                && !self.peek_kw("SELECT")
                && !self.peek_kw("AS")
            {
                self.skip_one();
            }
        } else {
            self.skip_one();
        }
        Ok(())
    }

    fn create_element(
        &mut self,
        columns: &mut Vec<ColumnDef>,
        primary_key: &mut Option<Vec<String>>,
        json_checks: &mut Vec<String>,
    ) -> Result<(), ParseError> {
        match self.constraint()? {
            Some(Constraint::PrimaryKey(cols)) => *primary_key = Some(cols),
            Some(Constraint::JsonCheck(col)) => json_checks.push(col),
            Some(Constraint::Other) => {}
            None => {
                let c = self.column_def(false)?;
                if c.primary_key {
                    *primary_key = Some(vec![c.name.clone()]);
                }
                columns.push(c);
            }
        }
        Ok(())
    }

    /// A table constraint or index definition, if one starts here.
    fn constraint(&mut self) -> Result<Option<Constraint>, ParseError> {
        let Some(Tok::Word {
            text,
            quoted: false,
        }) = self.peek()
        else {
            return Ok(None);
        };
        // `t1.index int` is a column named index.
        if self.peek_at(1) == Some(&Tok::Punct('.')) {
            return Ok(None);
        }
        let w = text.to_ascii_uppercase();
        match w.as_str() {
            "CONSTRAINT" => {
                self.i += 1;
                if !(self.peek_kw("PRIMARY")
                    || self.peek_kw("UNIQUE")
                    || self.peek_kw("FOREIGN")
                    || self.peek_kw("CHECK"))
                {
                    self.ident()?;
                }
                self.constraint()?
                    .map(Some)
                    .ok_or_else(|| self.err("a constraint"))
            }
            "PRIMARY" => {
                self.i += 1;
                self.expect_kw("KEY")?;
                // [index_name] [USING type] (key_part, …)
                while !self.peek_punct('(') && !self.at_end() {
                    self.i += 1;
                }
                let cols = self.key_parts()?;
                self.skip_item();
                Ok(Some(Constraint::PrimaryKey(cols)))
            }
            "CHECK" => {
                self.i += 1;
                let body = self.group_tokens();
                self.skip_item();
                Ok(Some(
                    json_valid_column(&body).map_or(Constraint::Other, Constraint::JsonCheck),
                ))
            }
            "KEY" | "INDEX" | "UNIQUE" | "FULLTEXT" | "SPATIAL" | "FOREIGN" | "PERIOD"
            | "VECTOR" => {
                self.skip_item();
                Ok(Some(Constraint::Other))
            }
            _ => Ok(None),
        }
    }

    /// `(a, b(10) DESC, …)`: the column names.
    fn key_parts(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect_punct('(')?;
        let mut cols = Vec::new();
        loop {
            if self.peek_punct('(') {
                // A functional key part: no column of its own.
                self.skip_one();
            } else {
                cols.push(self.ident()?);
            }
            self.skip_item();
            if self.eat_punct(',') {
                continue;
            }
            self.expect_punct(')')?;
            return Ok(cols);
        }
    }

    /// `name type [attributes]`. In ALTER, FIRST/AFTER end it too.
    fn column_def(&mut self, in_alter: bool) -> Result<ColumnDef, ParseError> {
        // Names may be qualified (`db.t.c`): the last part is the column.
        let mut name = self.ident()?;
        while self.peek_punct('.') {
            self.i += 1;
            name = self.ident()?;
        }
        let mut ty = self.data_type()?;
        let mut primary_key = false;
        let mut json_check = false;
        loop {
            if self.at_end() || self.peek_punct(',') || self.peek_punct(')') {
                break;
            }
            if in_alter && (self.peek_kw("FIRST") || self.peek_kw("AFTER")) {
                break;
            }
            let Some(Tok::Word {
                text,
                quoted: false,
            }) = self.peek()
            else {
                self.skip_one();
                continue;
            };
            match text.to_ascii_uppercase().as_str() {
                "UNSIGNED" => {
                    self.i += 1;
                    ty.unsigned = true;
                }
                "SIGNED" => self.i += 1,
                "ZEROFILL" => {
                    self.i += 1;
                    ty.zerofill = true;
                    ty.unsigned = true;
                }
                "BINARY" => {
                    self.i += 1;
                    ty.binary = true;
                }
                "BYTE" => {
                    // CHAR(n) BYTE is BINARY(n).
                    self.i += 1;
                    ty.charset = Some("binary".into());
                }
                "ASCII" => {
                    self.i += 1;
                    ty.charset = Some("latin1".into());
                }
                "UNICODE" => {
                    self.i += 1;
                    ty.charset = Some("ucs2".into());
                }
                "CHARACTER" if self.peek_kw_at(1, "SET") => {
                    self.i += 2;
                    ty.charset = Some(self.charset_name()?);
                }
                "CHARSET" => {
                    self.i += 1;
                    ty.charset = Some(self.charset_name()?);
                }
                "COLLATE" => {
                    self.i += 1;
                    ty.collation = Some(self.charset_name()?);
                }
                "PRIMARY" => {
                    self.i += 1;
                    self.expect_kw("KEY")?;
                    primary_key = true;
                }
                "KEY" => {
                    // A bare KEY on a column means PRIMARY KEY.
                    self.i += 1;
                    primary_key = true;
                }
                "UNIQUE" => {
                    self.i += 1;
                    self.eat_kw("KEY");
                }
                "DEFAULT" => {
                    self.i += 1;
                    self.skip_expr();
                }
                "ON" => {
                    // ON UPDATE expr
                    self.i += 2;
                    self.skip_expr();
                }
                "CHECK" => {
                    self.i += 1;
                    let body = self.group_tokens();
                    if json_valid_column(&body).is_some_and(|c| c.eq_ignore_ascii_case(&name)) {
                        json_check = true;
                    }
                }
                "REFERENCES" => {
                    // REFERENCES t (cols) [MATCH …] [ON DELETE …] [ON UPDATE …]
                    self.i += 1;
                    self.name()?;
                    if self.peek_punct('(') {
                        self.skip_one();
                    }
                    loop {
                        if self.eat_kw("MATCH") {
                            self.i += 1;
                        } else if self.peek_kw("ON")
                            && (self.peek_kw_at(1, "DELETE") || self.peek_kw_at(1, "UPDATE"))
                        {
                            self.i += 2;
                            // SET NULL, SET DEFAULT, NO ACTION: two words.
                            let _two_words = self.eat_kw("SET") || self.eat_kw("NO");
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                }
                _ => self.skip_one(),
            }
        }
        Ok(ColumnDef {
            name,
            ty,
            primary_key,
            json_check,
        })
    }

    /// Skips a value expression: a literal, a name, a function call or a
    /// parenthesised expression.
    fn skip_expr(&mut self) {
        while self.peek_punct('-') || self.peek_punct('+') {
            self.i += 1;
        }
        match self.peek() {
            Some(Tok::Punct('(')) => self.skip_one(),
            Some(Tok::Word {
                text,
                quoted: false,
            }) => {
                let introducer = text.starts_with('_');
                self.i += 1;
                if introducer && matches!(self.peek(), Some(Tok::Str(_)) | Some(Tok::Hex(_))) {
                    self.i += 1;
                } else if self.peek_punct('(') {
                    self.skip_one();
                } else if self.peek_kw("VALUE") && self.peek_kw_at(1, "FOR") {
                    // NEXT VALUE FOR seq
                    self.i += 2;
                    let _ = self.name();
                }
            }
            Some(_) => self.i += 1,
            None => {}
        }
    }

    fn data_type(&mut self) -> Result<TypeSpec, ParseError> {
        let Some(Tok::Word {
            text,
            quoted: false,
        }) = self.peek()
        else {
            return Err(self.err("a data type"));
        };
        let first = text.to_ascii_lowercase();
        self.i += 1;
        let mut name = first.clone();
        // Multi-word type names.
        match first.as_str() {
            "double" if self.eat_kw("PRECISION") => name = "double precision".into(),
            "char" | "character" if self.eat_kw("VARYING") => name = "varchar".into(),
            "national" => {
                if self.eat_kw("VARCHAR") {
                    name = "nvarchar".into();
                } else if self.eat_kw("CHAR") || self.eat_kw("CHARACTER") {
                    name = if self.eat_kw("VARYING") {
                        "nvarchar"
                    } else {
                        "nchar"
                    }
                    .into();
                } else {
                    return Err(self.err("CHAR or VARCHAR after NATIONAL"));
                }
            }
            "nchar" if self.eat_kw("VARYING") => name = "nvarchar".into(),
            "long" => {
                if self.eat_kw("VARBINARY") {
                    name = "long varbinary".into();
                } else if self.eat_kws(&["CHAR", "VARYING"]) || self.eat_kw("VARCHAR") {
                    name = "long varchar".into();
                }
            }
            _ => {}
        }
        let mut ty = TypeSpec {
            name,
            ..Default::default()
        };
        if self.peek_punct('(') {
            self.i += 1;
            loop {
                match self.peek().cloned() {
                    Some(Tok::Num(n)) => {
                        self.i += 1;
                        ty.args.push(n.parse().map_err(|_| self.err("a length"))?);
                    }
                    Some(Tok::Str(s)) => {
                        self.i += 1;
                        ty.values.push(s);
                    }
                    Some(Tok::Word { text, quoted: true }) => {
                        // "value" in enum lists (double quotes).
                        self.i += 1;
                        ty.values.push(text);
                    }
                    Some(Tok::Hex(h)) => {
                        self.i += 1;
                        ty.values.push(hex_literal(&h));
                    }
                    Some(Tok::Word {
                        text,
                        quoted: false,
                    }) if text.starts_with('_') => {
                        // _charset 'value'
                        self.i += 1;
                    }
                    _ => return Err(self.err("a length or value")),
                }
                if self.eat_punct(',') {
                    continue;
                }
                if matches!(self.peek(), Some(Tok::Str(_))) {
                    continue; // after an introducer
                }
                self.expect_punct(')')?;
                break;
            }
        }
        Ok(ty)
    }

    fn alter(&mut self) -> Result<Statement, ParseError> {
        self.i += 1;
        match self.object_kind().as_deref() {
            Some("TABLE") => {
                self.i += 1;
                self.alter_table()
            }
            Some("DATABASE") | Some("SCHEMA") => {
                self.i += 1;
                let name = if self.peek_kw("DEFAULT")
                    || self.peek_kw("CHARACTER")
                    || self.peek_kw("CHARSET")
                    || self.peek_kw("COLLATE")
                {
                    None
                } else {
                    Some(self.ident()?)
                };
                if self.eat_kw("UPGRADE") {
                    self.i = self.toks.len();
                    return Ok(Statement::NoSchemaChange("ALTER DATABASE UPGRADE".into()));
                }
                let (charset, collation) = self.database_options()?;
                Ok(Statement::AlterDatabase {
                    name,
                    charset,
                    collation,
                })
            }
            Some(w) if OTHER_OBJECTS.contains(&w) => {
                self.i = self.toks.len();
                Ok(Statement::NoSchemaChange(format!("ALTER {w}")))
            }
            _ => Err(self.err("TABLE, DATABASE or another object after ALTER")),
        }
    }

    fn alter_table(&mut self) -> Result<Statement, ParseError> {
        self.if_exists();
        let name = self.name()?;
        if self.eat_kw("WAIT") {
            self.i += 1;
        }
        self.eat_kw("NOWAIT");
        let mut specs = Vec::new();
        while !self.at_end() {
            self.alter_spec(&mut specs)?;
            if !self.eat_punct(',') && !self.at_end() {
                // Table options follow each other without commas.
                continue;
            }
        }
        Ok(Statement::AlterTable { name, specs })
    }

    fn position(&mut self) -> Result<Position, ParseError> {
        if self.eat_kw("FIRST") {
            Ok(Position::First)
        } else if self.eat_kw("AFTER") {
            Ok(Position::After(self.ident()?))
        } else {
            Ok(Position::Last)
        }
    }

    fn alter_spec(&mut self, specs: &mut Vec<AlterSpec>) -> Result<(), ParseError> {
        let Some(Tok::Word {
            text,
            quoted: false,
        }) = self.peek()
        else {
            self.skip_one();
            return Ok(());
        };
        match text.to_ascii_uppercase().as_str() {
            "ADD" => {
                self.i += 1;
                let column_kw = self.eat_kw("COLUMN");
                let ine = self.if_not_exists();
                if !column_kw {
                    match self.constraint()? {
                        Some(Constraint::PrimaryKey(cols)) => {
                            specs.push(AlterSpec::AddPrimaryKey(cols));
                            return Ok(());
                        }
                        Some(Constraint::JsonCheck(c)) => {
                            specs.push(AlterSpec::JsonCheck(c));
                            return Ok(());
                        }
                        Some(Constraint::Other) => return Ok(()),
                        None => {}
                    }
                    if self.eat_kws(&["SYSTEM", "VERSIONING"]) {
                        specs.push(AlterSpec::SystemVersioning(true));
                        return Ok(());
                    }
                    if self.peek_kw("PARTITION") || self.peek_kw("PERIOD") {
                        self.skip_item();
                        return Ok(());
                    }
                }
                if self.eat_punct('(') {
                    let mut cols = Vec::new();
                    let mut keys = Vec::new();
                    loop {
                        match self.constraint()? {
                            Some(Constraint::PrimaryKey(k)) => {
                                keys.push(AlterSpec::AddPrimaryKey(k))
                            }
                            Some(Constraint::JsonCheck(c)) => keys.push(AlterSpec::JsonCheck(c)),
                            Some(Constraint::Other) => {}
                            None => {
                                let c = self.column_def(false)?;
                                if c.primary_key {
                                    keys.push(AlterSpec::AddPrimaryKey(vec![c.name.clone()]));
                                }
                                cols.push((c, Position::Last));
                            }
                        }
                        if self.eat_punct(',') {
                            continue;
                        }
                        self.expect_punct(')')?;
                        break;
                    }
                    // The columns exist before any key on them.
                    specs.push(AlterSpec::AddColumns(cols, ine));
                    specs.extend(keys);
                } else {
                    let c = self.column_def(true)?;
                    let pos = self.position()?;
                    let pk = c.primary_key.then(|| vec![c.name.clone()]);
                    specs.push(AlterSpec::AddColumns(vec![(c, pos)], ine));
                    if let Some(pk) = pk {
                        specs.push(AlterSpec::AddPrimaryKey(pk));
                    }
                }
            }
            "DROP" => {
                self.i += 1;
                if self.eat_kws(&["PRIMARY", "KEY"]) {
                    specs.push(AlterSpec::DropPrimaryKey);
                } else if self.eat_kw("INDEX") || self.eat_kw("KEY") {
                    self.if_exists();
                    let n = self.ident()?;
                    if n.eq_ignore_ascii_case("PRIMARY") {
                        specs.push(AlterSpec::DropPrimaryKey);
                    }
                } else if self.eat_kws(&["SYSTEM", "VERSIONING"]) {
                    specs.push(AlterSpec::SystemVersioning(false));
                } else if self.peek_kw("FOREIGN")
                    || self.peek_kw("CONSTRAINT")
                    || self.peek_kw("CHECK")
                    || self.peek_kw("PARTITION")
                    || self.peek_kw("PERIOD")
                {
                    self.skip_item();
                } else {
                    self.eat_kw("COLUMN");
                    let if_exists = self.if_exists();
                    let name = self.ident()?;
                    self.eat_kw("RESTRICT");
                    self.eat_kw("CASCADE");
                    specs.push(AlterSpec::DropColumn { name, if_exists });
                }
            }
            word @ ("MODIFY" | "CHANGE") => {
                // CHANGE names the old column before the new definition.
                let change = word == "CHANGE";
                self.i += 1;
                self.eat_kw("COLUMN");
                let if_exists = self.if_exists();
                let old = if change { Some(self.ident()?) } else { None };
                let column = self.column_def(true)?;
                let position = self.position()?;
                let pk = column.primary_key.then(|| vec![column.name.clone()]);
                specs.push(match old {
                    Some(old) => AlterSpec::Change {
                        old,
                        column,
                        position,
                        if_exists,
                    },
                    None => AlterSpec::Modify {
                        column,
                        position,
                        if_exists,
                    },
                });
                if let Some(pk) = pk {
                    specs.push(AlterSpec::AddPrimaryKey(pk));
                }
            }
            "RENAME" => {
                self.i += 1;
                if self.eat_kw("COLUMN") {
                    let old = self.ident()?;
                    self.expect_kw("TO")?;
                    let new = self.ident()?;
                    specs.push(AlterSpec::RenameColumn { old, new });
                } else if self.eat_kw("INDEX") || self.eat_kw("KEY") {
                    self.skip_item();
                } else {
                    if !self.eat_kw("TO") && !self.eat_kw("AS") {
                        self.eat_punct('=');
                    }
                    specs.push(AlterSpec::RenameTable(self.name()?));
                }
            }
            "CONVERT" => {
                self.i += 1;
                self.expect_kw("TO")?;
                if !self.eat_kws(&["CHARACTER", "SET"]) {
                    self.expect_kw("CHARSET")?;
                }
                let charset = if self.eat_kw("DEFAULT") {
                    None
                } else {
                    Some(self.charset_name()?)
                };
                let collation = if self.eat_kw("COLLATE") {
                    self.eat_punct('=');
                    Some(self.charset_name()?)
                } else {
                    None
                };
                specs.push(AlterSpec::Convert { charset, collation });
            }
            "ALTER" => {
                // ALTER [COLUMN] c SET DEFAULT … | DROP DEFAULT | SET
                // [IN]VISIBLE, ALTER INDEX i [IN]VISIBLE: nothing logged
                // changes.
                self.skip_item();
            }
            "PARTITION" | "PARTITIONS" | "SUBPARTITION" => {
                while !self.at_end() {
                    self.skip_one();
                }
            }
            _ => {
                let (mut charset, mut collation) = (None, None);
                while !self.at_end() && !self.peek_punct(',') {
                    if self.peek_kw("ADD")
                        || self.peek_kw("DROP")
                        || self.peek_kw("MODIFY")
                        || self.peek_kw("CHANGE")
                        || self.peek_kw("RENAME")
                        || self.peek_kw("CONVERT")
                    {
                        break;
                    }
                    self.table_option(&mut charset, &mut collation)?;
                }
                if charset.is_some() || collation.is_some() {
                    specs.push(AlterSpec::DefaultCharset { charset, collation });
                }
            }
        }
        Ok(())
    }

    fn drop(&mut self) -> Result<Statement, ParseError> {
        self.i += 1;
        let temporary = self.eat_kw("TEMPORARY");
        if self.eat_kw("TABLE") || self.eat_kw("TABLES") || self.eat_kw("SEQUENCE") {
            self.if_exists();
            let mut names = vec![self.name()?];
            while self.eat_punct(',') {
                names.push(self.name()?);
            }
            while !self.at_end() {
                self.i += 1; // WAIT n, NOWAIT, RESTRICT, CASCADE
            }
            return Ok(Statement::DropTable { names, temporary });
        }
        if self.eat_kw("DATABASE") || self.eat_kw("SCHEMA") {
            let if_exists = self.if_exists();
            let name = self.ident()?;
            return Ok(Statement::DropDatabase { name, if_exists });
        }
        match self.object_kind().as_deref() {
            Some(w) if OTHER_OBJECTS.contains(&w) => {
                self.i = self.toks.len();
                Ok(Statement::NoSchemaChange(format!("DROP {w}")))
            }
            _ => Err(self.err("TABLE, DATABASE or another object after DROP")),
        }
    }

    fn rename(&mut self) -> Result<Statement, ParseError> {
        self.i += 1;
        if self.eat_kw("USER") {
            self.i = self.toks.len();
            return Ok(Statement::NoSchemaChange("RENAME USER".into()));
        }
        if !self.eat_kw("TABLE") {
            self.expect_kw("TABLES")?;
        }
        self.if_exists();
        let mut pairs = Vec::new();
        loop {
            let from = self.name()?;
            if self.eat_kw("WAIT") {
                self.i += 1;
            }
            self.eat_kw("NOWAIT");
            self.expect_kw("TO")?;
            let to = self.name()?;
            pairs.push((from, to));
            if !self.eat_punct(',') {
                break;
            }
        }
        Ok(Statement::RenameTable { pairs })
    }
}

/// The columns of a MariaDB sequence.
fn sequence_columns() -> Vec<ColumnDef> {
    let col = |name: &str, ty: &str, width: u64, unsigned: bool| ColumnDef {
        name: name.into(),
        ty: TypeSpec {
            name: ty.into(),
            args: vec![width],
            unsigned,
            ..Default::default()
        },
        primary_key: false,
        json_check: false,
    };
    vec![
        col("next_not_cached_value", "bigint", 21, false),
        col("minimum_value", "bigint", 21, false),
        col("maximum_value", "bigint", 21, false),
        col("start_value", "bigint", 21, false),
        col("increment", "bigint", 21, false),
        col("cache_size", "bigint", 21, true),
        col("cycle_option", "tinyint", 1, true),
        col("cycle_count", "bigint", 21, false),
    ]
}

enum Constraint {
    PrimaryKey(Vec<String>),
    JsonCheck(String),
    Other,
}

/// `json_valid(`col`)` → `col`.
fn json_valid_column(body: &[Tok]) -> Option<String> {
    match body {
        [Tok::Word {
            text: f,
            quoted: false,
        }, Tok::Punct('('), Tok::Word { text: c, .. }, Tok::Punct(')')]
            if f.eq_ignore_ascii_case("json_valid") =>
        {
            Some(c.clone())
        }
        _ => None,
    }
}

/// `0xE4` / `x'E4'` / `b'101'` as the bytes they denote (lossy text).
fn hex_literal(h: &str) -> String {
    let lower = h.to_ascii_lowercase();
    let bytes: Vec<u8> = if let Some(hex) = lower
        .strip_prefix("0x")
        .or_else(|| lower.strip_prefix("x'").map(|s| s.trim_end_matches('\'')))
    {
        (0..hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
            .collect()
    } else {
        let bits = lower
            .trim_start_matches("0b")
            .trim_start_matches("b'")
            .trim_end_matches('\'');
        let v = u64::from_str_radix(bits, 2).unwrap_or(0);
        v.to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect()
    };
    String::from_utf8_lossy(&bytes).into_owned()
}
