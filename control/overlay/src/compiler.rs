//! The tenant compiler: turns the tenant model (networks, subnets, ports; see
//! [`strato_tenant::model`]) into OpenFlow rules in a [`Pipeline`], incrementally, one
//! [`Change`](strato_tenant::model::Change) at a time. Pure: no I/O, no threads, no clock.
//!
//! Contract:
//! - The model is a [`ModelView`] the caller owns and the compiler only reads; the compiler
//!   keeps nothing of the model but what it installed for each port (its cookie handle and
//!   where its rules deliver). [`Compiler::load`] installs the rules of a whole view (after
//!   removing every rule this compiler owns); [`Compiler::apply`] applies one committed
//!   change, after the view applied it (it takes the view's [`Applied`], which also names the
//!   value the change replaced); [`Compiler::recompile_port`] compiles one port again when its
//!   interface came or went. Each reports what it did as a [`Delta`]. Rules of other owners
//!   (cookies without [`COOKIE_MAGIC`]) are never touched.
//! - A port change touches only that port's rules plus its network's two flood rules (which
//!   are replaced only when their actions change). Removing a port deletes exactly the rules
//!   whose cookie names it; the ids of every other port's rules are unchanged.
//! - A port gets rules when it is admin up, on a known, admin-up network, and either bound on
//!   the local host with an attached interface (`ofport_of` returns its number), or bound
//!   (`binding:host_id` alone is enough) on a host of the VTEP list. Otherwise it is listed in
//!   [`Delta::skipped`] (with the reason) and has no rules: a local port without rules drops
//!   everything it sends (table miss), no frame is delivered to it.
//! - Errors: [`CompileError`] for a pipeline that is too small or a pipeline refusal (which
//!   valid rules never cause); after an error the pipeline may hold part of the change, and
//!   [`Compiler::load`] of a fresh snapshot repairs it.
//!
//! Tables (VNI = the network's `vni`; metadata = VNI in bits 0..32, bit 32 = "came from the
//! tunnel"):
//! - table 0 (ingress): `in_port=P,dl_src=MAC(P)` -> `write_metadata:VNI, goto_table:1`
//!   (prio 100); `in_port=P` -> drop (prio 10, the L2 spoof counter);
//!   `in_port=TUNNEL,tun_id=VNI` -> `write_metadata:VNI|FROM_TUNNEL, goto_table:2` (prio 100,
//!   per network: tunnel traffic skips port security).
//! - table 1 (port security L3, DHCP punt): per IPv4 fixed IP of P
//!   `in_port=P,ip,nw_src=IP` and `in_port=P,arp,arp_spa=IP,arp_sha=MAC(P)` -> goto 2; per IPv6
//!   fixed IP `in_port=P,ipv6,ipv6_src=IP` -> goto 2, plus P's EUI-64 link-local address and
//!   `ipv6_src=::` ICMPv6 (duplicate address detection); `in_port=P` -> drop (prio 10, the L3
//!   spoof counter). Per network with a DHCP-enabled IPv4 subnet:
//!   `metadata=VNI,udp,tp_src=68,tp_dst=67` -> controller (prio 200, [`RuleKind::DhcpPunt`]).
//! - table 2 (L2, suppression punts): ARP requests from local ports (`metadata=VNI` exactly,
//!   so not from the tunnel) for a fixed IPv4 address of any port of the network ->
//!   controller (prio 200, [`RuleKind::ArpPunt`], owned by the address's port); neighbor
//!   solicitations for its IPv6 addresses likewise ([`RuleKind::NdPunt`]).
//!   `metadata=VNI,dl_dst=MAC(P)` -> `output:P` for a local port (from anywhere), or
//!   `set_field:VTEP(H)->tun_dst, set_tunnel:VNI, output:TUNNEL` for a port bound on remote
//!   host H (local senders only); prio 50. Broadcast/multicast (`dl_dst=01:00:00:00:00:00/
//!   01:00:00:00:00:00`, prio 10): from a local port -> every local port of the network (xlate
//!   drops the copy to the input port) plus one tunnel copy per remote VTEP with ports on the
//!   network (head-end replication); from the tunnel -> local ports only (split horizon).
//!   Unknown unicast has no rule: dropped (table miss).
//!
//! Cookie layout (64 bits), see [`cookie`]:
//!
//! | bits | meaning |
//! |---|---|
//! | 63..48 | [`COOKIE_MAGIC`] (`"TC"`): a tenant-compiler rule |
//! | 47..44 | owner class: 1 = port, 2 = network ([`OwnerClass`]) |
//! | 43..40 | rule kind ([`RuleKind`]); packet-ins are dispatched on it |
//! | 39..32 | zero |
//! | 31..0 | owner: the port's handle (assigned by the compiler, never reused) or the VNI |
//!
//! Deleting an owner's rules is one delete with `cookie = MAGIC|class|owner` under
//! [`OWNER_MASK`] (the kind bits are ignored).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};

use strato_flowtable::key::Field;
use strato_flowtable::pipeline::{
    Action, AddOptions, Instructions, OfPort, Pipeline, PipelineError, RuleFilter, RuleId, RuleSpec,
};
use strato_flowtable::{Match, PortNo};

use strato_tenant::model::{LocalInterface, MacAddr, Network, Port};

use crate::view::{Applied, ModelView};

/// Top 16 bits of every cookie this compiler writes (`"TC"`).
pub const COOKIE_MAGIC: u64 = 0x5443 << 48;
const MAGIC_MASK: u64 = 0xffff << 48;
const CLASS_SHIFT: u32 = 44;
const CLASS_MASK: u64 = 0xf << CLASS_SHIFT;
const KIND_SHIFT: u32 = 40;
const KIND_MASK: u64 = 0xf << KIND_SHIFT;
const ID_MASK: u64 = 0xffff_ffff;
/// Cookie mask selecting the owner (magic, class and id; not the kind).
pub const OWNER_MASK: u64 = MAGIC_MASK | CLASS_MASK | ID_MASK;
/// Cookie mask selecting every rule of this compiler.
pub const ALL_MASK: u64 = MAGIC_MASK;

/// Metadata bit set on frames that came in through the tunnel.
pub const META_FROM_TUNNEL: u64 = 1 << 32;
/// Metadata bits the compiler writes (VNI and [`META_FROM_TUNNEL`]).
pub const META_MASK: u64 = META_FROM_TUNNEL | 0xffff_ffff;

/// Ingress table (port security L2, tunnel demux).
pub const TABLE_INGRESS: u8 = 0;
/// Port security L3 and DHCP punt.
pub const TABLE_L3: u8 = 1;
/// L2 forwarding and ARP/ND punts.
pub const TABLE_L2: u8 = 2;

const PRIO_PUNT: u16 = 200;
const PRIO_ALLOW: u16 = 100;
const PRIO_UNICAST: u16 = 50;
const PRIO_DROP: u16 = 10;
const PRIO_FLOOD: u16 = 10;

/// Bytes of a punted frame sent to the controller (all of it).
pub const PUNT_MAX_LEN: u16 = 0xffff;

const ETH_IPV4: u128 = 0x0800;
const ETH_ARP: u128 = 0x0806;
const ETH_IPV6: u128 = 0x86dd;
const PROTO_UDP: u128 = 17;
const PROTO_ICMPV6: u128 = 58;
const ND_NEIGHBOR_SOLICIT: u128 = 135;
const MULTICAST_BIT: u128 = 0x0100_0000_0000;

/// Who owns a rule (cookie bits 47..44).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OwnerClass {
    /// A port (owner id: the compiler's handle of the port).
    Port = 1,
    /// A network (owner id: its VNI).
    Network = 2,
}

/// What a rule does (cookie bits 43..40).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// Table 0: a local port's own MAC admitted.
    Ingress = 1,
    /// Table 0: anything else from a local port dropped (L2 spoof count).
    SpoofL2Drop = 2,
    /// Table 1: a fixed address (IP, ARP, IPv6) admitted.
    L3Allow = 3,
    /// Table 1: anything else from a local port dropped (L3 spoof count).
    SpoofL3Drop = 4,
    /// Table 1: DHCP client traffic to the controller.
    DhcpPunt = 5,
    /// Table 2: ARP request for a known address to the controller.
    ArpPunt = 6,
    /// Table 2: neighbor solicitation for a known address to the controller.
    NdPunt = 7,
    /// Table 2: unicast to a port's MAC.
    Unicast = 8,
    /// Table 2: broadcast/multicast replication.
    Flood = 9,
    /// Table 0: tunnel traffic of a VNI admitted.
    TunnelIngress = 10,
}

