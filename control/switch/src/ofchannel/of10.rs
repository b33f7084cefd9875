//! OpenFlow 1.0 on a connection: the same pipeline as 1.3, through 1.0's fixed `ofp_match`
//! and action set.
//!
//! Contract:
//! - Served: ECHO, FEATURES (with the port list), GET/SET_CONFIG, BARRIER, FLOW_MOD (add to
//!   table 0; modify and delete over all tables; a modify that matches nothing adds, as 1.0
//!   says), PACKET_OUT (NO_BUFFER), STATS desc / flow / aggregate / table / port / queue (no
//!   queues); asynchronous PACKET_IN, FLOW_REMOVED and PORT_STATUS.
//! - Match: wildcard bits and CIDR masks map to strato fields; fields whose protocol the match
//!   does not pin (e.g. nw_src without dl_type=0x0800) are ignored, as Open vSwitch does;
//!   nw_proto/nw_src/nw_dst are ARP opcode/spa/tpa when dl_type is 0x0806, tp_src/tp_dst are
//!   ICMP type/code when nw_proto is 1.
//! - Actions: output (ports, IN_PORT, FLOOD, ALL, CONTROLLER; TABLE in packet-out), strip_vlan,
//!   set_vlan_vid / set_vlan_pcp (rewrite an existing tag), set_dl_src/dst, set_nw_src/dst,
//!   set_nw_tos, set_tp_src/dst. ENQUEUE, NORMAL, LOCAL and vendor actions are refused.
//! - Errors come from the shared code as OpenFlow 1.3 (type, code) pairs and are mapped to the
//!   nearest 1.0 error ([`v10_error`]).

use super::conn::{Conn, Handled};
use super::{
    apply_flow_mod, execute_packet_out, table_stats, Ctx, FlowModCmd, FlowModError, FlowModOp,
};
use crate::controller::{PacketIn as CtlPacketIn, PortRecord};
use strato_datapath::dpif::UpcallKind;
use strato_flowtable::dpaction::UserspaceReason;
use strato_flowtable::key::Field;
use strato_flowtable::pipeline::{Action, Instructions, OfPort, RemovalReason, Rule, RuleFilter};
use strato_flowtable::{Match, PortNo};
use strato_openflow::v10::{
    self, port, wildcards as wc, Action as V10Action, Body, FlowStatsRequest, Match as V10Match,
    Message, PhyPort, StatsReply, StatsRequest,
};
use strato_openflow::{Header, OfError};

// OpenFlow 1.0 error types and codes.
const ET_BAD_REQUEST: u16 = 1;
const ET_BAD_ACTION: u16 = 2;
const ET_FLOW_MOD_FAILED: u16 = 3;
const BRC_BAD_TYPE: u16 = 1;
const BRC_BAD_STAT: u16 = 2;
const BRC_BAD_VENDOR: u16 = 3;
const BRC_EPERM: u16 = 5;
const BRC_BAD_LEN: u16 = 6;
const BRC_BUFFER_UNKNOWN: u16 = 8;
const BAC_BAD_TYPE: u16 = 0;
const BAC_BAD_VENDOR: u16 = 2;
const BAC_BAD_OUT_PORT: u16 = 4;
const BAC_BAD_ARGUMENT: u16 = 5;
const FMFC_ALL_TABLES_FULL: u16 = 0;
const FMFC_OVERLAP: u16 = 1;
const FMFC_EPERM: u16 = 2;
const FMFC_BAD_COMMAND: u16 = 4;
const FMFC_UNSUPPORTED: u16 = 5;
const NO_BUFFER: u32 = 0xffff_ffff;

type OfErr = (u16, u16);

