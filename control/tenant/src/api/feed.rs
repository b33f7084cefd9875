//! The model feed: `GET /strato/v1/feed?epoch=E&after=N&wait_ms=W`, which a daemon on another
//! host long-polls to follow the tenant model (its client is the overlay agent's remote model source).
//!
//! Contract:
//! - Only `cloud` and `provider` tokens may read it (a tenant token is 403 PolicyNotAuthorized,
//!   no or an unknown token 401), like every other endpoint's errors a NeutronError.
//! - The server keeps the last [`RING_CAPACITY`] committed [`ChangeEvent`]s in a ring, fed by one
//!   [`TenantService::subscribe`] on a thread of its own, and an `epoch`: a random string made
//!   when the server starts. Sequence numbers are only meaningful within one epoch.
//! - If `epoch` is absent or not the server's, or `after` is older than the ring holds, the
//!   answer is a reset: `{"epoch", "seq", "reset": {"snapshot", "hosts"}}`, where `snapshot` is
//!   [`TenantService::snapshot`] (`seq` is its `seq`) and `hosts` are the configured VTEPs
//!   ([`TenantService::vteps`]). The client then asks for `after = seq`.
//! - Else the answer is `{"epoch", "seq", "changes": [ChangeEvent...]}` with the events after
//!   `after`, in order with consecutive `seq` numbers (at most [`MAX_CHANGES`] per answer);
//!   `seq` is the last one's (or `after` when the list is empty). With no such event yet the
//!   request waits up to `wait_ms` (default [`DEFAULT_WAIT_MS`], at most [`MAX_WAIT_MS`]) for
//!   one, without holding a tokio worker thread, and answers with an empty list if none came.
//!   If `after` is ahead of the ring (the ring lags the service for a moment after a reset) the
//!   request waits for the ring to catch up; if it does not within `wait_ms`, it answers a reset.
//! - When the server stops, waiting requests answer at once (an empty list).

use super::{json_ok, App};
use crate::auth::Caller;
use crate::config::Role;
use crate::error::ApiError;
use crate::model::{ChangeEvent, Snapshot, Vtep};
use crate::service::TenantService;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use crossbeam::channel::{bounded, Receiver, Sender};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many recent changes the server keeps.
pub const RING_CAPACITY: usize = 65_536;
/// Most changes in one answer.
pub const MAX_CHANGES: usize = 4_096;
/// Long-poll wait when the request does not say.
pub const DEFAULT_WAIT_MS: u64 = 25_000;
/// Longest long-poll wait.
pub const MAX_WAIT_MS: u64 = 60_000;

/// One answer of the feed (the JSON body of a 200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedAnswer {
    /// The server's epoch.
    pub epoch: String,
    /// The sequence number the client is at after applying this answer.
    pub seq: u64,
    /// A reset or changes.
    #[serde(flatten)]
    pub body: FeedBody,
}

/// What a [`FeedAnswer`] carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedBody {
    /// The whole model: replaces everything the client knew.
    Reset {
        /// The model (its `seq` is the answer's).
        snapshot: Snapshot,
        /// Every configured host's VTEP.
        hosts: Vec<Vtep>,
    },
    /// The changes after the client's `after`, in order.
    Changes(Vec<ChangeEvent>),
}

/// What the ring says about a client at `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// `after` is older than the ring holds: the client needs a reset.
    TooOld,
    /// The events after `after` (at most the limit asked for); empty: none yet.
    Events(Vec<ChangeEvent>),
    /// `after` is ahead of the ring (it lags the service, or the client is confused).
    Ahead,
}

/// The recent committed changes: every event with `base < seq <= last()`, consecutive.
#[derive(Debug)]
pub struct Ring {
    events: VecDeque<ChangeEvent>,
    base: u64,
    cap: usize,
}

impl Ring {
    /// An empty ring after change `base` (the subscription's snapshot seq), holding at most
    /// `cap` events (at least 1).
    pub fn new(base: u64, cap: usize) -> Ring {
        Ring {
            events: VecDeque::new(),
            base,
            cap: cap.max(1),
        }
    }

