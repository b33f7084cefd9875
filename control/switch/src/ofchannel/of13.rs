//! OpenFlow 1.3 on a connection: message handling against the controller's pipeline, the
//! conversions between OXM/instructions/actions and strato's matches and rules, and the
//! asynchronous messages (packet_in, flow_removed, port_status).
//!
//! Contract:
//! - Served: ECHO, FEATURES, GET/SET_CONFIG, BARRIER, ROLE_REQUEST, FLOW_MOD (add, modify,
//!   modify_strict, delete, delete_strict with cookie/out_port filters, check_overlap,
//!   send_flow_rem, reset_counts, timeouts), PACKET_OUT (NO_BUFFER only; FLOOD, ALL, IN_PORT,
//!   TABLE, CONTROLLER, ports), MULTIPART desc / flow / aggregate / table / port_stats /
//!   port_desc / table_features (read) / group / group_desc.
//! - Anything else is answered with the error the spec names and the connection keeps working.
//! - Match fields map to [`Field`]s (masks kept); OXM fields strato has no key for are refused
//!   (BAD_MATCH/BAD_FIELD), as are actions other than output / set-field / push-pop vlan /
//!   dec_ttl / group. Flow stats show rules with OXM fields in wire-number order; pipeline-only
//!   fields OXM cannot express (registers, nw_ttl, nw_frag, tcp_flags, tunnel endpoints) are
//!   not shown.

use super::conn::{Conn, Handled, Role};
use super::{Ctx, Effect};
use crate::controller::{Controller, PacketIn as CtlPacketIn, PortRecord};
use strato_datapath::dpif::UpcallKind;
use strato_flowtable::dpaction::UserspaceReason;
use strato_flowtable::flow_match::Match;
use strato_flowtable::key::Field;
use strato_flowtable::pipeline::{
    Action, Instructions, OfPort, PipelineError, RemovalReason, Rule, RuleFilter,
};
use strato_flowtable::PortNo;
use strato_openflow::v13::{
    self, Action as OfAction, Body, FlowMod, FlowStats, FlowStatsRequest, Instruction,
    Match as OfMatch, Message, MultipartReply, MultipartRequest, Oxm, OxmField, SwitchConfig,
    SwitchFeatures, TableFeatureProp, TableFeatures,
};
use strato_openflow::{Header, OfError};

// OpenFlow 1.3 error types and codes.
const ET_BAD_REQUEST: u16 = 1;
const ET_BAD_ACTION: u16 = 2;
const ET_BAD_INSTRUCTION: u16 = 3;
const ET_BAD_MATCH: u16 = 4;
const ET_FLOW_MOD_FAILED: u16 = 5;
const BRC_BAD_VERSION: u16 = 0;
const BRC_BAD_TYPE: u16 = 1;
const BRC_BAD_MULTIPART: u16 = 2;
const BRC_BAD_LEN: u16 = 6;
const BRC_BAD_TABLE_ID: u16 = 9;
const BAC_BAD_TYPE: u16 = 0;
const BAC_BAD_OUT_PORT: u16 = 4;
const BAC_BAD_ARGUMENT: u16 = 5;
const BAC_BAD_SET_TYPE: u16 = 13;
const BAC_BAD_SET_ARGUMENT: u16 = 15;
const BIC_UNKNOWN_INST: u16 = 0;
const BIC_UNSUP_INST: u16 = 1;
const BIC_BAD_TABLE_ID: u16 = 2;
const BMC_BAD_TYPE: u16 = 0;
const BMC_BAD_FIELD: u16 = 6;
const BMC_BAD_PREREQ: u16 = 9;
const BMC_DUP_FIELD: u16 = 10;
const FMFC_BAD_TABLE_ID: u16 = 2;
const FMFC_OVERLAP: u16 = 3;
const FMFC_BAD_COMMAND: u16 = 6;

const OFPP_MAX: u32 = 0xffff_ff00;
const OFPP_IN_PORT: u32 = 0xffff_fff8;
const OFPP_FLOOD: u32 = 0xffff_fffb;
const OFPP_ALL: u32 = 0xffff_fffc;
const OFPP_CONTROLLER: u32 = 0xffff_fffd;
const OFPP_ANY: u32 = 0xffff_ffff;
const OFPTT_ALL: u8 = 0xff;
const OFPVID_PRESENT: u128 = 0x1000;

const ET_GROUP_MOD_FAILED: u16 = 6;
const ET_TABLE_FEATURES_FAILED: u16 = 13;
const ET_ROLE_REQUEST_FAILED: u16 = 11;
const BRC_BAD_EXPERIMENTER: u16 = 3;
const BRC_BUFFER_UNKNOWN: u16 = 8;
const BRC_BAD_PORT: u16 = 11;
const BRC_BAD_PACKET: u16 = 12;
const BRC_IS_SLAVE: u16 = 10;
const BAC_BAD_OUT_GROUP: u16 = 9;
const TFFC_EPERM: u16 = 5;
const RRFC_STALE: u16 = 0;
const RRFC_BAD_ROLE: u16 = 2;
const OFPP_TABLE: u32 = 0xffff_fff9;
const OFPG_ANY: u32 = 0xffff_ffff;
const NO_BUFFER: u32 = 0xffff_ffff;
const ROLE_NOCHANGE: u32 = 0;
const ROLE_EQUAL: u32 = 1;
const ROLE_MASTER: u32 = 2;
const ROLE_SLAVE: u32 = 3;
/// OFPMPF_REPLY_MORE.
const REPLY_MORE: u16 = 1;

