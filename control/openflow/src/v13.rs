//! OpenFlow 1.3 messages on the wire: typed parse/emit for what a switch's controller channel
//! needs, and `Other` (raw, re-emitted exactly) for every other message type.
//!
//! Contract: [`Message::parse`] takes exactly one whole message (header length == bytes), never
//! panics, and checks every inner length (match, OXM, actions, instructions, buckets, multipart
//! bodies, table-feature properties) against the bytes and its enclosing length
//! ([`OfError::Truncated`] / [`OfError::BadLength`]). `emit(parse(b)) == b` for every message it
//! accepts: padding is emitted as zeros, and any action / instruction / property / OXM field that
//! would not re-emit byte-for-byte from its typed form (unknown type, odd length, non-zero padding)
//! is kept raw. [`Message::to_ryu_json`] renders typed messages in the JSON shape of Ryu's
//! `ofproto_v1_3_parser` (`{"OFPClassName": {...}}`) for comparison with Ryu's test vectors.

pub use super::{base64, c_str, mac_str};
use super::{Header, OfError, Reader, HEADER_LEN, OFP13};
use serde_json::{json, Map, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Message type numbers (`ofp_type`).
pub mod msg_type {
    #![allow(missing_docs)]
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const GROUP_MOD: u8 = 15;
    pub const PORT_MOD: u8 = 16;
    pub const TABLE_MOD: u8 = 17;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    pub const QUEUE_GET_CONFIG_REQUEST: u8 = 22;
    pub const QUEUE_GET_CONFIG_REPLY: u8 = 23;
    pub const ROLE_REQUEST: u8 = 24;
    pub const ROLE_REPLY: u8 = 25;
    pub const GET_ASYNC_REQUEST: u8 = 26;
    pub const GET_ASYNC_REPLY: u8 = 27;
    pub const SET_ASYNC: u8 = 28;
    pub const METER_MOD: u8 = 29;
}

/// Multipart type numbers (`ofp_multipart_type`) that are typed here.
pub mod mp_type {
    #![allow(missing_docs)]
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT_STATS: u16 = 4;
    pub const GROUP: u16 = 6;
    pub const GROUP_DESC: u16 = 7;
    pub const TABLE_FEATURES: u16 = 12;
    pub const PORT_DESC: u16 = 13;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// The OXM class of the OpenFlow basic fields.
pub const OXM_CLASS_BASIC: u16 = 0x8000;

// ---------------------------------------------------------------------------------------------
// Writing helpers.

fn p8(o: &mut Vec<u8>, v: u8) {
    o.push(v);
}
fn p16(o: &mut Vec<u8>, v: u16) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn p32(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn p64(o: &mut Vec<u8>, v: u64) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn pad(o: &mut Vec<u8>, n: usize) {
    o.resize(o.len() + n, 0);
}
fn pad8(len: usize) -> usize {
    (8 - len % 8) % 8
}
/// Writes a u16 length at `at` (lengths are checked to fit by construction; saturate if not).
fn put_len16(o: &mut [u8], at: usize, len: usize) {
    let v = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(s) = o.get_mut(at..at + 2) {
        s.copy_from_slice(&v);
    }
}

/// Reads a `len`-prefixed element's length (at byte offset 2 or 0 of the element) and checks it.
fn elem_len(
    r: &Reader<'_>,
    b: &[u8],
    off: usize,
    min: usize,
    what: &'static str,
) -> Result<usize, OfError> {
    let p = r.pos() + off;
    let l = b.get(p..p + 2).ok_or(OfError::Truncated {
        what,
        need: min,
        have: r.remaining(),
    })?;
    let l = u16::from_be_bytes([l[0], l[1]]) as usize;
    if l < min {
        return Err(OfError::BadLength { what, length: l });
    }
    if l > r.remaining() {
        return Err(OfError::Truncated {
            what,
            need: l,
            have: r.remaining(),
        });
    }
    Ok(l)
}

// ---------------------------------------------------------------------------------------------
// OXM.

/// How an OXM basic field's value is shown (and its width in bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OxmKind {
    /// An unsigned integer of this many bytes.
    Int(u8),
    /// A MAC address (6 bytes).
    Mac,
    /// An IPv4 address (4 bytes).
    Ipv4,
    /// An IPv6 address (16 bytes).
    Ipv6,
}

impl OxmKind {
    /// Width on the wire, in bytes.
    pub fn width(self) -> usize {
        match self {
            OxmKind::Int(n) => n as usize,
            OxmKind::Mac => 6,
            OxmKind::Ipv4 => 4,
            OxmKind::Ipv6 => 16,
        }
    }
}

macro_rules! oxm_fields {
    ($($v:ident = $n:literal, $name:literal, $kind:expr;)*) => {
        /// Every OpenFlow 1.3 basic-class OXM field (`ofp_oxm_ofb_match_fields`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum OxmField { $($v),* }
        impl OxmField {
            /// All fields, in wire-number order.
            pub const ALL: &'static [OxmField] = &[$(OxmField::$v),*];
            /// The field with this wire number.
            pub fn from_u8(n: u8) -> Option<OxmField> {
                match n { $($n => Some(OxmField::$v),)* _ => None }
            }
            /// The wire number.
            pub fn number(self) -> u8 {
                match self { $(OxmField::$v => $n),* }
            }
            /// Ryu's name for the field (`eth_dst`, `ipv4_src`, ...).
            pub fn name(self) -> &'static str {
                match self { $(OxmField::$v => $name),* }
            }
            /// The field with Ryu's name `s`.
            pub fn by_name(s: &str) -> Option<OxmField> {
                match s { $($name => Some(OxmField::$v),)* _ => None }
            }
            /// Value kind and width.
            pub fn kind(self) -> OxmKind {
                match self { $(OxmField::$v => $kind),* }
            }
        }
    };
}

use OxmKind::{Int, Ipv4, Ipv6, Mac};
oxm_fields! {
    InPort = 0, "in_port", Int(4);
    InPhyPort = 1, "in_phy_port", Int(4);
    Metadata = 2, "metadata", Int(8);
    EthDst = 3, "eth_dst", Mac;
    EthSrc = 4, "eth_src", Mac;
    EthType = 5, "eth_type", Int(2);
    VlanVid = 6, "vlan_vid", Int(2);
    VlanPcp = 7, "vlan_pcp", Int(1);
    IpDscp = 8, "ip_dscp", Int(1);
    IpEcn = 9, "ip_ecn", Int(1);
    IpProto = 10, "ip_proto", Int(1);
    Ipv4Src = 11, "ipv4_src", Ipv4;
    Ipv4Dst = 12, "ipv4_dst", Ipv4;
    TcpSrc = 13, "tcp_src", Int(2);
    TcpDst = 14, "tcp_dst", Int(2);
    UdpSrc = 15, "udp_src", Int(2);
    UdpDst = 16, "udp_dst", Int(2);
    SctpSrc = 17, "sctp_src", Int(2);
    SctpDst = 18, "sctp_dst", Int(2);
    Icmpv4Type = 19, "icmpv4_type", Int(1);
    Icmpv4Code = 20, "icmpv4_code", Int(1);
    ArpOp = 21, "arp_op", Int(2);
    ArpSpa = 22, "arp_spa", Ipv4;
    ArpTpa = 23, "arp_tpa", Ipv4;
    ArpSha = 24, "arp_sha", Mac;
    ArpTha = 25, "arp_tha", Mac;
    Ipv6Src = 26, "ipv6_src", Ipv6;
    Ipv6Dst = 27, "ipv6_dst", Ipv6;
    Ipv6Flabel = 28, "ipv6_flabel", Int(4);
    Icmpv6Type = 29, "icmpv6_type", Int(1);
    Icmpv6Code = 30, "icmpv6_code", Int(1);
    Ipv6NdTarget = 31, "ipv6_nd_target", Ipv6;
    Ipv6NdSll = 32, "ipv6_nd_sll", Mac;
    Ipv6NdTll = 33, "ipv6_nd_tll", Mac;
    MplsLabel = 34, "mpls_label", Int(4);
    MplsTc = 35, "mpls_tc", Int(1);
    MplsBos = 36, "mpls_bos", Int(1);
    PbbIsid = 37, "pbb_isid", Int(3);
    TunnelId = 38, "tunnel_id", Int(8);
    Ipv6Exthdr = 39, "ipv6_exthdr", Int(2);
}

/// One OXM TLV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Oxm {
    /// An OpenFlow basic field; value and mask are the big-endian wire bytes as an integer
    /// (a MAC in the low 48 bits, an IPv6 address in all 128).
    Basic {
        /// The field.
        field: OxmField,
        /// The value.
        value: u128,
        /// The mask, if the TLV has one.
        mask: Option<u128>,
    },
    /// Any other class (Nicira, experimenter, ...) or a basic TLV with an unexpected length.
    Raw {
        /// OXM class.
        class: u16,
        /// Field number (7 bits).
        field: u8,
        /// The has-mask bit.
        hasmask: bool,
        /// Everything after the 4-byte header (value, mask, experimenter id).
        payload: Vec<u8>,
    },
}

fn be_uint(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |a, &x| (a << 8) | x as u128)
}
fn put_uint(o: &mut Vec<u8>, v: u128, width: usize) {
    let bytes = v.to_be_bytes();
    o.extend_from_slice(&bytes[16 - width.min(16)..]);
}

impl Oxm {
    /// An unmasked basic field.
    pub fn basic(field: OxmField, value: u128) -> Oxm {
        Oxm::Basic {
            field,
            value,
            mask: None,
        }
    }

    fn parse(r: &mut Reader<'_>) -> Result<Oxm, OfError> {
        let h = r.u32("OXM header")?;
        let class = (h >> 16) as u16;
        let field = ((h >> 9) & 0x7f) as u8;
        let hasmask = (h >> 8) & 1 == 1;
        let len = (h & 0xff) as usize;
        let payload = r.bytes(len, "OXM value")?;
        if class == OXM_CLASS_BASIC {
            if let Some(f) = OxmField::from_u8(field) {
                let w = f.kind().width();
                if len == w * (1 + hasmask as usize) {
                    let value = be_uint(&payload[..w]);
                    let mask = hasmask.then(|| be_uint(&payload[w..]));
                    return Ok(Oxm::Basic {
                        field: f,
                        value,
                        mask,
                    });
                }
            }
        }
        Ok(Oxm::Raw {
            class,
            field,
            hasmask,
            payload: payload.to_vec(),
        })
    }