impl RuleKind {
    const ALL: [RuleKind; 10] = [
        RuleKind::Ingress,
        RuleKind::SpoofL2Drop,
        RuleKind::L3Allow,
        RuleKind::SpoofL3Drop,
        RuleKind::DhcpPunt,
        RuleKind::ArpPunt,
        RuleKind::NdPunt,
        RuleKind::Unicast,
        RuleKind::Flood,
        RuleKind::TunnelIngress,
    ];

    /// The kind of a cookie written by this compiler (None for other cookies).
    pub fn of_cookie(cookie: u64) -> Option<RuleKind> {
        if cookie & MAGIC_MASK != COOKIE_MAGIC {
            return None;
        }
        let k = ((cookie & KIND_MASK) >> KIND_SHIFT) as u8;
        RuleKind::ALL.into_iter().find(|r| *r as u8 == k)
    }
}

/// The cookie of a rule of `kind` owned by (`class`, `id`).
pub const fn cookie(class: OwnerClass, kind: RuleKind, id: u32) -> u64 {
    COOKIE_MAGIC | ((class as u64) << CLASS_SHIFT) | ((kind as u64) << KIND_SHIFT) | id as u64
}

/// The cookie value to delete every rule of an owner with (under [`OWNER_MASK`]).
pub const fn owner_cookie(class: OwnerClass, id: u32) -> u64 {
    COOKIE_MAGIC | ((class as u64) << CLASS_SHIFT) | id as u64
}

/// Errors of the compiler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// the pipeline has {0} tables; the compiler needs at least 3
    #[error("the pipeline has {0} tables; the compiler needs at least 3")]
    TooFewTables(usize),
    /// the pipeline refused a rule: {0}
    #[error("the pipeline refused a rule: {0}")]
    Pipeline(#[from] PipelineError),
}

/// Why a port got no rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Admin down or not bound.
    Down,
    /// Its network is unknown or admin down.
    NetworkInactive,
    /// Bound here, but its interface has no port number yet.
    NotAttached,
    /// Bound on a host that is not in the VTEP list.
    UnknownHost(String),
    /// Its network's VNI does not fit in 24 bits.
    BadVni(u32),
}

/// What one [`Compiler::apply`] or [`Compiler::load`] did to the pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Ids of the rules added (replacements included).
    pub added: Vec<RuleId>,
    /// Number of rules deleted.
    pub removed: usize,
    /// Ports left without rules, and why.
    pub skipped: Vec<(String, SkipReason)>,
}

/// Where an active port lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Local(PortNo),
    Remote(IpAddr),
}

/// What the compiler installed for one port of the view: its cookie owner id, where its
/// rules send it (None: it has none) and the network that place is counted in.
#[derive(Clone, Debug)]
struct PortState {
    handle: u32,
    place: Option<Place>,
    net: String,
}

/// The places of one network's active ports, counted: what its flood rules send to.
#[derive(Clone, Debug, Default)]
struct FloodSet {
    locals: BTreeMap<PortNo, usize>,
    remotes: BTreeMap<IpAddr, usize>,
}

