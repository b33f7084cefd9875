//! The tenant agent: one host's side of the tenant overlay, on the controller thread.
//!
//! - [`config`]: the daemon's `[tenant]` section.
//! - [`source`]: where the model comes from ([`source::ModelUpdate`] streams); [`remote`]:
//!   another host's API as a source.
//! - [`underlay`]: the underlay port: ARP for the local VTEP address, next hops of the others.
//!
//! Contract:
//! - [`install`] puts an [`Agent`] on the controller thread. Each pass of the controller's
//!   loop, the agent applies every model update waiting (a `Reset` recompiles everything, a
//!   `Change` is compiled incrementally by [`crate::compiler::Compiler`]), answers the frames
//!   the compiler's punt rules sent up (ARP and ND for known addresses, DHCPv4 for ports on
//!   subnets with DHCP), and keeps the underlay resolved. One revalidation per pass, however
//!   many updates it held.
//! - The bridge belongs to the compiler: the daemon turns learning off. Punted frames with a
//!   tenant cookie go to the agent only, never to OpenFlow connections.
//! - A port bound to this host whose interface is not a bridge port yet is handed to the
//!   `attach` function (which must not block: the daemon's runs on its own thread), again
//!   every [`ATTACH_RETRY`] while it stays missing; once the interface is a bridge port the
//!   port is compiled again and gets its rules. Interfaces are never detached by the agent
//!   (a deleted port loses its rules at once; its tap or veth stays for whoever made it).
//! - Bad frames get no answer and are counted by outcome; nothing here panics on tenant input.

pub mod config;
pub mod remote;
pub mod source;
pub mod underlay;

use crate::compiler::{Compiler, Delta, RuleKind, SkipReason, META_MASK};
use crate::responder::{arp, dhcp, nd, Mac};
use source::{ModelSource, ModelUpdate, Vtep};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use strato_datapath::dpif::UpcallKind;
use strato_flowtable::{DpAction, PortNo};
use strato_switch::app::{App, Punt, Readiness};
use strato_switch::controller::{Controller, ControllerHandle, PacketIn};
use strato_switch::learning::Learning;
use strato_tenant::model::{Change, LocalInterface, MacAddr, Network, Port, Snapshot, Subnet};

/// How often a missing interface is asked for again.
pub const ATTACH_RETRY: Duration = Duration::from_secs(2);
/// How often the bridge ports are looked through for interfaces waited for.
const PENDING_CHECK: Duration = Duration::from_millis(20);
/// Most model updates applied in one pass of the controller loop (the rest wait for the next).
const UPDATES_PER_PASS: usize = 20_000;
/// DHCP lease time handed out (Neutron's default `dhcp_lease_duration`).
pub const LEASE_SECONDS: u32 = 86_400;
/// VXLAN over IPv4 costs 50 bytes of a 1500-byte underlay MTU.
const VXLAN_MTU: u16 = 1450;

/// Opens a bound port's interface as a bridge port (must not block the caller).
pub type AttachFn = Box<dyn Fn(LocalInterface) + Send>;

/// What the agent needs from the daemon.
pub struct AgentSpec {
    /// This host's name (`binding:host_id` of the ports bound here).
    pub host: String,
    /// The underlay port (already a bridge port).
    pub underlay: PortNo,
    /// The underlay interface's MAC (the outer source of every VXLAN frame).
    pub underlay_mac: Mac,
    /// OpenFlow number of the VXLAN tunnel port.
    pub tunnel_ofport: PortNo,
    /// Attaches bound interfaces.
    pub attach: AttachFn,
}

