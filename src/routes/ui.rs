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
        "/console/live.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/console/live.js"),
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

/// Registers the static pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, content_type, body) in FILES {
        cfg.route(
            path,
            super::get().to(move || async move {
                HttpResponse::Ok()
                    .content_type(*content_type)
                    .insert_header(("Content-Security-Policy", CSP))
                    .insert_header(("Cache-Control", "no-cache"))
                    .body(*body)
            }),
        );
    }
}
