//! The key-level model of packet handling, used to check [`crate::xlate`]:
//!
//! - [`apply_dp`]: what the datapath does with a packet of a given key when it runs a list of
//!   [`DpAction`]s (the semantics documented in [`crate::dpaction`], on keys instead of bytes);
//! - [`execute`]: the reference interpreter of the OpenFlow pipeline, written independently of
//!   xlate and meant to be obviously correct: a linear scan of each table's rules (no
//!   subtables, no masks, no caching), plain OpenFlow semantics, groups by copying the packet;
//!   [`execute_actions`] the same for a packet-out action list.
//!
//! Contract: for every pipeline, port environment and key `k`, and every key `k2` matched by
//! `xlate(k).megaflow`, `apply_dp(k2, &xlate(k).actions) == execute(k2)` (and the same for
//! `xlate_actions` against [`execute_actions`]). This is what the property tests in
//! `tests/xlate_props.rs` check.
//!
//! Shared OpenFlow semantics (also implemented, with un-wildcarding, by xlate):
//! - Metadata and registers start at zero when the pipeline starts; in_port and tunnel fields
//!   come from the packet.
//! - A table picks its highest-priority matching rule; ties go to the oldest rule
//!   ([`crate::pipeline::Rule::seq`]). A miss follows the table's [`TableMiss`] (controller:
//!   packet-in with reason no-match, cookie [`MISS_COOKIE`], max_len [`MISS_MAX_LEN`]).
//! - Actions run in order on the packet; set-field of a wire field applies only when the
//!   packet has that header ([`set_field_applies`]); push_vlan copies VID/PCP from an existing
//!   tag, else uses 0; pop_vlan on an untagged packet does nothing, and uncovers the tag a push
//!   covered (the key shows only the outer tag; covered tags are remembered, as the wire keeps
//!   them); dec_ttl on an IP packet with TTL <= 1 drops the packet and ends all processing
//!   (earlier outputs happened); on non-IP packets it does nothing.
//! - Output to the input port is dropped (use `InPort`); flood/all go to up ports (flood:
//!   flood-enabled ones) except the input port, ascending; output to a tunnel port encapsulates
//!   when VNI (24 bits), remote (same family as the local address) and next-hop MAC resolve,
//!   else the output is dropped.
//! - Groups ([`crate::group`]): a group action runs each chosen bucket on its own copy of the
//!   packet and leaves the packet as it was; a dec_ttl expiry in a bucket drops only that copy.
//!   ALL: every bucket; INDIRECT: its bucket; FAST_FAILOVER: the first live bucket; SELECT: the
//!   live bucket of non-zero weight that the [`SelectHash`] of the packet's L2-L4 fields picks
//!   in the cumulative weights. Written here from the group module's contract, not from xlate
//!   (only the hash function itself is shared).
//! - Underlay termination ([`underlay_termination`]) happens before the pipeline.
//! - Packet-out ([`execute_actions`]): the action list runs on the packet (no underlay
//!   termination); `output:TABLE` runs the pipeline from table 0 on a copy; `output:IN_PORT`
//!   of a packet whose in_port is [`IN_PORT_CONTROLLER`] does nothing.
//!
//! The key inside an [`Effect`] is normalised ([`normalize`]): pipeline-only fields (in_port,
//! metadata, registers) and tunnel fields are zeroed, since they never reach the wire as such.

