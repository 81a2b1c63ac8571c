//! Client side of the authentication plugins we speak: the password
//! scrambles, and the login conversation as a state machine without I/O
//! (the connection phase in `handshake` drives it).
//!
//! The password never goes into an error message or a log line: messages
//! name plugins, options and states only.

use std::path::PathBuf;

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};
use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::SourceError;

pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";
pub const SHA256_PASSWORD: &str = "sha256_password";
pub const CLEAR_PASSWORD: &str = "mysql_clear_password";
/// MariaDB's ed25519 plugin (`IDENTIFIED VIA ed25519`), client side.
pub const CLIENT_ED25519: &str = "client_ed25519";

/// Login options besides user and password (MySQL client option names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthOptions {
    /// `enable_cleartext_plugin`: send the password in clear text when the
    /// server asks for `mysql_clear_password` (PAM, LDAP) on a connection
    /// without TLS. Over TLS it is sent without this option.
    pub enable_cleartext_plugin: bool,
    /// `server_public_key_path`: the server's RSA public key (PEM) for
    /// `caching_sha2_password`/`sha256_password` full authentication on a
    /// connection without TLS. Without it the key is asked of the server,
    /// which a man in the middle could answer with its own.
    pub server_public_key_path: Option<PathBuf>,
}

/// `mysql_native_password`: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))).
pub fn native_password(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(&scramble[..scramble.len().min(20)]);
    h.update(stage2);
    let stage3 = h.finalize();
    stage1
        .iter()
        .zip(stage3.iter())
        .map(|(a, b)| a ^ b)
        .collect()
}

/// `caching_sha2_password` fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble).
pub fn caching_sha2_password(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let p1 = Sha256::digest(password);
    let p2 = Sha256::digest(p1);
    let mut h = Sha256::new();
    h.update(p2);
    h.update(&scramble[..scramble.len().min(20)]);
    let p3 = h.finalize();
    p1.iter().zip(p3.iter()).map(|(a, b)| a ^ b).collect()
}

/// The ed25519 public key of `password`, as the server stores it
/// (base64-encoded in `mysql.global_priv`'s authentication_string).
/// MariaDB's scheme is RFC 8032 with the password as the secret.
pub fn ed25519_public_key(password: &[u8]) -> [u8; 32] {
    sluice_secure::ed25519::public_key(password)
}

/// `client_ed25519`: the Ed25519 signature of the server's 32-byte nonce.
pub fn client_ed25519(password: &[u8], nonce: &[u8]) -> [u8; 64] {
    sluice_secure::ed25519::sign(password, nonce)
}

/// Full authentication without TLS (`caching_sha2_password` after "perform
/// full authentication", `sha256_password`): RSA-OAEP (SHA-1) of the
/// NUL-terminated password XOR the scramble, with the server's public key
/// (PEM: SubjectPublicKeyInfo or PKCS#1). Errors never contain the password.
pub fn rsa_encrypted_password(
    password: &[u8],
    scramble: &[u8],
    public_key_pem: &[u8],
) -> Result<Vec<u8>, String> {
    if scramble.is_empty() {
        return Err("the server sent no scramble to mix into the password".into());
    }
    let key = parse_public_key(public_key_pem)?;
    let mut plain = Vec::with_capacity(password.len() + 1);
    plain.extend_from_slice(password);
    plain.push(0);
    for (i, b) in plain.iter_mut().enumerate() {
        *b ^= scramble[i % scramble.len()];
    }
    let out = key.encrypt(&mut rsa::rand_core::OsRng, Oaep::new::<Sha1>(), &plain);
    // Wipe the password-derived buffer; the ciphertext is safe to keep.
    plain.iter_mut().for_each(|b| *b = 0);
    out.map_err(|e| {
        format!(
            "cannot RSA-encrypt the password with the server's public key ({e}; a password longer \
             than the key allows needs TLS)"
        )
    })
}

fn parse_public_key(pem: &[u8]) -> Result<RsaPublicKey, String> {
    let text = std::str::from_utf8(pem)
        .map_err(|_| "the server's RSA public key is not PEM text".to_string())?
        .trim_matches(|c: char| c == '\0' || c.is_whitespace());
    RsaPublicKey::from_public_key_pem(text)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(text))
        .map_err(|e| format!("the server's RSA public key is not a PEM RSA public key ({e})"))
}

/// What the client does after a packet of the login conversation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Send(Vec<u8>),
    /// Nothing to send: the server speaks next.
    Wait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The plugin's reply is sent; only OK or ERR can follow.
    Sent,
    /// `caching_sha2_password` fast-auth scramble sent: 0x03 or 0x04 next.
    FastAuthSent,
    /// Asked the server for its RSA public key.
    AwaitingPublicKey,
}