/// The nearest OpenFlow 1.0 error for a 1.3 (type, code).
pub(crate) fn v10_error((t, c): OfErr) -> OfErr {
    match t {
        0 => (0, c),
        1 => match c {
            0..=1 | 5..=8 => (1, c),
            2 => (1, BRC_BAD_STAT),
            3 => (1, BRC_BAD_VENDOR),
            4 => (1, 4),
            _ => (1, BRC_EPERM),
        },
        2 => match c {
            0..=8 => (2, c),
            13 | 14 => (2, BAC_BAD_TYPE),
            _ => (2, BAC_BAD_ARGUMENT),
        },
        // Bad instruction / bad match: 1.0 has neither; the flow_mod is unsupported.
        3 | 4 => (ET_FLOW_MOD_FAILED, FMFC_UNSUPPORTED),
        5 => match c {
            1 => (3, FMFC_ALL_TABLES_FULL),
            3 => (3, FMFC_OVERLAP),
            4 => (3, FMFC_EPERM),
            6 => (3, FMFC_BAD_COMMAND),
            _ => (3, FMFC_UNSUPPORTED),
        },
        _ => (ET_BAD_REQUEST, BRC_EPERM),
    }
}

fn parse_error(e: &OfError) -> OfErr {
    match e {
        OfError::BadType(_) => (ET_BAD_REQUEST, BRC_BAD_TYPE),
        OfError::BadVersion(_) => (ET_BAD_REQUEST, 0),
        OfError::Unknown { what, .. } if what.contains("stats") => (ET_BAD_REQUEST, BRC_BAD_STAT),
        OfError::Unknown { what, .. } if what.contains("action") => (ET_BAD_ACTION, BAC_BAD_TYPE),
        OfError::Unknown { what, .. } if what.contains("command") => {
            (ET_FLOW_MOD_FAILED, FMFC_BAD_COMMAND)
        }
        _ => (ET_BAD_REQUEST, BRC_BAD_LEN),
    }
}

/// Handles one whole 1.0 message (after HELLO).
pub(crate) fn handle(ctx: &mut Ctx<'_>, conn: &mut Conn, h: Header, raw: &[u8]) -> Handled {
    let m = match Message::parse(raw) {
        Ok(m) => m,
        Err(e) => return Handled::err(parse_error(&e)),
    };
    let _ = h;
    let xid = m.xid;
    let send = |conn: &mut Conn, body: Body| conn.queue(&Message { xid, body }.emit());
    match m.body {
        Body::Hello(_) | Body::EchoReply(_) => {}
        Body::EchoRequest(d) => send(conn, Body::EchoReply(d)),
        Body::FeaturesRequest => {
            let ports = ctx.c.ports().iter().map(phy_port).collect();
            send(
                conn,
                Body::FeaturesReply(v10::SwitchFeatures {
                    datapath_id: ctx.cfg.datapath_id,
                    n_buffers: 0,
                    n_tables: u8::try_from(ctx.c.pipeline().n_tables()).unwrap_or(u8::MAX),
                    // FLOW_STATS | TABLE_STATS | PORT_STATS.
                    capabilities: 1 | 2 | 4,
                    // OUTPUT .. SET_TP_DST (no ENQUEUE).
                    actions: (1 << 11) - 1,
                    ports,
                }),
            )
        }
        Body::GetConfigRequest => send(
            conn,
            Body::GetConfigReply(v10::SwitchConfig {
                flags: conn.config_flags,
                miss_send_len: conn.miss_send_len,
            }),
        ),
        Body::SetConfig(c) => {
            conn.config_flags = c.flags;
            conn.miss_send_len = c.miss_send_len;
        }
        Body::BarrierRequest => return Handled::barrier(ctx.c),
        Body::FlowMod(fm) => {
            if let Err(e) = flow_mod(ctx, fm) {
                return Handled::err(e);
            }
        }
        Body::PacketOut(po) => {
            if po.buffer_id != NO_BUFFER {
                return Handled::err((ET_BAD_REQUEST, BRC_BUFFER_UNKNOWN));
            }
            let in_port = match po.in_port {
                port::NONE | port::CONTROLLER => None,
                p @ 1..=port::MAX => Some(u32::from(p)),
                _ => return Handled::err((ET_BAD_ACTION, BAC_BAD_OUT_PORT)),
            };
            let mut actions = Vec::new();
            for a in &po.actions {
                match to_action(a, true) {
                    Ok(mut v) => actions.append(&mut v),
                    Err(e) => return Handled::err(e),
                }
            }
            if execute_packet_out(ctx.c, in_port, &po.data, &actions).is_err() {
                return Handled::err((ET_BAD_REQUEST, BRC_EPERM));
            }
        }
        Body::StatsRequest { body, .. } => match stats(ctx, body) {
            Ok(replies) => {
                let n = replies.len();
                for (i, body) in replies.into_iter().enumerate() {
                    let flags = u16::from(i + 1 < n);
                    send(conn, Body::StatsReply { flags, body });
                }
            }
            Err(e) => return Handled::err(e),
        },
        Body::Vendor { .. } => return Handled::err((ET_BAD_REQUEST, BRC_BAD_VENDOR)),
        Body::PortMod(_) => return Handled::err((ET_BAD_REQUEST, BRC_EPERM)),
        _ => return Handled::err((ET_BAD_REQUEST, BRC_BAD_TYPE)),
    }
    Handled::default()
}

