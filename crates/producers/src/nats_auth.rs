//! NATS logins by key: an NKey seed file (`nats_nkey`, the user's seed as
//! `nk -gen user` writes it) or a credentials file (`nats_creds`: the user's
//! JWT and seed, as `nsc` writes them). Either proves the key by signing the
//! nonce of the server's INFO with Ed25519 (`sluice_secure::ed25519`, the
//! code MariaDB's ed25519 login uses). The seed never appears in a message:
//! errors name the file and the line.

use std::path::{Path, PathBuf};

use base64::Engine;

/// How sluice logs in to NATS besides what `nats_url` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLogin {
    /// `nats_creds`: a user JWT and its seed.
    Creds(PathBuf),
    /// `nats_nkey`: a user seed.
    Nkey(PathBuf),
}

/// An NKey: the 32-byte Ed25519 seed and what it is the key of (a user
/// logs in; operators and accounts sign the JWTs of a server's trust
/// chain). Debug never shows the seed.
pub struct NKey {
    kind: KeyKind,
    seed: [u8; 32],
}

impl std::fmt::Debug for NKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NKey({})", self.public_key())
    }
}

/// The type of an NKey: the first letter of its public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Operator,
    Account,
    User,
}

impl KeyKind {
    /// The type's prefix byte (in the seed's second byte and a public
    /// key's first).
    fn prefix(self) -> u8 {
        match self {
            KeyKind::Operator => 14 << 3,
            KeyKind::Account => 0,
            KeyKind::User => 20 << 3,
        }
    }
}

/// The prefix byte of a seed.
const PREFIX_SEED: u8 = 18 << 3;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for &b in data {
        buffer = buffer << 8 | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[(buffer >> bits) as usize & 31] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[(buffer << (5 - bits)) as usize & 31] as char);
    }
    out
}

fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = BASE32.iter().position(|&a| a == c)? as u32;
        buffer = (buffer << 5 | v) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// CRC-16/XMODEM, the checksum at the end of every NKey.
fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                crc << 1 ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn with_crc(mut raw: Vec<u8>) -> String {
    let crc = crc16(&raw);
    raw.extend_from_slice(&crc.to_le_bytes());
    base32_encode(&raw)
}

impl NKey {
    pub fn new(kind: KeyKind, seed: [u8; 32]) -> NKey {
        NKey { kind, seed }
    }

    /// A user seed as written (`SU…`); `None` if it is not one.
    pub fn parse(text: &str) -> Option<NKey> {
        let raw = base32_decode(text.trim())?;
        if raw.len() != 36 {
            return None;
        }
        let (body, crc) = raw.split_at(34);
        if crc16(body).to_le_bytes() != crc {
            return None;
        }
        let kind = (body[0] & 7) << 5 | (body[1] & 0xf8) >> 3;
        if body[0] & 0xf8 != PREFIX_SEED || kind != KeyKind::User.prefix() {
            return None;
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&body[2..]);
        Some(NKey::new(KeyKind::User, seed))
    }

    /// The seed as a seed file holds it (`SU…` for a user).
    pub fn seed_text(&self) -> String {
        let kind = self.kind.prefix();
        let mut raw = vec![PREFIX_SEED | kind >> 5, (kind & 31) << 3];
        raw.extend_from_slice(&self.seed);
        with_crc(raw)
    }

    /// The public key (`U…` for a user), as the server's configuration
    /// and the JWTs name the key.
    pub fn public_key(&self) -> String {
        let mut raw = vec![self.kind.prefix()];
        raw.extend_from_slice(&sluice_secure::ed25519::public_key(&self.seed));
        with_crc(raw)
    }

    /// The signature of `data` (the server's nonce; a JWT), base64url as
    /// CONNECT's `sig` and a JWT carry it.
    pub fn sign(&self, data: &[u8]) -> String {
        let sig = sluice_secure::ed25519::sign(&self.seed, data);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
    }
}

fn read(option: &str, path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {option} file {}: {e}", path.display()))
}

/// The first line that is a user seed.
fn find_seed(option: &str, path: &Path, text: &str) -> Result<NKey, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("SU"))
        .find_map(NKey::parse)
        .ok_or_else(|| {
            format!(
                "{option} file {} holds no NATS user seed (a line SU… of 58 characters, as `nk -gen user` or nsc write it)",
                path.display()
            )
        })
}

