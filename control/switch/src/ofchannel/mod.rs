//! The OpenFlow channel: OpenFlow 1.0 and 1.3 connections served by the controller thread's
//! mio event loop, so every message reads and changes the same pipeline the datapath caches.
//!
//! Contract:
//! - Passive listeners (`ptcp:[PORT][:IP]`, default 127.0.0.1:6653; `punix:PATH`) take
//!   connections from clients such as `ovs-ofctl`; active connections (`tcp:HOST[:PORT]`, default
//!   port 6653) reach external controllers and reconnect with exponential backoff (1 s doubling
//!   to 8 s).
//! - Each connection starts with HELLO; the version is the highest one both sides announce in
//!   their version bitmaps (or the lower of the two header versions without a bitmap); strato
//!   speaks 1.0 and 1.3. No common version: `HELLO_FAILED/INCOMPATIBLE`, then close.
//! - Keepalive: a connection silent for the probe interval (5 s) gets an ECHO_REQUEST; silent
//!   for another interval it is closed (a dead peer), and an active one reconnects.
//! - Roles (1.3 ROLE_REQUEST): EQUAL (default), MASTER (every other master becomes SLAVE) and
//!   SLAVE, with generation ids (a stale one is refused). Slaves may read but not change state
//!   (`BAD_REQUEST/IS_SLAVE`) and get no packet_in or flow_removed; everyone gets port_status.
//! - Fail mode: `standalone` runs the MAC-learning switch whenever no configured controller is
//!   connected (and removes its rules when one connects); `secure` never learns: installed flows
//!   keep forwarding with or without controllers. Passive clients are not controllers.
//! - BARRIER_REQUEST: replies once every worker applied every change made before it (later
//!   messages of that connection wait), so a packet taken after the reply sees the new rules.
//! - Bad input gets the OpenFlow error the spec names and the connection keeps working; a
//!   length field below the header size closes only that connection. Nothing else is affected.
//! - Work is bounded per loop pass (messages per connection, bytes buffered per peer) so
//!   upcalls keep being served while a client floods flow_mods.

mod conn;
mod groups;
mod of10;
pub mod of13;

pub use of13::{match_to_of, of_to_match};

use crate::app::{App, AppEvent, PortChange, Readiness, Tokens};
use crate::controller::{ControlError, Controller, ControllerHandle};
use crate::learning::{Learning, BASE_COOKIE, LEARNED_COOKIE};
use conn::{Conn, Origin, Stream};
use hashbrown::HashMap;
use mio::net::{TcpListener, TcpStream, UnixListener};
use mio::{Interest, Registry, Token};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use strato_datapath::buf::MAX_FRAME;
use strato_datapath::extract::extract;
use strato_datapath::stats::DropReason;
use strato_flowtable::key::PacketKey;
use strato_flowtable::pipeline::{
    Action, AddOptions, Instructions, OfPort, PipelineError, RemovalReason, Rule, RuleFilter,
    RuleFlags, RuleSpec,
};
use strato_flowtable::{Match, PortNo};

/// Fail mode of the bridge (`[bridge] fail_mode`).
#[derive(Debug, Clone, Copy, serde::Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// A MAC-learning switch whenever no configured controller is connected.
    #[default]
    Standalone,
    /// Only the rules someone installed (nothing is learned), with or without a controller.
    Secure,
}

/// The in_port a packet-out from the controller is taken to have.
pub const CONTROLLER_PORT: PortNo = strato_flowtable::pipeline::IN_PORT_CONTROLLER;

/// Default OpenFlow port.
pub const DEFAULT_PORT: u16 = 6653;
/// Silence before an ECHO_REQUEST probe; twice this closes the connection.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Channel configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfConfig {
    /// Datapath id reported in FEATURES_REPLY.
    pub datapath_id: u64,
    /// What the bridge does without a controller.
    pub fail_mode: FailMode,
    /// Aging of the learning switch used in fail mode standalone.
    pub learning: Learning,
    /// Keepalive probe interval.
    pub probe_interval: Duration,
}

impl Default for OfConfig {
    fn default() -> Self {
        OfConfig {
            datapath_id: 1,
            fail_mode: FailMode::Secure,
            learning: Learning::default(),
            probe_interval: PROBE_INTERVAL,
        }
    }
}