/// An OpenFlow error to send back: (type, code).
pub(crate) type OfErr = (u16, u16);

/// Handles one whole 1.3 message (after HELLO) on `conn`.
pub(crate) fn handle(ctx: &mut Ctx<'_>, conn: &mut Conn, h: Header, raw: &[u8]) -> Handled {
    let m = match Message::parse(raw) {
        Ok(m) => m,
        Err(e) => return Handled::err(parse_error(h.type_, &e)),
    };
    let xid = m.xid;
    let send = |conn: &mut Conn, body: Body| conn.queue(&Message::new(xid, body).emit());
    let slave = conn.role == Role::Slave;
    match m.body {
        Body::Hello(_) | Body::EchoReply(_) => {}
        Body::EchoRequest(d) => send(conn, Body::EchoReply(d)),
        Body::FeaturesRequest => send(
            conn,
            Body::FeaturesReply(SwitchFeatures {
                datapath_id: ctx.cfg.datapath_id,
                n_buffers: 0,
                n_tables: u8::try_from(ctx.c.pipeline().n_tables()).unwrap_or(u8::MAX),
                auxiliary_id: 0,
                // FLOW_STATS | TABLE_STATS | PORT_STATS | GROUP_STATS.
                capabilities: 1 | 2 | 4 | 8,
                reserved: 0,
            }),
        ),
        Body::GetConfigRequest => send(
            conn,
            Body::GetConfigReply(SwitchConfig {
                flags: conn.config_flags,
                miss_send_len: conn.miss_send_len,
            }),
        ),
        Body::SetConfig(c) => {
            conn.config_flags = c.flags;
            conn.miss_send_len = c.miss_send_len;
        }
        Body::BarrierRequest => return Handled::barrier(ctx.c),
        Body::RoleRequest {
            role,
            generation_id,
        } => match role_request(ctx, conn, role, generation_id) {
            Ok(r) => send(
                conn,
                Body::RoleReply {
                    role: r,
                    generation_id: ctx.generation.unwrap_or(0),
                },
            ),
            Err(e) => return Handled::err(e),
        },
        Body::FlowMod(_) | Body::PacketOut(_) | Body::GroupMod(_) if slave => {
            return Handled::err((ET_BAD_REQUEST, BRC_IS_SLAVE));
        }
        Body::FlowMod(fm) => {
            if let Err(e) = flow_mod(ctx.c, fm) {
                return Handled::err(e);
            }
        }
        Body::PacketOut(po) => {
            if let Err(e) = packet_out(ctx.c, po) {
                return Handled::err(e);
            }
        }
        Body::GroupMod(gm) => {
            if let Err(e) = group_mod(ctx.c, gm) {
                return Handled::err(e);
            }
        }
        Body::MultipartRequest { body, .. } => match multipart(ctx, body) {
            Ok(replies) => {
                let n = replies.len();
                for (i, body) in replies.into_iter().enumerate() {
                    let flags = if i + 1 < n { REPLY_MORE } else { 0 };
                    send(conn, Body::MultipartReply { flags, body });
                }
            }
            Err(e) => return Handled::err(e),
        },
        Body::Experimenter { .. } => return Handled::err((ET_BAD_REQUEST, BRC_BAD_EXPERIMENTER)),
        Body::Other { type_, .. } if type_ == v13::msg_type::MULTIPART_REQUEST => {
            return Handled::err((ET_BAD_REQUEST, BRC_BAD_MULTIPART))
        }
        _ => return Handled::err((ET_BAD_REQUEST, BRC_BAD_TYPE)),
    }
    Handled::default()
}

/// ROLE_REQUEST (OpenFlow 1.3 §6.3.5): returns the role to report.
fn role_request(ctx: &mut Ctx<'_>, conn: &mut Conn, role: u32, gen: u64) -> Result<u32, OfErr> {
    let wire = |r: Role| match r {
        Role::Equal => ROLE_EQUAL,
        Role::Master => ROLE_MASTER,
        Role::Slave => ROLE_SLAVE,
    };
    match role {
        ROLE_NOCHANGE => return Ok(wire(conn.role)),
        ROLE_EQUAL => conn.role = Role::Equal,
        ROLE_MASTER | ROLE_SLAVE => {
            // Generation ids compare as a wrapping sequence: older ones are stale.
            if let Some(cur) = *ctx.generation {
                if (gen.wrapping_sub(cur) as i64) < 0 {
                    return Err((ET_ROLE_REQUEST_FAILED, RRFC_STALE));
                }
            }
            *ctx.generation = Some(gen);
            if role == ROLE_MASTER {
                conn.role = Role::Master;
                ctx.effects.push(Effect::BecameMaster(conn.token));
            } else {
                conn.role = Role::Slave;
            }
        }
        _ => return Err((ET_ROLE_REQUEST_FAILED, RRFC_BAD_ROLE)),
    }
    Ok(wire(conn.role))
}

