//! Multipart (stats) request and reply bodies: desc, flow, aggregate, table, port stats, group,
//! group desc, table features, port desc and experimenter; every other multipart type is left
//! to the message as raw bytes.
//!
//! Contract: the parse functions read the body after the 8-byte multipart header and return
//! `None` for a type this codec does not type (the message keeps it raw). Variable-length
//! entries (flow stats, group stats, group desc) are length-first records read through
//! [`super::super::tlv`], every record's length checked before the first is parsed: a bad length
//! is [`OfError::BadLength`] / [`OfError::Truncated`];
//! padding must be zero ([`OfError::NonZeroPadding`]). Emit reproduces what parse accepted.

use super::super::tlv::{TlvFormat, TlvWriter};
use super::super::wire::{fixed, p16, p32, p64, p8, pad};
use super::super::{OfError, Reader};
use super::instructions::emit_instructions;
use super::table_features::{emit_table_features, parse_table_features, table_features_json};
use super::{base64, c_str, mp_type, Bucket, Instruction, Match, Port, TableFeatures};
use serde_json::{json, Map, Value};

/// One flow stats entry: length, then the entry (56 bytes before match and instructions).
const FLOW_STATS: TlvFormat = TlvFormat::len_first("flow stats", 56);
/// One group stats entry: length, then 38 more bytes and the bucket counters.
const GROUP_STATS: TlvFormat = TlvFormat::len_first("group stats", 40);
/// One group description: length, type, group id, buckets.
const GROUP_DESC: TlvFormat = TlvFormat::len_first("group desc", 8);

/// A flow / aggregate stats request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStatsRequest {
    /// Table (OFPTT_ALL for all).
    pub table_id: u8,
    /// Output port filter.
    pub out_port: u32,
    /// Output group filter.
    pub out_group: u32,
    /// Cookie.
    pub cookie: u64,
    /// Cookie mask.
    pub cookie_mask: u64,
    /// Match.
    pub match_: Match,
}

/// One `ofp_flow_stats`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStats {
    /// Table id.
    pub table_id: u8,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond.
    pub duration_nsec: u32,
    /// Priority.
    pub priority: u16,
    /// Idle timeout.
    pub idle_timeout: u16,
    /// Hard timeout.
    pub hard_timeout: u16,
    /// OFPFF_*.
    pub flags: u16,
    /// Cookie.
    pub cookie: u64,
    /// Packets.
    pub packet_count: u64,
    /// Bytes.
    pub byte_count: u64,
    /// Match.
    pub match_: Match,
    /// Instructions.
    pub instructions: Vec<Instruction>,
}

/// One `ofp_table_stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableStats {
    /// Table id.
    pub table_id: u8,
    /// Active entries.
    pub active_count: u32,
    /// Lookups.
    pub lookup_count: u64,
    /// Hits.
    pub matched_count: u64,
}

/// One `ofp_port_stats`: the twelve u64 counters in wire order (rx_packets, tx_packets,
/// rx_bytes, tx_bytes, rx_dropped, tx_dropped, rx_errors, tx_errors, rx_frame_err, rx_over_err,
/// rx_crc_err, collisions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStats {
    /// Port number.
    pub port_no: u32,
    /// Counters, see the type's docs for the order.
    pub counters: [u64; 12],
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond.
    pub duration_nsec: u32,
}

/// Names of [`PortStats::counters`], in order.
pub const PORT_STATS_COUNTERS: [&str; 12] = [
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_dropped",
    "tx_dropped",
    "rx_errors",
    "tx_errors",
    "rx_frame_err",
    "rx_over_err",
    "rx_crc_err",
    "collisions",
];

/// One `ofp_group_desc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDesc {
    /// OFPGT_*.
    pub type_: u8,
    /// Group id.
    pub group_id: u32,
    /// Buckets.
    pub buckets: Vec<Bucket>,
}

