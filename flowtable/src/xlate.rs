//! xlate: runs the OpenFlow [`Pipeline`] for one packet key and compiles what it did into a
//! megaflow (a [`Match`] whose mask is exactly what was consulted) and a list of
//! [`DpAction`]s that the datapath can apply to every packet the megaflow matches.
//!
//! Contract (checked against [`crate::semantics`] by `tests/xlate_props.rs`): for every key
//! `k2` with `x.megaflow.matches(k2)`, `apply_dp(k2, &x.actions) == execute(p, env, k2)`.
//!
//! How:
//! - The megaflow key is the ORIGINAL key masked; the mask ("wildcards", `wc`) starts with
//!   `in_port` exact and gains: the mask of every subtable each table lookup visited; the
//!   fields a decision read (eth_type etc. for set-field prerequisites and dec_ttl, the VLAN
//!   present bit for push/pop, the TCI when push_vlan copies it, tun_id / tun_dst for a
//!   flow-based tunnel, the fields of the underlay-termination test). Actions run on a working
//!   copy of the key; fields written by actions are constants for the whole megaflow, so
//!   consulting them un-wildcards (harmlessly) the original bits. The TTL after dec_ttl is the
//!   one value derived non-bitwise from the packet: once decremented, consulting any TTL bit
//!   un-wildcards the whole TTL. Metadata and registers start at zero, so they are never in
//!   the megaflow mask.
//! - Wire fields written by set-field are "dirty"; before each packet-visible action (output,
//!   tunnel push, userspace, push/pop VLAN, dec_ttl) dirty fields are committed as
//!   `DpAction::Set`, skipped when an earlier `Set` already gave the packet the same value, so
//!   plain forwarding compiles to bare outputs. No `Set` value ever depends on unconsulted
//!   packet bits (VLAN VID and PCP, and TOS, DSCP and ECN are committed as separate fields).
//! - dec_ttl emits `DpAction::DecTtl` on IP packets and translation goes on: the datapath stops
//!   the list when TTL <= 1 (the reference interpreter stops the same way), so TTL itself is
//!   not consulted.
//! - Output to a port equal to in_port is dropped (use `InPort`); flood/all list up ports
//!   (flood: flood-enabled) ascending, except in_port; controller becomes `Userspace`; a tunnel
//!   port becomes `TunnelPush` when VNI, remote and next hop resolve, else nothing.
//! - A packet to a tunnel's local VTEP on its underlay port gets `TunnelPop` alone.
//! - At most [`MAX_ACTIONS`] actions are emitted; a translation that would need more is cut
//!   to an empty list (drop) with [`Xlation::truncated`] set, for the caller to count or log.
//!
//! Cost: no allocation besides the output vectors (reuse them with [`xlate_into`]).

use crate::dpaction::{DpAction, PortNo, UserspaceReason};
use crate::flow_match::Match;
use crate::key::{Field, FlowKey, FRAG_LATER, VLAN_PRESENT};
use crate::pipeline::{Action, OfPort, Pipeline, PortEnv, RuleId, TableMiss, TunnelPortCfg};
use crate::semantics::{MISS_COOKIE, MISS_MAX_LEN};
use crate::tunnel::{TunnelParams, TunnelPush};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most datapath actions one translation may emit.
pub const MAX_ACTIONS: usize = 256;

/// The result of translating one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Xlation {
    /// The megaflow: the original key under exactly the consulted mask.
    pub megaflow: Match,
    /// Datapath actions (empty: drop).
    pub actions: Vec<DpAction>,
    /// Every rule matched, in order (for crediting megaflow stats back).
    pub rules: Vec<RuleId>,
    /// The action list overflowed [`MAX_ACTIONS`] and was replaced by drop.
    pub truncated: bool,
    /// [`Pipeline::version`] the translation was made against.
    pub version: u64,
}

/// Translates `key` through the pipeline (see the module docs).
pub fn xlate(p: &Pipeline, env: &PortEnv, key: &FlowKey) -> Xlation {
    let mut x = Xlation::default();
    xlate_into(p, env, key, &mut x);
    x
}