fn multipart(ctx: &mut Ctx<'_>, req: MultipartRequest) -> Result<Vec<MultipartReply>, OfErr> {
    let c = &mut *ctx.c;
    match req {
        MultipartRequest::Desc => {
            let f = |s: &str, n: usize| {
                let mut v = s.as_bytes()[..s.len().min(n - 1)].to_vec();
                v.resize(n, 0);
                v
            };
            Ok(vec![MultipartReply::Desc {
                mfr_desc: f("strato", 256),
                hw_desc: f("userspace virtual switch", 256),
                sw_desc: f(env!("CARGO_PKG_VERSION"), 256),
                serial_num: f("None", 32),
                dp_desc: f("strato", 256),
            }])
        }
        MultipartRequest::PortDesc => Ok(vec![MultipartReply::PortDesc(
            c.ports().iter().map(port_desc).collect(),
        )]),
        MultipartRequest::Flow(r) => {
            let now = c.now_ms();
            let stats = select_rules(c, &r)?
                .iter()
                .map(|rule| rule_to_stats(rule, now))
                .collect();
            Ok(split_flow_stats(stats))
        }
        MultipartRequest::Aggregate(r) => {
            let rules = select_rules(c, &r)?;
            Ok(vec![MultipartReply::Aggregate {
                packet_count: rules.iter().map(|s| s.packets).sum(),
                byte_count: rules.iter().map(|s| s.bytes).sum(),
                flow_count: u32::try_from(rules.len()).unwrap_or(u32::MAX),
            }])
        }
        MultipartRequest::Table => Ok(vec![MultipartReply::Table(
            crate::ofchannel::table_stats(c)
                .into_iter()
                .map(|(table_id, active, lookup, matched)| v13::TableStats {
                    table_id,
                    active_count: active,
                    lookup_count: lookup,
                    matched_count: matched,
                })
                .collect(),
        )]),
        MultipartRequest::PortStats(port) => {
            let recs: Vec<PortRecord> = c
                .ports()
                .into_iter()
                .filter(|p| port == OFPP_ANY || p.no == port)
                .collect();
            if recs.is_empty() && port != OFPP_ANY {
                return Err((ET_BAD_REQUEST, BRC_BAD_PORT));
            }
            Ok(vec![MultipartReply::PortStats(
                recs.iter()
                    .map(|p| {
                        let age = p.added.elapsed();
                        v13::PortStats {
                            port_no: p.no,
                            counters: super::port_counters(p),
                            duration_sec: u32::try_from(age.as_secs()).unwrap_or(u32::MAX),
                            duration_nsec: age.subsec_nanos(),
                        }
                    })
                    .collect(),
            )])
        }
        MultipartRequest::TableFeatures(set) => {
            if !set.is_empty() {
                // Changing the tables' capabilities is not supported.
                return Err((ET_TABLE_FEATURES_FAILED, TFFC_EPERM));
            }
            Ok(table_features(c.pipeline().n_tables()))
        }
        MultipartRequest::Group(id) => group_stats(c, id),
        MultipartRequest::GroupDesc => group_desc(c),
        MultipartRequest::Experimenter { .. } => Err((ET_BAD_REQUEST, BRC_BAD_EXPERIMENTER)),
    }
}

/// Rules a flow/aggregate stats request selects (cloned).
fn select_rules(c: &Controller, r: &FlowStatsRequest) -> Result<Vec<Rule>, OfErr> {
    let m = of_to_match(&r.match_)?;
    let table = (r.table_id != OFPTT_ALL).then_some(r.table_id);
    if let Some(t) = table {
        if usize::from(t) >= c.pipeline().n_tables() {
            return Err((ET_BAD_REQUEST, BRC_BAD_TABLE_ID));
        }
    }
    let out = if r.out_port == OFPP_ANY {
        None
    } else {
        Some(of_port_in(r.out_port, 0).map_err(|_| (ET_BAD_REQUEST, BRC_BAD_PORT))?)
    };
    let mut f = RuleFilter::loose(table, m).cookie(r.cookie, r.cookie_mask);
    if let Some(p) = out {
        f = f.out_port(p);
    }
    if r.out_group != OFPG_ANY {
        f = f.out_group(r.out_group);
    }
    Ok(super::select_rules(c, &f))
}

fn flow_mod(c: &mut Controller, fm: FlowMod) -> Result<(), OfErr> {
    const ADD: u8 = 0;
    const MODIFY: u8 = 1;
    const MODIFY_STRICT: u8 = 2;
    const DELETE: u8 = 3;
    const DELETE_STRICT: u8 = 4;
    if fm.buffer_id != NO_BUFFER && matches!(fm.command, ADD | MODIFY | MODIFY_STRICT) {
        return Err((ET_BAD_REQUEST, BRC_BUFFER_UNKNOWN));
    }
    let matching = of_to_match(&fm.match_)?;
    let table = (fm.table_id != OFPTT_ALL).then_some(fm.table_id);
    // out_port / out_group filter deletes only; ADD and MODIFY ignore them (Ryu sends 0).
    let delete = matches!(fm.command, DELETE | DELETE_STRICT);
    let out_port = if fm.out_port == OFPP_ANY || !delete {
        None
    } else {
        Some(of_port_in(fm.out_port, 0)?)
    };
    let out_group = (fm.out_group != OFPG_ANY && delete).then_some(fm.out_group);
    let op = crate::ofchannel::FlowModOp {
        command: match fm.command {
            ADD => crate::ofchannel::FlowModCmd::Add,
            MODIFY => crate::ofchannel::FlowModCmd::Modify { strict: false },
            MODIFY_STRICT => crate::ofchannel::FlowModCmd::Modify { strict: true },
            DELETE => crate::ofchannel::FlowModCmd::Delete { strict: false },
            DELETE_STRICT => crate::ofchannel::FlowModCmd::Delete { strict: true },
            _ => return Err((ET_FLOW_MOD_FAILED, FMFC_BAD_COMMAND)),
        },
        table,
        matching,
        priority: fm.priority,
        cookie: fm.cookie,
        cookie_mask: fm.cookie_mask,
        out_port,
        out_group,
        idle_timeout: fm.idle_timeout,
        hard_timeout: fm.hard_timeout,
        send_flow_rem: fm.flags & 1 != 0,
        check_overlap: fm.flags & 2 != 0,
        reset_counts: fm.flags & 4 != 0,
        instructions: if matches!(fm.command, DELETE | DELETE_STRICT) {
            Instructions::default()
        } else {
            of_to_instructions(&fm.instructions)?
        },
        modify_adds: false,
    };
    crate::ofchannel::apply_flow_mod(c, op).map_err(|e| match e {
        crate::ofchannel::FlowModError::NoTable => (ET_FLOW_MOD_FAILED, FMFC_BAD_TABLE_ID),
        crate::ofchannel::FlowModError::Pipeline(e) => pipeline_error(e),
    })
}

