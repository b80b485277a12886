//! The console and the chat widget: static files compiled into the binary, so the hub
//! stays one binary. Served with a strict Content-Security-Policy (no inline scripts).

use actix_web::{web, HttpResponse};

/// (URL path, content type, file contents).
const FILES: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../static/index.html"),
    ),
    (
        "/console.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console.js"),
    ),
    (
        "/console.css",
        "text/css; charset=utf-8",
        include_str!("../../static/console.css"),
    ),
    (
        "/widget",
        "text/html; charset=utf-8",
        include_str!("../../static/widget.html"),
    ),
    (
        "/widget.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/widget.js"),
    ),
    (
        "/widget.css",
        "text/css; charset=utf-8",
        include_str!("../../static/widget.css"),
    ),
    (
        "/demo.css",
        "text/css; charset=utf-8",
        include_str!("../../static/demo.css"),
    ),
    (
        "/console/agents.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/agents.js"),
    ),
    (
        "/console/api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/api.js"),
    ),
    (
        "/console/assistants.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/assistants.js"),
    ),
    (
        "/console/dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/dom.js"),
    ),
    (
        "/console/idle.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/idle.js"),
    ),
    (
        "/console/keys.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/keys.js"),
    ),
    (
        "/console/live.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/live.js"),
    ),
    (
        "/console/saved.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/saved.js"),
    ),
    (
        "/console/search.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/search.js"),
    ),
    (
        "/console/stats.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/stats.js"),
    ),
    (
        "/console/transcript.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/transcript.js"),
    ),
    (
        "/console/typing.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/typing.js"),
    ),
    (
        "/console/words.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/words.js"),
    ),
];

/// The policy of every page: scripts and styles from the hub only; sockets to anywhere
/// (the widget may be embedded in a customer site and talk back to the hub).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss: http: https:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'";

/// A file's entity tag: a hash of its bytes (FNV-1a, 64 bits), so that a browser
/// revalidating a page it has (`Cache-Control: no-cache`) gets a 304 without the body
/// while the binary is the same, and the new file after an upgrade.
fn etag(body: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// Whether `If-None-Match` names `tag` (or `*`), RFC 9110 §13.1.2 (weak comparison).
fn not_modified(req: &actix_web::HttpRequest, tag: &str) -> bool {
    req.headers()
        .get_all(actix_web::http::header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == tag || t == "*")
}

/// Registers the static pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, content_type, body) in FILES {
        let tag = etag(body);
        cfg.route(
            path,
            super::get().to(move |req: actix_web::HttpRequest| {
                let tag = tag.clone();
                async move {
                    let unchanged = not_modified(&req, &tag);
                    let mut res = if unchanged {
                        HttpResponse::NotModified()
                    } else {
                        HttpResponse::Ok()
                    };
                    res.insert_header(("Content-Security-Policy", CSP))
                        .insert_header(("Cache-Control", "no-cache"))
                        .insert_header((actix_web::http::header::ETAG, tag));
                    if unchanged {
                        return res.finish();
                    }
                    res.content_type(*content_type).body(*body)
                }
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::etag;

    #[test]
    fn a_file_s_tag_changes_with_its_bytes() {
        assert_eq!(etag("a"), etag("a"));
        assert_ne!(etag("a"), etag("b"));
        assert!(etag("").starts_with('"') && etag("").ends_with('"'));
    }
}
