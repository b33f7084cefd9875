//! `strato run --config FILE`: the daemon. It opens the configured ports (AF_XDP on veths and
//! NICs, taps for VMs), starts one pinned worker thread per worker core and the controller
//! thread, turns the bridge into a MAC-learning switch in fail mode `standalone`, serves
//! `strato ctl` on the control socket, and runs in the foreground until SIGINT or SIGTERM.
//!
//! Contract:
//! - Config errors are reported with the file, line and field, and the daemon does not start.
//! - Start-up errors (not root, interface missing, AF_XDP unsupported, core out of range) say
//!   what to do and exit non-zero; nothing is left behind.
//! - At run time a bad `ctl` request gets an error and changes nothing; the daemon keeps serving
//!   the ports it has. A port whose interface disappears goes down (logged, counted, shown by
//!   `ctl show`); the others keep forwarding.
//! - On SIGINT/SIGTERM: the control socket is removed, workers stop, every port is closed
//!   (AF_XDP sockets detach their XDP programs, taps strato created are deleted).

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strato_ctl::{
    self as ctl, DpFlowReport, DpFlowsReport, FlowReport, FlowsReport, PortReport, PortSpec,
    PortStats, Request, ShowReport, StatsReport, WorkerReport, WorkerStats,
};
use strato_datapath::port::afxdp::{AfXdpConfig, AfXdpPort, XdpMode};
use strato_datapath::port::tap::{TapConfig, TapPort};
use strato_datapath::port::{Port, PortKind};
use strato_datapath::stats::DropReason;
use strato_datapath::worker::{IdlePolicy, WorkerConfig};
use strato_flowtable::pipeline::{Pipeline, PortEnv};
use strato_flowtable::PortNo;
use strato_overlay::agent::config::AgentConfigError;
use strato_switch::controller::{start, ControlError, ControllerHandle};
use strato_switch::learning::Learning;
use strato_switch::ofchannel::{ControllerOpenFlow, FailMode, OfChannelError, OfConfig, OfSwitch};

/// Default control socket.
pub const DEFAULT_SOCKET: &str = "/run/strato/strato.sock";

/// The config file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[daemon]`.
    #[serde(default)]
    pub daemon: DaemonSection,
    /// `[bridge]`.
    #[serde(default)]
    pub bridge: BridgeSection,
    /// `[[port]]`.
    #[serde(default, rename = "port")]
    pub ports: Vec<PortSpec>,
    /// `[api]`: the tenant REST API (Neutron v2.0, Net Objects) and its SQLite store; absent:
    /// no API.
    #[serde(default)]
    pub api: Option<strato_tenant::TenantConfig>,
    /// `[tenant]`: this host's part in the tenant overlay (underlay, model source); absent:
    /// no tenant networks on this bridge.
    #[serde(default)]
    pub tenant: Option<strato_overlay::agent::config::AgentConfig>,
}

/// `[daemon]`: process-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    /// Where `strato ctl` finds the daemon.
    #[serde(default = "default_socket")]
    pub control_socket: PathBuf,
    /// State directory (created if missing).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// error | warn | info | debug | trace.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Core for the controller thread (default 0).
    #[serde(default)]
    pub controller_core: Option<usize>,
    /// Cores for worker threads, one worker each (default: every core but the controller's;
    /// on a one-core machine, core 0).
    #[serde(default)]
    pub worker_cores: Option<Vec<usize>>,
    /// Busy-poll workers (lowest latency, a full core each); default: back off when idle.
    #[serde(default)]
    pub busy_poll: bool,
    /// OpenFlow 1.0/1.3 listeners for clients such as `ovs-ofctl -O OpenFlow13`, e.g.
    /// `["ptcp:6653:127.0.0.1", "punix:/run/strato/br0.mgmt"]` (default: none).
    #[serde(default)]
    pub openflow_listen: Vec<String>,
}

impl Default for DaemonSection {
    fn default() -> Self {
        DaemonSection {
            control_socket: default_socket(),
            state_dir: default_state_dir(),
            log_level: default_log_level(),
            controller_core: None,
            worker_cores: None,
            busy_poll: false,
            openflow_listen: Vec::new(),
        }
    }
}

fn default_socket() -> PathBuf {
    PathBuf::from(DEFAULT_SOCKET)
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/strato")
}
fn default_log_level() -> String {
    "info".into()
}

/// `[bridge]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSection {
    /// Bridge name.
    #[serde(default = "default_bridge")]
    pub name: String,
    /// standalone | secure.
    #[serde(default)]
    pub fail_mode: FailMode,
    /// Seconds before a silent MAC address is forgotten.
    #[serde(default = "default_aging")]
    pub mac_aging_s: u16,
    /// External OpenFlow controllers, `tcp:HOST[:PORT]` (default port 6653); strato connects
    /// to each and reconnects with backoff.
    #[serde(default)]
    pub controllers: Vec<String>,
    /// Datapath id reported to OpenFlow controllers (default 1).
    #[serde(default = "default_dpid")]
    pub datapath_id: u64,
}

fn default_dpid() -> u64 {
    1
}

impl Default for BridgeSection {
    fn default() -> Self {
        BridgeSection {
            name: default_bridge(),
            fail_mode: FailMode::Standalone,
            mac_aging_s: default_aging(),
            controllers: Vec::new(),
            datapath_id: default_dpid(),
        }
    }
}