/// One `ofp_group_stats`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStats {
    /// Group id.
    pub group_id: u32,
    /// Flows / groups forwarding to it.
    pub ref_count: u32,
    /// Packets.
    pub packet_count: u64,
    /// Bytes.
    pub byte_count: u64,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond.
    pub duration_nsec: u32,
    /// Per bucket (packet_count, byte_count).
    pub bucket_stats: Vec<(u64, u64)>,
}

impl FlowStats {
    /// Appends the entry to a writer of flow stats records.
    fn write(&self, w: &mut TlvWriter<'_>) {
        w.record(|o| {
            p8(o, self.table_id);
            pad(o, 1);
            p32(o, self.duration_sec);
            p32(o, self.duration_nsec);
            p16(o, self.priority);
            p16(o, self.idle_timeout);
            p16(o, self.hard_timeout);
            p16(o, self.flags);
            pad(o, 4);
            p64(o, self.cookie);
            p64(o, self.packet_count);
            p64(o, self.byte_count);
            self.match_.emit(o);
            emit_instructions(o, &self.instructions);
        });
    }

    /// The entry's length on the wire.
    fn wire_len(&self) -> usize {
        let mut b = Vec::new();
        let mut w = TlvWriter::new(&mut b, FLOW_STATS);
        self.write(&mut w);
        w.written()
    }
}

impl GroupDesc {
    /// Appends the description to a writer of group desc records.
    fn write(&self, w: &mut TlvWriter<'_>) {
        w.record(|o| {
            p8(o, self.type_);
            pad(o, 1);
            p32(o, self.group_id);
            self.buckets.iter().for_each(|b| b.emit(o));
        });
    }

    /// The description's length on the wire.
    fn wire_len(&self) -> usize {
        let mut b = Vec::new();
        let mut w = TlvWriter::new(&mut b, GROUP_DESC);
        self.write(&mut w);
        w.written()
    }
}

/// A multipart request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultipartRequest {
    /// OFPMP_DESC.
    Desc,
    /// OFPMP_FLOW.
    Flow(FlowStatsRequest),
    /// OFPMP_AGGREGATE.
    Aggregate(FlowStatsRequest),
    /// OFPMP_TABLE.
    Table,
    /// OFPMP_PORT_STATS (port or OFPP_ANY).
    PortStats(u32),
    /// OFPMP_GROUP (group or OFPG_ALL).
    Group(u32),
    /// OFPMP_GROUP_DESC.
    GroupDesc,
    /// OFPMP_TABLE_FEATURES (empty = query, else set).
    TableFeatures(Vec<TableFeatures>),
    /// OFPMP_PORT_DESC.
    PortDesc,
    /// OFPMP_EXPERIMENTER.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter type.
        exp_type: u32,
        /// Data.
        data: Vec<u8>,
    },
}

/// A multipart reply body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultipartReply {
    /// OFPMP_DESC: mfr, hw, sw, serial, dp descriptions, NUL-padded as on the wire
    /// (256, 256, 256, 32, 256 bytes).
    Desc {
        /// Manufacturer.
        mfr_desc: Vec<u8>,
        /// Hardware.
        hw_desc: Vec<u8>,
        /// Software.
        sw_desc: Vec<u8>,
        /// Serial number.
        serial_num: Vec<u8>,
        /// Datapath.
        dp_desc: Vec<u8>,
    },
    /// OFPMP_FLOW.
    Flow(Vec<FlowStats>),
    /// OFPMP_AGGREGATE.
    Aggregate {
        /// Packets.
        packet_count: u64,
        /// Bytes.
        byte_count: u64,
        /// Flows.
        flow_count: u32,
    },
    /// OFPMP_TABLE.
    Table(Vec<TableStats>),
    /// OFPMP_PORT_STATS.
    PortStats(Vec<PortStats>),
    /// OFPMP_GROUP.
    Group(Vec<GroupStats>),
    /// OFPMP_GROUP_DESC.
    GroupDesc(Vec<GroupDesc>),
    /// OFPMP_TABLE_FEATURES.
    TableFeatures(Vec<TableFeatures>),
    /// OFPMP_PORT_DESC.
    PortDesc(Vec<Port>),
    /// OFPMP_EXPERIMENTER.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter type.
        exp_type: u32,
        /// Data.
        data: Vec<u8>,
    },
}

