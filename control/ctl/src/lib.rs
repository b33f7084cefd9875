//! `strato ctl`: the control-socket protocol between the daemon (`strato run`) and its command
//! line client, the server the daemon runs, the client, and the client's text output.
//!
//! Contract:
//! - Transport: a unix stream socket (default [`DEFAULT_SOCKET`]). Newline-delimited JSON: one
//!   [`Request`] per line, one [`Response`] per line, in order; a connection may carry any
//!   number of requests. Requests are internally tagged: `{"cmd": "show"}`,
//!   `{"cmd": "add_port", "name": "veth0", "kind": "afxdp", "queue": 0}`,
//!   `{"cmd": "del_port", "name": "veth0"}`, `{"cmd": "dump_flows"}`,
//!   `{"cmd": "dump_dp_flows"}`, `{"cmd": "stats"}`.
//! - Responses: `{"ok": true, "result": ...}` or `{"ok": false, "error": "message"}`. The result
//!   of `show` is a [`ShowReport`], of `add_port` a [`PortReport`] (the new port), of `del_port`
//!   `null`, of `dump_flows` a [`FlowsReport`], of `dump_dp_flows` a [`DpFlowsReport`], of
//!   `stats` a [`StatsReport`]. The daemon fills them; this module only carries and renders.
//! - Server ([`serve`]): refuses to start if another daemon answers on the socket, removes a
//!   stale socket file nobody answers on (never a file that is not a socket), makes the socket
//!   mode 0660, serves each connection on its own thread with bounds (connections, line length,
//!   idle timeout; [`ServeOptions`]). A malformed line, an unknown command, bad arguments or a
//!   panicking handler are answered with `ok: false` and the server keeps serving. Dropping the
//!   [`CtlServer`] stops accepting, closes open connections (waiting for requests in flight)
//!   and removes the socket file if it is still the one it created.
//! - Client ([`call`], [`Client`]): errors say what to do ([`CtlError`]); daemon-side errors
//!   come back as [`CtlError::Daemon`] with the daemon's message unchanged.
//! - Command line ([`CtlArgs`], [`main`]): exit 0 on success, 1 when the daemon answered with
//!   an error, 2 when the daemon cannot be reached or understood, or on a usage error.
//!   `--json` prints the raw JSON result.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Where the daemon listens unless configured otherwise (`[daemon] control_socket`).
pub const DEFAULT_SOCKET: &str = "/run/strato/strato.sock";

/// How long the client waits for the daemon's answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest response line the client accepts (dumps of many flows are large).
const CLIENT_MAX_LINE: u64 = 256 << 20;

// ---------------------------------------------------------------------------------------------
// Protocol
// ---------------------------------------------------------------------------------------------

/// One request from `strato ctl` to the daemon (`{"cmd": "show"}` style on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The bridge, its ports and workers. Result: [`ShowReport`].
    Show,
    /// Add a port to the running switch. Result: [`PortReport`] of the new port.
    AddPort(PortSpec),
    /// Remove a port by its interface name. Result: `null`.
    DelPort {
        /// Interface name of the port.
        name: String,
    },
    /// The OpenFlow tables. Result: [`FlowsReport`].
    DumpFlows,
    /// The workers' megaflow caches. Result: [`DpFlowsReport`].
    DumpDpFlows,
    /// Port and worker counters. Result: [`StatsReport`].
    Stats,
}

impl Request {
    /// Every command's wire name, in declaration order.
    pub const COMMANDS: &'static [&'static str] = &[
        "show",
        "add_port",
        "del_port",
        "dump_flows",
        "dump_dp_flows",
        "stats",
    ];

    /// The wire name of this request's command (`"add_port"`), for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Show => "show",
            Request::AddPort(_) => "add_port",
            Request::DelPort { .. } => "del_port",
            Request::DumpFlows => "dump_flows",
            Request::DumpDpFlows => "dump_dp_flows",
            Request::Stats => "stats",
        }
    }
}

/// Kind of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PortKind {
    /// An AF_XDP socket on one queue of a kernel interface (veth, NIC).
    Afxdp,
    /// A tap device (VMs).
    Tap,
}

impl PortKind {
    /// `"afxdp"` or `"tap"`.
    pub fn as_str(self) -> &'static str {
        match self {
            PortKind::Afxdp => "afxdp",
            PortKind::Tap => "tap",
        }
    }
}

impl std::fmt::Display for PortKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an AF_XDP port attaches its XDP program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native (driver) mode if the driver supports it, else generic (SKB) mode.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode only.
    Skb,
}

impl XdpMode {
    /// `"auto"`, `"native"` or `"skb"`.
    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Skb => "skb",
        }
    }
}

impl std::fmt::Display for XdpMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A port to add: the same fields as a `[[port]]` table of the daemon's config file, so the
/// daemon deserializes its config into this type too. Unknown fields are rejected (typos).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// Kernel interface name (`veth0`, `tap3`).
    pub name: String,
    /// `afxdp` or `tap`.
    pub kind: PortKind,
    /// OpenFlow port number; when absent the daemon assigns the lowest free one (1, 2, 3 ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofport: Option<u32>,
    /// afxdp only: XDP attach mode (default `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xdp_mode: Option<XdpMode>,
    /// afxdp only: the interface queue to bind (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<u32>,
    /// tap only: create the tap if it does not exist (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<bool>,
}

/// Highest port number strato accepts (OpenFlow 1.0's OFPP_MAX; workers index ports by
/// number, so numbers stay small).
pub const MAX_OFPORT: u32 = strato_datapath::port::MAX_PORT_NO;

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

impl PortSpec {
    /// A port of `kind` on interface `name` with every option at its default.
    pub fn new(name: impl Into<String>, kind: PortKind) -> PortSpec {
        PortSpec {
            name: name.into(),
            kind,
            ofport: None,
            xdp_mode: None,
            queue: None,
            create: None,
        }
    }

    /// Checks what can be checked without the kernel: the name is a valid interface name,
    /// `ofport` is a usable OpenFlow port number, and options belong to the port's kind.
    /// The error says what to change.
    pub fn validate(&self) -> Result<(), PortSpecError> {
        let n = &self.name;
        if n.is_empty() || n.len() > IFNAME_MAX {
            return Err(PortSpecError::NameLength(n.clone()));
        }
        if n == "."
            || n == ".."
            || n.bytes()
                .any(|b| b == b'/' || b == b':' || b <= b' ' || b == 0x7f)
        {
            return Err(PortSpecError::NameChars(n.clone()));
        }
        if let Some(p) = self.ofport {
            // OpenFlow 1.0's range (1..=0xff00); 1.3 allows more, but workers index by number.
            if p == 0 || p > MAX_OFPORT {
                return Err(PortSpecError::ReservedOfport(p));
            }
        }
        let wrong = |option| {
            Err(PortSpecError::WrongKind {
                port: n.clone(),
                option,
            })
        };
        match self.kind {
            PortKind::Afxdp if self.create.is_some() => wrong(PortOption::Create),
            PortKind::Tap if self.xdp_mode.is_some() => wrong(PortOption::XdpMode),
            PortKind::Tap if self.queue.is_some() => wrong(PortOption::Queue),
            _ => Ok(()),
        }
    }
}

/// An option of a [`PortSpec`] that applies to one kind of port only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortOption {
    /// `create` (tap ports; `--no-create` on the command line).
    Create,
    /// `xdp_mode` (afxdp ports; `--xdp-mode`).
    XdpMode,
    /// `queue` (afxdp ports; `--queue`).
    Queue,
}

impl PortOption {
    /// The key in a `[[port]]` table or a request, in backticks: `` `xdp_mode` ``.
    pub fn config_key(self) -> &'static str {
        match self {
            PortOption::Create => "`create`",
            PortOption::XdpMode => "`xdp_mode`",
            PortOption::Queue => "`queue`",
        }
    }

    /// The `strato ctl add-port` flag that sets it: `--xdp-mode`.
    pub fn flag(self) -> &'static str {
        match self {
            PortOption::Create => "--no-create",
            PortOption::XdpMode => "--xdp-mode",
            PortOption::Queue => "--queue",
        }
    }

    /// The only kind of port it applies to.
    pub fn kind(self) -> PortKind {
        match self {
            PortOption::Create => PortKind::Tap,
            PortOption::XdpMode | PortOption::Queue => PortKind::Afxdp,
        }
    }

    /// Why the other kind has no use for it (empty, or with a leading space).
    fn why(self) -> &'static str {
        match self {
            PortOption::Create => " (an afxdp port binds an existing interface)",
            PortOption::XdpMode | PortOption::Queue => "",
        }
    }
}

/// Why a [`PortSpec`] is refused before the kernel is asked ([`PortSpec::validate`]). The
/// message says what to change; options are named as config keys (`` `queue` ``), or as
/// command-line flags through [`PortSpecError::with_flags`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    /// The name is empty or longer than [`IFNAME_MAX`] bytes.
    #[error(
        "port name `{0}` must be 1 to {max} bytes (a Linux interface name)",
        max = IFNAME_MAX
    )]
    NameLength(String),
    /// The name has a byte Linux refuses in an interface name, or is `.` or `..`.
    #[error(
        "port name `{0}` is not a valid interface name (no '/', ':', spaces or control characters)"
    )]
    NameChars(String),
    /// `ofport` is 0 or above [`MAX_OFPORT`].
    #[error(
        "ofport {0} is reserved; use 1 to {max} (or leave it out to have one assigned)",
        max = MAX_OFPORT
    )]
    ReservedOfport(u32),
    /// An option of the other kind of port.
    #[error("{}", wrong_kind(port, option.config_key(), *option))]
    WrongKind {
        /// The port's name.
        port: String,
        /// The option that does not belong.
        option: PortOption,
    },
}