impl FloodSet {
    fn count(&mut self, place: Place, up: bool) {
        fn bump<K: Ord>(m: &mut BTreeMap<K, usize>, k: K, up: bool) {
            if up {
                *m.entry(k).or_default() += 1;
            } else if let std::collections::btree_map::Entry::Occupied(mut e) = m.entry(k) {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
        match place {
            Place::Local(o) => bump(&mut self.locals, o, up),
            Place::Remote(ip) => bump(&mut self.remotes, ip, up),
        }
    }

    fn is_empty(&self) -> bool {
        self.locals.is_empty() && self.remotes.is_empty()
    }
}

/// The incremental tenant compiler of one host (see the module docs). It keeps only what it
/// installed (each port's handle and place, the places counted by network for the flood
/// rules); the model itself is the [`ModelView`] it is handed.
#[derive(Clone, Debug)]
pub struct Compiler {
    local_host: String,
    hosts: BTreeMap<String, IpAddr>,
    tunnel_port: PortNo,
    ports: HashMap<String, PortState>,
    /// Network id -> the places of its active ports.
    flood: HashMap<String, FloodSet>,
    next_handle: u32,
}

impl Compiler {
    /// A compiler for host `local_host`, with every host's VTEP address (`hosts`, the local
    /// one may be listed too) and the local flow-based VXLAN tunnel port.
    pub fn new(local_host: &str, hosts: Vec<(String, IpAddr)>, tunnel_port: PortNo) -> Self {
        Compiler {
            local_host: local_host.to_string(),
            hosts: hosts.into_iter().collect(),
            tunnel_port,
            ports: HashMap::new(),
            flood: HashMap::new(),
            next_handle: 1,
        }
    }

    /// Ports known: (with rules, without rules).
    pub fn port_counts(&self) -> (usize, usize) {
        let active = self.ports.values().filter(|s| s.place.is_some()).count();
        (active, self.ports.len() - active)
    }

    /// The cookie owner id of a port (None when the compiler does not know it).
    pub fn port_handle(&self, port_id: &str) -> Option<u32> {
        self.ports.get(port_id).map(|s| s.handle)
    }

    /// The ports whose rules deliver to local bridge port `ofport`, by id.
    pub fn ports_on(&self, ofport: PortNo) -> Vec<String> {
        let mut ids: Vec<String> = self
            .ports
            .iter()
            .filter(|(_, s)| s.place == Some(Place::Local(ofport)))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Removes every rule of this compiler and installs those of the whole `view` (just
    /// loaded from a snapshot). Ports get their handles in id order.
    pub fn load(
        &mut self,
        p: &mut Pipeline,
        view: &ModelView,
        ofport_of: impl Fn(&LocalInterface) -> Option<PortNo>,
    ) -> Result<Delta, CompileError> {
        check_tables(p)?;
        let mut d = Delta::default();
        d.removed += p
            .delete(&RuleFilter::loose(None, Match::CATCH_ALL).cookie(COOKIE_MAGIC, ALL_MASK))?
            .len();
        self.ports.clear();
        self.flood.clear();
        for port in view.ports() {
            let handle = self.alloc_handle();
            let place = self.place_and_install(p, view, port, handle, &ofport_of, &mut d)?;
            self.put_port(port, handle, place);
        }
        for n in view.networks() {
            self.install_network(p, view, n, &mut d)?;
        }
        Ok(d)
    }

    /// Applies one committed change, which `view` has just applied (`change` is what
    /// [`ModelView::apply`] returned).
    pub fn apply(
        &mut self,
        p: &mut Pipeline,
        view: &ModelView,
        change: &Applied<'_>,
        ofport_of: impl Fn(&LocalInterface) -> Option<PortNo>,
    ) -> Result<Delta, CompileError> {
        check_tables(p)?;
        let mut d = Delta::default();
        match change {
            Applied::NetworkUpserted { new: n, old } => {
                let changed = old
                    .as_ref()
                    .is_none_or(|o| o.vni != n.vni || o.admin_state_up != n.admin_state_up);
                if changed {
                    if let Some(o) = old {
                        d.removed += remove_owner(p, OwnerClass::Network, o.vni)?;
                    }
                    self.reinstall_ports_of(p, view, &n.id, &ofport_of, &mut d)?;
                    self.install_network(p, view, n, &mut d)?;
                }
            }
            Applied::NetworkDeleted { gone: n, .. } => {
                d.removed += remove_owner(p, OwnerClass::Network, n.vni)?;
                self.reinstall_ports_of(p, view, &n.id, &ofport_of, &mut d)?;
            }
            Applied::SubnetUpserted { new: s, old } => {
                if let Some(o) = old.as_ref().filter(|o| o.network_id != s.network_id) {
                    self.refresh_dhcp(p, view, &o.network_id, &mut d)?;
                }
                self.refresh_dhcp(p, view, &s.network_id, &mut d)?;
            }
            Applied::SubnetDeleted { gone: s, .. } => {
                self.refresh_dhcp(p, view, &s.network_id, &mut d)?;
            }
            Applied::PortUpserted { new: port, old } => {
                let old_net = old.as_ref().map(|o| o.network_id.as_str());
                self.upsert_port(p, view, port, old_net, &ofport_of, &mut d)?;
            }
            Applied::PortDeleted { gone: port, old } => {
                if let Some(st) = self.take_port(&port.id) {
                    d.removed += remove_owner(p, OwnerClass::Port, st.handle)?;
                    let net = old
                        .as_ref()
                        .map_or(st.net.as_str(), |o| o.network_id.as_str());
                    self.refresh_flood(p, view, net, &mut d)?;
                }
            }
        }
        Ok(d)
    }

    /// Compiles the port `port_id` of `view` again (its interface became, or stopped being,
    /// a bridge port): exactly what an upsert of the same port does. A port the view does not
    /// hold is left alone.
    pub fn recompile_port(
        &mut self,
        p: &mut Pipeline,
        view: &ModelView,
        port_id: &str,
        ofport_of: impl Fn(&LocalInterface) -> Option<PortNo>,
    ) -> Result<Delta, CompileError> {
        check_tables(p)?;
        let mut d = Delta::default();
        if let Some(port) = view.port(port_id) {
            let net = Some(port.network_id.as_str());
            self.upsert_port(p, view, port, net, &ofport_of, &mut d)?;
        }
        Ok(d)
    }

    /// Replaces the rules of `port` (on `old_net` before, if the compiler knew it) and
    /// refreshes the flood rules of the networks concerned.
    fn upsert_port(
        &mut self,
        p: &mut Pipeline,
        view: &ModelView,
        port: &Port,
        old_net: Option<&str>,
        ofport_of: &impl Fn(&LocalInterface) -> Option<PortNo>,
        d: &mut Delta,
    ) -> Result<(), CompileError> {
        let (handle, old_net) = match self.take_port(&port.id) {
            Some(st) => {
                d.removed += remove_owner(p, OwnerClass::Port, st.handle)?;
                (st.handle, old_net)
            }
            None => (self.alloc_handle(), None),
        };
        if let Some(old) = old_net.filter(|o| *o != port.network_id) {
            self.refresh_flood(p, view, old, d)?;
        }
        let r = self.place_and_install(p, view, port, handle, ofport_of, d);
        self.put_port(port, handle, r.as_ref().ok().copied().flatten());
        r?;
        self.refresh_flood(p, view, &port.network_id, d)
    }

    /// Records what was installed for `port`, counting its place in its network.
    fn put_port(&mut self, port: &Port, handle: u32, place: Option<Place>) {
        if let Some(pl) = place {
            self.flood
                .entry(port.network_id.clone())
                .or_default()
                .count(pl, true);
        }
        let st = PortState {
            handle,
            place,
            net: port.network_id.clone(),
        };
        self.ports.insert(port.id.clone(), st);
    }

    /// Takes out what was installed for port `id`, uncounting its place.
    fn take_port(&mut self, id: &str) -> Option<PortState> {
        let st = self.ports.remove(id)?;
        if let Some(pl) = st.place {
            if let Some(fs) = self.flood.get_mut(&st.net) {
                fs.count(pl, false);
                if fs.is_empty() {
                    self.flood.remove(&st.net);
                }
            }
        }
        Some(st)
    }

    fn alloc_handle(&mut self) -> u32 {
        let h = self.next_handle;
        self.next_handle = self.next_handle.wrapping_add(1).max(1);
        h
    }

    /// The active network of a port (admin up, known, VNI valid), or why not.
    fn active_network<'v>(view: &'v ModelView, port: &Port) -> Result<&'v Network, SkipReason> {
        match view.network(&port.network_id) {
            Some(n) if n.admin_state_up && n.vni <= 0x00ff_ffff => Ok(n),
            Some(n) if n.admin_state_up => Err(SkipReason::BadVni(n.vni)),
            _ => Err(SkipReason::NetworkInactive),
        }
    }

    /// Installs the rules of `port` (cookie owner `handle`); returns where they deliver
    /// (None: it got none, the reason is in `d.skipped`).
    fn place_and_install(
        &self,
        p: &mut Pipeline,
        view: &ModelView,
        port: &Port,
        handle: u32,
        ofport_of: &impl Fn(&LocalInterface) -> Option<PortNo>,
        d: &mut Delta,
    ) -> Result<Option<Place>, CompileError> {
        let net = match Self::active_network(view, port) {
            Ok(n) => n,
            Err(why) => {
                d.skipped.push((port.id.clone(), why));
                return Ok(None);
            }
        };
        // A remote port needs only its host (its interface is that host's business); a local
        // one needs an interface to attach.
        let local = port.binding.host_id == self.local_host;
        if !port.admin_state_up
            || port.binding.host_id.is_empty()
            || (local && port.binding.interface.is_none())
        {
            d.skipped.push((port.id.clone(), SkipReason::Down));
            return Ok(None);
        }
        let place = if local {
            match port.binding.interface.as_ref().and_then(ofport_of) {
                Some(o) => Place::Local(o),
                None => {
                    d.skipped.push((port.id.clone(), SkipReason::NotAttached));
                    return Ok(None);
                }
            }
        } else {
            match self.hosts.get(&port.binding.host_id) {
                Some(ip) => Place::Remote(*ip),
                None => {
                    d.skipped.push((
                        port.id.clone(),
                        SkipReason::UnknownHost(port.binding.host_id.clone()),
                    ));
                    return Ok(None);
                }
            }
        };
        for spec in port_rules(handle, port, net.vni, place, self.tunnel_port) {
            d.added.push(p.add(spec, AddOptions::default(), 0)?.id);
        }
        Ok(Some(place))
    }

    /// Removes and reinstalls the rules of every port of a network (after its VNI or state
    /// changed), then its flood rules.
    fn reinstall_ports_of(
        &mut self,
        p: &mut Pipeline,
        view: &ModelView,
        net_id: &str,
        ofport_of: &impl Fn(&LocalInterface) -> Option<PortNo>,
        d: &mut Delta,
    ) -> Result<(), CompileError> {
        for port in view.ports_of(net_id) {
            if let Some(st) = self.take_port(&port.id) {
                d.removed += remove_owner(p, OwnerClass::Port, st.handle)?;
                let r = self.place_and_install(p, view, port, st.handle, ofport_of, d);
                self.put_port(port, st.handle, r.as_ref().ok().copied().flatten());
                r?;
            }
        }
        Ok(())
    }

    /// Installs a network's own rules (tunnel ingress, DHCP punt, flood).
    fn install_network(
        &self,
        p: &mut Pipeline,
        view: &ModelView,
        n: &Network,
        d: &mut Delta,
    ) -> Result<(), CompileError> {
        if !n.admin_state_up || n.vni > 0x00ff_ffff {
            return Ok(());
        }
        let spec = RuleSpec {
            cookie: cookie(OwnerClass::Network, RuleKind::TunnelIngress, n.vni),
            ..RuleSpec::new(
                TABLE_INGRESS,
                Match::default()
                    .with(Field::InPort, self.tunnel_port.into())
                    .with(Field::TunId, n.vni.into()),
                PRIO_ALLOW,
                Instructions::default()
                    .metadata(u64::from(n.vni) | META_FROM_TUNNEL, META_MASK)
                    .goto(TABLE_L2),
            )
        };
        d.added.push(p.add(spec, AddOptions::default(), 0)?.id);
        self.refresh_dhcp(p, view, &n.id, d)?;
        self.refresh_flood(p, view, &n.id, d)
    }

    /// Installs or removes the DHCP punt of a network to match its subnets.
    fn refresh_dhcp(
        &self,
        p: &mut Pipeline,
        view: &ModelView,
        net_id: &str,
        d: &mut Delta,
    ) -> Result<(), CompileError> {
        let Some(n) = view.network(net_id) else {
            return Ok(());
        };
        if !n.admin_state_up || n.vni > 0x00ff_ffff {
            return Ok(());
        }
        let want = view
            .subnets_of(net_id)
            .any(|s| s.enable_dhcp && s.ip_version() == 4);
        let m = Match::default()
            .with_masked(Field::Metadata, n.vni.into(), META_MASK.into())
            .with(Field::EthType, ETH_IPV4)
            .with(Field::IpProto, PROTO_UDP)
            .with(Field::TpSrc, 68)
            .with(Field::TpDst, 67);
        let c = cookie(OwnerClass::Network, RuleKind::DhcpPunt, n.vni);
        let have = p
            .table_rules(TABLE_L3)
            .any(|r| r.cookie == c && r.matching == m && r.priority == PRIO_PUNT);
        if want && !have {
            let spec = RuleSpec {
                cookie: c,
                ..RuleSpec::new(TABLE_L3, m, PRIO_PUNT, punt())
            };
            d.added.push(p.add(spec, AddOptions::default(), 0)?.id);
        } else if !want && have {
            d.removed += p
                .delete(&RuleFilter::strict(TABLE_L3, m, PRIO_PUNT).cookie(c, u64::MAX))?
                .len();
        }
        Ok(())
    }

    /// Writes a network's two flood rules when their actions differ from the installed ones.
    fn refresh_flood(
        &self,
        p: &mut Pipeline,
        view: &ModelView,
        net_id: &str,
        d: &mut Delta,
    ) -> Result<(), CompileError> {
        let Some(n) = view.network(net_id) else {
            return Ok(());
        };
        if !n.admin_state_up || n.vni > 0x00ff_ffff {
            return Ok(());
        }
        let empty = FloodSet::default();
        let places = self.flood.get(net_id).unwrap_or(&empty);
        let to_locals: Vec<Action> = places
            .locals
            .keys()
            .map(|o| Action::Output(OfPort::Port(*o)))
            .collect();
        let mut from_local = to_locals.clone();
        for ip in places.remotes.keys() {
            from_local.extend(to_vtep(*ip, n.vni, self.tunnel_port));
        }
        let c = cookie(OwnerClass::Network, RuleKind::Flood, n.vni);
        for (meta, actions) in [
            (u64::from(n.vni), from_local),
            (u64::from(n.vni) | META_FROM_TUNNEL, to_locals),
        ] {
            let m = Match::default()
                .with_masked(Field::Metadata, meta.into(), META_MASK.into())
                .with_masked(Field::EthDst, MULTICAST_BIT, MULTICAST_BIT);
            let instr = Instructions::apply(actions);
            let same = p.table_rules(TABLE_L2).any(|r| {
                r.cookie == c
                    && r.matching == m
                    && r.priority == PRIO_FLOOD
                    && r.instructions == instr
            });
            if !same {
                let spec = RuleSpec {
                    cookie: c,
                    ..RuleSpec::new(TABLE_L2, m, PRIO_FLOOD, instr)
                };
                let keep = AddOptions {
                    keep_counts: true,
                    ..AddOptions::default()
                };
                d.added.push(p.add(spec, keep, 0)?.id);
            }
        }
        Ok(())
    }
}

fn check_tables(p: &Pipeline) -> Result<(), CompileError> {
    if p.n_tables() < 3 {
        return Err(CompileError::TooFewTables(p.n_tables()));
    }
    Ok(())
}

fn remove_owner(p: &mut Pipeline, class: OwnerClass, id: u32) -> Result<usize, CompileError> {
    let f = RuleFilter::loose(None, Match::CATCH_ALL).cookie(owner_cookie(class, id), OWNER_MASK);
    Ok(p.delete(&f)?.len())
}

fn punt() -> Instructions {
    Instructions::apply(vec![Action::Output(OfPort::Controller {
        max_len: PUNT_MAX_LEN,
    })])
}

/// Actions sending a copy to a remote VTEP over the flow-based tunnel port.
fn to_vtep(ip: IpAddr, vni: u32, tunnel: PortNo) -> [Action; 4] {
    let (v4, v6) = match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 0),
        IpAddr::V6(a) => (0, u128::from(a)),
    };
    [
        Action::SetField {
            field: Field::TunIpv4Dst,
            value: v4,
        },
        Action::SetField {
            field: Field::TunIpv6Dst,
            value: v6,
        },
        Action::SetTunnel { vni: vni.into() },
        Action::Output(OfPort::Port(tunnel)),
    ]
}

