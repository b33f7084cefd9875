//! The HTTP API (axum on a tokio runtime on the API's own threads): Neutron v2.0, the Net
//! Objects API and strato's cloud view, over one [`TenantService`].
//!
//! Routes (every one but `GET /` needs a configured `X-Auth-Token`):
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the versions document openstacksdk discovers (`v2.0`, CURRENT) |
//! | `GET /v2.0` | the resources of v2.0 |
//! | `GET /v2.0/extensions[/{alias}]` | the extensions strato implements |
//! | `/v2.0/networks`, `/v2.0/subnets`, `/v2.0/ports` (`.json` optional) | Neutron, see [`neutron`] |
//! | `GET /v2.0/strato/hosts[/{name}]` | cloud view: hosts, VTEPs, uplinks and the interfaces bound on each (cloud and provider tokens) |
//! | `/tenants/{tenant}/switches.json`, `/tenants/{tenant}/switches/{id}.json` | Net Objects, see [`netobjects`] |
//! | `GET /strato/v1/feed` | the model feed other hosts' agents long-poll (cloud and provider tokens), see [`feed`] |
//!
//! Contract:
//! - Every answer is JSON, its body a serde view ([`view`]) sent by [`respond`]; every error is
//!   `{"NeutronError": {"type", "message", "detail"}}` with its status (also unknown routes:
//!   404, wrong methods: 405, oversized bodies: 413).
//! - Handlers get the caller as an extractor argument ([`Caller`]'s `FromRequestParts`): a
//!   missing or unknown token is a 401 before the handler runs and before the body is read.
//! - Writes run on tokio's blocking pool and answer only after the service committed them.
//! - [`ApiServer::start`] binds before it returns (so a busy port is an error there, and
//!   [`ApiServer::local_addr`] is the real address); dropping the server stops it: no new
//!   connections, in-flight requests get up to 2 s, then the runtime is shut down.

pub mod body;
pub mod feed;
pub mod netobjects;
pub mod neutron;
pub mod query;
pub mod view;

use crate::auth::{Caller, Tokens};
use crate::config::{ConfigError, TenantConfig};
use crate::error::ApiError;
use crate::service::TenantService;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use view::{Envelope, ExtensionView, HostView, ResourceView, VersionView};

/// Shared state of the handlers.
#[derive(Debug)]
pub struct App {
    /// The model.
    pub service: Arc<TenantService>,
    /// Who may call.
    pub tokens: Tokens,
    /// The model feed (recent changes and the epoch).
    pub feed: feed::Feed,
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The `[api]` section is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Could not listen on the address.
    #[error("cannot listen on {addr}: {err}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        err: std::io::Error,
    },
    /// Could not start the runtime or its thread.
    #[error("cannot start the API runtime: {0}")]
    Runtime(std::io::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status() >= 500 {
            tracing::warn!("API error: {self}");
        }
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Through a Value, like every other body (sorted keys); a body of strings always
        // encodes, but should it not, the status alone still says what happened.
        let mut r = match serde_json::to_value(self.body()) {
            Ok(body) => (status, axum::Json(body)).into_response(),
            Err(_) => status.into_response(),
        };
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Keystone uri=\"none\""),
            );
        }
        r
    }
}

/// A path extractor whose rejection is a NeutronError.
#[derive(Debug)]
pub struct P<T>(pub T);

impl<T, S> FromRequestParts<S> for P<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// The raw body (at most [`body::MAX_BODY`] bytes), rejected as a NeutronError.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        // A declared length over the limit is refused before any of the body is read.
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > body::MAX_BODY as u64) {
            return Err(ApiError::BodyTooLarge(body::MAX_BODY));
        }
        axum::body::to_bytes(req.into_body(), body::MAX_BODY)
            .await
            .map(RawBody)
            .map_err(|_| ApiError::BodyTooLarge(body::MAX_BODY))
    }
}

/// The header that carries the token.
pub const AUTH_TOKEN: &str = "x-auth-token";

/// The caller of a request, from its `X-Auth-Token` ([`Tokens::caller`]). A missing or
/// unknown token rejects the request with a 401 NeutronError (and `WWW-Authenticate`) before
/// the handler runs; as a handler's first argument after `State`, before any other extractor
/// (the body is not read for an unauthenticated request).
impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Caller, ApiError> {
        app.tokens
            .caller(parts.headers.get(AUTH_TOKEN).map(HeaderValue::as_bytes))
    }
}

/// `http://<Host>` of the request (for links).
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b".-:[]_".contains(&c))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// `http://<Host>/v2.0/<collection>`.
pub fn collection_url(headers: &HeaderMap, collection: &str) -> String {
    format!("{}/v2.0/{collection}", base_url(headers))
}

/// Runs a service call on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}