fn packet_out(c: &mut Controller, po: v13::PacketOut) -> Result<(), OfErr> {
    if po.buffer_id != NO_BUFFER {
        return Err((ET_BAD_REQUEST, BRC_BUFFER_UNKNOWN));
    }
    let in_port = match po.in_port {
        OFPP_CONTROLLER | OFPP_ANY => None,
        p @ 1..=OFPP_MAX => Some(p),
        _ => return Err((ET_BAD_REQUEST, BRC_BAD_PORT)),
    };
    let mut actions = Vec::with_capacity(po.actions.len());
    for a in &po.actions {
        actions.push(match a {
            OfAction::Output {
                port: OFPP_TABLE, ..
            } => Action::Output(OfPort::Table),
            a => of_to_action(a)?,
        });
    }
    crate::ofchannel::execute_packet_out(c, in_port, &po.data, &actions)
        .map_err(|_| (ET_BAD_REQUEST, BRC_BAD_PACKET))
}

fn group_mod(c: &mut Controller, gm: v13::GroupMod) -> Result<(), OfErr> {
    crate::ofchannel::groups::group_mod13(c, gm)
}

fn group_stats(c: &Controller, id: u32) -> Result<Vec<MultipartReply>, OfErr> {
    crate::ofchannel::groups::stats13(c, id)
}

fn group_desc(c: &Controller) -> Result<Vec<MultipartReply>, OfErr> {
    crate::ofchannel::groups::desc13(c)
}

/// `ofp_port` for a port record.
fn port_desc(p: &PortRecord) -> v13::Port {
    port_desc_raw(
        p.no,
        super::port_name16(&p.name),
        p.mac,
        p.down_reason.is_some(),
    )
}

fn port_desc_raw(port_no: u32, name: [u8; 16], mac: Option<[u8; 6]>, down: bool) -> v13::Port {
    v13::Port {
        port_no,
        hw_addr: mac.unwrap_or([0; 6]),
        name,
        config: 0,
        // OFPPS_LINK_DOWN, else OFPPS_LIVE.
        state: if down { 1 } else { 4 },
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 0,
        max_speed: 0,
    }
}

/// PORT_STATUS (reason 0 add, 1 delete, 2 modify).
pub(crate) fn port_status(reason: u8, rec: Option<&PortRecord>, no: PortNo) -> Vec<u8> {
    // A deleted port has no record left: its number, link down.
    let desc = rec.map_or_else(|| port_desc_raw(no, [0; 16], None, true), port_desc);
    Message::new(0, Body::PortStatus { reason, desc }).emit()
}

/// FLOW_REMOVED for a rule.
pub(crate) fn flow_removed(r: &Rule, why: RemovalReason, now_ms: u64) -> Option<Vec<u8>> {
    let (duration_sec, duration_nsec) = super::duration(now_ms.saturating_sub(r.created_ms));
    let reason = match why {
        RemovalReason::IdleTimeout => 0,
        RemovalReason::HardTimeout => 1,
        RemovalReason::Delete => 2,
        RemovalReason::GroupDelete => 3,
    };
    Some(
        Message::new(
            0,
            Body::FlowRemoved(v13::FlowRemoved {
                cookie: r.cookie,
                priority: r.priority,
                reason,
                table_id: r.table,
                duration_sec,
                duration_nsec,
                idle_timeout: r.idle_timeout,
                hard_timeout: r.hard_timeout,
                packet_count: r.packets,
                byte_count: r.bytes,
                match_: match_to_of(&r.matching),
            }),
        )
        .emit(),
    )
}

/// PACKET_IN (NO_BUFFER; OXM in_port).
pub(crate) fn packet_in(p: &CtlPacketIn, miss_send_len: u16) -> Vec<u8> {
    let (reason, max_len, cookie, table, metadata) = match p.kind {
        UpcallKind::Userspace {
            reason,
            max_len,
            cookie,
            table,
            metadata,
        } => (
            match reason {
                UserspaceReason::NoMatch => 0,
                UserspaceReason::Action => 1,
                UserspaceReason::InvalidTtl => 2,
            },
            max_len,
            cookie,
            table,
            metadata,
        ),
        UpcallKind::Miss => (0, miss_send_len, u64::MAX, 0, 0),
    };
    let mut fields = vec![Oxm::basic(OxmField::InPort, u128::from(p.in_port))];
    if metadata != 0 {
        fields.push(Oxm::basic(OxmField::Metadata, u128::from(metadata)));
    }
    let keep = if max_len == 0xffff {
        p.frame.len()
    } else {
        p.frame.len().min(usize::from(max_len))
    };
    Message::new(
        0,
        Body::PacketIn(v13::PacketIn {
            buffer_id: NO_BUFFER,
            total_len: u16::try_from(p.frame.len()).unwrap_or(u16::MAX),
            reason,
            table_id: table,
            cookie,
            match_: OfMatch { fields },
            data: p.frame[..keep].to_vec(),
        }),
    )
    .emit()
}