    fn emit(&self, o: &mut Vec<u8>) {
        match self {
            Oxm::Basic { field, value, mask } => {
                let w = field.kind().width();
                let len = w * (1 + mask.is_some() as usize);
                let h = (OXM_CLASS_BASIC as u32) << 16
                    | (field.number() as u32) << 9
                    | (mask.is_some() as u32) << 8
                    | len as u32;
                p32(o, h);
                put_uint(o, *value, w);
                if let Some(m) = mask {
                    put_uint(o, *m, w);
                }
            }
            Oxm::Raw {
                class,
                field,
                hasmask,
                payload,
            } => {
                let h = (*class as u32) << 16
                    | ((*field & 0x7f) as u32) << 9
                    | (*hasmask as u32) << 8
                    | (payload.len().min(255) as u32);
                p32(o, h);
                o.extend_from_slice(&payload[..payload.len().min(255)]);
            }
        }
    }

    /// Ryu's `{"OXMTlv": {"field", "mask", "value"}}`. Raw TLVs show as field
    /// `"oxm_class_<class>_field_<n>"` with the payload as a byte list.
    pub fn to_ryu_json(&self) -> Value {
        match self {
            Oxm::Basic { field, value, mask } => {
                let show = |v: u128| -> Value {
                    match field.kind() {
                        Int(_) => {
                            if let Ok(x) = u64::try_from(v) {
                                json!(x)
                            } else {
                                json!(v.to_string())
                            }
                        }
                        Mac => Value::String(mac_str(&v.to_be_bytes()[10..16])),
                        Ipv4 => Value::String(Ipv4Addr::from(v as u32).to_string()),
                        Ipv6 => Value::String(Ipv6Addr::from(v).to_string()),
                    }
                };
                json!({"OXMTlv": {"field": field.name(), "mask": mask.map(show), "value": show(*value)}})
            }
            Oxm::Raw {
                class,
                field,
                hasmask,
                payload,
            } => json!({"OXMTlv": {
                "field": format!("oxm_class_{class:#06x}_field_{field}"),
                "mask": if *hasmask { json!(true) } else { Value::Null },
                "value": payload,
            }}),
        }
    }
}

/// An `ofp_match` of type OXM (1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Match {
    /// The OXM TLVs, in wire order.
    pub fields: Vec<Oxm>,
}

impl Match {
    fn parse(r: &mut Reader<'_>) -> Result<Match, OfError> {
        let t = r.u16("match type")?;
        let len = r.u16("match length")? as usize;
        if t != 1 {
            return Err(OfError::Unknown {
                what: "match type",
                value: t as u32,
            });
        }
        if len < 4 {
            return Err(OfError::BadLength {
                what: "match",
                length: len,
            });
        }
        let body = r.bytes(len - 4, "match fields")?;
        let p = r.bytes(pad8(len), "match padding")?;
        if p.iter().any(|&x| x != 0) {
            return Err(OfError::NonZeroPadding {
                what: "match padding",
            });
        }
        let mut rr = Reader::new(body);
        let mut fields = Vec::new();
        while rr.remaining() > 0 {
            fields.push(Oxm::parse(&mut rr)?);
        }
        Ok(Match { fields })
    }

    fn emit(&self, o: &mut Vec<u8>) {
        let start = o.len();
        p16(o, 1);
        p16(o, 0);
        for f in &self.fields {
            f.emit(o);
        }
        let len = o.len() - start;
        put_len16(o, start + 2, len);
        pad(o, pad8(len));
    }

    fn wire_len(&self) -> usize {
        let mut v = Vec::new();
        self.emit(&mut v);
        u16::from_be_bytes([v[2], v[3]]) as usize
    }

    /// Ryu's `{"OFPMatch": {"length", "oxm_fields", "type"}}`.
    pub fn to_ryu_json(&self) -> Value {
        let f: Vec<Value> = self.fields.iter().map(Oxm::to_ryu_json).collect();
        json!({"OFPMatch": {"length": self.wire_len(), "oxm_fields": f, "type": 1}})
    }
}

// ---------------------------------------------------------------------------------------------
// Actions and instructions.

/// One action (`ofp_action_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// OFPAT_OUTPUT.
    Output {
        /// Output port.
        port: u32,
        /// Bytes to send to the controller.
        max_len: u16,
    },
    /// OFPAT_COPY_TTL_OUT.
    CopyTtlOut,
    /// OFPAT_COPY_TTL_IN.
    CopyTtlIn,
    /// OFPAT_SET_MPLS_TTL.
    SetMplsTtl(u8),
    /// OFPAT_DEC_MPLS_TTL.
    DecMplsTtl,
    /// OFPAT_PUSH_VLAN (ethertype).
    PushVlan(u16),
    /// OFPAT_POP_VLAN.
    PopVlan,
    /// OFPAT_PUSH_MPLS (ethertype).
    PushMpls(u16),
    /// OFPAT_POP_MPLS (ethertype).
    PopMpls(u16),
    /// OFPAT_SET_QUEUE (queue id).
    SetQueue(u32),
    /// OFPAT_GROUP (group id).
    Group(u32),
    /// OFPAT_SET_NW_TTL.
    SetNwTtl(u8),
    /// OFPAT_DEC_NW_TTL.
    DecNwTtl,
    /// OFPAT_SET_FIELD.
    SetField(Oxm),
    /// OFPAT_PUSH_PBB (ethertype).
    PushPbb(u16),
    /// OFPAT_POP_PBB.
    PopPbb,
    /// OFPAT_EXPERIMENTER (Nicira etc.), body kept raw.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Everything after the experimenter id (subtype, fields, padding).
        data: Vec<u8>,
    },
    /// Any other action, or one whose bytes do not re-emit exactly from its typed form.
    Unknown {
        /// Action type.
        type_: u16,
        /// Everything after type and length.
        body: Vec<u8>,
    },
}

impl Action {
    fn type_(&self) -> u16 {
        match self {
            Action::Output { .. } => 0,
            Action::CopyTtlOut => 11,
            Action::CopyTtlIn => 12,
            Action::SetMplsTtl(_) => 15,
            Action::DecMplsTtl => 16,
            Action::PushVlan(_) => 17,
            Action::PopVlan => 18,
            Action::PushMpls(_) => 19,
            Action::PopMpls(_) => 20,
            Action::SetQueue(_) => 21,
            Action::Group(_) => 22,
            Action::SetNwTtl(_) => 23,
            Action::DecNwTtl => 24,
            Action::SetField(_) => 25,
            Action::PushPbb(_) => 26,
            Action::PopPbb => 27,
            Action::Experimenter { .. } => 0xffff,
            Action::Unknown { type_, .. } => *type_,
        }
    }

    fn typed(type_: u16, body: &[u8]) -> Result<Action, OfError> {
        let mut r = Reader::new(body);
        Ok(match type_ {
            0 => Action::Output {
                port: r.u32("output port")?,
                max_len: r.u16("output max_len")?,
            },
            11 => Action::CopyTtlOut,
            12 => Action::CopyTtlIn,
            15 => Action::SetMplsTtl(r.u8("mpls ttl")?),
            16 => Action::DecMplsTtl,
            17 => Action::PushVlan(r.u16("ethertype")?),
            18 => Action::PopVlan,
            19 => Action::PushMpls(r.u16("ethertype")?),
            20 => Action::PopMpls(r.u16("ethertype")?),
            21 => Action::SetQueue(r.u32("queue id")?),
            22 => Action::Group(r.u32("group id")?),
            23 => Action::SetNwTtl(r.u8("nw ttl")?),
            24 => Action::DecNwTtl,
            25 => Action::SetField(Oxm::parse(&mut r)?),
            26 => Action::PushPbb(r.u16("ethertype")?),
            27 => Action::PopPbb,
            0xffff => Action::Experimenter {
                experimenter: r.u32("experimenter")?,
                data: r.rest().to_vec(),
            },
            t => {
                return Err(OfError::Unknown {
                    what: "action",
                    value: t as u32,
                })
            }
        })
    }

    fn parse_list(b: &[u8]) -> Result<Vec<Action>, OfError> {
        let mut r = Reader::new(b);
        let mut v = Vec::new();
        while r.remaining() > 0 {
            let len = elem_len(&r, b, 2, 4, "action")?;
            let whole = r.bytes(len, "action")?;
            let type_ = u16::from_be_bytes([whole[0], whole[1]]);
            let body = &whole[4..];
            let a = match Action::typed(type_, body) {
                Ok(a) if a.emitted() == whole => a,
                _ => Action::Unknown {
                    type_,
                    body: body.to_vec(),
                },
            };
            v.push(a);
        }
        Ok(v)
    }

    fn emitted(&self) -> Vec<u8> {
        let mut o = Vec::new();
        self.emit(&mut o);
        o
    }

    fn emit(&self, o: &mut Vec<u8>) {
        let start = o.len();
        p16(o, self.type_());
        p16(o, 0);
        match self {
            Action::Output { port, max_len } => {
                p32(o, *port);
                p16(o, *max_len);
                pad(o, 6);
            }
            Action::SetMplsTtl(t) | Action::SetNwTtl(t) => {
                p8(o, *t);
                pad(o, 3);
            }
            Action::PushVlan(e) | Action::PushMpls(e) | Action::PopMpls(e) | Action::PushPbb(e) => {
                p16(o, *e);
                pad(o, 2);
            }
            Action::SetQueue(x) | Action::Group(x) => p32(o, *x),
            Action::SetField(f) => {
                f.emit(o);
                let l = o.len() - start;
                pad(o, pad8(l));
            }
            Action::Experimenter { experimenter, data } => {
                p32(o, *experimenter);
                o.extend_from_slice(data);
            }
            Action::Unknown { body, .. } => o.extend_from_slice(body),
            _ => pad(o, 4),
        }
        let len = o.len() - start;
        put_len16(o, start + 2, len);
    }