fn flow_mod(ctx: &mut Ctx<'_>, fm: v10::FlowMod) -> Result<(), OfErr> {
    use v10::FlowModCommand as C;
    if fm.flags & v10::flow_mod_flags::EMERG != 0 {
        return Err((ET_FLOW_MOD_FAILED, FMFC_UNSUPPORTED));
    }
    if fm.buffer_id != NO_BUFFER && matches!(fm.command, C::Add | C::Modify | C::ModifyStrict) {
        return Err((ET_BAD_REQUEST, BRC_BUFFER_UNKNOWN));
    }
    let is_delete = matches!(fm.command, C::Delete | C::DeleteStrict);
    let mut apply = Vec::new();
    if !is_delete {
        for a in &fm.actions {
            apply.append(&mut to_action(a, false)?);
        }
    }
    let out_port = match fm.out_port {
        port::NONE => None,
        p => Some(port_in(p, 0, false)?),
    };
    let op = FlowModOp {
        command: match fm.command {
            C::Add => FlowModCmd::Add,
            C::Modify => FlowModCmd::Modify { strict: false },
            C::ModifyStrict => FlowModCmd::Modify { strict: true },
            C::Delete => FlowModCmd::Delete { strict: false },
            C::DeleteStrict => FlowModCmd::Delete { strict: true },
        },
        table: match fm.command {
            C::Add => Some(0),
            _ => None,
        },
        matching: from_v10(&fm.match_),
        priority: fm.priority,
        cookie: fm.cookie,
        cookie_mask: 0,
        out_port: if is_delete { out_port } else { None },
        out_group: None,
        idle_timeout: fm.idle_timeout,
        hard_timeout: fm.hard_timeout,
        send_flow_rem: fm.flags & v10::flow_mod_flags::SEND_FLOW_REM != 0,
        check_overlap: fm.flags & v10::flow_mod_flags::CHECK_OVERLAP != 0,
        reset_counts: false,
        instructions: Instructions::apply(apply),
        modify_adds: true,
    };
    // 1.0 modify/delete set a new cookie on added rules only; they do not filter on it.
    apply_flow_mod(ctx.c, op).map_err(|e| match e {
        FlowModError::NoTable => (ET_FLOW_MOD_FAILED, FMFC_UNSUPPORTED),
        FlowModError::Pipeline(e) => v10_error(super::of13::pipeline_error(e)),
    })
}