/// TABLE_FEATURES replies describing `n` tables (split to fit 64 KiB messages).
fn table_features(n: usize) -> Vec<MultipartReply> {
    let hdr = |f: OxmField| -> u32 {
        (u32::from(v13::OXM_CLASS_BASIC) << 16)
            | (u32::from(f.number()) << 9)
            | f.kind().width() as u32
    };
    let matchable: Vec<u32> = OxmField::ALL
        .iter()
        .copied()
        .filter(|&f| oxm_field(f).is_some())
        .map(hdr)
        .collect();
    let settable: Vec<u32> = OxmField::ALL
        .iter()
        .copied()
        .filter(|&f| {
            f != OxmField::Metadata
                && f != OxmField::InPort
                && oxm_field(f)
                    .is_some_and(|k| Action::SetField { field: k, value: 0 }.validate().is_ok())
        })
        .map(hdr)
        .collect();
    // OUTPUT, PUSH_VLAN, POP_VLAN, GROUP, DEC_NW_TTL, SET_FIELD.
    let actions: Vec<(u16, u16)> = [0u16, 17, 18, 22, 24, 25].iter().map(|&t| (t, 4)).collect();
    let mut all: Vec<TableFeatures> = Vec::new();
    for t in 0..n.min(255) {
        // Unnamed, as Open vSwitch reports its tables.
        let name = [0u8; 32];
        let last = t + 1 == n;
        // GOTO_TABLE (not in the last table), WRITE_METADATA, APPLY_ACTIONS.
        let mut ins: Vec<(u16, u16)> = vec![(2, 4), (4, 4)];
        if !last {
            ins.insert(0, (1, 4));
        }
        let next: Vec<u8> = ((t + 1)..n.min(255)).map(|x| x as u8).collect();
        let props = vec![
            TableFeatureProp::Ids {
                type_: 0,
                ids: ins.clone(),
            },
            TableFeatureProp::Ids { type_: 1, ids: ins },
            TableFeatureProp::NextTables {
                type_: 2,
                tables: next.clone(),
            },
            TableFeatureProp::NextTables {
                type_: 3,
                tables: next,
            },
            // strato has no write-actions instruction: empty action and set-field lists.
            TableFeatureProp::Ids {
                type_: 4,
                ids: Vec::new(),
            },
            TableFeatureProp::Ids {
                type_: 5,
                ids: Vec::new(),
            },
            TableFeatureProp::Ids {
                type_: 6,
                ids: actions.clone(),
            },
            TableFeatureProp::Ids {
                type_: 7,
                ids: actions.clone(),
            },
            TableFeatureProp::Oxm {
                type_: 8,
                oxm_ids: matchable.clone(),
            },
            TableFeatureProp::Oxm {
                type_: 10,
                oxm_ids: matchable.clone(),
            },
            TableFeatureProp::Oxm {
                type_: 12,
                oxm_ids: Vec::new(),
            },
            TableFeatureProp::Oxm {
                type_: 13,
                oxm_ids: Vec::new(),
            },
            TableFeatureProp::Oxm {
                type_: 14,
                oxm_ids: settable.clone(),
            },
            TableFeatureProp::Oxm {
                type_: 15,
                oxm_ids: settable.clone(),
            },
        ];
        let tf = TableFeatures {
            table_id: t as u8,
            name,
            metadata_match: u64::MAX,
            metadata_write: u64::MAX,
            config: 0,
            max_entries: 1_000_000,
            properties: props,
        };
        all.push(tf);
    }
    split_multipart(all, MultipartReply::TableFeatures)
}

/// The OpenFlow error for a message that did not parse.
fn parse_error(type_: u8, e: &OfError) -> OfErr {
    match e {
        OfError::BadType(_) => (ET_BAD_REQUEST, BRC_BAD_TYPE),
        OfError::BadVersion(_) => (ET_BAD_REQUEST, BRC_BAD_VERSION),
        OfError::Unknown { what, .. } if what.contains("multipart") => {
            (ET_BAD_REQUEST, BRC_BAD_MULTIPART)
        }
        OfError::Unknown { what, .. } if what.contains("match") => (ET_BAD_MATCH, BMC_BAD_TYPE),
        OfError::Unknown { what, .. } if what.contains("instruction") => {
            (ET_BAD_INSTRUCTION, BIC_UNKNOWN_INST)
        }
        OfError::Unknown { what, .. } if what.contains("action") => (ET_BAD_ACTION, BAC_BAD_TYPE),
        OfError::Unknown { .. } if type_ == v13::msg_type::MULTIPART_REQUEST => {
            (ET_BAD_REQUEST, BRC_BAD_MULTIPART)
        }
        _ => (ET_BAD_REQUEST, BRC_BAD_LEN),
    }
}