/// [`xlate`] into an existing [`Xlation`], reusing its vectors' capacity.
pub fn xlate_into(p: &Pipeline, env: &PortEnv, key: &FlowKey, out: &mut Xlation) {
    out.actions.clear();
    out.rules.clear();
    out.truncated = false;
    out.version = p.version();
    let mut cx = Ctx {
        p,
        env,
        in_port: key.get(Field::InPort) as PortNo,
        work: *key,
        wc: FlowKey::ZERO.with_field(Field::InPort),
        dp: *key,
        known: FlowKey::ZERO,
        dirty: FlowKey::ZERO,
        ttl_derived: false,
        full: false,
        actions: &mut out.actions,
        rules: &mut out.rules,
    };
    match cx.underlay_termination() {
        Some(port) => cx.emit(DpAction::TunnelPop { port }),
        None => cx.run(),
    }
    let mut wc = cx.wc;
    // Metadata and registers start at zero in every translation, so reading them never
    // depends on the packet: keep them out of the megaflow.
    for f in PIPELINE_REGS {
        field_clear(&mut wc, f);
    }
    if cx.full {
        out.actions.clear();
        out.truncated = true;
    }
    out.megaflow = Match::new(*key, wc);
}

const PIPELINE_REGS: [Field; 5] = [
    Field::Metadata,
    Field::Reg0,
    Field::Reg1,
    Field::Reg2,
    Field::Reg3,
];

/// Fields committed as `Set`, in commit order. A field is committed only when all its bits
/// are dirty, so IpTos (whole) goes before its parts and VLAN TCI is never set whole.
const COMMIT_FIELDS: &[Field] = &[
    Field::EthSrc,
    Field::EthDst,
    Field::VlanVid,
    Field::VlanPcp,
    Field::IpTos,
    Field::IpDscp,
    Field::IpEcn,
    Field::IpTtl,
    Field::Ipv4Src,
    Field::Ipv4Dst,
    Field::Ipv6Src,
    Field::Ipv6Dst,
    Field::Ipv6Label,
    Field::TpSrc,
    Field::TpDst,
    Field::IcmpType,
    Field::IcmpCode,
    Field::ArpOp,
    Field::ArpSpa,
    Field::ArpTpa,
    Field::ArpSha,
    Field::ArpTha,
    Field::NdTarget,
];

struct Ctx<'a> {
    p: &'a Pipeline,
    env: &'a PortEnv,
    in_port: PortNo,
    /// The key as the pipeline sees it now.
    work: FlowKey,
    /// Consulted bits of the original key.
    wc: FlowKey,
    /// The packet as the emitted actions leave it; meaningful on `known` bits.
    dp: FlowKey,
    /// Bits of `dp` that are constants set by emitted actions.
    known: FlowKey,
    /// Bits written by set-field and not yet committed.
    dirty: FlowKey,
    /// The working TTL is the packet's TTL minus something.
    ttl_derived: bool,
    /// MAX_ACTIONS reached: translation stops.
    full: bool,
    actions: &'a mut Vec<DpAction>,
    rules: &'a mut Vec<RuleId>,
}

#[inline(always)]
fn field_set(k: &mut FlowKey, f: Field) {
    k.set(f, f.full_mask());
}

#[inline(always)]
fn field_clear(k: &mut FlowKey, f: Field) {
    k.set(f, 0);
}

