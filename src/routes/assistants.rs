//! Assistants (PROTOCOL §6.4): drafts, publication per channel (one assistant per channel).

use super::{admin, agent, parse, HubData};
use crate::domain::{Assistant, AssistantId, Rule};
use crate::error::ApiError;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

/// Registers the assistant routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/assistants", web::post().to(create))
        .route("/api/assistants", super::get().to(list))
        .route("/api/assistants/{id}", web::put().to(replace))
        .route("/api/assistants/{id}", super::get().to(show))
        .route("/api/assistants/{id}/publish", web::post().to(publish))
        .route("/api/assistants/{id}/unpublish", web::post().to(unpublish));
}

#[derive(Deserialize)]
struct Definition {
    // PROTOCOL §6.4: `name`, `rules` and `transfer_keywords` are required (400 when
    // absent, so a PUT cannot wipe an assistant's rules by leaving them out); the
    // fields marked `?` there are optional.
    name: String,
    rules: Vec<Rule>,
    transfer_keywords: Vec<String>,
    transfer_reply: Option<String>,
    /// Optional: absent and `null` both mean none, as for the optional replies.
    #[serde(default)]
    spam_keywords: Option<Vec<String>>,
    default_reply: Option<String>,
}

fn check(d: &Definition) -> Result<(), ApiError> {
    if d.name.trim().is_empty() || d.name.chars().count() > 100 {
        return Err(ApiError::invalid("name must be 1 to 100 characters"));
    }
    for r in &d.rules {
        if r.pattern.trim().is_empty() {
            return Err(ApiError::invalid("a rule's match must not be empty"));
        }
        super::check_text("a rule's reply", &r.reply)?;
    }
    // A blank keyword would match every message; it is refused like a blank `match`.
    let mut keywords = d
        .transfer_keywords
        .iter()
        .chain(d.spam_keywords.iter().flatten());
    if keywords.any(|k| k.trim().is_empty()) {
        return Err(ApiError::invalid("keywords must not be blank"));
    }
    for t in [&d.transfer_reply, &d.default_reply].into_iter().flatten() {
        super::check_text("a reply", t)?;
    }
    Ok(())
}

fn apply_definition(a: &mut Assistant, d: Definition) {
    a.name = d.name.trim().to_string();
    a.rules = d.rules;
    a.transfer_keywords = d.transfer_keywords;
    a.transfer_reply = d.transfer_reply;
    a.spam_keywords = d.spam_keywords.unwrap_or_default();
    a.default_reply = d.default_reply;
}

async fn create(
    hub: HubData,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let d: Definition = parse(&body)?;
    check(&d)?;
    let mut a = Assistant {
        id: AssistantId::from(crate::auth::new_id("b")),
        name: String::new(),
        status: "draft".into(),
        channels: vec![],
        rules: vec![],
        transfer_keywords: vec![],
        transfer_reply: None,
        spam_keywords: vec![],
        default_reply: None,
    };
    apply_definition(&mut a, d);
    let hub2 = hub.get_ref().clone();
    let out = a.clone();
    hub.locked("assistants".into(), async move {
        hub2.put_assistants(vec![a]).await
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}

async fn list(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let mut items: Vec<Assistant> = hub.assistants.iter().map(|a| a.clone()).collect();
    items.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

async fn show(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let a = hub
        .assistants
        .get(&AssistantId::from(path.into_inner()))
        .map(|a| a.clone())
        .ok_or_else(|| ApiError::NotFound("assistant not found".into()))?;
    Ok(HttpResponse::Ok().json(a))
}

/// Runs `f` on the assistant `id` (and may change others) under the assistants lock.
async fn update(
    hub: &HubData,
    id: String,
    f: impl FnOnce(&mut Assistant, &mut Vec<Assistant>) + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let hub2 = hub.get_ref().clone();
    let id = AssistantId::from(id);
    hub.locked("assistants".into(), async move {
        let mut a = hub2
            .assistants
            .get(&id)
            .map(|a| a.clone())
            .ok_or_else(|| ApiError::NotFound("assistant not found".into()))?;
        let mut others: Vec<Assistant> = hub2
            .assistants
            .iter()
            .filter(|o| o.id != id)
            .map(|o| o.clone())
            .collect();
        f(&mut a, &mut others);
        let out = a.clone();
        let mut changed = vec![a];
        changed.extend(others);
        hub2.put_assistants(changed).await?;
        Ok(HttpResponse::Ok().json(out))
    })
    .await
}

async fn replace(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let d: Definition = parse(&body)?;
    check(&d)?;
    update(&hub, path.into_inner(), move |a, others| {
        apply_definition(a, d);
        others.clear();
    })
    .await
}

/// A misspelt `channels` must not unpublish every channel (see `AssignBody`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Channels {
    channels: Option<Vec<String>>,
}

fn set_status(a: &mut Assistant) {
    a.status = if a.channels.is_empty() {
        "draft"
    } else {
        "published"
    }
    .into();
}

async fn publish(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let c: Channels = parse(&body)?;
    let channels: Vec<String> = c.channels.unwrap_or_default();
    if channels.is_empty() {
        return Err(ApiError::invalid(
            "channels must list at least one channel name",
        ));
    }
    if channels
        .iter()
        .any(|c| c.trim().is_empty() || c.chars().count() > 64)
    {
        return Err(ApiError::invalid(
            "a channel name must be 1 to 64 characters",
        ));
    }
    update(&hub, path.into_inner(), move |a, others| {
        for ch in &channels {
            if !a.channels.contains(ch) {
                a.channels.push(ch.clone());
            }
        }
        set_status(a);
        others.retain_mut(|o| {
            let before = o.channels.len();
            o.channels.retain(|c| !channels.contains(c));
            set_status(o);
            o.channels.len() != before
        });
    })
    .await
}

async fn unpublish(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&hub, &req).await?;
    let body = super::read_body(&req, payload).await?;
    let c: Channels = parse(&body)?;
    update(&hub, path.into_inner(), move |a, others| {
        match c.channels {
            Some(chs) => a.channels.retain(|x| !chs.contains(x)),
            None => a.channels.clear(),
        }
        set_status(a);
        others.clear();
    })
    .await
}
