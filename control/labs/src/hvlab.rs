//! Multi-host tenant labs: hypervisor hosts as network namespaces, each running a strato daemon
//! with a `[tenant]` section, joined by an underlay, with VMs attached by tap or veth.
//!
//! # Layout (every name under one per-run prefix `P`, from [`crate::netns::run_prefix`])
//!
//! ```text
//!  P-fab (fabric)    bridge brul (underlay)          bridge brmg (management, 10.99.0.254/24)
//!                     |u-hv1   |u-hv2   |u-kh1         |m-hv1     |m-hv2
//!  P-hv1             ul0 (AF_XDP, VTEP 192.168.77.1 in strato)   mg0 10.99.0.1/24, API :9696
//!  P-hv2             ul0 (AF_XDP, VTEP 192.168.77.2 in strato)   mg0 10.99.0.2/24
//!  P-kh1 (kernel)    ul0 192.168.77.101/24, vx0 (Linux VXLAN, nolearning) with a tenant address
//!  P-vm-NAME         eth0: a tap strato created (moved here) or the end of a veth pair whose
//!                    other end `veth-NAME` is in its host's namespace
//! ```
//!
//! # Contract
//!
//! - [`HvLab::build`] needs root; it creates the fabric, the hosts and the kernel hosts, writes
//!   one daemon config per hypervisor host into a per-run directory (`[daemon]`, `[bridge]`
//!   fail mode secure, `[tenant]`: the first host's agent reads its own `[api]`, the others
//!   follow it on the first host's management address with the provider token; and on the
//!   first host `[api]` with the provider token, one tenant token per tenant and every
//!   host, kernel hosts included, in `[[api.host]]`), starts `strato run` in each host
//!   namespace (log `hvN/strato.log`), and waits until every control socket answers `show` and
//!   the API answers from the fabric's management address. A daemon that exits or stays silent
//!   fails the build with the end of its log.
//! - The API is called (ureq) from a thread that entered the fabric namespace (the operator's
//!   seat on the management network, `10.99.0.254`), so the calls really cross the management
//!   bridge; [`HvLab::api_from`] calls it from any other namespace of the lab.
//! - [`HvLab::add_vm`] creates the VM's port through the API (provider token, the tenant's
//!   `tenant_id`, `binding:host_id` and `binding:profile` `{"interface", "kind"}`); for a veth
//!   the pair exists before the port; for a tap it waits for strato to create it, then moves it
//!   into the VM's namespace as `eth0`. `eth0` always gets the port's MAC.
//! - Everything is torn down on drop, also when a test panics: daemons get SIGTERM, then SIGKILL
//!   after [`STOP_TIMEOUT`]; processes left in the lab's namespaces are ended; namespaces (and
//!   the interfaces in them) are deleted; the run directory is removed unless
//!   [`HvLab::keep_dir`] was called.
//! - Traffic is only ever sent inside the lab's own namespaces.

use crate::netns::{self, Netns, NetnsError};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};
use strato_ctl::{self as ctl, FlowsReport, Request, StatsReport};

/// The management network's first three octets: host `N` (1-based) is `.N`, the fabric `.254`.
pub const MGMT_NET: [u8; 3] = [10, 99, 0];
/// The underlay network's first three octets: hypervisor `N` has VTEP `.N`, kernel host `K`
/// has `.100+K`.
pub const UNDERLAY_NET: [u8; 3] = [192, 168, 77];
/// The tenant API's TCP port (Neutron's).
pub const API_PORT: u16 = 9696;
/// The provider token of every lab.
pub const PROVIDER_TOKEN: &str = "hvlab-provider";
/// The underlay interface in each host namespace.
pub const UNDERLAY_IF: &str = "ul0";
/// The management interface in each host namespace.
pub const MGMT_IF: &str = "mg0";
/// A VM's interface inside its namespace.
pub const VM_IF: &str = "eth0";
/// The kernel hosts' VXLAN device.
pub const VXLAN_IF: &str = "vx0";
/// How long a daemon gets to answer on its control socket (and the API to answer).
pub const DAEMON_TIMEOUT: Duration = Duration::from_secs(30);
/// How long strato gets to create a VM's tap.
pub const TAP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a daemon gets between SIGTERM and SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest VM name (it becomes `veth-NAME` / `tap-NAME`, at most 15 bytes).
pub const MAX_VM_NAME: usize = 10;