/// Counters of the agent (`strato ctl show --json` prints them).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AgentStats {
    /// Full recompiles (a source's `Reset`).
    pub resets: u64,
    /// Changes compiled incrementally.
    pub changes: u64,
    /// Compile errors (the next `Reset` repairs them).
    pub compile_errors: u64,
    /// Ports with rules (here or on a remote VTEP).
    pub ports_active: u64,
    /// Ports known without rules (down, unbound, unknown host, interface not attached yet).
    pub ports_skipped: u64,
    /// ARP requests answered for tenant ports.
    pub arp_replies: u64,
    /// Neighbor solicitations answered.
    pub nd_replies: u64,
    /// DHCP answers (offer, ack, nak, inform ack).
    pub dhcp_replies: u64,
    /// Punted frames not answered, by outcome name.
    pub unanswered: BTreeMap<String, u64>,
    /// Attach requests made.
    pub attach_requests: u64,
    /// The source's connection problem, if it has one now.
    pub source_down: Option<String>,
    /// Underlay: ARP requests for the local VTEP answered.
    pub vtep_arp_replies: u64,
    /// Underlay: ARP requests sent for remote VTEPs.
    pub vtep_arp_requests: u64,
    /// Underlay: remote VTEPs resolved (next hop known) / known.
    pub vteps_resolved: u64,
    /// Remote VTEPs known.
    pub vteps: u64,
    /// Punted frames dropped because the agent's queue was full.
    pub punts_dropped: u64,
}

/// The agent's model indexes for the responders.
#[derive(Default)]
struct Model {
    networks: HashMap<String, Network>,
    subnets: HashMap<String, Subnet>,
    ports: HashMap<String, Port>,
    /// VNI -> network id.
    by_vni: HashMap<u32, String>,
    /// (network id, address) -> port id.
    by_ip: HashMap<(String, IpAddr), String>,
    /// (network id, MAC) -> port id.
    by_mac: HashMap<(String, MacAddr), String>,
    /// DHCP servers by subnet id (built on first use, dropped when the subnet changes).
    dhcp: HashMap<String, Option<dhcp::DhcpServer>>,
}

impl Model {
    fn load(&mut self, s: &Snapshot) {
        *self = Model::default();
        for n in &s.networks {
            self.upsert_network(n.clone());
        }
        for sn in &s.subnets {
            self.subnets.insert(sn.id.clone(), sn.clone());
        }
        for p in &s.ports {
            self.upsert_port(p.clone());
        }
    }

    fn upsert_network(&mut self, n: Network) {
        if let Some(old) = self.networks.get(&n.id) {
            self.by_vni.remove(&old.vni);
        }
        self.by_vni.insert(n.vni, n.id.clone());
        self.networks.insert(n.id.clone(), n);
    }

    fn remove_port(&mut self, id: &str) {
        if let Some(old) = self.ports.remove(id) {
            for f in &old.fixed_ips {
                self.by_ip.remove(&(old.network_id.clone(), f.ip_address));
            }
            self.by_mac
                .remove(&(old.network_id.clone(), old.mac_address));
        }
    }

    fn upsert_port(&mut self, p: Port) {
        self.remove_port(&p.id);
        for f in &p.fixed_ips {
            self.by_ip
                .insert((p.network_id.clone(), f.ip_address), p.id.clone());
        }
        self.by_mac
            .insert((p.network_id.clone(), p.mac_address), p.id.clone());
        self.ports.insert(p.id.clone(), p);
    }

    fn apply(&mut self, c: &Change) {
        match c {
            Change::NetworkUpserted(n) => self.upsert_network(n.clone()),
            Change::NetworkDeleted(n) => {
                self.by_vni.remove(&n.vni);
                self.networks.remove(&n.id);
            }
            Change::SubnetUpserted(s) => {
                self.dhcp.remove(&s.id);
                self.subnets.insert(s.id.clone(), s.clone());
            }
            Change::SubnetDeleted(s) => {
                self.dhcp.remove(&s.id);
                self.subnets.remove(&s.id);
            }
            Change::PortUpserted(p) => self.upsert_port(p.clone()),
            Change::PortDeleted(p) => self.remove_port(&p.id),
        }
    }

    /// The MAC answering for `ip` on the network of VNI `vni`.
    fn mac_of(&self, vni: u32, ip: IpAddr) -> Option<&Port> {
        let net = self.by_vni.get(&vni)?;
        let id = self.by_ip.get(&(net.clone(), ip))?;
        self.ports.get(id).filter(|p| p.admin_state_up)
    }