use crate::dpaction::{DpAction, UserspaceReason};
use crate::group::{Bucket, Group, GroupType, SelectHash};
use crate::key::{Field, FlowKey, FRAG_LATER, VLAN_PRESENT};
use crate::pipeline::{
    Action, OfPort, Pipeline, PortEnv, Rule, TableMiss, TunnelPortCfg, IN_PORT_CONTROLLER,
};
use crate::port::PortNo;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Cookie of a packet-in caused by a table miss (OpenFlow: -1, no rule).
pub const MISS_COOKIE: u64 = u64::MAX;
/// max_len of a packet-in caused by a table miss (OFPCML_NO_BUFFER: the whole packet).
pub const MISS_MAX_LEN: u16 = 0xffff;
/// Cookie of a packet-in caused by an output:CONTROLLER of a packet-out (no rule: -1).
pub const PACKET_OUT_COOKIE: u64 = u64::MAX;
/// Table of a packet-in caused by an output:CONTROLLER of a packet-out (no table: 0xff).
pub const PACKET_OUT_TABLE: u8 = 0xff;

/// One externally visible thing that happens to a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Emitted on a port.
    Output {
        /// The port.
        port: PortNo,
        /// The packet's (normalised) key at that moment.
        key: FlowKey,
    },
    /// Encapsulated in VXLAN and emitted on the underlay.
    Tunnel {
        /// The tunnel port output to.
        tunnel_port: PortNo,
        /// The underlay port.
        out_port: PortNo,
        /// VNI.
        vni: u32,
        /// Remote VTEP.
        remote: IpAddr,
        /// Next-hop MAC.
        dst_mac: [u8; 6],
        /// The inner packet's (normalised) key.
        key: FlowKey,
    },
    /// Sent to the controller.
    Controller {
        /// Packet-in reason.
        reason: UserspaceReason,
        /// Bytes requested.
        max_len: u16,
        /// Cookie of the deciding rule ([`MISS_COOKIE`] on a miss).
        cookie: u64,
        /// Table of the deciding rule or miss.
        table: u8,
        /// The (normalised) key at that moment.
        key: FlowKey,
    },
    /// Decapsulated; the inner packet is looked up again as arriving on `port`.
    Decap {
        /// The tunnel port.
        port: PortNo,
    },
}

/// Zeroes the fields that never appear on the wire as such (pipeline-only and tunnel fields).
pub fn normalize(k: &FlowKey) -> FlowKey {
    let mut k = *k;
    for &f in Field::ALL {
        if f.is_pipeline_only() || f.is_tunnel() {
            k.set(f, 0);
        }
    }
    k
}

fn eth_type(k: &FlowKey) -> u128 {
    k.get(Field::EthType)
}

/// True for IPv4 and IPv6 packets.
pub fn is_ip(k: &FlowKey) -> bool {
    eth_type(k) == 0x0800 || eth_type(k) == 0x86dd
}

fn has_l4_ports(k: &FlowKey) -> bool {
    is_ip(k)
        && matches!(k.get(Field::IpProto), 6 | 17 | 132)
        && k.get(Field::IpFrag) as u8 & FRAG_LATER == 0
}

fn is_icmp(k: &FlowKey) -> bool {
    let p = k.get(Field::IpProto);
    ((eth_type(k) == 0x0800 && p == 1) || (eth_type(k) == 0x86dd && p == 58))
        && k.get(Field::IpFrag) as u8 & FRAG_LATER == 0
}

/// OpenFlow set-field prerequisites: true when the packet with key `k` has the header that
/// field `f` lives in. Pipeline-only and tunnel fields always apply; fields that cannot be
/// set (see [`crate::pipeline::settable`]) never do.
pub fn set_field_applies(f: Field, k: &FlowKey) -> bool {
    use Field::*;
    match f {
        Metadata | Reg0 | Reg1 | Reg2 | Reg3 => true,
        TunId | TunIpv4Src | TunIpv4Dst | TunIpv6Src | TunIpv6Dst => true,
        EthSrc | EthDst => true,
        VlanVid | VlanPcp => k.get(VlanPresent) == 1,
        IpTos | IpDscp | IpEcn | IpTtl => is_ip(k),
        Ipv4Src | Ipv4Dst => eth_type(k) == 0x0800,
        Ipv6Src | Ipv6Dst | Ipv6Label => eth_type(k) == 0x86dd,
        TpSrc | TpDst => has_l4_ports(k),
        IcmpType | IcmpCode => is_icmp(k),
        ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => eth_type(k) == 0x0806,
        NdTarget => eth_type(k) == 0x86dd && is_icmp(k) && matches!(k.get(IcmpType), 135 | 136),
        InPort | EthType | IpProto | IpFrag | TcpFlags | VlanTci | VlanPresent => false,
    }
}