pub(crate) fn pipeline_error(e: PipelineError) -> OfErr {
    match e {
        PipelineError::BadTable { .. } => (ET_FLOW_MOD_FAILED, FMFC_BAD_TABLE_ID),
        PipelineError::BadGoto { .. } => (ET_BAD_INSTRUCTION, BIC_BAD_TABLE_ID),
        PipelineError::Overlap { .. } => (ET_FLOW_MOD_FAILED, FMFC_OVERLAP),
        PipelineError::BadSetField(_) => (ET_BAD_ACTION, BAC_BAD_SET_TYPE),
        PipelineError::BadTpid(_) => (ET_BAD_ACTION, BAC_BAD_ARGUMENT),
        PipelineError::BadTableCount(_) => (ET_BAD_REQUEST, BRC_BAD_TABLE_ID),
        PipelineError::BadOutPort(_) => (ET_BAD_ACTION, BAC_BAD_OUT_PORT),
        PipelineError::BadOutGroup(_) => (ET_BAD_ACTION, BAC_BAD_OUT_GROUP),
        PipelineError::GroupExists(_) => (ET_GROUP_MOD_FAILED, 0),
        PipelineError::InvalidGroup { .. } => (ET_GROUP_MOD_FAILED, 1),
        PipelineError::WeightUnsupported { .. } => (ET_GROUP_MOD_FAILED, 2),
        PipelineError::OutOfGroups(_) => (ET_GROUP_MOD_FAILED, 3),
        PipelineError::OutOfBuckets { .. } => (ET_GROUP_MOD_FAILED, 4),
        PipelineError::ChainingUnsupported { .. } => (ET_GROUP_MOD_FAILED, 5),
        PipelineError::WatchUnsupported { .. } => (ET_GROUP_MOD_FAILED, 6),
        PipelineError::Loop { .. } => (ET_GROUP_MOD_FAILED, 7),
        PipelineError::UnknownGroup(_) => (ET_GROUP_MOD_FAILED, 8),
        PipelineError::ChainedGroup { .. } => (ET_GROUP_MOD_FAILED, 9),
        PipelineError::BadBucket { .. } => (ET_GROUP_MOD_FAILED, 12),
        PipelineError::BadWatch { .. } => (ET_GROUP_MOD_FAILED, 13),
    }
}

/// Maps an OXM basic field to strato's key field (VLAN VID goes to the TCI, whose bit 12 is
/// the same "present" bit as OFPVID_PRESENT).
fn oxm_field(f: OxmField) -> Option<Field> {
    use OxmField as O;
    Some(match f {
        O::InPort => Field::InPort,
        O::Metadata => Field::Metadata,
        O::EthDst => Field::EthDst,
        O::EthSrc => Field::EthSrc,
        O::EthType => Field::EthType,
        O::VlanVid => Field::VlanTci,
        O::VlanPcp => Field::VlanPcp,
        O::IpDscp => Field::IpDscp,
        O::IpEcn => Field::IpEcn,
        O::IpProto => Field::IpProto,
        O::Ipv4Src => Field::Ipv4Src,
        O::Ipv4Dst => Field::Ipv4Dst,
        O::TcpSrc | O::UdpSrc | O::SctpSrc => Field::TpSrc,
        O::TcpDst | O::UdpDst | O::SctpDst => Field::TpDst,
        O::Icmpv4Type | O::Icmpv6Type => Field::IcmpType,
        O::Icmpv4Code | O::Icmpv6Code => Field::IcmpCode,
        O::ArpOp => Field::ArpOp,
        O::ArpSpa => Field::ArpSpa,
        O::ArpTpa => Field::ArpTpa,
        O::ArpSha => Field::ArpSha,
        O::ArpTha => Field::ArpTha,
        O::Ipv6Src => Field::Ipv6Src,
        O::Ipv6Dst => Field::Ipv6Dst,
        O::Ipv6Flabel => Field::Ipv6Label,
        O::Ipv6NdTarget => Field::NdTarget,
        O::TunnelId => Field::TunId,
        _ => return None,
    })
}

/// Prerequisites (OpenFlow 1.3 §7.2.3.6): required eth_type set and ip_proto set.
fn prereq(f: OxmField) -> (&'static [u128], &'static [u128]) {
    use OxmField as O;
    const IP: &[u128] = &[0x0800, 0x86dd];
    match f {
        O::IpDscp | O::IpEcn | O::IpProto => (IP, &[]),
        O::Ipv4Src | O::Ipv4Dst => (&[0x0800], &[]),
        O::TcpSrc | O::TcpDst => (IP, &[6]),
        O::UdpSrc | O::UdpDst => (IP, &[17]),
        O::SctpSrc | O::SctpDst => (IP, &[132]),
        O::Icmpv4Type | O::Icmpv4Code => (&[0x0800], &[1]),
        O::Icmpv6Type | O::Icmpv6Code => (&[0x86dd], &[58]),
        O::ArpOp | O::ArpSpa | O::ArpTpa | O::ArpSha | O::ArpTha => (&[0x0806], &[]),
        O::Ipv6Src | O::Ipv6Dst | O::Ipv6Flabel => (&[0x86dd], &[]),
        O::Ipv6NdTarget => (&[0x86dd], &[58]),
        _ => (&[], &[]),
    }
}

/// An OXM match as a strato match (refusing unknown fields, duplicates, missing prerequisites).
pub fn of_to_match(m: &OfMatch) -> Result<Match, (u16, u16)> {
    let mut out = Match::default();
    let mut seen: Vec<OxmField> = Vec::new();
    let exact = |f: OxmField| {
        m.fields.iter().find_map(|o| match o {
            Oxm::Basic {
                field,
                value,
                mask: None,
            } if *field == f => Some(*value),
            _ => None,
        })
    };
    for o in &m.fields {
        let Oxm::Basic { field, value, mask } = o else {
            return Err((ET_BAD_MATCH, BMC_BAD_FIELD));
        };
        if seen.contains(field) {
            return Err((ET_BAD_MATCH, BMC_DUP_FIELD));
        }
        seen.push(*field);
        let f = oxm_field(*field).ok_or((ET_BAD_MATCH, BMC_BAD_FIELD))?;
        let (types, protos) = prereq(*field);
        if !types.is_empty() && !exact(OxmField::EthType).is_some_and(|t| types.contains(&t)) {
            return Err((ET_BAD_MATCH, BMC_BAD_PREREQ));
        }
        if !protos.is_empty() && !exact(OxmField::IpProto).is_some_and(|p| protos.contains(&p)) {
            return Err((ET_BAD_MATCH, BMC_BAD_PREREQ));
        }
        let full = if *field == OxmField::VlanVid {
            0x1fff
        } else {
            f.full_mask()
        };
        out.set_masked(f, *value, mask.unwrap_or(full) & full);
    }
    Ok(out)
}