fn default_bridge() -> String {
    "br0".into()
}
fn default_aging() -> u16 {
    300
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The config file is not a valid config.
    #[error("{path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line or section and field.
        source: ConfigError,
    },
    /// Not running as root.
    #[error("strato run needs root (AF_XDP and tap ports need CAP_NET_ADMIN, CAP_BPF and CAP_SYS_ADMIN); run it as root")]
    NotRoot,
    /// A configured port (or the tenant underlay) cannot be opened.
    #[error("{0}")]
    Port(#[from] PortOpenError),
    /// The controller or a worker failed.
    #[error("{0}")]
    Control(#[from] ControlError),
    /// The control socket cannot be served.
    #[error("control socket: {0}")]
    Ctl(#[from] ctl::CtlError),
    /// SIGINT/SIGTERM handlers cannot be installed.
    #[error("cannot handle signals: {0}")]
    Signals(#[source] std::io::Error),
    /// `[daemon] state_dir` cannot be created.
    #[error("cannot create state_dir {path}: {source}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The OpenFlow channel refused `[bridge] controllers`.
    #[error("{0}")]
    Controllers(#[source] OfChannelError),
    /// An `openflow_listen` listener cannot be started.
    #[error("openflow_listen {addr}: {source}")]
    Listen {
        /// The address as configured.
        addr: String,
        /// The error.
        source: OfChannelError,
    },
    /// The tenant API's store cannot be opened.
    #[error("[api] store {db}: {source}")]
    ApiStore {
        /// The database file.
        db: PathBuf,
        /// The error.
        source: strato_tenant::service::OpenError,
    },
    /// The tenant API cannot listen.
    #[error("[api] listen {listen}: {source}")]
    ApiListen {
        /// The configured address.
        listen: std::net::SocketAddr,
        /// The error.
        source: strato_tenant::api::StartError,
    },
    /// `tenant.server` cannot be followed.
    #[error("tenant.server {url}: {source}")]
    TenantServer {
        /// The configured server.
        url: String,
        /// The error.
        source: strato_overlay::agent::remote::RemoteError,
    },
    /// `[tenant]` has neither a server to follow nor an `[api]` beside it.
    #[error("[tenant] has no model source: set tenant.server or add [api]")]
    NoModelSource,
    /// The underlay port has no MAC address.
    #[error("tenant.underlay {0}: cannot read its MAC address")]
    UnderlayMac(String),
}

/// What is wrong with config text. TOML and serde errors name the line and the field; the
/// checks after them name the section (or `[[port]]` by its number) and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML, or a field serde refuses (unknown, missing, of the wrong type).
    #[error("{}", .0.to_string().trim_end())]
    Toml(#[from] toml::de::Error),
    /// `[tenant]` is inconsistent.
    #[error("{0}")]
    Tenant(#[from] AgentConfigError),
    /// A `[[port]]` is the tenant underlay, which the agent opens itself.
    #[error(
        "[[port]] {0:?} is tenant.underlay: the tenant agent opens the underlay itself; remove \
         the [[port]]"
    )]
    UnderlayIsPort(String),
    /// `[bridge] controllers` beside `[tenant]`.
    #[error(
        "[bridge] controllers and [tenant] exclude each other: the tenant compiler owns the \
         bridge's rules"
    )]
    ControllersWithTenant,
    /// `[daemon] log_level` is not a level.
    #[error("[daemon] log_level = {0:?}: use error, warn, info, debug or trace")]
    LogLevel(String),
    /// `[daemon] controller_core` is not a core of this machine.
    #[error("[daemon] controller_core = {core} is out of range: this machine has {cores}")]
    ControllerCore {
        /// The configured core.
        core: usize,
        /// This machine's cores.
        cores: Cores,
    },
    /// `[daemon] worker_cores = []`.
    #[error("[daemon] worker_cores is empty: give at least one core, or leave it out")]
    NoWorkerCores,
    /// `[daemon] worker_cores` has a core this machine does not have.
    #[error("[daemon] worker_cores has core {core}, out of range: this machine has {cores}")]
    WorkerCore {
        /// The configured core.
        core: usize,
        /// This machine's cores.
        cores: Cores,
    },
    /// `[daemon] worker_cores` has a core twice.
    #[error("[daemon] worker_cores lists a core twice")]
    WorkerCoreTwice,
    /// An `openflow_listen` entry is a controller address (`tcp:`).
    #[error(
        "[daemon] openflow_listen {0:?}: listeners are ptcp:[PORT][:IP] or punix:PATH (tcp: \
         goes in [bridge] controllers)"
    )]
    ListenerIsController(String),
    /// A `controllers` entry is a listener address (`ptcp:`, `punix:`).
    #[error(
        "[bridge] controllers {0:?}: controllers are tcp:HOST[:PORT] (ptcp:/punix: go in \
         [daemon] openflow_listen)"
    )]
    ControllerIsListener(String),
    /// An `openflow_listen` entry is no OpenFlow address.
    #[error("[daemon] openflow_listen {addr:?}: {source}")]
    BadListener {
        /// The entry.
        addr: String,
        /// Why.
        source: OfChannelError,
    },
    /// A `controllers` entry is no OpenFlow address.
    #[error("[bridge] controllers {addr:?}: {source}")]
    BadController {
        /// The entry.
        addr: String,
        /// Why.
        source: OfChannelError,
    },
    /// `[api]` is inconsistent.
    #[error("[api]: {0}")]
    Api(#[source] strato_tenant::config::ConfigError),
    /// A `[[port]]` is refused by [`PortSpec::validate`].
    #[error("[[port]] #{number} ({name}): {source}")]
    Port {
        /// Its number in the file, from 1.
        number: usize,
        /// Its name.
        name: String,
        /// Why.
        source: ctl::PortSpecError,
    },
    /// Two `[[port]]`s have one name.
    #[error("[[port]] #{number}: port {name} is configured twice")]
    PortTwice {
        /// The second one's number in the file, from 1.
        number: usize,
        /// The name.
        name: String,
    },
    /// Two `[[port]]`s have one `ofport`.
    #[error("[[port]] #{number} ({name}): ofport {ofport} is already used by another port")]
    OfportTwice {
        /// The second one's number in the file, from 1.
        number: usize,
        /// Its name.
        name: String,
        /// The port number.
        ofport: u32,
    },
}