fn mac(m: MacAddr) -> u128 {
    m.to_u64().into()
}

/// The EUI-64 link-local address of a MAC (fe80::/64, universal/local bit flipped).
fn link_local(m: MacAddr) -> Ipv6Addr {
    let b = m.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        b[0] ^ 0x02,
        b[1],
        b[2],
        0xff,
        0xfe,
        b[3],
        b[4],
        b[5],
    ])
}

/// Every rule of one active port.
fn port_rules(handle: u32, port: &Port, vni: u32, place: Place, tunnel: PortNo) -> Vec<RuleSpec> {
    let c = |kind| cookie(OwnerClass::Port, kind, handle);
    let rule = |table, kind, m, prio, instr| RuleSpec {
        cookie: c(kind),
        ..RuleSpec::new(table, m, prio, instr)
    };
    let meta_local = |m: Match| m.with_masked(Field::Metadata, vni.into(), META_MASK.into());
    let mut out = Vec::new();
    let m_mac = mac(port.mac_address);
    // Suppression punts: for every address of the port, wherever it is bound.
    for ip in port.fixed_ips.iter().map(|f| f.ip_address) {
        match ip {
            IpAddr::V4(a) => out.push(rule(
                TABLE_L2,
                RuleKind::ArpPunt,
                meta_local(Match::default())
                    .with(Field::EthType, ETH_ARP)
                    .with(Field::ArpOp, 1)
                    .with(Field::ArpTpa, u32::from(a).into()),
                PRIO_PUNT,
                punt(),
            )),
            IpAddr::V6(a) => out.push(rule(
                TABLE_L2,
                RuleKind::NdPunt,
                meta_local(Match::default())
                    .with(Field::EthType, ETH_IPV6)
                    .with(Field::IpProto, PROTO_ICMPV6)
                    .with(Field::IcmpType, ND_NEIGHBOR_SOLICIT)
                    .with(Field::IcmpCode, 0)
                    .with(Field::NdTarget, u128::from(a)),
                PRIO_PUNT,
                punt(),
            )),
        }
    }
    match place {
        Place::Remote(vtep) => {
            out.push(rule(
                TABLE_L2,
                RuleKind::Unicast,
                meta_local(Match::default()).with(Field::EthDst, m_mac),
                PRIO_UNICAST,
                Instructions::apply(to_vtep(vtep, vni, tunnel).to_vec()),
            ));
        }
        Place::Local(o) => {
            let from_p = || Match::default().with(Field::InPort, o.into());
            out.push(rule(
                TABLE_INGRESS,
                RuleKind::Ingress,
                from_p().with(Field::EthSrc, m_mac),
                PRIO_ALLOW,
                Instructions::default()
                    .metadata(vni.into(), META_MASK)
                    .goto(TABLE_L3),
            ));
            out.push(rule(
                TABLE_INGRESS,
                RuleKind::SpoofL2Drop,
                from_p(),
                PRIO_DROP,
                Instructions::default(),
            ));
            let allow = || Instructions::default().goto(TABLE_L2);
            let mut v6 = false;
            for ip in port.fixed_ips.iter().map(|f| f.ip_address) {
                match ip {
                    IpAddr::V4(a) => {
                        let a = u128::from(u32::from(a));
                        out.push(rule(
                            TABLE_L3,
                            RuleKind::L3Allow,
                            from_p()
                                .with(Field::EthType, ETH_IPV4)
                                .with(Field::Ipv4Src, a),
                            PRIO_ALLOW,
                            allow(),
                        ));
                        out.push(rule(
                            TABLE_L3,
                            RuleKind::L3Allow,
                            from_p()
                                .with(Field::EthType, ETH_ARP)
                                .with(Field::ArpSpa, a)
                                .with(Field::ArpSha, m_mac),
                            PRIO_ALLOW,
                            allow(),
                        ));
                    }
                    IpAddr::V6(a) => {
                        v6 = true;
                        out.push(rule(
                            TABLE_L3,
                            RuleKind::L3Allow,
                            from_p()
                                .with(Field::EthType, ETH_IPV6)
                                .with(Field::Ipv6Src, u128::from(a)),
                            PRIO_ALLOW,
                            allow(),
                        ));
                    }
                }
            }
            if v6 {
                out.push(rule(
                    TABLE_L3,
                    RuleKind::L3Allow,
                    from_p()
                        .with(Field::EthType, ETH_IPV6)
                        .with(Field::Ipv6Src, u128::from(link_local(port.mac_address))),
                    PRIO_ALLOW,
                    allow(),
                ));
                out.push(rule(
                    TABLE_L3,
                    RuleKind::L3Allow,
                    from_p()
                        .with(Field::EthType, ETH_IPV6)
                        .with(Field::Ipv6Src, 0)
                        .with(Field::IpProto, PROTO_ICMPV6),
                    PRIO_ALLOW,
                    allow(),
                ));
            }
            out.push(rule(
                TABLE_L3,
                RuleKind::SpoofL3Drop,
                from_p(),
                PRIO_DROP,
                Instructions::default(),
            ));
            out.push(rule(
                TABLE_L2,
                RuleKind::Unicast,
                Match::default()
                    .with_masked(Field::Metadata, vni.into(), 0xffff_ffff)
                    .with(Field::EthDst, m_mac),
                PRIO_UNICAST,
                Instructions::apply(vec![Action::Output(OfPort::Port(o))]),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::net::Ipv4Addr;
    use strato_flowtable::key::FlowKey;
    use strato_flowtable::pipeline::{PortEnv, TunnelPortCfg};
    use strato_flowtable::xlate::{xlate, Xlation};
    use strato_flowtable::DpAction;
    use strato_tenant::model::{
        Binding, Change, FixedIp, InterfaceKind, NetworkType, Snapshot, Subnet,
    };

    /// A compiler with its view, as the agent holds them: every change goes to the view
    /// first, then to the compiler.
    struct Compiled {
        view: ModelView,
        c: Compiler,
    }

    impl Compiled {
        fn new() -> Self {
            Compiled {
                view: ModelView::new(),
                c: Compiler::new("host-a", hosts(), TUN),
            }
        }

        fn load(
            &mut self,
            p: &mut Pipeline,
            s: &Snapshot,
            ofport_of: impl Fn(&LocalInterface) -> Option<PortNo>,
        ) -> Result<Delta, CompileError> {
            self.view.load(s);
            self.c.load(p, &self.view, ofport_of)
        }

        fn apply(
            &mut self,
            p: &mut Pipeline,
            ch: &Change,
            ofport_of: impl Fn(&LocalInterface) -> Option<PortNo>,
        ) -> Result<Delta, CompileError> {
            let a = self.view.apply(ch);
            self.c.apply(p, &self.view, &a, ofport_of)
        }

        fn port_handle(&self, id: &str) -> Option<u32> {
            self.c.port_handle(id)
        }
    }

    const TUN: PortNo = 10;
    const UNDERLAY: PortNo = 3;
    const VTEP_A: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 1);
    const VTEP_B: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 2);
    const VTEP_C: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 3);

    fn network(id: &str, vni: u32) -> Network {
        Network {
            id: id.into(),
            tenant_id: format!("tenant-{id}"),
            name: id.into(),
            description: String::new(),
            admin_state_up: true,
            shared: false,
            network_type: NetworkType::Vxlan,
            vni,
            mtu: 1450,
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 0,
        }
    }

    fn subnet(id: &str, net: &str) -> Subnet {
        Subnet {
            id: id.into(),
            network_id: net.into(),
            tenant_id: String::new(),
            name: String::new(),
            description: String::new(),
            cidr: "10.0.0.0/24".parse().unwrap(),
            gateway_ip: Some("10.0.0.1".parse().unwrap()),
            allocation_pools: vec![],
            dns_nameservers: vec![],
            host_routes: vec![],
            enable_dhcp: true,
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 0,
        }
    }

    /// Port `id` on `net`, MAC 02:00:00:00:<n>:<last>, IP 10.0.0.<last>, bound on `host` to
    /// interface `id`.
    fn port(id: &str, net: &str, n: u8, last: u8, host: &str) -> Port {
        Port {
            id: id.into(),
            network_id: net.into(),
            tenant_id: String::new(),
            name: id.into(),
            description: String::new(),
            mac_address: MacAddr([2, 0, 0, 0, n, last]),
            admin_state_up: true,
            fixed_ips: vec![FixedIp {
                subnet_id: format!("sub-{net}"),
                ip_address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            }],
            device_id: String::new(),
            device_owner: "compute:nova".into(),
            binding: Binding {
                host_id: host.into(),
                interface: Some(LocalInterface {
                    name: id.into(),
                    kind: InterfaceKind::Tap,
                }),
            },
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 0,
        }
    }

    /// Local interface name -> port number on host A.
    fn ofport(i: &LocalInterface) -> Option<PortNo> {
        match i.name.as_str() {
            "red-a1" => Some(1),
            "red-a2" => Some(2),
            "blue-a1" => Some(4),
            "red-a3" => Some(5),
            _ => None,
        }
    }

    /// Two tenants (red VNI 100, blue VNI 200) with the same CIDR; red has two ports on host
    /// A and one on B, blue one on A and one on B.
    fn snapshot() -> Snapshot {
        Snapshot {
            seq: 7,
            networks: vec![network("red", 100), network("blue", 200)],
            subnets: vec![subnet("sub-red", "red"), subnet("sub-blue", "blue")],
            ports: vec![
                port("red-a1", "red", 1, 2, "host-a"),
                port("red-a2", "red", 1, 3, "host-a"),
                port("red-b1", "red", 1, 4, "host-b"),
                port("blue-a1", "blue", 2, 2, "host-a"),
                port("blue-b1", "blue", 2, 4, "host-b"),
            ],
        }
    }

    fn hosts() -> Vec<(String, IpAddr)> {
        vec![
            ("host-a".into(), IpAddr::V4(VTEP_A)),
            ("host-b".into(), IpAddr::V4(VTEP_B)),
            ("host-c".into(), IpAddr::V4(VTEP_C)),
        ]
    }

    fn env() -> PortEnv {
        let mut env = PortEnv::default();
        for o in [1, 2, 4, 5] {
            env.add_port(o, true, true);
        }
        env.add_port(UNDERLAY, true, false);
        let mut t = TunnelPortCfg::new(TUN, UNDERLAY, IpAddr::V4(VTEP_A), [2, 0, 0, 0, 0xee, 1]);
        t.neighbors
            .insert(IpAddr::V4(VTEP_B), [2, 0, 0, 0, 0xee, 2]);
        t.neighbors
            .insert(IpAddr::V4(VTEP_C), [2, 0, 0, 0, 0xee, 3]);
        env.add_tunnel(t);
        env
    }

    fn setup() -> (Compiled, Pipeline) {
        let mut c = Compiled::new();
        let mut p = Pipeline::default();
        let d = c.load(&mut p, &snapshot(), ofport).unwrap();
        assert!(d.skipped.is_empty(), "{:?}", d.skipped);
        assert_eq!(d.added.len(), p.len());
        // 3 local ports x 7 + 2 remote ports x 2 + 2 networks x 4 (tunnel ingress, DHCP punt,
        // two flood rules).
        assert_eq!(p.len(), 33);
        (c, p)
    }

    fn mac_of(n: u8, last: u8) -> u128 {
        mac(MacAddr([2, 0, 0, 0, n, last]))
    }

    fn ip(last: u8) -> u128 {
        u32::from(Ipv4Addr::new(10, 0, 0, last)).into()
    }

    /// An IPv4/UDP frame key from a local port.
    fn udp_key(in_port: PortNo, src: u128, dst: u128, src_ip: u128, dst_ip: u128) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, in_port.into());
        k.set(Field::EthSrc, src);
        k.set(Field::EthDst, dst);
        k.set(Field::EthType, ETH_IPV4);
        k.set(Field::Ipv4Src, src_ip);
        k.set(Field::Ipv4Dst, dst_ip);
        k.set(Field::IpProto, PROTO_UDP);
        k.set(Field::IpTtl, 64);
        k.set(Field::TpSrc, 40000);
        k.set(Field::TpDst, 7);
        k
    }

    fn arp_request(in_port: PortNo, src: u128, spa: u128, tpa: u128) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, in_port.into());
        k.set(Field::EthSrc, src);
        k.set(Field::EthDst, 0xffff_ffff_ffff);
        k.set(Field::EthType, ETH_ARP);
        k.set(Field::ArpOp, 1);
        k.set(Field::ArpSpa, spa);
        k.set(Field::ArpTpa, tpa);
        k.set(Field::ArpSha, src);
        k
    }

    fn from_tunnel(mut k: FlowKey, vni: u32) -> FlowKey {
        k.set(Field::InPort, TUN.into());
        k.set(Field::TunId, vni.into());
        k.set(Field::TunIpv4Src, u32::from(VTEP_B).into());
        k.set(Field::TunIpv4Dst, u32::from(VTEP_A).into());
        k
    }

    fn outputs(x: &Xlation) -> Vec<PortNo> {
        x.actions
            .iter()
            .filter_map(|a| match a {
                DpAction::Output(o) => Some(*o),
                _ => None,
            })
            .collect()
    }

    /// (vni, remote VTEP) of every tunnel push.
    fn pushes(x: &Xlation) -> Vec<(u32, IpAddr)> {
        x.actions
            .iter()
            .filter_map(|a| match a {
                DpAction::TunnelPush(t) => Some((t.params.vni, t.params.dst_ip)),
                _ => None,
            })
            .collect()
    }

    fn last_kind(p: &Pipeline, x: &Xlation) -> Option<RuleKind> {
        let id = *x.rules.last()?;
        RuleKind::of_cookie(p.get(id)?.cookie)
    }

    #[test]
    fn cookie_layout() {
        let c = cookie(OwnerClass::Port, RuleKind::ArpPunt, 0xdead_beef);
        assert_eq!(c, 0x5443_1600_dead_beef);
        assert_eq!(RuleKind::of_cookie(c), Some(RuleKind::ArpPunt));
        assert_eq!(c & OWNER_MASK, owner_cookie(OwnerClass::Port, 0xdead_beef));
        assert_eq!(RuleKind::of_cookie(0x5354_5241_544f_4c31), None);
        for k in RuleKind::ALL {
            assert_eq!(
                RuleKind::of_cookie(cookie(OwnerClass::Network, k, 7)),
                Some(k)
            );
        }
    }

    #[test]
    fn same_host_delivery() {
        let (_, p) = setup();
        let k = udp_key(1, mac_of(1, 2), mac_of(1, 3), ip(2), ip(3));
        let x = xlate(&p, &env(), &k);
        assert_eq!(outputs(&x), vec![2]);
        assert!(pushes(&x).is_empty());
    }

    #[test]
    fn cross_host_goes_to_tunnel_with_vni() {
        let (_, p) = setup();
        let x = xlate(
            &p,
            &env(),
            &udp_key(1, mac_of(1, 2), mac_of(1, 4), ip(2), ip(4)),
        );
        assert_eq!(pushes(&x), vec![(100, IpAddr::V4(VTEP_B))]);
        assert!(outputs(&x).is_empty());
        // Blue's identical addresses go out with blue's VNI.
        let x = xlate(
            &p,
            &env(),
            &udp_key(4, mac_of(2, 2), mac_of(2, 4), ip(2), ip(4)),
        );
        assert_eq!(pushes(&x), vec![(200, IpAddr::V4(VTEP_B))]);
        // From the tunnel, VNI 100 to red-a1.
        let k = from_tunnel(udp_key(0, mac_of(1, 4), mac_of(1, 2), ip(4), ip(2)), 100);
        let x = xlate(&p, &env(), &k);
        assert_eq!(outputs(&x), vec![1]);
        assert!(pushes(&x).is_empty());
    }

    #[test]
    fn a_remote_port_needs_only_its_host() {
        let (mut c, mut p) = setup();
        let snap = snapshot();
        // red's port on host B (VTEP_B), rebound without a profile: still reached by tunnel.
        let mut port = snap
            .ports
            .iter()
            .find(|q| q.mac_address.to_u64() as u128 == mac_of(1, 4))
            .unwrap()
            .clone();
        port.binding.interface = None;
        let d = c
            .apply(&mut p, &Change::PortUpserted(port.clone()), ofport)
            .unwrap();
        assert!(d.skipped.is_empty(), "{d:?}");
        let k = udp_key(1, mac_of(1, 2), mac_of(1, 4), ip(2), ip(4));
        assert_eq!(
            pushes(&xlate(&p, &env(), &k)),
            vec![(100, IpAddr::V4(VTEP_B))]
        );
        // Without a host it is unbound: no rules.
        port.binding.host_id.clear();
        let d = c
            .apply(&mut p, &Change::PortUpserted(port), ofport)
            .unwrap();
        assert_eq!(d.skipped.len(), 1);
        assert!(pushes(&xlate(&p, &env(), &k)).is_empty());
    }

    #[test]
    fn tenants_are_isolated() {
        let (_, p) = setup();
        // red-a1 to blue-a1's MAC (same host) and to blue-b1's MAC (other host).
        for dst in [mac_of(2, 2), mac_of(2, 4)] {
            let x = xlate(&p, &env(), &udp_key(1, mac_of(1, 2), dst, ip(2), ip(4)));
            assert!(x.actions.is_empty(), "{:?}", x.actions);
        }
        // Tunnel traffic of VNI 100 addressed to blue-a1, and an unknown VNI.
        let k = from_tunnel(udp_key(0, mac_of(1, 4), mac_of(2, 2), ip(4), ip(2)), 100);
        assert!(xlate(&p, &env(), &k).actions.is_empty());
        let k = from_tunnel(udp_key(0, mac_of(1, 4), mac_of(1, 2), ip(4), ip(2)), 300);
        assert!(xlate(&p, &env(), &k).actions.is_empty());
    }

    #[test]
    fn spoofed_mac_and_ip_dropped() {
        let (_, p) = setup();
        // Wrong source MAC (red-a2's) from red-a1.
        let x = xlate(
            &p,
            &env(),
            &udp_key(1, mac_of(1, 3), mac_of(1, 4), ip(2), ip(4)),
        );
        assert!(x.actions.is_empty());
        assert_eq!(last_kind(&p, &x), Some(RuleKind::SpoofL2Drop));
        // Right MAC, another port's IP.
        let x = xlate(
            &p,
            &env(),
            &udp_key(1, mac_of(1, 2), mac_of(1, 4), ip(3), ip(4)),
        );
        assert!(x.actions.is_empty());
        assert_eq!(last_kind(&p, &x), Some(RuleKind::SpoofL3Drop));
        // ARP with a spoofed sender IP.
        let x = xlate(&p, &env(), &arp_request(1, mac_of(1, 2), ip(3), ip(4)));
        assert!(x.actions.is_empty());
        assert_eq!(last_kind(&p, &x), Some(RuleKind::SpoofL3Drop));
    }

    #[test]
    fn arp_for_known_ip_goes_to_controller() {
        let (_, p) = setup();
        for tpa in [3, 4] {
            let x = xlate(&p, &env(), &arp_request(1, mac_of(1, 2), ip(2), ip(tpa)));
            match x.actions.as_slice() {
                [DpAction::Userspace {
                    cookie, metadata, ..
                }] => {
                    assert_eq!(RuleKind::of_cookie(*cookie), Some(RuleKind::ArpPunt));
                    assert_eq!(*metadata, 100);
                }
                other => panic!("{other:?}"),
            }
        }
        // Unknown target: flooded like any broadcast.
        let x = xlate(&p, &env(), &arp_request(1, mac_of(1, 2), ip(2), ip(77)));
        assert_eq!(outputs(&x), vec![2]);
        assert_eq!(pushes(&x), vec![(100, IpAddr::V4(VTEP_B))]);
    }

    #[test]
    fn dhcp_goes_to_controller() {
        let (_, p) = setup();
        let mut k = udp_key(1, mac_of(1, 2), 0xffff_ffff_ffff, 0, 0xffff_ffff);
        k.set(Field::TpSrc, 68);
        k.set(Field::TpDst, 67);
        let x = xlate(&p, &env(), &k);
        match x.actions.as_slice() {
            [DpAction::Userspace { cookie, .. }] => {
                assert_eq!(RuleKind::of_cookie(*cookie), Some(RuleKind::DhcpPunt))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn broadcast_replicated_with_split_horizon() {
        let (mut c, mut p) = setup();
        // A red port on host C too: two remote VTEPs.
        c.apply(
            &mut p,
            &Change::PortUpserted(port("red-c1", "red", 1, 9, "host-c")),
            ofport,
        )
        .unwrap();
        let bcast = 0xffff_ffff_ffff;
        let x = xlate(&p, &env(), &udp_key(1, mac_of(1, 2), bcast, ip(2), ip(255)));
        assert_eq!(outputs(&x), vec![2]);
        assert_eq!(
            pushes(&x),
            vec![(100, IpAddr::V4(VTEP_B)), (100, IpAddr::V4(VTEP_C))]
        );
        // From the tunnel: local red ports only, never back to the tunnel.
        let k = from_tunnel(udp_key(0, mac_of(1, 4), bcast, ip(4), ip(255)), 100);
        let x = xlate(&p, &env(), &k);
        assert_eq!(outputs(&x), vec![1, 2]);
        assert!(pushes(&x).is_empty());
        // ... and the rule itself names no tunnel output (not just xlate's in_port check).
        let flood = cookie(OwnerClass::Network, RuleKind::Flood, 100);
        let from_tun: Vec<_> = p
            .table_rules(TABLE_L2)
            .filter(|r| r.cookie == flood)
            .filter(|r| r.matching.field(Field::Metadata).0 as u64 & META_FROM_TUNNEL != 0)
            .collect();
        assert_eq!(from_tun.len(), 1);
        assert!(!from_tun[0].instructions.outputs_to(OfPort::Port(TUN)));
        // Blue's broadcast reaches only blue.
        let x = xlate(&p, &env(), &udp_key(4, mac_of(2, 2), bcast, ip(2), ip(255)));
        assert!(outputs(&x).is_empty());
        assert_eq!(pushes(&x), vec![(200, IpAddr::V4(VTEP_B))]);
    }

    #[test]
    fn delete_port_removes_exactly_its_rules() {
        let (mut c, mut p) = setup();
        let h = c.port_handle("red-a2").unwrap();
        let own = |p: &Pipeline| {
            p.rules()
                .filter(|r| r.cookie & OWNER_MASK == owner_cookie(OwnerClass::Port, h))
                .count()
        };
        let mine = own(&p);
        // ARP punt, ingress, L2 drop, 2 L3 allows, L3 drop, unicast.
        assert_eq!(mine, 7);
        let before = p.len();
        let others: BTreeSet<RuleId> = p
            .rules()
            .filter(|r| RuleKind::of_cookie(r.cookie) != Some(RuleKind::Flood))
            .filter(|r| r.cookie & OWNER_MASK != owner_cookie(OwnerClass::Port, h))
            .map(|r| r.id)
            .collect();
        let d = c
            .apply(
                &mut p,
                &Change::PortDeleted(port("red-a2", "red", 1, 3, "host-a")),
                ofport,
            )
            .unwrap();
        assert_eq!(d.removed, mine);
        // The red flood rule from local ports changed (one fewer output); it is replaced,
        // not added.
        assert_eq!(d.added.len(), 2);
        assert_eq!(p.len(), before - mine);
        assert_eq!(own(&p), 0);
        let after: BTreeSet<RuleId> = p
            .rules()
            .filter(|r| RuleKind::of_cookie(r.cookie) != Some(RuleKind::Flood))
            .map(|r| r.id)
            .collect();
        assert_eq!(after, others);
        // Frames to it are no longer delivered; its ARP is no longer answered.
        let x = xlate(
            &p,
            &env(),
            &udp_key(1, mac_of(1, 2), mac_of(1, 3), ip(2), ip(3)),
        );
        assert!(x.actions.is_empty());
        let x = xlate(&p, &env(), &arp_request(1, mac_of(1, 2), ip(2), ip(3)));
        assert!(pushes(&x).len() == 1 && outputs(&x).is_empty());
    }

    #[test]
    fn adding_a_port_leaves_other_rules_alone() {
        let (mut c, mut p) = setup();
        let before: BTreeMap<RuleId, u64> = p.rules().map(|r| (r.id, r.cookie)).collect();
        let d = c
            .apply(
                &mut p,
                &Change::PortUpserted(port("red-a3", "red", 1, 5, "host-a")),
                ofport,
            )
            .unwrap();
        assert_eq!(d.removed, 0);
        let h = c.port_handle("red-a3").unwrap();
        let after: BTreeMap<RuleId, u64> = p.rules().map(|r| (r.id, r.cookie)).collect();
        // Every old rule but the red flood rules keeps its id.
        for (id, ck) in &before {
            if RuleKind::of_cookie(*ck) == Some(RuleKind::Flood) {
                continue;
            }
            assert_eq!(after.get(id), Some(ck), "rule {id:?} changed");
        }
        // Every new rule is the port's own or a red flood rule.
        let red_flood = cookie(OwnerClass::Network, RuleKind::Flood, 100);
        let mut new_own = 0;
        for id in &d.added {
            let ck = after[id];
            if ck & OWNER_MASK == owner_cookie(OwnerClass::Port, h) {
                new_own += 1;
            } else {
                assert_eq!(ck, red_flood);
            }
        }
        assert_eq!(new_own, 7);
        assert_eq!(p.len(), before.len() + 7);
        // The new port is reachable and included in red's broadcast.
        let x = xlate(
            &p,
            &env(),
            &udp_key(1, mac_of(1, 2), mac_of(1, 5), ip(2), ip(5)),
        );
        assert_eq!(outputs(&x), vec![5]);
        let x = xlate(
            &p,
            &env(),
            &udp_key(1, mac_of(1, 2), 0xffff_ffff_ffff, ip(2), ip(255)),
        );
        assert_eq!(outputs(&x), vec![2, 5]);
        // Re-applying the same port replaces only its own rules; the flood rules stay.
        let d = c
            .apply(
                &mut p,
                &Change::PortUpserted(port("red-a3", "red", 1, 5, "host-a")),
                ofport,
            )
            .unwrap();
        assert_eq!((d.removed, d.added.len()), (7, 7));
    }

    #[test]
    fn inactive_ports_and_networks_get_no_rules() {
        let (mut c, mut p) = setup();
        let n = p.len();
        let mut down = port("red-a3", "red", 1, 5, "host-a");
        down.admin_state_up = false;
        let d = c
            .apply(&mut p, &Change::PortUpserted(down), ofport)
            .unwrap();
        assert_eq!(d.skipped, vec![("red-a3".to_string(), SkipReason::Down)]);
        assert_eq!(p.len(), n);
        let d = c
            .apply(
                &mut p,
                &Change::PortUpserted(port("x", "red", 1, 6, "host-z")),
                ofport,
            )
            .unwrap();
        assert_eq!(
            d.skipped,
            vec![("x".to_string(), SkipReason::UnknownHost("host-z".into()))]
        );
        let d = c
            .apply(
                &mut p,
                &Change::PortUpserted(port("unattached", "red", 1, 7, "host-a")),
                ofport,
            )
            .unwrap();
        assert_eq!(
            d.skipped,
            vec![("unattached".to_string(), SkipReason::NotAttached)]
        );
        assert_eq!(p.len(), n);
        // Blue goes admin down: all its rules go, red's stay (same ids).
        let red_owners: Vec<u64> = ["red-a1", "red-a2", "red-b1"]
            .iter()
            .map(|id| owner_cookie(OwnerClass::Port, c.port_handle(id).unwrap()))
            .chain([owner_cookie(OwnerClass::Network, 100)])
            .collect();
        let red_ids = |p: &Pipeline| -> BTreeSet<RuleId> {
            p.rules()
                .filter(|r| red_owners.contains(&(r.cookie & OWNER_MASK)))
                .map(|r| r.id)
                .collect()
        };
        let red_before = red_ids(&p);
        let mut blue = network("blue", 200);
        blue.admin_state_up = false;
        c.apply(&mut p, &Change::NetworkUpserted(blue.clone()), ofport)
            .unwrap();
        let x = xlate(
            &p,
            &env(),
            &udp_key(4, mac_of(2, 2), mac_of(2, 4), ip(2), ip(4)),
        );
        assert!(x.actions.is_empty());
        let x = xlate(
            &p,
            &env(),
            &udp_key(1, mac_of(1, 2), mac_of(1, 4), ip(2), ip(4)),
        );
        assert_eq!(pushes(&x), vec![(100, IpAddr::V4(VTEP_B))]);
        assert_eq!(red_ids(&p), red_before);
        assert_eq!(p.len(), red_before.len());
        // Back up: the same rules as a fresh load.
        blue.admin_state_up = true;
        c.apply(&mut p, &Change::NetworkUpserted(blue), ofport)
            .unwrap();
        assert_eq!(p.len(), n);
        // Removing the DHCP subnet removes blue's DHCP punt only.
        let d = c
            .apply(
                &mut p,
                &Change::SubnetDeleted(subnet("sub-blue", "blue")),
                ofport,
            )
            .unwrap();
        assert_eq!((d.removed, d.added.len()), (1, 0));
    }

    #[test]
    fn reload_replaces_only_own_rules() {
        let (mut c, mut p) = setup();
        // A rule of someone else survives a reload.
        let foreign = p
            .add_apply(5, 1, Match::CATCH_ALL, vec![Action::Output(OfPort::Flood)])
            .unwrap();
        let d = c.load(&mut p, &snapshot(), ofport).unwrap();
        assert_eq!((d.removed, d.added.len()), (33, 33));
        assert_eq!(p.len(), 34);
        assert!(p.get(foreign).is_some());
        let x = xlate(
            &p,
            &env(),
            &udp_key(1, mac_of(1, 2), mac_of(1, 3), ip(2), ip(3)),
        );
        assert_eq!(outputs(&x), vec![2]);
    }

    #[test]
    fn too_few_tables() {
        let mut c = Compiled::new();
        let mut p = Pipeline::new(2).unwrap();
        assert_eq!(
            c.load(&mut p, &snapshot(), ofport),
            Err(CompileError::TooFewTables(2))
        );
    }

    #[test]
    fn ipv6_port_security_and_nd_punt() {
        let (mut c, mut p) = setup();
        let mut v6 = port("red-a3", "red", 1, 5, "host-a");
        let addr: Ipv6Addr = "fd00::5".parse().unwrap();
        v6.fixed_ips.push(FixedIp {
            subnet_id: "sub6".into(),
            ip_address: IpAddr::V6(addr),
        });
        c.apply(&mut p, &Change::PortUpserted(v6), ofport).unwrap();
        let mk = |src: Ipv6Addr, dst_mac: u128| {
            let mut k = FlowKey::ZERO;
            k.set(Field::InPort, 5);
            k.set(Field::EthSrc, mac_of(1, 5));
            k.set(Field::EthDst, dst_mac);
            k.set(Field::EthType, ETH_IPV6);
            k.set(Field::Ipv6Src, u128::from(src));
            k.set(Field::IpProto, 17);
            k.set(Field::IpTtl, 64);
            k
        };
        let x = xlate(&p, &env(), &mk(addr, mac_of(1, 2)));
        assert_eq!(outputs(&x), vec![1]);
        let ll = link_local(MacAddr([2, 0, 0, 0, 1, 5]));
        assert_eq!(ll, "fe80::ff:fe00:105".parse::<Ipv6Addr>().unwrap());
        assert_eq!(outputs(&xlate(&p, &env(), &mk(ll, mac_of(1, 2)))), vec![1]);
        let x = xlate(&p, &env(), &mk("fd00::9".parse().unwrap(), mac_of(1, 2)));
        assert!(x.actions.is_empty());
        // red-a1 has no IPv6 address of its own: a neighbor solicitation from it is spoof
        // dropped; from red-a3 (link-local source) for fd00::5 it is punted.
        let mut ns = mk(ll, 0x3333_ff00_0005);
        ns.set(Field::IpProto, PROTO_ICMPV6);
        ns.set(Field::IcmpType, ND_NEIGHBOR_SOLICIT);
        ns.set(Field::NdTarget, u128::from(addr));
        let x = xlate(&p, &env(), &ns);
        match x.actions.as_slice() {
            [DpAction::Userspace { cookie, .. }] => {
                assert_eq!(RuleKind::of_cookie(*cookie), Some(RuleKind::NdPunt))
            }
            other => panic!("{other:?}"),
        }
    }

    /// Every rule of the compiler, as text, with port owners named by port id (handles
    /// depend on the order ports were first seen).
    fn rules_by_owner(c: &Compiled, p: &Pipeline) -> Vec<String> {
        let owner = |ck: u64| -> String {
            let id = (ck & ID_MASK) as u32;
            if ck & CLASS_MASK == (OwnerClass::Port as u64) << CLASS_SHIFT {
                let port = c.view.ports().find(|q| c.port_handle(&q.id) == Some(id));
                format!("port {}", port.map_or("?", |q| q.id.as_str()))
            } else {
                format!("network {id}")
            }
        };
        let mut v: Vec<String> = p
            .rules()
            .map(|r| {
                format!(
                    "{} {} {:?} {:?} {:?} {}",
                    r.table,
                    r.priority,
                    r.matching,
                    r.instructions,
                    RuleKind::of_cookie(r.cookie),
                    owner(r.cookie)
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn changes_one_by_one_give_what_a_load_gives() {
        let snap = snapshot();
        let mut inc = Compiled::new();
        let mut pi = Pipeline::default();
        inc.load(&mut pi, &Snapshot::default(), ofport).unwrap();
        let changes = snap
            .networks
            .iter()
            .cloned()
            .map(Change::NetworkUpserted)
            .chain(snap.subnets.iter().cloned().map(Change::SubnetUpserted))
            .chain(snap.ports.iter().cloned().map(Change::PortUpserted));
        for ch in changes {
            inc.apply(&mut pi, &ch, ofport).unwrap();
        }
        let (full, pf) = setup();
        assert_eq!(pi.len(), pf.len());
        assert_eq!(rules_by_owner(&inc, &pi), rules_by_owner(&full, &pf));
        assert_eq!(inc.c.port_counts(), full.c.port_counts());
    }

    #[test]
    fn an_interface_attached_later_gets_its_rules_on_recompile() {
        let (mut c, mut p) = setup();
        let n = p.len();
        // red-a4 is bound here to interface "red-a4", not a bridge port yet.
        let d = c
            .apply(
                &mut p,
                &Change::PortUpserted(port("red-a4", "red", 1, 6, "host-a")),
                ofport,
            )
            .unwrap();
        assert_eq!(
            d.skipped,
            vec![("red-a4".to_string(), SkipReason::NotAttached)]
        );
        assert_eq!(p.len(), n);
        assert_eq!(c.c.port_counts(), (5, 1));
        let h = c.port_handle("red-a4").unwrap();
        // It becomes bridge port 6: compiled again, it gets the seven rules of a local port
        // (same handle) and joins red's flood rules.
        let attached = |i: &LocalInterface| match i.name.as_str() {
            "red-a4" => Some(6),
            _ => ofport(i),
        };
        let d =
            c.c.recompile_port(&mut p, &c.view, "red-a4", attached)
                .unwrap();
        assert!(d.skipped.is_empty(), "{d:?}");
        assert_eq!(c.port_handle("red-a4"), Some(h));
        assert_eq!(c.c.ports_on(6), vec!["red-a4".to_string()]);
        assert_eq!(c.c.port_counts(), (6, 0));
        assert_eq!(p.len(), n + 7);
        let mut e = env();
        e.add_port(6, true, true);
        let x = xlate(
            &p,
            &e,
            &udp_key(1, mac_of(1, 2), mac_of(1, 6), ip(2), ip(6)),
        );
        assert_eq!(outputs(&x), vec![6]);
        let x = xlate(
            &p,
            &e,
            &udp_key(1, mac_of(1, 2), 0xffff_ffff_ffff, ip(2), ip(255)),
        );
        assert_eq!(outputs(&x), vec![2, 6]);
        // The port leaves the bridge: compiled again without it, it loses them all.
        let d =
            c.c.recompile_port(&mut p, &c.view, "red-a4", ofport)
                .unwrap();
        assert_eq!(
            d.skipped,
            vec![("red-a4".to_string(), SkipReason::NotAttached)]
        );
        assert_eq!(d.removed, 7);
        assert!(c.c.ports_on(6).is_empty());
        assert_eq!(p.len(), n);
        let x = xlate(
            &p,
            &e,
            &udp_key(1, mac_of(1, 2), 0xffff_ffff_ffff, ip(2), ip(255)),
        );
        assert_eq!(outputs(&x), vec![2]);
        // A port the view does not hold is left alone.
        let d = c.c.recompile_port(&mut p, &c.view, "nope", ofport).unwrap();
        assert_eq!(d, Delta::default());
    }

    #[test]
    fn a_vtep_stays_in_the_flood_while_any_port_is_behind_it() {
        let (mut c, mut p) = setup();
        let bcast = || udp_key(1, mac_of(1, 2), 0xffff_ffff_ffff, ip(2), ip(255));
        c.apply(
            &mut p,
            &Change::PortUpserted(port("red-b2", "red", 1, 8, "host-b")),
            ofport,
        )
        .unwrap();
        assert_eq!(
            pushes(&xlate(&p, &env(), &bcast())),
            vec![(100, IpAddr::V4(VTEP_B))]
        );
        c.apply(
            &mut p,
            &Change::PortDeleted(port("red-b1", "red", 1, 4, "host-b")),
            ofport,
        )
        .unwrap();
        assert_eq!(
            pushes(&xlate(&p, &env(), &bcast())),
            vec![(100, IpAddr::V4(VTEP_B))]
        );
        // The last one moves to blue: red floods to no VTEP, blue still to B.
        c.apply(
            &mut p,
            &Change::PortUpserted(port("red-b2", "blue", 2, 8, "host-b")),
            ofport,
        )
        .unwrap();
        assert!(pushes(&xlate(&p, &env(), &bcast())).is_empty());
        assert_eq!(outputs(&xlate(&p, &env(), &bcast())), vec![2]);
        let blue = udp_key(4, mac_of(2, 2), 0xffff_ffff_ffff, ip(2), ip(255));
        assert_eq!(
            pushes(&xlate(&p, &env(), &blue)),
            vec![(200, IpAddr::V4(VTEP_B))]
        );
        // A local port admin down leaves the local flood.
        let mut down = port("red-a2", "red", 1, 3, "host-a");
        down.admin_state_up = false;
        c.apply(&mut p, &Change::PortUpserted(down), ofport)
            .unwrap();
        assert!(outputs(&xlate(&p, &env(), &bcast())).is_empty());
    }
}
