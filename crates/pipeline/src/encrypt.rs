//! Maxwell's `encrypt` / `secret_key` options (spec `maxwell-compat.md` §3):
//! AES/CBC/PKCS5Padding with the key's UTF-8 bytes used as they are (16, 24
//! or 32 bytes: AES-128/192/256, no key derivation), a fresh random 16-byte
//! IV per message, and `{"iv":"…","bytes":"…"}` in standard base64.
//!
//! - `encrypt=data`: a row's `data` and `old` become one
//!   `"encrypted":{"iv":…,"bytes":…}` whose bytes decrypt to
//!   `{"data":{…},"old":{…}}`; the rest of the row stays plaintext.
//! - `encrypt=all`: the whole row becomes `{"encrypted":{…}}`.
//!
//! DDL events are never encrypted (as in Maxwell).

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// The `encrypt` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncryptMode {
    None,
    /// `data` and `old` of each row.
    Data,
    /// Each whole row.
    All,
}

impl EncryptMode {
    /// `none`, `data` or `all`, exactly (case-sensitive, as in Maxwell).
    pub fn parse(value: &str) -> Result<Self, EncryptError> {
        match value {
            "none" => Ok(EncryptMode::None),
            "data" => Ok(EncryptMode::Data),
            "all" => Ok(EncryptMode::All),
            other => Err(EncryptError::UnknownMode(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EncryptMode::None => "none",
            EncryptMode::Data => "data",
            EncryptMode::All => "all",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptError {
    #[error("Unknown encryption mode: {0} (encrypt must be none, data or all)")]
    UnknownMode(String),
    #[error("encrypt={0} needs secret_key: 16, 24 or 32 characters (AES-128, -192 or -256)")]
    MissingKey(&'static str),
    #[error("secret_key is {0} bytes; it must be 16, 24 or 32 bytes (AES-128, -192 or -256; its UTF-8 bytes are the key, as in Maxwell)")]
    KeyLength(usize),
    #[error("no random IV for encryption: {0}")]
    Random(String),
    #[error("cannot decrypt: {0}")]
    Decrypt(String),
}

/// The cipher key, by AES variant; its bytes never appear in `Debug`.
#[derive(Clone)]
enum Key {
    Aes128([u8; 16]),
    Aes192([u8; 24]),
    Aes256([u8; 32]),
}

impl Key {
    fn new(secret_key: &str) -> Result<Key, EncryptError> {
        let b = secret_key.as_bytes();
        if let Ok(k) = <[u8; 16]>::try_from(b) {
            Ok(Key::Aes128(k))
        } else if let Ok(k) = <[u8; 24]>::try_from(b) {
            Ok(Key::Aes192(k))
        } else if let Ok(k) = <[u8; 32]>::try_from(b) {
            Ok(Key::Aes256(k))
        } else {
            Err(EncryptError::KeyLength(b.len()))
        }
    }

    fn len(&self) -> usize {
        match self {
            Key::Aes128(_) => 16,
            Key::Aes192(_) => 24,
            Key::Aes256(_) => 32,
        }
    }

    fn encrypt(&self, iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
        let iv = iv.into();
        match self {
            Key::Aes128(k) => cbc::Encryptor::<aes::Aes128>::new(k.into(), iv)
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
            Key::Aes192(k) => cbc::Encryptor::<aes::Aes192>::new(k.into(), iv)
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
            Key::Aes256(k) => cbc::Encryptor::<aes::Aes256>::new(k.into(), iv)
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
        }
    }

    fn decrypt(&self, iv: &[u8; 16], bytes: &[u8]) -> Result<Vec<u8>, EncryptError> {
        let iv = iv.into();
        match self {
            Key::Aes128(k) => cbc::Decryptor::<aes::Aes128>::new(k.into(), iv)
                .decrypt_padded_vec_mut::<Pkcs7>(bytes),
            Key::Aes192(k) => cbc::Decryptor::<aes::Aes192>::new(k.into(), iv)
                .decrypt_padded_vec_mut::<Pkcs7>(bytes),
            Key::Aes256(k) => cbc::Decryptor::<aes::Aes256>::new(k.into(), iv)
                .decrypt_padded_vec_mut::<Pkcs7>(bytes),
        }
        .map_err(|_| EncryptError::Decrypt("bad padding (wrong key?)".into()))
    }
}

/// Encrypts with `encrypt=data|all` (never constructed for `none`).
#[derive(Clone)]
pub struct Encryptor {
    mode: EncryptMode,
    key: Key,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor")
            .field("mode", &self.mode)
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .finish()
    }
}

impl Encryptor {
    /// From the `encrypt` and `secret_key` options: `None` for
    /// `encrypt=none`; an error names the option to fix (a key of the wrong
    /// length is refused here, at startup, where Maxwell fails on the first
    /// row).
    pub fn from_options(
        encrypt: &str,
        secret_key: Option<&str>,
    ) -> Result<Option<Encryptor>, EncryptError> {
        Encryptor::new(EncryptMode::parse(encrypt)?, secret_key)
    }

    pub fn new(
        mode: EncryptMode,
        secret_key: Option<&str>,
    ) -> Result<Option<Encryptor>, EncryptError> {
        if mode == EncryptMode::None {
            return Ok(None);
        }
        let key = Key::new(secret_key.ok_or(EncryptError::MissingKey(mode.as_str()))?)?;
        Ok(Some(Encryptor { mode, key }))
    }

    pub fn mode(&self) -> EncryptMode {
        self.mode
    }

    /// AES-CBC with PKCS#7 padding under `iv`.
    pub fn encrypt_with_iv(&self, plaintext: &[u8], iv: &[u8; 16]) -> Vec<u8> {
        self.key.encrypt(iv, plaintext)
    }

    /// Appends `{"iv":"…","bytes":"…"}` for `plaintext` under `iv`.
    pub fn write_with_iv(&self, plaintext: &[u8], iv: &[u8; 16], out: &mut Vec<u8>) {
        let bytes = self.encrypt_with_iv(plaintext, iv);
        out.extend_from_slice(b"{\"iv\":\"");
        out.extend_from_slice(BASE64.encode(iv).as_bytes());
        out.extend_from_slice(b"\",\"bytes\":\"");
        out.extend_from_slice(BASE64.encode(bytes).as_bytes());
        out.extend_from_slice(b"\"}");
    }

    /// Appends `{"iv":"…","bytes":"…"}` for `plaintext` under a fresh
    /// random IV.
    pub fn write_encrypted(&self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), EncryptError> {
        let mut iv = [0u8; 16];
        getrandom::fill(&mut iv).map_err(|e| EncryptError::Random(e.to_string()))?;
        self.write_with_iv(plaintext, &iv, out);
        Ok(())
    }
}

/// Decrypts an `"encrypted"` object's `iv` and `bytes` (base64) with
/// `secret_key`: for consumers' tools and tests.
pub fn decrypt(secret_key: &str, iv_b64: &str, bytes_b64: &str) -> Result<Vec<u8>, EncryptError> {
    let key = Key::new(secret_key)?;
    let iv = BASE64
        .decode(iv_b64)
        .map_err(|e| EncryptError::Decrypt(format!("iv is not base64: {e}")))?;
    let iv: [u8; 16] = iv
        .try_into()
        .map_err(|v: Vec<u8>| EncryptError::Decrypt(format!("iv is {} bytes, not 16", v.len())))?;
    let bytes = BASE64
        .decode(bytes_b64)
        .map_err(|e| EncryptError::Decrypt(format!("bytes is not base64: {e}")))?;
    key.decrypt(&iv, &bytes)
}

/// The plaintext of an `encrypted` object written with the tests' key.
#[cfg(test)]
pub(crate) fn test_decrypt_field(encrypted: &serde_json::Value) -> String {
    let pt = decrypt(
        "aaaaaaaaaaaaaaaa",
        encrypted["iv"].as_str().unwrap(),
        encrypted["bytes"].as_str().unwrap(),
    )
    .unwrap();
    String::from_utf8(pt).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAINTEXT: &str = r#"{"data":{"id":1,"account_id":1,"text_field":"hello"}}"#;
    const IV: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    fn enc(mode: EncryptMode, key: &str) -> Encryptor {
        Encryptor::new(mode, Some(key)).unwrap().unwrap()
    }

    /// Spec §3.3 known-answer vectors (openssl and the JDK agree).
    #[test]
    fn known_answer_vectors() {
        let vectors = [
            ("aaaaaaaaaaaaaaaa", "cvvrm9ez04naK3mXm3JTZfdMvJeKYLx3cT2OTcWCSxzdl1hZ9w/bW+x4urFXEQpQzOy8Ym5zvfjLq+b3q5v2LQ=="),
            ("aaaaaaaaaaaaaaaaaaaaaaaa", "kNvsG1ffwWSx2dfeT3FtVd8qIgl8HemXKTCHDsgDbr2CKYG3f47+kxVkjJ4+zaz4VsncXomYGox0fRnbkAVdTw=="),
            ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "JGd/64JjM8blUKLOYifDS8nl68nLY/7UzUGyMt+B+TmjcdTvhsbGAyKVnTt59YBi/GJ6Ykpp3kO8gyTnHF5yJA=="),
        ];
        assert_eq!(BASE64.encode(IV), "AAECAwQFBgcICQoLDA0ODw==");
        for (key, expected) in vectors {
            let e = enc(EncryptMode::Data, key);
            assert_eq!(
                BASE64.encode(e.encrypt_with_iv(PLAINTEXT.as_bytes(), &IV)),
                expected,
                "key of {} bytes",
                key.len()
            );
            let mut out = Vec::new();
            e.write_with_iv(PLAINTEXT.as_bytes(), &IV, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!(r#"{{"iv":"AAECAwQFBgcICQoLDA0ODw==","bytes":"{expected}"}}"#)
            );
            assert_eq!(
                decrypt(key, "AAECAwQFBgcICQoLDA0ODw==", expected).unwrap(),
                PLAINTEXT.as_bytes()
            );
        }
    }

    #[test]
    fn options_are_checked_at_startup() {
        assert_eq!(
            Encryptor::from_options("none", None)
                .unwrap()
                .map(|e| e.mode()),
            None
        );
        assert_eq!(
            Encryptor::from_options("all", Some("aaaaaaaaaaaaaaaa"))
                .unwrap()
                .map(|e| e.mode()),
            Some(EncryptMode::All)
        );
        for bad in ["Data", "DATA", "", "true"] {
            let e = Encryptor::from_options(bad, Some("aaaaaaaaaaaaaaaa")).unwrap_err();
            assert_eq!(e, EncryptError::UnknownMode(bad.to_string()));
            assert!(e.to_string().starts_with("Unknown encryption mode: "));
        }
        let e = Encryptor::from_options("data", Some("short")).unwrap_err();
        assert_eq!(e, EncryptError::KeyLength(5));
        assert!(e.to_string().contains("secret_key"), "{e}");
        // The key is bytes, not characters: 16 characters, 17 bytes.
        assert_eq!(
            Encryptor::from_options("data", Some("éaaaaaaaaaaaaaaa")).unwrap_err(),
            EncryptError::KeyLength(17)
        );
        let e = Encryptor::from_options("data", None).unwrap_err();
        assert!(e.to_string().contains("secret_key"), "{e}");
        assert!(!format!("{:?}", enc(EncryptMode::Data, "aaaaaaaaaaaaaaaa")).contains("aaaa"));
    }

    #[test]
    fn each_message_gets_a_fresh_iv() {
        let e = enc(EncryptMode::All, "aaaaaaaaaaaaaaaa");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        e.write_encrypted(b"same", &mut a).unwrap();
        e.write_encrypted(b"same", &mut b).unwrap();
        assert_ne!(a, b);
        for out in [a, b] {
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let pt = decrypt(
                "aaaaaaaaaaaaaaaa",
                v["iv"].as_str().unwrap(),
                v["bytes"].as_str().unwrap(),
            )
            .unwrap();
            assert_eq!(pt, b"same");
        }
    }

    /// Maxwell's encrypted fixtures (key `aaaaaaaaaaaaaaaa`) decrypt to the
    /// rows spec §3.3 lists. Maxwell may start an `encrypt=data` plaintext
    /// with a space (a reused JSON generator), hence the trim.
    #[test]
    fn maxwell_fixtures_decrypt_to_their_rows() {
        let fixtures = [
            (
                include_str!("../../../testdata/maxwell/json/encrypted-user-insert.json"),
                r#"{"data":{"id":1,"account_id":1,"text_field":"hello"}}"#,
            ),
            (
                include_str!("../../../testdata/maxwell/json/encrypted-user-update.json"),
                r#"{"data":{"id":1,"account_id":1,"text_field":"hello2"},"old":{"text_field":"hello"}}"#,
            ),
            (
                include_str!("../../../testdata/maxwell/json/all-encrypted-user-insert.json"),
                r#"{"database":"shard_1","table":"minimal","type":"insert","ts":1500935709,"xid":161,"commit":true,"data":{"id":1,"account_id":1,"text_field":"hello"}}"#,
            ),
            (
                include_str!("../../../testdata/maxwell/json/all-encrypted-user-update.json"),
                r#"{"database":"shard_1","table":"minimal","type":"update","ts":1500935710,"xid":294,"commit":true,"data":{"id":1,"account_id":1,"text_field":"goodbye"},"old":{"text_field":"hello"}}"#,
            ),
        ];
        for (fixture, expected) in fixtures {
            let v: serde_json::Value = serde_json::from_str(fixture).unwrap();
            let e = &v["encrypted"];
            let pt = decrypt(
                "aaaaaaaaaaaaaaaa",
                e["iv"].as_str().unwrap(),
                e["bytes"].as_str().unwrap(),
            )
            .unwrap();
            assert_eq!(String::from_utf8(pt).unwrap().trim_start(), expected);
        }
        assert!(decrypt("bbbbbbbbbbbbbbbb", "XXs6AePsXJWAAIrKyLlR0g==", "iZssjWfzS0NlqIj82ddpvoQeKSx4D3GIPSCgjdkpgQlCWzN2p3VVZOn3Oj1x4w+a6dVhoFmllWxBK6aAkdVK9t6Vt1+um6lWwSeXNQIL/RbknW5Q8I9emm5bC1Dd1LftBuX/1Uw0wjbsq8Qt3HErvmmiIMe2S27EIWshvBnmw9MibryjLD0brvIbFFxwDuSQuVA4OFyV9TN32N/ZXiBwIA==")
            .map(|pt| !pt.starts_with(b"{\"database\""))
            .unwrap_or(true));
    }
}