/// The tunnel port whose underlay traffic this packet is: arriving on the tunnel's underlay
/// port, IPv4/IPv6 to its local address, UDP to its port, not a later fragment. The first
/// such tunnel in port order wins.
pub fn underlay_termination(env: &PortEnv, k: &FlowKey) -> Option<PortNo> {
    let in_port = k.get(Field::InPort) as PortNo;
    env.tunnels
        .values()
        .find(|t| {
            let to_local = match t.local_ip {
                IpAddr::V4(a) => {
                    eth_type(k) == 0x0800 && k.get(Field::Ipv4Dst) == u32::from(a) as u128
                }
                IpAddr::V6(a) => eth_type(k) == 0x86dd && k.get(Field::Ipv6Dst) == u128::from(a),
            };
            t.underlay_port == in_port
                && to_local
                && k.get(Field::IpProto) == 17
                && k.get(Field::IpFrag) as u8 & FRAG_LATER == 0
                && k.get(Field::TpDst) == t.dst_port as u128
        })
        .map(|t| t.port)
}

/// What the datapath does to a packet of key `key` running `actions` (see the module docs of
/// [`crate::dpaction`]). The key shows the outer VLAN tag only; tags a push covers are
/// remembered so that a pop uncovers them, as on the wire.
pub fn apply_dp(key: &FlowKey, actions: &[DpAction]) -> Vec<Effect> {
    let mut k = *key;
    let mut inner_tags: Vec<u128> = Vec::new();
    let mut out = Vec::new();
    for a in actions {
        match a {
            DpAction::Output(p) => out.push(Effect::Output {
                port: *p,
                key: normalize(&k),
            }),
            DpAction::PushVlan { tci, .. } => {
                if k.get(Field::VlanPresent) == 1 {
                    inner_tags.push(k.get(Field::VlanTci));
                }
                k.set(Field::VlanTci, (*tci | VLAN_PRESENT) as u128)
            }
            DpAction::PopVlan => {
                if k.get(Field::VlanPresent) == 1 {
                    k.set(Field::VlanTci, inner_tags.pop().unwrap_or(0));
                }
            }
            DpAction::Set { field, value } => k.set(*field, *value),
            DpAction::DecTtl => {
                if is_ip(&k) {
                    let ttl = k.get(Field::IpTtl);
                    if ttl <= 1 {
                        return out;
                    }
                    k.set(Field::IpTtl, ttl - 1);
                }
            }
            DpAction::TunnelPush(t) => out.push(Effect::Tunnel {
                tunnel_port: t.tunnel_port,
                out_port: t.out_port,
                vni: t.params.vni,
                remote: t.params.dst_ip,
                dst_mac: t.params.dst_mac,
                key: normalize(&k),
            }),
            DpAction::TunnelPop { port } => {
                out.push(Effect::Decap { port: *port });
                return out;
            }
            DpAction::Userspace {
                reason,
                max_len,
                cookie,
                table,
                ..
            } => out.push(Effect::Controller {
                reason: *reason,
                max_len: *max_len,
                cookie: *cookie,
                table: *table,
                key: normalize(&k),
            }),
        }
    }
    out
}
/// The tunnel effect of outputting a packet of key `k` to tunnel `t`, or None when it cannot
/// be resolved (the output is dropped).
fn tunnel_effect(t: &TunnelPortCfg, k: &FlowKey) -> Option<Effect> {
    let vni = match t.vni {
        Some(v) => v as u64,
        None => k.get(Field::TunId) as u64,
    };
    if vni > 0x00ff_ffff {
        return None;
    }
    let remote = match t.remote_ip {
        Some(ip) => ip,
        None => {
            let v4 = k.get(Field::TunIpv4Dst) as u32;
            let v6 = k.get(Field::TunIpv6Dst);
            if v4 != 0 {
                IpAddr::V4(Ipv4Addr::from(v4))
            } else if v6 != 0 {
                IpAddr::V6(Ipv6Addr::from(v6))
            } else {
                return None;
            }
        }
    };
    if remote.is_ipv4() != t.local_ip.is_ipv4() {
        return None;
    }
    let dst_mac = *t.neighbors.get(&remote)?;
    Some(Effect::Tunnel {
        tunnel_port: t.port,
        out_port: t.underlay_port,
        vni: vni as u32,
        remote,
        dst_mac,
        key: normalize(k),
    })
}