/// Errors setting up listeners or controllers. Each variant's doc comment is its message.
#[derive(Debug, displaydoc::Display, thiserror::Error)]
pub enum OfChannelError {
    /// The address has none of the forms `ptcp:[PORT][:IP]`, `punix:PATH`, `tcp:HOST[:PORT]`
    /// (the message lists them; a doc comment cannot be it: rustdoc reads `[:IP]` as a link).
    #[displaydoc(
        "bad OpenFlow address `{0}`: use ptcp:[PORT][:IP], punix:PATH or tcp:HOST[:PORT]"
    )]
    BadAddress(String),
    /// `{0}` is not a {1} address: listeners take ptcp:/punix:, controllers take tcp:
    WrongKind(String, &'static str),
    /// cannot listen on {addr}: {source} (is it already in use?)
    Bind {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The controller thread is gone.
    #[displaydoc("{0}")]
    Control(#[from] ControlError),
}

/// An OpenFlow address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `ptcp:[PORT][:IP]`.
    PTcp(SocketAddr),
    /// `punix:PATH`.
    PUnix(PathBuf),
    /// `tcp:HOST[:PORT]` (HOST resolved at each connect).
    Tcp(String, u16),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::PTcp(a) => write!(f, "ptcp:{}:{}", a.port(), a.ip()),
            Target::PUnix(p) => write!(f, "punix:{}", p.display()),
            Target::Tcp(h, p) => write!(f, "tcp:{h}:{p}"),
        }
    }
}

/// Parses an OpenFlow address (see [`Target`]).
pub fn parse_target(s: &str) -> Result<Target, OfChannelError> {
    let bad = || OfChannelError::BadAddress(s.to_string());
    if let Some(rest) = s.strip_prefix("ptcp:") {
        let (port, ip) = match rest.split_once(':') {
            Some((p, ip)) => (p, ip.trim_start_matches('[').trim_end_matches(']')),
            None => (rest, "127.0.0.1"),
        };
        let port: u16 = if port.is_empty() {
            DEFAULT_PORT
        } else {
            port.parse().map_err(|_| bad())?
        };
        let ip: std::net::IpAddr = ip.parse().map_err(|_| bad())?;
        return Ok(Target::PTcp(SocketAddr::new(ip, port)));
    }
    if let Some(path) = s.strip_prefix("punix:") {
        if path.is_empty() {
            return Err(bad());
        }
        return Ok(Target::PUnix(PathBuf::from(path)));
    }
    if let Some(rest) = s.strip_prefix("tcp:") {
        // tcp:HOST, tcp:HOST:PORT, tcp:[V6]:PORT
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, p) = r.split_once(']').ok_or_else(bad)?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_string(), p),
                _ => (rest.to_string(), ""),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        let port = if port.is_empty() {
            DEFAULT_PORT
        } else {
            port.parse().map_err(|_| bad())?
        };
        return Ok(Target::Tcp(host, port));
    }
    Err(bad())
}

/// Parses `ptcp:PORT[:IP]` to its socket address (compatibility helper).
pub fn parse_addr(s: &str) -> Result<SocketAddr, OfChannelError> {
    match parse_target(s)? {
        Target::PTcp(a) => Ok(a),
        _ => Err(OfChannelError::WrongKind(s.to_string(), "ptcp")),
    }
}

enum ListenSock {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

struct Listener {
    id: u64,
    sock: ListenSock,
}

/// A configured external controller.
struct Remote {
    target: Target,
    conn: Option<Token>,
    backoff: Duration,
    next_try: Instant,
    /// Last failure, for `strato ctl` and logs.
    last_error: Option<String>,
}

/// What one connection's message asks the switch to do beyond replying.
pub(crate) enum Effect {
    /// This connection became MASTER: every other master becomes SLAVE.
    BecameMaster(Token),
}

/// Switch-wide channel state handed to message handlers.
pub(crate) struct Ctx<'a> {
    pub c: &'a mut Controller,
    pub cfg: &'a OfConfig,
    /// Highest generation id seen in a MASTER/SLAVE role request.
    pub generation: &'a mut Option<u64>,
    pub effects: &'a mut Vec<Effect>,
}

/// Channel counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfStats {
    /// Connections accepted or established.
    pub connections: u64,
    /// Messages handled.
    pub messages: u64,
    /// Errors sent back.
    pub errors_sent: u64,
    /// Packet-ins sent.
    pub packet_ins: u64,
    /// Packet-ins not sent because the peer was not reading (output buffer full).
    pub packet_ins_dropped: u64,
    /// Connections closed for an untrustworthy length, a dead peer or an I/O error.
    pub closed_bad: u64,
}

/// Description of a connection for `strato ctl`.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Peer address.
    pub peer: String,
    /// `listener` or `controller`.
    pub kind: &'static str,
    /// Negotiated version (0 before HELLO).
    pub version: u8,
    /// Role name.
    pub role: &'static str,
}

