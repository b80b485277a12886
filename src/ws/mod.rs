//! WebSockets: the only module that uses actix-web-actors.

use actix_web::web;

/// Registers the socket routes.
pub fn configure(_cfg: &mut web::ServiceConfig) {}
