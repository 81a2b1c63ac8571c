//! The status page at the root of the endpoint: one self-contained HTML
//! document (no external scripts, styles, fonts or images: it works
//! offline and behind any proxy) that reads `/cluster` every 2 s and draws
//! the cluster. The Content-Security-Policy keeps it that way: the page may
//! talk to its own origin only.

use super::routes::Response;

const PAGE: &str = include_str!("status_page.html");

pub fn response(prefix: &str, client_id: &str) -> Response {
    let mut r = Response::text(200, render(prefix, client_id));
    r.content_type = "text/html; charset=utf-8";
    r.headers.push((
        "Content-Security-Policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
            .into(),
    ));
    r
}

fn render(prefix: &str, client_id: &str) -> String {
    // The data's base: `<prefix>/`, whatever URL the page was loaded by
    // (`/cdc` or `/cdc/`).
    let base = serde_json::Value::String(format!("{prefix}/"))
        .to_string()
        .replace('<', "\\u003c");
    PAGE.replace("__PREFIX_JSON__", &base)
        .replace("__CLIENT_ID__", &html_escape(client_id))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained_and_knows_its_prefix() {
        let page = render("/cdc", "orders");
        assert!(page.contains("const BASE = \"/cdc/\";"), "prefix");
        assert!(page.contains("<title>sluice · orders</title>"));
        assert!(!page.contains("__"), "a placeholder is left");
        // Nothing is loaded from elsewhere.
        for external in ["src=\"http", "href=\"http", "url(http", "@import", "<link"] {
            assert!(!page.contains(external), "{external}");
        }
        assert_eq!(render("", "c").matches("const BASE = \"/\";").count(), 1);
    }

    #[test]
    fn names_cannot_break_out_of_the_page() {
        let page = render("/</script>", "<b>\"x\"&");
        assert!(page.contains("&lt;b&gt;&quot;x&quot;&amp;"));
        assert!(page.contains("\"/\\u003c/script>/\""));
        assert_eq!(page.matches("</script>").count(), 1);
    }
}