fn parse_flow_stats_request(r: &mut Reader<'_>) -> Result<FlowStatsRequest, OfError> {
    let table_id = r.u8("table_id")?;
    r.zero_pad(3, "flow stats request padding")?;
    let out_port = r.u32("out_port")?;
    let out_group = r.u32("out_group")?;
    r.zero_pad(4, "flow stats request padding")?;
    let cookie = r.u64("cookie")?;
    let cookie_mask = r.u64("cookie_mask")?;
    let match_ = Match::parse(r)?;
    Ok(FlowStatsRequest {
        table_id,
        out_port,
        out_group,
        cookie,
        cookie_mask,
        match_,
    })
}

fn emit_flow_stats_request(o: &mut Vec<u8>, f: &FlowStatsRequest) {
    p8(o, f.table_id);
    pad(o, 3);
    p32(o, f.out_port);
    p32(o, f.out_group);
    pad(o, 4);
    p64(o, f.cookie);
    p64(o, f.cookie_mask);
    f.match_.emit(o);
}

/// The typed request body of multipart type `t`, or `None` for a type kept raw.
pub(crate) fn parse_mp_request(
    t: u16,
    r: &mut Reader<'_>,
) -> Result<Option<MultipartRequest>, OfError> {
    Ok(Some(match t {
        mp_type::DESC => MultipartRequest::Desc,
        mp_type::FLOW => MultipartRequest::Flow(parse_flow_stats_request(r)?),
        mp_type::AGGREGATE => MultipartRequest::Aggregate(parse_flow_stats_request(r)?),
        mp_type::TABLE => MultipartRequest::Table,
        mp_type::PORT_STATS | mp_type::GROUP => {
            let x = r.u32("port/group")?;
            r.zero_pad(4, "multipart request padding")?;
            if t == mp_type::GROUP {
                MultipartRequest::Group(x)
            } else {
                MultipartRequest::PortStats(x)
            }
        }
        mp_type::GROUP_DESC => MultipartRequest::GroupDesc,
        mp_type::TABLE_FEATURES => MultipartRequest::TableFeatures(parse_table_features(r.rest())?),
        mp_type::PORT_DESC => MultipartRequest::PortDesc,
        mp_type::EXPERIMENTER => MultipartRequest::Experimenter {
            experimenter: r.u32("experimenter")?,
            exp_type: r.u32("exp_type")?,
            data: r.rest().to_vec(),
        },
        _ => return Ok(None),
    }))
}

/// The multipart type of a request body.
pub(crate) fn mp_request_type(b: &MultipartRequest) -> u16 {
    match b {
        MultipartRequest::Desc => mp_type::DESC,
        MultipartRequest::Flow(_) => mp_type::FLOW,
        MultipartRequest::Aggregate(_) => mp_type::AGGREGATE,
        MultipartRequest::Table => mp_type::TABLE,
        MultipartRequest::PortStats(_) => mp_type::PORT_STATS,
        MultipartRequest::Group(_) => mp_type::GROUP,
        MultipartRequest::GroupDesc => mp_type::GROUP_DESC,
        MultipartRequest::TableFeatures(_) => mp_type::TABLE_FEATURES,
        MultipartRequest::PortDesc => mp_type::PORT_DESC,
        MultipartRequest::Experimenter { .. } => mp_type::EXPERIMENTER,
    }
}

/// Appends a request body (after the multipart header).
pub(crate) fn emit_mp_request(o: &mut Vec<u8>, b: &MultipartRequest) {
    match b {
        MultipartRequest::Desc
        | MultipartRequest::Table
        | MultipartRequest::GroupDesc
        | MultipartRequest::PortDesc => {}
        MultipartRequest::Flow(f) | MultipartRequest::Aggregate(f) => emit_flow_stats_request(o, f),
        MultipartRequest::PortStats(x) | MultipartRequest::Group(x) => {
            p32(o, *x);
            pad(o, 4);
        }
        MultipartRequest::TableFeatures(v) => emit_table_features(o, v),
        MultipartRequest::Experimenter {
            experimenter,
            exp_type,
            data,
        } => {
            p32(o, *experimenter);
            p32(o, *exp_type);
            o.extend_from_slice(data);
        }
    }
}

