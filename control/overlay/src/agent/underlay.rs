//! The underlay port of a tenant host: the VXLAN tunnel port's configuration, ARP for the
//! local VTEP address, and the next hops of the remote VTEPs.
//!
//! Contract:
//! - strato owns the underlay interface (AF_XDP takes every frame), so it is the one to answer
//!   ARP requests for the local VTEP address: one rule (table 0, priority 300, cookie
//!   [`UNDERLAY_COOKIE`]) sends ARP from the underlay port addressed to the VTEP to the agent,
//!   which replies with the underlay MAC. VXLAN to the VTEP address is decapsulated by the
//!   datapath before the pipeline runs (the tunnel port's underlay termination).
//! - Remote VTEPs (IPv4) are resolved by ARP: a request every second while one is unresolved,
//!   a refresh of all every [`REFRESH`]; any ARP frame from a VTEP (request or reply) teaches its
//!   MAC. A tunnel copy to a VTEP whose next hop is unknown is not sent (xlate emits nothing);
//!   the revalidation after it resolves fixes the cached flows.
//! - IPv6 VTEPs get the tunnel port but no neighbor discovery: not resolved, so not reached.

use super::AgentStats;
use crate::responder::{arp, build_frame, is_unicast_mac, parse_l2, Mac, BROADCAST_MAC};
use etherparse::EtherType;
use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress, Ipv4Address};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use strato_flowtable::key::Field;
use strato_flowtable::pipeline::{
    Action, AddOptions, Instructions, OfPort, RuleFilter, RuleSpec, TunnelPortCfg,
    IN_PORT_CONTROLLER,
};
use strato_flowtable::{DpAction, Match, PortNo};
use strato_switch::controller::{Controller, PacketIn};

/// Cookie of the underlay's ARP rule (top 16 bits `"TU"`; never the compiler's `"TC"`).
pub const UNDERLAY_COOKIE: u64 = (0x5455 << 48) | 1;
/// Every remote VTEP is asked again this often (a peer's MAC may change).
pub const REFRESH: Duration = Duration::from_secs(30);
/// An unresolved VTEP is asked this often.
const RETRY: Duration = Duration::from_secs(1);
const PRIO_VTEP_ARP: u16 = 300;

/// True for a cookie of the underlay's rules.
pub fn is_underlay_cookie(cookie: u64) -> bool {
    cookie >> 48 == 0x5455
}

/// The underlay state (see the module docs).
pub struct Underlay {
    port: PortNo,
    mac: Mac,
    tunnel: Option<PortNo>,
    local: Option<Ipv4Addr>,
    remotes: BTreeMap<IpAddr, Option<Mac>>,
    next_ask: Instant,
    next_refresh: Instant,
}

impl Underlay {
    /// The underlay on bridge port `port`, whose interface has MAC `mac`.
    pub fn new(port: PortNo, mac: Mac) -> Underlay {
        Underlay {
            port,
            mac,
            tunnel: None,
            local: None,
            remotes: BTreeMap::new(),
            next_ask: Instant::now(),
            next_refresh: Instant::now() + REFRESH,
        }
    }

    /// (resolved, total) remote VTEPs.
    pub fn resolved(&self) -> (usize, usize) {
        (
            self.remotes.values().filter(|m| m.is_some()).count(),
            self.remotes.len(),
        )
    }

    /// Sets the local VTEP address and the hosts (every host but `host` is a remote VTEP):
    /// the ARP rule, the tunnel port. Next hops already known for kept VTEPs stay.
    pub fn set_vteps(
        &mut self,
        c: &mut Controller,
        local: Option<IpAddr>,
        hosts: &[super::source::Vtep],
        host: &str,
        tunnel: PortNo,
    ) {
        let mut remotes = BTreeMap::new();
        for h in hosts.iter().filter(|h| h.name != host) {
            if h.vtep_ip.is_ipv6() {
                tracing::warn!(host = %h.name, vtep = %h.vtep_ip,
                    "IPv6 VTEPs are not resolved on the underlay: this host is not reached");
            }
            let known = self.remotes.get(&h.vtep_ip).copied().flatten();
            remotes.insert(h.vtep_ip, known);
        }
        self.remotes = remotes;
        self.local = match local {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        };
        let (port, mac, old_tunnel) = (self.port, self.mac, self.tunnel.replace(tunnel));
        let neighbors: BTreeMap<IpAddr, Mac> = self
            .remotes
            .iter()
            .filter_map(|(ip, m)| m.map(|m| (*ip, m)))
            .collect();
        let local_v4 = self.local;
        let r = c.change(|p, env| {
            if let Some(t) = old_tunnel {
                env.tunnels.remove(&t);
                env.ports.remove(&t);
            }
            if let Some(ip) = local {
                let mut t = TunnelPortCfg::new(tunnel, port, ip, mac);
                t.neighbors = neighbors;
                env.add_tunnel(t);
            }
            p.delete(&RuleFilter::loose(None, Match::CATCH_ALL).cookie(UNDERLAY_COOKIE, u64::MAX))?;
            if let Some(a) = local_v4 {
                let m = Match::default()
                    .with(Field::InPort, port.into())
                    .with(Field::EthType, 0x0806)
                    .with(Field::ArpTpa, u32::from(a).into());
                let instr = Instructions::apply(vec![Action::Output(OfPort::Controller {
                    max_len: 0xffff,
                })]);
                let spec = RuleSpec {
                    cookie: UNDERLAY_COOKIE,
                    ..RuleSpec::new(0, m, PRIO_VTEP_ARP, instr)
                };
                p.add(spec, AddOptions::default(), 0)?;
            }
            Ok::<(), strato_flowtable::pipeline::PipelineError>(())
        });
        if let Err(e) = r {
            tracing::error!(%e, "could not install the underlay's ARP rule");
        }
        self.next_ask = Instant::now();
    }