impl PortSpecError {
    /// The message with options named as `strato ctl add-port` flags (`--queue`) instead of
    /// config keys.
    pub fn with_flags(&self) -> String {
        match self {
            PortSpecError::WrongKind { port, option } => wrong_kind(port, option.flag(), *option),
            e => e.to_string(),
        }
    }
}

fn wrong_kind(port: &str, name: &str, option: PortOption) -> String {
    format!(
        "port {port}: {name} applies to {} ports only{}",
        option.kind(),
        option.why()
    )
}

/// One line of the protocol from the daemon: `{"ok": true, "result": ...}` or
/// `{"ok": false, "error": "..."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result (present, possibly `null`, when `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// What went wrong (present when not `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// A success carrying `result`.
    pub fn ok(result: Value) -> Response {
        Response {
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A failure carrying `error`.
    pub fn err(error: impl Into<String>) -> Response {
        Response {
            ok: false,
            result: None,
            error: Some(error.into()),
        }
    }

    /// The result, or the daemon's error as [`CtlError::Daemon`].
    pub fn into_result(self) -> Result<Value, CtlError> {
        if self.ok {
            Ok(self.result.unwrap_or(Value::Null))
        } else {
            Err(CtlError::Daemon(self.error.unwrap_or_else(|| {
                "the daemon reported an error without a message".into()
            })))
        }
    }

    fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_else(|e| {
            // Only a non-string map key or a failing Serialize impl can get here; answer with
            // an error instead of dropping the connection.
            serde_json::to_vec(&Response::err(format!(
                "internal error: cannot encode the result: {e}"
            )))
            .unwrap_or_else(|_| br#"{"ok":false,"error":"internal error"}"#.to_vec())
        });
        v.push(b'\n');
        v
    }
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// Result of `show`: the bridge, its ports and the workers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShowReport {
    /// Bridge name (`[bridge] name`).
    pub bridge: String,
    /// `standalone` (MAC-learning switch without a controller) or `secure`.
    pub fail_mode: String,
    /// Ports, in OpenFlow port number order.
    pub ports: Vec<PortReport>,
    /// Worker threads.
    pub workers: Vec<WorkerReport>,
    /// The tenant agent, when the daemon has a `[tenant]` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantReport>,
}

/// The tenant agent in [`ShowReport`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantReport {
    /// Where the model comes from: `local` (this daemon's API) or the server's URL.
    pub source: String,
    /// The agent's counters (`strato_control::agent::AgentStats`), by name.
    pub stats: serde_json::Map<String, serde_json::Value>,
}

/// One port in [`ShowReport`] (and the result of `add_port`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PortReport {
    /// OpenFlow port number.
    pub no: u32,
    /// Kernel interface name.
    pub name: String,
    /// `afxdp`, `tap` (or `memory` in tests).
    pub kind: String,
    /// How it is attached: `native` / `skb` for AF_XDP, `-` when not applicable.
    pub mode: String,
    /// Whether the port passes traffic.
    pub up: bool,
    /// Why it does not, when `up` is false (e.g. "interface veth0 does not exist").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_reason: Option<String>,
    /// The worker that polls it (none while it is not attached).
    #[serde(default)]
    pub worker: Option<usize>,
}

/// One worker thread in [`ShowReport`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Worker index.
    pub id: usize,
    /// CPU core it is pinned to (none if unpinned).
    #[serde(default)]
    pub core: Option<usize>,
    /// OpenFlow port numbers it polls.
    pub ports: Vec<u32>,
}

/// Result of `dump_flows`: every OpenFlow flow entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowsReport {
    /// Entries, by table then descending priority.
    pub flows: Vec<FlowReport>,
}

/// One OpenFlow flow entry; `match_` and `actions` are formatted by the daemon in
/// `ovs-ofctl` syntax (`in_port=1,dl_dst=...`, `output:2`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowReport {
    /// Table id.
    pub table: u8,
    /// Priority.
    pub priority: u16,
    /// Cookie.
    pub cookie: u64,
    /// Seconds since it was installed.
    pub duration_s: f64,
    /// Idle timeout in seconds (0: none).
    pub idle_timeout: u16,
    /// Hard timeout in seconds (0: none).
    pub hard_timeout: u16,
    /// Packets matched.
    pub packets: u64,
    /// Bytes matched.
    pub bytes: u64,
    /// The match (JSON key `match`), empty for match-all.
    #[serde(rename = "match")]
    pub match_: String,
    /// The instructions/actions, empty for drop.
    pub actions: String,
}

/// Result of `dump_dp_flows`: the megaflows installed in the workers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpFlowsReport {
    /// Megaflows, grouped by worker.
    pub flows: Vec<DpFlowReport>,
}

/// One megaflow of one worker; `match_` and `actions` formatted by the daemon.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpFlowReport {
    /// Worker that holds it.
    pub worker: usize,
    /// The masked match (JSON key `match`), only fields the mask keeps.
    #[serde(rename = "match")]
    pub match_: String,
    /// Datapath actions.
    pub actions: String,
    /// Packets that hit it.
    pub packets: u64,
    /// Bytes that hit it.
    pub bytes: u64,
    /// Milliseconds since its last hit; none if never hit.
    #[serde(default)]
    pub used_ms_ago: Option<u64>,
}

/// Result of `stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReport {
    /// Per-port counters, in port number order.
    pub ports: Vec<PortStats>,
    /// Per-worker counters.
    pub workers: Vec<WorkerStats>,
}

/// One port's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStats {
    /// OpenFlow port number.
    pub no: u32,
    /// Interface name.
    pub name: String,
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Packets the port could not transmit.
    pub tx_dropped: u64,
}

/// One worker's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Worker index.
    pub id: usize,
    /// Packets received from all its ports.
    pub rx_packets: u64,
    /// Exact-match cache hits.
    pub emc_hits: u64,
    /// Signature-match cache hits.
    pub smc_hits: u64,
    /// Megaflow classifier hits.
    pub megaflow_hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Upcalls sent to the controller.
    pub upcalls: u64,
    /// Drops by reason (`DropReason::name()`), only reasons with a non-zero count.
    pub drops: BTreeMap<String, u64>,
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What can go wrong between `strato ctl` and the daemon.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// no strato daemon at PATH (is `strato run` running? use --socket)
    #[error("no strato daemon at {} (is `strato run` running? use --socket)", .0.display())]
    NoDaemon(PathBuf),
    /// nothing answers on PATH: a stale socket left by a daemon that exited
    #[error(
        "nothing answers on {}: a stale socket left by a daemon that exited (is `strato run` running? use --socket)",
        .0.display()
    )]
    NotListening(PathBuf),
    /// permission denied on PATH: run as root or as a member of the socket's group
    #[error(
        "permission denied on {}: run as root or as a member of the socket's group",
        .0.display()
    )]
    PermissionDenied(PathBuf),
    /// another strato daemon is already serving PATH
    #[error(
        "another strato daemon is already serving {}; stop it or set another `control_socket`",
        .0.display()
    )]
    InUse(PathBuf),
    /// PATH exists and is not a socket
    #[error(
        "{} exists and is not a socket; remove it or set another `control_socket`",
        .0.display()
    )]
    NotSocket(PathBuf),
    /// the daemon at PATH did not answer within the timeout
    #[error("the daemon at {} did not answer within {}s", .0.display(), CLIENT_TIMEOUT.as_secs())]
    Timeout(PathBuf),
    /// control socket PATH: OS error
    #[error("control socket {}: {source}", .path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// the daemon's answer makes no sense (a different strato version?)
    #[error(
        "bad answer from the daemon ({0}); are `strato ctl` and `strato run` the same version?"
    )]
    Protocol(String),
    /// The daemon's own error message, unchanged.
    #[error("{0}")]
    Daemon(String),
    /// A usage error found before contacting the daemon: the port options are inconsistent
    /// (named as the command line's flags).
    #[error("{}", .0.with_flags())]
    Usage(PortSpecError),
}