impl Ctx<'_> {
    #[inline(always)]
    fn consult(&mut self, f: Field) -> u128 {
        field_set(&mut self.wc, f);
        self.work.get(f)
    }

    #[inline(always)]
    fn consult_bits(&mut self, f: Field, bits: u128) -> u128 {
        let cur = self.wc.get(f);
        self.wc.set(f, cur | bits);
        self.work.get(f) & bits
    }

    fn emit(&mut self, a: DpAction) {
        if self.actions.len() >= MAX_ACTIONS {
            self.full = true;
            return;
        }
        self.actions.push(a);
    }

    fn underlay_termination(&mut self) -> Option<PortNo> {
        let env = self.env;
        for t in env.tunnels.values() {
            if t.underlay_port != self.in_port {
                continue;
            }
            let et = self.consult(Field::EthType);
            let to_local = match t.local_ip {
                IpAddr::V4(a) => {
                    et == 0x0800 && self.consult(Field::Ipv4Dst) == u32::from(a) as u128
                }
                IpAddr::V6(a) => et == 0x86dd && self.consult(Field::Ipv6Dst) == u128::from(a),
            };
            if to_local
                && self.consult(Field::IpProto) == 17
                && self.consult_bits(Field::IpFrag, FRAG_LATER as u128) == 0
                && self.consult(Field::TpDst) == t.dst_port as u128
            {
                return Some(t.port);
            }
        }
        None
    }

    fn run(&mut self) {
        // OpenFlow: metadata and registers start at zero.
        for f in PIPELINE_REGS {
            field_clear(&mut self.work, f);
        }
        let p = self.p;
        let mut table: u8 = 0;
        loop {
            let hit = p.lookup(table, &self.work, &mut self.wc);
            if self.ttl_derived && self.wc.get(Field::IpTtl) != 0 {
                field_set(&mut self.wc, Field::IpTtl);
            }
            let Some(rule) = hit else {
                match p.table_miss(table) {
                    Some(TableMiss::Continue) if (table as usize) + 1 < p.n_tables() => {
                        table += 1;
                        continue;
                    }
                    Some(TableMiss::Controller) => {
                        self.commit();
                        self.emit(DpAction::Userspace {
                            reason: UserspaceReason::NoMatch,
                            max_len: MISS_MAX_LEN,
                            cookie: MISS_COOKIE,
                            table,
                        });
                    }
                    _ => {}
                }
                return;
            };
            self.rules.push(rule.id);
            for a in &rule.instructions.apply_actions {
                self.action(a, rule.cookie, rule.table);
                if self.full {
                    return;
                }
            }
            if let Some((v, m)) = rule.instructions.write_metadata {
                let md = self.work.get(Field::Metadata) as u64;
                self.work
                    .set(Field::Metadata, ((md & !m) | (v & m)) as u128);
            }
            match rule.instructions.goto_table {
                Some(t) => table = t,
                None => return,
            }
        }
    }

    fn action(&mut self, a: &Action, cookie: u64, table: u8) {
        match *a {
            Action::Output(op) => self.output(op, cookie, table),
            Action::SetField { field, value } => self.set_field(field, value),
            Action::SetTunnel { vni } => self.work.set(Field::TunId, vni as u128),
            Action::PushVlan { tpid } => {
                let tci = if self.consult(Field::VlanPresent) == 1 {
                    // Copy VID/PCP from the current tag: reads the whole TCI.
                    field_set(&mut self.wc, Field::VlanTci);
                    // Now dp and work agree on the TCI, but not as constants.
                    self.known.set(Field::VlanTci, 0);
                    self.work.get(Field::VlanTci) as u16
                } else {
                    field_set(&mut self.known, Field::VlanTci);
                    VLAN_PRESENT
                };
                self.dirty.set(Field::VlanTci, 0);
                self.commit();
                self.emit(DpAction::PushVlan {
                    tpid,
                    tci: tci & !VLAN_PRESENT,
                });
                self.work.set(Field::VlanTci, (tci | VLAN_PRESENT) as u128);
                self.dp.set(Field::VlanTci, (tci | VLAN_PRESENT) as u128);
            }
            Action::PopVlan => {
                if self.consult(Field::VlanPresent) == 1 {
                    self.dirty.set(Field::VlanTci, 0);
                    self.commit();
                    self.emit(DpAction::PopVlan);
                    self.work.set(Field::VlanTci, 0);
                    self.dp.set(Field::VlanTci, 0);
                    field_set(&mut self.known, Field::VlanTci);
                }
            }
            Action::DecTtl => {
                let et = self.consult(Field::EthType);
                if et == 0x0800 || et == 0x86dd {
                    self.commit();
                    self.emit(DpAction::DecTtl);
                    let ttl = self.work.get(Field::IpTtl) as u8;
                    self.work.set(Field::IpTtl, ttl.wrapping_sub(1) as u128);
                    let dttl = self.dp.get(Field::IpTtl) as u8;
                    self.dp.set(Field::IpTtl, dttl.wrapping_sub(1) as u128);
                    if self.known.get(Field::IpTtl) != Field::IpTtl.full_mask() {
                        self.ttl_derived = true;
                    }
                }
            }
        }
    }

    /// Set-field with OpenFlow prerequisites, un-wildcarding what decided them.
    fn set_field(&mut self, f: Field, v: u128) {
        use Field::*;
        if f.is_pipeline_only() || f.is_tunnel() {
            self.work.set(f, v);
            return;
        }
        let applies = match f {
            EthSrc | EthDst => true,
            VlanVid | VlanPcp => self.consult(VlanPresent) == 1,
            IpTos | IpDscp | IpEcn | IpTtl => self.ip(),
            Ipv4Src | Ipv4Dst => self.consult(EthType) == 0x0800,
            Ipv6Src | Ipv6Dst | Ipv6Label => self.consult(EthType) == 0x86dd,
            TpSrc | TpDst => {
                self.ip() && matches!(self.consult(IpProto), 6 | 17 | 132) && self.not_later_frag()
            }
            IcmpType | IcmpCode => self.icmp(),
            ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => self.consult(EthType) == 0x0806,
            NdTarget => {
                self.consult(EthType) == 0x86dd
                    && self.icmp()
                    && matches!(self.consult(IcmpType), 135 | 136)
            }
            _ => false,
        };
        if applies {
            self.work.set(f, v);
            field_set(&mut self.dirty, f);
            if f == IpTtl {
                self.ttl_derived = false;
            }
        }
    }

    fn ip(&mut self) -> bool {
        let et = self.consult(Field::EthType);
        et == 0x0800 || et == 0x86dd
    }

    fn not_later_frag(&mut self) -> bool {
        self.consult_bits(Field::IpFrag, FRAG_LATER as u128) == 0
    }

    fn icmp(&mut self) -> bool {
        let et = self.consult(Field::EthType);
        let proto = self.consult(Field::IpProto);
        ((et == 0x0800 && proto == 1) || (et == 0x86dd && proto == 58)) && self.not_later_frag()
    }

    /// Emits `Set` for every dirty field whose value the packet does not already have.
    fn commit(&mut self) {
        if self.dirty.is_zero() {
            return;
        }
        for &f in COMMIT_FIELDS {
            let full = f.full_mask();
            if self.dirty.get(f) != full {
                continue;
            }
            field_clear(&mut self.dirty, f);
            let v = self.work.get(f);
            if self.known.get(f) == full && self.dp.get(f) == v {
                continue;
            }
            self.emit(DpAction::Set { field: f, value: v });
            self.dp.set(f, v);
            field_set(&mut self.known, f);
        }
        self.dirty = FlowKey::ZERO;
    }

    fn output(&mut self, op: OfPort, cookie: u64, table: u8) {
        match op {
            OfPort::Port(port) => {
                if port != self.in_port {
                    self.output_port(port);
                }
            }
            OfPort::InPort => self.output_port(self.in_port),
            OfPort::Flood | OfPort::All => {
                let env = self.env;
                for (&port, cfg) in &env.ports {
                    if port != self.in_port && cfg.up && (cfg.flood || op == OfPort::All) {
                        self.output_port(port);
                    }
                }
            }
            OfPort::Controller { max_len } => {
                self.commit();
                self.emit(DpAction::Userspace {
                    reason: UserspaceReason::Action,
                    max_len,
                    cookie,
                    table,
                });
            }
        }
    }

    fn output_port(&mut self, port: PortNo) {
        let env = self.env;
        match env.tunnels.get(&port) {
            Some(t) => {
                if let Some(push) = self.resolve_tunnel(t) {
                    self.commit();
                    self.emit(DpAction::TunnelPush(Box::new(push)));
                }
            }
            None => {
                self.commit();
                self.emit(DpAction::Output(port));
            }
        }
    }

    /// Resolves VNI, remote and next hop, un-wildcarding flow-based inputs.
    fn resolve_tunnel(&mut self, t: &TunnelPortCfg) -> Option<TunnelPush> {
        let vni = match t.vni {
            Some(v) => v as u64,
            None => self.consult(Field::TunId) as u64,
        };
        if vni > 0x00ff_ffff {
            return None;
        }
        let remote = match t.remote_ip {
            Some(ip) => ip,
            None => {
                let v4 = self.consult(Field::TunIpv4Dst) as u32;
                if v4 != 0 {
                    IpAddr::V4(Ipv4Addr::from(v4))
                } else {
                    let v6 = self.consult(Field::TunIpv6Dst);
                    if v6 == 0 {
                        return None;
                    }
                    IpAddr::V6(Ipv6Addr::from(v6))
                }
            }
        };
        let dst_mac = *t.neighbors.get(&remote)?;
        TunnelPush::new(
            t.port,
            t.underlay_port,
            TunnelParams {
                vni: vni as u32,
                src_mac: t.local_mac,
                dst_mac,
                src_ip: t.local_ip,
                dst_ip: remote,
                ttl: t.ttl,
                tos: 0,
                dst_port: t.dst_port,
                udp_csum: t.udp_csum,
            },
        )
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{AddOptions, Instructions, RuleSpec};
    use crate::semantics::{apply_dp, execute};
    use std::collections::BTreeMap;

    fn out(p: PortNo) -> Action {
        Action::Output(OfPort::Port(p))
    }

    fn add(p: &mut Pipeline, table: u8, m: Match, prio: u16, ins: Instructions) -> RuleId {
        p.add(RuleSpec::new(table, m, prio, ins), AddOptions::default(), 0)
            .unwrap()
            .id
    }

    fn env() -> PortEnv {
        let mut e = PortEnv::default();
        e.add_port(1, true, true)
            .add_port(2, true, true)
            .add_port(3, true, false)
            .add_port(4, false, true)
            .add_port(5, true, true);
        let mut t = TunnelPortCfg::new(
            9,
            5,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            [2, 0, 0, 0, 0, 1],
        );
        t.neighbors =
            BTreeMap::from([(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), [2, 0, 0, 0, 0, 2])]);
        e.add_tunnel(t);
        e
    }

    fn pkt(in_port: PortNo) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, in_port as u128);
        k.set(Field::EthDst, 0x0200_0000_0002);
        k.set(Field::EthSrc, 0x0200_0000_0001);
        k.set(Field::EthType, 0x0800);
        k.set(Field::IpProto, 6);
        k.set(Field::Ipv4Dst, 0x0a00_0002);
        k.set(Field::IpTtl, 64);
        k.set(Field::TpDst, 80);
        k
    }

    fn mask_of(fields: &[Field]) -> FlowKey {
        fields.iter().fold(FlowKey::ZERO, |m, &f| m.with_field(f))
    }

    /// xlate agrees with the reference on the key itself.
    fn check(p: &Pipeline, e: &PortEnv, k: &FlowKey) -> Xlation {
        let x = xlate(p, e, k);
        assert!(x.megaflow.matches(k));
        assert_eq!(apply_dp(k, &x.actions), execute(p, e, k), "{}", x.megaflow);
        x
    }

    #[test]
    fn l2_forwarding_is_bare_output_with_exact_l2_mask() {
        let mut p = Pipeline::default();
        let id = add(
            &mut p,
            0,
            Match::default().with(Field::EthDst, 0x0200_0000_0002),
            10,
            Instructions::apply(vec![out(2)]),
        );
        let x = check(&p, &env(), &pkt(1));
        assert_eq!(x.actions, vec![DpAction::Output(2)]);
        assert_eq!(*x.megaflow.mask(), mask_of(&[Field::InPort, Field::EthDst]));
        assert_eq!(x.rules, vec![id]);
        assert_eq!(x.version, p.version());
        // Output to the input port is dropped; InPort is how to hairpin.
        let x = check(&p, &env(), &pkt(2));
        assert!(x.actions.is_empty());
        p.add(
            RuleSpec::new(
                0,
                Match::default().with(Field::EthDst, 0x0200_0000_0002),
                10,
                Instructions::apply(vec![Action::Output(OfPort::InPort)]),
            ),
            AddOptions::default(),
            0,
        )
        .unwrap();
        assert_eq!(
            check(&p, &env(), &pkt(2)).actions,
            vec![DpAction::Output(2)]
        );
    }

    #[test]
    fn flood_and_all_exclude_in_port_and_down_ports() {
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![Action::Output(OfPort::Flood)]),
        );
        let x = check(&p, &env(), &pkt(2));
        // 1, 5 and the tunnel 9 (flow-based remote: none in this key -> dropped); 3 has flood
        // off, 4 is down, 2 is in_port.
        assert_eq!(x.actions, vec![DpAction::Output(1), DpAction::Output(5)]);
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![Action::Output(OfPort::All)]),
        );
        let x = check(&p, &env(), &pkt(2));
        assert_eq!(
            x.actions,
            vec![
                DpAction::Output(1),
                DpAction::Output(3),
                DpAction::Output(5)
            ]
        );
    }

    #[test]
    fn tunnel_push_resolution() {
        let mut p = Pipeline::default();
        let set_dst = |ip: u32| Action::SetField {
            field: Field::TunIpv4Dst,
            value: ip as u128,
        };
        add(
            &mut p,
            0,
            Match::default().with(Field::InPort, 1),
            1,
            Instructions::apply(vec![
                Action::SetTunnel { vni: 77 },
                set_dst(0x0a00_0002),
                out(9),
            ]),
        );
        add(
            &mut p,
            0,
            Match::default().with(Field::InPort, 2),
            1,
            Instructions::apply(vec![
                Action::SetTunnel { vni: 77 },
                set_dst(0x0a00_0003),
                out(9),
            ]),
        );
        add(
            &mut p,
            0,
            Match::default().with(Field::InPort, 3),
            1,
            Instructions::apply(vec![
                Action::SetTunnel { vni: 1 << 24 },
                set_dst(0x0a00_0002),
                out(9),
            ]),
        );
        let e = env();
        let x = check(&p, &e, &pkt(1));
        let [DpAction::TunnelPush(t)] = x.actions.as_slice() else {
            panic!("{:?}", x.actions)
        };
        assert_eq!((t.tunnel_port, t.out_port, t.params.vni), (9, 5, 77));
        assert_eq!(t.params.dst_ip, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(t.params.dst_mac, [2, 0, 0, 0, 0, 2]);
        assert_eq!(t.params.src_ip, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(check(&p, &e, &pkt(2)).actions.is_empty(), "no neighbor");
        assert!(check(&p, &e, &pkt(3)).actions.is_empty(), "VNI too large");
        // Fixed IPv6 remote on an IPv4 tunnel: family mismatch, dropped.
        let mut e6 = e.clone();
        e6.tunnels.get_mut(&9).unwrap().remote_ip = Some("fd00::2".parse().unwrap());
        assert!(check(&p, &e6, &pkt(1)).actions.is_empty());
        // A packet that arrived through the tunnel keeps its tun fields for flow-based output,
        // and they are in the megaflow.
        let mut p2 = Pipeline::default();
        add(
            &mut p2,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(9)]),
        );
        let mut k = pkt(1);
        k.set(Field::TunId, 5);
        k.set(Field::TunIpv4Dst, 0x0a00_0002);
        let x = check(&p2, &e, &k);
        assert_eq!(x.actions.len(), 1);
        assert_eq!(x.megaflow.field(Field::TunId), (5, u64::MAX as u128));
        assert_eq!(x.megaflow.field(Field::TunIpv4Dst).1, 0xffff_ffff);
    }

    #[test]
    fn underlay_termination_pops_and_unwildcards_what_decided() {
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(1)]),
        );
        let e = env();
        let mut k = pkt(5);
        k.set(Field::Ipv4Dst, 0x0a00_0001);
        k.set(Field::IpProto, 17);
        k.set(Field::TpDst, 4789);
        let x = check(&p, &e, &k);
        assert_eq!(x.actions, vec![DpAction::TunnelPop { port: 9 }]);
        assert!(x.rules.is_empty(), "pipeline not run");
        let mut m = mask_of(&[
            Field::InPort,
            Field::EthType,
            Field::Ipv4Dst,
            Field::IpProto,
            Field::TpDst,
        ]);
        m.set(Field::IpFrag, FRAG_LATER as u128);
        assert_eq!(*x.megaflow.mask(), m);
        // Other UDP port, later fragment, or other in_port: the pipeline runs.
        let mut k2 = k;
        k2.set(Field::TpDst, 53);
        assert_eq!(check(&p, &e, &k2).actions, vec![DpAction::Output(1)]);
        let mut k3 = k;
        k3.set(Field::IpFrag, 3);
        assert_eq!(check(&p, &e, &k3).actions, vec![DpAction::Output(1)]);
        let mut k4 = k;
        k4.set(Field::InPort, 2);
        let x = check(&p, &e, &k4);
        assert_eq!(x.actions, vec![DpAction::Output(1)]);
        assert_eq!(
            *x.megaflow.mask(),
            mask_of(&[Field::InPort]),
            "no tunnel on port 2"
        );
    }

    #[test]
    fn table_miss_modes() {
        let mut p = Pipeline::new(3).unwrap();
        let e = env();
        assert!(check(&p, &e, &pkt(1)).actions.is_empty());
        p.set_table_miss(0, TableMiss::Controller).unwrap();
        assert_eq!(
            check(&p, &e, &pkt(1)).actions,
            vec![DpAction::Userspace {
                reason: UserspaceReason::NoMatch,
                max_len: MISS_MAX_LEN,
                cookie: MISS_COOKIE,
                table: 0
            }]
        );
        p.set_table_miss(0, TableMiss::Continue).unwrap();
        add(
            &mut p,
            1,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(3)]),
        );
        assert_eq!(check(&p, &e, &pkt(1)).actions, vec![DpAction::Output(3)]);
        // Continue on the last table drops.
        let mut p = Pipeline::new(1).unwrap();
        p.set_table_miss(0, TableMiss::Continue).unwrap();
        assert!(check(&p, &e, &pkt(1)).actions.is_empty());
    }

    #[test]
    fn goto_and_write_metadata_stay_out_of_the_megaflow() {
        let mut p = Pipeline::default();
        let a = add(
            &mut p,
            0,
            Match::default().with(Field::InPort, 1),
            1,
            Instructions::default().metadata(0x5, 0xff).goto(3),
        );
        let b = add(
            &mut p,
            3,
            Match::default().with(Field::Metadata, 5),
            1,
            Instructions::apply(vec![out(2)]),
        );
        let mut k = pkt(1);
        k.set(Field::Metadata, 0x77); // whatever the key says, the pipeline starts at 0
        let x = check(&p, &env(), &k);
        assert_eq!(x.actions, vec![DpAction::Output(2)]);
        assert_eq!(x.rules, vec![a, b]);
        assert_eq!(*x.megaflow.mask(), mask_of(&[Field::InPort]));
    }

    #[test]
    fn dec_ttl_and_derived_ttl() {
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![Action::DecTtl]).goto(1),
        );
        add(
            &mut p,
            1,
            Match::default().with_masked(Field::IpTtl, 0, 0x2),
            1,
            Instructions::apply(vec![out(2)]),
        );
        add(
            &mut p,
            1,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(3)]),
        );
        let e = env();
        let mut k = pkt(1);
        k.set(Field::IpTtl, 2); // becomes 1: bit 1 clear -> port 2
        let x = check(&p, &e, &k);
        assert_eq!(x.actions, vec![DpAction::DecTtl, DpAction::Output(2)]);
        // Bit 1 of the decremented TTL depends on more than bit 1 of the packet's TTL.
        assert_eq!(x.megaflow.field(Field::IpTtl), (2, 0xff));
        assert_eq!(x.megaflow.field(Field::EthType), (0x0800, 0xffff));
        // Not IP: nothing emitted.
        let mut arp = pkt(1);
        arp.set(Field::EthType, 0x0806);
        assert_eq!(check(&p, &e, &arp).actions, vec![DpAction::Output(2)]);
        // TTL 1: the datapath stops at dec_ttl, like the reference.
        let mut k1 = pkt(1);
        k1.set(Field::IpTtl, 1);
        assert!(apply_dp(&k1, &xlate(&p, &e, &k1).actions).is_empty());
        check(&p, &e, &k1);
    }

    #[test]
    fn set_field_commits_lazily_and_checks_prerequisites() {
        let mut p = Pipeline::default();
        let set = |f: Field, v: u128| Action::SetField { field: f, value: v };
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![
                set(Field::EthDst, 7),
                set(Field::Ipv4Dst, 9),
                set(Field::VlanVid, 5),
                set(Field::Reg0, 1),
                out(2),
                set(Field::EthDst, 7),
                out(3),
                set(Field::EthDst, 8),
                out(5),
            ]),
        );
        let x = check(&p, &env(), &pkt(1));
        assert_eq!(
            x.actions,
            vec![
                DpAction::Set {
                    field: Field::EthDst,
                    value: 7
                },
                DpAction::Set {
                    field: Field::Ipv4Dst,
                    value: 9
                },
                DpAction::Output(2),
                DpAction::Output(3),
                DpAction::Set {
                    field: Field::EthDst,
                    value: 8
                },
                DpAction::Output(5),
            ]
        );
        // VLAN VID skipped on an untagged packet: the present bit decided it.
        assert_eq!(x.megaflow.field(Field::VlanPresent), (0, 1));
        assert_eq!(
            x.megaflow.field(Field::EthDst).1,
            0,
            "eth_dst written, never read"
        );
        // ARP: the IPv4 set is skipped.
        let mut arp = pkt(1);
        arp.set(Field::EthType, 0x0806);
        let x = check(&p, &env(), &arp);
        assert_eq!(x.actions.len(), 5);
        // Push, set VID, output: one push with VID 0 then a Set of the VID.
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![
                Action::PushVlan { tpid: 0x8100 },
                set(Field::VlanVid, 5),
                out(2),
                Action::PopVlan,
                out(3),
            ]),
        );
        let x = check(&p, &env(), &pkt(1));
        assert_eq!(
            x.actions,
            vec![
                DpAction::PushVlan {
                    tpid: 0x8100,
                    tci: 0
                },
                DpAction::Set {
                    field: Field::VlanVid,
                    value: 5
                },
                DpAction::Output(2),
                DpAction::PopVlan,
                DpAction::Output(3),
            ]
        );
    }

    #[test]
    fn controller_action_and_truncation() {
        let mut p = Pipeline::default();
        let mut spec = RuleSpec::new(
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![Action::Output(OfPort::Controller { max_len: 128 })]),
        );
        spec.cookie = 0xc0ffee;
        p.add(spec, AddOptions::default(), 0).unwrap();
        let x = check(&p, &env(), &pkt(1));
        assert_eq!(
            x.actions,
            vec![DpAction::Userspace {
                reason: UserspaceReason::Action,
                max_len: 128,
                cookie: 0xc0ffee,
                table: 0
            }]
        );
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(2); MAX_ACTIONS + 1]),
        );
        let x = xlate(&p, &env(), &pkt(1));
        assert!(x.truncated);
        assert!(x.actions.is_empty());
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(2); MAX_ACTIONS]),
        );
        let x = xlate(&p, &env(), &pkt(1));
        assert!(!x.truncated);
        assert_eq!(x.actions.len(), MAX_ACTIONS);
    }

    #[test]
    fn xlate_into_reuses_buffers() {
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(2), out(3)]),
        );
        let mut x = Xlation::default();
        xlate_into(&p, &env(), &pkt(1), &mut x);
        xlate_into(&p, &env(), &pkt(1), &mut x);
        assert_eq!(x.actions, vec![DpAction::Output(2), DpAction::Output(3)]);
        assert_eq!(x.rules.len(), 1);
    }
}