fn stats(ctx: &mut Ctx<'_>, req: StatsRequest) -> Result<Vec<StatsReply>, OfErr> {
    let c = &mut *ctx.c;
    match req {
        StatsRequest::Desc => {
            fn f<const N: usize>(s: &str) -> [u8; N] {
                let mut a = [0u8; N];
                let n = s.len().min(N - 1);
                a[..n].copy_from_slice(&s.as_bytes()[..n]);
                a
            }
            Ok(vec![StatsReply::Desc(Box::new(v10::DescStats {
                mfr_desc: f("strato"),
                hw_desc: f("userspace virtual switch"),
                sw_desc: f(env!("CARGO_PKG_VERSION")),
                serial_num: f("None"),
                dp_desc: f("strato"),
            }))])
        }
        StatsRequest::Flow(r) => {
            let now = c.now_ms();
            let rules = select(c, &r)?;
            let stats: Vec<v10::FlowStats> = rules
                .iter()
                .map(|rule| {
                    let (duration_sec, duration_nsec) =
                        super::duration(now.saturating_sub(rule.created_ms));
                    v10::FlowStats {
                        table_id: rule.table,
                        match_: to_v10(&rule.matching),
                        duration_sec,
                        duration_nsec,
                        priority: rule.priority,
                        idle_timeout: rule.idle_timeout,
                        hard_timeout: rule.hard_timeout,
                        cookie: rule.cookie,
                        packet_count: rule.packets,
                        byte_count: rule.bytes,
                        actions: rule
                            .instructions
                            .apply_actions
                            .iter()
                            .filter_map(from_action)
                            .collect(),
                    }
                })
                .collect();
            // 88 bytes fixed + actions per entry; split to fit 64 KiB messages.
            let mut out = Vec::new();
            let mut cur = Vec::new();
            let mut size = 0;
            for s in stats {
                let len = 88 + s.actions.iter().map(|a| a.len()).sum::<usize>();
                if size + len > 65535 - 12 && !cur.is_empty() {
                    out.push(StatsReply::Flow(std::mem::take(&mut cur)));
                    size = 0;
                }
                size += len;
                cur.push(s);
            }
            out.push(StatsReply::Flow(cur));
            Ok(out)
        }
        StatsRequest::Aggregate(r) => {
            let rules = select(c, &r)?;
            Ok(vec![StatsReply::Aggregate(v10::AggregateStats {
                packet_count: rules.iter().map(|r| r.packets).sum(),
                byte_count: rules.iter().map(|r| r.bytes).sum(),
                flow_count: u32::try_from(rules.len()).unwrap_or(u32::MAX),
            })])
        }
        StatsRequest::Table => Ok(vec![StatsReply::Table(
            table_stats(c)
                .into_iter()
                .map(|(t, active, lookup, matched)| {
                    // Unnamed, as Open vSwitch reports its tables.
                    v10::TableStats {
                        table_id: t,
                        name: [0u8; 32],
                        wildcards: wc::ALL,
                        max_entries: 1_000_000,
                        active_count: active,
                        lookup_count: lookup,
                        matched_count: matched,
                    }
                })
                .collect(),
        )]),
        StatsRequest::Port { port_no } => {
            let recs: Vec<PortRecord> = c
                .ports()
                .into_iter()
                .filter(|p| port_no == port::NONE || p.no == u32::from(port_no))
                .collect();
            Ok(vec![StatsReply::Port(
                recs.iter()
                    .map(|p| v10::PortStats {
                        port_no: u16::try_from(p.no).unwrap_or(port::NONE),
                        counters: super::port_counters(p),
                    })
                    .collect(),
            )])
        }
        // strato has no queues.
        StatsRequest::Queue { .. } => Ok(vec![StatsReply::Queue(Vec::new())]),
        // Open vSwitch's OFPST_PORT_DESC for 1.0 (what `ovs-ofctl dump-ports-desc` sends).
        StatsRequest::Other { type_: 13, .. } => {
            let mut body = Vec::new();
            for p in c.ports() {
                v10::emit_phy_port(&phy_port(&p), &mut body);
            }
            Ok(vec![StatsReply::Other { type_: 13, body }])
        }
        StatsRequest::Other { .. } => Err((ET_BAD_REQUEST, BRC_BAD_STAT)),
    }
}

