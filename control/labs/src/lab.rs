//! `strato lab`: Mininet-style test labs of network namespaces around one strato switch, built
//! from a topology file.
//!
//! # Topology file (TOML)
//!
//! ```toml
//! name = "tri"                 # lab name, 1..=6 of [A-Za-z0-9_]: namespaces "<name>-<host>"
//!                              # and "<name>-sw", switch-side interfaces "<name>-<host>"
//! [switch]                     # optional: copied into the daemon config's [daemon] table
//! worker_cores = [1]           # (control_socket and state_dir are set by the lab)
//! [bridge]                     # optional: copied into the daemon config's [bridge] table
//! fail_mode = "secure"         # (default "standalone"; `name` is set by the lab: its name)
//! controllers = ["tcp:127.0.0.1:6633"]
//! [[host]]                     # one per host, at least one
//! name = "h1"                  # 1..=6 of [A-Za-z0-9_], unique, not "sw"
//! ip = "10.0.0.1/24"           # address/prefix of the host's eth0 (IPv4 or IPv6), unique
//! link = "afxdp"               # afxdp (default): a veth pair, switch end opened over AF_XDP
//!                              # tap: strato creates a tap, then the lab moves it into the host
//! mac = "02:00:00:00:00:01"    # optional: eth0's MAC (unicast, unique); else the kernel's
//! ```
//!
//! # Contract
//!
//! - `up FILE` validates the file first (errors name the field and say what to change), needs
//!   root, refuses a lab that is already up, removes leftovers of the same name, then builds
//!   `<name>-sw` and one namespace per host, writes the daemon config to
//!   `/run/strato-lab/<name>/strato.toml`, starts `strato run` in `<name>-sw` (so addresses
//!   such as `tcp:127.0.0.1:PORT` in `[bridge] controllers` or `[switch] openflow_listen`
//!   are on that namespace's loopback: run controllers and `ovs-ofctl` there) (log in
//!   `strato.log`, pid in `strato.pid`), waits until its control socket (`strato.sock`) answers
//!   a `show` request (the `strato ctl` protocol; log tail and teardown after 30 s) and
//!   finally moves each tap host's tap into its namespace as `eth0`. Any failure tears the lab
//!   down again, so a failed `up` leaves nothing behind.
//! - Every object a lab creates is named `<name>-...`; lab names contain no `-`, so one lab's
//!   prefix never matches another lab's objects. `down` removes exactly: the daemon named in the
//!   pid file (if its command line is this lab's), processes still inside `<name>-*`
//!   namespaces, namespaces `<name>-*`, veth/tap interfaces `<name>-*` in the current namespace,
//!   and the run directory. It is idempotent and prints what it removed.
//! - `exec` and `ping-all` only run commands inside the lab's own namespaces; `exec` exits with
//!   the command's status (128 + signal if it was killed).
//! - Errors are [`LabError`] values, printed by [`main`] as `strato lab: ...` with the fix.

use crate::netns::{self, Netns, NetnsError};
use serde::Deserialize;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Where running labs keep their files: `<RUN_DIR>/<name>/{strato.toml,strato.sock,...}`.
pub const RUN_DIR: &str = "/run/strato-lab";
/// Longest lab or host name (so `<lab>-<host>` fits an interface name).
pub const MAX_NAME: usize = 6;
/// Longest Linux interface name (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;
/// How long `up` waits for the daemon's control socket.
pub const DAEMON_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `down` waits after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Name of a host's interface inside its namespace.
pub const HOST_IF: &str = "eth0";
/// Daemon keys the lab sets itself; `[switch]` may not set them.
const LAB_OWNED_KEYS: [&str; 2] = ["control_socket", "state_dir"];
/// Bridge keys the lab sets itself; `[bridge]` may not set them.
const LAB_OWNED_BRIDGE_KEYS: [&str; 1] = ["name"];
/// The bridge's fail mode unless the lab's `[bridge]` says otherwise: a MAC-learning switch.
pub const DEFAULT_FAIL_MODE: &str = "standalone";

/// The `strato lab` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LabCmd {
    /// Build the lab in FILE: namespaces, veths, the switch daemon, taps; then print how to
    /// use it. Needs root. Refuses a lab that is already up.
    ///
    /// The file format is documented in labs/README.md (examples: labs/tri.toml,
    /// labs/pair.toml). The daemon runs in namespace NAME-sw; its config, control socket,
    /// log and pid are in /run/strato-lab/NAME/.
    Up {
        /// The topology file (TOML).
        file: PathBuf,
    },
    /// Tear the lab in FILE down: stop its daemon (SIGTERM, SIGKILL after 5 s), delete its
    /// namespaces, leftover interfaces named NAME-* and its run directory. Safe to repeat.
    Down {
        /// The topology file (TOML) the lab was built from (only its `name` is used).
        file: PathBuf,
    },
    /// Run a command inside a host's namespace and exit with its status.
    ///
    /// Example: strato lab exec h1 -- ping -c 3 10.0.0.2
    Exec {
        /// The lab's topology file; may be left out when exactly one lab is up.
        #[arg(long, value_name = "FILE")]
        lab: Option<PathBuf>,
        /// The host (its `name` in the topology file).
        host: String,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// Ping every ordered pair of hosts once (`ping -c 1 -W 1`), print the matrix and
    /// "N/M pairs reachable"; exit 0 only if every pair answered.
    PingAll {
        /// The topology file (TOML) of a lab that is up.
        file: PathBuf,
    },
}