/// The typed reply body of multipart type `t`, or `None` for a type kept raw.
pub(crate) fn parse_mp_reply(
    t: u16,
    r: &mut Reader<'_>,
) -> Result<Option<MultipartReply>, OfError> {
    Ok(Some(match t {
        mp_type::DESC => MultipartReply::Desc {
            mfr_desc: r.bytes(256, "mfr_desc")?.to_vec(),
            hw_desc: r.bytes(256, "hw_desc")?.to_vec(),
            sw_desc: r.bytes(256, "sw_desc")?.to_vec(),
            serial_num: r.bytes(32, "serial_num")?.to_vec(),
            dp_desc: r.bytes(256, "dp_desc")?.to_vec(),
        },
        mp_type::FLOW => {
            let v = FLOW_STATS.parse_framed(r.rest(), |rec| {
                let mut fr = Reader::new(rec.body);
                let table_id = fr.u8("table_id")?;
                fr.zero_pad(1, "flow stats padding")?;
                let duration_sec = fr.u32("duration_sec")?;
                let duration_nsec = fr.u32("duration_nsec")?;
                let priority = fr.u16("priority")?;
                let idle_timeout = fr.u16("idle_timeout")?;
                let hard_timeout = fr.u16("hard_timeout")?;
                let flags = fr.u16("flags")?;
                fr.zero_pad(4, "flow stats padding")?;
                let cookie = fr.u64("cookie")?;
                let packet_count = fr.u64("packet_count")?;
                let byte_count = fr.u64("byte_count")?;
                let match_ = Match::parse(&mut fr)?;
                let instructions = Instruction::parse_list(fr.rest())?;
                Ok(FlowStats {
                    table_id,
                    duration_sec,
                    duration_nsec,
                    priority,
                    idle_timeout,
                    hard_timeout,
                    flags,
                    cookie,
                    packet_count,
                    byte_count,
                    match_,
                    instructions,
                })
            })?;
            MultipartReply::Flow(v)
        }
        mp_type::AGGREGATE => {
            let packet_count = r.u64("packet_count")?;
            let byte_count = r.u64("byte_count")?;
            let flow_count = r.u32("flow_count")?;
            r.zero_pad(4, "aggregate stats padding")?;
            MultipartReply::Aggregate {
                packet_count,
                byte_count,
                flow_count,
            }
        }
        mp_type::TABLE => {
            let mut v = Vec::new();
            while r.remaining() > 0 {
                let table_id = r.u8("table_id")?;
                r.zero_pad(3, "table stats padding")?;
                v.push(TableStats {
                    table_id,
                    active_count: r.u32("active_count")?,
                    lookup_count: r.u64("lookup_count")?,
                    matched_count: r.u64("matched_count")?,
                });
            }
            MultipartReply::Table(v)
        }
        mp_type::PORT_STATS => {
            let mut v = Vec::new();
            while r.remaining() > 0 {
                let port_no = r.u32("port_no")?;
                r.zero_pad(4, "port stats padding")?;
                let mut counters = [0u64; 12];
                for c in counters.iter_mut() {
                    *c = r.u64("port counter")?;
                }
                v.push(PortStats {
                    port_no,
                    counters,
                    duration_sec: r.u32("duration_sec")?,
                    duration_nsec: r.u32("duration_nsec")?,
                });
            }
            MultipartReply::PortStats(v)
        }
        mp_type::GROUP => {
            let v = GROUP_STATS.parse_framed(r.rest(), |rec| {
                let mut gr = Reader::new(rec.body);
                gr.zero_pad(2, "group stats padding")?;
                let group_id = gr.u32("group_id")?;
                let ref_count = gr.u32("ref_count")?;
                gr.zero_pad(4, "group stats padding")?;
                let packet_count = gr.u64("packet_count")?;
                let byte_count = gr.u64("byte_count")?;
                let duration_sec = gr.u32("duration_sec")?;
                let duration_nsec = gr.u32("duration_nsec")?;
                let mut bucket_stats = Vec::new();
                while gr.remaining() > 0 {
                    bucket_stats
                        .push((gr.u64("bucket packet_count")?, gr.u64("bucket byte_count")?));
                }
                Ok(GroupStats {
                    group_id,
                    ref_count,
                    packet_count,
                    byte_count,
                    duration_sec,
                    duration_nsec,
                    bucket_stats,
                })
            })?;
            MultipartReply::Group(v)
        }
        mp_type::GROUP_DESC => {
            let v = GROUP_DESC.parse_framed(r.rest(), |rec| {
                let mut gr = Reader::new(rec.body);
                let type_ = gr.u8("group type")?;
                gr.zero_pad(1, "group desc padding")?;
                let group_id = gr.u32("group_id")?;
                Ok(GroupDesc {
                    type_,
                    group_id,
                    buckets: Bucket::parse_list(gr.rest())?,
                })
            })?;
            MultipartReply::GroupDesc(v)
        }
        mp_type::TABLE_FEATURES => MultipartReply::TableFeatures(parse_table_features(r.rest())?),
        mp_type::PORT_DESC => {
            let mut v = Vec::new();
            while r.remaining() > 0 {
                v.push(Port::parse(r)?);
            }
            MultipartReply::PortDesc(v)
        }
        mp_type::EXPERIMENTER => MultipartReply::Experimenter {
            experimenter: r.u32("experimenter")?,
            exp_type: r.u32("exp_type")?,
            data: r.rest().to_vec(),
        },
        _ => return Ok(None),
    }))
}

