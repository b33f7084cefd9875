//! The key-level model of packet handling, used to check [`crate::xlate`]:
//!
//! - [`apply_dp`]: what the datapath does with a packet of a given key when it runs a list of
//!   [`DpAction`]s (the semantics documented in [`crate::dpaction`], on keys instead of bytes);
//! - [`execute`]: the reference interpreter of the OpenFlow pipeline, written independently of
//!   xlate and meant to be obviously correct: a linear scan of each table's rules (no
//!   subtables, no masks, no caching), plain OpenFlow semantics.
//!
//! Contract: for every pipeline, port environment and key `k`, and every key `k2` matched by
//! `xlate(k).megaflow`, `apply_dp(k2, &xlate(k).actions) == execute(k2)`. This is what the
//! property test `tests/xlate_props.rs` checks.
//!
//! Shared OpenFlow semantics (also implemented, with un-wildcarding, by xlate):
//! - Metadata and registers start at zero when the pipeline starts; in_port and tunnel fields
//!   come from the packet.
//! - A table picks its highest-priority matching rule; ties go to the oldest rule
//!   ([`crate::pipeline::Rule::seq`]). A miss follows the table's [`TableMiss`] (controller:
//!   packet-in with reason no-match, cookie [`MISS_COOKIE`], max_len [`MISS_MAX_LEN`]).
//! - Actions run in order on the packet; set-field of a wire field applies only when the
//!   packet has that header ([`set_field_applies`]); push_vlan copies VID/PCP from an existing
//!   tag, else uses 0; pop_vlan on an untagged packet does nothing; dec_ttl on an IP packet
//!   with TTL <= 1 drops the packet and ends all processing (earlier outputs happened); on
//!   non-IP packets it does nothing.
//! - Output to the input port is dropped (use `InPort`); flood/all go to up ports (flood:
//!   flood-enabled ones) except the input port, ascending; output to a tunnel port encapsulates
//!   when VNI (24 bits), remote (same family as the local address) and next-hop MAC resolve,
//!   else the output is dropped.
//! - Underlay termination ([`underlay_termination`]) happens before the pipeline.
//!
//! The key inside an [`Effect`] is normalised ([`normalize`]): pipeline-only fields (in_port,
//! metadata, registers) and tunnel fields are zeroed, since they never reach the wire as such.

use crate::dpaction::{DpAction, PortNo, UserspaceReason};
use crate::key::{Field, FlowKey, FRAG_LATER, VLAN_PRESENT};
use crate::pipeline::{Action, OfPort, Pipeline, PortEnv, Rule, TableMiss, TunnelPortCfg};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Cookie of a packet-in caused by a table miss (OpenFlow: -1, no rule).
pub const MISS_COOKIE: u64 = u64::MAX;
/// max_len of a packet-in caused by a table miss (OFPCML_NO_BUFFER: the whole packet).
pub const MISS_MAX_LEN: u16 = 0xffff;

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
/// [`crate::dpaction`]).
pub fn apply_dp(key: &FlowKey, actions: &[DpAction]) -> Vec<Effect> {
    let mut k = *key;
    let mut out = Vec::new();
    for a in actions {
        match a {
            DpAction::Output(p) => out.push(Effect::Output {
                port: *p,
                key: normalize(&k),
            }),
            DpAction::PushVlan { tci, .. } => k.set(Field::VlanTci, (*tci | VLAN_PRESENT) as u128),
            DpAction::PopVlan => k.set(Field::VlanTci, 0),
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
    let in_port = key.get(Field::InPort) as PortNo;
    let mut k = *key;
    for f in [
        Field::Metadata,
        Field::Reg0,
        Field::Reg1,
        Field::Reg2,
        Field::Reg3,
    ] {
        k.set(f, 0);
    }
    let mut out = Vec::new();
    let mut table: usize = 0;
    while table < p.n_tables() {
        // Linear scan: highest priority, then oldest.
        let mut best: Option<&Rule> = None;
        for r in p.rules() {
            if r.table as usize == table && r.matching.matches(&k) {
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
                Some(TableMiss::Controller) => out.push(Effect::Controller {
                    reason: UserspaceReason::NoMatch,
                    max_len: MISS_MAX_LEN,
                    cookie: MISS_COOKIE,
                    table: table as u8,
                    key: normalize(&k),
                }),
                _ => {}
            }
            return out;
        };
        for a in &rule.instructions.apply_actions {
            match *a {
                Action::Output(op) => match op {
                    OfPort::Port(port) => {
                        if port != in_port {
                            output_to(env, port, &k, &mut out);
                        }
                    }
                    OfPort::InPort => output_to(env, in_port, &k, &mut out),
                    OfPort::Flood | OfPort::All => {
                        for (&port, cfg) in &env.ports {
                            let wanted = cfg.up && (cfg.flood || op == OfPort::All);
                            if wanted && port != in_port {
                                output_to(env, port, &k, &mut out);
                            }
                        }
                    }
                    OfPort::Controller { max_len } => out.push(Effect::Controller {
                        reason: UserspaceReason::Action,
                        max_len,
                        cookie: rule.cookie,
                        table: rule.table,
                        key: normalize(&k),
                    }),
                },
                Action::SetField { field, value } => {
                    if set_field_applies(field, &k) {
                        k.set(field, value);
                    }
                }
                Action::SetTunnel { vni } => k.set(Field::TunId, vni as u128),
                Action::PushVlan { .. } => {
                    let tci = if k.get(Field::VlanPresent) == 1 {
                        k.get(Field::VlanTci)
                    } else {
                        0
                    };
                    k.set(Field::VlanTci, tci | VLAN_PRESENT as u128);
                }
                Action::PopVlan => {
                    if k.get(Field::VlanPresent) == 1 {
                        k.set(Field::VlanTci, 0);
                    }
                }
                Action::DecTtl => {
                    if is_ip(&k) {
                        let ttl = k.get(Field::IpTtl);
                        if ttl <= 1 {
                            return out;
                        }
                        k.set(Field::IpTtl, ttl - 1);
                    }
                }
            }
        }
        if let Some((v, m)) = rule.instructions.write_metadata {
            let md = k.get(Field::Metadata) as u64;
            k.set(Field::Metadata, ((md & !m) | (v & m)) as u128);
        }
        match rule.instructions.goto_table {
            Some(t) => table = t as usize,
            None => return out,
        }
    }
    out
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
}