    /// The last event's seq (`base` when empty).
    pub fn last(&self) -> u64 {
        self.base + self.events.len() as u64
    }

    /// Adds the next event, dropping the oldest when full. An event that does not follow the
    /// last one (which the service never sends) empties the ring and restarts it after
    /// `ev.seq`, so every client older than it gets a reset.
    pub fn push(&mut self, ev: ChangeEvent) {
        if ev.seq != self.last() + 1 {
            tracing::warn!(
                "model feed: change {} after {}: restarting the ring",
                ev.seq,
                self.last()
            );
            self.events.clear();
            self.base = ev.seq;
            return;
        }
        if self.events.len() == self.cap {
            self.events.pop_front();
            self.base += 1;
        }
        self.events.push_back(ev);
    }

    /// The events after `after`, at most `limit`.
    pub fn after(&self, after: u64, limit: usize) -> Lookup {
        if after < self.base {
            return Lookup::TooOld;
        }
        if after > self.last() {
            return Lookup::Ahead;
        }
        // after - base <= len, which fits in usize.
        let skip = (after - self.base) as usize;
        Lookup::Events(self.events.iter().skip(skip).take(limit).cloned().collect())
    }
}

/// The feed's state: the ring, the epoch, and the signal waiting requests wait on.
#[derive(Debug)]
pub struct Feed {
    epoch: String,
    ring: Arc<Mutex<Ring>>,
    /// The ring's last seq, and `true` once the server is stopping.
    signal: tokio::sync::watch::Sender<(u64, bool)>,
    _stop: Sender<()>,
}

impl Feed {
    /// Subscribes to `svc` and starts the thread that fills the ring; it ends when the feed is
    /// dropped (or the service's channel closes).
    pub fn start(svc: &TenantService) -> std::io::Result<Feed> {
        Self::with_capacity(svc, RING_CAPACITY)
    }

    /// [`Feed::start`] with a ring of `cap` events (tests).
    pub fn with_capacity(svc: &TenantService, cap: usize) -> std::io::Result<Feed> {
        let sub = svc.subscribe();
        let ring = Arc::new(Mutex::new(Ring::new(sub.snapshot.seq, cap)));
        let (signal, _) = tokio::sync::watch::channel((sub.snapshot.seq, false));
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let (r, s) = (ring.clone(), signal.clone());
        std::thread::Builder::new()
            .name("strato-feed".into())
            .spawn(move || fill(sub.events, stop_rx, r, s))?;
        Ok(Feed {
            epoch: uuid::Uuid::new_v4().simple().to_string(),
            ring,
            signal,
            _stop: stop_tx,
        })
    }

    /// This server's epoch.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Wakes every waiting request and makes later ones answer at once (the server stops).
    pub fn close(&self) {
        self.signal.send_modify(|s| s.1 = true);
    }

    fn lookup(&self, after: u64) -> Lookup {
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .after(after, MAX_CHANGES)
    }

    /// What a client at (`epoch`, `after`) gets, waiting up to `wait` for a change.
    async fn answer(
        &self,
        epoch: Option<&str>,
        after: u64,
        wait: Duration,
    ) -> Option<Vec<ChangeEvent>> {
        if epoch != Some(self.epoch.as_str()) {
            return None;
        }
        let deadline = tokio::time::Instant::now() + wait;
        // Subscribed before each look, so a push after the look wakes us.
        let mut rx = self.signal.subscribe();
        loop {
            let closing = rx.borrow_and_update().1;
            match self.lookup(after) {
                Lookup::TooOld => return None,
                Lookup::Events(evs) if !evs.is_empty() || closing => return Some(evs),
                Lookup::Ahead if closing => return Some(Vec::new()),
                Lookup::Events(_) | Lookup::Ahead => {}
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                // The feed is gone or the wait is over.
                Ok(Err(_)) | Err(_) => {
                    return match self.lookup(after) {
                        Lookup::Events(evs) => Some(evs),
                        Lookup::TooOld | Lookup::Ahead => None,
                    }
                }
            }
        }
    }
}