    /// The DHCP server of `subnet` (None: not served).
    fn dhcp_server(&mut self, subnet_id: &str, vni: u32) -> Option<&dhcp::DhcpServer> {
        if !self.dhcp.contains_key(subnet_id) {
            let s = self.subnets.get(subnet_id)?;
            let server = dhcp_config(s, vni).and_then(|cfg| match dhcp::DhcpServer::new(cfg) {
                Ok(srv) => Some(srv),
                Err(e) => {
                    tracing::warn!(subnet = %s.id, cidr = %s.cidr, %e, "subnet not served by DHCP");
                    None
                }
            });
            self.dhcp.insert(subnet_id.to_string(), server);
        }
        self.dhcp.get(subnet_id)?.as_ref()
    }
}

/// The DHCP settings of an IPv4 subnet with DHCP enabled. The server answers as the gateway
/// address (or the subnet's first address without one) from a per-network virtual MAC.
fn dhcp_config(s: &Subnet, vni: u32) -> Option<dhcp::DhcpConfig> {
    let ipnet::IpNet::V4(net) = s.cidr else {
        return None;
    };
    if !s.enable_dhcp {
        return None;
    }
    let first = Ipv4Addr::from(u32::from(net.network()).wrapping_add(1));
    let gw = match s.gateway_ip {
        Some(IpAddr::V4(g)) => Some(g),
        _ => None,
    };
    Some(dhcp::DhcpConfig {
        server_ip: gw.unwrap_or(first),
        server_mac: dhcp_mac(vni),
        subnet: net.network(),
        prefix_len: net.prefix_len(),
        router: gw,
        dns_servers: s
            .dns_nameservers
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect(),
        host_routes: s
            .host_routes
            .iter()
            .filter_map(|r| match (r.destination, r.nexthop) {
                (ipnet::IpNet::V4(d), IpAddr::V4(nh)) => Some(dhcp::HostRoute {
                    destination: d.network(),
                    prefix_len: d.prefix_len(),
                    nexthop: nh,
                }),
                _ => None,
            })
            .collect(),
        lease_time: LEASE_SECONDS,
        mtu: Some(VXLAN_MTU),
        domain: None,
    })
}

/// The DHCP server's MAC on the network of `vni` (locally administered, unique per VNI).
pub fn dhcp_mac(vni: u32) -> Mac {
    [
        0x02,
        0x53,
        0x44,
        (vni >> 16) as u8,
        (vni >> 8) as u8,
        vni as u8,
    ]
}

/// The tenant agent (see the module docs).
pub struct Agent {
    host: String,
    tunnel: PortNo,
    source: ModelSource,
    attach: AttachFn,
    compiler: Compiler,
    model: Model,
    underlay: underlay::Underlay,
    /// Interfaces bound here that are not bridge ports yet: name -> (interface, next ask).
    pending: BTreeMap<String, (LocalInterface, Instant)>,
    /// When interfaces waited for are looked for next.
    next_pending_check: Instant,
    /// A `Reset` has arrived (before it, punts are not answered and nothing is compiled).
    loaded: bool,
    /// Frames punted by the compiler's or the underlay's rules since the last pass.
    punts: Vec<PacketIn>,
    stats: AgentStats,
}