impl CtlError {
    /// Process exit code for this error: 1 for a daemon-side error, 2 for everything else
    /// (daemon unreachable or not understood, usage).
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Daemon(_) => 1,
            _ => 2,
        }
    }

    fn io(path: &Path, e: std::io::Error) -> CtlError {
        use std::io::ErrorKind as K;
        let path = path.to_path_buf();
        match e.kind() {
            K::NotFound => CtlError::NoDaemon(path),
            K::ConnectionRefused => CtlError::NotListening(path),
            K::PermissionDenied => CtlError::PermissionDenied(path),
            K::WouldBlock | K::TimedOut => CtlError::Timeout(path),
            _ => CtlError::Io { path, source: e },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// What the daemon does with a request: the JSON result or an error, whose message goes to
/// the client unchanged. Called on connection threads, possibly several at once.
pub type Handler = Arc<dyn Fn(Request) -> Result<Value, HandlerError> + Send + Sync>;

/// A handler's error: any error; the client gets its message (`Display`) as
/// [`CtlError::Daemon`].
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Bounds of the server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Connections served at once; more are answered with an error and closed.
    pub max_connections: usize,
    /// Longest request line in bytes (without the newline); a longer one is answered with an
    /// error and the connection is closed.
    pub max_line: usize,
    /// A connection idle (or stuck writing) this long is closed.
    pub timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_connections: 16,
            max_line: 1 << 20,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The running control-socket server. Dropping it stops it and removes the socket file.
pub struct CtlServer {
    path: PathBuf,
    /// (device, inode) of the socket file it created, to remove only its own.
    ident: (u64, u64),
    shared: Arc<Shared>,
    waker: Arc<mio::Waker>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    stop: AtomicBool,
    active: AtomicUsize,
    next_id: AtomicU64,
    /// Open connections (clones of their streams, to shut them down on stop) and threads.
    conns: Mutex<HashMap<u64, UnixStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl CtlServer {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connections being served now.
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }
}

impl Drop for CtlServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            tracing::warn!("control socket: cannot wake the accept thread: {e}");
        }
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for s in lock(&self.shared.conns).values() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for t in threads {
            let _ = t.join();
        }
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == self.ident {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves `handler` on the unix socket `path` with the default bounds (16 connections,
/// 1 MiB lines, 60 s idle timeout). See [`serve_with`].
pub fn serve(path: &Path, handler: Handler) -> Result<CtlServer, CtlError> {
    serve_with(path, handler, ServeOptions::default())
}

/// Serves `handler` on the unix socket `path`: creates the parent directory if missing,
/// refuses if a daemon answers there or the path is not a socket, removes a stale socket,
/// binds, sets mode 0660 and starts the accept thread.
pub fn serve_with(
    path: &Path,
    handler: Handler,
    opts: ServeOptions,
) -> Result<CtlServer, CtlError> {
    let io = |e| CtlError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => return Err(CtlError::NotSocket(path.into())),
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => return Err(CtlError::InUse(path.into())),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::info!("removing stale control socket {}", path.display());
                std::fs::remove_file(path).map_err(io)?;
            }
            Err(e) => return Err(CtlError::io(path, e)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CtlError::io(path, e)),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            // Another daemon bound it between our check and our bind.
            CtlError::InUse(path.into())
        } else {
            CtlError::io(path, e)
        }
    })?;
    // From here on, a failure must not leave our socket file behind.
    let cleanup = |e: CtlError| {
        let _ = std::fs::remove_file(path);
        e
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| cleanup(io(e)))?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| cleanup(io(e)))?;
    listener.set_nonblocking(true).map_err(|e| cleanup(io(e)))?;
    let poll = mio::Poll::new().map_err(|e| cleanup(io(e)))?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE).map_err(|e| cleanup(io(e)))?);
    poll.registry()
        .register(
            &mut mio::unix::SourceFd(&listener.as_raw_fd()),
            LISTENER,
            mio::Interest::READABLE,
        )
        .map_err(|e| cleanup(io(e)))?;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        active: AtomicUsize::new(0),
        next_id: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
        threads: Mutex::new(Vec::new()),
    });
    let accept = {
        let shared = shared.clone();
        let opts = opts.clone();
        std::thread::Builder::new()
            .name("strato-ctl".into())
            .spawn(move || accept_loop(poll, listener, shared, handler, opts))
            .map_err(|e| cleanup(io(e)))?
    };
    Ok(CtlServer {
        path: path.to_path_buf(),
        ident: (meta.dev(), meta.ino()),
        shared,
        waker,
        accept: Some(accept),
    })
}

const LISTENER: mio::Token = mio::Token(0);
const WAKE: mio::Token = mio::Token(1);

fn accept_loop(
    mut poll: mio::Poll,
    listener: UnixListener,
    shared: Arc<Shared>,
    handler: Handler,
    opts: ServeOptions,
) {
    let mut events = mio::Events::with_capacity(8);
    // After an accept error (EMFILE, ENOBUFS ...) the pending connection stays queued and an
    // edge-triggered poll would not report it again: retry on a timer instead.
    let mut retry = false;
    loop {
        let timeout = retry.then_some(Duration::from_millis(100));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                tracing::error!("control socket: poll failed, no longer serving: {e}");
                return;
            }
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        retry = false;
        loop {
            match listener.accept() {
                Ok((stream, _)) => start_connection(stream, &shared, &handler, &opts),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("control socket: accept failed: {e}; retrying");
                    retry = true;
                    break;
                }
            }
        }
    }
}

/// Decrements the active count and unregisters the connection when its thread ends.
struct ConnGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        lock(&self.shared.conns).remove(&self.id);
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn start_connection(
    stream: UnixStream,
    shared: &Arc<Shared>,
    handler: &Handler,
    opts: &ServeOptions,
) {
    // The listener is non-blocking; accepted sockets do not inherit that on Linux, but make
    // sure: the connection threads rely on blocking reads with a timeout.
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(opts.timeout)))
        .and_then(|()| stream.set_write_timeout(Some(opts.timeout)));
    if let Err(e) = setup {
        tracing::warn!("control socket: cannot set up a connection: {e}");
        return;
    }
    if shared.active.load(Ordering::SeqCst) >= opts.max_connections {
        let msg = format!(
            "too many control connections ({} open); try again later",
            opts.max_connections
        );
        let _ = (&stream).write_all(&Response::err(msg).to_line());
        return;
    }
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let clone = match stream.try_clone() {
        Ok(c) => c,
        Err(e) => {
            let _ = (&stream).write_all(&Response::err(format!("daemon: {e}")).to_line());
            return;
        }
    };
    shared.active.fetch_add(1, Ordering::SeqCst);
    lock(&shared.conns).insert(id, clone);
    let guard = ConnGuard {
        shared: shared.clone(),
        id,
    };
    let (handler, opts) = (handler.clone(), opts.clone());
    let spawned = std::thread::Builder::new()
        .name(format!("strato-ctl-{id}"))
        .spawn(move || {
            let _guard = guard;
            serve_connection(stream, &handler, &opts);
        });
    match spawned {
        Ok(t) => {
            let mut threads = lock(&shared.threads);
            threads.retain(|t| !t.is_finished());
            threads.push(t);
        }
        // The closure (and with it the guard and the stream) was dropped: counts are undone.
        Err(e) => tracing::warn!("control socket: cannot start a connection thread: {e}"),
    }
}

fn serve_connection(stream: UnixStream, handler: &Handler, opts: &ServeOptions) {
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match (&mut reader)
            .take(opts.max_line as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(n) => n,
            // Idle timeout, reset, or shutdown by the server's drop: the connection ends.
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let complete = line.last() == Some(&b'\n');
        if !complete && line.len() > opts.max_line {
            let msg = format!(
                "request longer than {} bytes; closing the connection",
                opts.max_line
            );
            let _ = writer.write_all(&Response::err(msg).to_line());
            return;
        }
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if !body.iter().all(u8::is_ascii_whitespace) {
            let resp = answer(body, handler);
            if writer.write_all(&resp.to_line()).is_err() {
                return;
            }
        }
        if !complete {
            return; // EOF after a last line without newline
        }
    }
}

/// Parses one request line and runs the handler on it; every failure becomes an error
/// response with a message for the operator.
fn answer(line: &[u8], handler: &Handler) -> Response {
    let req = match parse_request(line) {
        Ok(r) => r,
        Err(e) => return Response::err(e.to_string()),
    };
    let name = req.name();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(req))) {
        Ok(Ok(v)) => Response::ok(v),
        Ok(Err(e)) => Response::err(e.to_string()),
        Err(_) => {
            tracing::error!("control socket: the handler panicked on `{name}`");
            Response::err(format!(
                "internal error in the daemon while handling `{name}` (see the daemon's log)"
            ))
        }
    }
}

/// Why a request line was refused before the handler saw it ([`parse_request`]): a malformed
/// line, an unknown command and bad arguments are told apart.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The line is not JSON.
    #[error("malformed request (not JSON): {0}")]
    NotJson(#[source] serde_json::Error),
    /// The line is JSON but not an object.
    #[error("malformed request: expected a JSON object")]
    NotObject,
    /// The object has no `cmd`.
    #[error("malformed request: no \"cmd\" field (one of: {})", Request::COMMANDS.join(", "))]
    NoCmd,
    /// `cmd` is not a string.
    #[error("malformed request: \"cmd\" must be a string")]
    CmdNotString,
    /// `cmd` names no command of [`Request::COMMANDS`].
    #[error(
        "unknown command `{0}` (known: {known})",
        known = Request::COMMANDS.join(", ")
    )]
    UnknownCommand(String),
    /// The command is known; its arguments do not fit it.
    #[error("bad arguments to `{cmd}`: {source}")]
    BadArguments {
        /// The command.
        cmd: String,
        /// What serde found wrong.
        source: serde_json::Error,
    },
}

