//! The Stratosphere Net Objects API: a tenant's virtual L2 switches, mapped one to one onto
//! Neutron networks of that tenant.
//!
//! | request | answer |
//! |---|---|
//! | `GET /tenants/{tenant}/switches.json` | 200 `{"switches": [switch, ...]}` |
//! | `POST /tenants/{tenant}/switches.json` `{"switch": {"name", "description", "admin_state_up"}}` | 201 `{"switch": switch}` |
//! | `GET /tenants/{tenant}/switches/{id}.json` | 200 `{"switch": switch}` |
//! | `POST /tenants/{tenant}/switches/{id}.json` `{"switch": {...}}` (update) | 200 `{"switch": switch}` |
//! | `DELETE /tenants/{tenant}/switches/{id}.json` | 204 |
//!
//! A switch is `{"id", "name", "description", "tenant_id", "admin_state_up", "status",
//! "subnets"}` plus `"vni"` for provider tokens (which may also ask for one on create); its
//! view is [`SwitchView`].
//!
//! Contract: a tenant token may only use its own `{tenant}` (another one is 403); a provider
//! token any. A switch listed under `{tenant}` is a network owned by it (shared networks of
//! other tenants are not its switches). Errors are NeutronErrors as in the Neutron API.

use super::body::{envelope, Attrs};
use super::view::{Envelope, SwitchView};
use super::{blocking, created, json_ok, no_content, App, RawBody, P};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::{NetworkCreate, NetworkInfo, NetworkUpdate};
use axum::extract::State;
use axum::response::Response;
use std::sync::Arc;

/// `{"switch": switch}`.
fn one<'a>(n: &'a NetworkInfo, c: &Caller) -> Envelope<SwitchView<'a>> {
    Envelope::new("switch", SwitchView::new(n, c))
}

/// Refuses `c` on another tenant's path (a tenant token may only use its own).
fn scoped(c: &Caller, tenant: &str) -> Result<(), ApiError> {
    if !c.is_admin() && c.tenant_id != tenant {
        return Err(ApiError::policy("rule:net_objects of another tenant"));
    }
    Ok(())
}

fn switch_id(file: &str) -> Result<&str, ApiError> {
    file.strip_suffix(".json").ok_or(ApiError::NoRoute)
}

/// The network `id` as a switch of `tenant`, or 404.
fn find(app: &App, c: &Caller, tenant: &str, id: &str) -> Result<NetworkInfo, ApiError> {
    match app.service.get_network(c, id) {
        Ok(n) if n.network.tenant_id == tenant => Ok(n),
        _ => Err(ApiError::not_found("Switch", id)),
    }
}

fn attrs(body: &[u8]) -> Result<Attrs, ApiError> {
    envelope(body, "switch", "switches")
}

const READ_ONLY: &[&str] = &["id", "status", "subnets", "tenant_id"];

/// GET /tenants/{tenant}/switches.json
pub async fn list(
    State(app): State<Arc<App>>,
    c: Caller,
    P(tenant): P<String>,
) -> Result<Response, ApiError> {
    scoped(&c, &tenant)?;
    let nets = app.service.list_networks(&c)?;
    let sw: Vec<SwitchView<'_>> = nets
        .iter()
        .filter(|n| n.network.tenant_id == tenant)
        .map(|n| SwitchView::new(n, &c))
        .collect();
    Ok(json_ok(&Envelope::new("switches", sw)))
}

/// POST /tenants/{tenant}/switches.json
pub async fn create(
    State(app): State<Arc<App>>,
    c: Caller,
    P(tenant): P<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    scoped(&c, &tenant)?;
    let mut a = attrs(&body)?;
    let req = NetworkCreate {
        tenant_id: Some(tenant),
        name: a.string("name")?,
        description: a.string("description")?,
        admin_state_up: a.boolean("admin_state_up")?,
        segmentation_id: a.u32("vni")?,
        ..NetworkCreate::default()
    };
    a.finish(READ_ONLY, true)?;
    let (svc, c2) = (app.service.clone(), c.clone());
    let n = blocking(move || svc.create_network(&c2, req)).await?;
    Ok(created(&one(&n, &c)))
}

/// GET /tenants/{tenant}/switches/{id}.json
pub async fn show(
    State(app): State<Arc<App>>,
    c: Caller,
    P((tenant, file)): P<(String, String)>,
) -> Result<Response, ApiError> {
    scoped(&c, &tenant)?;
    let n = find(&app, &c, &tenant, switch_id(&file)?)?;
    Ok(json_ok(&one(&n, &c)))
}

/// POST /tenants/{tenant}/switches/{id}.json (update)
pub async fn update(
    State(app): State<Arc<App>>,
    c: Caller,
    P((tenant, file)): P<(String, String)>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    scoped(&c, &tenant)?;
    let id = switch_id(&file)?.to_string();
    find(&app, &c, &tenant, &id)?;
    let mut a = attrs(&body)?;
    if a.has("vni") {
        return Err(ApiError::BadRequest(
            "Cannot update read-only attribute vni".into(),
        ));
    }
    let req = NetworkUpdate {
        name: a.string("name")?,
        description: a.string("description")?,
        admin_state_up: a.boolean("admin_state_up")?,
        shared: None,
    };
    a.finish(READ_ONLY, false)?;
    let (svc, c2) = (app.service.clone(), c.clone());
    let n = blocking(move || svc.update_network(&c2, &id, req)).await?;
    Ok(json_ok(&one(&n, &c)))
}

/// DELETE /tenants/{tenant}/switches/{id}.json
pub async fn delete(
    State(app): State<Arc<App>>,
    c: Caller,
    P((tenant, file)): P<(String, String)>,
) -> Result<Response, ApiError> {
    scoped(&c, &tenant)?;
    let id = switch_id(&file)?.to_string();
    find(&app, &c, &tenant, &id)?;
    let svc = app.service.clone();
    blocking(move || svc.delete_network(&c, &id)).await?;
    Ok(no_content())
}