fn select(c: &crate::controller::Controller, r: &FlowStatsRequest) -> Result<Vec<Rule>, OfErr> {
    let m = from_v10(&r.match_);
    let table = (r.table_id != 0xff).then_some(r.table_id);
    let mut f = RuleFilter::loose(table, m);
    if r.out_port != port::NONE {
        f = f.out_port(port_in(r.out_port, 0, false)?);
    }
    Ok(super::select_rules(c, &f))
}

fn port_in(p: u16, max_len: u16, packet_out: bool) -> Result<OfPort, OfErr> {
    Ok(match p {
        1..=port::MAX => OfPort::Port(u32::from(p)),
        port::IN_PORT => OfPort::InPort,
        port::FLOOD => OfPort::Flood,
        port::ALL => OfPort::All,
        port::CONTROLLER => OfPort::Controller { max_len },
        port::TABLE if packet_out => OfPort::Table,
        _ => return Err((ET_BAD_ACTION, BAC_BAD_OUT_PORT)),
    })
}

fn mac(b: [u8; 6]) -> u128 {
    b.iter().fold(0u128, |a, &x| (a << 8) | u128::from(x))
}

fn mac_bytes(v: u128) -> [u8; 6] {
    let b = v.to_be_bytes();
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[10..16]);
    m
}

fn to_action(a: &V10Action, packet_out: bool) -> Result<Vec<Action>, OfErr> {
    let set = |field: Field, value: u128| Action::SetField { field, value };
    Ok(vec![match *a {
        V10Action::Output { port, max_len } => Action::Output(port_in(port, max_len, packet_out)?),
        V10Action::SetVlanVid(v) if v <= 0xfff => set(Field::VlanVid, u128::from(v)),
        V10Action::SetVlanPcp(p) if p <= 7 => set(Field::VlanPcp, u128::from(p)),
        V10Action::SetVlanVid(_) | V10Action::SetVlanPcp(_) => {
            return Err((ET_BAD_ACTION, BAC_BAD_ARGUMENT))
        }
        V10Action::StripVlan => Action::PopVlan,
        V10Action::SetDlSrc(m) => set(Field::EthSrc, mac(m)),
        V10Action::SetDlDst(m) => set(Field::EthDst, mac(m)),
        V10Action::SetNwSrc(a) => set(Field::Ipv4Src, u128::from(a)),
        V10Action::SetNwDst(a) => set(Field::Ipv4Dst, u128::from(a)),
        V10Action::SetNwTos(t) => set(Field::IpDscp, u128::from(t >> 2)),
        V10Action::SetTpSrc(p) => set(Field::TpSrc, u128::from(p)),
        V10Action::SetTpDst(p) => set(Field::TpDst, u128::from(p)),
        V10Action::Enqueue { .. } => return Err((ET_BAD_ACTION, BAC_BAD_TYPE)),
        V10Action::Vendor { .. } => return Err((ET_BAD_ACTION, BAC_BAD_VENDOR)),
        V10Action::Unknown { .. } => return Err((ET_BAD_ACTION, BAC_BAD_TYPE)),
    }])
}

fn from_action(a: &Action) -> Option<V10Action> {
    let out = |port: u16, max_len: u16| V10Action::Output { port, max_len };
    Some(match *a {
        Action::Output(OfPort::Port(p)) => out(u16::try_from(p).ok()?, 0),
        Action::Output(OfPort::InPort) => out(port::IN_PORT, 0),
        Action::Output(OfPort::Flood) => out(port::FLOOD, 0),
        Action::Output(OfPort::All) => out(port::ALL, 0),
        Action::Output(OfPort::Controller { max_len }) => out(port::CONTROLLER, max_len),
        Action::PopVlan => V10Action::StripVlan,
        Action::SetField { field, value } => match field {
            Field::VlanVid => V10Action::SetVlanVid(value as u16),
            Field::VlanPcp => V10Action::SetVlanPcp(value as u8),
            Field::EthSrc => V10Action::SetDlSrc(mac_bytes(value)),
            Field::EthDst => V10Action::SetDlDst(mac_bytes(value)),
            Field::Ipv4Src => V10Action::SetNwSrc(value as u32),
            Field::Ipv4Dst => V10Action::SetNwDst(value as u32),
            Field::IpDscp => V10Action::SetNwTos((value as u8) << 2),
            Field::TpSrc => V10Action::SetTpSrc(value as u16),
            Field::TpDst => V10Action::SetTpDst(value as u16),
            _ => return None,
        },
        _ => return None,
    })
}