/// What a key login adds to CONNECT: (field, value) pairs.
pub fn connect_fields(
    login: &KeyLogin,
    nonce: &[u8],
) -> Result<Vec<(&'static str, String)>, String> {
    match login {
        KeyLogin::Nkey(path) => {
            let key = find_seed("nats_nkey", path, &read("nats_nkey", path)?)?;
            Ok(vec![("nkey", key.public_key()), ("sig", key.sign(nonce))])
        }
        KeyLogin::Creds(path) => {
            let text = read("nats_creds", path)?;
            // The JWT is the first line after the first BEGIN marker.
            let jwt = text
                .lines()
                .map(str::trim)
                .skip_while(|l| !(l.starts_with("---") && l.contains("BEGIN")))
                .skip(1)
                .find(|l| !l.is_empty())
                .filter(|l| l.starts_with("ey") && l.matches('.').count() == 2)
                .ok_or_else(|| {
                    format!(
                        "nats_creds file {} holds no user JWT (-----BEGIN NATS USER JWT----- and the token on the next line, as nsc writes it)",
                        path.display()
                    )
                })?;
            let key = find_seed("nats_creds", path, &text)?;
            Ok(vec![("jwt", jwt.to_string()), ("sig", key.sign(nonce))])
        }
    }
}

/// Reads the files once, so a missing or malformed one stops sluice at
/// start, naming the option.
pub fn check(login: &KeyLogin) -> Result<(), String> {
    connect_fields(login, b"check").map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seed and the public key NATS derives from it (nats.go's JWT
    /// authentication test: the creds' JWT names this subject).
    const SEED: &str = "SUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4GY";
    const PUBLIC: &str = "UAT6BWCSCWLUKJT6K6MBJJOEOTXZ5AJDOYKNEVRFC7VNO6OA43N4TRNO";

    #[test]
    fn a_seed_gives_its_public_key_and_encodes_back() {
        let key = NKey::parse(SEED).unwrap();
        assert_eq!(key.public_key(), PUBLIC);
        assert_eq!(key.seed_text(), SEED);
        let other = NKey::new(KeyKind::User, [7; 32]);
        let again = NKey::parse(&other.seed_text()).unwrap();
        assert_eq!(again.public_key(), other.public_key());
        assert!(other.public_key().starts_with('U') && other.public_key().len() == 56);
        let operator = NKey::new(KeyKind::Operator, [7; 32]);
        assert!(operator.public_key().starts_with('O') && operator.seed_text().starts_with("SO"));
        assert!(NKey::new(KeyKind::Account, [7; 32])
            .public_key()
            .starts_with('A'));
        // Only a user's seed logs in.
        assert!(NKey::parse(&operator.seed_text()).is_none());
    }

    #[test]
    fn damaged_or_foreign_keys_are_refused() {
        let mut damaged = SEED.to_string();
        damaged.replace_range(10..11, "B");
        assert!(NKey::parse(&damaged).is_none());
        assert!(NKey::parse(PUBLIC).is_none());
        assert!(NKey::parse("SU").is_none());
        assert!(NKey::parse("not base32!").is_none());
    }

    #[test]
    fn the_signature_verifies_with_the_public_key() {
        let key = NKey::parse(SEED).unwrap();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(key.sign(b"nonce"))
            .unwrap();
        assert_eq!(sig.len(), 64);
        assert_eq!(sig, sluice_secure::ed25519::sign(&key.seed, b"nonce"));
        assert!(!format!("{key:?}").contains(SEED));
    }

    #[test]
    fn files_are_read_and_errors_never_quote_them() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("u.creds");
        std::fs::write(
            &creds,
            format!("-----BEGIN NATS USER JWT-----\neyJh.eyJi.c2ln\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n{SEED}\n------END USER NKEY SEED------\n"),
        )
        .unwrap();
        let f = connect_fields(&KeyLogin::Creds(creds), b"n").unwrap();
        assert_eq!(f[0], ("jwt", "eyJh.eyJi.c2ln".to_string()));
        let nkey = dir.path().join("u.nk");
        std::fs::write(&nkey, format!("{SEED}\n")).unwrap();
        let f = connect_fields(&KeyLogin::Nkey(nkey), b"n").unwrap();
        assert_eq!(f[0], ("nkey", PUBLIC.to_string()));
        let bad = dir.path().join("bad.nk");
        std::fs::write(&bad, format!("{}\n", &SEED[..57])).unwrap();
        let e = connect_fields(&KeyLogin::Nkey(bad), b"n").unwrap_err();
        assert!(e.contains("nats_nkey") && !e.contains(&SEED[..20]), "{e}");
        let e = check(&KeyLogin::Creds(dir.path().join("none"))).unwrap_err();
        assert!(e.contains("nats_creds") && e.contains("none"), "{e}");
    }
}