/// The login conversation after the greeting.
pub(crate) struct Login<'a> {
    user: &'a str,
    password: &'a [u8],
    tls: bool,
    auth: &'a AuthOptions,
    /// The configured server public key, read beforehand.
    server_key: Option<&'a [u8]>,
    /// Names the ssl option in messages (`ssl`, `replication_ssl`).
    ssl_option: String,
    plugin: String,
    scramble: Vec<u8>,
    state: State,
    switched: bool,
}

impl<'a> Login<'a> {
    pub(crate) fn new(
        user: &'a str,
        password: &'a [u8],
        tls: bool,
        auth: &'a AuthOptions,
        server_key: Option<&'a [u8]>,
        ssl_option: String,
    ) -> Self {
        Login {
            user,
            password,
            tls,
            auth,
            server_key,
            ssl_option,
            plugin: String::new(),
            scramble: Vec::new(),
            state: State::Sent,
            switched: false,
        }
    }

    pub(crate) fn plugin(&self) -> &str {
        &self.plugin
    }

    fn refuse(&self, message: String) -> SourceError {
        SourceError::Auth {
            user: self.user.to_string(),
            message,
        }
    }

    /// The plugin to name in the handshake response and its data. A plugin
    /// the greeting proposes that we do not start with (unknown ones, and
    /// ed25519, whose nonce only comes with a switch) is answered with
    /// `mysql_native_password`, as MySQL's client does: the server then
    /// switches to the user's plugin.
    pub(crate) fn start(
        &mut self,
        plugin: &str,
        scramble: &[u8],
    ) -> Result<(String, Vec<u8>), SourceError> {
        let plugin = match plugin {
            NATIVE_PASSWORD | CACHING_SHA2_PASSWORD | SHA256_PASSWORD | CLEAR_PASSWORD => plugin,
            _ => NATIVE_PASSWORD,
        };
        self.plugin = plugin.to_string();
        self.scramble = scramble_of(scramble, 20);
        let data = self.first_reply()?;
        Ok((self.plugin.clone(), data))
    }

    /// An auth switch request (0xFE): the plugin to use and its data.
    pub(crate) fn switch(&mut self, plugin: &str, data: &[u8]) -> Result<Vec<u8>, SourceError> {
        if self.switched {
            return Err(SourceError::protocol(
                "the server asked to switch the authentication plugin twice",
            ));
        }
        self.switched = true;
        self.plugin = plugin.to_string();
        match plugin {
            CLIENT_ED25519 => {
                let nonce = data.get(..32).ok_or_else(|| {
                    SourceError::protocol(format!(
                        "client_ed25519 nonce of {} bytes (32 expected)",
                        data.len()
                    ))
                })?;
                self.state = State::Sent;
                Ok(client_ed25519(self.password, nonce).to_vec())
            }
            NATIVE_PASSWORD | CACHING_SHA2_PASSWORD | SHA256_PASSWORD | CLEAR_PASSWORD => {
                self.scramble = scramble_of(data, 20);
                self.first_reply()
            }
            "mysql_old_password" => Err(self.refuse(
                "the server asks for mysql_old_password (pre-4.1 hashing, broken): give the user \
                 mysql_native_password or caching_sha2_password"
                    .into(),
            )),
            other => Err(self.refuse(format!(
                "the server asks for authentication plugin '{other}', which sluice does not speak; \
                 give the user mysql_native_password, caching_sha2_password, sha256_password or \
                 (MariaDB) ed25519"
            ))),
        }
    }

    fn first_reply(&mut self) -> Result<Vec<u8>, SourceError> {
        self.state = State::Sent;
        match self.plugin.as_str() {
            NATIVE_PASSWORD => Ok(native_password(self.password, &self.scramble)),
            CACHING_SHA2_PASSWORD => {
                self.state = State::FastAuthSent;
                Ok(caching_sha2_password(self.password, &self.scramble))
            }
            SHA256_PASSWORD => {
                if self.password.is_empty() {
                    Ok(vec![0])
                } else {
                    self.full_authentication(1)
                }
            }
            CLEAR_PASSWORD => {
                if !(self.tls || self.auth.enable_cleartext_plugin) {
                    return Err(self.refuse(format!(
                        "the server asks for the password in clear text (mysql_clear_password, as \
                         PAM and LDAP logins do) on a connection without TLS; sluice did not send \
                         it. Use TLS ({}=REQUIRED, VERIFY_CA or VERIFY_IDENTITY), or, on a trusted \
                         network, set enable_cleartext_plugin=true",
                        self.ssl_option
                    )));
                }
                Ok(self.nul_terminated_password())
            }
            other => Err(SourceError::protocol(format!(
                "no first reply for plugin {other}"
            ))),
        }
    }