/// Decodes one request line with messages that tell a malformed line, an unknown command and
/// bad arguments apart.
pub fn parse_request(line: &[u8]) -> Result<Request, RequestError> {
    let v: Value = serde_json::from_slice(line).map_err(RequestError::NotJson)?;
    let cmd = match v.get("cmd") {
        Some(Value::String(c)) => c.clone(),
        Some(_) => return Err(RequestError::CmdNotString),
        None if v.is_object() => return Err(RequestError::NoCmd),
        None => return Err(RequestError::NotObject),
    };
    if !Request::COMMANDS.contains(&cmd.as_str()) {
        return Err(RequestError::UnknownCommand(cmd));
    }
    serde_json::from_value(v).map_err(|source| RequestError::BadArguments { cmd, source })
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// A connection to the daemon; several requests may be sent over it.
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the daemon at `path`.
    pub fn connect(path: &Path) -> Result<Client, CtlError> {
        let s = UnixStream::connect(path).map_err(|e| CtlError::io(path, e))?;
        let io = |e| CtlError::io(path, e);
        s.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
        s.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
        let writer = s.try_clone().map_err(io)?;
        Ok(Client {
            path: path.to_path_buf(),
            reader: BufReader::new(s),
            writer,
        })
    }

    /// Sends one request and waits for its response: the result, or the daemon's error as
    /// [`CtlError::Daemon`].
    pub fn call(&mut self, req: &Request) -> Result<Value, CtlError> {
        let mut line = serde_json::to_vec(req).map_err(|e| CtlError::Protocol(e.to_string()))?;
        line.push(b'\n');
        // A daemon that refuses the connection (too many open) answers and hangs up before
        // reading: our write may fail, but its answer is still there to read.
        let written = self.writer.write_all(&line);
        let mut resp = Vec::new();
        let read = (&mut self.reader)
            .take(CLIENT_MAX_LINE)
            .read_until(b'\n', &mut resp);
        let n = match (written, read) {
            (_, Ok(n)) if n > 0 => n,
            (Err(e), _) => return Err(CtlError::io(&self.path, e)),
            (Ok(()), r) => r.map_err(|e| CtlError::io(&self.path, e))?,
        };
        if n == 0 {
            return Err(CtlError::Protocol(
                "the daemon closed the connection without answering".into(),
            ));
        }
        let resp: Response =
            serde_json::from_slice(&resp).map_err(|e| CtlError::Protocol(e.to_string()))?;
        resp.into_result()
    }
}

/// Sends one request to the daemon at `path` on a new connection and returns its result.
pub fn call(path: &Path, req: &Request) -> Result<Value, CtlError> {
    Client::connect(path)?.call(req)
}

// ---------------------------------------------------------------------------------------------
// Text output
// ---------------------------------------------------------------------------------------------

