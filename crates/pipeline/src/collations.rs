//! Collation ids and their character sets as MySQL 8.x/9.x and MariaDB
//! number them, for decoding without a server to ask (binlog files): the
//! binlog names collations by id only (TABLE_MAP metadata, the session's
//! `collation_server`). A connected sluice uses the server's own list.

use std::collections::HashMap;

/// (first id, last id, charset): ids in the range all belong to the charset.
const RANGES: &[(u32, u32, &str)] = &[
    (101, 124, "utf16"),
    (128, 151, "ucs2"),
    (159, 159, "ucs2"),
    (160, 183, "utf32"),
    (192, 215, "utf8mb3"),
    (223, 223, "utf8mb3"),
    (224, 247, "utf8mb4"),
    (248, 250, "gb18030"),
    (255, 323, "utf8mb4"), // the _0900_ collations of MySQL 8
    // MariaDB's additional UCA collations.
    (576, 578, "utf8mb3"),
    (608, 610, "utf8mb4"),
    (640, 642, "ucs2"),
    (672, 674, "utf16"),
    (736, 738, "utf32"),
];

/// The single-id collations 1-99, by id.
const SMALL: &[(u32, &str)] = &[
    (1, "big5"),
    (2, "latin2"),
    (3, "dec8"),
    (4, "cp850"),
    (5, "latin1"),
    (6, "hp8"),
    (7, "koi8r"),
    (8, "latin1"),
    (9, "latin2"),
    (10, "swe7"),
    (11, "ascii"),
    (12, "ujis"),
    (13, "sjis"),
    (14, "cp1251"),
    (15, "latin1"),
    (16, "hebrew"),
    (18, "tis620"),
    (19, "euckr"),
    (20, "latin7"),
    (21, "latin2"),
    (22, "koi8u"),
    (23, "cp1251"),
    (24, "gb2312"),
    (25, "greek"),
    (26, "cp1250"),
    (27, "latin2"),
    (28, "gbk"),
    (29, "cp1257"),
    (30, "latin5"),
    (31, "latin1"),
    (32, "armscii8"),
    (33, "utf8mb3"),
    (34, "cp1250"),
    (35, "ucs2"),
    (36, "cp866"),
    (37, "keybcs2"),
    (38, "macce"),
    (39, "macroman"),
    (40, "cp852"),
    (41, "latin7"),
    (42, "latin7"),
    (43, "macce"),
    (44, "cp1250"),
    (45, "utf8mb4"),
    (46, "utf8mb4"),
    (47, "latin1"),
    (48, "latin1"),
    (49, "latin1"),
    (50, "cp1251"),
    (51, "cp1251"),
    (52, "cp1251"),
    (53, "macroman"),
    (54, "utf16"),
    (55, "utf16"),
    (56, "utf16le"),
    (57, "cp1256"),
    (58, "cp1257"),
    (59, "cp1257"),
    (60, "utf32"),
    (61, "utf32"),
    (62, "utf16le"),
    (63, "binary"),
    (64, "armscii8"),
    (65, "ascii"),
    (66, "cp1250"),
    (67, "cp1256"),
    (68, "cp866"),
    (69, "dec8"),
    (70, "greek"),
    (71, "hebrew"),
    (72, "hp8"),
    (73, "keybcs2"),
    (74, "koi8r"),
    (75, "koi8u"),
    (76, "utf8mb3"),
    (77, "latin2"),
    (78, "latin5"),
    (79, "latin7"),
    (80, "cp850"),
    (81, "cp852"),
    (82, "swe7"),
    (83, "utf8mb3"),
    (84, "big5"),
    (85, "euckr"),
    (86, "gb2312"),
    (87, "gbk"),
    (88, "sjis"),
    (89, "tis620"),
    (90, "ucs2"),
    (91, "ujis"),
    (92, "geostd8"),
    (93, "geostd8"),
    (94, "latin1"),
    (95, "cp932"),
    (96, "cp932"),
    (97, "eucjpms"),
    (98, "eucjpms"),
    (99, "cp1250"),
];

/// Every collation id sluice knows without a server, mapped to its
/// character set (the form `Catalog::collations` takes). MariaDB's
/// NO PAD collations are their PAD collation's id plus 1024.
pub fn builtin_collations() -> HashMap<u32, String> {
    let mut m: HashMap<u32, String> = SMALL.iter().map(|&(id, cs)| (id, cs.to_string())).collect();
    for &(a, b, cs) in RANGES {
        for id in a..=b {
            m.insert(id, cs.to_string());
        }
    }
    let nopad: Vec<(u32, String)> = m
        .iter()
        .filter(|(&id, _)| id < 1024)
        .map(|(&id, cs)| (id + 1024, cs.clone()))
        .collect();
    m.extend(nopad);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_ids() {
        let m = builtin_collations();
        for (id, cs) in [
            (8, "latin1"),
            (33, "utf8mb3"),
            (45, "utf8mb4"),
            (63, "binary"),
            (192, "utf8mb3"),
            (255, "utf8mb4"),
            (1069, "utf8mb4"), // MariaDB utf8mb4_general_nopad_ci
        ] {
            assert_eq!(m.get(&id).map(String::as_str), Some(cs), "{id}");
        }
        assert!(!m.contains_key(&17), "17 is unassigned");
    }
}