    fn nul_terminated_password(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.password.len() + 1);
        v.extend_from_slice(self.password);
        v.push(0);
        v
    }

    /// The password itself: as is over TLS, else RSA-encrypted with the
    /// configured key, else a request for the server's key (`request` is
    /// the byte that asks for it: 2 for caching_sha2, 1 for sha256).
    fn full_authentication(&mut self, request: u8) -> Result<Vec<u8>, SourceError> {
        if self.tls {
            self.state = State::Sent;
            return Ok(self.nul_terminated_password());
        }
        if let Some(key) = self.server_key {
            self.state = State::Sent;
            return rsa_encrypted_password(self.password, &self.scramble, key)
                .map_err(|m| self.refuse(format!("{m} (server_public_key_path)")));
        }
        tracing::debug!(
            plugin = %self.plugin,
            "full authentication without TLS: asking the server for its RSA public key"
        );
        self.state = State::AwaitingPublicKey;
        Ok(vec![request])
    }

    /// A more-data packet (0x01, `data` without it).
    pub(crate) fn more_data(&mut self, data: &[u8]) -> Result<Reply, SourceError> {
        match (self.state, data.first()) {
            (State::FastAuthSent, Some(3)) => {
                self.state = State::Sent;
                Ok(Reply::Wait)
            }
            (State::FastAuthSent, Some(4)) => Ok(Reply::Send(self.full_authentication(2)?)),
            (State::AwaitingPublicKey, Some(_)) => {
                self.state = State::Sent;
                rsa_encrypted_password(self.password, &self.scramble, data)
                    .map(Reply::Send)
                    .map_err(SourceError::protocol)
            }
            (state, first) => Err(SourceError::protocol(format!(
                "unexpected more-data packet (first byte {first:?}) during {} authentication \
                 ({state:?})",
                self.plugin
            ))),
        }
    }
}