/// The multipart type of a reply body.
pub(crate) fn mp_reply_type(b: &MultipartReply) -> u16 {
    match b {
        MultipartReply::Desc { .. } => mp_type::DESC,
        MultipartReply::Flow(_) => mp_type::FLOW,
        MultipartReply::Aggregate { .. } => mp_type::AGGREGATE,
        MultipartReply::Table(_) => mp_type::TABLE,
        MultipartReply::PortStats(_) => mp_type::PORT_STATS,
        MultipartReply::Group(_) => mp_type::GROUP,
        MultipartReply::GroupDesc(_) => mp_type::GROUP_DESC,
        MultipartReply::TableFeatures(_) => mp_type::TABLE_FEATURES,
        MultipartReply::PortDesc(_) => mp_type::PORT_DESC,
        MultipartReply::Experimenter { .. } => mp_type::EXPERIMENTER,
    }
}

/// Appends a reply body (after the multipart header).
pub(crate) fn emit_mp_reply(o: &mut Vec<u8>, b: &MultipartReply) {
    match b {
        MultipartReply::Desc {
            mfr_desc,
            hw_desc,
            sw_desc,
            serial_num,
            dp_desc,
        } => {
            fixed(o, mfr_desc, 256);
            fixed(o, hw_desc, 256);
            fixed(o, sw_desc, 256);
            fixed(o, serial_num, 32);
            fixed(o, dp_desc, 256);
        }
        MultipartReply::Flow(v) => {
            let mut w = TlvWriter::new(o, FLOW_STATS);
            v.iter().for_each(|f| f.write(&mut w));
        }
        MultipartReply::Aggregate {
            packet_count,
            byte_count,
            flow_count,
        } => {
            p64(o, *packet_count);
            p64(o, *byte_count);
            p32(o, *flow_count);
            pad(o, 4);
        }
        MultipartReply::Table(v) => {
            for t in v {
                p8(o, t.table_id);
                pad(o, 3);
                p32(o, t.active_count);
                p64(o, t.lookup_count);
                p64(o, t.matched_count);
            }
        }
        MultipartReply::PortStats(v) => {
            for s in v {
                p32(o, s.port_no);
                pad(o, 4);
                s.counters.iter().for_each(|c| p64(o, *c));
                p32(o, s.duration_sec);
                p32(o, s.duration_nsec);
            }
        }
        MultipartReply::Group(v) => {
            let mut w = TlvWriter::new(o, GROUP_STATS);
            for g in v {
                w.record(|o| {
                    pad(o, 2);
                    p32(o, g.group_id);
                    p32(o, g.ref_count);
                    pad(o, 4);
                    p64(o, g.packet_count);
                    p64(o, g.byte_count);
                    p32(o, g.duration_sec);
                    p32(o, g.duration_nsec);
                    for (p, b) in &g.bucket_stats {
                        p64(o, *p);
                        p64(o, *b);
                    }
                });
            }
        }
        MultipartReply::GroupDesc(v) => {
            let mut w = TlvWriter::new(o, GROUP_DESC);
            v.iter().for_each(|g| g.write(&mut w));
        }
        MultipartReply::TableFeatures(v) => emit_table_features(o, v),
        MultipartReply::PortDesc(v) => v.iter().for_each(|p| p.emit(o)),
        MultipartReply::Experimenter {
            experimenter,
            exp_type,
            data,
        } => {
            p32(o, *experimenter);
            p32(o, *exp_type);
            o.extend_from_slice(data);
        }
    }
}