/// Why a lab step failed.
#[derive(Debug, thiserror::Error)]
pub enum HvLabError {
    /// hvlab needs root (namespaces, veths, AF_XDP, taps)
    #[error("hvlab needs root (namespaces, veths, AF_XDP, taps); run as root")]
    NotRoot,
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
    /// strato on {host}: {why}; its log ends with: ...
    #[error("strato on {host}: {why}\n--- last lines of {log} ---\n{tail}---")]
    Daemon {
        /// The host.
        host: String,
        /// What happened.
        why: String,
        /// The log file.
        log: String,
        /// Its last lines.
        tail: String,
    },
    /// API {method} {path}: HTTP {status}: {body}
    #[error("API {method} {path}: HTTP {status}: {body}")]
    Api {
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// The status (0: no HTTP answer at all).
        status: u16,
        /// The body, or why no HTTP answer came.
        body: String,
    },
    /// A `ctl` request to a daemon failed.
    #[error("strato ctl on {host}: {source}")]
    Ctl {
        /// The host.
        host: String,
        /// The error.
        source: ctl::CtlError,
    },
    /// unknown {what} `{name}`
    #[error("unknown {what} `{name}`")]
    Unknown {
        /// host, VM or kernel host.
        what: &'static str,
        /// The name asked for.
        name: String,
    },
    /// A bad argument (the message says what to change).
    #[error("{0}")]
    Invalid(String),
    /// A tool this lab needs is missing.
    #[error("`{0}` is not installed; scripts/bootstrap.sh installs it")]
    Missing(&'static str),
    /// A VM's DHCP client got no lease.
    #[error("DHCP on VM {vm}: {why}\n{output}")]
    Dhcp {
        /// The VM.
        vm: String,
        /// What happened.
        why: String,
        /// udhcpc's output.
        output: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HvLabError {
    let what = what.into();
    move |source| HvLabError::Io { what, source }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// The `strato` binary (tests: `env!("CARGO_BIN_EXE_strato")`; the CLI: its own exe).
    pub exe: PathBuf,
    /// Hypervisor hosts (`hv1`, `hv2`, ...): 1 to 9; the first serves the API.
    pub hosts: usize,
    /// Kernel VXLAN hosts (`kh1`, ...): 0 to 9.
    pub kernel_hosts: usize,
    /// Tenants: each gets a tenant token `hvlab-<tenant>` in `[api]`.
    pub tenants: Vec<String>,
    /// The daemons' `log_level`.
    pub log_level: String,
    /// Print progress lines (`hvlab: ...`) on stdout.
    pub progress: bool,
}

impl LabConfig {
    /// `hosts` hypervisors and `kernel_hosts` kernel hosts running `exe`, log level info,
    /// progress lines off.
    pub fn new(exe: impl Into<PathBuf>, hosts: usize, kernel_hosts: usize) -> LabConfig {
        LabConfig {
            exe: exe.into(),
            hosts,
            kernel_hosts,
            tenants: Vec::new(),
            log_level: "info".into(),
            progress: false,
        }
    }
}

/// How a VM is attached to its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// strato creates a tap `tap-NAME`; the lab moves it into the VM as `eth0`.
    Tap,
    /// A veth pair `veth-NAME` (host namespace) <-> `eth0` (VM namespace).
    Veth,
}

impl Attach {
    /// The `binding:profile` kind.
    pub fn kind(self) -> &'static str {
        match self {
            Attach::Tap => "tap",
            Attach::Veth => "veth",
        }
    }
}

/// A running `strato run`.
#[derive(Debug)]
struct Daemon {
    child: Child,
}

impl Daemon {
    /// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]; true if SIGTERM sufficed.
    fn stop(&mut self) -> bool {
        if let Ok(Some(_)) = self.child.try_wait() {
            return true;
        }
        signal(self.child.id() as i32, libc::SIGTERM);
        let t = Instant::now();
        while t.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a stale pid only
    // yields ESRCH, which is ignored.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// One hypervisor host.
#[derive(Debug)]
pub struct Hypervisor {
    /// Its name (`hv1`, ...), its `[tenant] host` and `binding:host_id`.
    pub name: String,
    /// Its management address (the API listens on the first host's).
    pub mgmt_ip: Ipv4Addr,
    /// Its VTEP address (held by strato on `ul0`, not by the kernel).
    pub vtep_ip: Ipv4Addr,
    /// Its files: `strato.toml`, `strato.sock`, `strato.log`, `state/`.
    pub dir: PathBuf,
    ns: Netns,
    daemon: Option<Daemon>,
}

impl Hypervisor {
    /// Its namespace.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }
    /// Its control socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("strato.sock")
    }
    /// Its daemon's log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("strato.log")
    }
    /// Its daemon's config file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("strato.toml")
    }
}

/// A kernel host: Linux VXLAN on the same underlay.
#[derive(Debug)]
pub struct KernelHost {
    /// Its name (`kh1`, ...), listed in `[[api.host]]`.
    pub name: String,
    /// Its underlay address (a kernel address on its `ul0`) and VTEP.
    pub vtep_ip: Ipv4Addr,
    /// Once [`HvLab::attach_kernel_host`] ran: the tenant port it stands for.
    pub attached: Option<KernelAttachment>,
    ns: Netns,
}

impl KernelHost {
    /// Its namespace.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }
}

/// A kernel host's VXLAN device and its tenant port.
#[derive(Debug, Clone)]
pub struct KernelAttachment {
    /// The network's VNI (`vx0`'s id).
    pub vni: u32,
    /// `vx0`'s MAC (the port's `mac_address`).
    pub mac: String,
    /// `vx0`'s tenant address (the port's fixed IP).
    pub ip: Ipv4Addr,
    /// The port, as the API returned it.
    pub port: Value,
}

/// A VM: a namespace with `eth0` on a tenant network.
#[derive(Debug)]
pub struct Vm {
    /// Its name.
    pub name: String,
    /// Its host.
    pub host: String,
    /// How it is attached.
    pub attach: Attach,
    /// The interface in the host's namespace (`binding:profile` interface).
    pub ifname: String,
    /// Its port's MAC (set on `eth0`).
    pub mac: String,
    /// Its port's first fixed IPv4 address (what DHCP should hand out).
    pub ip: Option<Ipv4Addr>,
    /// The port, as the API returned it.
    pub port: Value,
    ns: Netns,
}

impl Vm {
    /// Its namespace.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }
}

/// What a DHCP client got.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The address.
    pub ip: Ipv4Addr,
    /// Everything udhcpc's script saw (`ip`, `mask`, `router`, `serverid`, `lease`, ...).
    pub env: BTreeMap<String, String>,
}

/// What a `ping` achieved.
#[derive(Debug, Clone)]
pub struct Ping {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
    /// ping's output.
    pub output: String,
}

impl Ping {
    /// Every request answered (and at least one sent).
    pub fn all_ok(&self) -> bool {
        self.transmitted > 0 && self.received == self.transmitted
    }
}

/// A running multi-host tenant lab (see the module docs); torn down on drop.
#[derive(Debug)]
pub struct HvLab {
    prefix: String,
    dir: PathBuf,
    keep_dir: bool,
    progress: bool,
    tenants: Vec<String>,
    // Drop order matters: VMs and kernel hosts, then hosts, then the fabric (see Drop).
    vms: Vec<Vm>,
    kernel: Vec<KernelHost>,
    hosts: Vec<Hypervisor>,
    fabric: Option<Netns>,
}

/// The tenant token of `tenant` in a lab's `[api]`.
pub fn tenant_token(tenant: &str) -> String {
    format!("hvlab-{tenant}")
}

fn addr(net: [u8; 3], last: u8) -> Ipv4Addr {
    Ipv4Addr::new(net[0], net[1], net[2], last)
}

fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs `f` on a new thread that has entered namespace `ns`'s network namespace (setns(2)
/// changes only the calling thread), so its sockets live there.
fn in_netns<R: Send>(ns: &Netns, f: impl FnOnce() -> R + Send) -> Result<R, HvLabError> {
    netns::in_netns(ns.name(), f).map_err(io_err(format!("entering namespace {}", ns.name())))
}

fn toml_str(s: &str) -> String {
    toml::Value::from(s).to_string()
}

/// The last `n` lines of a file (at most its last 64 KiB).
pub fn tail(path: &Path, n: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return "(no log)\n".into();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let lines: Vec<String> = BufReader::new(f).lines().map_while(Result::ok).collect();
    let mut s = String::new();
    for l in &lines[lines.len().saturating_sub(n)..] {
        s.push_str(l);
        s.push('\n');
    }
    if s.is_empty() {
        s.push_str("(empty)\n");
    }
    s
}

/// (transmitted, received) from ping's summary line ("5 packets transmitted, 5 received, ...");
/// (0, 0) when there is none.
pub fn parse_ping(output: &str) -> (u32, u32) {
    let Some(line) = output.lines().find(|l| l.contains("packets transmitted")) else {
        return (0, 0);
    };
    let count = |key: &str| -> u32 {
        line.split(',')
            .find(|p| p.contains(key))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (count("transmitted"), count("received"))
}

/// udhcpc's event script: records bound's environment in `$HVLAB_OUT` and applies the address
/// and the router, as a distribution's script does (without touching /etc/resolv.conf).
const DHCP_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  deconfig)
    ip link set "$interface" up
    ip -4 addr flush dev "$interface"
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    env | sort > "$HVLAB_OUT.tmp" && mv "$HVLAB_OUT.tmp" "$HVLAB_OUT"
    ;;
esac
exit 0
"#;

