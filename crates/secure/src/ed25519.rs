//! Ed25519 signatures (RFC 8032) from a secret: the secret's SHA-512 gives
//! the signing scalar and the nonce prefix. With a 32-byte seed as the
//! secret this is standard Ed25519 (NATS NKeys); MariaDB's `client_ed25519`
//! uses the password itself as the secret.

use curve25519_dalek::scalar::clamp_integer;
use curve25519_dalek::{EdwardsPoint, Scalar};
use sha2::{Digest, Sha512};

/// The secret scalar and nonce prefix of `secret`.
fn expanded(secret: &[u8]) -> (Scalar, [u8; 32]) {
    let h = Sha512::digest(secret);
    let mut lower = [0u8; 32];
    let mut prefix = [0u8; 32];
    lower.copy_from_slice(&h[..32]);
    prefix.copy_from_slice(&h[32..]);
    (Scalar::from_bytes_mod_order(clamp_integer(lower)), prefix)
}

/// The public key of `secret` (compressed Edwards point).
pub fn public_key(secret: &[u8]) -> [u8; 32] {
    let (a, _) = expanded(secret);
    EdwardsPoint::mul_base(&a).compress().to_bytes()
}

/// The signature of `message` with `secret`.
pub fn sign(secret: &[u8], message: &[u8]) -> [u8; 64] {
    let (a, prefix) = expanded(secret);
    let public = EdwardsPoint::mul_base(&a).compress();
    let r = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(prefix)
            .chain_update(message)
            .finalize()
            .into(),
    );
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let k = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(big_r.as_bytes())
            .chain_update(public.as_bytes())
            .chain_update(message)
            .finalize()
            .into(),
    );
    let s = k * a + r;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8032 section 7.1, tests 1 and 2: a 32-byte seed is the secret.
    #[test]
    fn rfc8032_vectors() {
        let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        assert_eq!(
            public_key(&seed).to_vec(),
            hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        assert_eq!(
            sign(&seed, b"").to_vec(),
            hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
        );
        let seed = hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        assert_eq!(
            public_key(&seed).to_vec(),
            hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
        );
        assert_eq!(
            sign(&seed, &[0x72]).to_vec(),
            hex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
        );
    }
}