fn output_to(env: &PortEnv, port: PortNo, k: &FlowKey, out: &mut Vec<Effect>) {
    match env.tunnels.get(&port) {
        Some(t) => out.extend(tunnel_effect(t, k)),
        None => out.push(Effect::Output {
            port,
            key: normalize(k),
        }),
    }
}

/// The reference interpreter: what the OpenFlow pipeline does with a packet of key `key`.
pub fn execute(p: &Pipeline, env: &PortEnv, key: &FlowKey) -> Vec<Effect> {
    if let Some(port) = underlay_termination(env, key) {
        return vec![Effect::Decap { port }];
    }
    let mut m = Interp::new(p, env, key);
    let mut pkt = Pkt::new(key);
    m.pipeline(&mut pkt);
    m.out
}

/// The reference interpreter of a packet-out: what running `actions` does to a packet of key
/// `key` (in_port from the key, [`IN_PORT_CONTROLLER`] when the controller names none). No
/// underlay termination; `output:TABLE` runs the pipeline from table 0 on a copy of the packet;
/// controller outputs carry [`PACKET_OUT_COOKIE`] and [`PACKET_OUT_TABLE`].
pub fn execute_actions(
    p: &Pipeline,
    env: &PortEnv,
    key: &FlowKey,
    actions: &[Action],
) -> Vec<Effect> {
    let mut m = Interp::new(p, env, key);
    let mut pkt = Pkt::new(key);
    m.actions(&mut pkt, actions, PACKET_OUT_COOKIE, PACKET_OUT_TABLE, true);
    m.out
}

/// The packet as the interpreter sees it: the key (which shows the outer VLAN tag only) and
/// the tags that pushes covered, innermost first.
#[derive(Clone)]
struct Pkt {
    k: FlowKey,
    inner_tags: Vec<u128>,
}

impl Pkt {
    fn new(key: &FlowKey) -> Pkt {
        let mut k = *key;
        for f in REGS {
            k.set(f, 0);
        }
        Pkt {
            k,
            inner_tags: Vec::new(),
        }
    }
}

const REGS: [Field; 5] = [
    Field::Metadata,
    Field::Reg0,
    Field::Reg1,
    Field::Reg2,
    Field::Reg3,
];

/// Whether processing of a packet (or of a group bucket's copy) goes on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    /// dec_ttl found TTL <= 1: this packet (copy) is dropped.
    Stop,
}

struct Interp<'a> {
    p: &'a Pipeline,
    env: &'a PortEnv,
    in_port: PortNo,
    out: Vec<Effect>,
}

impl<'a> Interp<'a> {
    fn new(p: &'a Pipeline, env: &'a PortEnv, key: &FlowKey) -> Self {
        Interp {
            p,
            env,
            in_port: key.get(Field::InPort) as PortNo,
            out: Vec::new(),
        }
    }