/// This machine's cores, as config errors name them: `core 0` or `cores 0-N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cores(pub usize);

impl std::fmt::Display for Cores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 | 1 => f.write_str("core 0"),
            n => write!(f, "cores 0-{}", n - 1),
        }
    }
}

/// A port's interface cannot be opened (the configured ports at start, `add-port`, and the
/// interfaces the tenant agent attaches).
#[derive(Debug, displaydoc::Display, thiserror::Error)]
pub enum PortOpenError {
    /// port {name}: {source}
    AfXdp {
        /// The port.
        name: String,
        /// What failed, and what to do.
        source: strato_datapath::port::afxdp::AfXdpError,
    },
    /// port {name}: {source}
    Tap {
        /// The port.
        name: String,
        /// What failed, and what to do.
        source: strato_datapath::port::tap::TapError,
    },
}

/// Why a `strato ctl` request failed; the client gets the message (and the daemon keeps
/// serving).
#[derive(Debug, displaydoc::Display, thiserror::Error)]
pub enum RequestError {
    /// The port spec is refused before the kernel is asked.
    #[displaydoc("{0}")]
    Spec(#[from] ctl::PortSpecError),
    /// The port's interface cannot be opened.
    #[displaydoc("{0}")]
    Open(#[from] PortOpenError),
    /// The controller failed.
    #[displaydoc("{0}")]
    Control(#[from] ControlError),
    /// port {0} already exists (del-port it first)
    PortExists(String),
    /// ofport {0} is already in use
    OfportInUse(PortNo),
    /// no port named {0}
    NoPort(String),
    /// internal error: port lock poisoned
    LockPoisoned,
    /// internal error: the port vanished while being added
    Vanished,
    /// internal error: cannot encode the result: {0}
    Encode(#[from] serde_json::Error),
}

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<Config, DaemonError> {
    let text = std::fs::read_to_string(path).map_err(|source| DaemonError::Read {
        path: path.into(),
        source,
    })?;
    parse(&text).map_err(|source| DaemonError::Config {
        path: path.into(),
        source,
    })
}

/// Parses and checks config text (errors name the line and the field).
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let cfg: Config = toml::from_str(text)?;
    validate(&cfg, cores())?;
    Ok(cfg)
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn validate(cfg: &Config, ncores: usize) -> Result<(), ConfigError> {
    let d = &cfg.daemon;
    if let Some(t) = &cfg.tenant {
        t.validate(cfg.api.is_some())?;
        if cfg.ports.iter().any(|p| p.name == t.underlay) {
            return Err(ConfigError::UnderlayIsPort(t.underlay.clone()));
        }
        if !cfg.bridge.controllers.is_empty() {
            return Err(ConfigError::ControllersWithTenant);
        }
    }
    if !["error", "warn", "info", "debug", "trace"].contains(&d.log_level.as_str()) {
        return Err(ConfigError::LogLevel(d.log_level.clone()));
    }
    let cores = Cores(ncores);
    if let Some(core) = d.controller_core {
        if core >= ncores {
            return Err(ConfigError::ControllerCore { core, cores });
        }
    }
    if let Some(w) = &d.worker_cores {
        if w.is_empty() {
            return Err(ConfigError::NoWorkerCores);
        }
        if let Some(&core) = w.iter().find(|&&c| c >= ncores) {
            return Err(ConfigError::WorkerCore { core, cores });
        }
        let mut s = w.clone();
        s.sort_unstable();
        s.dedup();
        if s.len() != w.len() {
            return Err(ConfigError::WorkerCoreTwice);
        }
    }
    // Listeners are passive (ptcp:/punix:), controllers active (tcp:); each list refuses the
    // other's kind and says where it goes.
    type WrongKind = fn(String) -> ConfigError;
    type Unparsed = fn(String, OfChannelError) -> ConfigError;
    let lists: [(&Vec<String>, bool, WrongKind, Unparsed); 2] = [
        (
            &d.openflow_listen,
            false,
            ConfigError::ListenerIsController,
            |addr, source| ConfigError::BadListener { addr, source },
        ),
        (
            &cfg.bridge.controllers,
            true,
            ConfigError::ControllerIsListener,
            |addr, source| ConfigError::BadController { addr, source },
        ),
    ];
    for (list, want_tcp, wrong_kind, unparsed) in lists {
        for a in list {
            match strato_switch::ofchannel::parse_target(a) {
                Ok(t) if matches!(t, strato_switch::ofchannel::Target::Tcp(..)) != want_tcp => {
                    return Err(wrong_kind(a.clone()))
                }
                Ok(_) => {}
                Err(e) => return Err(unparsed(a.clone(), e)),
            }
        }
    }
    if let Some(api) = &cfg.api {
        api.validate().map_err(ConfigError::Api)?;
    }
    let mut names = std::collections::HashSet::new();
    let mut nos = std::collections::HashSet::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let (number, name) = (i + 1, p.name.clone());
        p.validate().map_err(|source| ConfigError::Port {
            number,
            name: name.clone(),
            source,
        })?;
        if !names.insert(p.name.as_str()) {
            return Err(ConfigError::PortTwice { number, name });
        }
        if let Some(ofport) = p.ofport {
            if !nos.insert(ofport) {
                return Err(ConfigError::OfportTwice {
                    number,
                    name,
                    ofport,
                });
            }
        }
    }
    Ok(())
}

/// The controller and worker cores: (controller, workers).
fn plan_cores(d: &DaemonSection, ncores: usize) -> (usize, Vec<usize>) {
    let ctl = d.controller_core.unwrap_or(0);
    let workers = match &d.worker_cores {
        Some(w) => w.clone(),
        None if ncores == 1 => vec![0],
        None => (0..ncores).filter(|&c| c != ctl).collect(),
    };
    (ctl, workers)
}

/// Opens the kernel side of a port.
pub fn open_port(spec: &PortSpec, no: PortNo) -> Result<Port, PortOpenError> {
    let name = || spec.name.clone();
    let kind = match spec.kind {
        ctl::PortKind::Afxdp => {
            let mut c = AfXdpConfig::new(spec.name.clone());
            c.queue = spec.queue.unwrap_or(0);
            c.mode = match spec.xdp_mode.unwrap_or(ctl::XdpMode::Auto) {
                ctl::XdpMode::Auto => XdpMode::Auto,
                ctl::XdpMode::Native => XdpMode::Native,
                ctl::XdpMode::Skb => XdpMode::Skb,
            };
            PortKind::AfXdp(Box::new(AfXdpPort::open(&c).map_err(|source| {
                PortOpenError::AfXdp {
                    name: name(),
                    source,
                }
            })?))
        }
        ctl::PortKind::Tap => {
            let c = TapConfig {
                name: spec.name.clone(),
                create: spec.create.unwrap_or(true),
            };
            PortKind::Tap(TapPort::open(&c).map_err(|source| PortOpenError::Tap {
                name: name(),
                source,
            })?)
        }
    };
    Ok(Port::new(no, spec.name.clone(), kind))
}

/// State the control-socket handler shares.
struct Shared {
    handle: ControllerHandle,
    bridge: String,
    fail_mode: FailMode,
    cores: Vec<usize>,
    /// Serialises port changes (open + install) so two requests cannot race for a name/number.
    port_lock: Mutex<()>,
    /// Port numbers taken by virtual ports (the tenant VXLAN port).
    reserved: Vec<PortNo>,
}

/// Runs the daemon until SIGINT/SIGTERM.
pub fn run(cfg: Config) -> Result<(), DaemonError> {
    if !is_root() {
        return Err(DaemonError::NotRoot);
    }
    // Signals first: one arriving during start-up must still lead to a clean stop.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(DaemonError::Signals)?;
    }
    init_logging(&cfg.daemon.log_level);
    let state_dir = |source| DaemonError::StateDir {
        path: cfg.daemon.state_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&cfg.daemon.state_dir).map_err(state_dir)?;
    let (ctl_core, worker_cores) = plan_cores(&cfg.daemon, cores());

    // Ports first: a missing interface is a start-up error, before any thread exists.
    let mut ports = Vec::new();
    let mut used: Vec<PortNo> = cfg.ports.iter().filter_map(|p| p.ofport).collect();
    used.extend(cfg.tenant.iter().map(|t| t.tunnel_ofport));
    let underlay_spec = cfg
        .tenant
        .as_ref()
        .map(|t| PortSpec::new(&t.underlay, ctl::PortKind::Afxdp));
    let mut underlay_no = None;
    for spec in cfg.ports.iter().chain(underlay_spec.iter()) {
        let no = spec.ofport.unwrap_or_else(|| next_free(&used));
        used.push(no);
        let port = open_port(spec, no)?;
        tracing::info!(port = %spec.name, ofport = no, kind = spec.kind.as_str(), "port opened");
        if underlay_spec.as_ref().is_some_and(|u| u.name == spec.name) {
            underlay_no = Some(no);
        }
        ports.push(port);
    }

    let mut env = PortEnv::default();
    for p in &ports {
        env.add_port(p.no, true, true);
    }
    let wcfgs: Vec<WorkerConfig> = worker_cores
        .iter()
        .map(|&c| WorkerConfig {
            core: Some(c),
            idle: if cfg.daemon.busy_poll {
                IdlePolicy::BusyPoll
            } else {
                IdlePolicy::Backoff { max_sleep_us: 200 }
            },
            ..WorkerConfig::default()
        })
        .collect();
    let running = start(Pipeline::default(), env, wcfgs)?;
    let handle = running.handle.clone();
    // With tenant networks the compiler owns the rules: nothing is learned.
    let fail_mode = if cfg.tenant.is_some() {
        FailMode::Secure
    } else {
        cfg.bridge.fail_mode
    };
    let aging = cfg.bridge.mac_aging_s;
    let dpid = cfg.bridge.datapath_id;
    let controllers = cfg
        .bridge
        .controllers
        .iter()
        .map(|s| strato_switch::ofchannel::parse_target(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(DaemonError::Controllers)?;
    handle
        .call(move |c| -> Result<(), OfChannelError> {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: ctl_core }) {
                tracing::warn!(core = ctl_core, "could not pin the controller thread");
            }
            for p in ports {
                let w = c.least_loaded_worker();
                c.add_port(w, p);
            }
            // The OpenFlow channel runs the fail mode: learning while no controller is up.
            c.openflow().set_config(OfConfig {
                datapath_id: dpid,
                fail_mode,
                learning: Learning { aging_s: aging },
                probe_interval: strato_switch::ofchannel::PROBE_INTERVAL,
            });
            c.openflow().set_controllers(controllers)?;
            c.run_app::<OfSwitch>();
            Ok(())
        })?
        .map_err(DaemonError::Controllers)?;
    handle.sync()?;

    let shared = Arc::new(Shared {
        handle: handle.clone(),
        bridge: cfg.bridge.name.clone(),
        fail_mode,
        cores: worker_cores.clone(),
        port_lock: Mutex::new(()),
        reserved: cfg.tenant.iter().map(|t| t.tunnel_ofport).collect(),
    });
    if let Some(dir) = cfg.daemon.control_socket.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut of_listeners = Vec::new();
    for addr in &cfg.daemon.openflow_listen {
        let ch = strato_switch::ofchannel::listen(addr, handle.clone()).map_err(|source| {
            DaemonError::Listen {
                addr: addr.clone(),
                source,
            }
        })?;
        tracing::info!(%addr, "OpenFlow listener up");
        of_listeners.push(ch);
    }
    // The tenant API: its store opens (and restores everything) before the API listens.
    let api = match &cfg.api {
        Some(a) => {
            std::fs::create_dir_all(&cfg.daemon.state_dir).map_err(state_dir)?;
            let db = a.db_path_in(&cfg.daemon.state_dir);
            let svc = strato_tenant::TenantService::open(a, &db).map_err(|source| {
                DaemonError::ApiStore {
                    db: db.clone(),
                    source,
                }
            })?;
            let svc = Arc::new(svc);
            let server = strato_tenant::ApiServer::start(a, svc.clone()).map_err(|source| {
                DaemonError::ApiListen {
                    listen: a.listen,
                    source,
                }
            })?;
            tracing::info!(listen = %server.local_addr(), db = %db.display(), "tenant API up");
            Some((server, svc))
        }
        None => None,
    };
    if let (Some(t), Some(underlay)) = (&cfg.tenant, underlay_no) {
        start_agent(&shared, t, underlay, api.as_ref().map(|(_, svc)| svc))?;
    }
    let s2 = shared.clone();
    let server = ctl::serve(
        &cfg.daemon.control_socket,
        Arc::new(move |req| handle_request(&s2, req).map_err(Into::into)),
    )?;
    tracing::info!(
        bridge = %cfg.bridge.name,
        workers = ?worker_cores,
        controller_core = ctl_core,
        socket = %cfg.daemon.control_socket.display(),
        "strato running"
    );

    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    tracing::info!("signal received: stopping");
    drop(server);
    drop(api);
    drop(of_listeners);
    running.stop();
    tracing::info!("stopped: ports closed, XDP programs removed");
    Ok(())
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("strato={level},strato_control={level},warn"))
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

fn next_free(used: &[PortNo]) -> PortNo {
    (1..).find(|n| !used.contains(n)).unwrap_or(1)
}

/// A match as ovs-ofctl prints it (nothing for match-all).
fn match_text(m: &strato_flowtable::Match) -> String {
    if *m == strato_flowtable::Match::CATCH_ALL {
        String::new()
    } else {
        m.to_string()
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, RequestError> {
    Ok(serde_json::to_value(v)?)
}

fn port_report(p: &strato_switch::controller::PortRecord) -> PortReport {
    PortReport {
        no: p.no,
        name: p.name.clone(),
        kind: p.kind.to_string(),
        mode: p.mode.clone(),
        up: p.down_reason.is_none(),
        down_reason: p.down_reason.clone(),
        worker: Some(p.worker),
    }
}

/// Starts the tenant agent: its model source (this daemon's API, or the server it follows),
/// the attach thread, and the agent on the controller thread.
fn start_agent(
    shared: &Arc<Shared>,
    t: &strato_overlay::agent::config::AgentConfig,
    underlay: PortNo,
    svc: Option<&Arc<strato_tenant::TenantService>>,
) -> Result<(), DaemonError> {
    let h = shared.handle.clone();
    let wake: strato_overlay::agent::source::Wake = Arc::new(move || h.wake());
    let source = match (&t.server, svc) {
        (None, Some(svc)) => strato_overlay::agent::source::local(svc, wake),
        (Some(url), _) => {
            let token = t.token.as_deref().unwrap_or_default();
            strato_overlay::agent::remote::follow(url, token, wake).map_err(|source| {
                DaemonError::TenantServer {
                    url: url.clone(),
                    source,
                }
            })?
        }
        (None, None) => return Err(DaemonError::NoModelSource),
    };
    let mac = shared
        .handle
        .call(move |c| {
            c.ports()
                .into_iter()
                .find(|p| p.no == underlay)
                .and_then(|p| p.mac)
        })?
        .ok_or_else(|| DaemonError::UnderlayMac(t.underlay.clone()))?;
    let spec = strato_overlay::agent::AgentSpec {
        host: t.host.clone(),
        underlay,
        underlay_mac: mac,
        tunnel_ofport: t.tunnel_ofport,
        attach: spawn_attacher(shared.clone()),
    };
    let describe = source.describe.clone();
    strato_overlay::agent::install(
        &shared.handle,
        strato_overlay::agent::Agent::new(spec, source),
    )?;
    tracing::info!(host = %t.host, underlay = %t.underlay, ofport = underlay,
        tunnel_ofport = t.tunnel_ofport, source = %describe, "tenant agent up");
    Ok(())
}

/// Opens and adds a port (`strato ctl add-port`, and interfaces the tenant agent attaches):
/// the name must be new, the number free (lowest free one when not given).
fn add_port(
    s: &Shared,
    spec: &PortSpec,
) -> Result<strato_switch::controller::PortRecord, RequestError> {
    let h = &s.handle;
    spec.validate()?;
    let _g = s.port_lock.lock().map_err(|_| RequestError::LockPoisoned)?;
    let name = spec.name.clone();
    let existing = h.call(move |c| {
        c.ports()
            .into_iter()
            .map(|p| (p.no, p.name))
            .collect::<Vec<_>>()
    })?;
    if existing.iter().any(|(_, n)| *n == name) {
        return Err(RequestError::PortExists(name));
    }
    let mut used: Vec<PortNo> = existing.iter().map(|(no, _)| *no).collect();
    used.extend(&s.reserved);
    let no = match spec.ofport {
        Some(no) if used.contains(&no) => return Err(RequestError::OfportInUse(no)),
        Some(no) => no,
        None => next_free(&used),
    };
    let port = open_port(spec, no)?;
    let rec = h
        .call(move |c| {
            let w = c.least_loaded_worker();
            c.add_port(w, port);
            c.update(|_, env| {
                env.add_port(no, true, true);
            });
            c.ports().into_iter().find(|p| p.no == no)
        })?
        .ok_or(RequestError::Vanished)?;
    h.sync()?;
    tracing::info!(port = %spec.name, ofport = no, "port added");
    Ok(rec)
}

/// The thread that attaches interfaces the tenant agent asks for (a tap is created, a veth
/// opened over AF_XDP). Repeated failures of one interface are logged once per distinct error.
fn spawn_attacher(s: Arc<Shared>) -> strato_overlay::agent::AttachFn {
    let (tx, rx) = crossbeam::channel::unbounded::<strato_tenant::model::LocalInterface>();
    let spawned = std::thread::Builder::new()
        .name("strato-attach".into())
        .spawn(move || {
            let mut last_error: std::collections::HashMap<String, String> = Default::default();
            while let Ok(iface) = rx.recv() {
                let kind = match iface.kind {
                    strato_tenant::model::InterfaceKind::Tap => ctl::PortKind::Tap,
                    strato_tenant::model::InterfaceKind::Veth => ctl::PortKind::Afxdp,
                };
                let spec = PortSpec::new(&iface.name, kind);
                match add_port(&s, &spec) {
                    Ok(_) => {
                        last_error.remove(&iface.name);
                    }
                    Err(RequestError::PortExists(_)) => {}
                    Err(e) => {
                        // Logged once per distinct message (what the log would repeat).
                        let e = e.to_string();
                        if last_error.get(&iface.name) != Some(&e) {
                            tracing::warn!(interface = %iface.name, error = %e,
                                "cannot attach a bound interface yet (retrying)");
                            last_error.insert(iface.name.clone(), e);
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(%e, "cannot start the attach thread: bound interfaces stay detached");
    }
    Box::new(move |i| {
        let _ = tx.send(i);
    })
}

fn handle_request(s: &Shared, req: Request) -> Result<serde_json::Value, RequestError> {
    let h = &s.handle;
    match req {
        Request::Show => {
            let (bridge, fail_mode, cores) = (s.bridge.clone(), s.fail_mode, s.cores.clone());
            let report = h.call(move |c| {
                let ports = c.ports();
                ShowReport {
                    bridge,
                    fail_mode: format!("{fail_mode:?}").to_lowercase(),
                    ports: ports.iter().map(port_report).collect(),
                    workers: (0..c.worker_count())
                        .map(|w| WorkerReport {
                            id: w,
                            core: cores.get(w).copied(),
                            ports: ports
                                .iter()
                                .filter(|p| p.worker == w)
                                .map(|p| p.no)
                                .collect(),
                        })
                        .collect(),
                    tenant: c
                        .app::<strato_overlay::agent::Agent>()
                        .map(|a| ctl::TenantReport {
                            source: a.source().to_string(),
                            stats: match serde_json::to_value(a.stats()) {
                                Ok(serde_json::Value::Object(m)) => m,
                                _ => Default::default(),
                            },
                        }),
                }
            })?;
            to_value(&report)
        }
        Request::AddPort(spec) => {
            let rec = add_port(s, &spec)?;
            to_value(&port_report(&rec))
        }
        Request::DelPort { name } => {
            let _g = s.port_lock.lock().map_err(|_| RequestError::LockPoisoned)?;
            let n2 = name.clone();
            let removed = h.call(move |c| {
                let no = c.ports().into_iter().find(|p| p.name == n2).map(|p| p.no)?;
                c.del_port(no);
                c.forget_port(no);
                Some(no)
            })?;
            let Some(no) = removed else {
                return Err(RequestError::NoPort(name));
            };
            h.sync()?;
            tracing::info!(port = %name, ofport = no, "port removed");
            Ok(serde_json::Value::Null)
        }
        Request::DumpFlows => {
            let report = h.call(|c| {
                let now = c.now_ms();
                let mut flows: Vec<FlowReport> = c
                    .pipeline()
                    .rules()
                    .map(|r| FlowReport {
                        table: r.table,
                        priority: r.priority,
                        cookie: r.cookie,
                        duration_s: now.saturating_sub(r.created_ms) as f64 / 1000.0,
                        idle_timeout: r.idle_timeout,
                        hard_timeout: r.hard_timeout,
                        packets: r.packets,
                        bytes: r.bytes,
                        match_: match_text(&r.matching),
                        actions: r.instructions.to_string(),
                    })
                    .collect();
                flows.sort_by(|a, b| {
                    a.table
                        .cmp(&b.table)
                        .then(b.priority.cmp(&a.priority))
                        .then(a.match_.cmp(&b.match_))
                });
                FlowsReport { flows }
            })?;
            to_value(&report)
        }
        Request::DumpDpFlows => {
            let dumps = h.dump_flows()?;
            let mut flows = Vec::new();
            for d in dumps {
                for f in d.flows {
                    flows.push(DpFlowReport {
                        worker: d.worker,
                        match_: match_text(&f.m),
                        actions: strato_flowtable::dpaction::ActionList(&f.actions).to_string(),
                        packets: f.packets,
                        bytes: f.bytes,
                        used_ms_ago: (f.packets > 0).then(|| d.now_ms.saturating_sub(f.used_ms)),
                    });
                }
            }
            to_value(&DpFlowsReport { flows })
        }
        Request::Stats => {
            h.sync()?;
            let report = h.call(|c| {
                let (_, ports) = c.counters();
                StatsReport {
                    ports: ports
                        .into_iter()
                        .map(|(no, name, pc)| PortStats {
                            no,
                            name,
                            rx_packets: pc.rx_packets,
                            rx_bytes: pc.rx_bytes,
                            tx_packets: pc.tx_packets,
                            tx_bytes: pc.tx_bytes,
                            tx_dropped: pc.tx_dropped,
                        })
                        .collect(),
                    workers: (0..c.worker_count())
                        .map(|w| {
                            let wc = c.worker_counters(w);
                            WorkerStats {
                                id: w,
                                rx_packets: wc.rx_packets,
                                emc_hits: wc.emc_hits,
                                smc_hits: wc.smc_hits,
                                megaflow_hits: wc.megaflow_hits,
                                misses: wc.misses,
                                upcalls: wc.upcalls,
                                drops: DropReason::ALL
                                    .iter()
                                    .filter(|r| wc.dropped(**r) > 0)
                                    .map(|r| (r.name().to_string(), wc.dropped(*r)))
                                    .collect(),
                            }
                        })
                        .collect(),
                }
            })?;
            to_value(&report)
        }
    }
}

/// True when running with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let c = parse(
            r#"
[daemon]
control_socket = "/tmp/x.sock"
log_level = "debug"
controller_core = 0
worker_cores = [0]

[bridge]
name = "br-lab"
fail_mode = "secure"
mac_aging_s = 60

[[port]]
name = "veth0"
kind = "afxdp"
ofport = 3
xdp_mode = "skb"

[[port]]
name = "tap0"
kind = "tap"
"#,
        )
        .unwrap();
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.bridge.fail_mode, FailMode::Secure);
        assert_eq!(plan_cores(&c.daemon, 1), (0, vec![0]));
        let d = parse("").unwrap();
        assert_eq!(d.daemon.control_socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(plan_cores(&d.daemon, 4), (0, vec![1, 2, 3]));
    }

    #[test]
    fn config_errors_name_line_and_field() {
        let e = parse("[daemon]\nlog_levle = \"info\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("log_levle"), "{e}");
        let e = parse("[[port]]\nname = \"v0\"\nkind = \"vhost\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("vhost"), "{e}");
        let e = validate(&parse_unchecked("[daemon]\nworker_cores = [7]\n"), 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("core 7") && e.contains("cores 0-1"), "{e}");
        let e = parse(
            "[[port]]\nname = \"v0\"\nkind = \"tap\"\n[[port]]\nname = \"v0\"\nkind = \"tap\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("configured twice"), "{e}");
        let e = parse("[[port]]\nname = \"v0\"\nkind = \"tap\"\nofport = 1\n[[port]]\nname = \"v1\"\nkind = \"tap\"\nofport = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ofport 1"), "{e}");
        let e = parse("[daemon]\nopenflow_listen = [\"tcp:1\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("openflow_listen"), "{e}");
        let e = parse("[daemon]\nlog_level = \"loud\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("log_level"), "{e}");
    }

    #[test]
    fn openflow_and_api_sections() {
        let c = parse(
            "[daemon]\nopenflow_listen = [\"ptcp:6653\", \"punix:/run/x.sock\"]\n[bridge]\ncontrollers = [\"tcp:127.0.0.1:6633\"]\nfail_mode = \"secure\"\n[api]\nlisten = \"127.0.0.1:9697\"\n",
        )
        .unwrap();
        assert_eq!(c.bridge.controllers, vec!["tcp:127.0.0.1:6633".to_string()]);
        assert_eq!(c.api.unwrap().listen.port(), 9697);
        let e = parse("[bridge]\ncontrollers = [\"ptcp:6633\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[bridge] controllers"), "{e}");
        let e = parse("[daemon]\nopenflow_listen = [\"tcp:127.0.0.1:1\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listeners are ptcp"), "{e}");
        let e = parse("[api]\nthreads = 0\n").unwrap_err().to_string();
        assert!(e.contains("[api]"), "{e}");
        let e = parse("[api]\nbogus = 1\n").unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn config_errors_are_typed() {
        assert!(matches!(
            parse("[daemon]\nlog_levle = \"info\"\n"),
            Err(ConfigError::Toml(_))
        ));
        assert!(matches!(
            validate(&parse_unchecked("[daemon]\nworker_cores = [7]\n"), 2),
            Err(ConfigError::WorkerCore {
                core: 7,
                cores: Cores(2)
            })
        ));
        assert!(matches!(
            validate(&parse_unchecked("[daemon]\ncontroller_core = 1\n"), 1),
            Err(ConfigError::ControllerCore { core: 1, .. })
        ));
        assert!(matches!(
            parse("[daemon]\nworker_cores = [0, 0]\n"),
            Err(ConfigError::WorkerCoreTwice)
        ));
        assert!(matches!(
            parse("[daemon]\nopenflow_listen = [\"ptcp:x\"]\n"),
            Err(ConfigError::BadListener { .. })
        ));
        assert!(matches!(
            parse("[bridge]\ncontrollers = [\"udp:1\"]\n"),
            Err(ConfigError::BadController { .. })
        ));
        assert!(matches!(
            parse("[daemon]\nopenflow_listen = [\"tcp:127.0.0.1:1\"]\n"),
            Err(ConfigError::ListenerIsController(_))
        ));
        assert!(matches!(
            parse("[bridge]\ncontrollers = [\"ptcp:6633\"]\n"),
            Err(ConfigError::ControllerIsListener(_))
        ));
        assert!(matches!(
            parse("[[port]]\nname = \"tap0\"\nkind = \"tap\"\nqueue = 1\n"),
            Err(ConfigError::Port { number: 1, .. })
        ));
        // Whole messages, as `strato run --check` prints them after the file name.
        let e = validate(&parse_unchecked("[daemon]\ncontroller_core = 1\n"), 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[daemon] controller_core = 1 is out of range: this machine has core 0"
        );
        let e = parse("[[port]]\nname = \"tap0\"\nkind = \"tap\"\nqueue = 1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "[[port]] #1 (tap0): port tap0: `queue` applies to afxdp ports only"
        );
        let e = parse("[daemon]\nopenflow_listen = [\"tcp:127.0.0.1:1\"]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "[daemon] openflow_listen \"tcp:127.0.0.1:1\": listeners are ptcp:[PORT][:IP] or \
             punix:PATH (tcp: goes in [bridge] controllers)"
        );
        let e = parse("[tenant]\nhost = \"hv1\"\nunderlay = \"ul0\"\n[api]\n[[port]]\nname = \"ul0\"\nkind = \"afxdp\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "[[port]] \"ul0\" is tenant.underlay: the tenant agent opens the underlay itself; \
             remove the [[port]]"
        );
        let e = load(Path::new("/nonexistent/strato.toml")).unwrap_err();
        assert!(matches!(e, DaemonError::Read { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/strato.toml: "),
            "{e}"
        );
        assert_eq!(Cores(1).to_string(), "core 0");
        assert_eq!(Cores(4).to_string(), "cores 0-3");
    }

    #[test]
    fn request_errors_keep_their_messages() {
        assert_eq!(
            RequestError::PortExists("veth0".into()).to_string(),
            "port veth0 already exists (del-port it first)"
        );
        assert_eq!(
            RequestError::OfportInUse(3).to_string(),
            "ofport 3 is already in use"
        );
        assert_eq!(
            RequestError::NoPort("nope".into()).to_string(),
            "no port named nope"
        );
        assert_eq!(
            RequestError::LockPoisoned.to_string(),
            "internal error: port lock poisoned"
        );
        let spec = PortSpec {
            queue: Some(0),
            ..PortSpec::new("tap0", ctl::PortKind::Tap)
        };
        let e = RequestError::from(spec.validate().unwrap_err());
        assert_eq!(
            e.to_string(),
            "port tap0: `queue` applies to afxdp ports only"
        );
        // What a handler error becomes on the wire: its message, unchanged.
        let boxed: ctl::HandlerError = RequestError::NoPort("x".into()).into();
        assert_eq!(boxed.to_string(), "no port named x");
    }

    fn parse_unchecked(t: &str) -> Config {
        toml::from_str(t).unwrap()
    }

    #[test]
    fn ofports_fill_the_lowest_gaps() {
        assert_eq!(next_free(&[]), 1);
        assert_eq!(next_free(&[1, 2, 4]), 3);
    }
}