/// Runs one `strato lab` subcommand; prints errors as `strato lab: ...`.
pub fn main(cmd: LabCmd) -> ExitCode {
    let res = match cmd {
        LabCmd::Up { file } => up(&file).map(|()| ExitCode::SUCCESS),
        LabCmd::Down { file } => down(&file).map(|_| ExitCode::SUCCESS),
        LabCmd::Exec { lab, host, cmd } => exec(lab.as_deref(), &host, &cmd),
        LabCmd::PingAll { file } => ping_all(&file).map(|m| {
            if m.all_reachable() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strato lab: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A bad topology file.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// Not valid TOML, a missing or unknown key, or a value of the wrong type.
    #[error("{0}")]
    Syntax(String),
    /// `{field}`: {msg}
    #[error("`{field}`: {msg}")]
    Field {
        /// The field, e.g. `host[1].ip`.
        field: String,
        /// What is wrong and what to write instead.
        msg: String,
    },
}

/// Why a lab command failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// cannot read {path}: {source}
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// {path}: {source} (the format is in labs/README.md)
    #[error("{path}: {source} (the format is in labs/README.md)")]
    Topology {
        /// The topology file.
        path: PathBuf,
        /// What is wrong in it.
        source: TopologyError,
    },
    /// labs need root (namespaces, veths, AF_XDP); run as root or with sudo
    #[error("labs need root (namespaces, veths, AF_XDP); run as root or with sudo")]
    NotRoot,
    /// lab `{name}` is already up ({why}); run `strato lab down {file}` first
    #[error("lab `{name}` is already up ({why}); run `strato lab down {file}` first")]
    AlreadyUp {
        /// The lab.
        name: String,
        /// What shows it is up.
        why: String,
        /// The topology file, for the hint.
        file: String,
    },
    /// lab `{0}` is not up; run `strato lab up FILE` first
    #[error("lab `{0}` is not up; run `strato lab up FILE` first")]
    NotUp(String),
    /// no lab is up under /run/strato-lab; start one with `strato lab up FILE`
    #[error("no lab is up under {RUN_DIR}; start one with `strato lab up FILE`")]
    NoLab,
    /// several labs are up ({0}); say which with `--lab FILE`
    #[error("several labs are up ({0}); say which with `--lab FILE`")]
    SeveralLabs(String),
    /// lab `{lab}` has no host `{host}` (hosts: {hosts})
    #[error("lab `{lab}` has no host `{host}` (hosts: {hosts})")]
    NoHost {
        /// The lab.
        lab: String,
        /// The host asked for.
        host: String,
        /// The lab's hosts.
        hosts: String,
    },
    /// the switch daemon did not come up: {why}; its log ends with: ...
    #[error("the switch daemon did not come up: {why}\n--- last lines of {log} ---\n{tail}--- (the lab was torn down again)")]
    Daemon {
        /// What happened.
        why: String,
        /// The log file.
        log: String,
        /// Its last lines.
        tail: String,
    },
    /// `{tool}` is not installed (needed by {what}); install {package}
    #[error("`{tool}` is not installed (needed by {what}); install {package} (scripts/bootstrap.sh does)")]
    Missing {
        /// The program.
        tool: &'static str,
        /// The command that needs it.
        what: &'static str,
        /// The Debian package.
        package: &'static str,
    },
    /// A namespace or interface command failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// {what}: {source}
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// {0}
    #[error("{0}")]
    Other(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

/// How a host is linked to the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// A veth pair; the switch opens its end over AF_XDP.
    AfXdp,
    /// A tap the switch creates; the lab moves it into the host's namespace.
    Tap,
}

impl LinkKind {
    /// The port `kind` in the daemon config.
    pub fn port_kind(self) -> &'static str {
        match self {
            LinkKind::AfXdp => "afxdp",
            LinkKind::Tap => "tap",
        }
    }
}

/// One host of a lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its name (1..=6 of `[A-Za-z0-9_]`).
    pub name: String,
    /// eth0's address.
    pub ip: IpAddr,
    /// eth0's prefix length.
    pub prefix_len: u8,
    /// How it is linked to the switch.
    pub link: LinkKind,
    /// eth0's MAC, if given.
    pub mac: Option<[u8; 6]>,
}

impl Host {
    /// `ip/prefix_len`, as `ip addr add` takes it.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.ip, self.prefix_len)
    }
}

/// A validated topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// The lab's name (1..=6 of `[A-Za-z0-9_]`).
    pub name: String,
    /// Extra `[daemon]` keys for the switch.
    pub switch: toml::Table,
    /// Extra `[bridge]` keys for the switch (e.g. `fail_mode`, `controllers`).
    pub bridge: toml::Table,
    /// The hosts, in file order (their ports get ofport 1, 2, ...).
    pub hosts: Vec<Host>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    name: String,
    #[serde(default)]
    switch: toml::Table,
    #[serde(default)]
    bridge: toml::Table,
    #[serde(default, rename = "host")]
    hosts: Vec<RawHost>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: String,
    ip: String,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    mac: Option<String>,
}

#[derive(Deserialize)]
struct RawName {
    name: String,
}

fn field(field: impl Into<String>, msg: impl Into<String>) -> TopologyError {
    TopologyError::Field {
        field: field.into(),
        msg: msg.into(),
    }
}

fn check_name(what: &str, f: &str, name: &str) -> Result<(), TopologyError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(field(
            f,
            format!(
                "{what} name `{name}` must be 1 to {MAX_NAME} characters (it becomes part of interface names of at most {MAX_IFNAME})"
            ),
        ));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(field(
            f,
            format!("{what} name `{name}` may only contain letters, digits and `_`"),
        ));
    }
    Ok(())
}

fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` needs a prefix length, e.g. \"10.0.0.1/24\""))?;
    let ip: IpAddr = a
        .parse()
        .map_err(|_| format!("`{a}` is not an IPv4 or IPv6 address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = l
        .parse()
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| format!("prefix length `{l}` must be 0 to {max}"))?;
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
        return Err(format!(
            "`{ip}` is not a host address (unspecified, loopback or multicast)"
        ));
    }
    if let IpAddr::V4(v4) = ip {
        if len <= 30 {
            let host_bits = u32::from(v4) & (u32::MAX >> len);
            if host_bits == 0 {
                return Err(format!("`{s}` is the network address of its subnet"));
            }
            if host_bits == u32::MAX >> len {
                return Err(format!("`{s}` is the broadcast address of its subnet"));
            }
        }
    }
    Ok((ip, len))
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("`{s}` is not a MAC address like \"02:00:00:00:00:01\"");
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in mac.iter_mut() {
        let p = parts.next().ok_or_else(bad)?;
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    if mac[0] & 1 != 0 {
        return Err(format!(
            "`{s}` is a multicast MAC; use a unicast one (first byte even, e.g. 02)"
        ));
    }
    if mac == [0; 6] {
        return Err(format!("`{s}` is all zeros; use e.g. 02:00:00:00:00:01"));
    }
    Ok(mac)
}

fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

impl Topology {
    /// Parses and validates a topology file's text.
    pub fn parse(text: &str) -> Result<Topology, TopologyError> {
        let raw: RawTopology =
            toml::from_str(text).map_err(|e| TopologyError::Syntax(e.to_string().trim().into()))?;
        check_name("lab", "name", &raw.name)?;
        for k in LAB_OWNED_KEYS {
            if raw.switch.contains_key(k) {
                return Err(field(
                    format!("switch.{k}"),
                    format!("is set by the lab ({RUN_DIR}/{}/...); remove it", raw.name),
                ));
            }
        }
        for k in LAB_OWNED_BRIDGE_KEYS {
            if raw.bridge.contains_key(k) {
                return Err(field(
                    format!("bridge.{k}"),
                    format!(
                        "is set by the lab (the bridge is named after the lab, `{}`); remove it",
                        raw.name
                    ),
                ));
            }
        }
        if raw.hosts.is_empty() {
            return Err(field(
                "host",
                "the lab has no hosts; add at least one [[host]] table with name and ip",
            ));
        }
        let mut hosts: Vec<Host> = Vec::with_capacity(raw.hosts.len());
        for (i, h) in raw.hosts.into_iter().enumerate() {
            let f = |k: &str| format!("host[{i}].{k}");
            check_name("host", &f("name"), &h.name)?;
            if h.name == "sw" {
                return Err(field(
                    f("name"),
                    "`sw` is reserved for the switch's namespace; choose another host name",
                ));
            }
            let ifname = format!("{}-{}", raw.name, h.name);
            if ifname.len() > MAX_IFNAME {
                return Err(field(
                    f("name"),
                    format!("interface name `{ifname}` is longer than {MAX_IFNAME} bytes; shorten the lab or host name"),
                ));
            }
            if let Some(j) = hosts.iter().position(|o| o.name == h.name) {
                return Err(field(
                    f("name"),
                    format!("duplicate host name `{}` (also host[{j}])", h.name),
                ));
            }
            let (ip, prefix_len) = parse_cidr(&h.ip).map_err(|m| field(f("ip"), m))?;
            if let Some(j) = hosts.iter().position(|o| o.ip == ip) {
                return Err(field(
                    f("ip"),
                    format!("duplicate address {ip} (also host[{j}])"),
                ));
            }
            let link = match h.link.as_deref() {
                None | Some("afxdp") => LinkKind::AfXdp,
                Some("tap") => LinkKind::Tap,
                Some(o) => {
                    return Err(field(
                        f("link"),
                        format!("unknown link `{o}`; use \"afxdp\" (veth pair) or \"tap\""),
                    ))
                }
            };
            let mac = match &h.mac {
                None => None,
                Some(m) => {
                    let mac = parse_mac(m).map_err(|e| field(f("mac"), e))?;
                    if let Some(j) = hosts.iter().position(|o| o.mac == Some(mac)) {
                        return Err(field(
                            f("mac"),
                            format!("duplicate MAC {} (also host[{j}])", fmt_mac(&mac)),
                        ));
                    }
                    Some(mac)
                }
            };
            hosts.push(Host {
                name: h.name,
                ip,
                prefix_len,
                link,
                mac,
            });
        }
        Ok(Topology {
            name: raw.name,
            switch: raw.switch,
            bridge: raw.bridge,
            hosts,
        })
    }

    /// Reads and validates a topology file.
    pub fn load(path: &Path) -> Result<Topology, LabError> {
        let text = read(path)?;
        Topology::parse(&text).map_err(|source| LabError::Topology {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The switch's namespace: `<name>-sw`.
    pub fn switch_ns(&self) -> String {
        format!("{}-sw", self.name)
    }

    /// A host's namespace, and the name of its switch-side interface: `<name>-<host>`.
    pub fn host_ns(&self, host: &str) -> String {
        format!("{}-{host}", self.name)
    }

    /// The lab's run directory: `/run/strato-lab/<name>`.
    pub fn run_dir(&self) -> PathBuf {
        Path::new(RUN_DIR).join(&self.name)
    }

    /// The daemon config (`strato run --config`) for this lab, with its files under `dir`.
    pub fn daemon_config(&self, dir: &Path) -> String {
        let mut daemon = self.switch.clone();
        daemon.insert(
            "control_socket".into(),
            dir.join("strato.sock").display().to_string().into(),
        );
        daemon.insert(
            "state_dir".into(),
            dir.join("state").display().to_string().into(),
        );
        let mut bridge = toml::Table::new();
        bridge.insert("fail_mode".into(), DEFAULT_FAIL_MODE.into());
        bridge.extend(self.bridge.clone());
        bridge.insert("name".into(), self.name.clone().into());
        let ports: Vec<toml::Value> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let mut p = toml::Table::new();
                p.insert("name".into(), self.host_ns(&h.name).into());
                p.insert("kind".into(), h.link.port_kind().into());
                p.insert("ofport".into(), (i as i64 + 1).into());
                if h.link == LinkKind::Tap {
                    p.insert("create".into(), true.into());
                }
                p.into()
            })
            .collect();
        let mut doc = toml::Table::new();
        doc.insert("daemon".into(), daemon.into());
        doc.insert("bridge".into(), bridge.into());
        doc.insert("port".into(), ports.into());
        format!(
            "# Written by `strato lab up` for lab `{}`; rewritten on every `up`.\n{}",
            self.name,
            toml::to_string(&doc).unwrap_or_default()
        )
    }
}

fn read(path: &Path) -> Result<String, LabError> {
    std::fs::read_to_string(path).map_err(|source| LabError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads only a topology file's lab name (for `down`, which must work on a file that no longer
/// validates).
fn load_name(path: &Path) -> Result<String, LabError> {
    let text = read(path)?;
    let topo_err = |source| LabError::Topology {
        path: path.to_path_buf(),
        source,
    };
    let raw: RawName = toml::from_str(&text)
        .map_err(|e| topo_err(TopologyError::Syntax(e.to_string().trim().into())))?;
    check_name("lab", "name", &raw.name).map_err(topo_err)?;
    Ok(raw.name)
}

// ---- processes ----

/// Is `pid` a live (not zombie) process?
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a stale pid only
    // yields ESRCH, which we ignore (callers check liveness afterwards).
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Waits until `pid` is gone or `timeout` passes; true if gone.
fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let t = Instant::now();
    while alive(pid) {
        if t.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// The pid in the lab's pid file, if that process is alive and is this lab's `strato run`.
fn daemon_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join("strato.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cfg = dir.join("strato.toml").display().to_string();
    (pid > 1 && alive(pid) && cmdline(pid).contains(&cfg)).then_some(pid)
}

/// Stops the daemon named in the lab's pid file, if it is alive and is this lab's.
fn stop_daemon(dir: &Path) -> Option<String> {
    let pid = daemon_pid(dir)?;
    signal(pid, libc::SIGTERM);
    if wait_gone(pid, STOP_TIMEOUT) {
        return Some(format!("daemon (pid {pid}, stopped by SIGTERM)"));
    }
    signal(pid, libc::SIGKILL);
    wait_gone(pid, Duration::from_secs(2));
    Some(format!(
        "daemon (pid {pid}, killed: it ignored SIGTERM for {} s)",
        STOP_TIMEOUT.as_secs()
    ))
}

// ---- namespaces and interfaces ----

fn namespaces(name: &str) -> Result<Vec<String>, LabError> {
    let mut v = netns::list_with_prefix(&format!("{name}-"))?;
    v.sort();
    Ok(v)
}

/// veth and tap interfaces named `<name>-*` in the current namespace. Other kinds (a bridge
/// someone else named `<name>-x`) are never ours: the lab creates only veths and taps.
fn root_interfaces(name: &str) -> Result<Vec<String>, LabError> {
    let prefix = format!("{name}-");
    let mut v = Vec::new();
    for kind in ["veth", "tun"] {
        let out = netns::ip(&["-o", "link", "show", "type", kind])?;
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            // "12: name@peer: <...>"
            if let Some(n) = l
                .split(':')
                .nth(1)
                .map(|s| s.trim().split('@').next().unwrap_or(""))
            {
                if n.starts_with(&prefix) {
                    v.push(n.to_string());
                }
            }
        }
    }
    Ok(v)
}

/// Removes everything of lab `name` (see the module docs); returns what it removed.
pub fn teardown(name: &str) -> Result<Vec<String>, LabError> {
    let dir = Path::new(RUN_DIR).join(name);
    let mut gone = Vec::new();
    gone.extend(stop_daemon(&dir));
    let nss = namespaces(name)?;
    // A namespace lives on while a process is in it (and so do its interfaces): end them.
    let mut pids = Vec::new();
    for ns in &nss {
        if let Ok(out) = netns::ip(&["netns", "pids", ns]) {
            for p in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = p.parse::<i32>() {
                    if pid > 1 && pid != std::process::id() as i32 && alive(pid) {
                        pids.push((pid, ns.clone()));
                    }
                }
            }
        }
    }
    let pids: Vec<(i32, String)> = pids
        .into_iter()
        .map(|(pid, ns)| (pid, format!("process {pid} `{}` in {ns}", cmdline(pid))))
        .collect();
    for &(pid, _) in &pids {
        signal(pid, libc::SIGTERM);
    }
    for (pid, what) in pids {
        if !wait_gone(pid, Duration::from_secs(2)) {
            signal(pid, libc::SIGKILL);
            wait_gone(pid, Duration::from_secs(1));
        }
        gone.push(what);
    }
    for ns in nss {
        netns::ip(&["netns", "del", &ns])?;
        gone.push(format!("namespace {ns}"));
    }
    for i in root_interfaces(name)? {
        // It may vanish by itself (its peer's namespace was just deleted).
        if netns::ip(&["link", "del", &i]).is_ok() {
            gone.push(format!("interface {i}"));
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io_err(format!("removing {}", dir.display())))?;
        gone.push(format!("run directory {}", dir.display()));
    }
    Ok(gone)
}

// ---- up ----

/// `strato lab up FILE`.
pub fn up(file: &Path) -> Result<(), LabError> {
    let topo = Topology::load(file)?;
    if !netns::is_root() {
        return Err(LabError::NotRoot);
    }
    let name = &topo.name;
    let dir = topo.run_dir();
    let already = if let Some(p) = daemon_pid(&dir) {
        Some(format!("its daemon runs as pid {p}"))
    } else if namespaces(name)?.contains(&topo.switch_ns()) {
        Some(format!("namespace {} exists", topo.switch_ns()))
    } else {
        None
    };
    if let Some(why) = already {
        return Err(LabError::AlreadyUp {
            name: name.clone(),
            why,
            file: file.display().to_string(),
        });
    }
    let left = teardown(name)?;
    if !left.is_empty() {
        println!(
            "lab {name}: removed leftovers of an earlier run: {}",
            left.join(", ")
        );
    }
    match build(&topo, file) {
        Ok(()) => {
            println!(
                "lab {name} is up: {} host(s), switch in namespace {}, log {}",
                topo.hosts.len(),
                topo.switch_ns(),
                dir.join("strato.log").display()
            );
            let f = file.display();
            println!("  strato lab ping-all {f}");
            if let Some(h) = topo.hosts.first() {
                println!("  strato lab exec --lab {f} {} -- ip addr", h.name);
            }
            println!("  strato lab down {f}");
            Ok(())
        }
        Err(e) => {
            eprintln!("lab {name}: setup failed; tearing it down");
            if let Err(e2) = teardown(name) {
                eprintln!("lab {name}: teardown also failed: {e2}");
            }
            Err(e)
        }
    }
}

fn build(topo: &Topology, file: &Path) -> Result<(), LabError> {
    let name = &topo.name;
    let dir = topo.run_dir();
    std::fs::create_dir_all(dir.join("state"))
        .map_err(io_err(format!("creating {}", dir.display())))?;
    // The topology as it was brought up: `exec` without --lab finds the hosts here.
    let text = read(file)?;
    std::fs::write(dir.join("lab.toml"), text).map_err(io_err("writing lab.toml"))?;
    let cfg = dir.join("strato.toml");
    std::fs::write(&cfg, topo.daemon_config(&dir))
        .map_err(io_err(format!("writing {}", cfg.display())))?;

    // Namespaces are removed by `teardown` (also on failure), so they are kept past drop here.
    let sw = Netns::new(&topo.switch_ns())?.keep();
    println!("lab {name}: namespace {} (switch)", sw.name());
    let mut host_ns = Vec::with_capacity(topo.hosts.len());
    for h in &topo.hosts {
        let ns = Netns::new(&topo.host_ns(&h.name))?.keep();
        println!("lab {name}: namespace {} (host {})", ns.name(), h.name);
        if h.link == LinkKind::AfXdp {
            let sw_if = topo.host_ns(&h.name);
            netns::veth_pair(HOST_IF, Some(&ns), &sw_if, Some(&sw))?;
            configure_host_if(&ns, HOST_IF, h)?;
            println!(
                "lab {name}: veth {} {HOST_IF} {} <-> {} {sw_if} (afxdp)",
                ns.name(),
                h.cidr(),
                sw.name()
            );
        }
        host_ns.push(ns);
    }

    let exe = std::env::current_exe().map_err(io_err("finding the strato binary"))?;
    let log = dir.join("strato.log");
    let logf =
        std::fs::File::create(&log).map_err(io_err(format!("creating {}", log.display())))?;
    let logf2 = logf
        .try_clone()
        .map_err(io_err(format!("opening {}", log.display())))?;
    let mut child = {
        use std::os::unix::process::CommandExt;
        let mut c = sw.command(&exe.display().to_string());
        c.arg("run")
            .arg("--config")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(logf)
            .stderr(logf2)
            // Its own process group: a Ctrl-C on the `up` terminal must not stop the switch.
            .process_group(0);
        c.spawn()
            .map_err(io_err("starting `ip netns exec ... strato run`"))?
    };
    // `ip netns exec` execs the command, so this is the daemon's pid.
    let pid = child.id();
    std::fs::write(dir.join("strato.pid"), format!("{pid}\n"))
        .map_err(io_err("writing strato.pid"))?;
    println!(
        "lab {name}: strato run --config {} in {} (pid {pid})",
        cfg.display(),
        sw.name()
    );

    let sock = dir.join("strato.sock");
    let t = Instant::now();
    loop {
        if answers(&sock) {
            break;
        }
        let why = match child.try_wait() {
            Ok(Some(st)) => Some(format!(
                "`strato run` exited ({st}) before its control socket answered"
            )),
            Ok(None) if t.elapsed() >= DAEMON_TIMEOUT => Some(format!(
                "no answer on {} after {} s",
                sock.display(),
                DAEMON_TIMEOUT.as_secs()
            )),
            Ok(None) => None,
            Err(e) => Some(format!("cannot watch `strato run`: {e}")),
        };
        if let Some(why) = why {
            // teardown() stops it (pid file); give its last words time to reach the log.
            return Err(daemon_failed(why, &log, Some(child)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "lab {name}: switch answers on {} ({} ms)",
        sock.display(),
        t.elapsed().as_millis()
    );

    for (h, ns) in topo.hosts.iter().zip(&host_ns) {
        if h.link != LinkKind::Tap {
            continue;
        }
        let tap = topo.host_ns(&h.name);
        let t = Instant::now();
        while sw.ip(&["link", "show", "dev", &tap]).is_err() {
            if t.elapsed() >= Duration::from_secs(10) {
                return Err(daemon_failed(
                    format!("it did not create tap {tap} in {} within 10 s", sw.name()),
                    &log,
                    Some(child),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        sw.ip(&["link", "set", "dev", &tap, "netns", ns.name()])?;
        ns.ip(&["link", "set", "dev", &tap, "name", HOST_IF])?;
        configure_host_if(ns, HOST_IF, h)?;
        println!(
            "lab {name}: tap {tap} moved to {} as {HOST_IF} {} (tap)",
            ns.name(),
            h.cidr()
        );
    }
    Ok(())
}

/// Does a daemon answer `{"cmd":"show"}` on `sock` (the `strato ctl` protocol: one JSON request
/// per line, one `{"ok": ...}` response per line)?
fn answers(sock: &Path) -> bool {
    use std::io::Write;
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"{\"cmd\":\"show\"}\n").is_err() {
        return false;
    }
    let mut line = String::new();
    if BufReader::new(s).read_line(&mut line).is_err() {
        return false;
    }
    serde_json::from_str::<serde_json::Value>(&line).is_ok_and(|v| v.get("ok").is_some())
}

/// Sets MAC (if given) and address on `dev` inside `ns`, then brings it up.
fn configure_host_if(ns: &Netns, dev: &str, h: &Host) -> Result<(), LabError> {
    ns.ip(&["link", "set", "dev", dev, "down"])?;
    if let Some(m) = &h.mac {
        ns.ip(&["link", "set", "dev", dev, "address", &fmt_mac(m)])?;
    }
    ns.ip(&["addr", "add", &h.cidr(), "dev", dev])?;
    ns.ip(&["link", "set", "dev", dev, "up"])?;
    Ok(())
}

fn daemon_failed(why: String, log: &Path, child: Option<std::process::Child>) -> LabError {
    if let Some(mut c) = child {
        // Stop it here if it still runs, so the log is complete before we read it.
        if let Ok(None) = c.try_wait() {
            signal(c.id() as i32, libc::SIGTERM);
            let t = Instant::now();
            while let Ok(None) = c.try_wait() {
                if t.elapsed() >= STOP_TIMEOUT {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    LabError::Daemon {
        why,
        log: log.display().to_string(),
        tail: tail(log, 20),
    }
}

/// The last `n` lines of a file (at most the last 64 KiB of it).
fn tail(path: &Path, n: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return "(no log)\n".into();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let lines: Vec<String> = BufReader::new(f).lines().map_while(Result::ok).collect();
    let mut s = String::new();
    for l in &lines[lines.len().saturating_sub(n)..] {
        let _ = writeln!(s, "{l}");
    }
    if s.is_empty() {
        s.push_str("(empty)\n");
    }
    s
}

// ---- down ----

/// `strato lab down FILE`: returns what was removed (also printed).
pub fn down(file: &Path) -> Result<Vec<String>, LabError> {
    let name = load_name(file)?;
    if !netns::is_root() {
        return Err(LabError::NotRoot);
    }
    let gone = teardown(&name)?;
    if gone.is_empty() {
        println!("lab {name}: nothing to remove (it was not up)");
    } else {
        for g in &gone {
            println!("lab {name}: removed {g}");
        }
    }
    Ok(gone)
}

// ---- exec ----

/// The topology of the lab to act on: `--lab FILE`, or the only lab under [`RUN_DIR`].
fn pick_lab(lab: Option<&Path>) -> Result<Topology, LabError> {
    if let Some(f) = lab {
        return Topology::load(f);
    }
    let mut names: Vec<String> = std::fs::read_dir(RUN_DIR)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().join("lab.toml").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    match names.len() {
        0 => Err(LabError::NoLab),
        1 => Topology::load(&Path::new(RUN_DIR).join(&names[0]).join("lab.toml")),
        _ => Err(LabError::SeveralLabs(names.join(", "))),
    }
}

fn require_up(topo: &Topology) -> Result<(), LabError> {
    if namespaces(&topo.name)?.contains(&topo.switch_ns()) {
        Ok(())
    } else {
        Err(LabError::NotUp(topo.name.clone()))
    }
}

/// `strato lab exec [--lab FILE] HOST -- CMD...`: the command's exit status.
pub fn exec(lab: Option<&Path>, host: &str, cmd: &[String]) -> Result<ExitCode, LabError> {
    let topo = pick_lab(lab)?;
    if !topo.hosts.iter().any(|h| h.name == host) {
        return Err(LabError::NoHost {
            lab: topo.name.clone(),
            host: host.into(),
            hosts: topo
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if !netns::is_root() {
        return Err(LabError::NotRoot);
    }
    require_up(&topo)?;
    let Some((prog, args)) = cmd.split_first() else {
        return Err(LabError::Other(
            "no command given; write it after `--`".into(),
        ));
    };
    let ns = Netns::adopt(&topo.host_ns(host)).keep();
    let st = ns
        .command(prog)
        .args(args)
        .status()
        .map_err(io_err("running `ip netns exec`"))?;
    use std::os::unix::process::ExitStatusExt;
    let code = match (st.code(), st.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

// ---- ping-all ----

/// The result of [`ping_all`]: `ok[a][b]` is true when host `a` got an answer from `b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingMatrix {
    /// Host names, in file order.
    pub hosts: Vec<String>,
    /// `ok[from][to]`; the diagonal is false and not counted.
    pub ok: Vec<Vec<bool>>,
}