    /// Ryu's JSON for the action (`OFPActionOutput`, `OFPActionSetField`, ...); experimenter and
    /// unknown actions show as `OFPActionExperimenterUnknown` / `OFPActionUnknown` with raw data.
    pub fn to_ryu_json(&self) -> Value {
        let len = self.emitted().len();
        let t = self.type_();
        let (name, mut m) = match self {
            Action::Output { port, max_len } => {
                ("OFPActionOutput", json!({"port": port, "max_len": max_len}))
            }
            Action::CopyTtlOut => ("OFPActionCopyTtlOut", json!({})),
            Action::CopyTtlIn => ("OFPActionCopyTtlIn", json!({})),
            Action::SetMplsTtl(x) => ("OFPActionSetMplsTtl", json!({"mpls_ttl": x})),
            Action::DecMplsTtl => ("OFPActionDecMplsTtl", json!({})),
            Action::PushVlan(e) => ("OFPActionPushVlan", json!({"ethertype": e})),
            Action::PopVlan => ("OFPActionPopVlan", json!({})),
            Action::PushMpls(e) => ("OFPActionPushMpls", json!({"ethertype": e})),
            Action::PopMpls(e) => ("OFPActionPopMpls", json!({"ethertype": e})),
            Action::SetQueue(q) => ("OFPActionSetQueue", json!({"queue_id": q})),
            Action::Group(g) => ("OFPActionGroup", json!({"group_id": g})),
            Action::SetNwTtl(x) => ("OFPActionSetNwTtl", json!({"nw_ttl": x})),
            Action::DecNwTtl => ("OFPActionDecNwTtl", json!({})),
            Action::SetField(f) => ("OFPActionSetField", json!({"field": f.to_ryu_json()})),
            Action::PushPbb(e) => ("OFPActionPushPbb", json!({"ethertype": e})),
            Action::PopPbb => ("OFPActionPopPbb", json!({})),
            Action::Experimenter { experimenter, data } => (
                "OFPActionExperimenterUnknown",
                json!({"experimenter": experimenter, "data": base64(data)}),
            ),
            Action::Unknown { body, .. } => ("OFPActionUnknown", json!({"buf": base64(body)})),
        };
        m["len"] = json!(len);
        m["type"] = json!(t);
        json!({ name: m })
    }
}

fn emit_actions(o: &mut Vec<u8>, a: &[Action]) {
    for x in a {
        x.emit(o);
    }
}
fn actions_json(a: &[Action]) -> Value {
    Value::Array(a.iter().map(Action::to_ryu_json).collect())
}

/// One instruction (`ofp_instruction_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instruction {
    /// OFPIT_GOTO_TABLE.
    GotoTable(u8),
    /// OFPIT_WRITE_METADATA.
    WriteMetadata {
        /// Value.
        metadata: u64,
        /// Mask.
        mask: u64,
    },
    /// OFPIT_WRITE_ACTIONS.
    WriteActions(Vec<Action>),
    /// OFPIT_APPLY_ACTIONS.
    ApplyActions(Vec<Action>),
    /// OFPIT_CLEAR_ACTIONS.
    ClearActions,
    /// OFPIT_METER (meter id).
    Meter(u32),
    /// Experimenter or unknown instruction, or one that does not re-emit exactly when typed.
    Unknown {
        /// Instruction type.
        type_: u16,
        /// Everything after type and length.
        body: Vec<u8>,
    },
}

impl Instruction {
    fn type_(&self) -> u16 {
        match self {
            Instruction::GotoTable(_) => 1,
            Instruction::WriteMetadata { .. } => 2,
            Instruction::WriteActions(_) => 3,
            Instruction::ApplyActions(_) => 4,
            Instruction::ClearActions => 5,
            Instruction::Meter(_) => 6,
            Instruction::Unknown { type_, .. } => *type_,
        }
    }

    fn typed(type_: u16, body: &[u8]) -> Result<Instruction, OfError> {
        let mut r = Reader::new(body);
        Ok(match type_ {
            1 => Instruction::GotoTable(r.u8("goto table id")?),
            2 => {
                r.skip(4, "write_metadata padding")?;
                Instruction::WriteMetadata {
                    metadata: r.u64("metadata")?,
                    mask: r.u64("metadata mask")?,
                }
            }
            3 | 4 => {
                r.skip(4, "instruction padding")?;
                let a = Action::parse_list(r.rest())?;
                if type_ == 3 {
                    Instruction::WriteActions(a)
                } else {
                    Instruction::ApplyActions(a)
                }
            }
            5 => Instruction::ClearActions,
            6 => Instruction::Meter(r.u32("meter id")?),
            t => {
                return Err(OfError::Unknown {
                    what: "instruction",
                    value: t as u32,
                })
            }
        })
    }

    fn parse_list(b: &[u8]) -> Result<Vec<Instruction>, OfError> {
        let mut r = Reader::new(b);
        let mut v = Vec::new();
        while r.remaining() > 0 {
            let len = elem_len(&r, b, 2, 4, "instruction")?;
            let whole = r.bytes(len, "instruction")?;
            let type_ = u16::from_be_bytes([whole[0], whole[1]]);
            let body = &whole[4..];
            let i = match Instruction::typed(type_, body) {
                Ok(i) if i.emitted() == whole => i,
                // An action list with a bad inner length is an error, not something to keep raw.
                Err(e @ (OfError::BadLength { .. } | OfError::Truncated { .. }))
                    if matches!(type_, 3 | 4) =>
                {
                    return Err(e)
                }
                _ => Instruction::Unknown {
                    type_,
                    body: body.to_vec(),
                },
            };
            v.push(i);
        }
        Ok(v)
    }

    fn emitted(&self) -> Vec<u8> {
        let mut o = Vec::new();
        self.emit(&mut o);
        o
    }

    fn emit(&self, o: &mut Vec<u8>) {
        let start = o.len();
        p16(o, self.type_());
        p16(o, 0);
        match self {
            Instruction::GotoTable(t) => {
                p8(o, *t);
                pad(o, 3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                pad(o, 4);
                p64(o, *metadata);
                p64(o, *mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                pad(o, 4);
                emit_actions(o, a);
            }
            Instruction::ClearActions => pad(o, 4),
            Instruction::Meter(m) => p32(o, *m),
            Instruction::Unknown { body, .. } => o.extend_from_slice(body),
        }
        let len = o.len() - start;
        put_len16(o, start + 2, len);
    }

    /// Ryu's JSON for the instruction.
    pub fn to_ryu_json(&self) -> Value {
        let len = self.emitted().len();
        let t = self.type_();
        let (name, mut m) = match self {
            Instruction::GotoTable(x) => ("OFPInstructionGotoTable", json!({"table_id": x})),
            Instruction::WriteMetadata { metadata, mask } => (
                "OFPInstructionWriteMetadata",
                json!({"metadata": metadata, "metadata_mask": mask}),
            ),
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                ("OFPInstructionActions", json!({"actions": actions_json(a)}))
            }
            Instruction::ClearActions => ("OFPInstructionActions", json!({"actions": []})),
            Instruction::Meter(x) => ("OFPInstructionMeter", json!({"meter_id": x})),
            Instruction::Unknown { body, .. } => {
                ("OFPInstructionUnknown", json!({"buf": base64(body)}))
            }
        };
        m["len"] = json!(len);
        m["type"] = json!(t);
        json!({ name: m })
    }
}

/// A group bucket (`ofp_bucket`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Weight (select groups).
    pub weight: u16,
    /// Port whose liveness decides (fast failover).
    pub watch_port: u32,
    /// Group whose liveness decides (fast failover).
    pub watch_group: u32,
    /// Actions.
    pub actions: Vec<Action>,
}

impl Bucket {
    fn parse_list(b: &[u8]) -> Result<Vec<Bucket>, OfError> {
        let mut r = Reader::new(b);
        let mut v = Vec::new();
        while r.remaining() > 0 {
            let len = elem_len(&r, b, 0, 16, "bucket")?;
            let mut br = Reader::new(r.bytes(len, "bucket")?);
            br.skip(2, "bucket length")?;
            let weight = br.u16("bucket weight")?;
            let watch_port = br.u32("watch port")?;
            let watch_group = br.u32("watch group")?;
            let p = br.bytes(4, "bucket padding")?;
            if p != [0; 4] {
                return Err(OfError::NonZeroPadding {
                    what: "bucket padding",
                });
            }
            v.push(Bucket {
                weight,
                watch_port,
                watch_group,
                actions: Action::parse_list(br.rest())?,
            });
        }
        Ok(v)
    }

    fn emit(&self, o: &mut Vec<u8>) {
        let start = o.len();
        p16(o, 0);
        p16(o, self.weight);
        p32(o, self.watch_port);
        p32(o, self.watch_group);
        pad(o, 4);
        emit_actions(o, &self.actions);
        let len = o.len() - start;
        put_len16(o, start, len);
    }

    /// Ryu's `{"OFPBucket": {...}}`.
    pub fn to_ryu_json(&self) -> Value {
        let mut v = Vec::new();
        self.emit(&mut v);
        json!({"OFPBucket": {"actions": actions_json(&self.actions), "len": v.len(), "watch_group": self.watch_group,
            "watch_port": self.watch_port, "weight": self.weight}})
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed structures.

/// A port description (`ofp_port`, 64 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Port number.
    pub port_no: u32,
    /// MAC address.
    pub hw_addr: [u8; 6],
    /// Name, NUL-padded as on the wire.
    pub name: [u8; 16],
    /// OFPPC_* bits.
    pub config: u32,
    /// OFPPS_* bits.
    pub state: u32,
    /// Current features.
    pub curr: u32,
    /// Advertised features.
    pub advertised: u32,
    /// Supported features.
    pub supported: u32,
    /// Peer's features.
    pub peer: u32,
    /// Current speed, kbps.
    pub curr_speed: u32,
    /// Maximum speed, kbps.
    pub max_speed: u32,
}

impl Port {
    /// Wire size.
    pub const LEN: usize = 64;
    fn parse(r: &mut Reader<'_>) -> Result<Port, OfError> {
        let port_no = r.u32("port_no")?;
        r.zero_pad(4, "port padding")?;
        let hw_addr = r.array("hw_addr")?;
        r.zero_pad(2, "port padding")?;
        Ok(Port {
            port_no,
            hw_addr,
            name: r.array("port name")?,
            config: r.u32("port config")?,
            state: r.u32("port state")?,
            curr: r.u32("curr")?,
            advertised: r.u32("advertised")?,
            supported: r.u32("supported")?,
            peer: r.u32("peer")?,
            curr_speed: r.u32("curr_speed")?,
            max_speed: r.u32("max_speed")?,
        })
    }
    fn emit(&self, o: &mut Vec<u8>) {
        p32(o, self.port_no);
        pad(o, 4);
        o.extend_from_slice(&self.hw_addr);
        pad(o, 2);
        o.extend_from_slice(&self.name);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            p32(o, v);
        }
    }
    /// Ryu's `{"OFPPort": {...}}`.
    pub fn to_ryu_json(&self) -> Value {
        json!({"OFPPort": {"advertised": self.advertised, "config": self.config, "curr": self.curr,
            "curr_speed": self.curr_speed, "hw_addr": mac_str(&self.hw_addr), "max_speed": self.max_speed,
            "name": c_str(&self.name), "peer": self.peer, "port_no": self.port_no, "state": self.state,
            "supported": self.supported}})
    }
}

