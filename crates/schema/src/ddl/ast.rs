//! What a DDL statement says about table structure. Everything that does not
//! change how rows are logged (indexes, engines, partitions, grants, …) is
//! parsed past and dropped here.

/// `[db.]name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub db: Option<String>,
    pub name: String,
}

/// A data type as written, before aliases are resolved (`types.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypeSpec {
    /// Lower case; multi-word names joined by one space (`double precision`).
    pub name: String,
    /// Numbers in `(…)`: length, or precision and scale.
    pub args: Vec<u64>,
    /// Enum/set values.
    pub values: Vec<String>,
    pub unsigned: bool,
    pub zerofill: bool,
    pub charset: Option<String>,
    pub collation: Option<String>,
    /// The `BINARY` attribute of a character type (binary collation).
    pub binary: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub ty: TypeSpec,
    /// `PRIMARY KEY` (or bare `KEY`) written on the column.
    pub primary_key: bool,
    /// `CHECK (json_valid(col))` on the column (MariaDB's JSON).
    pub json_check: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    Last,
    First,
    After(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterSpec {
    AddColumns(Vec<(ColumnDef, Position)>, bool /* IF NOT EXISTS */),
    AddPrimaryKey(Vec<String>),
    DropPrimaryKey,
    DropColumn {
        name: String,
        if_exists: bool,
    },
    Modify {
        column: ColumnDef,
        position: Position,
        if_exists: bool,
    },
    Change {
        old: String,
        column: ColumnDef,
        position: Position,
        if_exists: bool,
    },
    RenameColumn {
        old: String,
        new: String,
    },
    RenameTable(Name),
    /// `CONVERT TO CHARACTER SET` (`None`: `DEFAULT`, the database's).
    Convert {
        charset: Option<String>,
        collation: Option<String>,
    },
    /// `[DEFAULT] CHARACTER SET`/`COLLATE`: the default of new columns.
    DefaultCharset {
        charset: Option<String>,
        collation: Option<String>,
    },
    /// A `CHECK (json_valid(col))` added to the table.
    JsonCheck(String),
    /// `ADD SYSTEM VERSIONING` (true) / `DROP SYSTEM VERSIONING` (false):
    /// MariaDB's implicit `row_start`/`row_end` columns come and go.
    SystemVersioning(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateBody {
    Columns {
        columns: Vec<ColumnDef>,
        primary_key: Option<Vec<String>>,
        /// Table-level `CHECK (json_valid(col))` constraints.
        json_checks: Vec<String>,
        /// Columns come partly from a `SELECT`: only the server knows them.
        as_select: bool,
        /// `WITH SYSTEM VERSIONING` without a declared period: MariaDB adds
        /// invisible `row_start` and `row_end` columns.
        implicit_row_period: bool,
    },
    Like(Name),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    CreateDatabase {
        name: String,
        if_not_exists: bool,
        or_replace: bool,
        charset: Option<String>,
        collation: Option<String>,
    },
    AlterDatabase {
        name: Option<String>,
        charset: Option<String>,
        collation: Option<String>,
    },
    DropDatabase {
        name: String,
        if_exists: bool,
    },
    CreateTable {
        name: Name,
        if_not_exists: bool,
        or_replace: bool,
        temporary: bool,
        body: CreateBody,
        charset: Option<String>,
        collation: Option<String>,
    },
    AlterTable {
        name: Name,
        specs: Vec<AlterSpec>,
    },
    DropTable {
        names: Vec<Name>,
        temporary: bool,
    },
    RenameTable {
        pairs: Vec<(Name, Name)>,
    },
    /// Recognised and without effect on table structure (`CREATE TRIGGER`,
    /// `GRANT`, `CREATE INDEX`, …): the words that name it.
    NoSchemaChange(String),
}