    /// The pipeline from table 0, metadata and registers zeroed.
    fn pipeline(&mut self, pkt: &mut Pkt) -> Flow {
        for f in REGS {
            pkt.k.set(f, 0);
        }
        let p = self.p;
        let mut table: usize = 0;
        while table < p.n_tables() {
            // Linear scan: highest priority, then oldest.
            let mut best: Option<&Rule> = None;
            for r in p.rules() {
                if r.table as usize == table && r.matching.matches(&pkt.k) {
                    let better = match best {
                        None => true,
                        Some(b) => {
                            r.priority > b.priority || (r.priority == b.priority && r.seq < b.seq)
                        }
                    };
                    if better {
                        best = Some(r);
                    }
                }
            }
            let Some(rule) = best else {
                match p.table_miss(table as u8) {
                    Some(TableMiss::Continue) => {
                        table += 1;
                        continue;
                    }
                    Some(TableMiss::Controller) => self.out.push(Effect::Controller {
                        reason: UserspaceReason::NoMatch,
                        max_len: MISS_MAX_LEN,
                        cookie: MISS_COOKIE,
                        table: table as u8,
                        key: normalize(&pkt.k),
                    }),
                    _ => {}
                }
                return Flow::Go;
            };
            let ins = &rule.instructions;
            if self.actions(pkt, &ins.apply_actions, rule.cookie, rule.table, false) == Flow::Stop {
                return Flow::Stop;
            }
            if let Some((v, m)) = ins.write_metadata {
                let md = pkt.k.get(Field::Metadata) as u64;
                pkt.k.set(Field::Metadata, ((md & !m) | (v & m)) as u128);
            }
            match ins.goto_table {
                Some(t) => table = t as usize,
                None => return Flow::Go,
            }
        }
        Flow::Go
    }

    /// Runs an action list; `packet_out`: the top level of a packet-out (output:TABLE allowed).
    fn actions(
        &mut self,
        pkt: &mut Pkt,
        actions: &[Action],
        cookie: u64,
        table: u8,
        packet_out: bool,
    ) -> Flow {
        for a in actions {
            let k = &mut pkt.k;
            match *a {
                Action::Output(op) => self.output(pkt, op, cookie, table, packet_out),
                Action::SetField { field, value } => {
                    if set_field_applies(field, k) {
                        k.set(field, value);
                    }
                }
                Action::SetTunnel { vni } => k.set(Field::TunId, vni as u128),
                Action::PushVlan { .. } => {
                    let tci = if k.get(Field::VlanPresent) == 1 {
                        pkt.inner_tags.push(k.get(Field::VlanTci));
                        k.get(Field::VlanTci)
                    } else {
                        0
                    };
                    k.set(Field::VlanTci, tci | VLAN_PRESENT as u128);
                }
                Action::PopVlan => {
                    if k.get(Field::VlanPresent) == 1 {
                        k.set(Field::VlanTci, pkt.inner_tags.pop().unwrap_or(0));
                    }
                }
                Action::DecTtl => {
                    if is_ip(k) {
                        let ttl = k.get(Field::IpTtl);
                        if ttl <= 1 {
                            return Flow::Stop;
                        }
                        k.set(Field::IpTtl, ttl - 1);
                    }
                }
                Action::Group(g) => self.group(pkt, g, cookie, table),
            }
        }
        Flow::Go
    }

    fn output(&mut self, pkt: &Pkt, op: OfPort, cookie: u64, table: u8, packet_out: bool) {
        let (env, in_port, k) = (self.env, self.in_port, &pkt.k);
        match op {
            OfPort::Port(port) => {
                if port != in_port {
                    output_to(env, port, k, &mut self.out);
                }
            }
            OfPort::InPort => {
                if in_port != IN_PORT_CONTROLLER {
                    output_to(env, in_port, k, &mut self.out);
                }
            }
            OfPort::Flood | OfPort::All => {
                for (&port, cfg) in &env.ports {
                    let wanted = cfg.up && (cfg.flood || op == OfPort::All);
                    if wanted && port != in_port {
                        output_to(env, port, k, &mut self.out);
                    }
                }
            }
            OfPort::Controller { max_len } => self.out.push(Effect::Controller {
                reason: UserspaceReason::Action,
                max_len,
                cookie,
                table,
                key: normalize(k),
            }),
            OfPort::Table => {
                if packet_out {
                    let mut copy = pkt.clone();
                    self.pipeline(&mut copy);
                }
            }
        }
    }

