//! `strato bench api`: the tenant API and agent under load (creates/s, latency, first packet).
//!
//! Everything runs in this process, on loopback: a [`TenantService`] on a SQLite database in a
//! fresh temporary directory (`synchronous=NORMAL`, the daemon's default, so every write is a
//! real committed transaction), served by an [`ApiServer`] on `127.0.0.1:0` (the daemon's
//! default of 2 HTTP threads), and one controller ([`strato_switch::controller::start`], one worker
//! backing off up to 200 us when idle, as the daemon's default) with memory ports and a tenant
//! [`Agent`] for host `hv1` following the service ([`source::local`]), its underlay a memory
//! port. Every request goes over HTTP through `ureq` with a provider token.
//!
//! Three measurements, in this order:
//!
//! - **port_creates_per_s**: `--clients` threads (one keep-alive connection each) create
//!   `--ports` unbound ports (`POST /v2.0/ports`, spread round-robin over [`NETWORKS`] networks
//!   with a `/16` IPv4 subnet each), all released at once; the rate is ports over the wall-clock
//!   time from the release to the last answer. **create_p50_ms** / **create_p99_ms**: the
//!   latency of each of those requests (nearest rank). Afterwards the store must hold exactly
//!   that many ports.
//! - **api_requests_per_s**: the same threads run `--requests` requests in total, cycling
//!   through four kinds on the ports each thread created: list ports with a filter
//!   (`?network_id=..&name=..`, which must find exactly that port), show a port, show a
//!   network, rename a port (`PUT`; the next list looks for the new name). Wall-clock rate.
//! - **first_packet_p99_ms**: a pool of memory ports `fp0`..`fp{K-1}` (and `fpw` for one
//!   warm-up round that is not counted) is attached to the bridge before anything is bound to
//!   them; a sender VM port (`snd`, attached) sits on its own network. `--first-packet` times,
//!   one after another: create a port bound to `hv1` with `binding:profile` naming the next
//!   pool interface; the clock starts when the HTTP answer has been read; the sender then sends
//!   a UDP frame (its own MAC and address, to the new port's MAC and address) every
//!   [`SEND_EVERY`] until that frame comes out of the new port's ring; the clock stops there.
//!   p50, p99 (the reported value) and max over the samples.
//!
//! Contract: an unexpected HTTP status or body, a store count other than expected, a list that
//! does not find its port, a thread failure, or a wait longer than `--timeout` fails the run
//! with a [`BenchApiError`] saying what happened. Nothing here asserts the targets
//! ([`TARGET_CREATES_PER_S`], [`TARGET_FIRST_PACKET_P99_MS`]); [`summary`] shows them beside
//! the values. The temporary directory is removed when the run ends, also on failure.

use serde::Serialize;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use strato_datapath::port::{FrameRing, MemPort, MemSink, MemSource, Port, PortKind};
use strato_datapath::worker::{IdlePolicy, WorkerConfig};
use strato_flowtable::pipeline::{Pipeline, PortEnv};
use strato_overlay::agent::{self, source, Agent, AgentSpec};
use strato_switch::controller::{start, ControlError, Running};
use strato_tenant::api::StartError;
use strato_tenant::config::{HostSpec, Role, TokenSpec};
use strato_tenant::service::OpenError;
use strato_tenant::{ApiServer, TenantConfig, TenantService};

/// Target: ports created per second over the API.
pub const TARGET_CREATES_PER_S: f64 = 2_000.0;
/// Target: p99 milliseconds from a bound port's create answer to its first delivered frame.
pub const TARGET_FIRST_PACKET_P99_MS: f64 = 10.0;
/// Networks the created ports are spread over (each with a /16 IPv4 subnet).
pub const NETWORKS: usize = 4;
/// How often the sender re-sends its frame while waiting for the new port.
pub const SEND_EVERY: Duration = Duration::from_micros(100);
/// The agent's host name.
const HOST: &str = "hv1";
/// OpenFlow numbers: the underlay, the tunnel, the sender, the warm-up port, the pool.
const UNDERLAY: u32 = 100;
const TUNNEL: u32 = 4789;
const SENDER: u32 = 1;
const WARMUP: u32 = 2;
const POOL_FIRST: u32 = 10_000;
/// Frames a pool port's output ring holds.
const OUT_SLOTS: usize = 64;