impl PingMatrix {
    /// Pairs that answered.
    pub fn reachable(&self) -> usize {
        self.ok.iter().flatten().filter(|&&b| b).count()
    }

    /// Ordered pairs tried.
    pub fn pairs(&self) -> usize {
        let n = self.hosts.len();
        n * n.saturating_sub(1)
    }

    /// True when every ordered pair answered.
    pub fn all_reachable(&self) -> bool {
        self.reachable() == self.pairs()
    }

    /// The matrix as text: rows ping columns; ends with "N/M pairs reachable".
    pub fn render(&self) -> String {
        let w = self.hosts.iter().map(String::len).max().unwrap_or(0).max(4) + 2;
        let w0 = w.max("from\\to".len() + 2);
        let mut s = format!("{:w0$}", "from\\to");
        for h in &self.hosts {
            let _ = write!(s, "{h:w$}");
        }
        s.push('\n');
        for (i, h) in self.hosts.iter().enumerate() {
            let _ = write!(s, "{h:w0$}");
            for j in 0..self.hosts.len() {
                let c = if i == j {
                    "-"
                } else if self.ok[i][j] {
                    "ok"
                } else {
                    "FAIL"
                };
                let _ = write!(s, "{c:w$}");
            }
            s.push('\n');
        }
        let _ = writeln!(s, "{}/{} pairs reachable", self.reachable(), self.pairs());
        s
    }
}