    /// A group action: each chosen bucket runs on its own copy; `pkt` is left as it was.
    fn group(&mut self, pkt: &Pkt, id: u32, cookie: u64, table: u8) {
        let Some(g) = self.p.group(id) else {
            return;
        };
        let chosen: Vec<&Bucket> = match g.kind {
            GroupType::All => g.buckets.iter().collect(),
            GroupType::Indirect => g.buckets.iter().take(1).collect(),
            GroupType::FastFailover => g
                .buckets
                .iter()
                .find(|b| bucket_live(self.p, self.env, b))
                .into_iter()
                .collect(),
            GroupType::Select => select_bucket(self.p, self.env, g, &pkt.k)
                .into_iter()
                .collect(),
        };
        for b in chosen {
            let mut copy = pkt.clone();
            // A stop (TTL expired) drops only this copy.
            let _ = self.actions(&mut copy, &b.actions, cookie, table, false);
        }
    }
}

/// OpenFlow/Open vSwitch bucket liveness: no watch, or a watched port that is up, or a
/// watched group with a live bucket.
fn bucket_live(p: &Pipeline, env: &PortEnv, b: &Bucket) -> bool {
    if b.watch_port.is_none() && b.watch_group.is_none() {
        return true;
    }
    let port_up = b
        .watch_port
        .is_some_and(|port| env.ports.get(&port).is_some_and(|c| c.up));
    let group_live = b.watch_group.is_some_and(|id| {
        p.group(id)
            .is_some_and(|g| g.buckets.iter().any(|x| bucket_live(p, env, x)))
    });
    port_up || group_live
}