/// The scramble in auth data: at most `len` bytes, without the trailing
/// NUL the server appends.
fn scramble_of(data: &[u8], len: usize) -> Vec<u8> {
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    data[..data.len().min(len)].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::{EdwardsPoint, Scalar};
    use sha2::Sha512;

    const SCRAMBLE: &[u8; 20] = b"abcdefghijklmnopqrst";

    #[test]
    fn empty_password_sends_nothing() {
        assert!(native_password(b"", b"01234567890123456789").is_empty());
        assert!(caching_sha2_password(b"", b"01234567890123456789").is_empty());
    }

    #[test]
    fn native_password_is_reversible_by_the_server_rule() {
        // The server checks SHA1(scramble + stored) XOR reply == SHA1(pw).
        let scramble = b"abcdefghijklmnopqrst";
        let reply = native_password(b"secret", scramble);
        let stored = Sha1::digest(Sha1::digest(b"secret"));
        let mut h = Sha1::new();
        h.update(scramble);
        h.update(stored);
        let mask = h.finalize();
        let stage1: Vec<u8> = reply.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(Sha1::digest(&stage1).as_slice(), stored.as_slice());
    }

    /// MariaDB 10.11 stores this key for `IDENTIFIED VIA ed25519 USING
    /// PASSWORD('secret')` (`mysql.global_priv`, authentication_string).
    #[test]
    fn ed25519_public_key_matches_mariadb() {
        use base64::Engine;
        let expected = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode("ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY")
            .unwrap();
        assert_eq!(ed25519_public_key(b"secret").to_vec(), expected);
    }

    #[test]
    fn ed25519_signature_verifies() {
        // RFC 8032 verification: [S]B == R + [k]A.
        let nonce = [7u8; 32];
        let sig = client_ed25519(b"pw", &nonce);
        let a = CompressedEdwardsY(ed25519_public_key(b"pw"))
            .decompress()
            .unwrap();
        let r_bytes: [u8; 32] = sig[..32].try_into().unwrap();
        let r = CompressedEdwardsY(r_bytes).decompress().unwrap();
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(sig[32..].try_into().unwrap()))
            .unwrap();
        let k = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(r_bytes)
                .chain_update(ed25519_public_key(b"pw"))
                .chain_update(nonce)
                .finalize()
                .into(),
        );
        assert_eq!(EdwardsPoint::mul_base(&s), r + k * a);
        // Another password signs differently.
        assert_ne!(client_ed25519(b"other", &nonce), sig);
    }

    fn login<'a>(tls: bool, auth: &'a AuthOptions, key: Option<&'a [u8]>) -> Login<'a> {
        Login::new("u", b"hunter2", tls, auth, key, "ssl".into())
    }

    #[test]
    fn clear_password_needs_tls_or_the_opt_in() {
        let auth = AuthOptions::default();
        let err = login(false, &auth, None)
            .start(CLEAR_PASSWORD, SCRAMBLE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("enable_cleartext_plugin"), "{err}");
        assert!(!err.contains("hunter2"));
        let err = login(false, &auth, None)
            .switch(CLEAR_PASSWORD, b"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("enable_cleartext_plugin") && err.contains("ssl=REQUIRED"),
            "{err}"
        );
        assert_eq!(
            login(true, &auth, None)
                .switch(CLEAR_PASSWORD, b"")
                .unwrap(),
            b"hunter2\0"
        );
        let opted_in = AuthOptions {
            enable_cleartext_plugin: true,
            ..Default::default()
        };
        assert_eq!(
            login(false, &opted_in, None)
                .start(CLEAR_PASSWORD, SCRAMBLE)
                .unwrap()
                .1,
            b"hunter2\0"
        );
    }

    #[test]
    fn unknown_greeting_plugins_are_answered_with_native_password() {
        let auth = AuthOptions::default();
        for plugin in ["auth_gssapi_client", CLIENT_ED25519, "dialog"] {
            let (name, data) = login(false, &auth, None).start(plugin, SCRAMBLE).unwrap();
            assert_eq!(name, NATIVE_PASSWORD);
            assert_eq!(data, native_password(b"hunter2", SCRAMBLE));
        }
    }

    #[test]
    fn caching_sha2_full_auth_over_tls_sends_the_password() {
        let auth = AuthOptions::default();
        let mut l = login(true, &auth, None);
        let (_, fast) = l.start(CACHING_SHA2_PASSWORD, SCRAMBLE).unwrap();
        assert_eq!(fast, caching_sha2_password(b"hunter2", SCRAMBLE));
        assert_eq!(
            l.more_data(&[4]).unwrap(),
            Reply::Send(b"hunter2\0".to_vec())
        );
        // Nothing more is expected but OK.
        assert!(l.more_data(&[4]).is_err());
    }

    #[test]
    fn caching_sha2_fast_auth_success_waits_for_ok() {
        let auth = AuthOptions::default();
        let mut l = login(false, &auth, None);
        l.start(CACHING_SHA2_PASSWORD, SCRAMBLE).unwrap();
        assert_eq!(l.more_data(&[3]).unwrap(), Reply::Wait);
    }

    #[test]
    fn caching_sha2_full_auth_without_tls_asks_for_the_key() {
        let auth = AuthOptions::default();
        let mut l = login(false, &auth, None);
        l.start(CACHING_SHA2_PASSWORD, SCRAMBLE).unwrap();
        assert_eq!(l.more_data(&[4]).unwrap(), Reply::Send(vec![2]));
        // A key that is no key is an error, not a panic, and not the password.
        let err = l.more_data(b"garbage").unwrap_err().to_string();
        assert!(err.contains("not a PEM RSA public key"), "{err}");
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn ed25519_switch_needs_a_32_byte_nonce() {
        let auth = AuthOptions::default();
        assert!(login(false, &auth, None)
            .switch(CLIENT_ED25519, &[1; 31])
            .is_err());
        let sig = login(false, &auth, None)
            .switch(CLIENT_ED25519, &[1; 32])
            .unwrap();
        assert_eq!(sig, client_ed25519(b"hunter2", &[1; 32]).to_vec());
    }

    #[test]
    fn a_second_switch_is_refused() {
        let auth = AuthOptions::default();
        let mut l = login(false, &auth, None);
        l.switch(NATIVE_PASSWORD, SCRAMBLE).unwrap();
        assert!(l.switch(NATIVE_PASSWORD, SCRAMBLE).is_err());
    }

    #[test]
    fn switch_scramble_drops_the_trailing_nul() {
        let auth = AuthOptions::default();
        let mut with_nul = SCRAMBLE.to_vec();
        with_nul.push(0);
        let reply = login(false, &auth, None)
            .switch(NATIVE_PASSWORD, &with_nul)
            .unwrap();
        assert_eq!(reply, native_password(b"hunter2", SCRAMBLE));
    }
}