fn with(mut v: Value, extra: &[(&str, Value)]) -> Value {
    for (k, x) in extra {
        v[*k] = x.clone();
    }
    v
}

fn flow_stats_request_json(f: &FlowStatsRequest) -> Value {
    json!({"cookie": f.cookie, "cookie_mask": f.cookie_mask, "match": f.match_.to_ryu_json(),
        "out_group": f.out_group, "out_port": f.out_port, "table_id": f.table_id})
}

/// Ryu's class name and JSON for a multipart request.
pub(crate) fn request_json(flags: u16, body: &MultipartRequest) -> (&'static str, Value) {
    let common = [
        ("flags", json!(flags)),
        ("type", json!(mp_request_type(body))),
    ];
    let (n, v) = match body {
        MultipartRequest::Desc => ("OFPDescStatsRequest", json!({})),
        MultipartRequest::Flow(f) => ("OFPFlowStatsRequest", flow_stats_request_json(f)),
        MultipartRequest::Aggregate(f) => ("OFPAggregateStatsRequest", flow_stats_request_json(f)),
        MultipartRequest::Table => ("OFPTableStatsRequest", json!({})),
        MultipartRequest::PortStats(p) => ("OFPPortStatsRequest", json!({ "port_no": p })),
        MultipartRequest::Group(g) => ("OFPGroupStatsRequest", json!({ "group_id": g })),
        MultipartRequest::GroupDesc => ("OFPGroupDescStatsRequest", json!({})),
        MultipartRequest::TableFeatures(t) => (
            "OFPTableFeaturesStatsRequest",
            json!({"body": table_features_json(t)}),
        ),
        MultipartRequest::PortDesc => ("OFPPortDescStatsRequest", json!({})),
        MultipartRequest::Experimenter {
            experimenter,
            exp_type,
            data,
        } => (
            "OFPExperimenterStatsRequest",
            json!({"data": base64(data), "exp_type": exp_type, "experimenter": experimenter}),
        ),
    };
    (n, with(v, &common))
}