/// An OpenFlow 1.0 match as a strato match (see the module docs).
pub fn from_v10(m: &V10Match) -> Match {
    let w = m.wildcards;
    let has = |bit: u32| w & bit == 0;
    let mut out = Match::default();
    if has(wc::IN_PORT) {
        out.set(Field::InPort, u128::from(m.in_port));
    }
    if has(wc::DL_SRC) {
        out.set(Field::EthSrc, mac(m.dl_src));
    }
    if has(wc::DL_DST) {
        out.set(Field::EthDst, mac(m.dl_dst));
    }
    if has(wc::DL_VLAN) {
        if m.dl_vlan == 0xffff {
            // OFP_VLAN_NONE: untagged.
            out.set_masked(Field::VlanTci, 0, 0x1fff);
        } else {
            out.set_masked(
                Field::VlanTci,
                0x1000 | u128::from(m.dl_vlan & 0xfff),
                0x1fff,
            );
            if has(wc::DL_VLAN_PCP) {
                out.set(Field::VlanPcp, u128::from(m.dl_vlan_pcp & 7));
            }
        }
    }
    if !has(wc::DL_TYPE) {
        return out;
    }
    out.set(Field::EthType, u128::from(m.dl_type));
    let src_mask = m.nw_src_mask();
    let dst_mask = m.nw_dst_mask();
    match m.dl_type {
        0x0800 => {
            if has(wc::NW_TOS) {
                out.set(Field::IpDscp, u128::from(m.nw_tos >> 2));
            }
            if src_mask != 0 {
                out.set_masked(Field::Ipv4Src, u128::from(m.nw_src), u128::from(src_mask));
            }
            if dst_mask != 0 {
                out.set_masked(Field::Ipv4Dst, u128::from(m.nw_dst), u128::from(dst_mask));
            }
            if has(wc::NW_PROTO) {
                out.set(Field::IpProto, u128::from(m.nw_proto));
                let (sf, df) = match m.nw_proto {
                    6 | 17 | 132 => (Field::TpSrc, Field::TpDst),
                    1 => (Field::IcmpType, Field::IcmpCode),
                    _ => return out,
                };
                if has(wc::TP_SRC) {
                    out.set(sf, u128::from(m.tp_src));
                }
                if has(wc::TP_DST) {
                    out.set(df, u128::from(m.tp_dst));
                }
            }
        }
        0x0806 => {
            if has(wc::NW_PROTO) {
                out.set(Field::ArpOp, u128::from(m.nw_proto));
            }
            if src_mask != 0 {
                out.set_masked(Field::ArpSpa, u128::from(m.nw_src), u128::from(src_mask));
            }
            if dst_mask != 0 {
                out.set_masked(Field::ArpTpa, u128::from(m.nw_dst), u128::from(dst_mask));
            }
        }
        _ => {}
    }
    out
}

