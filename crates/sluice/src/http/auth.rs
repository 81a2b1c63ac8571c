//! HTTP basic authentication (`http_auth=user:password`). The password is
//! a secret: it never appears in Debug output, logs or error messages.

use base64::Engine as _;

#[derive(Clone)]
pub struct BasicAuth {
    pub user: String,
    /// `user:password`, as the client sends it (base64-decoded).
    credentials: Vec<u8>,
    /// `Basic <base64>` for requests to other nodes.
    header: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BasicAuth {{ user: {:?}, password: \"****\" }}",
            self.user
        )
    }
}

impl BasicAuth {
    /// `user:password`; the password may contain `:`.
    pub fn parse(text: &str) -> Result<BasicAuth, String> {
        let Some((user, password)) = text.split_once(':') else {
            return Err("must be user:password (no ':' found)".into());
        };
        if user.is_empty() || password.is_empty() {
            return Err("must be user:password with neither part empty".into());
        }
        Ok(BasicAuth {
            user: user.to_string(),
            credentials: text.as_bytes().to_vec(),
            header: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(text)
            ),
        })
    }

    /// The `Authorization` header value that authenticates as this user.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// Whether an `Authorization` header value carries these credentials.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let mut parts = value.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or("");
        let token = parts.next().unwrap_or("").trim();
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        match base64::engine::general_purpose::STANDARD.decode(token) {
            Ok(given) => constant_time_eq(&given, &self.credentials),
            Err(_) => false,
        }
    }
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in b.iter().enumerate() {
        diff |= x ^ a.get(i).copied().unwrap_or(!x);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exactly_its_credentials() {
        let a = BasicAuth::parse("admin:pa:ss").unwrap();
        assert_eq!(a.user, "admin");
        assert_eq!(a.header(), "Basic YWRtaW46cGE6c3M=");
        assert!(a.accepts(Some("Basic YWRtaW46cGE6c3M=")));
        assert!(a.accepts(Some("basic  YWRtaW46cGE6c3M= ")));
        for wrong in [
            None,
            Some(""),
            Some("Bearer YWRtaW46cGE6c3M="),
            Some("Basic YWRtaW46cGE6cw=="), // admin:pa:s
            Some("Basic YWRtaW46cGE6c3Mx"), // admin:pa:ss1
            Some("Basic not base64!"),
        ] {
            assert!(!a.accepts(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn malformed_settings_are_refused_without_echoing_them() {
        for bad in ["admin", ":pw", "admin:"] {
            let e = BasicAuth::parse(bad).unwrap_err();
            assert!(!e.contains(bad), "{e}");
        }
        assert!(!format!("{:?}", BasicAuth::parse("u:topsecret").unwrap()).contains("topsecret"));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }
}