fn in_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// `strato lab ping-all FILE`: pings every ordered pair once and prints the matrix.
pub fn ping_all(file: &Path) -> Result<PingMatrix, LabError> {
    let topo = Topology::load(file)?;
    if !netns::is_root() {
        return Err(LabError::NotRoot);
    }
    require_up(&topo)?;
    if !in_path("ping") {
        return Err(LabError::Missing {
            tool: "ping",
            what: "strato lab ping-all",
            package: "iputils-ping",
        });
    }
    let n = topo.hosts.len();
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b)))
        .collect();
    let mut ok = vec![vec![false; n]; n];
    // Pings run concurrently, a bounded number at a time (each waits at most ~1 s).
    for chunk in pairs.chunks(32) {
        let mut running = Vec::with_capacity(chunk.len());
        for &(a, b) in chunk {
            let ns = Netns::adopt(&topo.host_ns(&topo.hosts[a].name)).keep();
            let child = ns
                .command("ping")
                .args(["-c", "1", "-W", "1", &topo.hosts[b].ip.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(io_err("running `ip netns exec ... ping`"))?;
            running.push((a, b, child));
        }
        for (a, b, mut c) in running {
            ok[a][b] = c.wait().map(|s| s.success()).unwrap_or(false);
        }
    }
    let m = PingMatrix {
        hosts: topo.hosts.iter().map(|h| h.name.clone()).collect(),
        ok,
    };
    println!("lab {}: ping -c 1 -W 1 (rows ping columns)", topo.name);
    print!("{}", m.render());
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRI: &str = include_str!("../../../labs/tri.toml");
    const PAIR: &str = include_str!("../../../labs/pair.toml");

    fn field_of(text: &str) -> (String, String) {
        match Topology::parse(text) {
            Err(TopologyError::Field { field, msg }) => (field, msg),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    const BASE: &str = "name = \"t\"\n[[host]]\nname = \"h1\"\nip = \"10.0.0.1/24\"\n";

    #[test]
    fn example_labs_parse() {
        let t = Topology::parse(TRI).unwrap();
        assert_eq!(t.name, "tri");
        let kinds: Vec<_> = t.hosts.iter().map(|h| h.link).collect();
        assert_eq!(kinds, [LinkKind::AfXdp, LinkKind::AfXdp, LinkKind::Tap]);
        assert_eq!(t.hosts[0].cidr(), "10.0.0.1/24");
        assert_eq!(t.hosts[0].mac, Some([2, 0, 0, 0, 0, 1]));
        let p = Topology::parse(PAIR).unwrap();
        assert_eq!(p.hosts.len(), 2);
        assert!(p.hosts.iter().all(|h| h.link == LinkKind::AfXdp));
        assert_eq!(p.switch_ns(), "pair-sw");
        assert_eq!(p.host_ns("h1"), "pair-h1");
    }

    #[test]
    fn link_defaults_to_afxdp_and_ipv6_is_accepted() {
        let t = Topology::parse(&format!(
            "{BASE}[[host]]\nname = \"h2\"\nip = \"fd00::2/64\"\nlink = \"tap\"\n"
        ))
        .unwrap();
        assert_eq!(t.hosts[0].link, LinkKind::AfXdp);
        assert_eq!(t.hosts[1].link, LinkKind::Tap);
        assert_eq!(t.hosts[1].cidr(), "fd00::2/64");
    }

    #[test]
    fn names_are_checked() {
        let (f, m) = field_of(&BASE.replace("\"t\"", "\"toolong\""));
        assert_eq!(f, "name");
        assert!(m.contains("1 to 6"), "{m}");
        let (f, m) = field_of(&BASE.replace("\"t\"", "\"a-b\""));
        assert_eq!(f, "name");
        assert!(m.contains("letters, digits"), "{m}");
        let (f, _) = field_of(&BASE.replace("\"t\"", "\"\""));
        assert_eq!(f, "name");
        let (f, _) = field_of(&BASE.replace("\"h1\"", "\"host123\""));
        assert_eq!(f, "host[0].name");
        let (f, m) = field_of(&BASE.replace("\"h1\"", "\"sw\""));
        assert_eq!(f, "host[0].name");
        assert!(m.contains("reserved"), "{m}");
        let (f, m) = field_of(&BASE.replace("\"h1\"", "\"h 1\""));
        assert_eq!(f, "host[0].name");
        assert!(m.contains("letters"), "{m}");
        let (f, m) = field_of(&format!(
            "{BASE}[[host]]\nname = \"h1\"\nip = \"10.0.0.2/24\"\n"
        ));
        assert_eq!(f, "host[1].name");
        assert!(m.contains("duplicate host name `h1` (also host[0])"), "{m}");
    }

    #[test]
    fn addresses_are_checked() {
        for (ip, want) in [
            ("10.0.0.1", "prefix length"),
            ("10.0.0.300/24", "not an IPv4 or IPv6"),
            ("10.0.0.1/33", "0 to 32"),
            ("fd00::1/129", "0 to 128"),
            ("10.0.0.1/x", "prefix length"),
            ("127.0.0.1/8", "not a host address"),
            ("0.0.0.0/24", "not a host address"),
            ("224.0.0.1/24", "not a host address"),
            ("10.0.0.0/24", "network address"),
            ("10.0.0.255/24", "broadcast address"),
        ] {
            let (f, m) = field_of(&BASE.replace("10.0.0.1/24", ip));
            assert_eq!(f, "host[0].ip", "{ip}");
            assert!(m.contains(want), "{ip}: {m}");
        }
        // /31 and /32 have no network or broadcast address.
        assert!(Topology::parse(&BASE.replace("10.0.0.1/24", "10.0.0.0/31")).is_ok());
        let (f, m) = field_of(&format!(
            "{BASE}[[host]]\nname = \"h2\"\nip = \"10.0.0.1/16\"\n"
        ));
        assert_eq!(f, "host[1].ip");
        assert!(m.contains("duplicate address 10.0.0.1"), "{m}");
    }

    #[test]
    fn links_and_macs_are_checked() {
        let (f, m) = field_of(&format!("{BASE}link = \"vhost\"\n"));
        assert_eq!(f, "host[0].link");
        assert!(m.contains("\"afxdp\"") && m.contains("\"tap\""), "{m}");
        for (mac, want) in [
            ("02:00:00:00:00", "not a MAC"),
            ("02:00:00:00:00:01:02", "not a MAC"),
            ("02:00:00:00:00:zz", "not a MAC"),
            ("2:0:0:0:0:1", "not a MAC"),
            ("01:00:5e:00:00:01", "multicast"),
            ("00:00:00:00:00:00", "all zeros"),
        ] {
            let (f, m) = field_of(&format!("{BASE}mac = \"{mac}\"\n"));
            assert_eq!(f, "host[0].mac", "{mac}");
            assert!(m.contains(want), "{mac}: {m}");
        }
        let (f, m) = field_of(&format!(
            "{BASE}mac = \"02:00:00:00:00:01\"\n[[host]]\nname = \"h2\"\nip = \"10.0.0.2/24\"\nmac = \"02:00:00:00:00:01\"\n"
        ));
        assert_eq!(f, "host[1].mac");
        assert!(m.contains("duplicate MAC 02:00:00:00:00:01"), "{m}");
    }

    #[test]
    fn structure_is_checked() {
        let (f, m) = field_of("name = \"t\"\n");
        assert_eq!(f, "host");
        assert!(m.contains("[[host]]"), "{m}");
        let (f, m) = field_of(&format!("{BASE}[switch]\ncontrol_socket = \"/tmp/x\"\n"));
        assert_eq!(f, "switch.control_socket");
        assert!(m.contains("set by the lab"), "{m}");
        for (text, want) in [
            (format!("{BASE}colour = \"red\"\n"), "colour"),
            (
                "[[host]]\nname = \"h1\"\nip = \"10.0.0.1/24\"\n".to_string(),
                "name",
            ),
            ("name = \"t\"\n[[host]]\nname = \"h1\"\n".to_string(), "ip"),
            ("name = 3\n".to_string(), "name"),
            ("name = \"t\n".to_string(), "line 1"),
        ] {
            match Topology::parse(&text) {
                Err(TopologyError::Syntax(m)) => assert!(m.contains(want), "{text}: {m}"),
                other => panic!("{text}: expected a syntax error, got {other:?}"),
            }
        }
    }

    #[test]
    fn errors_name_the_file_and_the_fix() {
        let dir = std::env::temp_dir().join(format!("strato-lab-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.toml");
        std::fs::write(&f, BASE.replace("10.0.0.1/24", "10.0.0.1")).unwrap();
        let e = Topology::load(&f).unwrap_err().to_string();
        assert!(e.starts_with(&f.display().to_string()), "{e}");
        assert!(
            e.contains("`host[0].ip`") && e.contains("labs/README.md"),
            "{e}"
        );
        let e = Topology::load(&dir.join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot read") && e.contains("missing.toml"),
            "{e}"
        );
        // `down` needs only the name, so a file that no longer validates can still be torn down.
        assert_eq!(load_name(&f).unwrap(), "t");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn daemon_config_lists_ports_in_order() {
        let t = Topology::parse(TRI).unwrap();
        let cfg = t.daemon_config(Path::new("/run/strato-lab/tri"));
        let v: toml::Table = toml::from_str(&cfg).unwrap();
        let d = v["daemon"].as_table().unwrap();
        assert_eq!(
            d["control_socket"].as_str(),
            Some("/run/strato-lab/tri/strato.sock")
        );
        assert_eq!(d["state_dir"].as_str(), Some("/run/strato-lab/tri/state"));
        assert_eq!(
            d["worker_cores"].as_array().unwrap().len(),
            1,
            "[switch] passed through"
        );
        assert_eq!(v["bridge"]["fail_mode"].as_str(), Some("standalone"));
        let ports = v["port"].as_array().unwrap();
        let got: Vec<(String, String, i64, bool)> = ports
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["kind"].as_str().unwrap().to_string(),
                    p["ofport"].as_integer().unwrap(),
                    p.get("create").and_then(|c| c.as_bool()).unwrap_or(false),
                )
            })
            .collect();
        let want: Vec<(String, String, i64, bool)> = t
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                (
                    format!("tri-{}", h.name),
                    h.link.port_kind().to_string(),
                    i as i64 + 1,
                    h.link == LinkKind::Tap,
                )
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn bridge_table_is_copied_into_the_daemon_config() {
        // Without [bridge]: a standalone bridge named after the lab.
        let t = Topology::parse(BASE).unwrap();
        assert!(t.bridge.is_empty());
        let v: toml::Table = toml::from_str(&t.daemon_config(Path::new("/x"))).unwrap();
        assert_eq!(v["bridge"]["fail_mode"].as_str(), Some(DEFAULT_FAIL_MODE));
        assert_eq!(v["bridge"]["name"].as_str(), Some("t"));

        // With it: every key passes through (also ones the daemon may not know yet), and
        // fail_mode overrides the default; [switch] still goes to [daemon].
        let t = Topology::parse(&format!(
            "{BASE}[switch]\nopenflow_listen = [\"ptcp:6653:127.0.0.1\"]\n\
             [bridge]\nfail_mode = \"secure\"\ncontrollers = [\"tcp:127.0.0.1:6633\", \"tcp:127.0.0.1:6634\"]\nmac_aging_s = 60\n"
        ))
        .unwrap();
        let v: toml::Table = toml::from_str(&t.daemon_config(Path::new("/x"))).unwrap();
        let b = v["bridge"].as_table().unwrap();
        assert_eq!(b["fail_mode"].as_str(), Some("secure"));
        assert_eq!(b["name"].as_str(), Some("t"));
        assert_eq!(b["mac_aging_s"].as_integer(), Some(60));
        let ctl: Vec<&str> = b["controllers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        assert_eq!(ctl, ["tcp:127.0.0.1:6633", "tcp:127.0.0.1:6634"]);
        assert_eq!(b.len(), 4, "{b:?}");
        assert_eq!(
            v["daemon"]["openflow_listen"][0].as_str(),
            Some("ptcp:6653:127.0.0.1")
        );
        assert!(v["daemon"].get("controllers").is_none());

        // The bridge's name is the lab's.
        let (f, m) = field_of(&format!("{BASE}[bridge]\nname = \"br9\"\n"));
        assert_eq!(f, "bridge.name");
        assert!(m.contains("set by the lab") && m.contains("`t`"), "{m}");
        // A [bridge] that is not a table is a syntax error naming it.
        match Topology::parse(&format!("bridge = 3\n{BASE}")) {
            Err(TopologyError::Syntax(m)) => assert!(m.contains("bridge"), "{m}"),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn ryu3_lab_is_secure_with_a_controller() {
        let t = Topology::parse(include_str!("../../../labs/ryu3.toml")).unwrap();
        assert_eq!(t.hosts.len(), 3);
        let v: toml::Table = toml::from_str(&t.daemon_config(Path::new("/x"))).unwrap();
        assert_eq!(v["bridge"]["fail_mode"].as_str(), Some("secure"));
        assert!(!v["bridge"]["controllers"].as_array().unwrap().is_empty());
        assert!(!v["daemon"]["openflow_listen"]
            .as_array()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn matrix_counts_and_renders() {
        let m = PingMatrix {
            hosts: vec!["a".into(), "b".into(), "c".into()],
            ok: vec![
                vec![false, true, true],
                vec![true, false, false],
                vec![true, true, false],
            ],
        };
        assert_eq!((m.reachable(), m.pairs()), (5, 6));
        assert!(!m.all_reachable());
        let r = m.render();
        assert!(r.ends_with("5/6 pairs reachable\n"), "{r}");
        let row_b = r.lines().find(|l| l.starts_with("b ")).unwrap();
        assert_eq!(
            row_b.split_whitespace().collect::<Vec<_>>(),
            ["b", "ok", "-", "FAIL"]
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let f = std::env::temp_dir().join(format!("strato-lab-tail-{}", std::process::id()));
        let text: String = (0..50).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&f, text).unwrap();
        let t = tail(&f, 3);
        assert_eq!(t, "line 47\nline 48\nline 49\n");
        std::fs::remove_file(&f).unwrap();
        assert_eq!(tail(&f, 3), "(no log)\n");
    }

    #[test]
    fn liveness_sees_ourselves_and_not_a_dead_child() {
        assert!(alive(std::process::id() as i32));
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id() as i32;
        c.wait().unwrap();
        assert!(!alive(pid));
    }
}
