//! What each path answers. Probes (`/ping`, `/healthcheck`, `/leader`) are
//! always open: load balancers and orchestrators cannot log in. Everything
//! else needs `http_auth`'s credentials when it is set.

use serde_json::json;

use super::auth::BasicAuth;
use super::cluster::ClusterView;
use super::page;
use super::server::Request;
use crate::telemetry::{Role, Telemetry};

/// What the request handler knows besides the telemetry.
pub struct Endpoint {
    /// `http_path_prefix` without its trailing `/`.
    pub prefix: String,
    /// This node's advertised `host:port`.
    pub address: String,
    pub auth: Option<BasicAuth>,
    pub config_endpoint: bool,
    /// The server the binlog is read from (`/diagnostic`'s resource).
    pub mysql: String,
    pub producer: &'static str,
    pub cluster: ClusterView,
}

pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            headers: Vec::new(),
        }
    }

    fn json(status: u16, body: impl Into<String>) -> Response {
        Response {
            content_type: "application/json",
            ..Response::text(status, body)
        }
    }
}

/// A path under the prefix, as the router sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Page,
    Ping,
    Healthcheck,
    Leader,
    Status,
    Metrics,
    Config,
    Diagnostic,
    Cluster,
}

impl Route {
    fn of(rest: &str) -> Option<Route> {
        Some(match rest {
            "" | "/" => Route::Page,
            "/ping" => Route::Ping,
            "/healthcheck" => Route::Healthcheck,
            "/leader" => Route::Leader,
            "/status" => Route::Status,
            "/metrics" | "/prometheus" => Route::Metrics,
            "/config" => Route::Config,
            "/diagnostic" => Route::Diagnostic,
            "/cluster" => Route::Cluster,
            _ => return None,
        })
    }

    /// Probes stay open for load balancers and orchestrators.
    fn is_open(self) -> bool {
        matches!(self, Route::Ping | Route::Healthcheck | Route::Leader)
    }
}

pub async fn respond(req: &Request, t: &Telemetry, e: &Endpoint) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        let mut r = Response::text(405, "only GET and HEAD\n");
        r.headers.push(("Allow", "GET, HEAD".into()));
        return r;
    }
    let route = req
        .path
        .strip_prefix(e.prefix.as_str())
        .and_then(Route::of)
        .filter(|r| *r != Route::Config || e.config_endpoint);
    let Some(route) = route else {
        return Response::text(404, "not found\n");
    };
    if let Some(auth) = &e.auth {
        if !route.is_open() && !auth.accepts(req.header("Authorization")) {
            let mut r = Response::text(401, "authentication required (http_auth)\n");
            r.headers.push((
                "WWW-Authenticate",
                "Basic realm=\"sluice\", charset=\"UTF-8\"".into(),
            ));
            return r;
        }
    }
    match route {
        Route::Page => page::response(&e.prefix, &t.client_id),
        Route::Ping => Response::text(200, "pong\n"),
        Route::Healthcheck => health(t),
        Route::Leader => {
            if t.role() == Role::Leader {
                Response::text(200, "leader\n")
            } else {
                Response::text(503, format!("{}\n", t.role().name()))
            }
        }
        Route::Status => Response::json(200, t.status_json(&e.address, &t.session()) + "\n"),
        Route::Metrics => Response {
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            ..Response::text(200, t.prometheus())
        },
        Route::Config => Response::json(200, t.config_json() + "\n"),
        Route::Diagnostic => diagnostic(t, e),
        Route::Cluster => {
            Response::json(200, e.cluster.json(t, &e.address).await.to_string() + "\n")
        }
    }
}

/// Healthy unless the node hit a fatal error, is still starting (or its
/// startup is stalled), or, as leader, has been without its binlog
/// connection for too long.
fn health(t: &Telemetry) -> Response {
    match t.unhealthy().or_else(|| t.not_ready()) {
        Some(reason) => Response::json(
            503,
            json!({"healthy": false, "reason": reason}).to_string() + "\n",
        ),
        None => Response::json(200, "{\"healthy\":true}\n"),
    }
}

