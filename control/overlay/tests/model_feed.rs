//! The model feed over real HTTP: an in-process `ApiServer` on a free loopback port, the remote
//! model source (`agent::remote::follow`) and raw `ureq` requests against it. Checks the
//! source contract (a `Reset`, then the exact committed `ChangeEvent`s in order; `Link` when
//! the server is lost and found; a new `Reset` after a restart), the feed's auth, resets for
//! stale epochs, a long poll woken by a commit, the thread ending on drop, and bad URLs.

use crossbeam::channel::{Receiver, RecvTimeoutError};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strato_overlay::agent::remote::{follow, RemoteError};
use strato_overlay::agent::source::{ModelUpdate, Wake};
use strato_tenant::config::{HostSpec, Role, TokenSpec};
use strato_tenant::model::{Change, ChangeEvent, Snapshot};
use strato_tenant::{ApiServer, TenantConfig, TenantService};

static N: AtomicU32 = AtomicU32::new(0);

const TENANT: &str = "tok-a";
const ADMIN: &str = "tok-admin";
const CLOUD: &str = "tok-cloud";
/// Longest time any expected update may take (generous: shared 2-core machines).
const PATIENCE: Duration = Duration::from_secs(20);

fn config() -> TenantConfig {
    let tok = |t: &str, role, tenant: Option<&str>| TokenSpec {
        token: t.into(),
        role,
        tenant: tenant.map(str::to_string),
    };
    TenantConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tokens: vec![
            tok(TENANT, Role::Tenant, Some("tenant-a")),
            tok(ADMIN, Role::Provider, None),
            tok(CLOUD, Role::Cloud, None),
        ],
        hosts: vec![
            HostSpec {
                name: "hv1".into(),
                vtep_ip: "192.0.2.1".parse().unwrap(),
                uplinks: vec![],
            },
            HostSpec {
                name: "hv2".into(),
                vtep_ip: "192.0.2.2".parse().unwrap(),
                uplinks: vec![],
            },
        ],
        local_host: Some("hv1".into()),
        ..TenantConfig::default()
    }
}

/// A server over a temp-file database.
struct Env {
    server: Option<ApiServer>,
    svc: Arc<TenantService>,
    base: String,
    agent: ureq::Agent,
    dir: PathBuf,
    cfg: TenantConfig,
}

impl Env {
    fn new() -> Env {
        let dir = std::env::temp_dir().join(format!(
            "strato-model-feed-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = config();
        let svc = Arc::new(TenantService::open(&cfg, &dir.join("tenant.sqlite")).unwrap());
        let server = ApiServer::start(&cfg, svc.clone()).unwrap();
        let base = format!("http://{}", server.local_addr());
        Env {
            server: Some(server),
            svc,
            base,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into(),
            dir,
            cfg,
        }
    }

    /// Stops the server and the service.
    fn stop(&mut self) {
        self.server.take();
    }

    /// Opens the service on the same database and serves it on the same address again.
    fn start_again(&mut self) {
        let mut cfg = self.cfg.clone();
        cfg.listen = self.base.trim_start_matches("http://").parse().unwrap();
        let svc = Arc::new(TenantService::open(&cfg, &self.dir.join("tenant.sqlite")).unwrap());
        let deadline = Instant::now() + PATIENCE;
        let server = loop {
            match ApiServer::start(&cfg, svc.clone()) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebinding {}: {e}", cfg.listen);
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot serve again on {}: {e}", cfg.listen),
            }
        };
        self.svc = svc;
        self.server = Some(server);
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            b = b.header("X-Auth-Token", t);
        }
        let resp = match body {
            Some(v) => self.agent.run(
                b.header("Content-Type", "application/json")
                    .body(v.to_string())
                    .unwrap(),
            ),
            None => self.agent.run(b.body(()).unwrap()),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
        };
        (status, v)
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>, want: u16) -> Value {
        let (s, v) = self.call(method, path, Some(ADMIN), body);
        assert_eq!(s, want, "{method} {path}: {v}");
        v
    }

    fn network(&self, name: &str) -> String {
        let v = self.ok(
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"name": name}})),
            201,
        );
        v["network"]["id"].as_str().unwrap().to_string()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.server.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn counting_wake() -> (Wake, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    (
        Arc::new(move || {
            n2.fetch_add(1, Ordering::SeqCst);
        }),
        n,
    )
}