/// A strato match as OXM fields, in wire-number order.
pub fn match_to_of(m: &Match) -> OfMatch {
    let mut fields = Vec::new();
    let (ty, _) = m.field(Field::EthType);
    let (proto, _) = m.field(Field::IpProto);
    for &of in OxmField::ALL {
        let Some(f) = oxm_field(of) else { continue };
        // Only one OXM per shared strato field: pick the one the match's protocol implies.
        let keep = match of {
            OxmField::TcpSrc | OxmField::TcpDst => !matches!(proto, 17 | 132),
            OxmField::UdpSrc | OxmField::UdpDst => proto == 17,
            OxmField::SctpSrc | OxmField::SctpDst => proto == 132,
            OxmField::Icmpv4Type | OxmField::Icmpv4Code => ty != 0x86dd,
            OxmField::Icmpv6Type | OxmField::Icmpv6Code => ty == 0x86dd,
            _ => true,
        };
        if !keep {
            continue;
        }
        let (v, mut mask) = m.field(f);
        let mut full = f.full_mask();
        if of == OxmField::VlanVid {
            full = 0x1fff;
            mask &= full;
        }
        if mask == 0 {
            continue;
        }
        fields.push(Oxm::Basic {
            field: of,
            value: v & mask,
            mask: (mask != full).then_some(mask),
        });
    }
    OfMatch { fields }
}

fn of_port_in(port: u32, max_len: u16) -> Result<OfPort, OfErr> {
    Ok(match port {
        1..=OFPP_MAX => OfPort::Port(port),
        OFPP_IN_PORT => OfPort::InPort,
        OFPP_FLOOD => OfPort::Flood,
        OFPP_ALL => OfPort::All,
        OFPP_CONTROLLER => OfPort::Controller { max_len },
        _ => return Err((ET_BAD_ACTION, BAC_BAD_OUT_PORT)),
    })
}

pub(crate) fn of_to_action(a: &OfAction) -> Result<Action, OfErr> {
    let act = match a {
        OfAction::Output { port, max_len } => Action::Output(of_port_in(*port, *max_len)?),
        OfAction::PushVlan(tpid) => Action::PushVlan { tpid: *tpid },
        OfAction::PopVlan => Action::PopVlan,
        OfAction::DecNwTtl => Action::DecTtl,
        OfAction::Group(g) => Action::Group(*g),
        OfAction::SetField(Oxm::Basic {
            field,
            value,
            mask: None,
        }) => {
            let (f, v) = match field {
                OxmField::VlanVid => (Field::VlanVid, value & 0xfff),
                OxmField::Metadata => return Err((ET_BAD_ACTION, BAC_BAD_SET_TYPE)),
                _ => (
                    oxm_field(*field).ok_or((ET_BAD_ACTION, BAC_BAD_SET_TYPE))?,
                    *value,
                ),
            };
            if v & !f.full_mask() != 0 {
                return Err((ET_BAD_ACTION, BAC_BAD_SET_ARGUMENT));
            }
            Action::SetField { field: f, value: v }
        }
        OfAction::SetField(_) => return Err((ET_BAD_ACTION, BAC_BAD_SET_TYPE)),
        _ => return Err((ET_BAD_ACTION, BAC_BAD_TYPE)),
    };
    act.validate().map_err(pipeline_error)?;
    Ok(act)
}

fn of_to_instructions(ins: &[Instruction]) -> Result<Instructions, OfErr> {
    let mut out = Instructions::default();
    for i in ins {
        match i {
            Instruction::ApplyActions(a) => {
                out.apply_actions = a.iter().map(of_to_action).collect::<Result<_, _>>()?;
            }
            Instruction::GotoTable(t) => out.goto_table = Some(*t),
            Instruction::WriteMetadata { metadata, mask } => {
                out.write_metadata = Some((*metadata, *mask))
            }
            Instruction::Unknown { .. } => return Err((ET_BAD_INSTRUCTION, BIC_UNKNOWN_INST)),
            _ => return Err((ET_BAD_INSTRUCTION, BIC_UNSUP_INST)),
        }
    }
    Ok(out)
}