/// A text table: two-space indent, columns two spaces apart, numbers right-aligned, no
/// trailing spaces.
struct Table {
    head: Vec<(&'static str, bool)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns as (title, right-aligned).
    fn new(head: &[(&'static str, bool)]) -> Table {
        Table {
            head: head.to_vec(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String) {
        let mut w: Vec<usize> = self.head.iter().map(|(h, _)| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let titles: Vec<String> = self.head.iter().map(|(h, _)| h.to_string()).collect();
        for r in std::iter::once(&titles).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                let pad = w[i] - c.chars().count();
                line.push_str("  ");
                if self.head[i].1 {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

fn opt(v: Option<usize>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn port_list(ports: &[u32]) -> String {
    if ports.is_empty() {
        return "-".into();
    }
    ports
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn port_state(p: &PortReport) -> String {
    match (p.up, &p.down_reason) {
        (true, _) => "up".into(),
        (false, Some(r)) => format!("down: {r}"),
        (false, None) => "down".into(),
    }
}

/// `show` as text: the bridge line, a port table and a worker table.
pub fn render_show(r: &ShowReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "bridge {} (fail_mode: {}): {} port{}, {} worker{}",
        r.bridge,
        r.fail_mode,
        r.ports.len(),
        if r.ports.len() == 1 { "" } else { "s" },
        r.workers.len(),
        if r.workers.len() == 1 { "" } else { "s" },
    );
    s.push_str("ports:\n");
    let mut t = Table::new(&[
        ("PORT", true),
        ("NAME", false),
        ("KIND", false),
        ("MODE", false),
        ("WORKER", true),
        ("STATE", false),
    ]);
    for p in &r.ports {
        t.row(vec![
            p.no.to_string(),
            p.name.clone(),
            p.kind.clone(),
            p.mode.clone(),
            opt(p.worker),
            port_state(p),
        ]);
    }
    t.render(&mut s);
    s.push_str("workers:\n");
    let mut t = Table::new(&[("WORKER", true), ("CORE", true), ("PORTS", false)]);
    for w in &r.workers {
        t.row(vec![w.id.to_string(), opt(w.core), port_list(&w.ports)]);
    }
    t.render(&mut s);
    if let Some(tr) = &r.tenant {
        let n = |k: &str| tr.stats.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        let _ = writeln!(
            s,
            "tenant: model from {}{}; VTEPs {}/{} resolved; ports {} with rules, {} without; \
             answered arp {}, nd {}, dhcp {}",
            tr.source,
            match tr.stats.get("source_down").and_then(|v| v.as_str()) {
                Some(why) => format!(" (lost: {why})"),
                None => String::new(),
            },
            n("vteps_resolved"),
            n("vteps"),
            n("ports_active"),
            n("ports_skipped"),
            n("arp_replies"),
            n("nd_replies"),
            n("dhcp_replies"),
        );
    }
    s
}

/// The result of `add_port` as one line.
pub fn render_port_added(p: &PortReport) -> String {
    format!(
        "added port {} as ofport {} ({}, mode {}, worker {}, {})\n",
        p.name,
        p.no,
        p.kind,
        p.mode,
        opt(p.worker),
        port_state(p)
    )
}

/// `dump_flows` in `ovs-ofctl dump-flows` style, one flow per line:
/// ` cookie=0x0, duration=12.345s, table=0, n_packets=5, n_bytes=420, idle_timeout=300, priority=10,MATCH actions=ACTIONS`
/// (timeouts only when non-zero, `actions=drop` when there are none).
pub fn render_flows(r: &FlowsReport) -> String {
    let mut s = String::new();
    for f in &r.flows {
        let _ = write!(
            s,
            " cookie={:#x}, duration={:.3}s, table={}, n_packets={}, n_bytes={}, ",
            f.cookie, f.duration_s, f.table, f.packets, f.bytes
        );
        if f.idle_timeout != 0 {
            let _ = write!(s, "idle_timeout={}, ", f.idle_timeout);
        }
        if f.hard_timeout != 0 {
            let _ = write!(s, "hard_timeout={}, ", f.hard_timeout);
        }
        let _ = write!(s, "priority={}", f.priority);
        if !f.match_.is_empty() {
            let _ = write!(s, ",{}", f.match_);
        }
        let actions = if f.actions.is_empty() {
            "drop"
        } else {
            &f.actions
        };
        let _ = writeln!(s, " actions={actions}");
    }
    s
}

/// `dump_dp_flows` in `ovs-appctl dpctl/dump-flows` style, a header per worker, then one
/// megaflow per line: `MATCH, packets:5, bytes:420, used:0.300s, actions:ACTIONS`
/// (`used:never` if never hit, `actions:drop` when there are none).
pub fn render_dpflows(r: &DpFlowsReport) -> String {
    let mut s = String::new();
    let mut workers: Vec<usize> = r.flows.iter().map(|f| f.worker).collect();
    workers.sort_unstable();
    workers.dedup();
    for w in workers {
        let _ = writeln!(s, "flow-dump from worker {w}:");
        for f in r.flows.iter().filter(|f| f.worker == w) {
            let used = match f.used_ms_ago {
                Some(ms) => format!("{}.{:03}s", ms / 1000, ms % 1000),
                None => "never".into(),
            };
            let m = if f.match_.is_empty() {
                "any"
            } else {
                &f.match_
            };
            let a = if f.actions.is_empty() {
                "drop"
            } else {
                &f.actions
            };
            let _ = writeln!(
                s,
                "{m}, packets:{}, bytes:{}, used:{used}, actions:{a}",
                f.packets, f.bytes
            );
        }
    }
    s
}

/// `stats` as text: a port table, a worker table and the drops by worker and reason.
pub fn render_stats(r: &StatsReport) -> String {
    let mut s = String::from("ports:\n");
    let mut t = Table::new(&[
        ("PORT", true),
        ("NAME", false),
        ("RX_PACKETS", true),
        ("RX_BYTES", true),
        ("TX_PACKETS", true),
        ("TX_BYTES", true),
        ("TX_DROPPED", true),
    ]);
    for p in &r.ports {
        t.row(vec![
            p.no.to_string(),
            p.name.clone(),
            p.rx_packets.to_string(),
            p.rx_bytes.to_string(),
            p.tx_packets.to_string(),
            p.tx_bytes.to_string(),
            p.tx_dropped.to_string(),
        ]);
    }
    t.render(&mut s);
    s.push_str("workers:\n");
    let mut t = Table::new(&[
        ("WORKER", true),
        ("RX_PACKETS", true),
        ("EMC_HITS", true),
        ("SMC_HITS", true),
        ("MEGAFLOW_HITS", true),
        ("MISSES", true),
        ("UPCALLS", true),
        ("DROPS", true),
    ]);
    for w in &r.workers {
        t.row(vec![
            w.id.to_string(),
            w.rx_packets.to_string(),
            w.emc_hits.to_string(),
            w.smc_hits.to_string(),
            w.megaflow_hits.to_string(),
            w.misses.to_string(),
            w.upcalls.to_string(),
            w.drops.values().sum::<u64>().to_string(),
        ]);
    }
    t.render(&mut s);
    let mut t = Table::new(&[("WORKER", true), ("REASON", false), ("PACKETS", true)]);
    for w in &r.workers {
        for (reason, n) in w.drops.iter().filter(|(_, n)| **n != 0) {
            t.row(vec![w.id.to_string(), reason.clone(), n.to_string()]);
        }
    }
    if t.rows.is_empty() {
        s.push_str("drops: none\n");
    } else {
        s.push_str("drops:\n");
        t.render(&mut s);
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

/// `strato ctl`: talk to a running `strato run` over its control socket.
#[derive(clap::Args, Debug, Clone)]
pub struct CtlArgs {
    /// The daemon's control socket (`[daemon] control_socket` in its config).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, global = true)]
    pub socket: PathBuf,
    /// Print the daemon's raw JSON result instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub cmd: CtlCmd,
}

/// The `strato ctl` subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum CtlCmd {
    /// Show the bridge, its ports (number, kind, XDP mode, worker, up or why down) and the
    /// workers with their cores.
    Show,
    /// Add a port to the running switch, like a `[[port]]` of the config file.
    ///
    /// Examples: `strato ctl add-port veth0 --kind afxdp --xdp-mode native`,
    /// `strato ctl add-port tap3 --kind tap --ofport 7`.
    AddPort(AddPortArgs),
    /// Remove a port from the running switch (a tap it created is deleted; an interface it
    /// attached to is left, its XDP program removed).
    DelPort {
        /// Interface name of the port.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Print the OpenFlow flow tables, `ovs-ofctl dump-flows` style.
    DumpFlows,
    /// Print the megaflows cached in each worker, `ovs-appctl dpctl/dump-flows` style.
    #[command(name = "dump-dpflows", alias = "dump-dp-flows")]
    DumpDpFlows,
    /// Print port counters, worker cache counters and drops by reason.
    Stats,
}

/// Arguments of `strato ctl add-port`.
#[derive(clap::Args, Debug, Clone)]
pub struct AddPortArgs {
    /// Kernel interface name (an existing veth/NIC for afxdp; the tap's name for tap).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Port kind: an AF_XDP socket on an existing interface, or a tap device.
    #[arg(long, value_enum)]
    pub kind: PortKind,
    /// OpenFlow port number (default: the lowest free one).
    #[arg(long, value_name = "N")]
    pub ofport: Option<u32>,
    /// afxdp only: how to attach the XDP program (default auto: native, else skb).
    #[arg(long, value_enum, value_name = "MODE")]
    pub xdp_mode: Option<XdpMode>,
    /// afxdp only: the interface queue to bind (default 0).
    #[arg(long, value_name = "N")]
    pub queue: Option<u32>,
    /// tap only: fail if the tap does not exist instead of creating it.
    #[arg(long)]
    pub no_create: bool,
}

impl AddPortArgs {
    /// The port spec these arguments describe (not yet validated).
    pub fn spec(&self) -> PortSpec {
        PortSpec {
            name: self.name.clone(),
            kind: self.kind,
            ofport: self.ofport,
            xdp_mode: self.xdp_mode,
            queue: self.queue,
            create: self.no_create.then_some(false),
        }
    }
}

impl CtlCmd {
    /// The request this subcommand sends; a usage error if its arguments are inconsistent.
    pub fn request(&self) -> Result<Request, CtlError> {
        Ok(match self {
            CtlCmd::Show => Request::Show,
            CtlCmd::AddPort(a) => {
                let spec = a.spec();
                spec.validate().map_err(CtlError::Usage)?;
                Request::AddPort(spec)
            }
            CtlCmd::DelPort { name } => Request::DelPort { name: name.clone() },
            CtlCmd::DumpFlows => Request::DumpFlows,
            CtlCmd::DumpDpFlows => Request::DumpDpFlows,
            CtlCmd::Stats => Request::Stats,
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, CtlError> {
    serde_json::from_value(v).map_err(|e| CtlError::Protocol(e.to_string()))
}

/// Renders a request's result as `strato ctl` prints it: pretty JSON with `json`, else text.
pub fn render(req: &Request, result: Value, json: bool) -> Result<String, CtlError> {
    if json {
        let mut s =
            serde_json::to_string_pretty(&result).map_err(|e| CtlError::Protocol(e.to_string()))?;
        s.push('\n');
        return Ok(s);
    }
    Ok(match req {
        Request::Show => render_show(&decode(result)?),
        Request::AddPort(_) => render_port_added(&decode(result)?),
        Request::DelPort { name } => format!("deleted port {name}\n"),
        Request::DumpFlows => render_flows(&decode(result)?),
        Request::DumpDpFlows => render_dpflows(&decode(result)?),
        Request::Stats => render_stats(&decode(result)?),
    })
}

/// Runs `strato ctl` and writes its output to `out` (a closed pipe is not an error).
pub fn run(args: &CtlArgs, out: &mut impl Write) -> Result<(), CtlError> {
    let req = args.cmd.request()?;
    let result = call(&args.socket, &req)?;
    let text = render(&req, result, args.json)?;
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CtlError::Io {
            path: "<stdout>".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// `strato ctl`: runs, prints errors as `strato ctl: ...` on stderr, and returns the exit code
/// (0 ok, 1 daemon-side error, 2 daemon unreachable / not understood / usage).
pub fn main(args: CtlArgs) -> ExitCode {
    match run(&args, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strato ctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;
    use std::time::Instant;

    /// A socket path unique to this test run.
    fn sock(tag: &str) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!(
            "strato-ctl-{}-{n}-{tag}/ctl.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
        p
    }

    /// Removes a test's socket directory when the test ends.
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    /// A handler that records the requests and echoes each back as its result.
    fn echo(seen: Arc<Mutex<Vec<Request>>>) -> Handler {
        Arc::new(move |req: Request| {
            seen.lock().unwrap().push(req.clone());
            match &req {
                Request::DelPort { name } if name == "missing" => {
                    Err(format!("no port named {name}").into())
                }
                Request::DelPort { name } if name == "panic" => panic!("boom"),
                _ => Ok(serde_json::to_value(&req).unwrap()),
            }
        })
    }

    fn all_requests() -> Vec<Request> {
        vec![
            Request::Show,
            Request::AddPort(PortSpec {
                name: "veth0".into(),
                kind: PortKind::Afxdp,
                ofport: Some(3),
                xdp_mode: Some(XdpMode::Native),
                queue: Some(1),
                create: None,
            }),
            Request::AddPort(PortSpec {
                name: "tap0".into(),
                kind: PortKind::Tap,
                ofport: None,
                xdp_mode: None,
                queue: None,
                create: Some(false),
            }),
            Request::DelPort {
                name: "veth0".into(),
            },
            Request::DumpFlows,
            Request::DumpDpFlows,
            Request::Stats,
        ]
    }

    /// Sends raw lines on one connection and returns one parsed response per line.
    fn raw(path: &Path, lines: &[&str]) -> Vec<Response> {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut out = Vec::new();
        for l in lines {
            (&s).write_all(format!("{l}\n").as_bytes()).unwrap();
            let mut resp = String::new();
            r.read_line(&mut resp).unwrap();
            out.push(serde_json::from_str(&resp).unwrap());
        }
        out
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn wire_format() {
        assert_eq!(
            serde_json::to_value(Request::Show).unwrap(),
            json!({"cmd": "show"})
        );
        assert_eq!(
            serde_json::to_value(Request::DumpDpFlows).unwrap(),
            json!({"cmd": "dump_dp_flows"})
        );
        assert_eq!(
            serde_json::to_value(&all_requests()[1]).unwrap(),
            json!({"cmd": "add_port", "name": "veth0", "kind": "afxdp", "ofport": 3,
                   "xdp_mode": "native", "queue": 1})
        );
        assert_eq!(
            serde_json::to_value(Request::DelPort { name: "x".into() }).unwrap(),
            json!({"cmd": "del_port", "name": "x"})
        );
        for r in all_requests() {
            let v = serde_json::to_value(&r).unwrap();
            assert_eq!(v["cmd"], r.name());
            assert!(Request::COMMANDS.contains(&r.name()));
        }
        assert_eq!(Request::COMMANDS.len(), 6);
        assert_eq!(
            serde_json::to_string(&Response::ok(Value::Null)).unwrap(),
            r#"{"ok":true,"result":null}"#
        );
        assert_eq!(
            serde_json::to_string(&Response::err("nope")).unwrap(),
            r#"{"ok":false,"error":"nope"}"#
        );
        let f = FlowReport {
            match_: "in_port=1".into(),
            ..Default::default()
        };
        assert_eq!(serde_json::to_value(&f).unwrap()["match"], "in_port=1");
    }

    #[test]
    fn parse_errors_are_told_apart() {
        let msg = |line: &[u8]| parse_request(line).unwrap_err().to_string();
        let e = parse_request(b"{\"cmd\": \"show\"").unwrap_err();
        assert!(matches!(e, RequestError::NotJson(_)), "{e}");
        assert!(
            e.to_string().starts_with("malformed request (not JSON)"),
            "{e}"
        );
        assert!(matches!(
            parse_request(b"[1]"),
            Err(RequestError::NotObject)
        ));
        assert_eq!(msg(b"[1]"), "malformed request: expected a JSON object");
        assert!(matches!(
            parse_request(b"{\"name\": \"x\"}"),
            Err(RequestError::NoCmd)
        ));
        let e = msg(b"{\"name\": \"x\"}");
        assert!(e.contains("no \"cmd\" field"), "{e}");
        assert!(matches!(
            parse_request(b"{\"cmd\": 3}"),
            Err(RequestError::CmdNotString)
        ));
        let e = msg(b"{\"cmd\": 3}");
        assert!(e.contains("\"cmd\" must be a string"), "{e}");
        let e = parse_request(b"{\"cmd\": \"reboot\"}").unwrap_err();
        assert!(matches!(&e, RequestError::UnknownCommand(c) if c == "reboot"));
        assert_eq!(
            e.to_string(),
            "unknown command `reboot` (known: show, add_port, del_port, dump_flows, dump_dp_flows, stats)"
        );
        let e = parse_request(br#"{"cmd": "add_port", "name": "v", "kind": "vhost"}"#).unwrap_err();
        assert!(matches!(&e, RequestError::BadArguments { cmd, .. } if cmd == "add_port"));
        let e = e.to_string();
        assert!(
            e.starts_with("bad arguments to `add_port`") && e.contains("vhost"),
            "{e}"
        );
        let e = msg(br#"{"cmd": "add_port", "name": "v", "kind": "afxdp", "quue": 1}"#);
        assert!(e.contains("quue"), "{e}");
        let e = msg(br#"{"cmd": "del_port"}"#);
        assert!(e.contains("name"), "{e}");
        let e = msg(br#"{"cmd": "del_port", "name": "a", "force": true}"#);
        assert!(e.contains("force"), "{e}");
        for r in all_requests() {
            assert_eq!(parse_request(&serde_json::to_vec(&r).unwrap()).unwrap(), r);
        }
    }

    #[test]
    fn port_spec_reads_config_table() {
        #[derive(Deserialize)]
        struct Cfg {
            port: Vec<PortSpec>,
        }
        let cfg: Cfg = toml::from_str(
            r#"
            [[port]]
            name = "veth0"          # kernel interface name
            kind = "afxdp"          # afxdp | tap
            ofport = 1
            xdp_mode = "auto"
            queue = 0

            [[port]]
            name = "tap0"
            kind = "tap"
            create = true
            "#,
        )
        .unwrap();
        assert_eq!(
            cfg.port,
            vec![
                PortSpec {
                    name: "veth0".into(),
                    kind: PortKind::Afxdp,
                    ofport: Some(1),
                    xdp_mode: Some(XdpMode::Auto),
                    queue: Some(0),
                    create: None,
                },
                PortSpec {
                    name: "tap0".into(),
                    kind: PortKind::Tap,
                    ofport: None,
                    xdp_mode: None,
                    queue: None,
                    create: Some(true),
                },
            ]
        );
        assert!(cfg.port.iter().all(|p| p.validate().is_ok()));
        let bad = toml::from_str::<Cfg>(
            "[[port]]\nname = \"v\"\nkind = \"afxdp\"\nxdp_mode = \"fast\"\n",
        );
        assert!(bad.err().unwrap().to_string().contains("fast"));
    }

    #[test]
    fn port_spec_validation() {
        let base = PortSpec {
            name: "veth0".into(),
            kind: PortKind::Afxdp,
            ofport: None,
            xdp_mode: None,
            queue: None,
            create: None,
        };
        let check = |f: &dyn Fn(&mut PortSpec)| {
            let mut p = base.clone();
            f(&mut p);
            p.validate()
        };
        assert_eq!(check(&|_| {}), Ok(()));
        assert!(check(&|p| p.name = "a-very-long-name".into())
            .unwrap_err()
            .to_string()
            .contains("1 to 15"));
        assert!(check(&|p| p.name = String::new()).is_err());
        assert!(check(&|p| p.name = "a/b".into())
            .unwrap_err()
            .to_string()
            .contains("not a valid"));
        assert!(check(&|p| p.name = "a b".into()).is_err());
        assert!(check(&|p| p.ofport = Some(0))
            .unwrap_err()
            .to_string()
            .contains("reserved"));
        assert!(check(&|p| p.ofport = Some(0xffff_fffe)).is_err());
        assert_eq!(check(&|p| p.ofport = Some(MAX_OFPORT)), Ok(()));
        assert!(check(&|p| p.ofport = Some(MAX_OFPORT + 1)).is_err());
        assert!(check(&|p| p.create = Some(true))
            .unwrap_err()
            .to_string()
            .contains("tap ports only"));
        let tap = |f: &dyn Fn(&mut PortSpec)| {
            check(&|p| {
                p.kind = PortKind::Tap;
                f(p)
            })
        };
        assert_eq!(tap(&|p| p.create = Some(false)), Ok(()));
        assert!(tap(&|p| p.queue = Some(0))
            .unwrap_err()
            .to_string()
            .contains("afxdp ports only"));
        assert!(tap(&|p| p.xdp_mode = Some(XdpMode::Skb)).is_err());
        // The variants, and the full messages in both namings.
        assert_eq!(
            tap(&|p| p.queue = Some(0)),
            Err(PortSpecError::WrongKind {
                port: "veth0".into(),
                option: PortOption::Queue
            })
        );
        assert!(matches!(
            check(&|p| p.ofport = Some(0)),
            Err(PortSpecError::ReservedOfport(0))
        ));
        let e = check(&|p| p.create = Some(true)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "port veth0: `create` applies to tap ports only (an afxdp port binds an existing interface)"
        );
        assert_eq!(
            e.with_flags(),
            "port veth0: --no-create applies to tap ports only (an afxdp port binds an existing interface)"
        );
        assert_eq!(
            check(&|p| p.name = "a-very-long-name".into())
                .unwrap_err()
                .to_string(),
            format!("port name `a-very-long-name` must be 1 to {IFNAME_MAX} bytes (a Linux interface name)")
        );
        assert_eq!(
            check(&|p| p.ofport = Some(0)).unwrap_err().to_string(),
            format!("ofport 0 is reserved; use 1 to {MAX_OFPORT} (or leave it out to have one assigned)")
        );
    }

    #[test]
    fn round_trip_every_request() {
        let path = sock("rt");
        let _c = Cleanup(path.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let srv = serve(&path, echo(seen.clone())).unwrap();
        assert_eq!(srv.path(), path);
        // One connection per request ...
        for r in all_requests() {
            let v = call(&path, &r).unwrap();
            assert_eq!(serde_json::from_value::<Request>(v).unwrap(), r);
        }
        // ... and all of them over one connection.
        let mut c = Client::connect(&path).unwrap();
        for r in all_requests() {
            let v = c.call(&r).unwrap();
            assert_eq!(serde_json::from_value::<Request>(v).unwrap(), r);
        }
        let mut want = all_requests();
        want.extend(all_requests());
        assert_eq!(*seen.lock().unwrap(), want);
        // Daemon-side errors come back unchanged, exit code 1, and the connection stays usable.
        let e = c
            .call(&Request::DelPort {
                name: "missing".into(),
            })
            .unwrap_err();
        assert!(
            matches!(&e, CtlError::Daemon(m) if m == "no port named missing"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(c.call(&Request::Stats).unwrap(), json!({"cmd": "stats"}));
    }

    #[test]
    fn typed_results_round_trip() {
        let path = sock("typed");
        let _c = Cleanup(path.clone());
        let (show, flows, dp, stats) = (sample_show(), sample_flows(), sample_dp(), sample_stats());
        let values = (
            serde_json::to_value(&show).unwrap(),
            serde_json::to_value(&flows).unwrap(),
            serde_json::to_value(&dp).unwrap(),
            serde_json::to_value(&stats).unwrap(),
            serde_json::to_value(&show.ports[0]).unwrap(),
        );
        let h: Handler = Arc::new(move |req| {
            Ok(match req {
                Request::Show => values.0.clone(),
                Request::DumpFlows => values.1.clone(),
                Request::DumpDpFlows => values.2.clone(),
                Request::Stats => values.3.clone(),
                Request::AddPort(_) => values.4.clone(),
                Request::DelPort { .. } => Value::Null,
            })
        });
        let _srv = serve(&path, h).unwrap();
        let get = |r: Request| call(&path, &r).unwrap();
        assert_eq!(decode::<ShowReport>(get(Request::Show)).unwrap(), show);
        assert_eq!(
            decode::<FlowsReport>(get(Request::DumpFlows)).unwrap(),
            flows
        );
        assert_eq!(
            decode::<DpFlowsReport>(get(Request::DumpDpFlows)).unwrap(),
            dp
        );
        assert_eq!(decode::<StatsReport>(get(Request::Stats)).unwrap(), stats);
        assert_eq!(get(Request::DelPort { name: "x".into() }), Value::Null);
        // A result of the wrong shape is a protocol error (exit 2), not a panic.
        let e = decode::<StatsReport>(get(Request::Show)).unwrap_err();
        assert!(
            matches!(e, CtlError::Protocol(_)) && e.exit_code() == 2,
            "{e}"
        );
    }

    #[test]
    fn bad_lines_answered_and_server_keeps_serving() {
        let path = sock("bad");
        let _c = Cleanup(path.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let _srv = serve(&path, echo(seen.clone())).unwrap();
        let r = raw(
            &path,
            &[
                "{\"cmd\": \"show\"",
                "\u{1}garbage",
                "{\"cmd\": \"frobnicate\"}",
                "{\"cmd\": \"add_port\", \"name\": \"v\"}",
                "{\"cmd\": \"del_port\", \"name\": \"panic\"}",
                "{\"cmd\": \"show\"}",
                "  {\"cmd\": \"stats\"}\r",
            ],
        );
        let err = |i: usize| r[i].error.clone().unwrap();
        assert!(!r[0].ok && err(0).starts_with("malformed request (not JSON)"));
        assert!(!r[1].ok && err(1).starts_with("malformed request (not JSON)"));
        assert!(!r[2].ok && err(2).starts_with("unknown command `frobnicate`"));
        assert!(!r[3].ok && err(3).contains("kind"), "{}", err(3));
        assert!(!r[4].ok && err(4).contains("internal error"), "{}", err(4));
        assert_eq!(r[5], Response::ok(json!({"cmd": "show"})));
        assert_eq!(r[6], Response::ok(json!({"cmd": "stats"})));
        // Only well-formed requests reached the handler.
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                Request::DelPort {
                    name: "panic".into()
                },
                Request::Show,
                Request::Stats
            ]
        );
        // Blank lines are skipped; a last line without newline is still answered.
        let s = UnixStream::connect(&path).unwrap();
        (&s).write_all(b"\n\n{\"cmd\":\"show\"}").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut all = String::new();
        (&s).read_to_string(&mut all).unwrap();
        assert_eq!(all, "{\"ok\":true,\"result\":{\"cmd\":\"show\"}}\n");
        // And new connections still work.
        assert!(call(&path, &Request::Show).is_ok());
    }

    #[test]
    fn long_line_rejected_and_connection_closed() {
        let path = sock("long");
        let _c = Cleanup(path.clone());
        let opts = ServeOptions {
            max_line: 64,
            ..Default::default()
        };
        let _srv = serve_with(&path, echo(Default::default()), opts).unwrap();
        // Exactly the limit is fine.
        let pad = " ".repeat(64 - 14);
        let line = format!("{{\"cmd\":\"show\"}}{pad}");
        assert_eq!(line.len(), 64);
        assert!(raw(&path, &[&line])[0].ok);
        // One byte more is answered with an error, then the server hangs up.
        let s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        (&s).write_all(format!("{line} \n{{\"cmd\":\"show\"}}\n").as_bytes())
            .unwrap();
        let mut all = String::new();
        (&s).read_to_string(&mut all).unwrap();
        let resp: Vec<Response> = all
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(resp.len(), 1, "{all}");
        assert_eq!(
            resp[0].error.as_deref(),
            Some("request longer than 64 bytes; closing the connection")
        );
        // The default limit is 1 MiB.
        assert_eq!(ServeOptions::default().max_line, 1 << 20);
        assert!(call(&path, &Request::Show).is_ok());
    }

    #[test]
    fn connection_limit_and_idle_timeout() {
        let path = sock("limit");
        let _c = Cleanup(path.clone());
        let opts = ServeOptions {
            max_connections: 3,
            // Long enough that the "too many" check below runs before the idle timeout even on
            // a loaded 2-core machine; short enough to keep the test quick.
            timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let srv = serve_with(&path, echo(Default::default()), opts).unwrap();
        let held: Vec<UnixStream> = (0..3)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        wait_until("3 connections", || srv.active_connections() == 3);
        let e = call(&path, &Request::Show).unwrap_err();
        assert!(
            matches!(&e, CtlError::Daemon(m) if m.starts_with("too many control connections (3 open)")),
            "{e}"
        );
        // Idle connections are closed after the timeout; the server then serves again.
        let start = Instant::now();
        for s in &held {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut b = [0u8; 1];
            assert_eq!(
                (&*s).read(&mut b).unwrap(),
                0,
                "expected EOF on an idle connection"
            );
        }
        assert!(start.elapsed() < Duration::from_secs(8));
        wait_until("connections to end", || srv.active_connections() == 0);
        assert!(call(&path, &Request::Show).is_ok());
        assert_eq!(ServeOptions::default().max_connections, 16);
    }

    #[test]
    fn socket_file_lifecycle() {
        let path = sock("life");
        let _c = Cleanup(path.clone());
        let srv = serve(&path, echo(Default::default())).unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert!(m.file_type().is_socket());
        assert_eq!(m.permissions().mode() & 0o777, 0o660);
        // A live daemon is never displaced, and keeps serving.
        let e = serve(&path, echo(Default::default())).err().unwrap();
        assert!(matches!(e, CtlError::InUse(_)), "{e}");
        assert!(e.to_string().contains("already serving"), "{e}");
        assert!(call(&path, &Request::Show).is_ok());
        // Dropping the server removes the socket, even with a client connected.
        let mut idle = Client::connect(&path).unwrap();
        drop(srv);
        assert!(!path.exists());
        assert!(idle.call(&Request::Show).is_err());
        let e = call(&path, &Request::Show).unwrap_err();
        assert!(matches!(e, CtlError::NoDaemon(_)), "{e}");
    }

    #[test]
    fn stale_socket_replaced_other_files_kept() {
        let path = sock("stale");
        let _c = Cleanup(path.clone());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A socket file nobody listens on (a daemon that was killed).
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let e = call(&path, &Request::Show).unwrap_err();
        assert!(
            matches!(e, CtlError::NotListening(_)) && e.exit_code() == 2,
            "{e}"
        );
        let srv = serve(&path, echo(Default::default())).unwrap();
        assert!(call(&path, &Request::Show).is_ok());
        drop(srv);
        // A regular file is not ours to remove.
        std::fs::write(&path, "precious").unwrap();
        let e = serve(&path, echo(Default::default())).err().unwrap();
        assert!(matches!(e, CtlError::NotSocket(_)), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    }

    #[test]
    fn drop_leaves_a_replaced_socket_alone() {
        let path = sock("replaced");
        let _c = Cleanup(path.clone());
        let srv = serve(&path, echo(Default::default())).unwrap();
        // Someone removes our socket and another server binds the same path.
        std::fs::remove_file(&path).unwrap();
        let other = serve(&path, echo(Default::default())).unwrap();
        drop(srv);
        assert!(path.exists());
        assert!(call(&path, &Request::Show).is_ok());
        drop(other);
        assert!(!path.exists());
    }

    #[test]
    fn client_errors_say_what_to_do() {
        let path = sock("missing");
        let e = call(&path, &Request::Show).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "no strato daemon at {} (is `strato run` running? use --socket)",
                path.display()
            )
        );
        assert_eq!(e.exit_code(), 2);
        let p = Path::new("/run/x.sock");
        let denied = CtlError::io(
            p,
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(
            denied.to_string(),
            "permission denied on /run/x.sock: run as root or as a member of the socket's group"
        );
        let t = CtlError::io(p, std::io::Error::from(std::io::ErrorKind::WouldBlock));
        assert!(matches!(t, CtlError::Timeout(_)));
    }

    /// `strato ctl` as clap parses it, for the CLI tests.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        ctl: CtlArgs,
    }

    fn parse(args: &[&str]) -> Result<CtlArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("ctl").chain(args.iter().copied())).map(|c| c.ctl)
    }

    #[test]
    fn cli_builds_requests() {
        let a = parse(&["show"]).unwrap();
        assert_eq!(a.socket, Path::new(DEFAULT_SOCKET));
        assert!(!a.json);
        assert_eq!(a.cmd.request().unwrap(), Request::Show);
        let a = parse(&[
            "add-port",
            "veth0",
            "--kind",
            "afxdp",
            "--xdp-mode",
            "skb",
            "--queue",
            "2",
            "--ofport",
            "9",
            "--json",
            "--socket",
            "/tmp/s",
        ])
        .unwrap();
        assert!(a.json);
        assert_eq!(a.socket, Path::new("/tmp/s"));
        assert_eq!(
            a.cmd.request().unwrap(),
            Request::AddPort(PortSpec {
                name: "veth0".into(),
                kind: PortKind::Afxdp,
                ofport: Some(9),
                xdp_mode: Some(XdpMode::Skb),
                queue: Some(2),
                create: None,
            })
        );
        let a = parse(&["add-port", "tap1", "--kind", "tap", "--no-create"]).unwrap();
        let Request::AddPort(spec) = a.cmd.request().unwrap() else {
            panic!("not add_port")
        };
        assert_eq!((spec.kind, spec.create), (PortKind::Tap, Some(false)));
        let a = parse(&["del-port", "veth0"]).unwrap();
        assert_eq!(
            a.cmd.request().unwrap(),
            Request::DelPort {
                name: "veth0".into()
            }
        );
        assert_eq!(
            parse(&["dump-flows"]).unwrap().cmd.request().unwrap(),
            Request::DumpFlows
        );
        for n in ["dump-dpflows", "dump-dp-flows"] {
            assert_eq!(
                parse(&[n]).unwrap().cmd.request().unwrap(),
                Request::DumpDpFlows
            );
        }
        assert_eq!(
            parse(&["stats"]).unwrap().cmd.request().unwrap(),
            Request::Stats
        );
        // Usage errors: clap's own, and inconsistent options (exit code 2, flags named).
        assert!(parse(&["add-port", "veth0"]).is_err());
        assert!(parse(&["add-port", "veth0", "--kind", "vhost"]).is_err());
        assert!(parse(&["add-port", "v", "--kind", "afxdp", "--xdp-mode", "fast"]).is_err());
        assert!(parse(&["del-port"]).is_err());
        let e = parse(&["add-port", "tap1", "--kind", "tap", "--queue", "1"])
            .unwrap()
            .cmd
            .request()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "port tap1: --queue applies to afxdp ports only"
        );
        assert_eq!(e.exit_code(), 2);
        let e = parse(&["add-port", "v", "--kind", "afxdp", "--no-create"])
            .unwrap()
            .cmd
            .request()
            .unwrap_err();
        assert!(e.to_string().contains("--no-create"), "{e}");
    }

    #[test]
    fn cli_help_documents_commands() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let help = cmd.render_long_help().to_string();
        for s in [
            "show",
            "add-port",
            "del-port",
            "dump-flows",
            "dump-dpflows",
            "stats",
            "--socket",
            "--json",
        ] {
            assert!(help.contains(s), "{s} missing from:\n{help}");
        }
        let add = cmd
            .find_subcommand_mut("add-port")
            .unwrap()
            .render_long_help()
            .to_string();
        for s in [
            "--kind",
            "afxdp",
            "tap",
            "--xdp-mode",
            "native",
            "skb",
            "--queue",
            "--no-create",
            "--ofport",
        ] {
            assert!(add.contains(s), "{s} missing from:\n{add}");
        }
    }

    #[test]
    fn run_prints_text_json_and_errors() {
        let path = sock("run");
        let _c = Cleanup(path.clone());
        let (show, port) = (sample_show(), sample_show().ports[0].clone());
        let h: Handler = Arc::new(move |req| match req {
            Request::Show => Ok(serde_json::to_value(&show).unwrap()),
            Request::AddPort(_) => Ok(serde_json::to_value(&port).unwrap()),
            Request::DelPort { name } => Err(format!("no port named {name}").into()),
            _ => Ok(json!({"unexpected": true})),
        });
        let _srv = serve(&path, h).unwrap();
        let s = path.to_str().unwrap();
        let out = |args: &[&str]| {
            let mut o = Vec::new();
            let mut a = vec!["--socket", s];
            a.extend_from_slice(args);
            run(&parse(&a).unwrap(), &mut o).map(|()| String::from_utf8(o).unwrap())
        };
        assert_eq!(out(&["show"]).unwrap(), render_show(&sample_show()));
        let j: Value = serde_json::from_str(&out(&["show", "--json"]).unwrap()).unwrap();
        assert_eq!(j, serde_json::to_value(sample_show()).unwrap());
        assert_eq!(
            out(&["add-port", "veth0", "--kind", "afxdp"]).unwrap(),
            "added port veth0 as ofport 1 (afxdp, mode native, worker 0, up)\n"
        );
        let e = out(&["del-port", "nope"]).unwrap_err();
        assert_eq!(
            (e.to_string().as_str(), e.exit_code()),
            ("no port named nope", 1)
        );
        // A result that is not a StatsReport: the daemon is not understood, exit 2.
        let e = out(&["stats"]).unwrap_err();
        assert!(
            matches!(e, CtlError::Protocol(_)) && e.exit_code() == 2,
            "{e}"
        );
        // Raw JSON is printed whatever its shape.
        assert_eq!(
            out(&["stats", "--json"]).unwrap(),
            "{\n  \"unexpected\": true\n}\n"
        );
        let e = run(
            &parse(&["--socket", "/nonexistent/strato.sock", "show"]).unwrap(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(
            matches!(e, CtlError::NoDaemon(_)) && e.exit_code() == 2,
            "{e}"
        );
    }

    fn sample_show() -> ShowReport {
        ShowReport {
            bridge: "br0".into(),
            fail_mode: "standalone".into(),
            ports: vec![
                PortReport {
                    no: 1,
                    name: "veth0".into(),
                    kind: "afxdp".into(),
                    mode: "native".into(),
                    up: true,
                    down_reason: None,
                    worker: Some(0),
                },
                PortReport {
                    no: 12,
                    name: "tap-vm1".into(),
                    kind: "tap".into(),
                    mode: "-".into(),
                    up: false,
                    down_reason: Some("interface tap-vm1 does not exist".into()),
                    worker: None,
                },
            ],
            workers: vec![
                WorkerReport {
                    id: 0,
                    core: Some(1),
                    ports: vec![1],
                },
                WorkerReport {
                    id: 1,
                    core: None,
                    ports: vec![],
                },
            ],
            tenant: None,
        }
    }

    #[test]
    fn render_show_with_a_tenant_agent() {
        let mut r = sample_show();
        let stats = serde_json::json!({"vteps_resolved": 1, "vteps": 2, "ports_active": 3,
            "ports_skipped": 1, "arp_replies": 4, "nd_replies": 0, "dhcp_replies": 2,
            "source_down": "connection refused"});
        r.tenant = Some(TenantReport {
            source: "http://10.0.0.1:9696".into(),
            stats: stats.as_object().unwrap().clone(),
        });
        let text = render_show(&r);
        assert!(
            text.ends_with(
                "tenant: model from http://10.0.0.1:9696 (lost: connection refused); VTEPs 1/2 \
             resolved; ports 3 with rules, 1 without; answered arp 4, nd 0, dhcp 2\n"
            ),
            "{text}"
        );
        // JSON round trip keeps it; without an agent the key is absent.
        let back: ShowReport = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert!(serde_json::to_value(sample_show())
            .unwrap()
            .get("tenant")
            .is_none());
    }

    fn sample_flows() -> FlowsReport {
        FlowsReport {
            flows: vec![
                FlowReport {
                    table: 0,
                    priority: 10,
                    cookie: 0,
                    duration_s: 12.3,
                    idle_timeout: 300,
                    hard_timeout: 0,
                    packets: 5,
                    bytes: 420,
                    match_: "in_port=1,dl_dst=02:00:00:00:00:02".into(),
                    actions: "output:2".into(),
                },
                FlowReport {
                    table: 1,
                    priority: 0,
                    cookie: 0xabc,
                    duration_s: 0.0625,
                    idle_timeout: 0,
                    hard_timeout: 60,
                    packets: 0,
                    bytes: 0,
                    match_: String::new(),
                    actions: String::new(),
                },
            ],
        }
    }

    fn sample_dp() -> DpFlowsReport {
        DpFlowsReport {
            flows: vec![
                DpFlowReport {
                    worker: 1,
                    match_: "in_port(2),eth(dst=02:00:00:00:00:01)".into(),
                    actions: "1".into(),
                    packets: 7,
                    bytes: 588,
                    used_ms_ago: Some(1250),
                },
                DpFlowReport {
                    worker: 0,
                    match_: "in_port(1),eth(dst=02:00:00:00:00:02)".into(),
                    actions: "2".into(),
                    packets: 5,
                    bytes: 420,
                    used_ms_ago: Some(300),
                },
                DpFlowReport {
                    worker: 0,
                    match_: "in_port(1),eth_type(0x86dd)".into(),
                    actions: String::new(),
                    packets: 0,
                    bytes: 0,
                    used_ms_ago: None,
                },
            ],
        }
    }

    fn sample_stats() -> StatsReport {
        StatsReport {
            ports: vec![
                PortStats {
                    no: 1,
                    name: "veth0".into(),
                    rx_packets: 1000,
                    rx_bytes: 64000,
                    tx_packets: 998,
                    tx_bytes: 63872,
                    tx_dropped: 2,
                },
                PortStats {
                    no: 2,
                    name: "tap-vm1".into(),
                    rx_packets: 7,
                    rx_bytes: 588,
                    tx_packets: 0,
                    tx_bytes: 0,
                    tx_dropped: 0,
                },
            ],
            workers: vec![
                WorkerStats {
                    id: 0,
                    rx_packets: 1007,
                    emc_hits: 990,
                    smc_hits: 3,
                    megaflow_hits: 10,
                    misses: 4,
                    upcalls: 4,
                    drops: [("policy".to_string(), 3), ("tx_full".to_string(), 2)].into(),
                },
                WorkerStats {
                    id: 1,
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn render_show_snapshot() {
        assert_eq!(
            render_show(&sample_show()),
            "\
bridge br0 (fail_mode: standalone): 2 ports, 2 workers
ports:
  PORT  NAME     KIND   MODE    WORKER  STATE
     1  veth0    afxdp  native       0  up
    12  tap-vm1  tap    -            -  down: interface tap-vm1 does not exist
workers:
  WORKER  CORE  PORTS
       0     1  1
       1     -  -
"
        );
        let empty = ShowReport {
            bridge: "br1".into(),
            fail_mode: "secure".into(),
            ports: vec![],
            workers: vec![WorkerReport {
                id: 0,
                core: Some(3),
                ports: vec![4, 5],
            }],
            tenant: None,
        };
        assert_eq!(
            render_show(&empty),
            "bridge br1 (fail_mode: secure): 0 ports, 1 worker\nports:\n  PORT  NAME  KIND  MODE  WORKER  STATE\nworkers:\n  WORKER  CORE  PORTS\n       0     3  4,5\n"
        );
    }

    #[test]
    fn render_flows_snapshot() {
        assert_eq!(
            render_flows(&sample_flows()),
            " cookie=0x0, duration=12.300s, table=0, n_packets=5, n_bytes=420, idle_timeout=300, priority=10,in_port=1,dl_dst=02:00:00:00:00:02 actions=output:2\n\
             \x20cookie=0xabc, duration=0.062s, table=1, n_packets=0, n_bytes=0, hard_timeout=60, priority=0 actions=drop\n"
        );
        assert_eq!(render_flows(&FlowsReport::default()), "");
    }

    #[test]
    fn render_dpflows_snapshot() {
        assert_eq!(
            render_dpflows(&sample_dp()),
            "\
flow-dump from worker 0:
in_port(1),eth(dst=02:00:00:00:00:02), packets:5, bytes:420, used:0.300s, actions:2
in_port(1),eth_type(0x86dd), packets:0, bytes:0, used:never, actions:drop
flow-dump from worker 1:
in_port(2),eth(dst=02:00:00:00:00:01), packets:7, bytes:588, used:1.250s, actions:1
"
        );
        assert_eq!(render_dpflows(&DpFlowsReport::default()), "");
    }

    #[test]
    fn render_stats_snapshot() {
        assert_eq!(
            render_stats(&sample_stats()),
            "\
ports:
  PORT  NAME     RX_PACKETS  RX_BYTES  TX_PACKETS  TX_BYTES  TX_DROPPED
     1  veth0          1000     64000         998     63872           2
     2  tap-vm1           7       588           0         0           0
workers:
  WORKER  RX_PACKETS  EMC_HITS  SMC_HITS  MEGAFLOW_HITS  MISSES  UPCALLS  DROPS
       0        1007       990         3             10       4        4      5
       1           0         0         0              0       0        0      0
drops:
  WORKER  REASON   PACKETS
       0  policy         3
       0  tx_full        2
"
        );
        let mut quiet = sample_stats();
        quiet.workers[0].drops.clear();
        quiet.workers[1].drops.insert("policy".into(), 0);
        assert!(render_stats(&quiet).ends_with("      0\ndrops: none\n"));
    }
}
