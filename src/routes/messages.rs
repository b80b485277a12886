//! Message actions (PROTOCOL §6.1): `POST /api/messages/{id}/{action}`.

use super::{agent, check_text, parse, HubData};
use crate::actors::conversation::Outcome;
use crate::domain::{Actor as Who, Command, MessageId, Ts};
use crate::error::ApiError;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

/// Registers the message routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/messages/{id}/{action}", web::post().to(act));
}

/// Bodies whose optional fields change what the action does when absent (assign to
/// oneself, a hold without end) refuse a field they do not know: a misspelt one would
/// silently do the other thing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    agent_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    for_seconds: Option<serde_json::Value>,
    until: Option<String>,
}

#[derive(Deserialize)]
struct HelpBody {
    question: String,
}

#[derive(Deserialize)]
struct AnswerBody {
    answer: String,
}

/// Longest hold: ten years.
const MAX_HOLD_SECONDS: f64 = 10.0 * 365.0 * 86_400.0;

fn hold_until(b: HoldBody) -> Result<Option<Ts>, ApiError> {
    let now = crate::now();
    match (b.for_seconds, b.until) {
        (Some(_), Some(_)) => Err(ApiError::invalid("give for_seconds or until, not both")),
        (Some(v), None) => {
            let s = v
                .as_f64()
                .filter(|s| *s > 0.0 && *s <= MAX_HOLD_SECONDS)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "for_seconds must be a number above 0 and at most ten years (315360000)",
                    )
                })?;
            Ok(Some(Ts(now.0 + (s * 1000.0).ceil() as i64)))
        }
        (None, Some(u)) => {
            let t = Ts::parse(&u).ok_or_else(|| {
                ApiError::invalid("until must be an RFC 3339 time before the year 10000")
            })?;
            if t <= now {
                return Err(ApiError::invalid("until must be in the future"));
            }
            Ok(Some(t))
        }
        (None, None) => Ok(None),
    }
}

async fn act(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (id, action) = path.into_inner();
    let (me, role) = agent(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let message_id = MessageId::from(id);
    let cmd = match action.as_str() {
        "assign" => {
            let b: AssignBody = parse(&body)?;
            let agent_id = super::agent_or_me(&hub, b.agent_id, &me)?;
            Command::Assign {
                message_id: message_id.clone(),
                agent_id,
            }
        }
        "unassign" => {
            parse::<serde_json::Value>(&body)?;
            Command::Unassign {
                message_id: message_id.clone(),
            }
        }
        "hold" => {
            let until = hold_until(parse(&body)?)?;
            Command::Hold {
                message_id: message_id.clone(),
                until,
            }
        }
        "request-help" => {
            let b: HelpBody = parse(&body)?;
            check_text("question", &b.question)?;
            Command::RequestHelp {
                message_id: message_id.clone(),
                question: b.question,
            }
        }
        "answer-help" => {
            let b: AnswerBody = parse(&body)?;
            check_text("answer", &b.answer)?;
            Command::AnswerHelp {
                message_id: message_id.clone(),
                answer: b.answer,
                requester_present: false,
            }
        }
        "archive" => {
            parse::<serde_json::Value>(&body)?;
            Command::Archive {
                message_id: message_id.clone(),
            }
        }
        "reopen" => {
            parse::<serde_json::Value>(&body)?;
            Command::Reopen {
                message_id: message_id.clone(),
            }
        }
        _ => return Err(ApiError::NotFound(format!("no action {action:?}"))),
    };
    let conv = hub.conversation_of(&message_id).await?;
    let who = Who::Agent {
        id: me.clone(),
        role,
    };
    let outcome = hub.exec(&conv, cmd, who, None).await.map_err(|e| match e {
        // A numbered id may name a conversation that does not exist.
        ApiError::NotFound(_) => ApiError::NotFound("message not found".into()),
        e => e,
    })?;
    match outcome {
        Outcome::Message(m) => {
            tracing::info!(message_id = %m.id, status = m.status.as_str(), by = %me, action = %action, "Message action.");
            Ok(HttpResponse::Ok().json(json!({ "message": m })))
        }
        _ => Err(ApiError::NotFound("message not found".into())),
    }
}