/// A `status` answer with `view` as its JSON body. The view is serialized into a
/// `serde_json::Value` first, whose objects keep their keys sorted: every body lists its keys
/// alphabetically, as the API always has (see [`view`]). A view that does not encode (none
/// does) is a 500.
pub fn respond(status: StatusCode, view: &impl Serialize) -> Response {
    match serde_json::to_value(view) {
        Ok(v) => (status, axum::Json(v)).into_response(),
        Err(e) => ApiError::Internal(format!("encoding the response: {e}")).into_response(),
    }
}

/// 200 with `view` as the body.
pub fn json_ok(view: &impl Serialize) -> Response {
    respond(StatusCode::OK, view)
}

/// 201 with `view` as the body.
pub fn created(view: &impl Serialize) -> Response {
    respond(StatusCode::CREATED, view)
}

/// 204.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn versions(headers: HeaderMap) -> Response {
    let href = format!("{}/v2.0/", base_url(&headers));
    json_ok(&Envelope::new("versions", [VersionView::v2(href)]))
}

async fn v2_root(_: Caller, headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    let res = [
        ResourceView::new(&base, "network", "networks"),
        ResourceView::new(&base, "subnet", "subnets"),
        ResourceView::new(&base, "port", "ports"),
    ];
    json_ok(&Envelope::new("resources", res))
}

