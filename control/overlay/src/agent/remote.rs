//! The remote model source: follows another host's tenant API over HTTP (see [`super::source`]
//! for the contract every source keeps).
//!
//! Contract:
//! - [`follow`] checks the server address (`http://HOST:PORT`, nothing else: no path, query,
//!   user or other scheme; a bad one is a [`RemoteError`]) and starts a thread that long-polls
//!   the server's model feed (`GET /strato/v1/feed`, see [`strato_tenant::api::feed`]) with the
//!   token (`X-Auth-Token`, a cloud or provider token).
//! - The thread sends what the source contract says: a `Reset` from the first answer and
//!   whenever the source lost track (the server's epoch changed, i.e. it restarted, or the ring
//!   no longer holds what we missed: the server answers a reset; or an answer's changes do not
//!   follow the last seq: we ask for a reset), then each `Change` in order, and
//!   `Link(Some(why))` when the server is lost (the first failure after a success, or at the
//!   start), `Link(None)` when it answers again. `wake` is called after every send.
//! - A failed poll (connection, HTTP status, bad JSON) is retried after a backoff of
//!   [`BACKOFF_MIN`], doubling up to [`BACKOFF_MAX`], reset by an answer. Losing the connection
//!   alone does not lose track: when the server answers again with the same epoch, the changes
//!   continue from the last seq.
//! - Each poll waits at most [`POLL_WAIT`] on the server (and at most [`POLL_WAIT`] +
//!   [`HTTP_SLACK`] in all), and the thread checks between polls whether the source was
//!   dropped: it ends within about that long after the [`ModelSource`] is dropped.

use super::source::{ModelSource, ModelUpdate, Wake};
use crossbeam::channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::Duration;
use strato_tenant::api::feed::{FeedAnswer, FeedBody};
use ureq::http::Uri;

/// First retry delay after a failed poll.
pub const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long the server may hold one poll (`wait_ms`).
pub const POLL_WAIT: Duration = Duration::from_secs(3);
/// Time a poll may take beyond [`POLL_WAIT`] (connect, a large reset) before it fails.
pub const HTTP_SLACK: Duration = Duration::from_secs(30);
/// Largest answer accepted (a reset carries the whole model).
pub const MAX_ANSWER: u64 = 512 << 20;

/// Why a remote source could not start. Each variant's doc comment is its message.
#[derive(Debug, displaydoc::Display, thiserror::Error)]
pub enum RemoteError {
    /// model server '{url}' is not http://HOST:PORT: {why}
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        why: UrlProblem,
    },
    /// the model server token is not a valid HTTP header value
    BadToken,
    /// cannot start the model source thread: {0}
    Spawn(#[from] std::io::Error),
}

/// What is wrong with a model server address ([`RemoteError::BadUrl`]).
#[derive(Debug, displaydoc::Display, thiserror::Error)]
pub enum UrlProblem {
    /// {0}
    Unparsable(#[from] ureq::http::uri::InvalidUri),
    /// the scheme must be http
    Scheme,
    /// no host
    NoHost,
    /// user information is not allowed
    UserInfo,
    /// no port
    NoPort,
    /// port 0
    PortZero,
    /// no path or query is allowed
    PathOrQuery,
}

/// Checks `server` and returns its canonical base URL `http://host:port`.
pub fn parse_server(server: &str) -> Result<String, RemoteError> {
    let bad = |why: UrlProblem| RemoteError::BadUrl {
        url: server.to_string(),
        why,
    };
    let uri: Uri = server.parse().map_err(|e| bad(UrlProblem::Unparsable(e)))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad(UrlProblem::Scheme));
    }
    let Some(auth) = uri.authority() else {
        return Err(bad(UrlProblem::NoHost));
    };
    if auth.as_str().contains('@') {
        return Err(bad(UrlProblem::UserInfo));
    }
    if auth.host().is_empty() {
        return Err(bad(UrlProblem::NoHost));
    }
    let Some(port) = auth.port_u16() else {
        return Err(bad(UrlProblem::NoPort));
    };
    if port == 0 {
        return Err(bad(UrlProblem::PortZero));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad(UrlProblem::PathOrQuery));
    }
    Ok(format!("http://{}:{port}", auth.host()))
}