fn next(rx: &Receiver<ModelUpdate>) -> ModelUpdate {
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|e| panic!("no model update within {PATIENCE:?}: {e}"))
}

fn expect_reset(
    rx: &Receiver<ModelUpdate>,
) -> (Snapshot, Vec<strato_overlay::agent::source::Vtep>) {
    match next(rx) {
        ModelUpdate::Reset { snapshot, hosts } => (snapshot, hosts),
        other => panic!("expected a Reset, got {other:?}"),
    }
}

/// The model a client builds from updates (what the agent would compile).
#[derive(Default)]
struct Mirror {
    snap: Snapshot,
}

impl Mirror {
    fn apply(&mut self, u: &ModelUpdate) {
        match u {
            ModelUpdate::Reset { snapshot, .. } => self.snap = snapshot.clone(),
            ModelUpdate::Change(ev) => {
                assert_eq!(ev.seq, self.snap.seq + 1, "changes out of order");
                self.snap.seq = ev.seq;
                fn put<T: Clone>(v: &mut Vec<T>, x: &T, id: impl Fn(&T) -> &str) {
                    v.retain(|y| id(y) != id(x));
                    v.push(x.clone());
                    v.sort_by(|a, b| id(a).cmp(id(b)));
                }
                fn del<T>(v: &mut Vec<T>, key: &str, id: impl Fn(&T) -> &str) {
                    v.retain(|y| id(y) != key);
                }
                let s = &mut self.snap;
                match &ev.change {
                    Change::NetworkUpserted(n) => put(&mut s.networks, n, |x| &x.id),
                    Change::NetworkDeleted(n) => del(&mut s.networks, &n.id, |x| &x.id),
                    Change::SubnetUpserted(n) => put(&mut s.subnets, n, |x| &x.id),
                    Change::SubnetDeleted(n) => del(&mut s.subnets, &n.id, |x| &x.id),
                    Change::PortUpserted(n) => put(&mut s.ports, n, |x| &x.id),
                    Change::PortDeleted(n) => del(&mut s.ports, &n.id, |x| &x.id),
                }
            }
            ModelUpdate::Link(_) => {}
        }
    }
}

#[test]
fn follow_sends_a_reset_then_every_change_in_order() {
    let e = Env::new();
    let net0 = e.network("before");
    let (wake, wakes) = counting_wake();
    let src = follow(&e.base, CLOUD, wake).unwrap();
    assert_eq!(src.describe, e.base);
    let (snap, hosts) = expect_reset(&src.rx);
    assert_eq!(snap, e.svc.snapshot());
    assert_eq!(snap.seq, 1);
    assert_eq!(snap.networks.len(), 1);
    assert_eq!(snap.networks[0].id, net0);
    assert_eq!(hosts, e.svc.vteps());
    assert_eq!(hosts.len(), 2);

    // What the service commits from here on, straight from its own feed.
    let sub = e.svc.subscribe();
    assert_eq!(sub.snapshot, snap);
    let net = e.network("n1");
    let subnet = e.ok(
        "POST",
        "/v2.0/subnets",
        Some(json!({"subnet": {"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4}})),
        201,
    )["subnet"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let port = e.ok(
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"network_id": net, "binding:host_id": "hv2",
                              "binding:profile": {"interface": "tap-vm1", "kind": "tap"}}})),
        201,
    )["port"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    e.ok(
        "PUT",
        &format!("/v2.0/ports/{port}"),
        Some(json!({"port": {"admin_state_up": false}})),
        200,
    );
    e.ok("DELETE", &format!("/v2.0/ports/{port}"), None, 204);
    e.ok("DELETE", &format!("/v2.0/subnets/{subnet}"), None, 204);
    e.ok("DELETE", &format!("/v2.0/networks/{net0}"), None, 204);

    let want: Vec<ChangeEvent> = sub.events.try_iter().collect();
    assert_eq!(want.len(), 7, "{want:?}");
    let mut mirror = Mirror { snap: snap.clone() };
    for w in &want {
        match next(&src.rx) {
            ModelUpdate::Change(ev) => {
                assert_eq!(&ev, w);
                mirror.apply(&ModelUpdate::Change(ev));
            }
            other => panic!("expected change {}, got {other:?}", w.seq),
        }
    }
    assert_eq!(mirror.snap, e.svc.snapshot());
    assert!(matches!(
        &want[2].change,
        Change::PortUpserted(p) if p.binding.host_id == "hv2"
    ));
    // Nothing more, and a wake for each update (1 reset + 7 changes).
    assert!(matches!(
        src.rx.recv_timeout(Duration::from_millis(300)),
        Err(RecvTimeoutError::Timeout)
    ));
    assert_eq!(wakes.load(Ordering::SeqCst), 8);
}

#[test]
fn feed_auth_and_query_errors() {
    let e = Env::new();
    let (s, v) = e.call("GET", "/strato/v1/feed", None, None);
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["NeutronError"]["type"], "HTTPUnauthorized");
    let (s, v) = e.call("GET", "/strato/v1/feed?wait_ms=0", Some(TENANT), None);
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["NeutronError"]["type"], "PolicyNotAuthorized");
    let (s, v) = e.call("GET", "/strato/v1/feed?after=x", Some(ADMIN), None);
    assert_eq!(s, 400, "{v}");
    assert!(v["NeutronError"]["message"].is_string());
    let (s, v) = e.call("POST", "/strato/v1/feed", Some(ADMIN), Some(json!({})));
    assert_eq!(s, 405, "{v}");
    for tok in [ADMIN, CLOUD] {
        let (s, v) = e.call("GET", "/strato/v1/feed?wait_ms=0", Some(tok), None);
        assert_eq!(s, 200, "{v}");
        assert!(v["reset"]["snapshot"].is_object(), "{v}");
    }

    // A tenant token through the remote source: the server is "lost" with the 403 as reason.
    let (wake, _) = counting_wake();
    let src = follow(&e.base, TENANT, wake).unwrap();
    match next(&src.rx) {
        ModelUpdate::Link(Some(why)) => assert!(why.contains("403"), "{why}"),
        other => panic!("expected Link(Some), got {other:?}"),
    }
}