    /// Timers: ARP requests for unresolved VTEPs (every second) and for all (every
    /// [`REFRESH`]).
    pub fn run(&mut self, c: &mut Controller, stats: &mut AgentStats) {
        let now = Instant::now();
        let Some(local) = self.local else { return };
        let refresh = now >= self.next_refresh;
        if !refresh && (now < self.next_ask || self.remotes.values().all(|m| m.is_some())) {
            return;
        }
        if refresh {
            self.next_refresh = now + REFRESH;
        }
        self.next_ask = now + RETRY;
        let targets: Vec<Ipv4Addr> = self
            .remotes
            .iter()
            .filter(|(_, m)| refresh || m.is_none())
            .filter_map(|(ip, _)| match ip {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect();
        for t in targets {
            let f = arp_request(self.mac, local, t);
            self.send(c, &f);
            stats.vtep_arp_requests += 1;
        }
    }

    fn send(&self, c: &mut Controller, frame: &[u8]) {
        let Some(w) = c
            .ports()
            .iter()
            .find(|r| r.no == self.port)
            .map(|r| r.worker)
        else {
            return;
        };
        c.execute(
            w,
            IN_PORT_CONTROLLER,
            frame,
            vec![DpAction::Output(self.port)],
        );
    }

    /// An ARP frame from the underlay for the local VTEP: answer requests, learn senders.
    pub fn punt(&mut self, c: &mut Controller, p: &PacketIn, stats: &mut AgentStats) {
        if let Some((spa, sha)) = arp_sender(&p.frame) {
            let ip = IpAddr::V4(spa);
            if let Some(known) = self.remotes.get_mut(&ip) {
                if *known != Some(sha) {
                    *known = Some(sha);
                    tracing::info!(vtep = %spa, mac = ?sha, "remote VTEP resolved");
                    if let Some(t) = self.tunnel {
                        c.change(|_, env| {
                            if let Some(cfg) = env.tunnels.get_mut(&t) {
                                cfg.neighbors.insert(ip, sha);
                            }
                        });
                    }
                }
            }
        }
        let (local, mac) = (self.local, self.mac);
        if let arp::ArpOutcome::Reply(f) =
            arp::respond(&p.frame, |ip| (Some(ip) == local).then_some(mac))
        {
            stats.vtep_arp_replies += 1;
            c.execute(p.worker, p.in_port, &f, vec![DpAction::Output(p.in_port)]);
        }
    }
}

/// The sender (IP, MAC) of an Ethernet/IPv4 ARP frame with a unicast sender.
fn arp_sender(frame: &[u8]) -> Option<(Ipv4Addr, Mac)> {
    let (l2, payload) = parse_l2(frame).ok()?;
    if l2.ether_type != EtherType::ARP {
        return None;
    }
    let pkt = ArpPacket::new_checked(payload).ok()?;
    let ArpRepr::EthernetIpv4 {
        source_hardware_addr,
        source_protocol_addr,
        ..
    } = ArpRepr::parse(&pkt).ok()?
    else {
        return None;
    };
    let sha = source_hardware_addr.0;
    let spa = Ipv4Addr::from(source_protocol_addr.octets());
    (is_unicast_mac(&sha) && !spa.is_unspecified()).then_some((spa, sha))
}

/// A broadcast ARP request `who has target? tell local` from `mac`.
pub fn arp_request(mac: Mac, local: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(mac),
        source_protocol_addr: Ipv4Address::from(local.octets()),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: Ipv4Address::from(target.octets()),
    };
    build_frame(
        BROADCAST_MAC,
        mac,
        None,
        EtherType::ARP,
        repr.buffer_len(),
        |b| repr.emit(&mut ArpPacket::new_unchecked(b)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_back_and_are_answered_by_the_responder() {
        let me = [2, 0, 0, 0, 0, 1];
        let f = arp_request(me, Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(f.len(), 60);
        assert_eq!(&f[..6], &BROADCAST_MAC);
        assert_eq!(arp_sender(&f), Some((Ipv4Addr::new(192, 0, 2, 1), me)));
        let peer = [2, 0, 0, 0, 0, 2];
        let reply = arp::reply(&f, |ip| (ip == Ipv4Addr::new(192, 0, 2, 2)).then_some(peer))
            .expect("answered");
        // The reply teaches the peer's MAC.
        assert_eq!(
            arp_sender(&reply),
            Some((Ipv4Addr::new(192, 0, 2, 2), peer))
        );
        assert_eq!(&reply[..6], &me);
    }

    #[test]
    fn garbage_teaches_nothing() {
        assert_eq!(arp_sender(&[]), None);
        assert_eq!(arp_sender(&[0xff; 60]), None);
        let mut f = arp_request(
            [2, 0, 0, 0, 0, 1],
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
        );
        f[22] = 0x01; // sender MAC multicast
        assert_eq!(arp_sender(&f), None);
        assert!(is_underlay_cookie(UNDERLAY_COOKIE));
        assert!(!is_underlay_cookie(crate::compiler::COOKIE_MAGIC));
    }
}