/// A strato match as an OpenFlow 1.0 match (fields 1.0 cannot express are left out).
pub fn to_v10(m: &Match) -> V10Match {
    let mut v = V10Match {
        wildcards: wc::ALL,
        in_port: 0,
        dl_src: [0; 6],
        dl_dst: [0; 6],
        dl_vlan: 0,
        dl_vlan_pcp: 0,
        dl_type: 0,
        nw_tos: 0,
        nw_proto: 0,
        nw_src: 0,
        nw_dst: 0,
        tp_src: 0,
        tp_dst: 0,
    };
    let exact = |f: Field| {
        let (val, mask) = m.field(f);
        (mask == f.full_mask()).then_some(val)
    };
    if let Some(p) = exact(Field::InPort) {
        v.in_port = p as u16;
        v.wildcards &= !wc::IN_PORT;
    }
    if let Some(x) = exact(Field::EthSrc) {
        v.dl_src = mac_bytes(x);
        v.wildcards &= !wc::DL_SRC;
    }
    if let Some(x) = exact(Field::EthDst) {
        v.dl_dst = mac_bytes(x);
        v.wildcards &= !wc::DL_DST;
    }
    let (tci, tmask) = m.field(Field::VlanTci);
    if tmask & 0x1fff == 0x1fff {
        v.dl_vlan = if tci & 0x1000 == 0 {
            0xffff
        } else {
            (tci & 0xfff) as u16
        };
        v.wildcards &= !wc::DL_VLAN;
    }
    if let Some(p) = exact(Field::VlanPcp) {
        v.dl_vlan_pcp = p as u8;
        v.wildcards &= !wc::DL_VLAN_PCP;
    }
    if let Some(t) = exact(Field::EthType) {
        v.dl_type = t as u16;
        v.wildcards &= !wc::DL_TYPE;
    }
    if let Some(d) = exact(Field::IpDscp) {
        v.nw_tos = (d as u8) << 2;
        v.wildcards &= !wc::NW_TOS;
    }
    let proto = exact(Field::IpProto).or(exact(Field::ArpOp));
    if let Some(p) = proto {
        v.nw_proto = p as u8;
        v.wildcards &= !wc::NW_PROTO;
    }
    let prefix = |f: Field| {
        let (val, mask) = m.field(f);
        let mask = mask as u32;
        (mask != 0 && mask.leading_ones() + mask.trailing_zeros() == 32)
            .then_some((val as u32, mask.leading_ones()))
    };
    let (sf, df) = if v.dl_type == 0x0806 {
        (Field::ArpSpa, Field::ArpTpa)
    } else {
        (Field::Ipv4Src, Field::Ipv4Dst)
    };
    if let Some((a, len)) = prefix(sf) {
        v.nw_src = a;
        v.set_nw_src_wild_bits(32 - len);
    }
    if let Some((a, len)) = prefix(df) {
        v.nw_dst = a;
        v.set_nw_dst_wild_bits(32 - len);
    }
    let (ts, td) = if v.nw_proto == 1 && v.dl_type == 0x0800 {
        (Field::IcmpType, Field::IcmpCode)
    } else {
        (Field::TpSrc, Field::TpDst)
    };
    if let Some(p) = exact(ts) {
        v.tp_src = p as u16;
        v.wildcards &= !wc::TP_SRC;
    }
    if let Some(p) = exact(td) {
        v.tp_dst = p as u16;
        v.wildcards &= !wc::TP_DST;
    }
    v
}

fn phy_port(p: &PortRecord) -> PhyPort {
    phy_port_raw(
        u16::try_from(p.no).unwrap_or(port::NONE),
        super::port_name16(&p.name),
        p.mac,
        p.down_reason.is_some(),
    )
}

fn phy_port_raw(port_no: u16, name: [u8; 16], mac: Option<[u8; 6]>, down: bool) -> PhyPort {
    PhyPort {
        port_no,
        hw_addr: mac.unwrap_or([0; 6]),
        name,
        config: 0,
        // OFPPS_LINK_DOWN.
        state: u32::from(down),
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
    }
}

/// PORT_STATUS.
pub(crate) fn port_status(reason: u8, rec: Option<&PortRecord>, no: PortNo) -> Vec<u8> {
    // A deleted port has no record left: its number, link down.
    let desc = rec.map_or_else(
        || phy_port_raw(u16::try_from(no).unwrap_or(port::NONE), [0; 16], None, true),
        phy_port,
    );
    Message {
        xid: 0,
        body: Body::PortStatus { reason, desc },
    }
    .emit()
}

