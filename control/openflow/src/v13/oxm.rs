//! OXM TLVs (`ofp_oxm_experimenter_header` and the OpenFlow basic class): the field table
//! ([`OxmField`], with each field's wire number, Ryu name and width) and one TLV ([`Oxm`]).
//!
//! Contract: [`Oxm::parse`] reads one TLV (4-byte header, then `length` bytes) and fails only
//! when the bytes run out ([`OfError::Truncated`]). A basic-class field whose length is exactly
//! its width (twice that with the has-mask bit) is typed; anything else (other classes,
//! unexpected lengths) is [`Oxm::Raw`], so emit reproduces the bytes.

use super::super::wire::p32;
use super::super::{OfError, Reader};
use super::mac_str;
use serde_json::{json, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The OXM class of the OpenFlow basic fields.
pub const OXM_CLASS_BASIC: u16 = 0x8000;

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

    /// Reads one TLV.
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Oxm, OfError> {
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

    /// Appends the TLV.
    pub(crate) fn emit(&self, o: &mut Vec<u8>) {
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