/// Why one long poll failed (retried after a backoff; the agent sees the message as the
/// link's state).
#[derive(Debug, displaydoc::Display, thiserror::Error)]
enum PollError {
    /// {0}
    Http(#[from] ureq::Error),
    /// HTTP {status}: {body}
    Status {
        /// The answer's status.
        status: ureq::http::StatusCode,
        /// The start of its body, trimmed.
        body: String,
    },
    /// bad feed answer: {0}
    BadAnswer(#[source] ureq::Error),
}

/// Stops the source's thread when dropped (the thread sees the channel disconnect).
struct StopGuard {
    _stop: Sender<()>,
}

/// Follows the tenant API at `server` (`http://HOST:PORT`) with `token`; see the module docs.
pub fn follow(server: &str, token: &str, wake: Wake) -> Result<ModelSource, RemoteError> {
    let base = parse_server(server)?;
    if ureq::http::HeaderValue::from_str(token).is_err() {
        return Err(RemoteError::BadToken);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(POLL_WAIT + HTTP_SLACK))
        .build()
        .into();
    let (tx, rx) = unbounded();
    let (stop_tx, stop_rx) = bounded::<()>(0);
    let follower = Follower {
        agent,
        base: base.clone(),
        token: token.to_string(),
        tx,
        wake,
        stop: stop_rx,
        epoch: None,
        seq: 0,
        link: Link::Unknown,
    };
    std::thread::Builder::new()
        .name("strato-remote".into())
        .spawn(move || follower.run())?;
    Ok(ModelSource::new(
        rx,
        base,
        Some(Box::new(StopGuard { _stop: stop_tx })),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// No answer yet, no failure either.
    Unknown,
    Up,
    Down,
}

/// Why the thread ends.
struct Stopped;

struct Follower {
    agent: ureq::Agent,
    base: String,
    token: String,
    tx: Sender<ModelUpdate>,
    wake: Wake,
    stop: Receiver<()>,
    /// The server's epoch we follow (None: we need a reset).
    epoch: Option<String>,
    /// The last seq we sent.
    seq: u64,
    link: Link,
}

impl Follower {
    fn run(mut self) {
        tracing::info!("following the tenant model at {}", self.base);
        let mut backoff = BACKOFF_MIN;
        loop {
            if self.stopped() {
                return;
            }
            let polled = self.poll();
            if self.stopped() {
                return;
            }
            let r = match polled {
                Ok(answer) => {
                    backoff = BACKOFF_MIN;
                    self.apply(answer)
                }
                Err(why) => self.lost(why.to_string()).and_then(|()| {
                    let wait = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    self.sleep(wait)
                }),
            };
            if r.is_err() {
                return;
            }
        }
    }

    fn stopped(&self) -> bool {
        matches!(self.stop.try_recv(), Err(TryRecvError::Disconnected))
    }

    /// Waits `d` unless the source is dropped first.
    fn sleep(&self, d: Duration) -> Result<(), Stopped> {
        match self.stop.recv_timeout(d) {
            Err(RecvTimeoutError::Timeout) => Ok(()),
            _ => Err(Stopped),
        }
    }

    fn send(&self, u: ModelUpdate) -> Result<(), Stopped> {
        self.tx.send(u).map_err(|_| Stopped)?;
        (self.wake)();
        Ok(())
    }

    fn url(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(e) = &self.epoch {
            q.append_pair("epoch", e);
        }
        q.append_pair("after", &self.seq.to_string());
        q.append_pair("wait_ms", &POLL_WAIT.as_millis().to_string());
        format!("{}/strato/v1/feed?{}", self.base, q.finish())
    }

    /// One long poll.
    fn poll(&self) -> Result<FeedAnswer, PollError> {
        let mut resp = self
            .agent
            .get(&self.url())
            .header("X-Auth-Token", &self.token)
            .call()?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp
                .body_mut()
                .with_config()
                .limit(64 << 10)
                .read_to_string()
                .unwrap_or_default();
            return Err(PollError::Status {
                status,
                body: text.trim().to_string(),
            });
        }
        resp.body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_json::<FeedAnswer>()
            .map_err(PollError::BadAnswer)
    }

    fn lost(&mut self, why: String) -> Result<(), Stopped> {
        if self.link != Link::Down {
            tracing::warn!("lost the tenant model server {}: {why}", self.base);
            self.link = Link::Down;
            self.send(ModelUpdate::Link(Some(why)))?;
        } else {
            tracing::debug!("tenant model server {} still unreachable: {why}", self.base);
        }
        Ok(())
    }

    fn apply(&mut self, a: FeedAnswer) -> Result<(), Stopped> {
        match self.link {
            Link::Down => {
                tracing::info!("found the tenant model server {} again", self.base);
                self.send(ModelUpdate::Link(None))?;
            }
            Link::Unknown => tracing::info!("tenant model server {} answers", self.base),
            Link::Up => {}
        }
        self.link = Link::Up;
        match a.body {
            FeedBody::Reset { snapshot, hosts } => {
                if self.epoch.as_deref() != Some(a.epoch.as_str()) && self.epoch.is_some() {
                    tracing::info!("tenant model server {} restarted: resync", self.base);
                }
                self.epoch = Some(a.epoch);
                self.seq = snapshot.seq;
                self.send(ModelUpdate::Reset { snapshot, hosts })
            }
            FeedBody::Changes(changes) => {
                if self.epoch.as_deref() != Some(a.epoch.as_str()) {
                    // Not ours (the server never answers changes to another epoch): resync.
                    tracing::warn!("feed changes of epoch {} we do not follow: resync", a.epoch);
                    self.epoch = None;
                    return Ok(());
                }
                for ev in changes {
                    if ev.seq != self.seq + 1 {
                        tracing::warn!(
                            "feed gap: change {} after {}: resync from {}",
                            ev.seq,
                            self.seq,
                            self.base
                        );
                        self.epoch = None;
                        return Ok(());
                    }
                    self.seq = ev.seq;
                    self.send(ModelUpdate::Change(ev))?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use strato_tenant::model::{Change, ChangeEvent, Network, NetworkType, Snapshot};

    fn ev(seq: u64) -> ChangeEvent {
        ChangeEvent {
            seq,
            change: Change::NetworkDeleted(Network {
                id: format!("n{seq}"),
                tenant_id: "t".into(),
                name: String::new(),
                description: String::new(),
                admin_state_up: true,
                shared: false,
                network_type: NetworkType::Vxlan,
                vni: 1,
                mtu: 1450,
                created_at: String::new(),
                updated_at: String::new(),
                revision_number: 0,
            }),
        }
    }

    fn answer(epoch: &str, seq: u64, body: FeedBody) -> FeedAnswer {
        FeedAnswer {
            epoch: epoch.into(),
            seq,
            body,
        }
    }

    /// The follower's reaction to answers, without HTTP: resets, changes, gaps, foreign
    /// epochs and link changes.
    #[test]
    fn answers_become_updates() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w2 = wakes.clone();
        let (tx, rx) = unbounded();
        let (_stop_tx, stop) = bounded(0);
        let mut f = Follower {
            agent: ureq::Agent::new_with_defaults(),
            base: "http://127.0.0.1:1".into(),
            token: "t".into(),
            tx,
            wake: Arc::new(move || {
                w2.fetch_add(1, Ordering::SeqCst);
            }),
            stop,
            epoch: None,
            seq: 0,
            link: Link::Unknown,
        };
        assert!(f.url().ends_with("/strato/v1/feed?after=0&wait_ms=3000"));
        let snapshot = Snapshot {
            seq: 5,
            ..Snapshot::default()
        };
        let reset = FeedBody::Reset {
            snapshot: snapshot.clone(),
            hosts: vec![],
        };
        assert!(f.apply(answer("e1", 5, reset.clone())).is_ok());
        assert_eq!(
            rx.try_recv().unwrap(),
            ModelUpdate::Reset {
                snapshot,
                hosts: vec![]
            }
        );
        assert_eq!((f.epoch.as_deref(), f.seq), (Some("e1"), 5));
        assert!(f.url().contains("epoch=e1&after=5"));
        // 6 and 7 follow; 9 does not: the follower drops its epoch to get a reset.
        assert!(f
            .apply(answer(
                "e1",
                9,
                FeedBody::Changes(vec![ev(6), ev(7), ev(9)])
            ))
            .is_ok());
        assert_eq!(rx.try_recv().unwrap(), ModelUpdate::Change(ev(6)));
        assert_eq!(rx.try_recv().unwrap(), ModelUpdate::Change(ev(7)));
        assert!(rx.try_recv().is_err());
        assert_eq!((f.epoch.as_deref(), f.seq), (None, 7));
        assert!(!f.url().contains("epoch="));
        // Changes of an epoch we do not follow are ignored and ask for a reset.
        f.epoch = Some("e1".into());
        assert!(f
            .apply(answer("e2", 8, FeedBody::Changes(vec![ev(8)])))
            .is_ok());
        assert!(rx.try_recv().is_err());
        assert_eq!(f.epoch, None);
        // Lost once (one Link however many failures), then found.
        assert!(f.lost("refused".into()).is_ok());
        assert!(f.lost("refused again".into()).is_ok());
        assert_eq!(
            rx.try_recv().unwrap(),
            ModelUpdate::Link(Some("refused".into()))
        );
        assert!(rx.try_recv().is_err());
        assert!(f.apply(answer("e2", 5, reset)).is_ok());
        assert_eq!(rx.try_recv().unwrap(), ModelUpdate::Link(None));
        assert!(matches!(rx.try_recv().unwrap(), ModelUpdate::Reset { .. }));
        assert_eq!(wakes.load(Ordering::SeqCst), 6);
        // The agent is gone: the follower stops.
        drop(rx);
        assert!(f
            .apply(answer("e2", 6, FeedBody::Changes(vec![ev(6)])))
            .is_err());
    }

    #[test]
    fn server_urls() {
        for (good, canon) in [
            ("http://127.0.0.1:9696", "http://127.0.0.1:9696"),
            ("http://127.0.0.1:9696/", "http://127.0.0.1:9696"),
            ("http://api.example:80", "http://api.example:80"),
            ("http://[::1]:9696", "http://[::1]:9696"),
        ] {
            assert_eq!(parse_server(good).unwrap(), canon);
        }
        for bad in [
            "",
            "127.0.0.1:9696",
            "https://127.0.0.1:9696",
            "http://127.0.0.1",
            "http://127.0.0.1:0",
            "http://127.0.0.1:99999",
            "http://u:p@127.0.0.1:9696",
            "http://127.0.0.1:9696/v2.0",
            "http://127.0.0.1:9696?x=1",
            "http://:9696",
            "ftp://h:21",
            "http://h:9696 x",
        ] {
            assert!(
                matches!(parse_server(bad), Err(RemoteError::BadUrl { .. })),
                "{bad}"
            );
        }
        let e = parse_server("http://127.0.0.1").unwrap_err();
        assert!(matches!(
            e,
            RemoteError::BadUrl {
                why: UrlProblem::NoPort,
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "model server 'http://127.0.0.1' is not http://HOST:PORT: no port"
        );
        assert!(matches!(
            parse_server("http://u:p@127.0.0.1:9696"),
            Err(RemoteError::BadUrl {
                why: UrlProblem::UserInfo,
                ..
            })
        ));
        assert!(matches!(
            parse_server("http://127.0.0.1:9696/v2.0"),
            Err(RemoteError::BadUrl {
                why: UrlProblem::PathOrQuery,
                ..
            })
        ));
        assert_eq!(
            PollError::Status {
                status: ureq::http::StatusCode::UNAUTHORIZED,
                body: "no token".into()
            }
            .to_string(),
            "HTTP 401 Unauthorized: no token"
        );
    }
}
