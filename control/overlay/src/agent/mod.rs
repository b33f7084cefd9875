//! The tenant agent: one host's side of the tenant overlay, on the controller thread.
//!
//! - [`config`]: the daemon's `[tenant]` section.
//! - [`source`]: where the model comes from ([`source::ModelUpdate`] streams); [`remote`]:
//!   another host's API as a source.
//! - [`underlay`]: the underlay port: ARP for the local VTEP address, next hops of the others.
//!
//! Contract:
//! - [`install`] puts an [`Agent`] on the controller thread. Each pass of the controller's
//!   loop, the agent applies every model update waiting to its one [`ModelView`] and then to
//!   the [`crate::compiler::Compiler`] (a `Reset` reloads both, a `Change` is applied once to
//!   the view and compiled incrementally), answers the frames the compiler's punt rules sent
//!   up from the same view (ARP and ND for known addresses, DHCPv4 for ports on subnets with
//!   DHCP), and keeps the underlay resolved. One revalidation per pass, however many updates
//!   it held.
//! - The bridge belongs to the compiler: the daemon turns learning off. Punted frames with a
//!   tenant cookie go to the agent only, never to OpenFlow connections.
//! - A port bound to this host whose interface is not a bridge port yet is handed to the
//!   `attach` function (which must not block: the daemon's runs on its own thread). The
//!   bridge's port events drive the rest, with no polling: when the interface is added to
//!   the bridge ([`PortChange::Added`]) its ports are compiled again at once, inside that
//!   event, and get their rules. The attach can fail (a veth not created yet, a tap that
//!   cannot be opened) or a request be lost, so an interface still missing is asked for
//!   again every [`ATTACH_RETRY`]: that slow retry is the agent's only timer.
//! - When a bridge port the rules deliver to is deleted ([`PortChange::Deleted`]), the ports
//!   bound to it lose their rules at once (its number may go to another interface) and the
//!   interface is asked for again like any missing one (unbind the port to keep it away). A
//!   port that goes down by itself or is forgotten ([`PortChange::Down`],
//!   [`PortChange::Forgotten`]) is still a bridge port: its number stays taken, xlate no
//!   longer sends to it, and its ports keep their rules until it is deleted.
//! - Interfaces are never detached by the agent (a deleted tenant port loses its rules at
//!   once; its tap or veth stays for whoever made it).
//! - Bad frames get no answer and are counted by outcome; nothing here panics on tenant input.

pub mod config;
pub mod remote;
pub mod source;
pub mod underlay;

use crate::compiler::{Compiler, Delta, RuleKind, SkipReason, META_MASK};
use crate::responder::{arp, dhcp, nd, Mac};
use crate::view::{Applied, ModelView};
use source::{ModelSource, ModelUpdate, Vtep};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use strato_datapath::dpif::UpcallKind;
use strato_flowtable::{DpAction, PortNo};
use strato_switch::app::{App, AppEvent, PortChange, Punt, Readiness};
use strato_switch::controller::{Controller, ControllerHandle, PacketIn};
use strato_switch::learning::Learning;
use strato_tenant::model::{LocalInterface, MacAddr, Port, Snapshot, Subnet};

/// How often a missing interface is asked for again.
pub const ATTACH_RETRY: Duration = Duration::from_secs(2);
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

