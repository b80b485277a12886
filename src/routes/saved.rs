//! Saved replies (an extension): the team's canned answers, each with a shortcut an
//! agent types in the reply box (`/refund`) to insert its text.
//!
//! * `GET /api/saved-replies` (any agent) → `{"items":[SavedReply]}` by shortcut.
//! * `POST /api/saved-replies` (supervisor or admin) `{"shortcut","text"}` → 201
//!   SavedReply; `PUT /api/saved-replies/{id}` the same body → 200; `DELETE …/{id}` →
//!   204.
//!
//! SavedReply: `{"id","shortcut","text","updated_at","updated_by"}`. A shortcut is 1 to
//! 32 letters, digits, `-` or `_`, unique whatever its case (409 `conflict` when taken);
//! the text follows a reply's rules (400 empty, 413 too long). At most 1,000 saved
//! replies (409 past that). The text is sent as the agent leaves it: placeholders such as
//! `{{customer.first_name|there}}` are the console's to fill in before sending.

use super::{agent, parse, HubData};
use crate::domain::{AgentId, SavedReply};
use crate::error::ApiError;
use crate::store::{keys, Batch};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

/// Most saved replies a hub keeps.
const MAX_SAVED: usize = 1_000;
/// Longest shortcut, in characters.
const MAX_SHORTCUT: usize = 32;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/saved-replies", super::get().to(list))
        .route("/api/saved-replies", web::post().to(create))
        .route("/api/saved-replies/{id}", web::put().to(replace))
        .route("/api/saved-replies/{id}", web::delete().to(remove));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    shortcut: String,
    text: String,
}

impl Body {
    /// The saved reply `id` as `by` writes it now.
    fn into_saved(self, id: String, by: AgentId) -> SavedReply {
        SavedReply {
            id,
            shortcut: self.shortcut,
            text: self.text,
            updated_at: crate::now(),
            updated_by: by,
        }
    }
}

/// The calling agent, who must be a supervisor or an admin.
async fn editor(hub: &HubData, req: &HttpRequest) -> Result<AgentId, ApiError> {
    let (me, role) = agent(hub, req).await?;
    if !role.is_supervisor() {
        return Err(ApiError::Forbidden(
            "only a supervisor or an admin may change saved replies".into(),
        ));
    }
    Ok(me)
}

/// The body, checked; the shortcut without a leading `/` and blanks.
fn checked(body: &web::Bytes) -> Result<Body, ApiError> {
    let mut b: Body = parse(body)?;
    b.shortcut = b.shortcut.trim().trim_start_matches('/').to_string();
    let n = b.shortcut.chars().count();
    if n == 0
        || n > MAX_SHORTCUT
        || !b
            .shortcut
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid(format!(
            "shortcut must be 1 to {MAX_SHORTCUT} letters, digits, - or _"
        )));
    }
    super::check_text("text", &b.text)?;
    Ok(b)
}

async fn list(hub: HubData, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    agent(&hub, &req).await?;
    let mut items: Vec<SavedReply> = hub.saved_replies.iter().map(|r| r.clone()).collect();
    items.sort_by(|a, b| {
        a.shortcut
            .to_lowercase()
            .cmp(&b.shortcut.to_lowercase())
            .then(a.id.cmp(&b.id))
    });
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

async fn create(
    hub: HubData,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let me = editor(&hub, &req).await?;
    let b = checked(&super::read_body(&req, payload).await?)?;
    let r = b.into_saved(crate::auth::new_id("sr"), me);
    let out = r.clone();
    save(&hub, r, true).await?;
    tracing::info!(saved_reply = %out.id, "Saved reply created.");
    Ok(HttpResponse::Created().json(out))
}

async fn replace(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let me = editor(&hub, &req).await?;
    let b = checked(&super::read_body(&req, payload).await?)?;
    let r = b.into_saved(path.into_inner(), me);
    let out = r.clone();
    save(&hub, r, false).await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Writes `r` (new, or replacing the saved reply of its id) under the table's lock,
/// refusing a shortcut another one has.
async fn save(hub: &HubData, r: SavedReply, new: bool) -> Result<(), ApiError> {
    let hub2 = hub.get_ref().clone();
    hub.locked("saved-replies".into(), async move {
        let exists = hub2.saved_replies.contains_key(&r.id);
        if !new && !exists {
            return Err(ApiError::NotFound("saved reply not found".into()));
        }
        if new && hub2.saved_replies.len() >= MAX_SAVED {
            return Err(ApiError::Conflict(format!(
                "a hub keeps at most {MAX_SAVED} saved replies; delete one first"
            )));
        }
        let wanted = r.shortcut.to_lowercase();
        if hub2
            .saved_replies
            .iter()
            .any(|o| o.id != r.id && o.shortcut.to_lowercase() == wanted)
        {
            return Err(ApiError::Conflict(format!(
                "the shortcut /{} is taken",
                r.shortcut
            )));
        }
        let mut b = Batch::default();
        b.put_json(keys::SAVED_REPLY, &[r.id.as_bytes()], &r);
        hub2.store.commit(b).await?;
        hub2.saved_replies.insert(r.id.clone(), r);
        Ok(())
    })
    .await
}

async fn remove(
    hub: HubData,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    editor(&hub, &req).await?;
    let id = path.into_inner();
    let hub2 = hub.get_ref().clone();
    hub.locked("saved-replies".into(), async move {
        if !hub2.saved_replies.contains_key(&id) {
            return Err(ApiError::NotFound("saved reply not found".into()));
        }
        let mut b = Batch::default();
        b.remove(keys::SAVED_REPLY, &[id.as_bytes()]);
        hub2.store.commit(b).await?;
        hub2.saved_replies.remove(&id);
        Ok::<_, ApiError>(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