/// FEATURES_REPLY body (`ofp_switch_features`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchFeatures {
    /// Datapath id.
    pub datapath_id: u64,
    /// Packets the switch can buffer.
    pub n_buffers: u32,
    /// Number of tables.
    pub n_tables: u8,
    /// Auxiliary connection id.
    pub auxiliary_id: u8,
    /// OFPC_* bits.
    pub capabilities: u32,
    /// Reserved word (kept for byte-exactness).
    pub reserved: u32,
}

/// GET_CONFIG_REPLY / SET_CONFIG body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// OFPC_FRAG_* flags.
    pub flags: u16,
    /// Bytes of a table-miss packet sent to the controller.
    pub miss_send_len: u16,
}

/// An ERROR message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorMsg {
    /// A standard error.
    Standard {
        /// OFPET_*.
        type_: u16,
        /// Code within the type.
        code: u16,
        /// Usually the start of the offending message.
        data: Vec<u8>,
    },
    /// OFPET_EXPERIMENTER (type 0xffff).
    Experimenter {
        /// Experimenter-defined type.
        exp_type: u16,
        /// Experimenter id.
        experimenter: u32,
        /// Data.
        data: Vec<u8>,
    },
}

/// A hello element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelloElem {
    /// OFPHET_VERSIONBITMAP: bitmaps of supported versions (bit n of word i = version 32*i+n).
    VersionBitmap(Vec<u32>),
    /// Any other element (or a bitmap whose length is not a multiple of 4).
    Unknown {
        /// Element type.
        type_: u16,
        /// Body after type and length (without the 8-byte alignment padding).
        body: Vec<u8>,
    },
}

/// A FLOW_MOD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowMod {
    /// Cookie.
    pub cookie: u64,
    /// Cookie mask (modify/delete).
    pub cookie_mask: u64,
    /// Table id.
    pub table_id: u8,
    /// OFPFC_* (add, modify, modify_strict, delete, delete_strict).
    pub command: u8,
    /// Idle timeout, seconds.
    pub idle_timeout: u16,
    /// Hard timeout, seconds.
    pub hard_timeout: u16,
    /// Priority.
    pub priority: u16,
    /// Buffered packet to apply to, or OFP_NO_BUFFER.
    pub buffer_id: u32,
    /// Delete filter: output port.
    pub out_port: u32,
    /// Delete filter: output group.
    pub out_group: u32,
    /// OFPFF_* flags.
    pub flags: u16,
    /// Match.
    pub match_: Match,
    /// Instructions.
    pub instructions: Vec<Instruction>,
}

/// A PACKET_IN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketIn {
    /// Buffer id or OFP_NO_BUFFER.
    pub buffer_id: u32,
    /// Full length of the frame.
    pub total_len: u16,
    /// OFPR_*.
    pub reason: u8,
    /// Table that was looked up.
    pub table_id: u8,
    /// Cookie of the flow entry.
    pub cookie: u64,
    /// Packet metadata.
    pub match_: Match,
    /// The frame (or its start).
    pub data: Vec<u8>,
}

/// A PACKET_OUT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketOut {
    /// Buffer id or OFP_NO_BUFFER.
    pub buffer_id: u32,
    /// Ingress port (or OFPP_CONTROLLER).
    pub in_port: u32,
    /// Actions.
    pub actions: Vec<Action>,
    /// The frame when `buffer_id` is OFP_NO_BUFFER.
    pub data: Vec<u8>,
}

/// A FLOW_REMOVED.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRemoved {
    /// Cookie.
    pub cookie: u64,
    /// Priority.
    pub priority: u16,
    /// OFPRR_*.
    pub reason: u8,
    /// Table id.
    pub table_id: u8,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// Idle timeout.
    pub idle_timeout: u16,
    /// Hard timeout.
    pub hard_timeout: u16,
    /// Packets.
    pub packet_count: u64,
    /// Bytes.
    pub byte_count: u64,
    /// Match.
    pub match_: Match,
}

/// A GROUP_MOD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMod {
    /// OFPGC_*.
    pub command: u16,
    /// OFPGT_*.
    pub type_: u8,
    /// Group id.
    pub group_id: u32,
    /// Buckets.
    pub buckets: Vec<Bucket>,
}

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

/// A table-feature property (`ofp_table_feature_prop_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableFeatureProp {
    /// INSTRUCTIONS(_MISS) (type 0/1) or *_ACTIONS(_MISS) (types 4..=7): (type, len) ids.
    Ids {
        /// Property type.
        type_: u16,
        /// (type, len) of each 4-byte id.
        ids: Vec<(u16, u16)>,
    },
    /// NEXT_TABLES(_MISS) (type 2/3).
    NextTables {
        /// Property type.
        type_: u16,
        /// Table ids.
        tables: Vec<u8>,
    },
    /// MATCH, WILDCARDS, (APPLY_)SETFIELD(_MISS), WRITE_SETFIELD(_MISS) (types 8..=15): OXM headers.
    Oxm {
        /// Property type.
        type_: u16,
        /// 32-bit OXM headers.
        oxm_ids: Vec<u32>,
    },
    /// EXPERIMENTER(_MISS) (0xfffe/0xffff).
    Experimenter {
        /// Property type.
        type_: u16,
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter type.
        exp_type: u32,
        /// Data words.
        data: Vec<u32>,
    },
    /// Anything else, or a property that does not re-emit exactly when typed.
    Raw {
        /// Property type.
        type_: u16,
        /// Body without type, length and alignment padding.
        body: Vec<u8>,
    },
}

/// One `ofp_table_features`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableFeatures {
    /// Table id.
    pub table_id: u8,
    /// Name, NUL-padded (32 bytes).
    pub name: [u8; 32],
    /// Metadata bits the table can match.
    pub metadata_match: u64,
    /// Metadata bits the table can write.
    pub metadata_write: u64,
    /// OFPTC_* bits.
    pub config: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// Properties.
    pub properties: Vec<TableFeatureProp>,
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

/// The body of a message, by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// HELLO.
    Hello(Vec<HelloElem>),
    /// ERROR.
    Error(ErrorMsg),
    /// ECHO_REQUEST with its data.
    EchoRequest(Vec<u8>),
    /// ECHO_REPLY with its data.
    EchoReply(Vec<u8>),
    /// EXPERIMENTER (symmetric message).
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter type.
        exp_type: u32,
        /// Data.
        data: Vec<u8>,
    },
    /// FEATURES_REQUEST.
    FeaturesRequest,
    /// FEATURES_REPLY.
    FeaturesReply(SwitchFeatures),
    /// GET_CONFIG_REQUEST.
    GetConfigRequest,
    /// GET_CONFIG_REPLY.
    GetConfigReply(SwitchConfig),
    /// SET_CONFIG.
    SetConfig(SwitchConfig),
    /// PACKET_IN.
    PacketIn(PacketIn),
    /// FLOW_REMOVED.
    FlowRemoved(FlowRemoved),
    /// PORT_STATUS (reason OFPPR_*, port).
    PortStatus {
        /// OFPPR_ADD / DELETE / MODIFY.
        reason: u8,
        /// The port.
        desc: Port,
    },
    /// PACKET_OUT.
    PacketOut(PacketOut),
    /// FLOW_MOD.
    FlowMod(FlowMod),
    /// GROUP_MOD.
    GroupMod(GroupMod),
    /// MULTIPART_REQUEST (flags OFPMPF_REQ_MORE).
    MultipartRequest {
        /// Flags.
        flags: u16,
        /// Body.
        body: MultipartRequest,
    },
    /// MULTIPART_REPLY (flags OFPMPF_REPLY_MORE).
    MultipartReply {
        /// Flags.
        flags: u16,
        /// Body.
        body: MultipartReply,
    },
    /// BARRIER_REQUEST.
    BarrierRequest,
    /// BARRIER_REPLY.
    BarrierReply,
    /// ROLE_REQUEST.
    RoleRequest {
        /// OFPCR_ROLE_*.
        role: u32,
        /// Generation id.
        generation_id: u64,
    },
    /// ROLE_REPLY.
    RoleReply {
        /// OFPCR_ROLE_*.
        role: u32,
        /// Generation id.
        generation_id: u64,
    },
    /// Any other message type (or multipart type), kept raw: `type_` and the bytes after the header.
    Other {
        /// Message type.
        type_: u8,
        /// Bytes after the header.
        body: Vec<u8>,
    },
}

/// An OpenFlow 1.3 message: transaction id and typed body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Transaction id.
    pub xid: u32,
    /// The body.
    pub body: Body,
}

// ---------------------------------------------------------------------------------------------
// Parsing and emitting bodies.