/// Maxwell's `/diagnostic` shape: 200 when every check passes, 503 when a
/// mandatory one fails, 299 when only an optional one does.
fn diagnostic(t: &Telemetry, e: &Endpoint) -> Response {
    let role = t.role();
    let binlog = if role != Role::Leader {
        (
            true,
            format!("{}: this node does not read the binlog", role.name()),
        )
    } else if t.unhealthy().is_some() || t.current_outage().is_some() {
        (false, "the binlog connection is down".to_string())
    } else {
        match t.lag_ms() {
            Some(lag) => (true, format!("connected; heartbeat lag {lag} ms")),
            None => (true, "connected".to_string()),
        }
    };
    let state = t.producer_state();
    let producer = (
        !matches!(
            state,
            crate::telemetry::ProducerState::Failing | crate::telemetry::ProducerState::Stopped
        ),
        format!(
            "{} ({} recent failures)",
            state.name(),
            t.rates().recent_failures
        ),
    );
    let checks = [
        ("binlog-connector", binlog, true, e.mysql.as_str()),
        ("producer", producer, false, e.producer),
    ];
    let mandatory_failed = checks.iter().any(|(_, (ok, _), m, _)| *m && !ok);
    let optional_failed = checks.iter().any(|(_, (ok, _), m, _)| !m && !ok);
    let body = json!({
        "success": !mandatory_failed && !optional_failed,
        "checks": checks.iter().map(|(name, (ok, message), mandatory, resource)| json!({
            "name": name, "success": ok, "mandatory": mandatory, "resource": resource, "message": message,
        })).collect::<Vec<_>>(),
    });
    let status = if mandatory_failed {
        503
    } else if optional_failed {
        299
    } else {
        200
    };
    Response::json(status, body.to_string() + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(auth: Option<&str>, config: bool) -> Endpoint {
        Endpoint {
            prefix: "/cdc".into(),
            address: "127.0.0.1:1".into(),
            auth: auth.map(|a| BasicAuth::parse(a).unwrap()),
            config_endpoint: config,
            mysql: "db:3306".into(),
            producer: "file",
            cluster: ClusterView::single(),
        }
    }

    fn get(path: &str, authorization: Option<&str>) -> Request {
        let mut head = format!("GET {path} HTTP/1.1\r\n");
        if let Some(a) = authorization {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        Request::parse(&head)
    }

    fn run(req: Request, t: &Telemetry, e: &Endpoint) -> Response {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(respond(&req, t, e))
    }

    #[test]
    fn healthcheck_says_starting_and_what_startup_waits_for() {
        let t = Telemetry::new("c", "sluice");
        let e = endpoint(None, false);
        let r = run(get("/cdc/healthcheck", None), &t, &e);
        assert_eq!(r.status, 503);
        assert!(r.body.contains(r#""reason":"starting""#));
        t.set_startup_step(Some("opening the position store"));
        let r = run(get("/cdc/healthcheck", None), &t, &e);
        assert_eq!(r.status, 503);
        assert!(r.body.contains("starting: opening the position store"));
        t.set_startup_step(None);
        t.set_role(Role::Leader);
        assert_eq!(run(get("/cdc/healthcheck", None), &t, &e).status, 200);
    }

    #[test]
    fn probes_stay_open_everything_else_needs_the_credentials() {
        let t = Telemetry::new("c", "sluice");
        let e = endpoint(Some("ops:pw"), true);
        assert_eq!(run(get("/cdc/ping", None), &t, &e).status, 200);
        // Open, and not healthy while the node starts.
        assert_eq!(run(get("/cdc/healthcheck", None), &t, &e).status, 503);
        assert_eq!(run(get("/cdc/leader", None), &t, &e).status, 503);
        let good = e.auth.as_ref().unwrap().header().to_string();
        for closed in [
            "/cdc",
            "/cdc/",
            "/cdc/status",
            "/cdc/metrics",
            "/cdc/prometheus",
            "/cdc/config",
            "/cdc/diagnostic",
            "/cdc/cluster",
        ] {
            let r = run(get(closed, None), &t, &e);
            assert_eq!(r.status, 401, "{closed}");
            assert!(r
                .headers
                .iter()
                .any(|(k, v)| *k == "WWW-Authenticate" && v.starts_with("Basic")));
            assert_eq!(
                run(get(closed, Some("Basic b3BzOndyb25n")), &t, &e).status,
                401,
                "{closed}"
            );
            assert_eq!(
                run(get(closed, Some(&good)), &t, &e).status,
                200,
                "{closed}"
            );
        }
        // Unknown paths say nothing more with or without credentials.
        assert_eq!(run(get("/cdc/secret", None), &t, &e).status, 404);
    }

    #[test]
    fn prometheus_is_metrics_and_config_needs_http_config() {
        let t = Telemetry::new("c", "sluice");
        let e = endpoint(None, false);
        let m = run(get("/cdc/metrics", None), &t, &e);
        let p = run(get("/cdc/prometheus", None), &t, &e);
        assert_eq!(p.status, 200);
        assert!(p.body.contains("sluice_up 1") && p.content_type.contains("0.0.4"));
        assert_eq!(m.content_type, p.content_type);
        assert_eq!(run(get("/cdc/config", None), &t, &e).status, 404);
        let e = endpoint(None, true);
        let c = run(get("/cdc/config", None), &t, &e);
        assert_eq!((c.status, c.body.as_str()), (200, "{\"filter\":null}\n"));
        t.set_config_json("{\"filter\":\"exclude: *.*\"}".into());
        t.set_config_json("not json".into());
        let c = run(get("/cdc/config", None), &t, &e);
        assert_eq!(c.body, "{\"filter\":\"exclude: *.*\"}\n");
    }

    #[test]
    fn only_get_and_head() {
        let t = Telemetry::new("c", "sluice");
        let e = endpoint(None, true);
        let r = run(Request::parse("POST /cdc/config HTTP/1.1\r\n"), &t, &e);
        assert_eq!(r.status, 405);
        assert!(r.headers.iter().any(|(k, _)| *k == "Allow"));
    }

    #[test]
    fn diagnostic_follows_maxwell_s_codes() {
        let t = Telemetry::new("c", "sluice");
        let e = endpoint(None, false);
        let d = run(get("/cdc/diagnostic", None), &t, &e);
        let v: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(d.status, 200, "{v}");
        assert_eq!(v["success"], true);
        assert_eq!(v["checks"][0]["name"], "binlog-connector");
        assert_eq!(v["checks"][0]["mandatory"], true);
        assert_eq!(v["checks"][0]["resource"], "db:3306");
        assert_eq!(v["checks"][1]["resource"], "file");
        // A leader whose binlog connection is down: the mandatory check fails.
        t.set_role(Role::Leader);
        t.binlog_connected();
        t.binlog_disconnected();
        let d = run(get("/cdc/diagnostic", None), &t, &e);
        assert_eq!(d.status, 503, "{}", d.body);
        // Connected again, but the producer failed recently: 299.
        t.binlog_connected();
        t.sample_rates();
        t.producer
            .get_or_init(Default::default)
            .failed
            .store(2, std::sync::atomic::Ordering::Relaxed);
        t.sample_rates();
        let d = run(get("/cdc/diagnostic", None), &t, &e);
        assert_eq!(d.status, 299, "{}", d.body);
    }
}