/// FLOW_REMOVED (1.0 has no reason for group deletes: those are not reported).
pub(crate) fn flow_removed(r: &Rule, why: RemovalReason, now_ms: u64) -> Option<Vec<u8>> {
    let reason = match why {
        RemovalReason::IdleTimeout => 0,
        RemovalReason::HardTimeout => 1,
        RemovalReason::Delete => 2,
        RemovalReason::GroupDelete => return None,
    };
    let (duration_sec, duration_nsec) = super::duration(now_ms.saturating_sub(r.created_ms));
    Some(
        Message {
            xid: 0,
            body: Body::FlowRemoved(v10::FlowRemoved {
                match_: to_v10(&r.matching),
                cookie: r.cookie,
                priority: r.priority,
                reason,
                duration_sec,
                duration_nsec,
                idle_timeout: r.idle_timeout,
                packet_count: r.packets,
                byte_count: r.bytes,
            }),
        }
        .emit(),
    )
}

/// PACKET_IN (NO_BUFFER).
pub(crate) fn packet_in(p: &CtlPacketIn, miss_send_len: u16) -> Vec<u8> {
    let (reason, max_len) = match p.kind {
        UpcallKind::Userspace {
            reason: UserspaceReason::Action,
            max_len,
            ..
        } => (1, max_len),
        UpcallKind::Userspace { .. } | UpcallKind::Miss => (0, miss_send_len),
    };
    let keep = if max_len == 0xffff {
        p.frame.len()
    } else {
        p.frame.len().min(usize::from(max_len))
    };
    Message {
        xid: 0,
        body: Body::PacketIn(v10::PacketIn {
            buffer_id: NO_BUFFER,
            total_len: u16::try_from(p.frame.len()).unwrap_or(u16::MAX),
            in_port: u16::try_from(p.in_port).unwrap_or(port::NONE),
            reason,
            data: p.frame[..keep].to_vec(),
        }),
    }
    .emit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_round_trip() {
        let mut m = V10Match {
            wildcards: wc::ALL
                & !(wc::IN_PORT | wc::DL_TYPE | wc::NW_PROTO | wc::TP_DST | wc::DL_DST),
            in_port: 3,
            dl_src: [0; 6],
            dl_dst: [2, 0, 0, 0, 0, 9],
            dl_vlan: 0,
            dl_vlan_pcp: 0,
            dl_type: 0x0800,
            nw_tos: 0,
            nw_proto: 17,
            nw_src: 0,
            nw_dst: 0x0a00_0001,
            tp_src: 0,
            tp_dst: 4789,
        };
        m.set_nw_dst_wild_bits(8);
        let s = from_v10(&m);
        assert_eq!(s.field(Field::TpDst), (4789, 0xffff));
        assert_eq!(s.field(Field::Ipv4Dst), (0x0a00_0000, 0xffff_ff00));
        let back = to_v10(&s);
        assert_eq!(back.wildcards, m.wildcards);
        assert_eq!(back.nw_dst, 0x0a00_0000);
        assert_eq!(from_v10(&back), s);
        // nw_src without dl_type is ignored, as Open vSwitch does.
        let mut loose = back;
        loose.wildcards = wc::ALL & !wc::NW_SRC_MASK;
        assert_eq!(from_v10(&loose), Match::default());
    }

    #[test]
    fn errors_map_to_v10() {
        assert_eq!(v10_error((5, 3)), (3, FMFC_OVERLAP));
        assert_eq!(v10_error((4, 6)), (3, FMFC_UNSUPPORTED));
        assert_eq!(v10_error((1, 2)), (1, BRC_BAD_STAT));
        assert_eq!(v10_error((2, 4)), (2, BAC_BAD_OUT_PORT));
    }
}