/// `strato bench api` options.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchApiArgs {
    /// Ports created over HTTP for port_creates_per_s (spread over 4 networks).
    #[arg(long, default_value_t = 5_000)]
    pub ports: u32,
    /// Client threads (one keep-alive HTTP connection each).
    #[arg(long, default_value_t = 8)]
    pub clients: u32,
    /// First-packet samples (each a new bound port on a pre-attached memory interface).
    #[arg(long, default_value_t = 200)]
    pub first_packet: u32,
    /// Requests of the mixed read/write load (list with filter, show port, show network,
    /// rename port, in turn).
    #[arg(long, default_value_t = 20_000)]
    pub requests: u32,
    /// Seconds any one wait (an HTTP answer, a first packet) may take before failing.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Print `{"port_creates_per_s", "api_requests_per_s", "create_p50_ms", "create_p99_ms",
    /// "first_packet_p99_ms"}` on stdout (the summary still goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl Default for BenchApiArgs {
    fn default() -> Self {
        BenchApiArgs {
            ports: 5_000,
            clients: 8,
            first_packet: 200,
            requests: 20_000,
            timeout: 30,
            json: false,
        }
    }
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchApiError {
    /// bad arguments: {0}
    #[error("bad arguments: {0}")]
    Args(String),
    /// temporary directory {path}: {source}
    #[error("temporary directory {path}: {source}")]
    TempDir {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// tenant service: {0}
    #[error("tenant service: {0}")]
    Open(#[from] OpenError),
    /// tenant API server: {0}
    #[error("tenant API server: {0}")]
    Start(#[from] StartError),
    /// controller: {0}
    #[error("controller: {0}")]
    Control(#[from] ControlError),
    /// {what}: {detail}
    #[error("{what}: {detail}")]
    Http {
        /// The request.
        what: String,
        /// What went wrong (transport error, or the status and body).
        detail: String,
    },
    /// timed out after {secs} s: {what}
    #[error("timed out after {secs} s: {what}")]
    Timeout {
        /// What did not happen in time.
        what: String,
        /// The limit.
        secs: u64,
    },
    /// check failed: {0}
    #[error("check failed: {0}")]
    Verify(String),
    /// could not start a thread: {0}
    #[error("could not start a thread: {0}")]
    Thread(std::io::Error),
    /// a client thread panicked
    #[error("a client thread panicked")]
    Panicked,
}

/// The port create measurement.
#[derive(Debug, Clone, Serialize)]
pub struct CreateResult {
    /// Ports created.
    pub ports: u32,
    /// Wall-clock seconds from releasing the clients to the last answer.
    pub secs: f64,
    /// ports / secs.
    pub port_creates_per_s: f64,
    /// Median request latency.
    pub p50_ms: f64,
    /// 99th percentile request latency.
    pub p99_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
}

/// The request kinds of the mixed load, in the order they cycle.
pub const MIXED_KINDS: [&str; 4] = [
    "list ports (filter network_id, name)",
    "show port",
    "show network",
    "rename port (PUT)",
];

/// One request kind of the mixed load.
#[derive(Debug, Clone, Serialize)]
pub struct KindResult {
    /// Which (one of [`MIXED_KINDS`]).
    pub kind: String,
    /// Requests of this kind.
    pub requests: u32,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
}

/// The mixed load measurement.
#[derive(Debug, Clone, Serialize)]
pub struct MixedResult {
    /// Requests answered (a quarter of each kind, give or take one per thread).
    pub requests: u32,
    /// Of them, writes (renames).
    pub writes: u32,
    /// Wall-clock seconds.
    pub secs: f64,
    /// requests / secs.
    pub api_requests_per_s: f64,
    /// Median request latency.
    pub p50_ms: f64,
    /// 99th percentile request latency.
    pub p99_ms: f64,
    /// Latency by request kind.
    pub kinds: Vec<KindResult>,
}

/// The first packet measurement.
#[derive(Debug, Clone, Serialize)]
pub struct FirstPacketResult {
    /// Samples (the warm-up round not counted).
    pub samples: u32,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank).
    pub p99_ms: f64,
    /// Slowest sample.
    pub max_ms: f64,
    /// Mean frames the sender sent per sample.
    pub mean_frames_sent: f64,
    /// Median time of the create request itself (before the clock starts).
    pub create_p50_ms: f64,
    /// The warm-up round (not counted).
    pub warmup_ms: f64,
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct BenchApiResult {
    /// Client threads.
    pub clients: u32,
    /// Port creates.
    pub creates: CreateResult,
    /// Mixed load.
    pub mixed: MixedResult,
    /// First packet.
    pub first_packet: FirstPacketResult,
    /// Attach requests the agent made (every interface was attached beforehand: expect 0).
    pub attach_requests: u64,
}

impl BenchApiResult {
    /// The `--json` object: `{"port_creates_per_s", "api_requests_per_s", "create_p50_ms",
    /// "create_p99_ms", "first_packet_p99_ms"}`, all numbers.
    pub fn json(&self) -> Value {
        json!({
            "port_creates_per_s": self.creates.port_creates_per_s,
            "api_requests_per_s": self.mixed.api_requests_per_s,
            "create_p50_ms": self.creates.p50_ms,
            "create_p99_ms": self.creates.p99_ms,
            "first_packet_p99_ms": self.first_packet.p99_ms,
        })
    }
}

/// The human summary, with the targets and whether each is met.
pub fn summary(r: &BenchApiResult) -> String {
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let c = &r.creates;
    let m = &r.mixed;
    let f = &r.first_packet;
    let kinds: String = m
        .kinds
        .iter()
        .map(|k| {
            format!(
                "  {:<38} {:>6} requests, p50 {:.2} ms, p99 {:.2} ms\n",
                k.kind, k.requests, k.p50_ms, k.p99_ms
            )
        })
        .collect();
    format!(
        "strato bench api ({} client threads, one process, loopback HTTP, SQLite synchronous=NORMAL)\n\
         port creates:   {} in {:.2} s = {:.0}/s (target >= {:.0}/s: {}); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n\
         mixed requests: {} ({} renames) in {:.2} s = {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms\n\
         {}\
         first packet:   {} samples: p50 {:.2} ms, p99 {:.2} ms (target <= {:.0} ms: {}), max {:.2} ms; \
         {:.1} frames sent per sample; create answer p50 {:.2} ms\n",
        r.clients,
        c.ports,
        c.secs,
        c.port_creates_per_s,
        TARGET_CREATES_PER_S,
        met(c.port_creates_per_s >= TARGET_CREATES_PER_S),
        c.p50_ms,
        c.p99_ms,
        c.max_ms,
        m.requests,
        m.writes,
        m.secs,
        m.api_requests_per_s,
        m.p50_ms,
        m.p99_ms,
        kinds,
        f.samples,
        f.p50_ms,
        f.p99_ms,
        TARGET_FIRST_PACKET_P99_MS,
        met(f.p99_ms <= TARGET_FIRST_PACKET_P99_MS),
        f.max_ms,
        f.mean_frames_sent,
        f.create_p50_ms,
    )
}

/// Runs the three measurements. `progress` receives one line per step.
pub fn run(
    args: &BenchApiArgs,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchApiResult, BenchApiError> {
    check_args(args)?;
    let timeout = Duration::from_secs(args.timeout);
    progress("starting the tenant API (SQLite in a temporary directory), controller and agent");
    let env = Env::start(args)?;
    let client = env.client(timeout);
    let mut nets = Vec::with_capacity(NETWORKS);
    for i in 0..NETWORKS {
        nets.push(network(
            &client,
            &format!("bench-{i}"),
            &format!("10.{i}.0.0/16"),
        )?);
    }

    progress(&format!(
        "creating {} ports with {} client threads",
        args.ports, args.clients
    ));
    let (creates, owned) = bench_creates(&env, args, &nets)?;
    let stored = env
        .svc
        .store_counts()
        .map_err(|e| BenchApiError::Verify(format!("reading the store's port count: {e}")))?;
    if stored.2 != u64::from(args.ports) {
        return Err(BenchApiError::Verify(format!(
            "the store holds {} ports after {} creates",
            stored.2, args.ports
        )));
    }
    progress(&format!(
        "port creates: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        creates.port_creates_per_s, creates.p50_ms, creates.p99_ms
    ));

    progress(&format!("mixed load: {} requests", args.requests));
    let mixed = bench_mixed(&env, args, owned)?;
    progress(&format!(
        "mixed load: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms",
        mixed.api_requests_per_s, mixed.p50_ms, mixed.p99_ms
    ));

    progress(&format!("first packet: {} samples", args.first_packet));
    let first_packet = bench_first_packet(&env, &client, args, progress)?;
    progress(&format!(
        "first packet: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        first_packet.p50_ms, first_packet.p99_ms, first_packet.max_ms
    ));
    let attach_requests = env.attach_requests.load(Ordering::Relaxed);
    Ok(BenchApiResult {
        clients: args.clients,
        creates,
        mixed,
        first_packet,
        attach_requests,
    })
}

fn check_args(a: &BenchApiArgs) -> Result<(), BenchApiError> {
    let bad = |s: &str| Err(BenchApiError::Args(s.to_string()));
    if a.clients == 0 || a.clients > 256 {
        return bad("--clients must be 1..=256");
    }
    // Four /16 subnets hold about 4 * 65,000 addresses.
    if a.ports < a.clients || a.ports > 200_000 {
        return bad("--ports must be between --clients and 200000");
    }
    if a.first_packet == 0 || a.first_packet > 5_000 {
        return bad("--first-packet must be 1..=5000");
    }
    if a.requests == 0 {
        return bad("--requests must be at least 1");
    }
    if a.timeout == 0 {
        return bad("--timeout must be at least 1 second");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The system under test.

/// A directory removed (with everything in it) when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, BenchApiError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("strato-bench-api-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| BenchApiError::TempDir {
            path: path.clone(),
            source,
        })?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A memory interface the bench reads from: what the switch sends out of it.
struct MemIface {
    name: String,
    out: Arc<FrameRing>,
}

/// The service, its HTTP server, the controller with the agent, and the memory ports.
/// Fields drop in order: the server stops first, then the controller (and with it the agent),
/// then the service, then the directory.
struct Env {
    _server: ApiServer,
    _run: Running,
    svc: Arc<TenantService>,
    base: String,
    token: String,
    /// The sender VM: frames into the switch.
    sender_in: Arc<FrameRing>,
    /// The warm-up interface.
    warmup: MemIface,
    /// The pool, one per first-packet sample.
    pool: Vec<MemIface>,
    attach_requests: Arc<AtomicU64>,
    _dir: TempDir,
}

impl Env {
    fn start(args: &BenchApiArgs) -> Result<Env, BenchApiError> {
        let dir = TempDir::new()?;
        let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let cfg = TenantConfig {
            listen: "127.0.0.1:0".parse().expect("a literal socket address"),
            tokens: vec![TokenSpec {
                token: token.clone(),
                role: Role::Provider,
                tenant: None,
            }],
            hosts: vec![HostSpec {
                name: HOST.into(),
                vtep_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                uplinks: Vec::new(),
            }],
            local_host: Some(HOST.into()),
            ..TenantConfig::default()
        };
        let svc = Arc::new(TenantService::open(&cfg, &dir.0.join("tenant.sqlite"))?);
        let server = ApiServer::start(&cfg, svc.clone())?;
        let base = format!("http://{}", server.local_addr());

        let worker = WorkerConfig {
            idle: IdlePolicy::Backoff { max_sleep_us: 200 },
            ..WorkerConfig::default()
        };
        let run = start(Pipeline::default(), PortEnv::default(), vec![worker])?;
        let h = run.handle.clone();
        let sender_in = FrameRing::new(256);
        let mem = |name: String| MemIface {
            name,
            out: FrameRing::new(OUT_SLOTS),
        };
        let warmup = mem("fpw".into());
        let pool: Vec<MemIface> = (0..args.first_packet)
            .map(|i| mem(format!("fp{i}")))
            .collect();
        // The underlay (nobody reads what it sends), the sender, the warm-up port and the pool.
        let mut ports = vec![
            Port::new(
                UNDERLAY,
                "ul",
                PortKind::Memory(MemPort::rings(FrameRing::new(64), FrameRing::new(64))),
            ),
            Port::new(
                SENDER,
                "snd",
                PortKind::Memory(MemPort::rings(sender_in.clone(), FrameRing::new(64))),
            ),
        ];
        let sink = |no: u32, m: &MemIface| {
            Port::new(
                no,
                m.name.clone(),
                PortKind::Memory(MemPort {
                    source: MemSource::None,
                    sink: MemSink::Ring(m.out.clone()),
                }),
            )
        };
        ports.push(sink(WARMUP, &warmup));
        for (i, m) in pool.iter().enumerate() {
            ports.push(sink(POOL_FIRST + i as u32, m));
        }
        h.call(move |c| {
            let nos: Vec<u32> = ports.iter().map(|p| p.no).collect();
            for p in ports {
                c.add_port(0, p);
            }
            c.update(|_, env| {
                for no in nos {
                    env.add_port(no, true, true);
                }
            });
        })?;
        h.sync()?;

        let attach_requests = Arc::new(AtomicU64::new(0));
        let wake: source::Wake = {
            let h = h.clone();
            Arc::new(move || h.wake())
        };
        let counted = attach_requests.clone();
        let spec = AgentSpec {
            host: HOST.into(),
            underlay: UNDERLAY,
            underlay_mac: [2, 0, 0, 0, 1, 1],
            tunnel_ofport: TUNNEL,
            // Every interface is a bridge port before any port is bound to it.
            attach: Box::new(move |i| {
                tracing::warn!(interface = %i.name, "bench api: unexpected attach request");
                counted.fetch_add(1, Ordering::Relaxed);
            }),
        };
        agent::install(&h, Agent::new(spec, source::local(&svc, wake)))?;
        Ok(Env {
            _server: server,
            _run: run,
            svc,
            base,
            token,
            sender_in,
            warmup,
            pool,
            attach_requests,
            _dir: dir,
        })
    }

    fn client(&self, timeout: Duration) -> Client {
        Client {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(timeout))
                .build()
                .into(),
            base: self.base.clone(),
            token: self.token.clone(),
        }
    }
}

/// One HTTP client (one keep-alive connection) with the provider token.
struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl Client {
    /// One request; the answer must have status `want` and a JSON body.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        want: u16,
    ) -> Result<Value, BenchApiError> {
        let what = || format!("{method} {path}");
        let http = |detail: String| BenchApiError::Http {
            what: what(),
            detail,
        };
        let b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("X-Auth-Token", &self.token);
        let resp = match body {
            Some(v) => self.agent.run(
                b.header("Content-Type", "application/json")
                    .body(v.to_string())
                    .map_err(|e| http(e.to_string()))?,
            ),
            None => self.agent.run(b.body(()).map_err(|e| http(e.to_string()))?),
        };
        let mut resp = resp.map_err(|e| http(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| http(format!("reading the answer: {e}")))?;
        if status != want {
            return Err(http(format!("HTTP {status} (expected {want}): {text}")));
        }
        serde_json::from_str(&text).map_err(|e| http(format!("bad JSON ({e}): {text}")))
    }
}

/// A string attribute of a JSON object.
fn s(v: &Value, key: &str, what: &str) -> Result<String, BenchApiError> {
    v[key].as_str().map(str::to_string).ok_or_else(|| {
        BenchApiError::Verify(format!("{what}: no string {key:?} in the answer: {v}"))
    })
}

/// Creates a network with one IPv4 subnet; its id.
fn network(c: &Client, name: &str, cidr: &str) -> Result<String, BenchApiError> {
    let n = c.call(
        "POST",
        "/v2.0/networks",
        Some(&json!({"network": {"name": name}})),
        201,
    )?;
    let id = s(&n["network"], "id", "network create")?;
    c.call(
        "POST",
        "/v2.0/subnets",
        Some(&json!({"subnet": {"network_id": id, "cidr": cidr, "ip_version": 4}})),
        201,
    )?;
    Ok(id)
}

/// Nearest-rank percentile of sorted durations, in milliseconds.
fn pct_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    ms(sorted[rank - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One client thread's work.
type Work<T> = Box<dyn FnOnce() -> Result<T, BenchApiError> + Send>;

/// Runs each piece of `work` on its own thread, all released at once; the wall-clock time from
/// the release to the last thread's end, and each thread's result in order.
fn in_threads<T: Send + 'static>(work: Vec<Work<T>>) -> Result<(Duration, Vec<T>), BenchApiError> {
    // The threads wait for a read lock on `gate` while this thread holds the write lock.
    let gate = Arc::new(RwLock::new(()));
    let abort = Arc::new(AtomicBool::new(false));
    let held = gate.write().unwrap_or_else(|e| e.into_inner());
    let mut threads = Vec::with_capacity(work.len());
    for (i, w) in work.into_iter().enumerate() {
        let (g, stop) = (gate.clone(), abort.clone());
        let t = std::thread::Builder::new()
            .name(format!("bench-api-{i}"))
            .spawn(move || {
                drop(g.read().unwrap_or_else(|e| e.into_inner()));
                if stop.load(Ordering::Acquire) {
                    return Err(BenchApiError::Verify("aborted".into()));
                }
                w()
            });
        match t {
            Ok(t) => threads.push(t),
            Err(e) => {
                abort.store(true, Ordering::Release);
                drop(held);
                for t in threads {
                    let _ = t.join();
                }
                return Err(BenchApiError::Thread(e));
            }
        }
    }
    let t0 = Instant::now();
    drop(held);
    let mut out = Vec::with_capacity(threads.len());
    let mut first_err = None;
    for t in threads {
        match t.join() {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(BenchApiError::Panicked);
            }
        }
    }
    let wall = t0.elapsed();
    match first_err {
        Some(e) => Err(e),
        None => Ok((wall, out)),
    }
}

/// Latencies of a mixed-load thread, each with its request kind (an index of [`MIXED_KINDS`]).
type Timed = Vec<(usize, Duration)>;

/// A port a client thread created: (id, network id, current name).
type Owned = Vec<(String, String, String)>;

fn bench_creates(
    env: &Env,
    args: &BenchApiArgs,
    nets: &[String],
) -> Result<(CreateResult, Vec<Owned>), BenchApiError> {
    let timeout = Duration::from_secs(args.timeout);
    let clients = args.clients as usize;
    let total = args.ports as usize;
    let mut work: Vec<Work<(Vec<Duration>, Owned)>> = Vec::new();
    for t in 0..clients {
        let c = env.client(timeout);
        let nets = nets.to_vec();
        // Thread t creates ports t, t + clients, t + 2 * clients, ...
        work.push(Box::new(move || {
            let mut lat = Vec::new();
            let mut owned = Vec::new();
            for i in (t..total).step_by(clients) {
                let net = &nets[i % nets.len()];
                let name = format!("bench-{i}");
                let body = json!({"port": {"network_id": net, "name": name}});
                let t0 = Instant::now();
                let v = c.call("POST", "/v2.0/ports", Some(&body), 201)?;
                lat.push(t0.elapsed());
                owned.push((s(&v["port"], "id", "port create")?, net.clone(), name));
            }
            Ok((lat, owned))
        }));
    }
    let (wall, per) = in_threads(work)?;
    let mut lat: Vec<Duration> = Vec::with_capacity(total);
    let mut owned = Vec::with_capacity(clients);
    for (l, o) in per {
        lat.extend(l);
        owned.push(o);
    }
    lat.sort();
    let secs = wall.as_secs_f64();
    Ok((
        CreateResult {
            ports: args.ports,
            secs,
            port_creates_per_s: total as f64 / secs,
            p50_ms: pct_ms(&lat, 0.50),
            p99_ms: pct_ms(&lat, 0.99),
            max_ms: lat.last().map_or(0.0, |d| ms(*d)),
        },
        owned,
    ))
}

fn bench_mixed(
    env: &Env,
    args: &BenchApiArgs,
    owned: Vec<Owned>,
) -> Result<MixedResult, BenchApiError> {
    let timeout = Duration::from_secs(args.timeout);
    let clients = owned.len();
    let total = args.requests as usize;
    let mut work: Vec<Work<(Timed, u32)>> = Vec::new();
    for (t, mut mine) in owned.into_iter().enumerate() {
        let c = env.client(timeout);
        let count = total / clients + usize::from(t < total % clients);
        work.push(Box::new(move || {
            let mut lat = Vec::with_capacity(count);
            let mut writes = 0;
            for k in 0..count {
                let j = (k / 4) % mine.len();
                let (id, net, name) = &mine[j];
                let t0 = Instant::now();
                match k % 4 {
                    0 => {
                        let q: String = form_urlencoded::Serializer::new(String::new())
                            .append_pair("network_id", net)
                            .append_pair("name", name)
                            .finish();
                        let v = c.call("GET", &format!("/v2.0/ports?{q}"), None, 200)?;
                        lat.push((k % 4, t0.elapsed()));
                        let found: Vec<&str> = v["ports"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|p| p["id"].as_str()).collect())
                            .unwrap_or_default();
                        if found != [id.as_str()] {
                            return Err(BenchApiError::Verify(format!(
                                "listing ports named {name:?} found {found:?}, not [{id:?}]"
                            )));
                        }
                    }
                    1 => {
                        c.call("GET", &format!("/v2.0/ports/{id}"), None, 200)?;
                        lat.push((k % 4, t0.elapsed()));
                    }
                    2 => {
                        c.call("GET", &format!("/v2.0/networks/{net}"), None, 200)?;
                        lat.push((k % 4, t0.elapsed()));
                    }
                    _ => {
                        let new = format!("bench-{t}-{k}");
                        let body = json!({"port": {"name": new}});
                        let v = c.call("PUT", &format!("/v2.0/ports/{id}"), Some(&body), 200)?;
                        lat.push((k % 4, t0.elapsed()));
                        if v["port"]["name"] != new.as_str() {
                            return Err(BenchApiError::Verify(format!(
                                "renaming port {id} answered {v}"
                            )));
                        }
                        writes += 1;
                        mine[j].2 = new;
                    }
                }
            }
            Ok((lat, writes))
        }));
    }
    let (wall, per) = in_threads(work)?;
    let mut lat = Vec::with_capacity(total);
    let mut by_kind: [Vec<Duration>; 4] = Default::default();
    let mut writes = 0;
    for (l, w) in per {
        for (k, d) in l {
            lat.push(d);
            by_kind[k].push(d);
        }
        writes += w;
    }
    lat.sort();
    let kinds = MIXED_KINDS
        .iter()
        .zip(by_kind.iter_mut())
        .map(|(name, l)| {
            l.sort();
            KindResult {
                kind: name.to_string(),
                requests: l.len() as u32,
                p50_ms: pct_ms(l, 0.50),
                p99_ms: pct_ms(l, 0.99),
            }
        })
        .collect();
    let secs = wall.as_secs_f64();
    Ok(MixedResult {
        requests: lat.len() as u32,
        writes,
        secs,
        api_requests_per_s: lat.len() as f64 / secs,
        p50_ms: pct_ms(&lat, 0.50),
        p99_ms: pct_ms(&lat, 0.99),
        kinds,
    })
}

/// The sender VM's port: MAC and IPv4 address.
struct Sender {
    mac: [u8; 6],
    ip: Ipv4Addr,
}

fn mac_ip(port: &Value, what: &str) -> Result<([u8; 6], Ipv4Addr), BenchApiError> {
    let bad = |why: &str| BenchApiError::Verify(format!("{what}: {why}: {port}"));
    let mac: strato_tenant::model::MacAddr = s(port, "mac_address", what)?
        .parse()
        .map_err(|_| bad("bad mac_address"))?;
    let ip = port["fixed_ips"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|f| f["ip_address"].as_str())
        .and_then(|a| a.parse::<Ipv4Addr>().ok())
        .ok_or_else(|| bad("no IPv4 fixed IP"))?;
    Ok((mac.0, ip))
}

/// A UDP frame from the sender to `dst`.
fn frame(src: &Sender, dst_mac: [u8; 6], dst_ip: Ipv4Addr) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(src.mac, dst_mac)
        .ipv4(src.ip.octets(), dst_ip.octets(), 64)
        .udp(40_000, 5_000);
    let payload = [0x5a; 18];
    let mut out = Vec::with_capacity(b.size(payload.len()));
    // Writing into a Vec cannot fail.
    let _ = b.write(&mut out, &payload);
    out
}

/// One sample: creates a port bound to `iface` and returns (create time, first packet time,
/// frames sent).
fn first_packet_once(
    env: &Env,
    c: &Client,
    net: &str,
    snd: &Sender,
    iface: &MemIface,
    timeout: Duration,
) -> Result<(Duration, Duration, u32), BenchApiError> {
    iface.out.drain();
    let body = json!({"port": {
        "network_id": net,
        "name": format!("vm-{}", iface.name),
        "binding:host_id": HOST,
        "binding:profile": {"interface": iface.name, "kind": "veth"},
    }});
    let t_req = Instant::now();
    let v = c.call("POST", "/v2.0/ports", Some(&body), 201)?;
    let t0 = Instant::now();
    let create = t0 - t_req;
    let (mac, ip) = mac_ip(&v["port"], "bound port create")?;
    let f = frame(snd, mac, ip);
    let mut next_send = t0;
    let mut sent = 0u32;
    loop {
        let now = Instant::now();
        if now >= next_send {
            if env.sender_in.push(&f).is_ok() {
                sent += 1;
            }
            next_send += SEND_EVERY;
        }
        while let Some(got) = iface.out.pop() {
            if got == f {
                return Ok((create, t0.elapsed(), sent));
            }
        }
        if now - t0 > timeout {
            return Err(BenchApiError::Timeout {
                what: format!(
                    "the first frame to the port on {} ({} frames sent)",
                    iface.name, sent
                ),
                secs: timeout.as_secs(),
            });
        }
        std::thread::yield_now();
    }
}

fn bench_first_packet(
    env: &Env,
    c: &Client,
    args: &BenchApiArgs,
    progress: &mut dyn FnMut(&str),
) -> Result<FirstPacketResult, BenchApiError> {
    let timeout = Duration::from_secs(args.timeout);
    let net = network(c, "first-packet", "10.200.0.0/16")?;
    let v = c.call(
        "POST",
        "/v2.0/ports",
        Some(&json!({"port": {
            "network_id": net,
            "name": "sender",
            "binding:host_id": HOST,
            "binding:profile": {"interface": "snd", "kind": "veth"},
        }})),
        201,
    )?;
    let (mac, ip) = mac_ip(&v["port"], "sender port create")?;
    let snd = Sender { mac, ip };
    // Warm-up: also waits until the agent has caught up with everything created so far.
    let (_, warm, _) = first_packet_once(env, c, &net, &snd, &env.warmup, timeout)?;
    progress(&format!("first packet: warm-up {:.2} ms", ms(warm)));
    let mut lat = Vec::with_capacity(env.pool.len());
    let mut creates = Vec::with_capacity(env.pool.len());
    let mut frames = 0u64;
    for (i, iface) in env.pool.iter().enumerate() {
        let (cr, d, sent) = first_packet_once(env, c, &net, &snd, iface, timeout)?;
        lat.push(d);
        creates.push(cr);
        frames += u64::from(sent);
        if (i + 1) % 50 == 0 && i + 1 < env.pool.len() {
            let mut so_far = lat.clone();
            so_far.sort();
            progress(&format!(
                "first packet: {} of {}: p50 {:.2} ms so far",
                i + 1,
                env.pool.len(),
                pct_ms(&so_far, 0.5)
            ));
        }
    }
    lat.sort();
    creates.sort();
    Ok(FirstPacketResult {
        samples: lat.len() as u32,
        p50_ms: pct_ms(&lat, 0.50),
        p99_ms: pct_ms(&lat, 0.99),
        max_ms: lat.last().map_or(0.0, |d| ms(*d)),
        mean_frames_sent: frames as f64 / lat.len().max(1) as f64,
        create_p50_ms: pct_ms(&creates, 0.50),
        warmup_ms: ms(warm),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(pct_ms(&v, 0.5), 100.0);
        assert_eq!(pct_ms(&v, 0.99), 198.0);
        assert_eq!(pct_ms(&v[..1], 0.99), 1.0);
        assert_eq!(pct_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn bad_arguments_are_refused() {
        let a = BenchApiArgs {
            ports: 2,
            clients: 4,
            ..BenchApiArgs::default()
        };
        assert!(matches!(check_args(&a), Err(BenchApiError::Args(_))));
        let a = BenchApiArgs {
            first_packet: 0,
            ..BenchApiArgs::default()
        };
        assert!(matches!(check_args(&a), Err(BenchApiError::Args(_))));
        check_args(&BenchApiArgs::default()).unwrap();
    }
}