/// The port answering for `ip` on the network of VNI `vni` (admin up only).
fn mac_of(view: &ModelView, vni: u32, ip: IpAddr) -> Option<&Port> {
    let net = view.network_by_vni(vni)?;
    view.port_by_ip(&net.id, ip).filter(|p| p.admin_state_up)
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
    /// The model: the one copy the compiler and the responders read.
    view: ModelView,
    compiler: Compiler,
    /// DHCP servers by subnet id, with the VNI they were built for (built on first use,
    /// dropped when the subnet changes).
    dhcp: HashMap<String, (u32, Option<dhcp::DhcpServer>)>,
    underlay: underlay::Underlay,
    /// Interfaces bound here that are not bridge ports yet: name -> (interface, next ask).
    pending: BTreeMap<String, (LocalInterface, Instant)>,
    /// No ask is due before this (`None`: nothing pending). May be early, never late.
    next_ask: Option<Instant>,
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
            view: ModelView::new(),
            dhcp: HashMap::new(),
            underlay: underlay::Underlay::new(spec.underlay, spec.underlay_mac),
            pending: BTreeMap::new(),
            next_ask: None,
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

    /// The model as this agent holds it.
    pub fn view(&self) -> &ModelView {
        &self.view
    }

    /// Interfaces waited for: bound here, asked for, not bridge ports yet (by name).
    pub fn pending(&self) -> impl Iterator<Item = &str> {
        self.pending.keys().map(String::as_str)
    }

    /// One pass (see the module docs): updates, punts, attach retries, the underlay.
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
        self.ask_again();
        self.underlay.run(c, &mut self.stats);
    }

    fn ofports(c: &Controller) -> HashMap<String, PortNo> {
        c.ports().into_iter().map(|p| (p.name, p.no)).collect()
    }

    fn update(&mut self, c: &mut Controller, u: ModelUpdate, names: &HashMap<String, PortNo>) {
        match u {
            ModelUpdate::Reset { snapshot, hosts } => self.reset(c, &snapshot, &hosts, names),
            ModelUpdate::Change(ev) if self.loaded => {
                let applied = self.view.apply(&ev.change);
                if let Applied::SubnetUpserted { new: s, .. }
                | Applied::SubnetDeleted { gone: s, .. } = &applied
                {
                    self.dhcp.remove(&s.id);
                }
                let (comp, view) = (&mut self.compiler, &self.view);
                let r =
                    c.change(|p, _| comp.apply(p, view, &applied, |i| names.get(&i.name).copied()));
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
        self.view.load(snapshot);
        self.dhcp.clear();
        self.underlay
            .set_vteps(c, local, hosts, &self.host, self.tunnel);
        let (comp, view) = (&mut self.compiler, &self.view);
        let r = c.change(|p, _| comp.load(p, view, |i| names.get(&i.name).copied()));
        self.loaded = true;
        self.stats.resets += 1;
        self.pending.clear();
        self.next_ask = None;
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
                    let Some(iface) = self.view.port(id).and_then(|p| p.binding.interface.clone())
                    else {
                        continue;
                    };
                    if !self.pending.contains_key(&iface.name) {
                        self.stats.attach_requests += 1;
                        tracing::info!(port = %id, interface = %iface.name,
                            kind = iface.kind.as_str(), "attaching a bound interface");
                        (self.attach)(iface.clone());
                        let next = Instant::now() + ATTACH_RETRY;
                        self.next_ask = Some(self.next_ask.map_or(next, |t| t.min(next)));
                        self.pending.insert(iface.name.clone(), (iface, next));
                    }
                }
            }
            Err(e) => {
                self.stats.compile_errors += 1;
                tracing::error!(%e, "tenant compile failed; the next full model repairs it");
            }
        }
    }

    /// Compiles again the ports bound here to interface `name` (it came or went).
    fn recompile_interface(
        &mut self,
        c: &mut Controller,
        name: &str,
        ofport_of: impl Fn(&LocalInterface) -> Option<PortNo>,
    ) {
        let ids: Vec<String> = self
            .view
            .ports_on_interface(&self.host, name)
            .map(|p| p.id.clone())
            .collect();
        self.recompile(c, &ids, ofport_of);
    }

    fn recompile(
        &mut self,
        c: &mut Controller,
        ids: &[String],
        ofport_of: impl Fn(&LocalInterface) -> Option<PortNo>,
    ) {
        for id in ids {
            let (comp, view) = (&mut self.compiler, &self.view);
            let r = c.change(|p, _| comp.recompile_port(p, view, id, &ofport_of));
            self.after_compile(r);
        }
    }

    /// Bridge port `no` was added: if it is an interface waited for, its ports get their
    /// rules now.
    fn port_added(&mut self, c: &mut Controller, no: PortNo) {
        if self.pending.is_empty() {
            return;
        }
        let Some(name) = c.port(no).map(|p| p.name.clone()) else {
            return;
        };
        if self.pending.remove(&name).is_none() {
            return;
        }
        // Only the ports bound to this interface are compiled: it is at `no`.
        self.recompile_interface(c, &name, |i| (i.name == name).then_some(no));
        tracing::info!(interface = %name, ofport = no, "bound interface attached");
    }

    /// Bridge port `no` was deleted: the ports delivered to it lose their rules (its number
    /// may be given to another interface) and their interface is asked for again.
    fn port_deleted(&mut self, c: &mut Controller, no: PortNo) {
        let ids = self.compiler.ports_on(no);
        if ids.is_empty() {
            return;
        }
        tracing::info!(
            ofport = no,
            ports = ids.len(),
            "a bound interface left the bridge: its ports lose their rules"
        );
        let names = Self::ofports(c);
        self.recompile(c, &ids, |i| names.get(&i.name).copied());
    }

    /// Asks again for the interfaces still missing after [`ATTACH_RETRY`].
    fn ask_again(&mut self) {
        let now = Instant::now();
        if self.next_ask.is_none_or(|t| t > now) {
            return;
        }
        // Interfaces no port is bound to here any more are not asked for again.
        let (view, host) = (&self.view, &self.host);
        self.pending
            .retain(|name, _| view.ports_on_interface(host, name).next().is_some());
        for (iface, next) in self.pending.values_mut() {
            if *next <= now {
                *next = now + ATTACH_RETRY;
                self.stats.attach_requests += 1;
                (self.attach)(iface.clone());
            }
        }
        self.next_ask = self.pending.values().map(|(_, t)| *t).min();
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
                let v = &self.view;
                let out = arp::respond(&p.frame, |ip| {
                    mac_of(v, vni, IpAddr::V4(ip)).map(|p| p.mac_address.0)
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
                let v = &self.view;
                let out = nd::respond(&p.frame, |ip| {
                    mac_of(v, vni, IpAddr::V6(ip)).map(|p| nd::Neighbor {
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
        let found = {
            let v = &self.view;
            let net = v.network_by_vni(vni)?;
            match v.port_by_mac(&net.id, MacAddr(src)) {
                None => Err("dhcp_unknown_client"),
                // Its IPv4 address on a DHCP subnet of the network.
                Some(port) => port
                    .fixed_ips
                    .iter()
                    .find_map(|f| {
                        let s = v.subnet(&f.subnet_id)?;
                        match f.ip_address {
                            IpAddr::V4(ip) if s.enable_dhcp && s.network_id == net.id => {
                                Some((s.id.clone(), ip, port.mac_address.0))
                            }
                            _ => None,
                        }
                    })
                    .ok_or("dhcp_no_address"),
            }
        };
        let (subnet_id, ip, mac) = match found {
            Ok(f) => f,
            Err(why) => {
                self.unanswered(why);
                return None;
            }
        };
        let server = self.dhcp_server(&subnet_id, vni)?;
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

    /// The DHCP server of `subnet` on the network of `vni` (None: not served).
    fn dhcp_server(&mut self, subnet_id: &str, vni: u32) -> Option<&dhcp::DhcpServer> {
        if self.dhcp.get(subnet_id).is_none_or(|(v, _)| *v != vni) {
            let s = self.view.subnet(subnet_id)?;
            let server = dhcp_config(s, vni).and_then(|cfg| match dhcp::DhcpServer::new(cfg) {
                Ok(srv) => Some(srv),
                Err(e) => {
                    tracing::warn!(subnet = %s.id, cidr = %s.cidr, %e, "subnet not served by DHCP");
                    None
                }
            });
            self.dhcp.insert(subnet_id.to_string(), (vni, server));
        }
        self.dhcp.get(subnet_id)?.1.as_ref()
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

    /// A bridge port came or went (see the module docs).
    fn event(&mut self, c: &mut Controller, ev: &AppEvent) {
        let &AppEvent::Port { no, change } = ev else {
            return;
        };
        if !self.loaded {
            return;
        }
        match change {
            PortChange::Added => self.port_added(c, no),
            PortChange::Deleted => self.port_deleted(c, no),
            // Still a bridge port (its number stays taken, xlate no longer sends to it): its
            // ports keep their rules until it is deleted.
            PortChange::Down | PortChange::Forgotten => {}
        }
    }

    /// The next attach retry, if an interface is waited for.
    fn next_timer(&self) -> Option<Duration> {
        self.next_ask
            .map(|t| t.saturating_duration_since(Instant::now()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiler::{owner_cookie, OwnerClass, OWNER_MASK};
    use crossbeam::channel::{unbounded, Sender};
    use std::sync::{Arc, Mutex};
    use strato_datapath::port::{FrameRing, MemPort, Port as DpPort, PortKind};
    use strato_datapath::worker::WorkerConfig;
    use strato_flowtable::pipeline::{Pipeline, PortEnv};
    use strato_switch::controller::{start, Running};
    use strato_tenant::model::{Binding, FixedIp, InterfaceKind, Network, NetworkType};

    const UNDERLAY: PortNo = 100;
    const TUNNEL: PortNo = 4789;
    const VM: PortNo = 7;

    fn network() -> Network {
        Network {
            id: "red".into(),
            tenant_id: "t".into(),
            name: "red".into(),
            description: String::new(),
            admin_state_up: true,
            shared: false,
            network_type: NetworkType::Vxlan,
            vni: 100,
            mtu: 1450,
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 0,
        }
    }

    fn port() -> Port {
        Port {
            id: "p1".into(),
            network_id: "red".into(),
            tenant_id: "t".into(),
            name: "p1".into(),
            description: String::new(),
            mac_address: MacAddr([2, 0, 0, 0, 0, 1]),
            admin_state_up: true,
            fixed_ips: vec![FixedIp {
                subnet_id: "sub".into(),
                ip_address: "10.0.0.2".parse().unwrap(),
            }],
            device_id: String::new(),
            device_owner: "compute:nova".into(),
            binding: Binding {
                host_id: "hv1".into(),
                interface: Some(LocalInterface {
                    name: "vm1".into(),
                    kind: InterfaceKind::Tap,
                }),
            },
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 0,
        }
    }

    fn mem_port(no: PortNo, name: &str) -> DpPort {
        DpPort::new(
            no,
            name,
            PortKind::Memory(MemPort::rings(FrameRing::new(64), FrameRing::new(64))),
        )
    }

    /// A controller with an underlay port and an agent for host `hv1` whose model comes
    /// from the returned sender and whose attach requests are recorded.
    fn agent_host() -> (Running, Sender<ModelUpdate>, Arc<Mutex<Vec<String>>>) {
        let run = start(
            Pipeline::default(),
            PortEnv::default(),
            vec![WorkerConfig::default()],
        )
        .unwrap();
        run.handle
            .call(|c| {
                c.add_port(0, mem_port(UNDERLAY, "ul"));
                c.update(|_, env| {
                    env.add_port(UNDERLAY, true, true);
                });
            })
            .unwrap();
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let a2 = asked.clone();
        let spec = AgentSpec {
            host: "hv1".into(),
            underlay: UNDERLAY,
            underlay_mac: [2, 0, 0, 0, 0xee, 1],
            tunnel_ofport: TUNNEL,
            attach: Box::new(move |i| a2.lock().unwrap().push(i.name)),
        };
        let (tx, rx) = unbounded();
        install(
            &run.handle,
            Agent::new(spec, ModelSource::new(rx, "test".into(), None)),
        )
        .unwrap();
        (run, tx, asked)
    }

    /// Rules of the compiler owned by a port (any port).
    fn port_rules(c: &Controller) -> usize {
        let class = OWNER_MASK & !0xffff_ffff;
        c.pipeline()
            .rules()
            .filter(|r| r.cookie & class == owner_cookie(OwnerClass::Port, 0))
            .count()
    }

    fn wait_for(what: &str, f: impl Fn() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn an_interface_attached_later_gets_its_rules_on_the_added_event() {
        let (run, tx, asked) = agent_host();
        let h = run.handle.clone();
        tx.send(ModelUpdate::Reset {
            snapshot: Snapshot {
                seq: 1,
                networks: vec![network()],
                subnets: vec![],
                ports: vec![port()],
            },
            hosts: vec![Vtep {
                name: "hv1".into(),
                vtep_ip: "192.0.2.1".parse().unwrap(),
            }],
        })
        .unwrap();
        h.wake();
        wait_for("the attach request", || asked.lock().unwrap().len() == 1);
        assert_eq!(asked.lock().unwrap()[0], "vm1");
        // Waiting for it sets no fast timer: the next thing due is the slow retry.
        let (pending, timer, rules) = h
            .call(|c| {
                let a = c.app::<Agent>().unwrap();
                let pending: Vec<String> = a.pending().map(String::from).collect();
                (pending, a.next_timer(), port_rules(c))
            })
            .unwrap();
        assert_eq!(pending, ["vm1"]);
        assert!(timer.is_some_and(|t| t > ATTACH_RETRY / 2), "{timer:?}");
        assert_eq!(rules, 0);
        // The interface becomes a bridge port: its rules are there as soon as add_port
        // returns, within the same call, before any timer or loop pass.
        let (rules, pending, timer) = h
            .call(|c| {
                c.add_port(0, mem_port(VM, "vm1"));
                let a = c.app::<Agent>().unwrap();
                (port_rules(c), a.pending().count(), a.next_timer())
            })
            .unwrap();
        // ARP punt, ingress, L2 drop, IPv4 and ARP allows, L3 drop, unicast.
        assert_eq!(rules, 7);
        assert_eq!(pending, 0);
        assert!(timer.is_none_or(|t| t > ATTACH_RETRY / 2), "{timer:?}");
        let st = status(&h).unwrap().unwrap().1;
        assert_eq!((st.ports_active, st.ports_skipped), (1, 0));
        assert_eq!(st.attach_requests, 1);
        // A port that goes down by itself or is forgotten keeps its rules.
        let rules = h
            .call(|c| {
                c.forget_port(VM);
                port_rules(c)
            })
            .unwrap();
        assert_eq!(rules, 7);
        // Deleted from the bridge: the rules go at once and the interface is asked for again.
        let (rules, pending) = h
            .call(|c| {
                c.del_port(VM);
                let a = c.app::<Agent>().unwrap();
                (port_rules(c), a.pending().count())
            })
            .unwrap();
        assert_eq!((rules, pending), (0, 1));
        assert_eq!(*asked.lock().unwrap(), ["vm1", "vm1"]);
        let st = status(&h).unwrap().unwrap().1;
        assert_eq!((st.ports_active, st.ports_skipped), (0, 1));
        // Back under another number: rules again, delivering there.
        let rules = h
            .call(|c| {
                c.add_port(0, mem_port(VM + 1, "vm1"));
                let a = c.app::<Agent>().unwrap();
                assert_eq!(a.compiler.ports_on(VM + 1), ["p1"]);
                port_rules(c)
            })
            .unwrap();
        assert_eq!(rules, 7);
        // Ports nobody waits for change nothing.
        let rules = h
            .call(|c| {
                c.add_port(0, mem_port(20, "other"));
                c.del_port(20);
                port_rules(c)
            })
            .unwrap();
        assert_eq!(rules, 7);
    }

    #[test]
    fn a_missing_interface_is_asked_for_again_only_after_the_retry() {
        let (run, tx, asked) = agent_host();
        let h = run.handle.clone();
        tx.send(ModelUpdate::Reset {
            snapshot: Snapshot {
                seq: 1,
                networks: vec![network()],
                subnets: vec![],
                ports: vec![port()],
            },
            hosts: vec![],
        })
        .unwrap();
        h.wake();
        wait_for("the attach request", || !asked.lock().unwrap().is_empty());
        // Many loop passes later (a wake is a pass), still one request.
        for _ in 0..50 {
            h.wake();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(asked.lock().unwrap().len(), 1);
        // The retry comes after ATTACH_RETRY, without any event.
        wait_for("the retry", || asked.lock().unwrap().len() == 2);
        // The port is unbound: it is not asked for again.
        let mut unbound = port();
        unbound.binding.host_id.clear();
        tx.send(ModelUpdate::Change(strato_tenant::model::ChangeEvent {
            seq: 2,
            change: strato_tenant::model::Change::PortUpserted(unbound),
        }))
        .unwrap();
        h.wake();
        std::thread::sleep(ATTACH_RETRY + Duration::from_millis(500));
        assert_eq!(asked.lock().unwrap().len(), 2);
        let pending = h
            .call(|c| c.app::<Agent>().unwrap().pending().count())
            .unwrap();
        assert_eq!(pending, 0);
    }
}