/// The SELECT choice: live buckets of non-zero weight, the hash of the packet's L2-L4 fields
/// modulo their total weight, located in the cumulative weights.
fn select_bucket<'g>(p: &Pipeline, env: &PortEnv, g: &'g Group, k: &FlowKey) -> Option<&'g Bucket> {
    let candidates: Vec<&Bucket> = g
        .buckets
        .iter()
        .filter(|b| b.weight > 0 && bucket_live(p, env, b))
        .collect();
    let total: u64 = candidates.iter().map(|b| b.weight as u64).sum();
    if total == 0 {
        return None;
    }
    let mut h = SelectHash::new();
    let mut fields = vec![Field::EthSrc, Field::EthDst, Field::EthType];
    match eth_type(k) {
        0x0800 => fields.extend([Field::Ipv4Src, Field::Ipv4Dst, Field::IpProto]),
        0x86dd => fields.extend([Field::Ipv6Src, Field::Ipv6Dst, Field::IpProto]),
        _ => {}
    }
    if has_l4_ports(k) {
        fields.extend([Field::TpSrc, Field::TpDst]);
    }
    for f in fields {
        h.add(k.get(f));
    }
    let mut r = h.finish() as u64 % total;
    for b in candidates {
        if r < b.weight as u64 {
            return Some(b);
        }
        r -= b.weight as u64;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow_match::Match;
    use crate::pipeline::{AddOptions, Instructions, RuleSpec};
    use crate::tunnel::{TunnelParams, TunnelPush};

    fn ipv4_key(ttl: u8) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, 1);
        k.set(Field::EthType, 0x0800);
        k.set(Field::IpTtl, ttl as u128);
        k.set(Field::Metadata, 9);
        k
    }

    #[test]
    fn apply_dp_models_actions() {
        let k = ipv4_key(2);
        let acts = [
            DpAction::PushVlan {
                tpid: 0x8100,
                tci: 5,
            },
            DpAction::Set {
                field: Field::Ipv4Dst,
                value: 7,
            },
            DpAction::Output(3),
            DpAction::DecTtl,
            DpAction::PopVlan,
            DpAction::Output(4),
            DpAction::DecTtl,
            DpAction::Output(5),
        ];
        let e = apply_dp(&k, &acts);
        assert_eq!(e.len(), 2, "second dec_ttl (ttl 1) stops the list: {e:?}");
        let Effect::Output { port: 3, key } = e[0] else {
            panic!("{e:?}")
        };
        assert_eq!(key.get(Field::VlanTci), 5 | VLAN_PRESENT as u128);
        assert_eq!(key.get(Field::Ipv4Dst), 7);
        assert_eq!(key.get(Field::InPort), 0, "normalised");
        assert_eq!(key.get(Field::Metadata), 0, "normalised");
        let Effect::Output { port: 4, key } = e[1] else {
            panic!("{e:?}")
        };
        assert_eq!(key.get(Field::IpTtl), 1);
        assert_eq!(key.get(Field::VlanTci), 0);
        // Non-IP: dec_ttl does nothing.
        let mut arp = FlowKey::ZERO;
        arp.set(Field::EthType, 0x0806);
        assert_eq!(
            apply_dp(&arp, &[DpAction::DecTtl, DpAction::Output(1)]).len(),
            1
        );
        // TunnelPop ends the list.
        let e = apply_dp(&k, &[DpAction::TunnelPop { port: 9 }, DpAction::Output(1)]);
        assert_eq!(e, vec![Effect::Decap { port: 9 }]);
        // TunnelPush carries its parameters.
        let push = TunnelPush::new(
            9,
            1,
            TunnelParams {
                vni: 42,
                src_mac: [2, 0, 0, 0, 0, 1],
                dst_mac: [2, 0, 0, 0, 0, 2],
                src_ip: Ipv4Addr::new(10, 0, 0, 1).into(),
                dst_ip: Ipv4Addr::new(10, 0, 0, 2).into(),
                ttl: 64,
                tos: 0,
                dst_port: 4789,
                udp_csum: false,
            },
        )
        .unwrap();
        let e = apply_dp(&k, &[DpAction::TunnelPush(Box::new(push))]);
        assert!(matches!(
            e[0],
            Effect::Tunnel {
                tunnel_port: 9,
                out_port: 1,
                vni: 42,
                ..
            }
        ));
    }

    #[test]
    fn prerequisites() {
        let k = ipv4_key(5);
        assert!(set_field_applies(Field::Ipv4Src, &k));
        assert!(!set_field_applies(Field::Ipv6Src, &k));
        assert!(!set_field_applies(Field::TpDst, &k), "no L4 protocol");
        let mut udp = k;
        udp.set(Field::IpProto, 17);
        assert!(set_field_applies(Field::TpDst, &udp));
        udp.set(Field::IpFrag, (FRAG_LATER | 1) as u128);
        assert!(!set_field_applies(Field::TpDst, &udp), "later fragment");
        assert!(!set_field_applies(Field::VlanVid, &k));
        assert!(set_field_applies(Field::Reg2, &k));
        assert!(!set_field_applies(Field::EthType, &k));
    }

    #[test]
    fn execute_runs_tables_and_resets_metadata() {
        let mut p = Pipeline::new(3).unwrap();
        // Table 0 matches metadata 0 (reset at start even though the key says 9).
        p.add(
            RuleSpec::new(
                0,
                Match::default().with(Field::Metadata, 0),
                1,
                Instructions::apply(vec![Action::DecTtl])
                    .metadata(0x30, 0xf0)
                    .goto(2),
            ),
            AddOptions::default(),
            0,
        )
        .unwrap();
        p.add(
            RuleSpec::new(
                2,
                Match::default().with_masked(Field::Metadata, 0x30, 0xf0),
                1,
                Instructions::apply(vec![Action::Output(OfPort::Port(2))]),
            ),
            AddOptions::default(),
            0,
        )
        .unwrap();
        let env = PortEnv::default();
        let e = execute(&p, &env, &ipv4_key(9));
        assert_eq!(e.len(), 1);
        let Effect::Output { port: 2, key } = e[0] else {
            panic!("{e:?}")
        };
        assert_eq!(key.get(Field::IpTtl), 8);
        assert!(execute(&p, &env, &ipv4_key(1)).is_empty(), "ttl expired");
    }

    #[test]
    fn groups_run_buckets_on_copies() {
        use crate::group::{Bucket, GroupSpec, GroupType};
        let mut p = Pipeline::new(1).unwrap();
        p.group_add(
            GroupSpec::new(
                1,
                GroupType::All,
                vec![
                    Bucket::new(vec![
                        Action::PushVlan { tpid: 0x8100 },
                        Action::DecTtl,
                        Action::Output(OfPort::Port(2)),
                    ]),
                    Bucket::new(vec![Action::Output(OfPort::Port(3))]),
                ],
            ),
            0,
        )
        .unwrap();
        p.add(
            RuleSpec::new(
                0,
                Match::CATCH_ALL,
                1,
                Instructions::apply(vec![Action::Group(1), Action::Output(OfPort::Port(4))]),
            ),
            AddOptions::default(),
            0,
        )
        .unwrap();
        let env = PortEnv::default();
        let ports = |e: &[Effect]| {
            e.iter()
                .map(|x| match x {
                    Effect::Output { port, key } => {
                        (*port, key.get(Field::VlanTci), key.get(Field::IpTtl))
                    }
                    _ => panic!("{x:?}"),
                })
                .collect::<Vec<_>>()
        };
        let tag = VLAN_PRESENT as u128;
        assert_eq!(
            ports(&execute(&p, &env, &ipv4_key(5))),
            vec![(2, tag, 4), (3, 0, 5), (4, 0, 5)]
        );
        // TTL 1: the first bucket's copy is dropped, nothing else.
        assert_eq!(
            ports(&execute(&p, &env, &ipv4_key(1))),
            vec![(3, 0, 1), (4, 0, 1)]
        );
        // Packet-out: output:TABLE runs the pipeline on a copy; IN_PORT of a packet from the
        // controller goes nowhere.
        let mut k = ipv4_key(5);
        k.set(Field::InPort, IN_PORT_CONTROLLER as u128);
        let acts = [
            Action::PushVlan { tpid: 0x8100 },
            Action::Output(OfPort::Table),
            Action::Output(OfPort::InPort),
            Action::PopVlan,
            Action::Output(OfPort::Port(5)),
        ];
        assert_eq!(
            ports(&execute_actions(&p, &env, &k, &acts)),
            vec![(2, tag, 4), (3, tag, 5), (4, tag, 5), (5, 0, 5)]
        );
    }

    #[test]
    fn pop_uncovers_the_tag_a_push_covered() {
        let mut k = ipv4_key(5);
        k.set(Field::VlanTci, (VLAN_PRESENT | 7) as u128);
        let e = apply_dp(
            &k,
            &[
                DpAction::PushVlan {
                    tpid: 0x8100,
                    tci: 9,
                },
                DpAction::Output(1),
                DpAction::PopVlan,
                DpAction::Output(2),
                DpAction::PopVlan,
                DpAction::Output(3),
            ],
        );
        let tcis: Vec<u128> = e
            .iter()
            .map(|x| match x {
                Effect::Output { key, .. } => key.get(Field::VlanTci),
                _ => panic!("{x:?}"),
            })
            .collect();
        let t = VLAN_PRESENT as u128;
        assert_eq!(tcis, vec![t | 9, t | 7, 0]);
    }
}