/// The channel's state, owned by the controller (see the module docs).
pub struct OfSwitch {
    cfg: OfConfig,
    registry: Registry,
    tokens: Tokens,
    next_listener: u64,
    listeners: HashMap<Token, Listener>,
    conns: HashMap<Token, Conn>,
    remotes: Vec<Remote>,
    generation: Option<u64>,
    /// The learning switch is on because no controller is connected (standalone).
    learning_on: bool,
    stats: OfStats,
}

impl OfSwitch {
    fn new(registry: Registry, tokens: Tokens, cfg: OfConfig) -> OfSwitch {
        OfSwitch {
            cfg,
            registry,
            tokens,
            next_listener: 1,
            listeners: HashMap::new(),
            conns: HashMap::new(),
            remotes: Vec::new(),
            generation: None,
            learning_on: false,
            stats: OfStats::default(),
        }
    }

    fn token(&mut self) -> Token {
        self.tokens.next()
    }

    /// Counters.
    pub fn stats(&self) -> OfStats {
        self.stats.clone()
    }

    /// Current configuration.
    pub fn config(&self) -> OfConfig {
        self.cfg
    }

    /// Changes the configuration (fail mode takes effect on the next loop pass).
    pub fn set_config(&mut self, cfg: OfConfig) {
        self.cfg = cfg;
    }

    /// Open connections.
    pub fn connections(&self) -> Vec<ConnInfo> {
        let mut v: Vec<ConnInfo> = self
            .conns
            .values()
            .map(|c| ConnInfo {
                peer: c.peer.clone(),
                kind: match c.origin {
                    Origin::Listener(_) => "listener",
                    Origin::Remote(_) => "controller",
                },
                version: c.version.unwrap_or(0),
                role: c.role.name(),
            })
            .collect();
        v.sort_by(|a, b| a.peer.cmp(&b.peer));
        v
    }

    /// Starts a passive listener; returns its id and bound address (as text).
    pub fn listen(&mut self, target: &Target) -> Result<(u64, String), OfChannelError> {
        let tok = self.token();
        let (mut sock, shown) = match target {
            Target::PTcp(a) => {
                let bind = |source| OfChannelError::Bind {
                    addr: a.to_string(),
                    source,
                };
                let l = TcpListener::bind(*a).map_err(bind)?;
                let local = l.local_addr().map_err(bind)?;
                (ListenSock::Tcp(l), local.to_string())
            }
            Target::PUnix(p) => {
                let bind = |source| OfChannelError::Bind {
                    addr: p.display().to_string(),
                    source,
                };
                // A stale socket file from an earlier run is replaced; a live one is in use.
                if p.exists() {
                    if std::os::unix::net::UnixStream::connect(p).is_ok() {
                        return Err(bind(std::io::Error::new(
                            std::io::ErrorKind::AddrInUse,
                            "another process is listening there",
                        )));
                    }
                    let _ = std::fs::remove_file(p);
                }
                let l = UnixListener::bind(p).map_err(bind)?;
                (ListenSock::Unix(l, p.clone()), p.display().to_string())
            }
            Target::Tcp(..) => {
                return Err(OfChannelError::WrongKind(target.to_string(), "listener"))
            }
        };
        let reg = match &mut sock {
            ListenSock::Tcp(l) => self.registry.register(l, tok, Interest::READABLE),
            ListenSock::Unix(l, _) => self.registry.register(l, tok, Interest::READABLE),
        };
        reg.map_err(|source| OfChannelError::Bind {
            addr: shown.clone(),
            source,
        })?;
        let id = self.next_listener;
        self.next_listener += 1;
        self.listeners.insert(tok, Listener { id, sock });
        tracing::info!(listener = %shown, "OpenFlow listener started");
        Ok((id, shown))
    }