/// Ryu's class name and JSON for a multipart reply.
pub(crate) fn reply_json(flags: u16, body: &MultipartReply) -> (&'static str, Value) {
    let common = [
        ("flags", json!(flags)),
        ("type", json!(mp_reply_type(body))),
    ];
    let (n, b) = match body {
            MultipartReply::Desc { mfr_desc, hw_desc, sw_desc, serial_num, dp_desc } => (
                "OFPDescStatsReply",
                json!({"OFPDescStats": {"dp_desc": c_str(dp_desc), "hw_desc": c_str(hw_desc), "mfr_desc": c_str(mfr_desc),
                    "serial_num": c_str(serial_num), "sw_desc": c_str(sw_desc)}}),
            ),
            MultipartReply::Flow(v) => (
                "OFPFlowStatsReply",
                Value::Array(
                    v.iter()
                        .map(|f| {
                            json!({"OFPFlowStats": {"byte_count": f.byte_count, "cookie": f.cookie,
                                "duration_nsec": f.duration_nsec, "duration_sec": f.duration_sec, "flags": f.flags,
                                "hard_timeout": f.hard_timeout, "idle_timeout": f.idle_timeout,
                                "instructions": f.instructions.iter().map(Instruction::to_ryu_json).collect::<Vec<_>>(),
                                "length": f.wire_len(), "match": f.match_.to_ryu_json(), "packet_count": f.packet_count,
                                "priority": f.priority, "table_id": f.table_id}})
                        })
                        .collect(),
                ),
            ),
            MultipartReply::Aggregate { packet_count, byte_count, flow_count } => (
                "OFPAggregateStatsReply",
                json!({"OFPAggregateStats": {"byte_count": byte_count, "flow_count": flow_count, "packet_count": packet_count}}),
            ),
            MultipartReply::Table(v) => (
                "OFPTableStatsReply",
                Value::Array(
                    v.iter()
                        .map(|t| json!({"OFPTableStats": {"active_count": t.active_count, "lookup_count": t.lookup_count,
                            "matched_count": t.matched_count, "table_id": t.table_id}}))
                        .collect(),
                ),
            ),
            MultipartReply::PortStats(v) => (
                "OFPPortStatsReply",
                Value::Array(
                    v.iter()
                        .map(|s| {
                            let mut m = Map::new();
                            for (k, c) in PORT_STATS_COUNTERS.iter().zip(s.counters) {
                                m.insert(k.to_string(), json!(c));
                            }
                            m.insert("port_no".into(), json!(s.port_no));
                            m.insert("duration_sec".into(), json!(s.duration_sec));
                            m.insert("duration_nsec".into(), json!(s.duration_nsec));
                            json!({ "OFPPortStats": m })
                        })
                        .collect(),
                ),
            ),
            MultipartReply::Group(v) => (
                "OFPGroupStatsReply",
                Value::Array(
                    v.iter()
                        .map(|g| {
                            let bs: Vec<Value> = g
                                .bucket_stats
                                .iter()
                                .map(|(p, b)| json!({"OFPBucketCounter": {"byte_count": b, "packet_count": p}}))
                                .collect();
                            json!({"OFPGroupStats": {"bucket_stats": bs, "byte_count": g.byte_count,
                                "duration_nsec": g.duration_nsec, "duration_sec": g.duration_sec, "group_id": g.group_id,
                                "length": 40 + 16 * g.bucket_stats.len(), "packet_count": g.packet_count,
                                "ref_count": g.ref_count}})
                        })
                        .collect(),
                ),
            ),
            MultipartReply::GroupDesc(v) => (
                "OFPGroupDescStatsReply",
                Value::Array(
                    v.iter()
                        .map(|g| {
                            json!({"OFPGroupDescStats": {"buckets": g.buckets.iter().map(Bucket::to_ryu_json).collect::<Vec<_>>(),
                                "group_id": g.group_id, "length": g.wire_len(), "type": g.type_}})
                        })
                        .collect(),
                ),
            ),
            MultipartReply::TableFeatures(t) => ("OFPTableFeaturesStatsReply", table_features_json(t)),
            MultipartReply::PortDesc(v) => {
                ("OFPPortDescStatsReply", Value::Array(v.iter().map(Port::to_ryu_json).collect()))
            }
            MultipartReply::Experimenter { experimenter, exp_type, data } => (
                "OFPExperimenterStatsReply",
                json!({"OFPExperimenterMultipart": {"data": base64(data), "exp_type": exp_type, "experimenter": experimenter}}),
            ),
        };
    (n, with(json!({ "body": b }), &common))
}