/// The extensions strato implements: (alias, name, description).
pub const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("project-id", "project_id field enabled", "Extension that indicates that project_id is enabled."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks (vxlan)."),
    ("binding", "Port Binding", "Expose port bindings of a virtual port (host and strato's local interface in binding:profile)."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("filter-validation", "Filter parameters validation", "Unknown filter parameters are rejected with 400."),
    ("sort-key-validation", "Sort keys validation", "Unknown sort keys are rejected with 400."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes."),
    ("standard-attr-revisions", "Resource revision numbers", "Adds revision_number to resources."),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("strato-hosts", "strato hosts", "The cloud view: hosts, VTEP addresses and bound interfaces at /v2.0/strato/hosts."),
];

async fn extensions(_: Caller) -> Response {
    let all: Vec<ExtensionView<'_>> = EXTENSIONS.iter().map(ExtensionView::new).collect();
    json_ok(&Envelope::new("extensions", all))
}

async fn extension(_: Caller, P(alias): P<String>) -> Result<Response, ApiError> {
    let alias = neutron::strip_json(&alias);
    EXTENSIONS
        .iter()
        .find(|e| e.0 == alias)
        .map(|e| json_ok(&Envelope::new("extension", ExtensionView::new(e))))
        .ok_or_else(|| ApiError::not_found("Extension", alias))
}

async fn hosts(State(app): State<Arc<App>>, c: Caller) -> Result<Response, ApiError> {
    let hs = app.service.hosts(&c)?;
    let views: Vec<HostView<'_>> = hs.iter().map(HostView::new).collect();
    Ok(json_ok(&Envelope::new("hosts", views)))
}

async fn host(
    State(app): State<Arc<App>>,
    c: Caller,
    P(name): P<String>,
) -> Result<Response, ApiError> {
    let name = neutron::strip_json(&name);
    let hs = app.service.hosts(&c)?;
    hs.iter()
        .find(|h| h.name == name)
        .map(|h| json_ok(&Envelope::new("host", HostView::new(h))))
        .ok_or_else(|| ApiError::not_found("Host", name))
}

async fn no_route() -> ApiError {
    ApiError::NoRoute
}

async fn bad_method(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(req.method().to_string())
}

/// The router over `app` (tests can drive it without a socket).
pub fn router(app: Arc<App>) -> Router {
    use neutron as n;
    Router::new()
        .route("/", get(versions))
        .route("/v2.0", get(v2_root))
        .route("/v2.0/", get(v2_root))
        .route("/v2.0/extensions", get(extensions))
        .route("/v2.0/extensions.json", get(extensions))
        .route("/v2.0/extensions/{alias}", get(extension))
        .route(
            "/v2.0/networks",
            get(n::list_networks).post(n::create_network),
        )
        .route(
            "/v2.0/networks.json",
            get(n::list_networks).post(n::create_network),
        )
        .route(
            "/v2.0/networks/{id}",
            get(n::show_network)
                .put(n::update_network)
                .delete(n::delete_network),
        )
        .route("/v2.0/subnets", get(n::list_subnets).post(n::create_subnet))
        .route(
            "/v2.0/subnets.json",
            get(n::list_subnets).post(n::create_subnet),
        )
        .route(
            "/v2.0/subnets/{id}",
            get(n::show_subnet)
                .put(n::update_subnet)
                .delete(n::delete_subnet),
        )
        .route("/v2.0/ports", get(n::list_ports).post(n::create_port))
        .route("/v2.0/ports.json", get(n::list_ports).post(n::create_port))
        .route(
            "/v2.0/ports/{id}",
            get(n::show_port).put(n::update_port).delete(n::delete_port),
        )
        .route("/v2.0/strato/hosts", get(hosts))
        .route("/v2.0/strato/hosts.json", get(hosts))
        .route("/v2.0/strato/hosts/{name}", get(host))
        .route("/strato/v1/feed", get(feed::feed))
        .route(
            "/tenants/{tenant}/switches.json",
            get(netobjects::list).post(netobjects::create),
        )
        .route(
            "/tenants/{tenant}/switches/{file}",
            get(netobjects::show)
                .post(netobjects::update)
                .delete(netobjects::delete),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(bad_method)
        .with_state(app)
}

/// The running HTTP API; dropping it stops it.
#[derive(Debug)]
pub struct ApiServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// Validates `cfg`, binds `cfg.listen` and serves `service` on `cfg.threads` threads.
    pub fn start(cfg: &TenantConfig, service: Arc<TenantService>) -> Result<ApiServer, StartError> {
        cfg.validate()?;
        let listener = std::net::TcpListener::bind(cfg.listen).map_err(|err| StartError::Bind {
            addr: cfg.listen,
            err,
        })?;
        let addr = listener.local_addr().map_err(StartError::Runtime)?;
        listener
            .set_nonblocking(true)
            .map_err(StartError::Runtime)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.threads)
            .max_blocking_threads(cfg.threads.max(2) * 2)
            .thread_name("strato-api")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let feed = feed::Feed::start(&service).map_err(StartError::Runtime)?;
        let app = Arc::new(App {
            service,
            tokens: Tokens::from_config(cfg),
            feed,
        });
        let closing = app.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("strato-api-main".into())
            .spawn(move || {
                let served = rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
                    let server = tokio::spawn(async move {
                        let r = axum::serve(listener, router(app))
                            .with_graceful_shutdown(async {
                                let _ = done_rx.await;
                            })
                            .await;
                        if let Err(e) = r {
                            tracing::error!("tenant API server failed: {e}");
                        }
                    });
                    let _ = stop_rx.await;
                    // Long polls answer now, so the graceful shutdown does not wait for them.
                    closing.feed.close();
                    drop(closing);
                    let _ = done_tx.send(());
                    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
                    Ok::<(), std::io::Error>(())
                });
                if let Err(e) = served {
                    tracing::error!("tenant API server failed: {e}");
                }
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(StartError::Runtime)?;
        tracing::info!("tenant API listening on http://{addr}");
        Ok(ApiServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Role, TokenSpec};

    fn app() -> Arc<App> {
        let cfg = TenantConfig {
            tokens: vec![TokenSpec {
                token: "t".into(),
                role: Role::Tenant,
                tenant: Some("ta".into()),
            }],
            ..TenantConfig::default()
        };
        let service = Arc::new(TenantService::in_memory(&cfg).unwrap());
        let feed = feed::Feed::start(&service).unwrap();
        Arc::new(App {
            tokens: Tokens::from_config(&cfg),
            service,
            feed,
        })
    }

    async fn extract(app: &Arc<App>, token: Option<&[u8]>) -> Result<Caller, ApiError> {
        let mut b = axum::http::Request::builder().uri("/v2.0/networks");
        if let Some(t) = token {
            b = b.header("X-Auth-Token", t);
        }
        let (mut parts, ()) = b.body(()).unwrap().into_parts();
        Caller::from_request_parts(&mut parts, app).await
    }

    #[test]
    fn the_caller_comes_from_the_token_or_the_request_is_a_401() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let app = app();
        assert_eq!(
            rt.block_on(extract(&app, Some(b"t"))).unwrap(),
            Caller::tenant("ta")
        );
        for (token, message) in [
            (None, "no X-Auth-Token header"),
            (Some(&b"x"[..]), "the X-Auth-Token is not valid"),
            (Some(b"tt"), "the X-Auth-Token is not valid"),
            (Some(b""), "the X-Auth-Token is not valid"),
            (Some(b"\xff"), "the X-Auth-Token is not valid"),
        ] {
            let r = rt
                .block_on(extract(&app, token))
                .unwrap_err()
                .into_response();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(
                r.headers()[header::WWW_AUTHENTICATE],
                "Keystone uri=\"none\""
            );
            let body = rt
                .block_on(axum::body::to_bytes(r.into_body(), 1 << 16))
                .unwrap();
            assert_eq!(
                std::str::from_utf8(&body).unwrap(),
                format!(
                    "{{\"NeutronError\":{{\"detail\":\"\",\"message\":\"Authentication required: \
                     {message}\",\"type\":\"HTTPUnauthorized\"}}}}"
                )
            );
        }
    }
}