fn parse_hello(r: &mut Reader<'_>) -> Result<Vec<HelloElem>, OfError> {
    let mut v = Vec::new();
    while r.remaining() > 0 {
        let type_ = r.u16("hello element type")?;
        let len = r.u16("hello element length")? as usize;
        if len < 4 {
            return Err(OfError::BadLength {
                what: "hello element",
                length: len,
            });
        }
        let body = r.bytes(len - 4, "hello element")?;
        // The last element's alignment padding may be absent; anything present must be zero.
        let p = pad8(len).min(r.remaining());
        r.zero_pad(p, "hello element padding")?;
        if p != pad8(len) {
            return Err(OfError::Truncated {
                what: "hello element padding",
                need: pad8(len),
                have: p,
            });
        }
        v.push(if type_ == 1 && body.len().is_multiple_of(4) {
            HelloElem::VersionBitmap(
                body.chunks(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        } else {
            HelloElem::Unknown {
                type_,
                body: body.to_vec(),
            }
        });
    }
    Ok(v)
}

fn emit_hello(o: &mut Vec<u8>, els: &[HelloElem]) {
    for e in els {
        let start = o.len();
        match e {
            HelloElem::VersionBitmap(b) => {
                p16(o, 1);
                p16(o, 0);
                for w in b {
                    p32(o, *w);
                }
            }
            HelloElem::Unknown { type_, body } => {
                p16(o, *type_);
                p16(o, 0);
                o.extend_from_slice(body);
            }
        }
        let len = o.len() - start;
        put_len16(o, start + 2, len);
        pad(o, pad8(len));
    }
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

/// Splits a multipart body into length-prefixed records (u16 length at offset `off`).
fn records<'a>(
    b: &'a [u8],
    off: usize,
    min: usize,
    what: &'static str,
) -> Result<Vec<&'a [u8]>, OfError> {
    let mut r = Reader::new(b);
    let mut v = Vec::new();
    while r.remaining() > 0 {
        let len = elem_len(&r, b, off, min, what)?;
        v.push(r.bytes(len, what)?);
    }
    Ok(v)
}

fn parse_table_features(b: &[u8]) -> Result<Vec<TableFeatures>, OfError> {
    let mut v = Vec::new();
    for rec in records(b, 0, 64, "table features")? {
        let mut r = Reader::new(rec);
        r.skip(2, "table features length")?;
        let table_id = r.u8("table_id")?;
        r.zero_pad(5, "table features padding")?;
        let name = r.array("table name")?;
        let metadata_match = r.u64("metadata_match")?;
        let metadata_write = r.u64("metadata_write")?;
        let config = r.u32("table config")?;
        let max_entries = r.u32("max_entries")?;
        let mut properties = Vec::new();
        while r.remaining() > 0 {
            let type_ = r.u16("property type")?;
            let len = r.u16("property length")? as usize;
            if len < 4 {
                return Err(OfError::BadLength {
                    what: "table feature property",
                    length: len,
                });
            }
            let body = r.bytes(len - 4, "table feature property")?;
            r.zero_pad(pad8(len), "table feature property padding")?;
            let p = typed_prop(type_, body).filter(|p| prop_body(p) == body);
            properties.push(p.unwrap_or(TableFeatureProp::Raw {
                type_,
                body: body.to_vec(),
            }));
        }
        v.push(TableFeatures {
            table_id,
            name,
            metadata_match,
            metadata_write,
            config,
            max_entries,
            properties,
        });
    }
    Ok(v)
}

fn words(b: &[u8]) -> Option<Vec<u32>> {
    b.len().is_multiple_of(4).then(|| {
        b.chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

fn typed_prop(type_: u16, body: &[u8]) -> Option<TableFeatureProp> {
    Some(match type_ {
        0 | 1 | 4..=7 => {
            let w = words(body)?;
            TableFeatureProp::Ids {
                type_,
                ids: w.iter().map(|x| ((x >> 16) as u16, *x as u16)).collect(),
            }
        }
        2 | 3 => TableFeatureProp::NextTables {
            type_,
            tables: body.to_vec(),
        },
        8..=15 => TableFeatureProp::Oxm {
            type_,
            oxm_ids: words(body)?,
        },
        0xfffe | 0xffff => {
            let w = words(body)?;
            if w.len() < 2 {
                return None;
            }
            TableFeatureProp::Experimenter {
                type_,
                experimenter: w[0],
                exp_type: w[1],
                data: w[2..].to_vec(),
            }
        }
        _ => return None,
    })
}

fn prop_type(p: &TableFeatureProp) -> u16 {
    match p {
        TableFeatureProp::Ids { type_, .. }
        | TableFeatureProp::NextTables { type_, .. }
        | TableFeatureProp::Oxm { type_, .. }
        | TableFeatureProp::Experimenter { type_, .. }
        | TableFeatureProp::Raw { type_, .. } => *type_,
    }
}

fn prop_body(p: &TableFeatureProp) -> Vec<u8> {
    let mut o = Vec::new();
    match p {
        TableFeatureProp::Ids { ids, .. } => {
            for (t, l) in ids {
                p16(&mut o, *t);
                p16(&mut o, *l);
            }
        }
        TableFeatureProp::NextTables { tables, .. } => o.extend_from_slice(tables),
        TableFeatureProp::Oxm { oxm_ids, .. } => oxm_ids.iter().for_each(|x| p32(&mut o, *x)),
        TableFeatureProp::Experimenter {
            experimenter,
            exp_type,
            data,
            ..
        } => {
            p32(&mut o, *experimenter);
            p32(&mut o, *exp_type);
            data.iter().for_each(|x| p32(&mut o, *x));
        }
        TableFeatureProp::Raw { body, .. } => o.extend_from_slice(body),
    }
    o
}

fn emit_table_features(o: &mut Vec<u8>, v: &[TableFeatures]) {
    for t in v {
        let start = o.len();
        p16(o, 0);
        p8(o, t.table_id);
        pad(o, 5);
        o.extend_from_slice(&t.name);
        p64(o, t.metadata_match);
        p64(o, t.metadata_write);
        p32(o, t.config);
        p32(o, t.max_entries);
        for p in &t.properties {
            let b = prop_body(p);
            p16(o, prop_type(p));
            p16(o, u16::try_from(b.len() + 4).unwrap_or(u16::MAX));
            o.extend_from_slice(&b);
            pad(o, pad8(b.len() + 4));
        }
        let len = o.len() - start;
        put_len16(o, start, len);
    }
}

fn parse_mp_request(t: u16, r: &mut Reader<'_>) -> Result<Option<MultipartRequest>, OfError> {
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

fn mp_request_type(b: &MultipartRequest) -> u16 {
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

fn emit_mp_request(o: &mut Vec<u8>, b: &MultipartRequest) {
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

fn parse_mp_reply(t: u16, r: &mut Reader<'_>) -> Result<Option<MultipartReply>, OfError> {
    Ok(Some(match t {
        mp_type::DESC => MultipartReply::Desc {
            mfr_desc: r.bytes(256, "mfr_desc")?.to_vec(),
            hw_desc: r.bytes(256, "hw_desc")?.to_vec(),
            sw_desc: r.bytes(256, "sw_desc")?.to_vec(),
            serial_num: r.bytes(32, "serial_num")?.to_vec(),
            dp_desc: r.bytes(256, "dp_desc")?.to_vec(),
        },
        mp_type::FLOW => {
            let mut v = Vec::new();
            for rec in records(r.rest(), 0, 56, "flow stats")? {
                let mut fr = Reader::new(rec);
                fr.skip(2, "flow stats length")?;
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
                v.push(FlowStats {
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
                });
            }
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
            let mut v = Vec::new();
            for rec in records(r.rest(), 0, 40, "group stats")? {
                let mut gr = Reader::new(rec);
                gr.skip(2, "group stats length")?;
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
                v.push(GroupStats {
                    group_id,
                    ref_count,
                    packet_count,
                    byte_count,
                    duration_sec,
                    duration_nsec,
                    bucket_stats,
                });
            }
            MultipartReply::Group(v)
        }
        mp_type::GROUP_DESC => {
            let mut v = Vec::new();
            for rec in records(r.rest(), 0, 8, "group desc")? {
                let mut gr = Reader::new(rec);
                gr.skip(2, "group desc length")?;
                let type_ = gr.u8("group type")?;
                gr.zero_pad(1, "group desc padding")?;
                let group_id = gr.u32("group_id")?;
                v.push(GroupDesc {
                    type_,
                    group_id,
                    buckets: Bucket::parse_list(gr.rest())?,
                });
            }
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

fn mp_reply_type(b: &MultipartReply) -> u16 {
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

fn fixed(o: &mut Vec<u8>, b: &[u8], n: usize) {
    o.extend_from_slice(&b[..b.len().min(n)]);
    pad(o, n.saturating_sub(b.len()));
}

fn emit_mp_reply(o: &mut Vec<u8>, b: &MultipartReply) {
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
            for f in v {
                let start = o.len();
                p16(o, 0);
                p8(o, f.table_id);
                pad(o, 1);
                p32(o, f.duration_sec);
                p32(o, f.duration_nsec);
                p16(o, f.priority);
                p16(o, f.idle_timeout);
                p16(o, f.hard_timeout);
                p16(o, f.flags);
                pad(o, 4);
                p64(o, f.cookie);
                p64(o, f.packet_count);
                p64(o, f.byte_count);
                f.match_.emit(o);
                f.instructions.iter().for_each(|i| i.emit(o));
                let len = o.len() - start;
                put_len16(o, start, len);
            }
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
            for g in v {
                let start = o.len();
                p16(o, 0);
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
                let len = o.len() - start;
                put_len16(o, start, len);
            }
        }
        MultipartReply::GroupDesc(v) => {
            for g in v {
                let start = o.len();
                p16(o, 0);
                p8(o, g.type_);
                pad(o, 1);
                p32(o, g.group_id);
                g.buckets.iter().for_each(|b| b.emit(o));
                let len = o.len() - start;
                put_len16(o, start, len);
            }
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

impl Message {
    /// A message with this xid and body.
    pub fn new(xid: u32, body: Body) -> Message {
        Message { xid, body }
    }

    /// The wire type of the message.
    pub fn type_(&self) -> u8 {
        use msg_type::*;
        match &self.body {
            Body::Hello(_) => HELLO,
            Body::Error(_) => ERROR,
            Body::EchoRequest(_) => ECHO_REQUEST,
            Body::EchoReply(_) => ECHO_REPLY,
            Body::Experimenter { .. } => EXPERIMENTER,
            Body::FeaturesRequest => FEATURES_REQUEST,
            Body::FeaturesReply(_) => FEATURES_REPLY,
            Body::GetConfigRequest => GET_CONFIG_REQUEST,
            Body::GetConfigReply(_) => GET_CONFIG_REPLY,
            Body::SetConfig(_) => SET_CONFIG,
            Body::PacketIn(_) => PACKET_IN,
            Body::FlowRemoved(_) => FLOW_REMOVED,
            Body::PortStatus { .. } => PORT_STATUS,
            Body::PacketOut(_) => PACKET_OUT,
            Body::FlowMod(_) => FLOW_MOD,
            Body::GroupMod(_) => GROUP_MOD,
            Body::MultipartRequest { .. } => MULTIPART_REQUEST,
            Body::MultipartReply { .. } => MULTIPART_REPLY,
            Body::BarrierRequest => BARRIER_REQUEST,
            Body::BarrierReply => BARRIER_REPLY,
            Body::RoleRequest { .. } => ROLE_REQUEST,
            Body::RoleReply { .. } => ROLE_REPLY,
            Body::Other { type_, .. } => *type_,
        }
    }

    /// Parses one whole message (`b` is exactly the message: its header length must equal
    /// `b.len()`). Unknown message and multipart types come back as [`Body::Other`].
    pub fn parse(b: &[u8]) -> Result<Message, OfError> {
        let h = Header::parse(b)?;
        if h.version != OFP13 {
            return Err(OfError::BadVersion(h.version));
        }
        if h.length as usize > b.len() {
            return Err(OfError::Truncated {
                what: "message",
                need: h.length as usize,
                have: b.len(),
            });
        }
        if (h.length as usize) < b.len() {
            return Err(OfError::BadLength {
                what: "message",
                length: h.length as usize,
            });
        }
        let mut r = Reader::new(&b[HEADER_LEN..]);
        let body = Self::parse_body(h.type_, &mut r)?;
        if r.remaining() > 0 {
            return Err(OfError::BadLength {
                what: "message body",
                length: h.length as usize,
            });
        }
        Ok(Message { xid: h.xid, body })
    }

    fn parse_body(t: u8, r: &mut Reader<'_>) -> Result<Body, OfError> {
        use msg_type::*;
        let config = |r: &mut Reader<'_>| -> Result<SwitchConfig, OfError> {
            Ok(SwitchConfig {
                flags: r.u16("config flags")?,
                miss_send_len: r.u16("miss_send_len")?,
            })
        };
        Ok(match t {
            HELLO => Body::Hello(parse_hello(r)?),
            ERROR => {
                let type_ = r.u16("error type")?;
                if type_ == 0xffff {
                    Body::Error(ErrorMsg::Experimenter {
                        exp_type: r.u16("error exp_type")?,
                        experimenter: r.u32("error experimenter")?,
                        data: r.rest().to_vec(),
                    })
                } else {
                    Body::Error(ErrorMsg::Standard {
                        type_,
                        code: r.u16("error code")?,
                        data: r.rest().to_vec(),
                    })
                }
            }
            ECHO_REQUEST => Body::EchoRequest(r.rest().to_vec()),
            ECHO_REPLY => Body::EchoReply(r.rest().to_vec()),
            EXPERIMENTER => Body::Experimenter {
                experimenter: r.u32("experimenter")?,
                exp_type: r.u32("exp_type")?,
                data: r.rest().to_vec(),
            },
            FEATURES_REQUEST => Body::FeaturesRequest,
            FEATURES_REPLY => {
                let datapath_id = r.u64("datapath_id")?;
                let n_buffers = r.u32("n_buffers")?;
                let n_tables = r.u8("n_tables")?;
                let auxiliary_id = r.u8("auxiliary_id")?;
                r.zero_pad(2, "features padding")?;
                Body::FeaturesReply(SwitchFeatures {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    auxiliary_id,
                    capabilities: r.u32("capabilities")?,
                    reserved: r.u32("reserved")?,
                })
            }
            GET_CONFIG_REQUEST => Body::GetConfigRequest,
            GET_CONFIG_REPLY => Body::GetConfigReply(config(r)?),
            SET_CONFIG => Body::SetConfig(config(r)?),
            PACKET_IN => {
                let buffer_id = r.u32("buffer_id")?;
                let total_len = r.u16("total_len")?;
                let reason = r.u8("reason")?;
                let table_id = r.u8("table_id")?;
                let cookie = r.u64("cookie")?;
                let match_ = Match::parse(r)?;
                r.zero_pad(2, "packet_in padding")?;
                Body::PacketIn(PacketIn {
                    buffer_id,
                    total_len,
                    reason,
                    table_id,
                    cookie,
                    match_,
                    data: r.rest().to_vec(),
                })
            }
            FLOW_REMOVED => Body::FlowRemoved(FlowRemoved {
                cookie: r.u64("cookie")?,
                priority: r.u16("priority")?,
                reason: r.u8("reason")?,
                table_id: r.u8("table_id")?,
                duration_sec: r.u32("duration_sec")?,
                duration_nsec: r.u32("duration_nsec")?,
                idle_timeout: r.u16("idle_timeout")?,
                hard_timeout: r.u16("hard_timeout")?,
                packet_count: r.u64("packet_count")?,
                byte_count: r.u64("byte_count")?,
                match_: Match::parse(r)?,
            }),
            PORT_STATUS => {
                let reason = r.u8("reason")?;
                r.zero_pad(7, "port_status padding")?;
                Body::PortStatus {
                    reason,
                    desc: Port::parse(r)?,
                }
            }
            PACKET_OUT => {
                let buffer_id = r.u32("buffer_id")?;
                let in_port = r.u32("in_port")?;
                let alen = r.u16("actions_len")? as usize;
                r.zero_pad(6, "packet_out padding")?;
                let actions = Action::parse_list(r.bytes(alen, "packet_out actions")?)?;
                Body::PacketOut(PacketOut {
                    buffer_id,
                    in_port,
                    actions,
                    data: r.rest().to_vec(),
                })
            }
            FLOW_MOD => {
                let cookie = r.u64("cookie")?;
                let cookie_mask = r.u64("cookie_mask")?;
                let table_id = r.u8("table_id")?;
                let command = r.u8("command")?;
                let idle_timeout = r.u16("idle_timeout")?;
                let hard_timeout = r.u16("hard_timeout")?;
                let priority = r.u16("priority")?;
                let buffer_id = r.u32("buffer_id")?;
                let out_port = r.u32("out_port")?;
                let out_group = r.u32("out_group")?;
                let flags = r.u16("flags")?;
                r.zero_pad(2, "flow_mod padding")?;
                let match_ = Match::parse(r)?;
                let instructions = Instruction::parse_list(r.rest())?;
                Body::FlowMod(FlowMod {
                    cookie,
                    cookie_mask,
                    table_id,
                    command,
                    idle_timeout,
                    hard_timeout,
                    priority,
                    buffer_id,
                    out_port,
                    out_group,
                    flags,
                    match_,
                    instructions,
                })
            }
            GROUP_MOD => {
                let command = r.u16("command")?;
                let type_ = r.u8("group type")?;
                r.zero_pad(1, "group_mod padding")?;
                let group_id = r.u32("group_id")?;
                Body::GroupMod(GroupMod {
                    command,
                    type_,
                    group_id,
                    buckets: Bucket::parse_list(r.rest())?,
                })
            }
            MULTIPART_REQUEST | MULTIPART_REPLY => {
                let all = r.clone();
                let mt = r.u16("multipart type")?;
                let flags = r.u16("multipart flags")?;
                r.zero_pad(4, "multipart padding")?;
                let typed = if t == MULTIPART_REQUEST {
                    parse_mp_request(mt, r)?.map(|body| Body::MultipartRequest { flags, body })
                } else {
                    parse_mp_reply(mt, r)?.map(|body| Body::MultipartReply { flags, body })
                };
                match typed {
                    Some(b) => b,
                    None => {
                        let mut all = all;
                        r.rest();
                        Body::Other {
                            type_: t,
                            body: all.rest().to_vec(),
                        }
                    }
                }
            }
            BARRIER_REQUEST => Body::BarrierRequest,
            BARRIER_REPLY => Body::BarrierReply,
            ROLE_REQUEST | ROLE_REPLY => {
                let role = r.u32("role")?;
                r.zero_pad(4, "role padding")?;
                let generation_id = r.u64("generation_id")?;
                if t == ROLE_REQUEST {
                    Body::RoleRequest {
                        role,
                        generation_id,
                    }
                } else {
                    Body::RoleReply {
                        role,
                        generation_id,
                    }
                }
            }
            // Bounded by the message-type space OpenFlow 1.3 defines; the rest is unknown.
            t if t <= METER_MOD => Body::Other {
                type_: t,
                body: r.rest().to_vec(),
            },
            t => return Err(OfError::BadType(t)),
        })
    }

    /// Emits the message (header length computed).
    pub fn emit(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(64);
        Header {
            version: OFP13,
            type_: self.type_(),
            length: 0,
            xid: self.xid,
        }
        .emit(&mut o);
        self.emit_body(&mut o);
        let len = o.len();
        put_len16(&mut o, 2, len);
        o
    }

    fn emit_body(&self, o: &mut Vec<u8>) {
        match &self.body {
            Body::Hello(e) => emit_hello(o, e),
            Body::Error(ErrorMsg::Standard { type_, code, data }) => {
                p16(o, *type_);
                p16(o, *code);
                o.extend_from_slice(data);
            }
            Body::Error(ErrorMsg::Experimenter {
                exp_type,
                experimenter,
                data,
            }) => {
                p16(o, 0xffff);
                p16(o, *exp_type);
                p32(o, *experimenter);
                o.extend_from_slice(data);
            }
            Body::EchoRequest(d) | Body::EchoReply(d) => o.extend_from_slice(d),
            Body::Experimenter {
                experimenter,
                exp_type,
                data,
            } => {
                p32(o, *experimenter);
                p32(o, *exp_type);
                o.extend_from_slice(data);
            }
            Body::FeaturesRequest
            | Body::GetConfigRequest
            | Body::BarrierRequest
            | Body::BarrierReply => {}
            Body::FeaturesReply(f) => {
                p64(o, f.datapath_id);
                p32(o, f.n_buffers);
                p8(o, f.n_tables);
                p8(o, f.auxiliary_id);
                pad(o, 2);
                p32(o, f.capabilities);
                p32(o, f.reserved);
            }
            Body::GetConfigReply(c) | Body::SetConfig(c) => {
                p16(o, c.flags);
                p16(o, c.miss_send_len);
            }
            Body::PacketIn(p) => {
                p32(o, p.buffer_id);
                p16(o, p.total_len);
                p8(o, p.reason);
                p8(o, p.table_id);
                p64(o, p.cookie);
                p.match_.emit(o);
                pad(o, 2);
                o.extend_from_slice(&p.data);
            }
            Body::FlowRemoved(f) => {
                p64(o, f.cookie);
                p16(o, f.priority);
                p8(o, f.reason);
                p8(o, f.table_id);
                p32(o, f.duration_sec);
                p32(o, f.duration_nsec);
                p16(o, f.idle_timeout);
                p16(o, f.hard_timeout);
                p64(o, f.packet_count);
                p64(o, f.byte_count);
                f.match_.emit(o);
            }
            Body::PortStatus { reason, desc } => {
                p8(o, *reason);
                pad(o, 7);
                desc.emit(o);
            }
            Body::PacketOut(p) => {
                p32(o, p.buffer_id);
                p32(o, p.in_port);
                let at = o.len();
                p16(o, 0);
                pad(o, 6);
                let s = o.len();
                emit_actions(o, &p.actions);
                let alen = o.len() - s;
                put_len16(o, at, alen);
                o.extend_from_slice(&p.data);
            }
            Body::FlowMod(f) => {
                p64(o, f.cookie);
                p64(o, f.cookie_mask);
                p8(o, f.table_id);
                p8(o, f.command);
                p16(o, f.idle_timeout);
                p16(o, f.hard_timeout);
                p16(o, f.priority);
                p32(o, f.buffer_id);
                p32(o, f.out_port);
                p32(o, f.out_group);
                p16(o, f.flags);
                pad(o, 2);
                f.match_.emit(o);
                f.instructions.iter().for_each(|i| i.emit(o));
            }
            Body::GroupMod(g) => {
                p16(o, g.command);
                p8(o, g.type_);
                pad(o, 1);
                p32(o, g.group_id);
                g.buckets.iter().for_each(|b| b.emit(o));
            }
            Body::MultipartRequest { flags, body } => {
                p16(o, mp_request_type(body));
                p16(o, *flags);
                pad(o, 4);
                emit_mp_request(o, body);
            }
            Body::MultipartReply { flags, body } => {
                p16(o, mp_reply_type(body));
                p16(o, *flags);
                pad(o, 4);
                emit_mp_reply(o, body);
            }
            Body::RoleRequest {
                role,
                generation_id,
            }
            | Body::RoleReply {
                role,
                generation_id,
            } => {
                p32(o, *role);
                pad(o, 4);
                p64(o, *generation_id);
            }
            Body::Other { body, .. } => o.extend_from_slice(body),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ryu-shaped JSON.

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

fn table_features_json(v: &[TableFeatures]) -> Value {
    let mut out = Vec::new();
    for t in v {
        let mut b = Vec::new();
        emit_table_features(&mut b, std::slice::from_ref(t));
        let props: Vec<Value> = t
            .properties
            .iter()
            .map(|p| {
                let length = prop_body(p).len() + 4;
                let type_ = prop_type(p);
                match p {
                    TableFeatureProp::Ids { ids, .. } => {
                        let (name, key, id) = if type_ <= 1 {
                            ("OFPTableFeaturePropInstructions", "instruction_ids", "OFPInstructionId")
                        } else {
                            ("OFPTableFeaturePropActions", "action_ids", "OFPActionId")
                        };
                        let ids: Vec<Value> = ids.iter().map(|(t, l)| json!({ id: {"len": l, "type": t} })).collect();
                        json!({ name: { key: ids, "length": length, "type": type_ } })
                    }
                    TableFeatureProp::NextTables { tables, .. } => {
                        json!({"OFPTableFeaturePropNextTables": {"length": length, "table_ids": tables, "type": type_}})
                    }
                    TableFeatureProp::Oxm { oxm_ids, .. } => {
                        let ids: Vec<Value> = oxm_ids
                            .iter()
                            .map(|h| {
                                let class = (h >> 16) as u16;
                                let field = ((h >> 9) & 0x7f) as u8;
                                let name = match OxmField::from_u8(field) {
                                    Some(f) if class == OXM_CLASS_BASIC => f.name().to_string(),
                                    _ => format!("oxm_class_{class:#06x}_field_{field}"),
                                };
                                json!({"OFPOxmId": {"hasmask": (h >> 8) & 1, "length": h & 0xff, "type": name}})
                            })
                            .collect();
                        json!({"OFPTableFeaturePropOxm": {"length": length, "oxm_ids": ids, "type": type_}})
                    }
                    TableFeatureProp::Experimenter { experimenter, exp_type, data, .. } => json!({"OFPTableFeaturePropExperimenter": {
                        "data": data, "exp_type": exp_type, "experimenter": experimenter, "length": length, "type": type_}}),
                    TableFeatureProp::Raw { body, .. } => {
                        json!({"OFPTableFeaturePropUnknown": {"data": base64(body), "length": length, "type": type_}})
                    }
                }
            })
            .collect();
        out.push(json!({"OFPTableFeaturesStats": {"config": t.config, "length": b.len(), "max_entries": t.max_entries,
            "metadata_match": t.metadata_match, "metadata_write": t.metadata_write, "name": c_str(&t.name),
            "properties": props, "table_id": t.table_id}}));
    }
    Value::Array(out)
}

impl Message {
    /// The message in the JSON shape of Ryu's `ofproto_v1_3_parser` (`{"OFPClassName": {...}}`),
    /// or `None` for [`Body::Other`]. Raw parts: non-basic OXM fields show as
    /// `oxm_class_<class>_field_<n>`, experimenter actions as `OFPActionExperimenterUnknown`.
    pub fn to_ryu_json(&self) -> Option<Value> {
        let (name, v) = match &self.body {
            Body::Hello(els) => {
                let e: Vec<Value> = els
                    .iter()
                    .map(|e| match e {
                        HelloElem::VersionBitmap(w) => {
                            let versions: Vec<u32> =
                                (0..w.len() as u32 * 32).filter(|i| w[(i / 32) as usize] >> (i % 32) & 1 == 1).collect();
                            json!({"OFPHelloElemVersionBitmap": {"length": 4 + 4 * w.len(), "type": 1, "versions": versions}})
                        }
                        HelloElem::Unknown { type_, body } => {
                            json!({"OFPHelloElemUnknown": {"length": 4 + body.len(), "type": type_, "data": base64(body)}})
                        }
                    })
                    .collect();
                ("OFPHello", json!({ "elements": e }))
            }
            Body::Error(ErrorMsg::Standard { type_, code, data }) => (
                "OFPErrorMsg",
                json!({"code": code, "data": base64(data), "type": type_}),
            ),
            Body::Error(ErrorMsg::Experimenter {
                exp_type,
                experimenter,
                data,
            }) => (
                "OFPErrorMsg",
                json!({"code": null, "data": base64(data), "exp_type": exp_type, "experimenter": experimenter, "type": 0xffff}),
            ),
            Body::EchoRequest(d) => ("OFPEchoRequest", json!({"data": base64(d)})),
            Body::EchoReply(d) => ("OFPEchoReply", json!({"data": base64(d)})),
            Body::Experimenter {
                experimenter,
                exp_type,
                data,
            } => (
                "OFPExperimenter",
                json!({"data": base64(data), "exp_type": exp_type, "experimenter": experimenter}),
            ),
            Body::FeaturesRequest => ("OFPFeaturesRequest", json!({})),
            Body::FeaturesReply(f) => (
                "OFPSwitchFeatures",
                json!({"auxiliary_id": f.auxiliary_id, "capabilities": f.capabilities, "datapath_id": f.datapath_id,
                    "n_buffers": f.n_buffers, "n_tables": f.n_tables}),
            ),
            Body::GetConfigRequest => ("OFPGetConfigRequest", json!({})),
            Body::GetConfigReply(c) => (
                "OFPGetConfigReply",
                json!({"flags": c.flags, "miss_send_len": c.miss_send_len}),
            ),
            Body::SetConfig(c) => (
                "OFPSetConfig",
                json!({"flags": c.flags, "miss_send_len": c.miss_send_len}),
            ),
            Body::PacketIn(p) => (
                "OFPPacketIn",
                json!({"buffer_id": p.buffer_id, "cookie": p.cookie, "data": base64(&p.data), "match": p.match_.to_ryu_json(),
                    "reason": p.reason, "table_id": p.table_id, "total_len": p.total_len}),
            ),
            Body::FlowRemoved(f) => (
                "OFPFlowRemoved",
                json!({"byte_count": f.byte_count, "cookie": f.cookie, "duration_nsec": f.duration_nsec,
                    "duration_sec": f.duration_sec, "hard_timeout": f.hard_timeout, "idle_timeout": f.idle_timeout,
                    "match": f.match_.to_ryu_json(), "packet_count": f.packet_count, "priority": f.priority,
                    "reason": f.reason, "table_id": f.table_id}),
            ),
            Body::PortStatus { reason, desc } => (
                "OFPPortStatus",
                json!({"desc": desc.to_ryu_json(), "reason": reason}),
            ),
            Body::PacketOut(p) => {
                let mut a = Vec::new();
                emit_actions(&mut a, &p.actions);
                (
                    "OFPPacketOut",
                    json!({"actions": actions_json(&p.actions), "actions_len": a.len(), "buffer_id": p.buffer_id,
                        "data": base64(&p.data), "in_port": p.in_port}),
                )
            }
            Body::FlowMod(f) => (
                "OFPFlowMod",
                json!({"buffer_id": f.buffer_id, "command": f.command, "cookie": f.cookie, "cookie_mask": f.cookie_mask,
                    "flags": f.flags, "hard_timeout": f.hard_timeout, "idle_timeout": f.idle_timeout,
                    "instructions": f.instructions.iter().map(Instruction::to_ryu_json).collect::<Vec<_>>(),
                    "match": f.match_.to_ryu_json(), "out_group": f.out_group, "out_port": f.out_port,
                    "priority": f.priority, "table_id": f.table_id}),
            ),
            Body::GroupMod(g) => (
                "OFPGroupMod",
                json!({"buckets": g.buckets.iter().map(Bucket::to_ryu_json).collect::<Vec<_>>(), "command": g.command,
                    "group_id": g.group_id, "type": g.type_}),
            ),
            Body::MultipartRequest { flags, body } => {
                let common = [
                    ("flags", json!(flags)),
                    ("type", json!(mp_request_type(body))),
                ];
                let (n, v) = match body {
                    MultipartRequest::Desc => ("OFPDescStatsRequest", json!({})),
                    MultipartRequest::Flow(f) => {
                        ("OFPFlowStatsRequest", flow_stats_request_json(f))
                    }
                    MultipartRequest::Aggregate(f) => {
                        ("OFPAggregateStatsRequest", flow_stats_request_json(f))
                    }
                    MultipartRequest::Table => ("OFPTableStatsRequest", json!({})),
                    MultipartRequest::PortStats(p) => {
                        ("OFPPortStatsRequest", json!({ "port_no": p }))
                    }
                    MultipartRequest::Group(g) => {
                        ("OFPGroupStatsRequest", json!({ "group_id": g }))
                    }
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
            Body::MultipartReply { flags, body } => {
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
                                    let mut b = Vec::new();
                                    emit_mp_reply(&mut b, &MultipartReply::Flow(vec![f.clone()]));
                                    json!({"OFPFlowStats": {"byte_count": f.byte_count, "cookie": f.cookie,
                                        "duration_nsec": f.duration_nsec, "duration_sec": f.duration_sec, "flags": f.flags,
                                        "hard_timeout": f.hard_timeout, "idle_timeout": f.idle_timeout,
                                        "instructions": f.instructions.iter().map(Instruction::to_ryu_json).collect::<Vec<_>>(),
                                        "length": b.len(), "match": f.match_.to_ryu_json(), "packet_count": f.packet_count,
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
                                    let mut b = Vec::new();
                                    emit_mp_reply(&mut b, &MultipartReply::GroupDesc(vec![g.clone()]));
                                    json!({"OFPGroupDescStats": {"buckets": g.buckets.iter().map(Bucket::to_ryu_json).collect::<Vec<_>>(),
                                        "group_id": g.group_id, "length": b.len(), "type": g.type_}})
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
            Body::BarrierRequest => ("OFPBarrierRequest", json!({})),
            Body::BarrierReply => ("OFPBarrierReply", json!({})),
            Body::RoleRequest {
                role,
                generation_id,
            } => (
                "OFPRoleRequest",
                json!({"generation_id": generation_id, "role": role}),
            ),
            Body::RoleReply {
                role,
                generation_id,
            } => (
                "OFPRoleReply",
                json!({"generation_id": generation_id, "role": role}),
            ),
            Body::Other { .. } => return None,
        };
        Some(json!({ name: v }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(b: &[u8]) -> Message {
        let m = Message::parse(b).unwrap();
        assert_eq!(m.emit(), b);
        m
    }

    #[test]
    fn hello_with_version_bitmap() {
        let b = [4, 0, 0, 16, 0, 0, 0, 9, 0, 1, 0, 8, 0x40, 0, 0x06, 0x0e];
        let m = roundtrip(&b);
        assert_eq!(m.xid, 9);
        assert_eq!(
            m.body,
            Body::Hello(vec![HelloElem::VersionBitmap(vec![0x4000_060e])])
        );
        let j = m.to_ryu_json().unwrap();
        assert_eq!(
            j["OFPHello"]["elements"][0]["OFPHelloElemVersionBitmap"]["versions"],
            json!([1, 2, 3, 9, 10, 30])
        );
        // Element length beyond the message.
        assert!(matches!(
            Message::parse(&[4, 0, 0, 12, 0, 0, 0, 0, 0, 1, 0, 8]),
            Err(OfError::Truncated { .. })
        ));
        assert!(matches!(
            Message::parse(&[4, 0, 0, 12, 0, 0, 0, 0, 0, 1, 0, 2]),
            Err(OfError::BadLength { .. })
        ));
    }

    /// flow_mod: match in_port=1, eth_dst masked; apply_actions(set_field vlan_vid, output 2),
    /// goto_table 3.
    const FLOW_MOD: [u8; 112] = [
        4, 14, 0, 112, 0, 0, 0, 1, // header
        0, 0, 0, 0, 0, 0, 0, 0xab, // cookie
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // cookie mask
        1, 0, 0, 10, 0, 20, 0x80, 0, // table 1, add, idle 10, hard 20, priority 0x8000
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc, 0xff, 0xff, 0xff, 0xff, 0, 1, 0,
        0, // buffer, out_port, out_group, flags
        0, 1, 0, 28, // match type 1, length 28
        0x80, 0, 0, 4, 0, 0, 0, 1, // in_port 1
        0x80, 0, 7, 12, 1, 2, 3, 4, 5, 6, 0xff, 0xff, 0xff, 0, 0, 0, // eth_dst/mask
        0, 0, 0, 0, // match padding
        0, 4, 0, 32, 0, 0, 0, 0, // apply_actions, len 32
        0, 25, 0, 16, 0x80, 0, 12, 2, 0x10, 0x05, 0, 0, 0, 0, 0,
        0, // set_field vlan_vid 0x1005
        0, 0, 0, 8, 0, 0, 0, 2, // output port 2 ... continues
    ];

    fn flow_mod_bytes() -> Vec<u8> {
        // The output action is 16 bytes; the const above holds its first 8, add the rest and goto.
        let mut b = FLOW_MOD.to_vec();
        let out_len = b.len() - 8;
        b.truncate(out_len);
        b.extend_from_slice(&[0, 0, 0, 16, 0, 0, 0, 2, 0xff, 0xe5, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0, 1, 0, 8, 3, 0, 0, 0]);
        let len = b.len() as u16;
        b[2..4].copy_from_slice(&len.to_be_bytes());
        // apply_actions (at offset 80) length: 8 + 16 + 16
        b[82..84].copy_from_slice(&40u16.to_be_bytes());
        b
    }

    #[test]
    fn flow_mod_typed() {
        let b = flow_mod_bytes();
        let m = roundtrip(&b);
        let Body::FlowMod(f) = &m.body else {
            panic!("not a flow_mod: {m:?}")
        };
        assert_eq!(
            (
                f.cookie,
                f.table_id,
                f.idle_timeout,
                f.hard_timeout,
                f.priority
            ),
            (0xab, 1, 10, 20, 0x8000)
        );
        assert_eq!(
            (f.out_port, f.out_group, f.flags),
            (0xffff_fffc, 0xffff_ffff, 1)
        );
        assert_eq!(
            f.match_.fields,
            vec![
                Oxm::basic(OxmField::InPort, 1),
                Oxm::Basic {
                    field: OxmField::EthDst,
                    value: 0x0102_0304_0506,
                    mask: Some(0xffff_ff00_0000)
                },
            ]
        );
        assert_eq!(
            f.instructions,
            vec![
                Instruction::ApplyActions(vec![
                    Action::SetField(Oxm::basic(OxmField::VlanVid, 0x1005)),
                    Action::Output {
                        port: 2,
                        max_len: 0xffe5
                    },
                ]),
                Instruction::GotoTable(3),
            ]
        );
        let j = m.to_ryu_json().unwrap();
        assert_eq!(
            j["OFPFlowMod"]["match"]["OFPMatch"]["oxm_fields"][1]["OXMTlv"]["mask"],
            json!("ff:ff:ff:00:00:00")
        );
    }

    #[test]
    fn inner_lengths_are_checked() {
        let good = flow_mod_bytes();
        // Match length pointing past the message.
        let mut b = good.clone();
        b[50..52].copy_from_slice(&200u16.to_be_bytes());
        assert!(
            matches!(Message::parse(&b), Err(OfError::Truncated { .. })),
            "{:?}",
            Message::parse(&b)
        );
        // Instruction length past the end.
        let mut b = good.clone();
        b[82..84].copy_from_slice(&400u16.to_be_bytes());
        assert!(matches!(Message::parse(&b), Err(OfError::Truncated { .. })));
        // Action length 0 inside apply_actions.
        let mut b = good.clone();
        b[90..92].copy_from_slice(&0u16.to_be_bytes());
        assert!(
            matches!(Message::parse(&b), Err(OfError::BadLength { .. })),
            "{:?}",
            Message::parse(&b)
        );
        // Header length disagreeing with the bytes.
        let mut b = good.clone();
        b.push(0);
        assert!(matches!(Message::parse(&b), Err(OfError::BadLength { .. })));
        assert!(matches!(
            Message::parse(&good[..good.len() - 1]),
            Err(OfError::Truncated { .. })
        ));
    }

    #[test]
    fn odd_actions_are_kept_raw() {
        // packet_out: unknown action type 99, output with non-zero padding, then 2 data bytes.
        let b = [
            4, 13, 0, 50, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 24, 0, 0, 0, 0, 0,
            0, // header .. pad
            0, 99, 0, 8, 1, 2, 3, 4, // unknown
            0, 0, 0, 16, 0, 0, 0, 2, 0, 0, 9, 9, 9, 9, 9, 9, // output, odd padding
            0xaa, 0xbb,
        ];
        let m = roundtrip(&b);
        let Body::PacketOut(p) = &m.body else {
            panic!("{m:?}")
        };
        assert_eq!(
            p.actions[0],
            Action::Unknown {
                type_: 99,
                body: vec![1, 2, 3, 4]
            }
        );
        assert!(matches!(p.actions[1], Action::Unknown { type_: 0, .. }));
        assert_eq!(p.data, [0xaa, 0xbb]);
        // actions_len past the end.
        let mut c = b;
        c[16..18].copy_from_slice(&100u16.to_be_bytes());
        assert!(matches!(Message::parse(&c), Err(OfError::Truncated { .. })));
    }

    #[test]
    fn errors_and_raw_types() {
        let b = [
            4, 1, 0, 20, 0, 0, 0, 3, 0xff, 0xff, 0, 7, 0, 0, 0, 42, b'a', b'b', b'c', b'd',
        ];
        let m = roundtrip(&b);
        assert_eq!(
            m.body,
            Body::Error(ErrorMsg::Experimenter {
                exp_type: 7,
                experimenter: 42,
                data: b"abcd".to_vec()
            })
        );
        // meter_mod (29) is raw; 30 is not an OpenFlow 1.3 type.
        let m = roundtrip(&[4, 29, 0, 10, 0, 0, 0, 1, 5, 6]);
        assert_eq!(
            m.body,
            Body::Other {
                type_: 29,
                body: vec![5, 6]
            }
        );
        assert_eq!(m.to_ryu_json(), None);
        assert_eq!(
            Message::parse(&[4, 30, 0, 8, 0, 0, 0, 1]),
            Err(OfError::BadType(30))
        );
        assert_eq!(
            Message::parse(&[1, 0, 0, 8, 0, 0, 0, 1]),
            Err(OfError::BadVersion(1))
        );
        // Unknown multipart type (meter stats, 9) is raw as a whole.
        let b = [
            4, 18, 0, 24, 0, 0, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
        ];
        assert!(matches!(roundtrip(&b).body, Body::Other { type_: 18, .. }));
        // Port stats request.
        let b = [
            4, 18, 0, 24, 0, 0, 0, 1, 0, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0,
        ];
        assert_eq!(
            roundtrip(&b).body,
            Body::MultipartRequest {
                flags: 1,
                body: MultipartRequest::PortStats(7)
            }
        );
    }

    #[test]
    fn oxm_raw_and_ipv6() {
        // Nicira reg0 (class 1, field 0) and an IPv6 src with a wrong length stay raw.
        let b = [0, 1, 0, 4, 0, 0, 0x12, 0x34, 0x80, 0, 0x34, 2, 0xfe, 0x80];
        let mut r = Reader::new(&b);
        let a = Oxm::parse(&mut r).unwrap();
        let c = Oxm::parse(&mut r).unwrap();
        assert_eq!(
            a,
            Oxm::Raw {
                class: 1,
                field: 0,
                hasmask: false,
                payload: vec![0, 0, 0x12, 0x34]
            }
        );
        assert!(matches!(
            c,
            Oxm::Raw {
                class: 0x8000,
                field: 26,
                ..
            }
        ));
        let v6 = Oxm::basic(
            OxmField::Ipv6Src,
            u128::from(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
        );
        assert_eq!(v6.to_ryu_json()["OXMTlv"]["value"], json!("fe80::1"));
        let mut o = Vec::new();
        v6.emit(&mut o);
        assert_eq!(Oxm::parse(&mut Reader::new(&o)).unwrap(), v6);
        assert_eq!(base64(b"hoge"), "aG9nZQ==");
        assert_eq!(base64(b"fugafuga"), "ZnVnYWZ1Z2E=");
    }
}