fn fill(
    events: Receiver<ChangeEvent>,
    stop: Receiver<()>,
    ring: Arc<Mutex<Ring>>,
    signal: tokio::sync::watch::Sender<(u64, bool)>,
) {
    loop {
        crossbeam::select! {
            recv(events) -> ev => match ev {
                Ok(ev) => {
                    let last = {
                        let mut r = ring.lock().unwrap_or_else(|e| e.into_inner());
                        r.push(ev);
                        // Take what is already queued under the same lock.
                        while let Ok(ev) = events.try_recv() {
                            r.push(ev);
                        }
                        r.last()
                    };
                    signal.send_modify(|s| s.0 = last);
                }
                Err(_) => return,
            },
            recv(stop) -> _ => return,
        }
    }
}

/// The query of a feed request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedQuery {
    /// The client's epoch (absent: it knows nothing).
    pub epoch: Option<String>,
    /// The last seq the client has.
    pub after: u64,
    /// How long to wait for a change, in ms (clamped to [`MAX_WAIT_MS`]).
    pub wait_ms: u64,
}

impl FeedQuery {
    /// Parses `epoch=E&after=N&wait_ms=W` (each optional; unknown keys are a 400).
    pub fn parse(raw: Option<&str>) -> Result<FeedQuery, ApiError> {
        let mut q = FeedQuery {
            wait_ms: DEFAULT_WAIT_MS,
            ..FeedQuery::default()
        };
        let num = |k: &str, v: &str| {
            v.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("'{v}' is not a valid value for {k}")))
        };
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match &*k {
                "epoch" => q.epoch = Some(v.into_owned()),
                "after" => q.after = num(&k, &v)?,
                "wait_ms" => q.wait_ms = num(&k, &v)?.min(MAX_WAIT_MS),
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "['{k}'] is invalid attribute for filtering"
                    )))
                }
            }
        }
        Ok(q)
    }
}

