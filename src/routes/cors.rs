//! CORS for the widget API: the widget is embedded in customer sites, so its calls to
//! `/api/widget/*` are cross-origin. Origins are those of `HUB_ALLOWED_ORIGINS` (the
//! same list that guards WebSocket upgrades).

use super::HubData;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};

fn allowed_origin(req: &ServiceRequest) -> Option<String> {
    let origin = req
        .headers()
        .get(header::ORIGIN)?
        .to_str()
        .ok()?
        .to_string();
    let hub = req.app_data::<HubData>()?;
    hub.config.origin_listed(&origin).then_some(origin)
}

/// Answers preflights and adds `Access-Control-Allow-Origin` on widget routes.
pub async fn widget_cors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if !req.path().starts_with("/api/widget/") {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let origin = allowed_origin(&req);
    if req.method() == Method::OPTIONS {
        let mut res = HttpResponse::NoContent();
        if let Some(o) = &origin {
            res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, o.as_str()))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "Authorization, Content-Type",
                ))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
                .insert_header((header::VARY, "Origin"));
        }
        return Ok(req.into_response(res.finish()).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    if let Some(o) = origin {
        if let Ok(v) = header::HeaderValue::from_str(&o) {
            res.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            res.headers_mut()
                .insert(header::VARY, header::HeaderValue::from_static("Origin"));
        }
    }
    Ok(res.map_into_left_body())
}