impl HvLab {
    /// Builds and starts the lab (see the module docs). On error everything made so far is
    /// torn down again.
    pub fn build(cfg: &LabConfig) -> Result<HvLab, HvLabError> {
        if !netns::is_root() {
            return Err(HvLabError::NotRoot);
        }
        if cfg.hosts == 0 || cfg.hosts > 9 || cfg.kernel_hosts > 9 {
            return Err(HvLabError::Invalid(format!(
                "a lab has 1 to 9 hypervisor hosts and 0 to 9 kernel hosts (asked: {} and {})",
                cfg.hosts, cfg.kernel_hosts
            )));
        }
        for t in &cfg.tenants {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(HvLabError::Invalid(format!(
                    "tenant name `{t}`: use letters, digits and `-`"
                )));
            }
        }
        let prefix = netns::run_prefix();
        let dir = std::env::temp_dir().join(format!("strato-hvlab-{prefix}"));
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut lab = HvLab {
            prefix,
            dir,
            keep_dir: false,
            progress: cfg.progress,
            tenants: cfg.tenants.clone(),
            vms: Vec::new(),
            kernel: Vec::new(),
            hosts: Vec::new(),
            fabric: None,
        };
        // On error, `lab` drops here and tears down what exists.
        lab.build_fabric(cfg)?;
        lab.start_daemons(cfg)?;
        Ok(lab)
    }

    fn say(&self, msg: &str) {
        if self.progress {
            println!("hvlab: {msg}");
        }
    }

    /// The per-run prefix of every namespace of this lab.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The per-run directory (configs, logs, state).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keep the run directory (logs) after drop.
    pub fn keep_dir(&mut self) {
        self.keep_dir = true;
    }

    /// The API's base URL (the first host's management address).
    pub fn api_url(&self) -> String {
        format!("http://{}:{API_PORT}", addr(MGMT_NET, 1))
    }

    fn fabric(&self) -> &Netns {
        // Cannot be None after build (and nothing runs after Drop).
        self.fabric
            .as_ref()
            .unwrap_or_else(|| unreachable!("the fabric exists while the lab does"))
    }

    /// The fabric namespace (both bridges; the operator's seat on the management network).
    pub fn fabric_ns(&self) -> &Netns {
        self.fabric()
    }

    fn build_fabric(&mut self, cfg: &LabConfig) -> Result<(), HvLabError> {
        let fab = Netns::new(&format!("{}-fab", self.prefix))?;
        for br in ["brul", "brmg"] {
            fab.ip(&["link", "add", br, "type", "bridge"])?;
            fab.ip(&["link", "set", br, "up"])?;
        }
        let fab_ip = format!("{}/24", addr(MGMT_NET, 254));
        fab.ip(&["addr", "add", &fab_ip, "dev", "brmg"])?;
        self.say(&format!(
            "fabric {}: bridges brul (underlay) and brmg (management, {fab_ip})",
            fab.name()
        ));
        self.fabric = Some(fab);
        for i in 1..=cfg.hosts {
            let name = format!("hv{i}");
            let ns = Netns::new(&format!("{}-{name}", self.prefix))?;
            let vtep_ip = addr(UNDERLAY_NET, i as u8);
            let mgmt_ip = addr(MGMT_NET, i as u8);
            self.plug(&ns, &name, UNDERLAY_IF, "u", "brul")?;
            // The underlay is strato's alone: no kernel address, no IPv6 chatter.
            ns.exec(
                "sysctl",
                &[
                    "-qw",
                    &format!("net.ipv6.conf.{UNDERLAY_IF}.disable_ipv6=1"),
                ],
            )?;
            self.plug(&ns, &name, MGMT_IF, "m", "brmg")?;
            ns.ip(&["addr", "add", &format!("{mgmt_ip}/24"), "dev", MGMT_IF])?;
            let dir = self.dir.join(&name);
            std::fs::create_dir_all(dir.join("state"))
                .map_err(io_err(format!("creating {}", dir.display())))?;
            self.say(&format!(
                "host {name}: namespace {}, {UNDERLAY_IF} (VTEP {vtep_ip}, in strato), {MGMT_IF} {mgmt_ip}/24",
                ns.name()
            ));
            self.hosts.push(Hypervisor {
                name,
                mgmt_ip,
                vtep_ip,
                dir,
                ns,
                daemon: None,
            });
        }
        for k in 1..=cfg.kernel_hosts {
            let name = format!("kh{k}");
            let ns = Netns::new(&format!("{}-{name}", self.prefix))?;
            let vtep_ip = addr(UNDERLAY_NET, 100 + k as u8);
            self.plug(&ns, &name, UNDERLAY_IF, "u", "brul")?;
            ns.ip(&["addr", "add", &format!("{vtep_ip}/24"), "dev", UNDERLAY_IF])?;
            self.say(&format!(
                "kernel host {name}: namespace {}, {UNDERLAY_IF} {vtep_ip}/24 (Linux VXLAN)",
                ns.name()
            ));
            self.kernel.push(KernelHost {
                name,
                vtep_ip,
                attached: None,
                ns,
            });
        }
        Ok(())
    }

    /// A veth `inner` (in `ns`) <-> `<tag>-<host>` in the fabric, enslaved to `bridge`.
    fn plug(
        &self,
        ns: &Netns,
        host: &str,
        inner: &str,
        tag: &str,
        bridge: &str,
    ) -> Result<(), HvLabError> {
        let outer = format!("{tag}-{host}");
        netns::veth_pair(inner, Some(ns), &outer, Some(self.fabric()))?;
        self.fabric()
            .ip(&["link", "set", &outer, "master", bridge])?;
        Ok(())
    }

    /// The daemon config of host `i` (0-based).
    fn daemon_config(&self, cfg: &LabConfig, i: usize) -> String {
        let h = &self.hosts[i];
        let ncores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        // Spread the workers: host 1 on the last core, host 2 on the one before, ...
        let worker = (ncores - 1 + ncores * 9 - i) % ncores;
        let mut s = format!(
            "# Written by strato's hvlab for host {name} of lab {p}.\n\
             [daemon]\ncontrol_socket = {sock}\nstate_dir = {state}\nworker_cores = [{worker}]\nlog_level = {level}\n\n\
             [bridge]\nname = {br}\nfail_mode = \"secure\"\n\n\
             [tenant]\nhost = {name_q}\nunderlay = {ul}\n{follow}",
            name = h.name,
            p = self.prefix,
            sock = toml_str(&h.socket().display().to_string()),
            state = toml_str(&h.dir.join("state").display().to_string()),
            level = toml_str(&cfg.log_level),
            br = toml_str(&format!("br-{}", h.name)),
            name_q = toml_str(&h.name),
            ul = toml_str(UNDERLAY_IF),
            // The API host's agent reads its own [api]; the others follow it over HTTP.
            follow = if i == 0 {
                String::new()
            } else {
                format!(
                    "server = {}\ntoken = {}\n",
                    toml_str(&self.api_url()),
                    toml_str(PROVIDER_TOKEN)
                )
            },
        );
        if i == 0 {
            s.push_str(&format!(
                "\n[api]\nlisten = {}\n\n[[api.token]]\ntoken = {}\nrole = \"provider\"\n",
                toml_str(&format!("{}:{API_PORT}", h.mgmt_ip)),
                toml_str(PROVIDER_TOKEN)
            ));
            for t in &self.tenants {
                s.push_str(&format!(
                    "\n[[api.token]]\ntoken = {}\nrole = \"tenant\"\ntenant = {}\n",
                    toml_str(&tenant_token(t)),
                    toml_str(t)
                ));
            }
            let all = self
                .hosts
                .iter()
                .map(|h| (&h.name, h.vtep_ip))
                .chain(self.kernel.iter().map(|k| (&k.name, k.vtep_ip)));
            for (name, vtep) in all {
                s.push_str(&format!(
                    "\n[[api.host]]\nname = {}\nvtep_ip = {}\n",
                    toml_str(name),
                    toml_str(&vtep.to_string())
                ));
            }
        }
        s
    }

    fn start_daemons(&mut self, cfg: &LabConfig) -> Result<(), HvLabError> {
        for i in 0..self.hosts.len() {
            let text = self.daemon_config(cfg, i);
            let h = &self.hosts[i];
            let conf = h.config();
            std::fs::write(&conf, text).map_err(io_err(format!("writing {}", conf.display())))?;
            let log = h.log();
            let logf = std::fs::File::create(&log)
                .map_err(io_err(format!("creating {}", log.display())))?;
            let logf2 = logf
                .try_clone()
                .map_err(io_err(format!("opening {}", log.display())))?;
            let child = {
                use std::os::unix::process::CommandExt;
                let mut c = h.ns.command(&cfg.exe.display().to_string());
                c.arg("run")
                    .arg("--config")
                    .arg(&conf)
                    .stdin(Stdio::null())
                    .stdout(logf)
                    .stderr(logf2)
                    // Its own process group: a Ctrl-C on the demo's terminal reaches the demo,
                    // which then stops the daemons in order.
                    .process_group(0);
                c.spawn().map_err(io_err(format!(
                    "starting `ip netns exec {} {} run`",
                    h.ns.name(),
                    cfg.exe.display()
                )))?
            };
            self.say(&format!(
                "host {}: strato run --config {} (pid {}, log {})",
                h.name,
                conf.display(),
                child.id(),
                log.display()
            ));
            self.hosts[i].daemon = Some(Daemon { child });
            self.wait_socket(i)?;
            if i == 0 {
                self.wait_api()?;
            }
        }
        Ok(())
    }

    fn daemon_error(&self, host: usize, why: String) -> HvLabError {
        let h = &self.hosts[host];
        HvLabError::Daemon {
            host: h.name.clone(),
            why,
            log: h.log().display().to_string(),
            tail: tail(&h.log(), 20),
        }
    }

    fn wait_socket(&mut self, i: usize) -> Result<(), HvLabError> {
        let t = Instant::now();
        let sock = self.hosts[i].socket();
        loop {
            if ctl::call(&sock, &Request::Show).is_ok() {
                self.say(&format!(
                    "host {}: control socket answers ({} ms)",
                    self.hosts[i].name,
                    t.elapsed().as_millis()
                ));
                return Ok(());
            }
            let exited = match self.hosts[i].daemon.as_mut().map(|d| d.child.try_wait()) {
                Some(Ok(Some(st))) => Some(format!(
                    "`strato run` exited ({st}) before its control socket answered"
                )),
                Some(Err(e)) => Some(format!("cannot watch `strato run`: {e}")),
                _ => None,
            };
            if let Some(why) = exited {
                return Err(self.daemon_error(i, why));
            }
            if t.elapsed() >= DAEMON_TIMEOUT {
                if let Some(d) = self.hosts[i].daemon.as_mut() {
                    d.stop();
                }
                let why = format!(
                    "no answer on {} after {} s",
                    sock.display(),
                    DAEMON_TIMEOUT.as_secs()
                );
                return Err(self.daemon_error(i, why));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_api(&self) -> Result<(), HvLabError> {
        let t = Instant::now();
        loop {
            match self.api("GET", "/v2.0/networks", None) {
                Ok(_) => {
                    self.say(&format!(
                        "API answers on {} from the fabric ({} ms)",
                        self.api_url(),
                        t.elapsed().as_millis()
                    ));
                    return Ok(());
                }
                Err(e) if t.elapsed() >= DAEMON_TIMEOUT => {
                    return Err(self.daemon_error(0, format!("the API never answered: {e}")))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    // ---- lookups ----

    /// The hypervisor hosts, in order.
    pub fn hosts(&self) -> &[Hypervisor] {
        &self.hosts
    }

    /// A hypervisor host by name.
    pub fn host(&self, name: &str) -> Result<&Hypervisor, HvLabError> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| HvLabError::Unknown {
                what: "host",
                name: name.into(),
            })
    }

    /// A kernel host by name.
    pub fn kernel_host(&self, name: &str) -> Result<&KernelHost, HvLabError> {
        self.kernel
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| HvLabError::Unknown {
                what: "kernel host",
                name: name.into(),
            })
    }

    /// A VM by name.
    pub fn vm(&self, name: &str) -> Result<&Vm, HvLabError> {
        self.vms
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| HvLabError::Unknown {
                what: "VM",
                name: name.into(),
            })
    }

    /// The VMs, in the order they were added.
    pub fn vms(&self) -> &[Vm] {
        &self.vms
    }

    // ---- the API ----

    /// Calls the API with the provider token; 2xx answers are `Ok(body)`, others `Err`.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, HvLabError> {
        let (status, v) = self.api_raw(PROVIDER_TOKEN, method, path, body)?;
        if (200..300).contains(&status) {
            Ok(v)
        } else {
            Err(HvLabError::Api {
                method: method.into(),
                path: path.into(),
                status,
                body: v.to_string(),
            })
        }
    }

    /// Calls the API from the fabric namespace with `token`: the HTTP status and the JSON
    /// body (`null` when empty). `Err` only when no HTTP answer came.
    pub fn api_raw(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), HvLabError> {
        self.api_from(self.fabric(), token, method, path, body)
    }

    /// As [`HvLab::api_raw`], from inside namespace `ns` (e.g. another host's).
    pub fn api_from(
        &self,
        ns: &Netns,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), HvLabError> {
        let url = format!("{}{path}", self.api_url());
        let fail = |status: u16, body: String| HvLabError::Api {
            method: method.into(),
            path: path.into(),
            status,
            body,
        };
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("X-Auth-Token", token);
        let call = move || -> Result<(u16, String), String> {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            let resp = match body {
                Some(b) => agent.run(
                    req.header("Content-Type", "application/json")
                        .body(b.to_string())
                        .map_err(|e| e.to_string())?,
                ),
                None => agent.run(req.body(()).map_err(|e| e.to_string())?),
            };
            let mut resp = resp.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let text = resp
                .body_mut()
                .read_to_string()
                .map_err(|e| e.to_string())?;
            Ok((status, text))
        };
        let (status, text) = in_netns(ns, call)?.map_err(|e| fail(0, e))?;
        let v = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| fail(status, format!("{e}: {text}")))?
        };
        Ok((status, v))
    }

    /// Creates tenant `tenant`'s network `name`; returns the network object (with
    /// `provider:segmentation_id`, the VNI).
    pub fn create_network(&self, tenant: &str, name: &str) -> Result<Value, HvLabError> {
        let v = self.api(
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"name": name, "tenant_id": tenant}})),
        )?;
        Ok(v["network"].clone())
    }

    /// Creates an IPv4 subnet `cidr` on `network_id` for `tenant` with DHCP on, and, when
    /// given, one allocation pool `(start, end)`; returns the subnet object.
    pub fn create_subnet(
        &self,
        tenant: &str,
        network_id: &str,
        cidr: &str,
        pool: Option<(Ipv4Addr, Ipv4Addr)>,
    ) -> Result<Value, HvLabError> {
        let mut s = json!({
            "network_id": network_id, "tenant_id": tenant, "cidr": cidr,
            "ip_version": 4, "enable_dhcp": true,
        });
        if let Some((a, b)) = pool {
            s["allocation_pools"] = json!([{"start": a.to_string(), "end": b.to_string()}]);
        }
        let v = self.api("POST", "/v2.0/subnets", Some(json!({ "subnet": s })))?;
        Ok(v["subnet"].clone())
    }

    // ---- VMs ----

    /// Adds VM `name` on `host`, attached by `attach`, with a port on `network_id` owned by
    /// `tenant` (the port's fixed IP from IPAM, or `ip` when given); see the module docs.
    pub fn add_vm(
        &mut self,
        name: &str,
        host: &str,
        attach: Attach,
        tenant: &str,
        network_id: &str,
        ip: Option<Ipv4Addr>,
    ) -> Result<&Vm, HvLabError> {
        if name.is_empty()
            || name.len() > MAX_VM_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(HvLabError::Invalid(format!(
                "VM name `{name}`: 1 to {MAX_VM_NAME} of [a-z0-9]"
            )));
        }
        if self.vms.iter().any(|v| v.name == name) {
            return Err(HvLabError::Invalid(format!("VM `{name}` exists already")));
        }
        let hi = self
            .hosts
            .iter()
            .position(|h| h.name == host)
            .ok_or_else(|| HvLabError::Unknown {
                what: "host",
                name: host.into(),
            })?;
        let ns = Netns::new(&format!("{}-vm-{name}", self.prefix))?;
        let ifname = format!("{}-{name}", attach.kind());
        if attach == Attach::Veth {
            // The host end exists before the port names it.
            netns::veth_pair(&ifname, Some(&self.hosts[hi].ns), VM_IF, Some(&ns))?;
        }
        let mut port = json!({
            "network_id": network_id, "tenant_id": tenant, "name": name,
            "device_id": format!("vm-{name}"), "device_owner": "compute:hvlab",
            "binding:host_id": host,
            "binding:profile": {"interface": ifname, "kind": attach.kind()},
        });
        if let Some(ip) = ip {
            port["fixed_ips"] = json!([{ "ip_address": ip.to_string() }]);
        }
        let port = self.api("POST", "/v2.0/ports", Some(json!({ "port": port })))?["port"].clone();
        let mac = port["mac_address"].as_str().unwrap_or_default().to_string();
        let ip = port["fixed_ips"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["ip_address"].as_str()?.parse::<Ipv4Addr>().ok())
            .next();
        if attach == Attach::Tap {
            let hns = &self.hosts[hi].ns;
            let t = Instant::now();
            while hns.ip(&["link", "show", "dev", &ifname]).is_err() {
                if t.elapsed() >= TAP_TIMEOUT {
                    return Err(self.daemon_error(
                        hi,
                        format!(
                            "it did not create tap {ifname} for port {} within {} s",
                            port["id"].as_str().unwrap_or("?"),
                            TAP_TIMEOUT.as_secs()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            hns.ip(&["link", "set", "dev", &ifname, "netns", ns.name()])?;
            ns.ip(&["link", "set", "dev", &ifname, "name", VM_IF])?;
        }
        ns.ip(&["link", "set", "dev", VM_IF, "down"])?;
        ns.ip(&["link", "set", "dev", VM_IF, "address", &mac])?;
        ns.ip(&["link", "set", "dev", VM_IF, "up"])?;
        self.say(&format!(
            "VM {name} on {host} ({}: {ifname} -> {} {VM_IF}), tenant {tenant}, port {} mac {mac} ip {}",
            attach.kind(),
            ns.name(),
            port["id"].as_str().unwrap_or("?"),
            ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into())
        ));
        self.vms.push(Vm {
            name: name.into(),
            host: host.into(),
            attach,
            ifname,
            mac,
            ip,
            port,
            ns,
        });
        self.vm(name)
    }

    /// Runs a command inside VM `vm`.
    pub fn vm_exec(&self, vm: &str, cmd: &str, args: &[&str]) -> Result<Output, HvLabError> {
        let vm = self.vm(vm)?;
        vm.ns
            .command(cmd)
            .args(args)
            .output()
            .map_err(io_err(format!("running {cmd} in {}", vm.ns.name())))
    }

    /// Runs busybox `udhcpc` on VM `vm`'s `eth0` (up to `timeout`); its script configures the
    /// address and the default route; returns what it got.
    pub fn dhcp(&self, vm: &str, timeout: Duration) -> Result<Lease, HvLabError> {
        let v = self.vm(vm)?;
        let udhcpc: Vec<&str> = if have("udhcpc") {
            vec!["udhcpc"]
        } else if have("busybox") {
            vec!["busybox", "udhcpc"]
        } else {
            return Err(HvLabError::Missing("udhcpc"));
        };
        let script = self.dir.join("udhcpc.sh");
        if !script.exists() {
            std::fs::write(&script, DHCP_SCRIPT).map_err(io_err("writing udhcpc.sh"))?;
            std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(io_err("chmod udhcpc.sh"))?;
        }
        let out = self.dir.join(format!("lease.{vm}"));
        let _ = std::fs::remove_file(&out);
        let tries = timeout.as_secs().max(2).to_string();
        let mut args: Vec<&str> = udhcpc[1..].to_vec();
        // Foreground, quit once bound, fail (exit) if no lease after `tries` 1-s tries.
        args.extend(["-f", "-q", "-n", "-t", &tries, "-T", "1", "-i", VM_IF, "-s"]);
        let script_s = script.display().to_string();
        args.push(&script_s);
        let mut child =
            v.ns.command(udhcpc[0])
                .env("HVLAB_OUT", &out)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(io_err("running udhcpc"))?;
        let t = Instant::now();
        let deadline = timeout + Duration::from_secs(5);
        let mut timed_out = false;
        while child.try_wait().ok().flatten().is_none() {
            if t.elapsed() >= deadline {
                let _ = child.kill();
                timed_out = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let o = child
            .wait_with_output()
            .map_err(io_err("waiting for udhcpc"))?;
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let env: BTreeMap<String, String> = std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dhcp_err = |why: String| HvLabError::Dhcp {
            vm: vm.into(),
            why,
            output: output.clone(),
        };
        if timed_out {
            return Err(dhcp_err(format!(
                "udhcpc did not finish within {} s",
                deadline.as_secs()
            )));
        }
        let ip = env
            .get("ip")
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
            .ok_or_else(|| dhcp_err(format!("no lease ({})", o.status)))?;
        self.say(&format!(
            "VM {vm}: DHCP lease {ip}/{} router {} from {} ({} ms)",
            env.get("mask").map(String::as_str).unwrap_or("?"),
            env.get("router").map(String::as_str).unwrap_or("-"),
            env.get("serverid").map(String::as_str).unwrap_or("?"),
            t.elapsed().as_millis()
        ));
        Ok(Lease { ip, env })
    }

    /// `ping -c count -i 0.2 -W 1 dst` inside namespace `ns`.
    pub fn ping_in(ns: &Netns, dst: Ipv4Addr, count: u32) -> Result<Ping, HvLabError> {
        let o = ns
            .command("ping")
            .args(["-n", "-c", &count.to_string(), "-i", "0.2", "-W", "1"])
            .arg(dst.to_string())
            .stdin(Stdio::null())
            .output()
            .map_err(io_err("running ping"))?;
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let (transmitted, received) = parse_ping(&output);
        Ok(Ping {
            transmitted,
            received,
            output,
        })
    }

    /// VM `vm` pings `dst` `count` times.
    pub fn ping(&self, vm: &str, dst: Ipv4Addr, count: u32) -> Result<Ping, HvLabError> {
        let p = Self::ping_in(&self.vm(vm)?.ns, dst, count)?;
        self.say(&format!(
            "VM {vm} -> {dst}: {}/{} echo replies",
            p.received, p.transmitted
        ));
        Ok(p)
    }

    // ---- kernel hosts ----

    /// Gives kernel host `kh` a Linux VXLAN device on network `network_id` (its VNI) with
    /// `ip/prefix_len` and MAC `mac`, heads unknown and broadcast frames to every strato VTEP,
    /// and creates its port in the API (that MAC and IP, `binding:host_id` = `kh`,
    /// `binding:profile` `{"interface": "vx0", "kind": "veth"}`).
    pub fn attach_kernel_host(
        &mut self,
        kh: &str,
        tenant: &str,
        network_id: &str,
        ip: Ipv4Addr,
        prefix_len: u8,
        mac: &str,
    ) -> Result<KernelAttachment, HvLabError> {
        let ki = self
            .kernel
            .iter()
            .position(|k| k.name == kh)
            .ok_or_else(|| HvLabError::Unknown {
                what: "kernel host",
                name: kh.into(),
            })?;
        let net = self.api("GET", &format!("/v2.0/networks/{network_id}"), None)?;
        let vni = net["network"]["provider:segmentation_id"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                HvLabError::Invalid(format!("network {network_id} shows no VNI: {net}"))
            })?;
        let port = self.api(
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {
                "network_id": network_id, "tenant_id": tenant, "name": kh,
                "mac_address": mac, "fixed_ips": [{"ip_address": ip.to_string()}],
                "device_owner": "compute:kernel", "binding:host_id": kh,
                // The compiler gives rules only to ports bound to a host AND an interface;
                // on a kernel host that interface is vx0, an existing device (kind veth: not
                // created by anyone; no strato runs there to attach it).
                "binding:profile": {"interface": VXLAN_IF, "kind": "veth"},
            }})),
        )?["port"]
            .clone();
        let k = &self.kernel[ki];
        let (vni_s, local) = (vni.to_string(), k.vtep_ip.to_string());
        k.ns.ip(&[
            "link",
            "add",
            VXLAN_IF,
            "type",
            "vxlan",
            "id",
            &vni_s,
            "local",
            &local,
            "dstport",
            "4789",
            "nolearning",
            "dev",
            UNDERLAY_IF,
        ])?;
        k.ns.ip(&["link", "set", "dev", VXLAN_IF, "address", mac])?;
        k.ns.ip(&[
            "addr",
            "add",
            &format!("{ip}/{prefix_len}"),
            "dev",
            VXLAN_IF,
        ])?;
        for h in &self.hosts {
            k.ns.exec(
                "bridge",
                &[
                    "fdb",
                    "append",
                    "00:00:00:00:00:00",
                    "dev",
                    VXLAN_IF,
                    "dst",
                    &h.vtep_ip.to_string(),
                ],
            )?;
        }
        k.ns.ip(&["link", "set", "dev", VXLAN_IF, "up"])?;
        self.say(&format!(
            "kernel host {kh}: {VXLAN_IF} VNI {vni} local {local} mac {mac} ip {ip}/{prefix_len}, floods to {}",
            self.hosts
                .iter()
                .map(|h| h.vtep_ip.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let a = KernelAttachment {
            vni,
            mac: mac.into(),
            ip,
            port,
        };
        self.kernel[ki].attached = Some(a.clone());
        Ok(a)
    }

    /// Kernel host `kh`'s VXLAN device counters: (rx packets, tx packets).
    pub fn kernel_vxlan_packets(&self, kh: &str) -> Result<(u64, u64), HvLabError> {
        let k = self.kernel_host(kh)?;
        let o = k.ns.ip(&["-s", "-j", "link", "show", "dev", VXLAN_IF])?;
        let v: Value = serde_json::from_slice(&o.stdout)
            .map_err(|e| HvLabError::Invalid(format!("`ip -s -j link show`: {e}")))?;
        let s = &v[0]["stats64"];
        Ok((
            s["rx"]["packets"].as_u64().unwrap_or(0),
            s["tx"]["packets"].as_u64().unwrap_or(0),
        ))
    }

    // ---- the daemons ----

    fn ctl(&self, host: &str, req: &Request) -> Result<Value, HvLabError> {
        let h = self.host(host)?;
        ctl::call(&h.socket(), req).map_err(|source| HvLabError::Ctl {
            host: host.into(),
            source,
        })
    }

    /// `strato ctl stats` of `host`.
    pub fn stats(&self, host: &str) -> Result<StatsReport, HvLabError> {
        let v = self.ctl(host, &Request::Stats)?;
        serde_json::from_value(v).map_err(|e| HvLabError::Invalid(format!("stats: {e}")))
    }

    /// `strato ctl dump-flows` of `host`.
    pub fn dump_flows(&self, host: &str) -> Result<FlowsReport, HvLabError> {
        let v = self.ctl(host, &Request::DumpFlows)?;
        serde_json::from_value(v).map_err(|e| HvLabError::Invalid(format!("dump-flows: {e}")))
    }

    /// The last `n` lines of every daemon's log, each under a header (for failure messages).
    pub fn log_tails(&self, n: usize) -> String {
        let mut s = String::new();
        for h in &self.hosts {
            s.push_str(&format!("--- {} ({}) ---\n", h.name, h.log().display()));
            s.push_str(&tail(&h.log(), n));
        }
        s
    }

    /// Is every daemon still running? (`Err` names the first that is not.)
    pub fn check_daemons(&mut self) -> Result<(), HvLabError> {
        for i in 0..self.hosts.len() {
            let gone = match self.hosts[i].daemon.as_mut().map(|d| d.child.try_wait()) {
                Some(Ok(Some(st))) => Some(format!("`strato run` exited ({st})")),
                None => Some("not started".into()),
                _ => None,
            };
            if let Some(why) = gone {
                return Err(self.daemon_error(i, why));
            }
        }
        Ok(())
    }

    fn teardown(&mut self) {
        for h in &mut self.hosts {
            if let Some(mut d) = h.daemon.take() {
                let clean = d.stop();
                if self.progress {
                    println!(
                        "hvlab: host {}: strato stopped ({})",
                        h.name,
                        if clean { "SIGTERM" } else { "SIGKILL" }
                    );
                }
            }
        }
        // Processes still inside our namespaces (a DHCP client, a ping) keep them alive.
        let names: Vec<String> = self
            .vms
            .iter()
            .map(|v| v.ns.name().to_string())
            .chain(self.kernel.iter().map(|k| k.ns.name().to_string()))
            .chain(self.hosts.iter().map(|h| h.ns.name().to_string()))
            .chain(self.fabric.iter().map(|f| f.name().to_string()))
            .collect();
        let me = std::process::id() as i32;
        let mut pids = Vec::new();
        for ns in &names {
            if let Ok(out) = netns::ip(&["netns", "pids", ns]) {
                pids.extend(
                    String::from_utf8_lossy(&out.stdout)
                        .split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok())
                        .filter(|&p| p > 1 && p != me),
                );
            }
        }
        for &p in &pids {
            signal(p, libc::SIGKILL);
        }
        if !pids.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
        // Netns deletes each namespace on drop.
        self.vms.clear();
        self.kernel.clear();
        self.hosts.clear();
        self.fabric = None;
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        if self.progress {
            println!("hvlab: lab {} torn down", self.prefix);
        }
    }
}

impl Drop for HvLab {
    fn drop(&mut self) {
        self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_without_namespaces(hosts: usize, kernel: usize) -> HvLab {
        // Namespaces adopted by name but never created: dropping them is a failed no-op.
        let mut lab = HvLab {
            prefix: "sttest".into(),
            dir: std::env::temp_dir().join("strato-hvlab-unit-never-created"),
            keep_dir: true,
            progress: false,
            tenants: vec!["red".into(), "blue".into()],
            vms: Vec::new(),
            kernel: Vec::new(),
            hosts: Vec::new(),
            fabric: Some(Netns::adopt("sttest-never-created-fab").keep()),
        };
        for i in 1..=hosts {
            lab.hosts.push(Hypervisor {
                name: format!("hv{i}"),
                mgmt_ip: addr(MGMT_NET, i as u8),
                vtep_ip: addr(UNDERLAY_NET, i as u8),
                dir: PathBuf::from(format!("/nonexistent/hv{i}")),
                ns: Netns::adopt("sttest-never-created").keep(),
                daemon: None,
            });
        }
        for k in 1..=kernel {
            lab.kernel.push(KernelHost {
                name: format!("kh{k}"),
                vtep_ip: addr(UNDERLAY_NET, 100 + k as u8),
                attached: None,
                ns: Netns::adopt("sttest-never-created").keep(),
            });
        }
        lab
    }

    /// The parts of a daemon config file the lab fills in, parsed by the crates that own them.
    #[derive(serde::Deserialize)]
    struct DaemonConfig {
        api: Option<strato_tenant::TenantConfig>,
        tenant: Option<strato_overlay::agent::config::AgentConfig>,
    }

    #[test]
    fn daemon_configs_parse_and_list_every_host() {
        let lab = lab_without_namespaces(2, 1);
        let cfg = LabConfig::new("/bin/false", 2, 1);
        let first = lab.daemon_config(&cfg, 0);
        let c: DaemonConfig = toml::from_str(&first).expect("first host's config");
        let api = c.api.expect("[api] on the first host");
        assert_eq!(api.listen.to_string(), "10.99.0.1:9696");
        let hosts: Vec<(String, String)> = api
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.vtep_ip.to_string()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("hv1".into(), "192.168.77.1".into()),
                ("hv2".into(), "192.168.77.2".into()),
                ("kh1".into(), "192.168.77.101".into())
            ]
        );
        assert_eq!(api.tokens.len(), 3, "provider + one token per tenant");
        let t = c.tenant.expect("[tenant]");
        assert_eq!(t.host, "hv1");
        assert_eq!(t.underlay, UNDERLAY_IF);
        assert_eq!(t.server, None, "the API host's agent reads its own [api]");
        assert!(t.validate(true).is_ok());

        let second: DaemonConfig =
            toml::from_str(&lab.daemon_config(&cfg, 1)).expect("second host's config");
        assert!(second.api.is_none(), "only the first host serves the API");
        let t = second.tenant.expect("[tenant]");
        assert_eq!(t.host, "hv2");
        assert_eq!(t.server.as_deref(), Some("http://10.99.0.1:9696"));
        assert_eq!(t.token.as_deref(), Some(PROVIDER_TOKEN));
        assert!(t.validate(false).is_ok());
    }

    #[test]
    fn ping_output_is_parsed() {
        let ok = "PING 10.0.0.3 (10.0.0.3) 56(84) bytes of data.\n\
                  64 bytes from 10.0.0.3: icmp_seq=1 ttl=64 time=0.9 ms\n\n\
                  --- 10.0.0.3 ping statistics ---\n\
                  3 packets transmitted, 2 received, 33.3333% packet loss, time 402ms\n";
        assert_eq!(parse_ping(ok), (3, 2));
        let none = "--- 10.0.0.9 ping statistics ---\n\
                    3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2040ms\n";
        assert_eq!(parse_ping(none), (3, 0));
        assert_eq!(
            parse_ping("ping: connect: Network is unreachable\n"),
            (0, 0)
        );
    }
}