    /// Stops a listener and closes the connections it accepted.
    pub fn close_listener(&mut self, id: u64) {
        let Some(tok) = self
            .listeners
            .iter()
            .find(|(_, l)| l.id == id)
            .map(|(t, _)| *t)
        else {
            return;
        };
        if let Some(mut l) = self.listeners.remove(&tok) {
            match &mut l.sock {
                ListenSock::Tcp(s) => {
                    let _ = self.registry.deregister(s);
                }
                ListenSock::Unix(s, p) => {
                    let _ = self.registry.deregister(s);
                    let _ = std::fs::remove_file(&*p);
                }
            }
        }
        let doomed: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.origin == Origin::Listener(id))
            .map(|(t, _)| *t)
            .collect();
        for t in doomed {
            self.close(t, false);
        }
    }

    /// Replaces the configured controllers (`tcp:` targets); connections to removed ones close.
    pub fn set_controllers(&mut self, targets: Vec<Target>) -> Result<(), OfChannelError> {
        for t in &targets {
            if !matches!(t, Target::Tcp(..)) {
                return Err(OfChannelError::WrongKind(t.to_string(), "controller"));
            }
        }
        let old: Vec<Token> = self.remotes.iter().filter_map(|r| r.conn).collect();
        for t in old {
            self.close(t, false);
        }
        let now = Instant::now();
        self.remotes = targets
            .into_iter()
            .map(|target| Remote {
                target,
                conn: None,
                backoff: MIN_BACKOFF,
                next_try: now,
                last_error: None,
            })
            .collect();
        Ok(())
    }

    /// Configured controllers: (target, connected, last error).
    pub fn controllers(&self) -> Vec<(String, bool, Option<String>)> {
        self.remotes
            .iter()
            .map(|r| {
                let up = r
                    .conn
                    .and_then(|t| self.conns.get(&t))
                    .is_some_and(|c| c.version.is_some());
                (r.target.to_string(), up, r.last_error.clone())
            })
            .collect()
    }

    fn close(&mut self, tok: Token, bad: bool) {
        if let Some(mut c) = self.conns.remove(&tok) {
            c.flush();
            c.stream.deregister(&self.registry);
            if bad {
                self.stats.closed_bad += 1;
            }
            tracing::info!(peer = %c.peer, "OpenFlow connection closed");
            if let Origin::Remote(i) = c.origin {
                if let Some(r) = self.remotes.get_mut(i) {
                    r.conn = None;
                    r.next_try = Instant::now() + r.backoff;
                    r.backoff = (r.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn accept(&mut self, tok: Token) {
        let Some(l) = self.listeners.get(&tok) else {
            return;
        };
        let id = l.id;
        let mut accepted = Vec::new();
        loop {
            let r = match &l.sock {
                ListenSock::Tcp(s) => s.accept().map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    (Stream::Tcp(s), a.to_string())
                }),
                ListenSock::Unix(s, p) => s
                    .accept()
                    .map(|(s, _)| (Stream::Unix(s), format!("unix:{}", p.display()))),
            };
            match r {
                Ok(x) => accepted.push(x),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!(%e, "OpenFlow accept failed");
                    break;
                }
            }
        }
        for (stream, peer) in accepted {
            self.adopt(stream, peer, Origin::Listener(id), true);
        }
    }

    fn adopt(&mut self, mut stream: Stream, peer: String, origin: Origin, connected: bool) {
        let tok = self.token();
        if let Err(e) = stream.register(&self.registry, tok) {
            tracing::warn!(%e, %peer, "cannot register OpenFlow connection");
            return;
        }
        self.stats.connections += 1;
        let mut c = Conn::new(stream, tok, peer, origin);
        c.connected = connected;
        if connected {
            c.send_hello();
        }
        if let Origin::Remote(i) = origin {
            self.remotes[i].conn = Some(tok);
        }
        self.conns.insert(tok, c);
    }

    fn connect_remotes(&mut self) {
        let now = Instant::now();
        for i in 0..self.remotes.len() {
            let r = &mut self.remotes[i];
            if r.conn.is_some() || now < r.next_try {
                continue;
            }
            let Target::Tcp(host, port) = &r.target else {
                continue;
            };
            let addr = (host.as_str(), *port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next());
            let Some(addr) = addr else {
                r.last_error = Some(format!("cannot resolve {host}"));
                r.next_try = now + r.backoff;
                r.backoff = (r.backoff * 2).min(MAX_BACKOFF);
                continue;
            };
            match TcpStream::connect(addr) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let peer = r.target.to_string();
                    self.adopt(Stream::Tcp(s), peer, Origin::Remote(i), false);
                }
                Err(e) => {
                    r.last_error = Some(e.to_string());
                    r.next_try = now + r.backoff;
                    r.backoff = (r.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One pass of the event loop: socket events, queued async messages, timers. Returns true
    /// when work is left over (buffered messages, a barrier waiting for the workers).
    fn pass(&mut self, c: &mut Controller, events: &[Readiness]) -> bool {
        for &(tok, readable, writable) in events {
            if self.listeners.contains_key(&tok) {
                self.accept(tok);
                continue;
            }
            let Some(conn) = self.conns.get_mut(&tok) else {
                continue;
            };
            if readable {
                conn.readable = true;
            }
            if writable {
                conn.writable = true;
            }
        }
        self.connect_remotes();
        let mut busy = false;
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        let mut effects = Vec::new();
        for tok in tokens {
            let Some(conn) = self.conns.get_mut(&tok) else {
                continue;
            };
            let mut ctx = Ctx {
                c,
                cfg: &self.cfg,
                generation: &mut self.generation,
                effects: &mut effects,
            };
            let outcome = conn.service(&mut ctx, &mut self.stats);
            // A controller connection that negotiated a version resets its reconnect backoff.
            if let (Origin::Remote(i), Some(_)) = (conn.origin, conn.version) {
                if let Some(r) = self.remotes.get_mut(i) {
                    r.backoff = MIN_BACKOFF;
                }
            }
            match outcome {
                conn::Outcome::Open { busy: b } => busy |= b,
                conn::Outcome::Close { bad } => {
                    if let (Origin::Remote(i), Some(e)) = (conn.origin, conn.error.clone()) {
                        if let Some(r) = self.remotes.get_mut(i) {
                            r.last_error = Some(e);
                        }
                    }
                    self.close(tok, bad);
                }
            }
        }
        for e in effects {
            match e {
                Effect::BecameMaster(t) => {
                    for (tok, conn) in self.conns.iter_mut() {
                        if *tok != t && conn.role == conn::Role::Master {
                            conn.role = conn::Role::Slave;
                        }
                    }
                }
            }
        }
        self.deliver_async(c);
        self.fail_mode(c);
        // Changes made by this pass's messages: revalidate once for all of them.
        c.revalidate_if_pending();
        busy
    }

    /// A port_status (OFPPR_ADD 0 / DELETE 1 / MODIFY 2) to every negotiated connection.
    fn port_status(&mut self, c: &Controller, reason: u8, no: PortNo) {
        if self.conns.values().all(|k| k.version.is_none()) {
            return;
        }
        let rec = c.port(no);
        for conn in self.conns.values_mut() {
            if conn.version.is_some() {
                conn.send_port_status(reason, rec, no);
            }
        }
    }

    /// flow_removed, for the rules that asked for it, to the connections that want async
    /// messages.
    fn flow_removed(&mut self, c: &Controller, removed: &[(Rule, RemovalReason)]) {
        if !removed.iter().any(|(r, _)| r.flags.send_flow_rem) {
            return;
        }
        let now = c.now_ms();
        for conn in self.conns.values_mut() {
            if conn.version.is_none() || !conn.wants_async() {
                continue;
            }
            for (rule, why) in removed {
                if rule.flags.send_flow_rem {
                    conn.send_flow_removed(rule, *why, now);
                }
            }
        }
    }

    /// Packet-ins to the connections that want them.
    fn deliver_async(&mut self, c: &mut Controller) {
        let wants_pin = self.conns.values().any(|k| k.wants_async());
        if !wants_pin {
            return;
        }
        let pins = c.take_packet_ins();
        if pins.is_empty() {
            return;
        }
        for conn in self.conns.values_mut() {
            if conn.version.is_none() || !conn.wants_async() {
                continue;
            }
            for p in &pins {
                if conn.send_packet_in(p) {
                    self.stats.packet_ins += 1;
                } else {
                    self.stats.packet_ins_dropped += 1;
                }
            }
        }
    }

    /// Standalone: the learning switch runs while no configured controller is connected.
    fn fail_mode(&mut self, c: &mut Controller) {
        let controller_up = self
            .conns
            .values()
            .any(|k| matches!(k.origin, Origin::Remote(_)) && k.version.is_some());
        let want = self.cfg.fail_mode == FailMode::Standalone && !controller_up;
        if want == self.learning_on {
            return;
        }
        if want {
            if let Err(e) = self.cfg.learning.enable(c) {
                tracing::warn!(%e, "cannot start the learning switch");
                return;
            }
            tracing::info!("no controller connected: fail mode standalone, MAC learning on");
        } else {
            Learning::disable(c);
            for cookie in [BASE_COOKIE, LEARNED_COOKIE] {
                let f = RuleFilter::loose(None, Match::default()).cookie(cookie, u64::MAX);
                c.change(|p, _| {
                    let _ = p.delete(&f);
                });
            }
            tracing::info!("controller connected: MAC learning off");
        }
        self.learning_on = want;
    }

    /// Time until the next timer (keepalive, reconnect) is due.
    fn timer(&self) -> Duration {
        let now = Instant::now();
        let mut d = self.cfg.probe_interval;
        for r in &self.remotes {
            if r.conn.is_none() {
                d = d.min(r.next_try.saturating_duration_since(now));
            }
        }
        d.max(Duration::from_millis(1))
    }

    /// Closes everything (the controller is stopping).
    fn close_all(&mut self) {
        let ids: Vec<u64> = self.listeners.values().map(|l| l.id).collect();
        for id in ids {
            self.close_listener(id);
        }
        let toks: Vec<Token> = self.conns.keys().copied().collect();
        for t in toks {
            self.close(t, false);
        }
    }
}

impl App for OfSwitch {
    fn name(&self) -> &'static str {
        "openflow"
    }

    fn event(&mut self, c: &mut Controller, ev: &AppEvent) {
        match ev {
            AppEvent::Port { no, change } => {
                let reason = match change {
                    PortChange::Added => 0,
                    PortChange::Deleted => 1,
                    PortChange::Down => 2,
                    PortChange::Forgotten => return,
                };
                self.port_status(c, reason, *no);
            }
            AppEvent::RulesRemoved(rules) => self.flow_removed(c, rules),
        }
    }

    fn run(&mut self, c: &mut Controller, ready: &[Readiness]) -> bool {
        self.pass(c, ready)
    }

    fn next_timer(&self) -> Option<Duration> {
        Some(self.timer())
    }

    fn shutdown(&mut self, _c: &mut Controller) {
        self.close_all();
    }
}

/// The bridge's OpenFlow channel on the controller thread.
pub trait ControllerOpenFlow {
    /// The channel (installed as an app with the default [`OfConfig`] on first use).
    fn openflow(&mut self) -> &mut OfSwitch;
}

impl ControllerOpenFlow for Controller {
    fn openflow(&mut self) -> &mut OfSwitch {
        if self.app::<OfSwitch>().is_none() {
            let r = self
                .registry()
                .try_clone()
                .expect("cloning the mio registry");
            let sw = OfSwitch::new(r, self.tokens(), OfConfig::default());
            self.set_app(sw);
        }
        self.app_mut::<OfSwitch>()
            .expect("the OpenFlow channel was just installed")
    }
}

/// A listener started through a [`ControllerHandle`]; dropping it stops the listener and
/// closes its connections.
pub struct OfChannel {
    id: u64,
    addr: String,
    handle: ControllerHandle,
}

impl OfChannel {
    /// The bound address (`IP:PORT`, useful with port 0; or the socket path).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The bound address as text (a unix socket path for punix).
    pub fn local(&self) -> &str {
        &self.addr
    }
}

impl Drop for OfChannel {
    fn drop(&mut self) {
        let id = self.id;
        let _ = self.handle.call(move |c| c.openflow().close_listener(id));
    }
}

/// Starts a listener (`ptcp:...` or `punix:...`) on the controller's event loop.
pub fn listen(addr: &str, handle: ControllerHandle) -> Result<OfChannel, OfChannelError> {
    let target = parse_target(addr)?;
    let (id, shown) = handle.call(move |c| c.openflow().listen(&target))??;
    Ok(OfChannel {
        id,
        addr: shown,
        handle,
    })
}

/// Sets the channel configuration, then starts a listener.
pub fn listen_with(
    addr: &str,
    handle: ControllerHandle,
    cfg: OfConfig,
) -> Result<OfChannel, OfChannelError> {
    configure(&handle, cfg)?;
    listen(addr, handle)
}

/// Sets the channel configuration (datapath id, fail mode, probe interval).
pub fn configure(handle: &ControllerHandle, cfg: OfConfig) -> Result<(), OfChannelError> {
    handle.call(move |c| c.openflow().set_config(cfg))?;
    Ok(())
}

/// Sets the external controllers (`tcp:HOST[:PORT]` each).
pub fn set_controllers(
    handle: &ControllerHandle,
    targets: &[String],
) -> Result<(), OfChannelError> {
    let t = targets
        .iter()
        .map(|s| parse_target(s))
        .collect::<Result<Vec<_>, _>>()?;
    handle.call(move |c| c.openflow().set_controllers(t))??;
    Ok(())
}

/// A flow_mod command, version-neutral.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlowModCmd {
    Add,
    Modify { strict: bool },
    Delete { strict: bool },
}

/// A flow_mod, version-neutral (both codecs convert to this).
#[derive(Clone, Debug)]
pub(crate) struct FlowModOp {
    pub command: FlowModCmd,
    /// None: all tables (delete / modify only).
    pub table: Option<u8>,
    pub matching: Match,
    pub priority: u16,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub out_port: Option<OfPort>,
    pub out_group: Option<u32>,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub send_flow_rem: bool,
    pub check_overlap: bool,
    pub reset_counts: bool,
    pub instructions: Instructions,
    /// OpenFlow 1.0: a modify that matches nothing adds the rule.
    pub modify_adds: bool,
}

/// Why a flow_mod failed.
pub(crate) enum FlowModError {
    /// ADD to OFPTT_ALL.
    NoTable,
    Pipeline(PipelineError),
}

/// Applies a flow_mod to the pipeline (revalidation deferred to the end of the loop pass or
/// the next barrier). Deleted rules that asked for it produce flow_removed.
pub(crate) fn apply_flow_mod(c: &mut Controller, op: FlowModOp) -> Result<(), FlowModError> {
    let now = c.now_ms();
    let add = |c: &mut Controller, op: &FlowModOp| -> Result<(), FlowModError> {
        let table = op.table.ok_or(FlowModError::NoTable)?;
        let spec = RuleSpec {
            table,
            matching: op.matching,
            priority: op.priority,
            cookie: op.cookie,
            idle_timeout: op.idle_timeout,
            hard_timeout: op.hard_timeout,
            flags: RuleFlags {
                send_flow_rem: op.send_flow_rem,
            },
            instructions: op.instructions.clone(),
        };
        let opts = AddOptions {
            check_overlap: op.check_overlap,
            keep_counts: !op.reset_counts,
        };
        c.change(|p, _| p.add(spec, opts, now).map(|_| ()))
            .map_err(FlowModError::Pipeline)
    };
    let filter = |strict: bool| {
        let mut f = RuleFilter::loose(op.table, op.matching);
        f.strict = strict;
        f.priority = op.priority;
        f = f.cookie(op.cookie, op.cookie_mask);
        if let Some(p) = op.out_port {
            f = f.out_port(p);
        }
        if let Some(g) = op.out_group {
            f = f.out_group(g);
        }
        f
    };
    match op.command {
        FlowModCmd::Add => add(c, &op),
        FlowModCmd::Modify { strict } => {
            let f = filter(strict);
            let ins = op.instructions.clone();
            let reset = op.reset_counts;
            let n = c
                .change(|p, _| p.modify(&f, ins, reset))
                .map_err(FlowModError::Pipeline)?;
            if n.is_empty() && op.modify_adds {
                return add(c, &op);
            }
            Ok(())
        }
        FlowModCmd::Delete { strict } => {
            let f = filter(strict);
            let removed = c
                .change(|p, _| p.delete(&f))
                .map_err(FlowModError::Pipeline)?;
            c.note_removed(removed, RemovalReason::Delete);
            Ok(())
        }
    }
}

/// Why a packet-out cannot be executed (the version's handler answers each with an OpenFlow
/// error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PacketOutError {
    /// The frame is empty or longer than [`MAX_FRAME`].
    #[error("packet-out data of {0} bytes (1..={max})", max = MAX_FRAME)]
    Length(usize),
    /// An output action names a port the switch does not have.
    #[error("no port {0}")]
    NoPort(PortNo),
    /// The frame does not parse.
    #[error("bad frame: {0:?}")]
    BadFrame(DropReason),
}

/// Sends a packet-out frame through `actions` as if it arrived on `in_port` (None: from the
/// controller). Runs on the worker that owns `in_port` (else worker 0).
pub(crate) fn execute_packet_out(
    c: &mut Controller,
    in_port: Option<PortNo>,
    data: &[u8],
    actions: &[Action],
) -> Result<(), PacketOutError> {
    if data.is_empty() || data.len() > MAX_FRAME {
        return Err(PacketOutError::Length(data.len()));
    }
    for a in actions {
        if let Action::Output(OfPort::Port(p)) = a {
            if !c.env().ports.contains_key(p) && !c.env().tunnels.contains_key(p) {
                return Err(PacketOutError::NoPort(*p));
            }
        }
    }
    let port = in_port.unwrap_or(CONTROLLER_PORT);
    let mut key = PacketKey::default();
    extract(data, port, None, &mut key).map_err(PacketOutError::BadFrame)?;
    let x = strato_flowtable::xlate::xlate_actions(c.pipeline(), c.env(), &key.key, actions);
    let worker = in_port
        .and_then(|p| c.port(p).map(|r| r.worker))
        .unwrap_or(0);
    c.execute(worker, port, data, x.actions);
    Ok(())
}

/// Per table: (id, active rules, lookups, matches). strato counts packets per rule, so
/// lookups and matches both count packets that hit a rule of the table.
pub(crate) fn table_stats(c: &Controller) -> Vec<(u8, u32, u64, u64)> {
    let n = c.pipeline().n_tables().min(255);
    let mut v: Vec<(u8, u32, u64, u64)> = (0..n).map(|t| (t as u8, 0, 0, 0)).collect();
    for r in c.pipeline().rules() {
        if let Some(e) = v.get_mut(usize::from(r.table)) {
            e.1 += 1;
            e.2 += r.packets;
            e.3 += r.packets;
        }
    }
    v
}

/// The rules a flow/aggregate stats request selects (cloned), by the same filter flow_mod
/// modify and delete use.
pub(crate) fn select_rules(
    c: &Controller,
    f: &RuleFilter,
) -> Vec<strato_flowtable::pipeline::Rule> {
    c.pipeline()
        .rules()
        .filter(|r| f.accepts(r))
        .cloned()
        .collect()
}

/// A port's counters in `ofp_port_stats` order (strato keeps rx/tx packets, bytes and tx
/// drops; the rest are 0).
pub(crate) fn port_counters(p: &crate::controller::PortRecord) -> [u64; 12] {
    let s = p.stats.load();
    [
        s.rx_packets,
        s.tx_packets,
        s.rx_bytes,
        s.tx_bytes,
        0,
        s.tx_dropped,
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}

/// A port name as the NUL-padded 16-byte field of `ofp_port` / `ofp_phy_port` (at most 15
/// bytes kept).
pub(crate) fn port_name16(name: &str) -> [u8; 16] {
    let mut n = [0u8; 16];
    let b = name.as_bytes();
    let l = b.len().min(15);
    n[..l].copy_from_slice(&b[..l]);
    n
}

/// An age in milliseconds as OpenFlow's (duration_sec, duration_nsec).
pub(crate) fn duration(age_ms: u64) -> (u32, u32) {
    (
        u32::try_from(age_ms / 1000).unwrap_or(u32::MAX),
        (age_ms % 1000) as u32 * 1_000_000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("ptcp:6653").unwrap(),
            Target::PTcp("127.0.0.1:6653".parse().unwrap())
        );
        assert_eq!(
            parse_target("ptcp:").unwrap(),
            Target::PTcp("127.0.0.1:6653".parse().unwrap())
        );
        assert_eq!(
            parse_target("ptcp:6633:0.0.0.0").unwrap(),
            Target::PTcp("0.0.0.0:6633".parse().unwrap())
        );
        assert_eq!(
            parse_target("ptcp:6633:[::1]").unwrap(),
            Target::PTcp("[::1]:6633".parse().unwrap())
        );
        assert_eq!(
            parse_target("punix:/run/x.sock").unwrap(),
            Target::PUnix("/run/x.sock".into())
        );
        assert_eq!(
            parse_target("tcp:127.0.0.1:6633").unwrap(),
            Target::Tcp("127.0.0.1".into(), 6633)
        );
        assert_eq!(
            parse_target("tcp:ctl.example").unwrap(),
            Target::Tcp("ctl.example".into(), 6653)
        );
        assert_eq!(
            parse_target("tcp:[::1]:6633").unwrap(),
            Target::Tcp("::1".into(), 6633)
        );
        for bad in [
            "tcp:",
            "punix:",
            "ptcp:x",
            "ptcp:1:notip",
            "udp:1",
            "tcp:h:99999",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_addr("ptcp:6653:127.0.0.1").unwrap(),
            "127.0.0.1:6653".parse().unwrap()
        );
        assert!(parse_addr("tcp:1.2.3.4").is_err());
    }

    #[test]
    fn error_messages() {
        let e = parse_target("udp:1").unwrap_err();
        assert!(matches!(&e, OfChannelError::BadAddress(a) if a == "udp:1"));
        assert_eq!(
            e.to_string(),
            "bad OpenFlow address `udp:1`: use ptcp:[PORT][:IP], punix:PATH or tcp:HOST[:PORT]"
        );
        let e = parse_addr("tcp:1.2.3.4").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`tcp:1.2.3.4` is not a ptcp address: listeners take ptcp:/punix:, controllers take tcp:"
        );
        assert_eq!(
            PacketOutError::Length(0).to_string(),
            format!("packet-out data of 0 bytes (1..={MAX_FRAME})")
        );
        assert_eq!(PacketOutError::NoPort(9).to_string(), "no port 9");
        assert_eq!(
            PacketOutError::BadFrame(DropReason::TruncatedEthernet).to_string(),
            "bad frame: TruncatedEthernet"
        );
    }
}
