//! Tables F1–F4 of `maxwell-compat.md` (§1.5–§1.8), row by row: each row's
//! expected result is what Maxwell's own filter classes returned.

use super::*;

fn filter(text: &str) -> Filter {
    Filter::parse(text, "maxwell").unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// The Java regex of each name pattern of the first rule: (db, table).
fn patterns(f: &Filter) -> (String, String) {
    let r = &f.rules[0];
    (r.database.java().to_string(), r.table.java().to_string())
}

// ---------------------------------------------------------------- F1

/// Inputs Maxwell accepts, with the normalised text it prints.
#[rustfmt::skip]
const F1_ACCEPTED: &[(&str, &str)] = &[
    ("include:/foo.*/.bar", "include: /foo.*/.bar"),
    ("include:`foo`.*", "include: foo.*"),
    ("include:'foo'.*", "include: foo.*"),
    ("include:\"foo\".*", "include: foo.*"),
    ("include: 1foo.bar", "include: 1foo.bar"),
    ("include: _foo._bar", "include: _foo._bar"),
    (r"include: /\w+ \/[a-z]*1/.*", r"include: /\w+ \/[a-z]*1/.*"),
    ("include: 1foo.bar.column=foo", "include: 1foo.bar.column=foo"),
    ("exclude: *.* include: db1.*", "exclude: *.*, include: db1.*"),
    ("EXCLUDE: *.*, Include: db1.*", "exclude: *.*, include: db1.*"),
    ("exclude:*.*,include:db.*", "exclude: *.*, include: db.*"),
    ("exclude:*.*\ninclude:db.*", "exclude: *.*, include: db.*"),
    ("exclude:*.*,\ninclude:db.*", "exclude: *.*, include: db.*"),
    ("include: db.*,", "include: db.*"),
    ("", ""),
    ("   ", ""),
    ("include: my-db.tbl", "include: my-db.tbl"),
    ("include: `tbl$x`.*", "include: tbl$x.*"),
    ("include: 'a.b'.*", "include: a.b.*"),
    ("include: `we\\`ird`.*", "include: we`ird.*"),
    ("include: 测试库.表格", "include: 测试库.表格"),
    ("include: Ä.*", "include: Ä.*"),
    (r"include: db./table_\d+/", r"include: db./table_\d+/"),
    ("include: db.tbl.col='1.5'", "include: db.tbl.col=1.5"),
    ("include: db.tbl.col=10", "include: db.tbl.col=10"),
    ("include: db.tbl.col='hello world'", "include: db.tbl.col=hello world"),
    ("include: db.tbl.col=\"x y\"", "include: db.tbl.col=x y"),
    ("include: db.tbl.col='a,b'", "include: db.tbl.col=a,b"),
    ("exclude: db.tbl.col = reject", "exclude: db.tbl.col=reject"),
    ("include: db.tbl.col=null", "include: db.tbl.col=null"),
    ("include: db.tbl.col=NULL", "include: db.tbl.col=NULL"),
    ("include: db.tbl.col=*", "include: db.tbl.col=*"),
    ("include: db.tbl.col=/^a/", "include: db.tbl.col=/^a/"),
];

/// Inputs Maxwell refuses (or hangs or crashes on), with a fragment of
/// sluice's message.
#[rustfmt::skip]
const F1_REFUSED: &[(&str, &str)] = &[
    ("include: db1.*, db2.*", "Unknown filter keyword: db2"),
    ("exclude: educard.*, include: seckill.user,seckill.orders", "Unknown filter keyword: seckill"),
    ("bl: seria.*", "Unknown filter keyword: bl"),
    ("exclude:*.*,exclude.v3*", "expected ':', saw '.'"),
    ("include: zone_*.order", "expected '.', saw '*'"),
    ("include: db", "expected '.', saw end of input"),
    ("include: my db.*", "expected '.', saw 'db'"),
    ("include: db.tbl$x", "expected [include, exclude, blacklist]"),
    ("include: db.tbl*", "expected [include, exclude, blacklist]"),
    ("include: db.tbl;", "expected [include, exclude, blacklist]"),
    ("exclude: db.tbl # c", "expected [include, exclude, blacklist]"),
    ("include: db.tbl.col=1.5", "expected [include, exclude, blacklist]"),
    ("include: db.tbl.col=hello world", "Unknown filter keyword: world"),
    ("include: db.tbl.col=-1", "Expected string or regexp, saw the number -1"),
    ("include: db.tbl.`col`=1", "expected column name"),
    ("include: db.*.*", "expected column name"),
    ("include: 'it''s'.*", "expected '.', saw quoted 's'"),
    ("include: /[/.*", "invalid regular expression /[/"),
    ("include: /unterminated", "unterminated regular expression"),
];

#[test]
fn f1_accepted_inputs_and_their_normalised_text() {
    for (input, normalised) in F1_ACCEPTED {
        assert_eq!(filter(input).to_string(), *normalised, "input {input:?}");
    }
}

#[test]
fn f1_refused_inputs() {
    for (input, fragment) in F1_REFUSED {
        match Filter::parse(input, "maxwell") {
            Ok(f) => panic!("{input:?} was accepted as {f}"),
            Err(e) => assert!(
                e.to_string().contains(fragment),
                "{input:?}: {e} (expected {fragment:?})"
            ),
        }
    }
}

#[test]
fn f1_compiled_patterns() {
    let cases: &[(&str, &str, &str)] = &[
        ("include:/foo.*/.bar", "foo.*", "^bar$"),
        ("include:`foo`.*", "^foo$", ""),
        ("include: 1foo.bar", "^1foo$", "^bar$"),
        ("include: _foo._bar", "^_foo$", "^_bar$"),
        (r"include: /\w+ \/[a-z]*1/.*", r"\w+ \/[a-z]*1", ""),
        ("include: my-db.tbl", "^my-db$", "^tbl$"),
        ("include: `tbl$x`.*", "^tbl$x$", ""),
        ("include: 'a.b'.*", "^a.b$", ""),
        ("include: `we\\`ird`.*", "^we`ird$", ""),
        ("include: 测试库.表格", "^测试库$", "^表格$"),
        (r"include: db./table_\d+/", "^db$", r"table_\d+"),
        (r"include: /a\/b/.*", r"a\/b", ""),
    ];
    for (input, db, table) in cases {
        assert_eq!(
            patterns(&filter(input)),
            (db.to_string(), table.to_string()),
            "{input:?}"
        );
    }
    let values: &[(&str, &str)] = &[
        ("include: db.tbl.col='1.5'", "^1.5$"),
        ("include: db.tbl.col=10", "^10$"),
        ("include: db.tbl.col='hello world'", "^hello world$"),
        ("include: db.tbl.col=\"x y\"", "^x y$"),
        ("include: db.tbl.col='a,b'", "^a,b$"),
        ("include: db.tbl.col=*", ""),
        ("include: db.tbl.col=/^a/", "^a"),
    ];
    for (input, value) in values {
        let f = filter(input);
        let c = f.rules[0].column.as_ref().unwrap();
        assert_eq!(
            (c.column.as_str(), c.value.java()),
            ("col", *value),
            "{input:?}"
        );
    }
    for null in ["include: db.tbl.col=null", "include: db.tbl.col=NULL"] {
        assert!(
            filter(null).rules[0].column.as_ref().unwrap().null,
            "{null}"
        );
    }
}

#[test]
fn f1_errors_name_the_rule() {
    let e = Filter::parse("exclude: *.*, include: /[/.*", "maxwell").unwrap_err();
    assert_eq!(e.rule, 2);
    assert!(e.text.starts_with("include: /[/"), "{e:?}");
    let e = Filter::parse("include: db.*, exclude: /unterminated", "maxwell").unwrap_err();
    assert_eq!(e.rule, 2);
    assert!(e.to_string().contains("exclude: /unterminated"), "{e}");
}

// ---------------------------------------------------------------- F2

/// (filter, db, table, includes)
#[rustfmt::skip]
const F2: &[(&str, &str, &str, bool)] = &[
    ("exclude: *.*, include: foo.bar", "foo", "bar", true),
    ("exclude: *.*, include: foo.bar", "anything", "else", false),
    ("include: db1.*", "db2", "t", true),
    ("exclude: *.*, include: db1.*", "db1", "t", true),
    ("exclude: *.*, include: db1.*", "db2", "t", false),
    (r"exclude: foodb.*, include: foodb.tbl, include: foodb./table_\d+/", "foodb", "tbl", true),
    (r"exclude: foodb.*, include: foodb.tbl, include: foodb./table_\d+/", "foodb", "table_12", true),
    (r"exclude: foodb.*, include: foodb.tbl, include: foodb./table_\d+/", "foodb", "other", false),
    (r"exclude: foodb.*, include: foodb.tbl, include: foodb./table_\d+/", "foodb", "mytable_1x", true),
    (r"exclude: foodb.*, include: foodb.tbl, include: foodb./table_\d+/", "otherdb", "x", true),
    ("exclude: /foo/.*", "barfoobaz", "t", false),
    ("exclude: foo.*", "barfoobaz", "t", true),
    ("exclude: foo.*", "FOO", "t", true),
    ("exclude: Foo.*", "foo", "t", true),
    ("exclude: *.*, include: 'a.b'.*", "axb", "t", true),
    ("include: foo.bar, exclude: foo.*", "foo", "bar", false),
    ("exclude: foo.*, include: foo.bar", "foo", "bar", true),
    ("exclude: *.minimal", "shard_1", "minimal", false),
    ("exclude: *.minimal", "foo", "bars", true),
    ("exclude: *.*, include: foo.bar.col=val", "foo", "bar", false),
    ("exclude: *.*, include: db1.*", "db1", "", true),
    ("exclude: *.*, include: db1.tbl", "db1", "", false),
    ("exclude: *.*, include: db1./t/", "db1", "", false),
    ("exclude: *.*, include: db1./.*/", "db1", "", true),
    ("exclude: db1.*", "db1", "", false),
    ("exclude: *.tbl", "db1", "", true),
    ("blacklist: seria.*", "seria", "var", false),
    ("blacklist: seria.*", "foo", "bar", true),
    ("blacklist: bad_db.*, include: bad_db.t", "bad_db", "t", true),
    ("", "any", "thing", true),
];

#[test]
fn f2_includes() {
    for (text, db, table, expected) in F2 {
        assert_eq!(
            filter(text).includes(db, table),
            *expected,
            "{text:?} on {db}.{table}"
        );
    }
    // "blacklist and include don't mix": included, yet never read.
    assert!(filter("blacklist: bad_db.*, include: bad_db.t").is_table_blacklisted("bad_db", "t"));
}

// ---------------------------------------------------------------- F3

/// (filter, db, table, tableBlacklisted, dbBlacklisted, includes, systemWhitelisted)
#[rustfmt::skip]
const F3: &[(&str, &str, &str, bool, bool, bool, bool)] = &[
    ("blacklist: seria.*", "seria", "anything", true, true, false, false),
    ("blacklist: *.noseeum", "nodatabase", "noseeum", true, false, false, false),
    ("blacklist: *.noseeum", "nodatabase", "oicu", false, false, true, false),
    ("blacklist: /^tmp_/.*", "tmp_1", "x", true, true, false, false),
    ("blacklist: db./^tmp/", "db", "tmp_x", true, false, false, false),
    ("blacklist: maxwell.*", "maxwell", "heartbeats", false, false, false, true),
    ("blacklist: maxwell.*", "maxwell", "positions", false, false, false, false),
    ("", "mysql", "ha_health_check", true, false, true, false),
    ("", "mysql", "rds_heartbeat2", true, false, true, false),
    ("", "mysql", "user", false, false, true, false),
    ("exclude: db.*", "db", "t", false, false, false, false),
    ("blacklist: db.tbl.col=x", "db", "tbl", false, false, true, false),
];

#[test]
fn f3_blacklist_predicates() {
    for (text, db, table, tbl_bl, db_bl, includes, sys_wl) in F3 {
        let f = filter(text);
        let got = (
            f.is_table_blacklisted(db, table),
            f.is_database_blacklisted(db),
            f.includes(db, table),
            f.is_system_whitelisted(db, table),
        );
        assert_eq!(
            got,
            (*tbl_bl, *db_bl, *includes, *sys_wl),
            "{text:?} on {db}.{table}"
        );
    }
}

// ---------------------------------------------------------------- F4

/// A row value as sluice renders it in JSON.
type Row = &'static [(&'static str, &'static str)];

/// (filter, db, table, data, includes, couldInclude, includes(db, tbl, data))
#[rustfmt::skip]
const F4: &[(&str, &str, &str, Row, bool, bool, bool)] = &[
    ("exclude: *.*, include: foo.bar.col=val", "foo", "bar", &[("col", "\"val\"")], false, true, true),
    ("exclude: *.*, include: foo.bar.col=val", "foo", "bar", &[("col", "\"other\"")], false, true, false),
    ("exclude: *.*, include: no.go.col=val", "foo", "bar", &[("col", "\"val\"")], false, false, false),
    ("exclude: *.*, include: foo.bar.col=null", "foo", "bar", &[("col", "null")], false, true, true),
    ("exclude: *.*, include: foo.bar.col=null", "foo", "bar", &[("col", "\"null\"")], false, true, true),
    ("exclude: *.*, include: foo.bar.col=null", "foo", "bar", &[("col", "\"NULL\"")], false, true, true),
    ("exclude: *.*, include: foo.bar.col=null", "foo", "bar", &[("col", "\"Null\"")], false, true, false),
    ("exclude: *.*, include: foo.bar.col=null", "foo", "bar", &[("other", "\"x\"")], false, false, false),
    ("exclude: foo.bars.something=reject", "foo", "bars", &[("something", "\"reject\"")], true, false, false),
    ("exclude: foo.bars.something=reject", "foo", "bars", &[("something", "\"accept\"")], true, false, true),
    ("exclude: foo.bars, include: foo.bars.something=accept", "foo", "bars", &[("something", "\"accept\"")], false, true, true),
    ("exclude: foo.bars, include: foo.bars.something=accept", "foo", "bars", &[("something", "\"reject\"")], false, true, false),
    ("exclude: foo.bars.something=*, include: foo.bars.something=accept", "foo", "bars", &[("something", "\"accept\"")], true, true, true),
    ("exclude: foo.bars.something=*, include: foo.bars.something=accept", "foo", "bars", &[("something", "\"reject\"")], true, true, false),
    ("exclude: foo.bars.something=*", "foo", "bars", &[("something", "null")], true, false, false),
    ("exclude: foo.bars.notacolumn=*", "foo", "bars", &[("something", "\"x\"")], true, false, true),
    ("exclude: *.*.col_a=*", "x", "y", &[("col_a", "1")], true, false, false),
    ("exclude: *.*.col_a=*", "x", "y", &[("col_b", "1")], true, false, true),
    ("exclude: db.t.n=5", "db", "t", &[("n", "5")], true, false, false),
    ("exclude: db.t.n=5", "db", "t", &[("n", "15")], true, false, true),
    ("exclude: db.t.n=/5/", "db", "t", &[("n", "15")], true, false, false),
    ("exclude: db.t.n='5.0'", "db", "t", &[("n", "5.0")], true, false, false),
    ("exclude: db.t.n='5.0'", "db", "t", &[("n", "5.00")], true, false, true),
    ("exclude: db.t.d='1.5'", "db", "t", &[("d", "1.5")], true, false, false),
    ("exclude: db.t.Col=x", "db", "t", &[("col", "\"x\"")], true, false, true),
    ("exclude: db.t.c=X", "db", "t", &[("c", "\"x\"")], true, false, true),
    ("include: db.t.c=x, exclude: db.*", "db", "t", &[("c", "\"x\"")], false, true, false),
    ("exclude: db.*, include: db.t.c=x", "db", "t", &[("c", "\"x\"")], false, true, true),
    ("exclude: *.*, include: *.*.tenant=/^(1|2)$/", "a", "b", &[("tenant", "2")], false, true, true),
    ("exclude: *.*, include: *.*.tenant=/^(1|2)$/", "a", "b", &[("tenant", "12")], false, true, false),
    ("exclude: *.*, include: *.*.tenant=/1|2/", "a", "b", &[("tenant", "12")], false, true, true),
];

fn lookup(row: Row) -> impl FnMut(&str, &mut String) -> ColumnValue {
    move |column, buf| match row.iter().find(|(c, _)| *c == column) {
        None => ColumnValue::Absent,
        Some((_, json)) => value_text(json.as_bytes(), ValueKind::Scalar, buf),
    }
}

#[test]
fn f4_column_values() {
    for (text, db, table, row, includes, could, includes_row) in F4 {
        let f = filter(text);
        let got = (
            f.includes(db, table),
            f.could_include_from_column_filters(db, table, row.iter().map(|(c, _)| *c)),
            f.includes_row(db, table, lookup(row)),
        );
        assert_eq!(
            got,
            (*includes, *could, *includes_row),
            "{text:?} on {db}.{table} {row:?}"
        );
    }
}

#[test]
fn set_and_json_values_as_maxwell_stringifies_them() {
    let mut buf = String::new();
    assert_eq!(
        value_text(br#"["a","b"]"#, ValueKind::Set, &mut buf),
        ColumnValue::Text
    );
    assert_eq!(buf, "[a, b]");
    value_text(br#"{"k":"v"}"#, ValueKind::Json, &mut buf);
    assert_eq!(buf, r#"{"k":"v"}"#);
    value_text(br#""a\"b""#, ValueKind::Scalar, &mut buf);
    assert_eq!(buf, "a\"b");
    assert_eq!(
        value_text(b"null", ValueKind::Json, &mut buf),
        ColumnValue::Null
    );
    let f = filter(r"exclude: db.t.s=/^\[a, b\]$/");
    assert!(!f.includes_row("db", "t", |_, b| value_text(
        br#"["a","b"]"#,
        ValueKind::Set,
        b
    )));
}

// ------------------------------------------------------- legacy options

#[test]
fn legacy_options_translate_in_maxwell_order() {
    let opts = LegacyOptions {
        include_dbs: Some("a,b"),
        exclude_dbs: Some("c"),
        include_tables: Some("t"),
        exclude_tables: Some("u"),
        blacklist_dbs: Some("bad"),
        blacklist_tables: Some("tmp"),
        include_column_values: Some("tenant=1"),
    };
    let f = Filter::from_legacy(&opts, "maxwell").unwrap().unwrap();
    assert_eq!(
        f.to_string(),
        "blacklist: bad.*, blacklist: *.tmp, exclude: *.*, include: a.*, include: b.*, \
         exclude: c.*, include: *.t, exclude: *.u, exclude: *.*.tenant=*, include: *.*.tenant=1"
    );
    assert!(f.includes("a", "x") && !f.includes("z", "x") && f.includes("z", "t"));
    assert!(f.is_table_blacklisted("bad", "x") && f.is_table_blacklisted("a", "tmp"));

    assert!(Filter::from_legacy(&LegacyOptions::default(), "maxwell")
        .unwrap()
        .is_none());
    let only_exclude = LegacyOptions {
        exclude_dbs: Some("x,y,"),
        ..Default::default()
    };
    assert_eq!(
        only_exclude.filter_text().unwrap().as_deref(),
        Some("exclude: x.*, exclude: y.*")
    );
    let bad = LegacyOptions {
        include_column_values: Some("tenant"),
        ..Default::default()
    };
    assert!(bad.filter_text().is_err());
    // An empty list makes an empty name, which Maxwell's parser refuses too.
    let empty = LegacyOptions {
        include_dbs: Some(""),
        ..Default::default()
    };
    assert!(Filter::from_legacy(&empty, "maxwell").is_err());
}

// ------------------------------------------------------------ warnings

#[test]
fn warnings_for_filters_that_do_not_do_what_they_say() {
    let w = filter("include: db1.*").warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("has no effect") && w[0].contains("exclude: *.*, include: db1.*"));

    let w = filter("blacklist: bad_db.*, include: bad_db.t").warnings();
    assert!(w.iter().any(|m| m.contains("cannot bring back")), "{w:?}");

    let w = filter("blacklist: db.t.c=1").warnings();
    assert!(w.iter().any(|m| m.contains("blacklists no table")), "{w:?}");

    let w = filter("exclude: *.*, include: 'a.b'.*").warnings();
    assert!(
        w.iter().any(|m| m.contains("regular expression ^a.b$")),
        "{w:?}"
    );

    let w = filter("include: db.*, exclude: *.*").warnings();
    assert!(
        w.iter().any(|m| m.contains("no row will be output")),
        "{w:?}"
    );

    for fine in [
        "exclude: *.*, include: db1.*",
        "exclude: foo.bars.something=reject",
        "blacklist: tmp.*, exclude: *.*, include: db1.*",
        "",
    ] {
        assert!(
            filter(fine).warnings().is_empty(),
            "{fine}: {:?}",
            filter(fine).warnings()
        );
    }
}
