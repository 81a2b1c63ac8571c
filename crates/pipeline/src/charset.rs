//! MySQL character sets mapped to decoders producing UTF-8.

use encoding_rs::Encoding;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextDecoding {
    /// Bytes are already UTF-8 (utf8mb3/utf8mb4/ascii): validated, not copied.
    Utf8,
    /// Binary strings: rendered as base64.
    Binary,
    Utf32,
    Encoding(&'static Encoding),
}

impl TextDecoding {
    /// The decoding for a MySQL character set name, or `None` when sluice
    /// cannot decode it.
    pub fn for_charset(name: &str) -> Option<TextDecoding> {
        use encoding_rs::*;
        let e = match name.to_ascii_lowercase().as_str() {
            "utf8" | "utf8mb3" | "utf8mb4" | "ascii" => return Some(TextDecoding::Utf8),
            "binary" => return Some(TextDecoding::Binary),
            "utf32" => return Some(TextDecoding::Utf32),
            // MySQL's latin1 is cp1252, which is what WHATWG calls windows-1252.
            "latin1" => WINDOWS_1252,
            "ucs2" | "utf16" => UTF_16BE,
            "utf16le" => UTF_16LE,
            "gbk" | "gb2312" => GBK,
            "gb18030" => GB18030,
            "big5" => BIG5,
            "ujis" | "eucjpms" => EUC_JP,
            "sjis" | "cp932" => SHIFT_JIS,
            "euckr" => EUC_KR,
            "latin2" => ISO_8859_2,
            "latin5" => WINDOWS_1254,
            "latin7" => ISO_8859_13,
            "greek" => ISO_8859_7,
            "hebrew" => ISO_8859_8,
            "cp1250" => WINDOWS_1250,
            "cp1251" => WINDOWS_1251,
            "cp1256" => WINDOWS_1256,
            "cp1257" => WINDOWS_1257,
            "cp866" => IBM866,
            "koi8r" => KOI8_R,
            "koi8u" => KOI8_U,
            "macroman" => MACINTOSH,
            "tis620" => WINDOWS_874,
            _ => return None,
        };
        Some(TextDecoding::Encoding(e))
    }

    /// Decodes `bytes` into `out` as UTF-8; `Err` if they are not valid in
    /// this character set.
    pub fn decode_into(&self, bytes: &[u8], out: &mut String) -> Result<(), String> {
        out.clear();
        match self {
            TextDecoding::Utf8 => {
                let s = std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))?;
                out.push_str(s);
            }
            TextDecoding::Binary => {
                return Err("binary values are rendered as base64, not decoded".into())
            }
            TextDecoding::Utf32 => {
                if !bytes.len().is_multiple_of(4) {
                    return Err("UTF-32 value length is not a multiple of 4".into());
                }
                for c in bytes.chunks_exact(4) {
                    let cp = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                    out.push(
                        char::from_u32(cp)
                            .ok_or_else(|| format!("invalid UTF-32 code point {cp:#x}"))?,
                    );
                }
            }
            TextDecoding::Encoding(e) => {
                let (s, had_errors) = e.decode_without_bom_handling(bytes);
                if had_errors {
                    return Err(format!("bytes are not valid {}", e.name()));
                }
                out.push_str(&s);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(cs: &str, b: &[u8]) -> String {
        let mut s = String::new();
        TextDecoding::for_charset(cs)
            .unwrap()
            .decode_into(b, &mut s)
            .unwrap();
        s
    }

    #[test]
    fn charsets_of_the_corpus() {
        assert_eq!(dec("latin1", &[0xE1, 0xE1]), "áá");
        assert_eq!(dec("ucs2", &[0x22, 0x06]), "∆");
        assert_eq!(dec("gbk", &[0x81, 0x40]), "丂");
        assert_eq!(dec("big5", &[0xB9, 0xCF]), "圖");
        assert_eq!(dec("ujis", &[0xB2, 0xCF]), "河");
        assert_eq!(dec("utf8mb4", "😀".as_bytes()), "😀");
        assert_eq!(dec("utf32", &[0, 1, 0xF6, 0x00]), "😀");
        assert!(TextDecoding::for_charset("utf8mb4")
            .unwrap()
            .decode_into(&[0xFF], &mut String::new())
            .is_err());
        assert!(TextDecoding::for_charset("swe7").is_none());
    }
}