#[test]
fn stale_epochs_get_a_reset_and_long_polls_wake_on_commit() {
    let e = Env::new();
    e.network("n0");
    let (s, first) = e.call("GET", "/strato/v1/feed", Some(CLOUD), None);
    assert_eq!(s, 200);
    let epoch = first["epoch"].as_str().unwrap().to_string();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["reset"]["snapshot"]["seq"], 1);
    assert_eq!(
        first["reset"]["hosts"][1],
        json!({"name": "hv2", "vtep_ip": "192.0.2.2"})
    );

    // Our epoch, nothing new: an empty list after the wait.
    let q = format!("/strato/v1/feed?epoch={epoch}&after=1&wait_ms=50");
    let (_, v) = e.call("GET", &q, Some(CLOUD), None);
    assert_eq!(v, json!({"epoch": epoch, "seq": 1, "changes": []}));
    // The ring holds every change since the server started: a client at 0 gets change 1.
    // (A client older than the ring gets a reset: see the unit tests of `tenant::api::feed`,
    // filling 65,536 changes over HTTP would take too long here.)
    let (_, v) = e.call(
        "GET",
        &format!("/strato/v1/feed?epoch={epoch}&after=0&wait_ms=0"),
        Some(CLOUD),
        None,
    );
    assert_eq!(v["seq"], 1, "{v}");
    assert_eq!(v["changes"][0]["seq"], 1, "{v}");
    assert_eq!(v["changes"][0]["change"]["value"]["name"], "n0", "{v}");
    // A client ahead of the server (it cannot be, in one epoch): reset once the wait is over.
    let (_, v) = e.call(
        "GET",
        &format!("/strato/v1/feed?epoch={epoch}&after=5&wait_ms=0"),
        Some(CLOUD),
        None,
    );
    assert!(v["reset"].is_object(), "{v}");
    // Another epoch: reset.
    let (_, v) = e.call(
        "GET",
        "/strato/v1/feed?epoch=stale&after=1&wait_ms=0",
        Some(CLOUD),
        None,
    );
    assert!(v["reset"].is_object(), "{v}");
    assert_eq!(v["epoch"], epoch.as_str());

    // A long poll (60 s on the server, 30 s client timeout) is answered by a commit.
    let base = e.base.clone();
    let ep = epoch.clone();
    let poll = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut r = agent
            .get(format!(
                "{base}/strato/v1/feed?epoch={ep}&after=1&wait_ms=60000"
            ))
            .header("X-Auth-Token", CLOUD)
            .call()
            .unwrap();
        r.body_mut().read_json::<Value>().unwrap()
    });
    std::thread::sleep(Duration::from_millis(200));
    let id = e.network("woken");
    let v = poll.join().unwrap();
    assert_eq!(v["seq"], 2, "{v}");
    assert_eq!(v["changes"][0]["seq"], 2);
    assert_eq!(v["changes"][0]["change"]["type"], "network_upserted");
    assert_eq!(v["changes"][0]["change"]["value"]["id"], id.as_str());
}