impl Agent {
    /// A new agent reading `source`.
    pub fn new(spec: AgentSpec, source: ModelSource) -> Agent {
        Agent {
            compiler: Compiler::new(&spec.host, Vec::new(), spec.tunnel_ofport),
            host: spec.host,
            tunnel: spec.tunnel_ofport,
            source,
            attach: spec.attach,
            model: Model::default(),
            underlay: underlay::Underlay::new(spec.underlay, spec.underlay_mac),
            pending: BTreeMap::new(),
            next_pending_check: Instant::now(),
            loaded: false,
            punts: Vec::new(),
            stats: AgentStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> AgentStats {
        let mut s = self.stats.clone();
        let (resolved, total) = self.underlay.resolved();
        s.vteps_resolved = resolved as u64;
        s.vteps = total as u64;
        let (active, skipped) = self.compiler.port_counts();
        s.ports_active = active as u64;
        s.ports_skipped = skipped as u64;
        s
    }

    /// What the source is (`local` or a URL).
    pub fn source(&self) -> &str {
        &self.source.describe
    }

    /// One pass (see the module docs): updates, punts, attachments, the underlay.
    fn pass(&mut self, c: &mut Controller) {
        // The bridge's ports by name, read at most once per pass: ports are added and removed
        // between passes, never during one.
        let mut names: Option<HashMap<String, PortNo>> = None;
        let mut n = 0;
        while n < UPDATES_PER_PASS {
            let Ok(u) = self.source.rx.try_recv() else {
                break;
            };
            n += 1;
            let names = names.get_or_insert_with(|| Self::ofports(c));
            self.update(c, u, names);
        }
        let punts = std::mem::take(&mut self.punts);
        for p in punts {
            self.punt(c, p);
        }
        if !self.pending.is_empty() && Instant::now() >= self.next_pending_check {
            self.next_pending_check = Instant::now() + PENDING_CHECK;
            let names = names.get_or_insert_with(|| Self::ofports(c));
            self.check_pending(c, names);
        }
        self.underlay.run(c, &mut self.stats);
    }

    fn ofports(c: &Controller) -> HashMap<String, PortNo> {
        c.ports().into_iter().map(|p| (p.name, p.no)).collect()
    }

    fn update(&mut self, c: &mut Controller, u: ModelUpdate, names: &HashMap<String, PortNo>) {
        match u {
            ModelUpdate::Reset { snapshot, hosts } => self.reset(c, &snapshot, &hosts, names),
            ModelUpdate::Change(ev) if self.loaded => {
                self.model.apply(&ev.change);
                let comp = &mut self.compiler;
                let r = c.change(|p, _| comp.apply(p, &ev.change, |i| names.get(&i.name).copied()));
                self.stats.changes += 1;
                self.after_compile(r);
            }
            ModelUpdate::Change(_) => {
                tracing::warn!("tenant model change before the first full model: ignored");
            }
            ModelUpdate::Link(down) => {
                match &down {
                    Some(why) => tracing::warn!(source = %self.source.describe, %why,
                        "tenant model source lost; flows stay as they are"),
                    None => tracing::info!(source = %self.source.describe,
                        "tenant model source connected"),
                }
                self.stats.source_down = down;
            }
        }
    }

    fn reset(
        &mut self,
        c: &mut Controller,
        snapshot: &Snapshot,
        hosts: &[Vtep],
        names: &HashMap<String, PortNo>,
    ) {
        let vteps: Vec<(String, IpAddr)> =
            hosts.iter().map(|h| (h.name.clone(), h.vtep_ip)).collect();
        let local = hosts
            .iter()
            .find(|h| h.name == self.host)
            .map(|h| h.vtep_ip);
        if local.is_none() {
            tracing::error!(host = %self.host,
                "this host is not in the tenant API's host list ([[api.host]]): no VXLAN \
                 tunnel; add it there with its vtep_ip");
        }
        self.compiler = Compiler::new(&self.host, vteps, self.tunnel);
        self.model.load(snapshot);
        self.underlay
            .set_vteps(c, local, hosts, &self.host, self.tunnel);
        let comp = &mut self.compiler;
        let r = c.change(|p, _| comp.load(p, snapshot, |i| names.get(&i.name).copied()));
        self.loaded = true;
        self.stats.resets += 1;
        self.pending.clear();
        tracing::info!(
            seq = snapshot.seq,
            networks = snapshot.networks.len(),
            subnets = snapshot.subnets.len(),
            ports = snapshot.ports.len(),
            hosts = hosts.len(),
            "tenant model loaded"
        );
        self.after_compile(r);
    }

    /// Books a compile result: counters, and attach requests for interfaces not yet here.
    fn after_compile(&mut self, r: Result<Delta, crate::compiler::CompileError>) {
        match r {
            Ok(d) => {
                for (id, why) in &d.skipped {
                    if *why != SkipReason::NotAttached {
                        tracing::debug!(port = %id, ?why, "port has no rules");
                        continue;
                    }
                    let Some(iface) = self
                        .model
                        .ports
                        .get(id)
                        .and_then(|p| p.binding.interface.clone())
                    else {
                        continue;
                    };
                    if !self.pending.contains_key(&iface.name) {
                        self.stats.attach_requests += 1;
                        tracing::info!(port = %id, interface = %iface.name,
                            kind = iface.kind.as_str(), "attaching a bound interface");
                        (self.attach)(iface.clone());
                        self.pending
                            .insert(iface.name.clone(), (iface, Instant::now() + ATTACH_RETRY));
                    }
                }
            }
            Err(e) => {
                self.stats.compile_errors += 1;
                tracing::error!(%e, "tenant compile failed; the next full model repairs it");
            }
        }
    }

    /// Interfaces that became bridge ports: compile their ports again. Others: ask again.
    fn check_pending(&mut self, c: &mut Controller, names: &HashMap<String, PortNo>) {
        let now = Instant::now();
        let arrived: Vec<String> = self
            .pending
            .keys()
            .filter(|n| names.contains_key(*n))
            .cloned()
            .collect();
        for name in arrived {
            self.pending.remove(&name);
            let ports: Vec<Port> = self
                .model
                .ports
                .values()
                .filter(|p| {
                    p.binding.host_id == self.host
                        && p.binding.interface.as_ref().is_some_and(|i| i.name == name)
                })
                .cloned()
                .collect();
            for p in ports {
                let comp = &mut self.compiler;
                let ch = Change::PortUpserted(p);
                let r = c.change(|pl, _| comp.apply(pl, &ch, |i| names.get(&i.name).copied()));
                self.after_compile(r);
            }
            tracing::info!(interface = %name, "bound interface attached");
        }
        // Interfaces no port is bound to any more are not asked for again.
        let (model, host) = (&self.model, &self.host);
        self.pending.retain(|name, _| {
            model.ports.values().any(|p| {
                p.binding.host_id == *host
                    && p.binding
                        .interface
                        .as_ref()
                        .is_some_and(|i| i.name == *name)
            })
        });
        for (iface, next) in self.pending.values_mut() {
            if *next <= now {
                *next = now + ATTACH_RETRY;
                self.stats.attach_requests += 1;
                (self.attach)(iface.clone());
            }
        }
    }

    fn unanswered(&mut self, what: &str) {
        *self.stats.unanswered.entry(what.to_string()).or_default() += 1;
    }

    /// Answers one punted frame out of the port it came in on.
    fn punt(&mut self, c: &mut Controller, p: PacketIn) {
        let UpcallKind::Userspace {
            cookie, metadata, ..
        } = p.kind
        else {
            return;
        };
        if underlay::is_underlay_cookie(cookie) {
            self.underlay.punt(c, &p, &mut self.stats);
            return;
        }
        if !self.loaded {
            self.unanswered("not_loaded");
            return;
        }
        let vni = (metadata & META_MASK & 0xffff_ffff) as u32;
        let reply = match RuleKind::of_cookie(cookie) {
            Some(RuleKind::ArpPunt) => {
                let m = &self.model;
                let out = arp::respond(&p.frame, |ip| {
                    m.mac_of(vni, IpAddr::V4(ip)).map(|p| p.mac_address.0)
                });
                match out {
                    arp::ArpOutcome::Reply(f) => {
                        self.stats.arp_replies += 1;
                        Some(f)
                    }
                    o => {
                        self.unanswered(&format!("arp_{}", o.name()));
                        None
                    }
                }
            }
            Some(RuleKind::NdPunt) => {
                let m = &self.model;
                let out = nd::respond(&p.frame, |ip| {
                    m.mac_of(vni, IpAddr::V6(ip)).map(|p| nd::Neighbor {
                        mac: p.mac_address.0,
                        router: p.device_owner.starts_with("network:router"),
                    })
                });
                match out.into_reply() {
                    Some(f) => {
                        self.stats.nd_replies += 1;
                        Some(f)
                    }
                    None => {
                        self.unanswered("nd_unanswered");
                        None
                    }
                }
            }
            Some(RuleKind::DhcpPunt) => self.dhcp(vni, &p.frame),
            _ => {
                self.unanswered("unknown_cookie");
                None
            }
        };
        if let Some(f) = reply {
            c.execute(p.worker, p.in_port, &f, vec![DpAction::Output(p.in_port)]);
        }
    }

    fn dhcp(&mut self, vni: u32, frame: &[u8]) -> Option<Vec<u8>> {
        // The client is the port with the frame's source MAC (port security made sure).
        let src = frame.get(6..12).and_then(|s| <[u8; 6]>::try_from(s).ok())?;
        let net = self.model.by_vni.get(&vni)?.clone();
        let Some(port) = self
            .model
            .by_mac
            .get(&(net.clone(), MacAddr(src)))
            .and_then(|id| self.model.ports.get(id))
            .cloned()
        else {
            self.unanswered("dhcp_unknown_client");
            return None;
        };
        // Its IPv4 address on a DHCP subnet of the network.
        let found = port.fixed_ips.iter().find_map(|f| {
            let s = self.model.subnets.get(&f.subnet_id)?;
            (s.enable_dhcp && s.network_id == net && f.ip_address.is_ipv4())
                .then(|| (s.id.clone(), f.ip_address))
        });
        let Some((subnet_id, IpAddr::V4(ip))) = found else {
            self.unanswered("dhcp_no_address");
            return None;
        };
        let mac = port.mac_address.0;
        let server = self.model.dhcp_server(&subnet_id, vni)?;
        let out = server.respond(frame, |m| (m == mac).then_some(ip));
        let name = out.name();
        match out.into_reply() {
            Some(f) => {
                self.stats.dhcp_replies += 1;
                Some(f)
            }
            None => {
                self.unanswered(&format!("dhcp_{name}"));
                None
            }
        }
    }
}

/// Most punted frames waiting for the agent's next pass (more are dropped and counted).
const PUNT_QUEUE: usize = 4096;

impl App for Agent {
    fn name(&self) -> &'static str {
        "tenant-agent"
    }

    fn owns_cookie(&self, cookie: u64) -> bool {
        is_tenant_cookie(cookie)
    }

    /// A tenant punt (ARP/ND/DHCP, underlay ARP): queued for this pass, bounded.
    fn packet_in(&mut self, _c: &mut Controller, punt: Punt<'_>) {
        if self.punts.len() < PUNT_QUEUE {
            self.punts.push(punt.to_packet_in());
        } else {
            self.stats.punts_dropped += 1;
        }
    }

    fn run(&mut self, c: &mut Controller, _ready: &[Readiness]) -> bool {
        self.pass(c);
        false
    }

    fn next_timer(&self) -> Option<Duration> {
        (!self.pending.is_empty()).then_some(PENDING_CHECK)
    }
}

/// True for the cookie of a rule whose punts belong to the agent (the compiler's or the
/// underlay's).
pub fn is_tenant_cookie(cookie: u64) -> bool {
    cookie & crate::compiler::ALL_MASK == crate::compiler::COOKIE_MAGIC
        || underlay::is_underlay_cookie(cookie)
}

/// Installs `agent` on the controller thread (replacing any earlier one) and turns learning
/// off: the bridge's rules are the compiler's from now on.
pub fn install(
    handle: &ControllerHandle,
    agent: Agent,
) -> Result<(), strato_switch::controller::ControlError> {
    handle.call(move |c| {
        Learning::disable(c);
        c.set_app(agent);
    })?;
    handle.wake();
    Ok(())
}

/// The installed agent's counters and source, if there is an agent.
pub fn status(
    handle: &ControllerHandle,
) -> Result<Option<(String, AgentStats)>, strato_switch::controller::ControlError> {
    handle.call(|c| {
        c.app::<Agent>()
            .map(|a| (a.source().to_string(), a.stats()))
    })
}