/// `GET /strato/v1/feed`.
pub async fn feed(
    State(app): State<Arc<App>>,
    c: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    if c.role == Role::Tenant {
        return Err(ApiError::policy("rule:get_feed (cloud or provider tokens)"));
    }
    let q = FeedQuery::parse(raw.as_deref())?;
    let feed = &app.feed;
    let answer = match feed
        .answer(
            q.epoch.as_deref(),
            q.after,
            Duration::from_millis(q.wait_ms),
        )
        .await
    {
        Some(changes) => FeedAnswer {
            epoch: feed.epoch.clone(),
            seq: changes.last().map_or(q.after, |e| e.seq),
            body: FeedBody::Changes(changes),
        },
        None => {
            let svc = app.service.clone();
            let (snapshot, hosts) =
                super::blocking(move || Ok((svc.snapshot(), svc.vteps()))).await?;
            FeedAnswer {
                epoch: feed.epoch.clone(),
                seq: snapshot.seq,
                body: FeedBody::Reset { snapshot, hosts },
            }
        }
    };
    Ok(json_ok(&answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Caller;
    use crate::ipam::GatewaySpec;
    use crate::model::*;
    use crate::service::{NetworkCreate, PortCreate, SubnetCreate};
    use crate::TenantConfig;

    fn net(n: u64) -> Network {
        Network {
            id: format!("net-{n}"),
            tenant_id: "t".into(),
            name: "n".into(),
            description: String::new(),
            admin_state_up: true,
            shared: false,
            network_type: NetworkType::Vxlan,
            vni: n as u32,
            mtu: 1450,
            created_at: "2026-11-21T00:00:00Z".into(),
            updated_at: "2026-11-21T00:00:00Z".into(),
            revision_number: 1,
        }
    }

    fn ev(seq: u64) -> ChangeEvent {
        ChangeEvent {
            seq,
            change: Change::NetworkUpserted(net(seq)),
        }
    }

    fn seqs(l: Lookup) -> Vec<u64> {
        match l {
            Lookup::Events(e) => e.iter().map(|e| e.seq).collect(),
            other => panic!("expected events, got {other:?}"),
        }
    }

    #[test]
    fn ring_serves_what_it_holds() {
        let mut r = Ring::new(10, 4);
        assert_eq!(r.after(10, 100), Lookup::Events(vec![]));
        assert_eq!(r.after(9, 100), Lookup::TooOld);
        assert_eq!(r.after(11, 100), Lookup::Ahead);
        for s in 11..=13 {
            r.push(ev(s));
        }
        assert_eq!(r.last(), 13);
        assert_eq!(seqs(r.after(10, 100)), vec![11, 12, 13]);
        assert_eq!(seqs(r.after(11, 100)), vec![12, 13]);
        assert_eq!(seqs(r.after(10, 2)), vec![11, 12]);
        assert_eq!(seqs(r.after(13, 100)), Vec::<u64>::new());
        assert_eq!(r.after(14, 100), Lookup::Ahead);
    }

    #[test]
    fn after_older_than_the_ring_is_a_reset() {
        let mut r = Ring::new(0, 4);
        for s in 1..=6 {
            r.push(ev(s));
        }
        // Holds 3..=6: a client at 2 can still be served, one at 1 or 0 cannot.
        assert_eq!(seqs(r.after(2, 100)), vec![3, 4, 5, 6]);
        assert_eq!(r.after(1, 100), Lookup::TooOld);
        assert_eq!(r.after(0, 100), Lookup::TooOld);
        // A gap (never sent by the service) restarts the ring.
        r.push(ev(9));
        assert_eq!(r.after(6, 100), Lookup::TooOld);
        assert_eq!(seqs(r.after(9, 100)), Vec::<u64>::new());
    }

    #[test]
    fn query_parses_and_refuses_bad_values() {
        let q = FeedQuery::parse(Some("epoch=ab%20c&after=7&wait_ms=999999")).unwrap();
        assert_eq!(q.epoch.as_deref(), Some("ab c"));
        assert_eq!((q.after, q.wait_ms), (7, MAX_WAIT_MS));
        let q = FeedQuery::parse(None).unwrap();
        assert_eq!((q.epoch, q.after, q.wait_ms), (None, 0, DEFAULT_WAIT_MS));
        for bad in ["after=-1", "after=x", "wait_ms=1e3", "limit=3"] {
            assert!(FeedQuery::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    fn network(svc: &TenantService, name: &str) -> Network {
        let req = NetworkCreate {
            name: Some(name.into()),
            ..NetworkCreate::default()
        };
        svc.create_network(&Caller::provider("admin"), req)
            .unwrap()
            .network
    }

    fn subnet(svc: &TenantService, network_id: &str, cidr: &str, v6: bool) {
        let req = SubnetCreate {
            tenant_id: None,
            network_id: network_id.into(),
            name: None,
            description: None,
            cidr: cidr.parse().unwrap(),
            ip_version: Some(if v6 { 6 } else { 4 }),
            gateway: GatewaySpec::Default,
            allocation_pools: None,
            dns_nameservers: (!v6).then(|| vec!["192.0.2.53".parse().unwrap()]),
            host_routes: (!v6).then(|| {
                vec![HostRoute {
                    destination: "10.1.0.0/16".parse().unwrap(),
                    nexthop: "10.0.0.254".parse().unwrap(),
                }]
            }),
            enable_dhcp: None,
        };
        svc.create_subnet(&Caller::provider("admin"), req).unwrap();
    }

    /// A service with a network, two subnets and a bound port: every model type in use.
    fn populated() -> TenantService {
        let svc = TenantService::in_memory(&TenantConfig::default()).unwrap();
        let n = network(&svc, "n1");
        subnet(&svc, &n.id, "10.0.0.0/24", false);
        subnet(&svc, &n.id, "2001:db8::/64", true);
        let p = PortCreate {
            network_id: n.id.clone(),
            host_id: Some("hv1".into()),
            interface: Some(Some(LocalInterface {
                name: "tap0".into(),
                kind: InterfaceKind::Tap,
            })),
            ..PortCreate::default()
        };
        svc.create_port(&Caller::provider("admin"), p).unwrap();
        svc
    }

    #[test]
    fn every_model_type_round_trips() {
        let svc = populated();
        let snap = svc.snapshot();
        assert!(!snap.ports.is_empty() && snap.subnets.len() == 2);
        assert!(snap.ports[0].binding.interface.is_some());
        let back: Snapshot = serde_json::from_str(&serde_json::to_string(&snap).unwrap()).unwrap();
        assert_eq!(back, snap);
        let changes = vec![
            Change::NetworkUpserted(snap.networks[0].clone()),
            Change::NetworkDeleted(snap.networks[0].clone()),
            Change::SubnetUpserted(snap.subnets[0].clone()),
            Change::SubnetDeleted(snap.subnets[1].clone()),
            Change::PortUpserted(snap.ports[0].clone()),
            Change::PortDeleted(snap.ports[0].clone()),
        ];
        for (i, change) in changes.into_iter().enumerate() {
            let e = ChangeEvent {
                seq: i as u64 + 1,
                change,
            };
            let v = serde_json::to_value(&e).unwrap();
            assert!(v["change"]["type"].is_string() && v["change"]["value"].is_object());
            assert_eq!(serde_json::from_value::<ChangeEvent>(v).unwrap(), e);
        }
        let a = FeedAnswer {
            epoch: "e".into(),
            seq: snap.seq,
            body: FeedBody::Reset {
                snapshot: snap.clone(),
                hosts: vec![Vtep {
                    name: "hv1".into(),
                    vtep_ip: "192.0.2.1".parse().unwrap(),
                }],
            },
        };
        let v = serde_json::to_value(&a).unwrap();
        assert!(
            v["reset"]["snapshot"].is_object() && v["reset"]["hosts"][0]["vtep_ip"] == "192.0.2.1"
        );
        assert_eq!(serde_json::from_value::<FeedAnswer>(v).unwrap(), a);
    }

    #[test]
    fn the_feed_fills_its_ring_and_wakes_waiters() {
        let svc = populated();
        let feed = Feed::with_capacity(&svc, 2).unwrap();
        let base = svc.snapshot().seq;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let epoch = feed.epoch().to_string();
        // Wrong or no epoch: a reset.
        assert_eq!(rt.block_on(feed.answer(None, base, Duration::ZERO)), None);
        assert_eq!(
            rt.block_on(feed.answer(Some("x"), base, Duration::ZERO)),
            None
        );
        // Nothing new: an empty list after the wait.
        assert_eq!(
            rt.block_on(feed.answer(Some(&epoch), base, Duration::from_millis(10))),
            Some(vec![])
        );
        // A waiting request gets a change committed while it waits.
        let svc = Arc::new(svc);
        let s2 = svc.clone();
        let got = rt.block_on(async {
            let w = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                network(&s2, "n2");
            });
            let got = feed
                .answer(Some(&epoch), base, Duration::from_secs(30))
                .await;
            w.join().unwrap();
            got
        });
        let got = got.expect("changes, not a reset");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].seq, base + 1);
        assert!(matches!(&got[0].change, Change::NetworkUpserted(n) if n.name == "n2"));
        // Two more changes push base + 1 out of the ring (capacity 2): a client at base is
        // too old now.
        for name in ["n3", "n4"] {
            network(&svc, name);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while feed.ring.lock().unwrap().last() < base + 3 {
            assert!(std::time::Instant::now() < deadline, "ring never caught up");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            rt.block_on(feed.answer(Some(&epoch), base, Duration::ZERO)),
            None
        );
        let tail = rt
            .block_on(feed.answer(Some(&epoch), base + 1, Duration::ZERO))
            .unwrap();
        assert_eq!(
            tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![base + 2, base + 3]
        );
        // Closing wakes waiters at once with an empty list.
        feed.close();
        assert_eq!(
            rt.block_on(feed.answer(Some(&epoch), base + 3, Duration::from_secs(60))),
            Some(vec![])
        );
    }
}
