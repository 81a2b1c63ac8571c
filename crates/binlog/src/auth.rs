//! Client-side password scrambles of the authentication plugins we speak.

use sha1::{Digest, Sha1};
use sha2::Sha256;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