#[test]
fn a_restarted_server_is_lost_found_and_resynced() {
    let mut e = Env::new();
    e.network("n0");
    let (wake, _) = counting_wake();
    let src = follow(&e.base, ADMIN, wake).unwrap();
    let mut mirror = Mirror::default();
    let u = next(&src.rx);
    assert!(matches!(u, ModelUpdate::Reset { .. }), "{u:?}");
    mirror.apply(&u);
    e.network("n1");
    let u = next(&src.rx);
    assert!(
        matches!(&u, ModelUpdate::Change(ev) if ev.seq == 2),
        "{u:?}"
    );
    mirror.apply(&u);

    e.stop();
    match next(&src.rx) {
        ModelUpdate::Link(Some(why)) => eprintln!("lost: {why}"),
        other => panic!("expected Link(Some), got {other:?}"),
    }
    // The new server restores the model, starts its seqs at 0 and has a new epoch: the client
    // must not take its changes as continuing the old sequence.
    e.start_again();
    let n2 = e.network("n2");
    assert_eq!(e.svc.snapshot().seq, 1);
    match next(&src.rx) {
        ModelUpdate::Link(None) => {}
        other => panic!("expected Link(None), got {other:?}"),
    }
    let u = next(&src.rx);
    assert!(matches!(u, ModelUpdate::Reset { .. }), "{u:?}");
    mirror.apply(&u);
    // The reset may or may not include n2 yet; either way the mirror converges.
    let deadline = Instant::now() + PATIENCE;
    while mirror.snap != e.svc.snapshot() {
        assert!(Instant::now() < deadline, "the client never converged");
        if let Ok(u) = src.rx.recv_timeout(Duration::from_millis(100)) {
            assert!(
                !matches!(u, ModelUpdate::Reset { .. } | ModelUpdate::Link(_)),
                "{u:?}"
            );
            mirror.apply(&u);
        }
    }
    assert_eq!(mirror.snap.networks.len(), 3);
    assert!(mirror.snap.networks.iter().any(|n| n.id == n2));
}

#[test]
fn dropping_the_source_ends_its_thread() {
    let e = Env::new();
    let (wake, _) = counting_wake();
    let src = follow(&e.base, CLOUD, wake.clone()).unwrap();
    expect_reset(&src.rx);
    let rx = src.rx.clone();
    assert_eq!(Arc::strong_count(&wake), 2);
    drop(src);
    // The thread holds the only sender and a clone of `wake`: both go when it ends (within
    // one long poll, 3 s).
    let deadline = Instant::now() + PATIENCE;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Err(RecvTimeoutError::Disconnected) => break,
            Ok(u) => panic!("unexpected update {u:?}"),
            Err(RecvTimeoutError::Timeout) => {
                assert!(Instant::now() < deadline, "the source thread did not end")
            }
        }
    }
    let deadline = Instant::now() + PATIENCE;
    while Arc::strong_count(&wake) > 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }

    // Also while the server is down (the thread is in its backoff).
    let (wake, _) = counting_wake();
    let src = follow("http://127.0.0.1:9", CLOUD, wake).unwrap();
    assert!(matches!(next(&src.rx), ModelUpdate::Link(Some(_))));
    let rx = src.rx.clone();
    drop(src);
    assert!(matches!(
        rx.recv_timeout(PATIENCE),
        Err(RecvTimeoutError::Disconnected)
    ));
}

#[test]
fn bad_server_urls_are_typed_errors() {
    let (wake, _) = counting_wake();
    for bad in [
        "localhost:9696",
        "https://127.0.0.1:9696",
        "http://127.0.0.1",
        "http://127.0.0.1:9696/v2.0",
        "not a url",
    ] {
        match follow(bad, CLOUD, wake.clone()) {
            Err(RemoteError::BadUrl { url, .. }) => assert_eq!(url, bad),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(matches!(
        follow("http://127.0.0.1:9696", "bad\ntoken", wake),
        Err(RemoteError::BadToken)
    ));
}