pub(crate) fn action_to_of(a: &Action, m: &Match) -> Option<OfAction> {
    let out = |port| OfAction::Output { port, max_len: 0 };
    Some(match *a {
        Action::Output(OfPort::Port(p)) => out(p),
        Action::Output(OfPort::InPort) => out(OFPP_IN_PORT),
        Action::Output(OfPort::Flood) => out(OFPP_FLOOD),
        Action::Output(OfPort::All) => out(OFPP_ALL),
        Action::Output(OfPort::Controller { max_len }) => OfAction::Output {
            port: OFPP_CONTROLLER,
            max_len,
        },
        Action::PushVlan { tpid } => OfAction::PushVlan(tpid),
        Action::PopVlan => OfAction::PopVlan,
        Action::DecTtl => OfAction::DecNwTtl,
        Action::Group(g) => OfAction::Group(g),
        Action::Output(OfPort::Table) => out(OFPP_TABLE),
        Action::SetTunnel { vni } => {
            OfAction::SetField(Oxm::basic(OxmField::TunnelId, u128::from(vni)))
        }
        Action::SetField { field, value } => {
            let of = if field == Field::VlanVid {
                return Some(OfAction::SetField(Oxm::basic(
                    OxmField::VlanVid,
                    value | OFPVID_PRESENT,
                )));
            } else {
                // The OXM whose strato field this is, disambiguated by the match's protocol.
                OxmField::ALL.iter().copied().find(|&o| {
                    oxm_field(o) == Some(field)
                        && o != OxmField::VlanVid
                        && match o {
                            OxmField::UdpSrc | OxmField::UdpDst => m.field(Field::IpProto).0 == 17,
                            OxmField::SctpSrc | OxmField::SctpDst => {
                                m.field(Field::IpProto).0 == 132
                            }
                            OxmField::TcpSrc | OxmField::TcpDst => {
                                !matches!(m.field(Field::IpProto).0, 17 | 132)
                            }
                            OxmField::Icmpv6Type | OxmField::Icmpv6Code => {
                                m.field(Field::EthType).0 == 0x86dd
                            }
                            OxmField::Icmpv4Type | OxmField::Icmpv4Code => {
                                m.field(Field::EthType).0 != 0x86dd
                            }
                            _ => true,
                        }
                })?
            };
            OfAction::SetField(Oxm::basic(of, value))
        }
    })
}

fn rule_to_stats(r: &Rule, now_ms: u64) -> FlowStats {
    let mut instructions = Vec::new();
    if let Some((metadata, mask)) = r.instructions.write_metadata {
        instructions.push(Instruction::WriteMetadata { metadata, mask });
    }
    if !r.instructions.apply_actions.is_empty() {
        instructions.push(Instruction::ApplyActions(
            r.instructions
                .apply_actions
                .iter()
                .filter_map(|a| action_to_of(a, &r.matching))
                .collect(),
        ));
    }
    if let Some(t) = r.instructions.goto_table {
        instructions.push(Instruction::GotoTable(t));
    }
    let (duration_sec, duration_nsec) = super::duration(now_ms.saturating_sub(r.created_ms));
    FlowStats {
        table_id: r.table,
        duration_sec,
        duration_nsec,
        priority: r.priority,
        idle_timeout: r.idle_timeout,
        hard_timeout: r.hard_timeout,
        flags: u16::from(r.flags.send_flow_rem),
        cookie: r.cookie,
        packet_count: r.packets,
        byte_count: r.bytes,
        match_: match_to_of(&r.matching),
        instructions,
    }
}

/// Splits multipart items into replies that each fit a 64 KiB message (`wrap` makes the
/// reply body of a list of items).
fn split_multipart<T: Clone>(
    items: Vec<T>,
    wrap: impl Fn(Vec<T>) -> MultipartReply,
) -> Vec<MultipartReply> {
    const LIMIT: usize = 65535 - 16;
    let mut out = Vec::new();
    let mut cur: Vec<T> = Vec::new();
    let mut cur_len = 0;
    for s in items {
        let body = wrap(vec![s.clone()]);
        let len = Message::new(0, Body::MultipartReply { flags: 0, body })
            .emit()
            .len()
            - 16;
        if cur_len + len > LIMIT && !cur.is_empty() {
            out.push(wrap(std::mem::take(&mut cur)));
            cur_len = 0;
        }
        cur_len += len;
        cur.push(s);
    }
    out.push(wrap(cur));
    out
}

/// Splits flow stats into replies that each fit a 64 KiB message.
fn split_flow_stats(stats: Vec<FlowStats>) -> Vec<MultipartReply> {
    split_multipart(stats, MultipartReply::Flow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_round_trip() {
        let of = OfMatch {
            fields: vec![
                Oxm::basic(OxmField::InPort, 1),
                Oxm::basic(OxmField::EthType, 0x0800),
                Oxm::basic(OxmField::VlanVid, 0x1005),
                Oxm::basic(OxmField::IpProto, 17),
                Oxm::Basic {
                    field: OxmField::Ipv4Dst,
                    value: 0x0a00_0000,
                    mask: Some(0xffff_ff00),
                },
                Oxm::basic(OxmField::UdpDst, 4789),
            ],
        };
        let m = of_to_match(&of).unwrap();
        assert_eq!(m.field(Field::TpDst), (4789, 0xffff));
        assert_eq!(m.field(Field::VlanTci), (0x1005, 0x1fff));
        assert_eq!(match_to_of(&m), of);
        let no_prereq = OfMatch {
            fields: vec![Oxm::basic(OxmField::Ipv4Dst, 1)],
        };
        assert_eq!(of_to_match(&no_prereq), Err((ET_BAD_MATCH, BMC_BAD_PREREQ)));
        let dup = OfMatch {
            fields: vec![
                Oxm::basic(OxmField::InPort, 1),
                Oxm::basic(OxmField::InPort, 2),
            ],
        };
        assert_eq!(of_to_match(&dup), Err((ET_BAD_MATCH, BMC_DUP_FIELD)));
        let unknown = OfMatch {
            fields: vec![Oxm::basic(OxmField::MplsLabel, 1)],
        };
        assert_eq!(of_to_match(&unknown), Err((ET_BAD_MATCH, BMC_BAD_FIELD)));
    }
}
