//! OpenFlow 1.0 messages on the wire: typed [`Message`]s with [`Message::parse`] /
//! [`Message::emit`], byte-for-byte, and [`Message::to_ryu_json`] (Ryu's JSON shape, for checking
//! against Ryu's test vectors and for logs).
//!
//! Contract:
//! - `parse` takes exactly one whole message (`b.len()` equals the header's length), never panics,
//!   checks every inner length (actions, ports, stats entries) and returns an [`OfError`] naming
//!   what is wrong.
//! - `emit(parse(b)) == b` for every `b` that parses. To keep that promise without carrying padding
//!   around, padding bytes must be zero (every known sender, ovs-ofctl and Ryu included, sends
//!   zeros); a message with non-zero padding is rejected as [`OfError::NonZeroPadding`]. Fixed-size
//!   strings (port names, descriptions) are kept as raw arrays.
//! - Kept raw (so they round-trip): vendor messages, vendor actions (Nicira actions included),
//!   unknown action types, stats bodies other than desc/flow/aggregate/table/port/queue, the hello
//!   body, error data.
//! - The header length is recomputed on emit; `xid` is kept.

use super::tlv::{Align, Tlv, TlvFormat, TlvWriter};
use super::wire::put_len16;
pub use super::{base64, c_str, mac_str};
use super::{Header, OfError, Reader, HEADER_LEN, OFP10};

/// An action: type, length (header included, a multiple of 8, at least 8), body.
const ACTION: TlvFormat = TlvFormat::type_len("action", 8, Align::Multiple(8));
/// A flow stats entry: length, then the entry (88 bytes before the actions).
const FLOW_STATS: TlvFormat = TlvFormat::len_first("flow_stats", 88);

/// Message type numbers (`ofp_type`).
pub mod msg_type {
    #![allow(missing_docs)]
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const VENDOR: u8 = 4;
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
    pub const PORT_MOD: u8 = 15;
    pub const STATS_REQUEST: u8 = 16;
    pub const STATS_REPLY: u8 = 17;
    pub const BARRIER_REQUEST: u8 = 18;
    pub const BARRIER_REPLY: u8 = 19;
}

/// Wildcard bits of `ofp_match` (`OFPFW_*`).
pub mod wildcards {
    #![allow(missing_docs)]
    pub const IN_PORT: u32 = 1 << 0;
    pub const DL_VLAN: u32 = 1 << 1;
    pub const DL_SRC: u32 = 1 << 2;
    pub const DL_DST: u32 = 1 << 3;
    pub const DL_TYPE: u32 = 1 << 4;
    pub const NW_PROTO: u32 = 1 << 5;
    pub const TP_SRC: u32 = 1 << 6;
    pub const TP_DST: u32 = 1 << 7;
    pub const NW_SRC_SHIFT: u32 = 8;
    pub const NW_SRC_MASK: u32 = 0x3f << NW_SRC_SHIFT;
    pub const NW_DST_SHIFT: u32 = 14;
    pub const NW_DST_MASK: u32 = 0x3f << NW_DST_SHIFT;
    pub const DL_VLAN_PCP: u32 = 1 << 20;
    pub const NW_TOS: u32 = 1 << 21;
    pub const ALL: u32 = (1 << 22) - 1;
}

/// Flow-mod flags (`OFPFF_*`); [`FlowMod::flags`] keeps the raw bits.
pub mod flow_mod_flags {
    #![allow(missing_docs)]
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    pub const CHECK_OVERLAP: u16 = 1 << 1;
    pub const EMERG: u16 = 1 << 2;
}

/// Reserved port numbers (`OFPP_*`).
pub mod port {
    #![allow(missing_docs)]
    pub const MAX: u16 = 0xff00;
    pub const IN_PORT: u16 = 0xfff8;
    pub const TABLE: u16 = 0xfff9;
    pub const NORMAL: u16 = 0xfffa;
    pub const FLOOD: u16 = 0xfffb;
    pub const ALL: u16 = 0xfffc;
    pub const CONTROLLER: u16 = 0xfffd;
    pub const LOCAL: u16 = 0xfffe;
    pub const NONE: u16 = 0xffff;
}

/// "No buffer" buffer id.
pub const NO_BUFFER: u32 = 0xffff_ffff;
/// Nicira's vendor id (kept raw inside [`Action::Vendor`]).
pub const NX_VENDOR_ID: u32 = 0x0000_2320;

const PHY_PORT_LEN: usize = 48;
const DESC_STR_LEN: usize = 256;
const SERIAL_NUM_LEN: usize = 32;
const TABLE_NAME_LEN: usize = 32;

/// One OpenFlow 1.0 message: its transaction id and typed body.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Transaction id.
    pub xid: u32,
    /// The typed message.
    pub body: Body,
}

/// The typed body of an OpenFlow 1.0 message.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// OFPT_HELLO; the body (empty in 1.0) is kept raw.
    Hello(Vec<u8>),
    /// OFPT_ERROR.
    Error {
        /// `ofp_error_type`.
        type_: u16,
        /// Code within the type.
        code: u16,
        /// Usually the start of the offending message.
        data: Vec<u8>,
    },
    /// OFPT_ECHO_REQUEST with its payload.
    EchoRequest(Vec<u8>),
    /// OFPT_ECHO_REPLY with its payload.
    EchoReply(Vec<u8>),
    /// OFPT_VENDOR, kept raw after the vendor id.
    Vendor {
        /// Vendor id.
        vendor: u32,
        /// Everything after the vendor id.
        data: Vec<u8>,
    },
    /// OFPT_FEATURES_REQUEST.
    FeaturesRequest,
    /// OFPT_FEATURES_REPLY.
    FeaturesReply(SwitchFeatures),
    /// OFPT_GET_CONFIG_REQUEST.
    GetConfigRequest,
    /// OFPT_GET_CONFIG_REPLY.
    GetConfigReply(SwitchConfig),
    /// OFPT_SET_CONFIG.
    SetConfig(SwitchConfig),
    /// OFPT_PACKET_IN.
    PacketIn(PacketIn),
    /// OFPT_FLOW_REMOVED.
    FlowRemoved(FlowRemoved),
    /// OFPT_PORT_STATUS.
    PortStatus {
        /// `OFPPR_ADD` 0, `OFPPR_DELETE` 1, `OFPPR_MODIFY` 2.
        reason: u8,
        /// The port.
        desc: PhyPort,
    },
    /// OFPT_PACKET_OUT.
    PacketOut(PacketOut),
    /// OFPT_FLOW_MOD.
    FlowMod(FlowMod),
    /// OFPT_PORT_MOD.
    PortMod(PortMod),
    /// OFPT_STATS_REQUEST.
    StatsRequest {
        /// Flags (none defined for requests).
        flags: u16,
        /// The request body.
        body: StatsRequest,
    },
    /// OFPT_STATS_REPLY.
    StatsReply {
        /// `OFPSF_REPLY_MORE` (1) if more replies follow.
        flags: u16,
        /// The reply body.
        body: StatsReply,
    },
    /// OFPT_BARRIER_REQUEST.
    BarrierRequest,
    /// OFPT_BARRIER_REPLY.
    BarrierReply,
}

/// `ofp_switch_features` (without the header).
#[derive(Clone, Debug, PartialEq)]
pub struct SwitchFeatures {
    /// Datapath id.
    pub datapath_id: u64,
    /// Packets the switch can buffer.
    pub n_buffers: u32,
    /// Number of tables.
    pub n_tables: u8,
    /// `OFPC_*` bits.
    pub capabilities: u32,
    /// Supported action types as bits (`1 << OFPAT_*`).
    pub actions: u32,
    /// The ports.
    pub ports: Vec<PhyPort>,
}

/// `ofp_phy_port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhyPort {
    /// Port number.
    pub port_no: u16,
    /// MAC address.
    pub hw_addr: [u8; 6],
    /// Name, NUL-padded, kept raw (see [`PhyPort::name_str`]).
    pub name: [u8; 16],
    /// `OFPPC_*` bits.
    pub config: u32,
    /// `OFPPS_*` bits.
    pub state: u32,
    /// Current features (`OFPPF_*`).
    pub curr: u32,
    /// Advertised features.
    pub advertised: u32,
    /// Supported features.
    pub supported: u32,
    /// Features advertised by the peer.
    pub peer: u32,
}

impl PhyPort {
    /// The name up to its first NUL (lossy UTF-8).
    pub fn name_str(&self) -> String {
        c_str(&self.name)
    }
}

/// `ofp_switch_config` (without the header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// `OFPC_FRAG_*`.
    pub flags: u16,
    /// Bytes of a table-miss packet sent to the controller.
    pub miss_send_len: u16,
}

/// `ofp_packet_in` (without the header).
#[derive(Clone, Debug, PartialEq)]
pub struct PacketIn {
    /// Buffer id or [`NO_BUFFER`].
    pub buffer_id: u32,
    /// Full length of the frame.
    pub total_len: u16,
    /// Port the frame arrived on.
    pub in_port: u16,
    /// `OFPR_NO_MATCH` 0, `OFPR_ACTION` 1.
    pub reason: u8,
    /// The frame (or its start).
    pub data: Vec<u8>,
}

/// `ofp_flow_removed` (without the header).
#[derive(Clone, Debug, PartialEq)]
pub struct FlowRemoved {
    /// The flow's match.
    pub match_: Match,
    /// The flow's cookie.
    pub cookie: u64,
    /// The flow's priority.
    pub priority: u16,
    /// `OFPRR_IDLE_TIMEOUT` 0, `OFPRR_HARD_TIMEOUT` 1, `OFPRR_DELETE` 2.
    pub reason: u8,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds alive beyond `duration_sec`.
    pub duration_nsec: u32,
    /// The flow's idle timeout.
    pub idle_timeout: u16,
    /// Packets matched.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
}

/// `ofp_packet_out` (without the header).
#[derive(Clone, Debug, PartialEq)]
pub struct PacketOut {
    /// Buffer id or [`NO_BUFFER`].
    pub buffer_id: u32,
    /// Input port for the actions (or `OFPP_NONE`).
    pub in_port: u16,
    /// Actions to apply.
    pub actions: Vec<Action>,
    /// The frame if `buffer_id` is [`NO_BUFFER`].
    pub data: Vec<u8>,
}

/// Flow-mod commands (`OFPFC_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowModCommand {
    /// 0: add a flow.
    Add,
    /// 1: modify all matching flows.
    Modify,
    /// 2: modify the flow with exactly this match and priority.
    ModifyStrict,
    /// 3: delete all matching flows.
    Delete,
    /// 4: delete the flow with exactly this match and priority.
    DeleteStrict,
}

impl FlowModCommand {
    fn from_wire(v: u16) -> Result<FlowModCommand, OfError> {
        Ok(match v {
            0 => FlowModCommand::Add,
            1 => FlowModCommand::Modify,
            2 => FlowModCommand::ModifyStrict,
            3 => FlowModCommand::Delete,
            4 => FlowModCommand::DeleteStrict,
            v => {
                return Err(OfError::Unknown {
                    what: "flow_mod command",
                    value: v.into(),
                })
            }
        })
    }
    /// The wire value.
    pub fn to_wire(self) -> u16 {
        self as u16
    }
}

/// `ofp_flow_mod` (without the header).
#[derive(Clone, Debug, PartialEq)]
pub struct FlowMod {
    /// Fields to match.
    pub match_: Match,
    /// Opaque controller cookie.
    pub cookie: u64,
    /// The command.
    pub command: FlowModCommand,
    /// Idle timeout in seconds (0: none).
    pub idle_timeout: u16,
    /// Hard timeout in seconds (0: none).
    pub hard_timeout: u16,
    /// Priority.
    pub priority: u16,
    /// Buffered packet to apply to, or [`NO_BUFFER`].
    pub buffer_id: u32,
    /// For delete commands: only flows outputting to this port (`OFPP_NONE`: any).
    pub out_port: u16,
    /// [`flow_mod_flags`] bits, raw.
    pub flags: u16,
    /// The actions.
    pub actions: Vec<Action>,
}

/// `ofp_port_mod` (without the header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortMod {
    /// Port number.
    pub port_no: u16,
    /// The port's MAC (a sanity check, not changeable).
    pub hw_addr: [u8; 6],
    /// New `OFPPC_*` bits.
    pub config: u32,
    /// Which `config` bits to change.
    pub mask: u32,
    /// Features to advertise (0: unchanged).
    pub advertise: u32,
}

/// `ofp_match`: all fields kept, wildcards raw (see [`wildcards`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Match {
    /// [`wildcards`] bits.
    pub wildcards: u32,
    /// Input port.
    pub in_port: u16,
    /// Ethernet source.
    pub dl_src: [u8; 6],
    /// Ethernet destination.
    pub dl_dst: [u8; 6],
    /// VLAN id.
    pub dl_vlan: u16,
    /// VLAN priority.
    pub dl_vlan_pcp: u8,
    /// Ethertype.
    pub dl_type: u16,
    /// IP ToS (DSCP in the upper 6 bits).
    pub nw_tos: u8,
    /// IP protocol or ARP opcode (low 8 bits).
    pub nw_proto: u8,
    /// IPv4 source.
    pub nw_src: u32,
    /// IPv4 destination.
    pub nw_dst: u32,
    /// TCP/UDP source port or ICMP type.
    pub tp_src: u16,
    /// TCP/UDP destination port or ICMP code.
    pub tp_dst: u16,
}

impl Match {
    /// Number of low-order `nw_src` bits wildcarded (0..=32; wire values above 32 mean 32).
    pub fn nw_src_wild_bits(&self) -> u32 {
        ((self.wildcards & wildcards::NW_SRC_MASK) >> wildcards::NW_SRC_SHIFT).min(32)
    }
    /// Number of low-order `nw_dst` bits wildcarded (0..=32).
    pub fn nw_dst_wild_bits(&self) -> u32 {
        ((self.wildcards & wildcards::NW_DST_MASK) >> wildcards::NW_DST_SHIFT).min(32)
    }
    /// Prefix length matched on `nw_src` (32: exact, 0: any).
    pub fn nw_src_prefix_len(&self) -> u32 {
        32 - self.nw_src_wild_bits()
    }
    /// Prefix length matched on `nw_dst`.
    pub fn nw_dst_prefix_len(&self) -> u32 {
        32 - self.nw_dst_wild_bits()
    }
    /// The netmask applied to `nw_src`.
    pub fn nw_src_mask(&self) -> u32 {
        prefix_mask(self.nw_src_prefix_len())
    }
    /// The netmask applied to `nw_dst`.
    pub fn nw_dst_mask(&self) -> u32 {
        prefix_mask(self.nw_dst_prefix_len())
    }
    /// Sets how many low-order `nw_src` bits are wildcarded (clamped to 32).
    pub fn set_nw_src_wild_bits(&mut self, bits: u32) {
        self.wildcards =
            (self.wildcards & !wildcards::NW_SRC_MASK) | (bits.min(32) << wildcards::NW_SRC_SHIFT);
    }
    /// Sets how many low-order `nw_dst` bits are wildcarded (clamped to 32).
    pub fn set_nw_dst_wild_bits(&mut self, bits: u32) {
        self.wildcards =
            (self.wildcards & !wildcards::NW_DST_MASK) | (bits.min(32) << wildcards::NW_DST_SHIFT);
    }

    fn parse(r: &mut Reader<'_>) -> Result<Match, OfError> {
        let wildcards = r.u32("match.wildcards")?;
        let in_port = r.u16("match.in_port")?;
        let dl_src = r.array("match.dl_src")?;
        let dl_dst = r.array("match.dl_dst")?;
        let dl_vlan = r.u16("match.dl_vlan")?;
        let dl_vlan_pcp = r.u8("match.dl_vlan_pcp")?;
        r.zero_pad(1, "match pad1")?;
        let dl_type = r.u16("match.dl_type")?;
        let nw_tos = r.u8("match.nw_tos")?;
        let nw_proto = r.u8("match.nw_proto")?;
        r.zero_pad(2, "match pad2")?;
        let nw_src = r.u32("match.nw_src")?;
        let nw_dst = r.u32("match.nw_dst")?;
        let tp_src = r.u16("match.tp_src")?;
        let tp_dst = r.u16("match.tp_dst")?;
        Ok(Match {
            wildcards,
            in_port,
            dl_src,
            dl_dst,
            dl_vlan,
            dl_vlan_pcp,
            dl_type,
            nw_tos,
            nw_proto,
            nw_src,
            nw_dst,
            tp_src,
            tp_dst,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.wildcards.to_be_bytes());
        out.extend_from_slice(&self.in_port.to_be_bytes());
        out.extend_from_slice(&self.dl_src);
        out.extend_from_slice(&self.dl_dst);
        out.extend_from_slice(&self.dl_vlan.to_be_bytes());
        out.push(self.dl_vlan_pcp);
        out.push(0);
        out.extend_from_slice(&self.dl_type.to_be_bytes());
        out.push(self.nw_tos);
        out.push(self.nw_proto);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.nw_src.to_be_bytes());
        out.extend_from_slice(&self.nw_dst.to_be_bytes());
        out.extend_from_slice(&self.tp_src.to_be_bytes());
        out.extend_from_slice(&self.tp_dst.to_be_bytes());
    }
}

fn prefix_mask(len: u32) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32))
    }
}

/// An OpenFlow 1.0 action (`ofp_action_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// OFPAT_OUTPUT.
    Output {
        /// Output port.
        port: u16,
        /// Bytes to send to the controller when `port` is `OFPP_CONTROLLER`.
        max_len: u16,
    },
    /// OFPAT_SET_VLAN_VID.
    SetVlanVid(u16),
    /// OFPAT_SET_VLAN_PCP.
    SetVlanPcp(u8),
    /// OFPAT_STRIP_VLAN.
    StripVlan,
    /// OFPAT_SET_DL_SRC.
    SetDlSrc([u8; 6]),
    /// OFPAT_SET_DL_DST.
    SetDlDst([u8; 6]),
    /// OFPAT_SET_NW_SRC.
    SetNwSrc(u32),
    /// OFPAT_SET_NW_DST.
    SetNwDst(u32),
    /// OFPAT_SET_NW_TOS.
    SetNwTos(u8),
    /// OFPAT_SET_TP_SRC.
    SetTpSrc(u16),
    /// OFPAT_SET_TP_DST.
    SetTpDst(u16),
    /// OFPAT_ENQUEUE.
    Enqueue {
        /// Port the queue belongs to.
        port: u16,
        /// Queue id.
        queue_id: u32,
    },
    /// OFPAT_VENDOR (Nicira actions among them), kept raw.
    Vendor {
        /// Vendor id ([`NX_VENDOR_ID`] for Nicira).
        vendor: u32,
        /// Everything after the vendor id (for Nicira: subtype, then its fields).
        body: Vec<u8>,
    },
    /// An action type this codec does not know, kept raw.
    Unknown {
        /// The action type.
        type_: u16,
        /// Everything after type and length.
        body: Vec<u8>,
    },
}

impl Action {
    /// The wire type (`OFPAT_*`).
    pub fn type_(&self) -> u16 {
        match self {
            Action::Output { .. } => 0,
            Action::SetVlanVid(_) => 1,
            Action::SetVlanPcp(_) => 2,
            Action::StripVlan => 3,
            Action::SetDlSrc(_) => 4,
            Action::SetDlDst(_) => 5,
            Action::SetNwSrc(_) => 6,
            Action::SetNwDst(_) => 7,
            Action::SetNwTos(_) => 8,
            Action::SetTpSrc(_) => 9,
            Action::SetTpDst(_) => 10,
            Action::Enqueue { .. } => 11,
            Action::Vendor { .. } => 0xffff,
            Action::Unknown { type_, .. } => *type_,
        }
    }

    /// The wire length (a multiple of 8 for every action that parsed).
    pub fn len(&self) -> usize {
        match self {
            Action::SetDlSrc(_) | Action::SetDlDst(_) | Action::Enqueue { .. } => 16,
            Action::Vendor { body, .. } => 8 + body.len(),
            Action::Unknown { body, .. } => 4 + body.len(),
            _ => 8,
        }
    }

    /// Whether [`Action::len`] is zero (never: every action has at least a 4-byte header).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Parses a list of actions filling `b` exactly.
    pub fn parse_list(b: &[u8]) -> Result<Vec<Action>, OfError> {
        ACTION.parse_list(b, Action::from_tlv)
    }

    /// Parses one action from `r`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Action, OfError> {
        Action::from_tlv(r.tlv(&ACTION)?)
    }

    /// The typed action for one item of [`ACTION`] (length at least 8, a multiple of 8).
    fn from_tlv(item: Tlv<'_>) -> Result<Action, OfError> {
        let (type_, len, body) = (item.type_, item.bytes.len(), item.body);
        let fixed = |want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(OfError::BadLength {
                    what: "action",
                    length: len,
                })
            }
        };
        let mut b = Reader::new(body);
        let a = match type_ {
            0 => {
                fixed(8)?;
                Action::Output {
                    port: b.u16("output.port")?,
                    max_len: b.u16("output.max_len")?,
                }
            }
            1 => {
                fixed(8)?;
                let vid = b.u16("set_vlan_vid")?;
                b.zero_pad(2, "set_vlan_vid pad")?;
                Action::SetVlanVid(vid)
            }
            2 => {
                fixed(8)?;
                let pcp = b.u8("set_vlan_pcp")?;
                b.zero_pad(3, "set_vlan_pcp pad")?;
                Action::SetVlanPcp(pcp)
            }
            3 => {
                fixed(8)?;
                b.zero_pad(4, "strip_vlan pad")?;
                Action::StripVlan
            }
            4 | 5 => {
                fixed(16)?;
                let addr = b.array("set_dl_addr")?;
                b.zero_pad(6, "set_dl_addr pad")?;
                if type_ == 4 {
                    Action::SetDlSrc(addr)
                } else {
                    Action::SetDlDst(addr)
                }
            }
            6 | 7 => {
                fixed(8)?;
                let addr = b.u32("set_nw_addr")?;
                if type_ == 6 {
                    Action::SetNwSrc(addr)
                } else {
                    Action::SetNwDst(addr)
                }
            }
            8 => {
                fixed(8)?;
                let tos = b.u8("set_nw_tos")?;
                b.zero_pad(3, "set_nw_tos pad")?;
                Action::SetNwTos(tos)
            }
            9 | 10 => {
                fixed(8)?;
                let tp = b.u16("set_tp_port")?;
                b.zero_pad(2, "set_tp_port pad")?;
                if type_ == 9 {
                    Action::SetTpSrc(tp)
                } else {
                    Action::SetTpDst(tp)
                }
            }
            11 => {
                fixed(16)?;
                let port = b.u16("enqueue.port")?;
                b.zero_pad(6, "enqueue pad")?;
                Action::Enqueue {
                    port,
                    queue_id: b.u32("enqueue.queue_id")?,
                }
            }
            0xffff => Action::Vendor {
                vendor: b.u32("vendor action id")?,
                body: b.rest().to_vec(),
            },
            t => Action::Unknown {
                type_: t,
                body: body.to_vec(),
            },
        };
        Ok(a)
    }

    /// Appends the action to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        // The length is back-patched to what was written ([`Action::len`] for every variant);
        // a hand-built oversized vendor body saturates the length field rather than panicking.
        TlvWriter::new(out, ACTION).item(self.type_(), |o| match self {
            Action::Output { port, max_len } => {
                o.extend_from_slice(&port.to_be_bytes());
                o.extend_from_slice(&max_len.to_be_bytes());
            }
            Action::SetVlanVid(v) => {
                o.extend_from_slice(&v.to_be_bytes());
                o.extend_from_slice(&[0; 2]);
            }
            Action::SetVlanPcp(v) | Action::SetNwTos(v) => {
                o.push(*v);
                o.extend_from_slice(&[0; 3]);
            }
            Action::StripVlan => o.extend_from_slice(&[0; 4]),
            Action::SetDlSrc(a) | Action::SetDlDst(a) => {
                o.extend_from_slice(a);
                o.extend_from_slice(&[0; 6]);
            }
            Action::SetNwSrc(a) | Action::SetNwDst(a) => o.extend_from_slice(&a.to_be_bytes()),
            Action::SetTpSrc(p) | Action::SetTpDst(p) => {
                o.extend_from_slice(&p.to_be_bytes());
                o.extend_from_slice(&[0; 2]);
            }
            Action::Enqueue { port, queue_id } => {
                o.extend_from_slice(&port.to_be_bytes());
                o.extend_from_slice(&[0; 6]);
                o.extend_from_slice(&queue_id.to_be_bytes());
            }
            Action::Vendor { vendor, body } => {
                o.extend_from_slice(&vendor.to_be_bytes());
                o.extend_from_slice(body);
            }
            Action::Unknown { body, .. } => o.extend_from_slice(body),
        });
    }
}

/// Stats types (`OFPST_*`).
pub mod stats_type {
    #![allow(missing_docs)]
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT: u16 = 4;
    pub const QUEUE: u16 = 5;
    pub const VENDOR: u16 = 0xffff;
}

/// Body of a flow or aggregate stats request (`ofp_flow_stats_request`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowStatsRequest {
    /// Fields to match.
    pub match_: Match,
    /// Table id or 0xff for all.
    pub table_id: u8,
    /// Only flows outputting to this port (`OFPP_NONE`: any).
    pub out_port: u16,
}

/// The body of a stats request.
#[derive(Clone, Debug, PartialEq)]
pub enum StatsRequest {
    /// OFPST_DESC.
    Desc,
    /// OFPST_FLOW.
    Flow(FlowStatsRequest),
    /// OFPST_AGGREGATE.
    Aggregate(FlowStatsRequest),
    /// OFPST_TABLE.
    Table,
    /// OFPST_PORT: one port or `OFPP_NONE` for all.
    Port {
        /// Port number.
        port_no: u16,
    },
    /// OFPST_QUEUE.
    Queue {
        /// Port number (`OFPP_ALL` for all).
        port_no: u16,
        /// Queue id (0xffffffff for all).
        queue_id: u32,
    },
    /// Any other type (vendor included), body raw.
    Other {
        /// The stats type.
        type_: u16,
        /// The body.
        body: Vec<u8>,
    },
}

/// `ofp_desc_stats`: NUL-padded strings, kept raw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescStats {
    /// Manufacturer.
    pub mfr_desc: [u8; DESC_STR_LEN],
    /// Hardware.
    pub hw_desc: [u8; DESC_STR_LEN],
    /// Software.
    pub sw_desc: [u8; DESC_STR_LEN],
    /// Serial number.
    pub serial_num: [u8; SERIAL_NUM_LEN],
    /// Datapath description.
    pub dp_desc: [u8; DESC_STR_LEN],
}

/// `ofp_flow_stats`.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowStats {
    /// Table id.
    pub table_id: u8,
    /// The flow's match.
    pub match_: Match,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// Priority.
    pub priority: u16,
    /// Idle timeout.
    pub idle_timeout: u16,
    /// Hard timeout.
    pub hard_timeout: u16,
    /// Cookie.
    pub cookie: u64,
    /// Packets matched.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
    /// The flow's actions.
    pub actions: Vec<Action>,
}

/// `ofp_aggregate_stats_reply`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregateStats {
    /// Packets matched.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
    /// Flows counted.
    pub flow_count: u32,
}

/// `ofp_table_stats`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableStats {
    /// Table id.
    pub table_id: u8,
    /// Name, NUL-padded, raw.
    pub name: [u8; TABLE_NAME_LEN],
    /// Wildcards the table supports.
    pub wildcards: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// Active entries.
    pub active_count: u32,
    /// Packets looked up.
    pub lookup_count: u64,
    /// Packets that hit.
    pub matched_count: u64,
}

/// `ofp_port_stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStats {
    /// Port number.
    pub port_no: u16,
    /// rx_packets, tx_packets, rx_bytes, tx_bytes, rx_dropped, tx_dropped, rx_errors, tx_errors,
    /// rx_frame_err, rx_over_err, rx_crc_err, collisions (wire order).
    pub counters: [u64; 12],
}

/// Names of [`PortStats::counters`], in wire order.
pub const PORT_STATS_FIELDS: [&str; 12] = [
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

/// `ofp_queue_stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueStats {
    /// Port number.
    pub port_no: u16,
    /// Queue id.
    pub queue_id: u32,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Packets dropped by overrun.
    pub tx_errors: u64,
}

/// The body of a stats reply.
#[derive(Clone, Debug, PartialEq)]
pub enum StatsReply {
    /// OFPST_DESC.
    Desc(Box<DescStats>),
    /// OFPST_FLOW.
    Flow(Vec<FlowStats>),
    /// OFPST_AGGREGATE.
    Aggregate(AggregateStats),
    /// OFPST_TABLE.
    Table(Vec<TableStats>),
    /// OFPST_PORT.
    Port(Vec<PortStats>),
    /// OFPST_QUEUE.
    Queue(Vec<QueueStats>),
    /// Any other type (vendor included), body raw.
    Other {
        /// The stats type.
        type_: u16,
        /// The body.
        body: Vec<u8>,
    },
}

fn end(r: &Reader<'_>, what: &'static str, length: usize) -> Result<(), OfError> {
    if r.remaining() != 0 {
        return Err(OfError::BadLength { what, length });
    }
    Ok(())
}

fn parse_phy_port(r: &mut Reader<'_>) -> Result<PhyPort, OfError> {
    Ok(PhyPort {
        port_no: r.u16("phy_port.port_no")?,
        hw_addr: r.array("phy_port.hw_addr")?,
        name: r.array("phy_port.name")?,
        config: r.u32("phy_port.config")?,
        state: r.u32("phy_port.state")?,
        curr: r.u32("phy_port.curr")?,
        advertised: r.u32("phy_port.advertised")?,
        supported: r.u32("phy_port.supported")?,
        peer: r.u32("phy_port.peer")?,
    })
}

/// Appends the 48-byte wire form of a port (for OVS's 1.0 port-description stats).
pub fn emit_phy_port(p: &PhyPort, out: &mut Vec<u8>) {
    out.extend_from_slice(&p.port_no.to_be_bytes());
    out.extend_from_slice(&p.hw_addr);
    out.extend_from_slice(&p.name);
    for v in [p.config, p.state, p.curr, p.advertised, p.supported, p.peer] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn parse_flow_stats_request(r: &mut Reader<'_>) -> Result<FlowStatsRequest, OfError> {
    let match_ = Match::parse(r)?;
    let table_id = r.u8("flow_stats_request.table_id")?;
    r.zero_pad(1, "flow_stats_request pad")?;
    let out_port = r.u16("flow_stats_request.out_port")?;
    Ok(FlowStatsRequest {
        match_,
        table_id,
        out_port,
    })
}

fn emit_flow_stats_request(f: &FlowStatsRequest, out: &mut Vec<u8>) {
    f.match_.emit(out);
    out.push(f.table_id);
    out.push(0);
    out.extend_from_slice(&f.out_port.to_be_bytes());
}

/// Reads fixed-size entries until `r` is empty; the body must be a whole number of entries.
fn entries<T>(
    r: &mut Reader<'_>,
    size: usize,
    what: &'static str,
    f: impl Fn(&mut Reader<'_>) -> Result<T, OfError>,
) -> Result<Vec<T>, OfError> {
    if !r.remaining().is_multiple_of(size) {
        return Err(OfError::BadLength {
            what,
            length: r.remaining(),
        });
    }
    let mut v = Vec::with_capacity(r.remaining() / size);
    while r.remaining() > 0 {
        v.push(f(r)?);
    }
    Ok(v)
}

fn parse_stats_request(type_: u16, r: &mut Reader<'_>) -> Result<StatsRequest, OfError> {
    let len = r.remaining();
    let body = match type_ {
        stats_type::DESC => StatsRequest::Desc,
        stats_type::TABLE => StatsRequest::Table,
        stats_type::FLOW => StatsRequest::Flow(parse_flow_stats_request(r)?),
        stats_type::AGGREGATE => StatsRequest::Aggregate(parse_flow_stats_request(r)?),
        stats_type::PORT => {
            let port_no = r.u16("port_stats_request.port_no")?;
            r.zero_pad(6, "port_stats_request pad")?;
            StatsRequest::Port { port_no }
        }
        stats_type::QUEUE => {
            let port_no = r.u16("queue_stats_request.port_no")?;
            r.zero_pad(2, "queue_stats_request pad")?;
            StatsRequest::Queue {
                port_no,
                queue_id: r.u32("queue_stats_request.queue_id")?,
            }
        }
        t => StatsRequest::Other {
            type_: t,
            body: r.rest().to_vec(),
        },
    };
    end(r, "stats request body", len)?;
    Ok(body)
}

fn parse_stats_reply(type_: u16, r: &mut Reader<'_>) -> Result<StatsReply, OfError> {
    let len = r.remaining();
    let body = match type_ {
        stats_type::DESC => StatsReply::Desc(Box::new(DescStats {
            mfr_desc: r.array("desc.mfr_desc")?,
            hw_desc: r.array("desc.hw_desc")?,
            sw_desc: r.array("desc.sw_desc")?,
            serial_num: r.array("desc.serial_num")?,
            dp_desc: r.array("desc.dp_desc")?,
        })),
        stats_type::FLOW => {
            let v = FLOW_STATS.parse_list(r.rest(), |rec| {
                let mut e = Reader::new(rec.body);
                let table_id = e.u8("flow_stats.table_id")?;
                e.zero_pad(1, "flow_stats pad")?;
                let match_ = Match::parse(&mut e)?;
                let duration_sec = e.u32("flow_stats.duration_sec")?;
                let duration_nsec = e.u32("flow_stats.duration_nsec")?;
                let priority = e.u16("flow_stats.priority")?;
                let idle_timeout = e.u16("flow_stats.idle_timeout")?;
                let hard_timeout = e.u16("flow_stats.hard_timeout")?;
                e.zero_pad(6, "flow_stats pad2")?;
                let cookie = e.u64("flow_stats.cookie")?;
                let packet_count = e.u64("flow_stats.packet_count")?;
                let byte_count = e.u64("flow_stats.byte_count")?;
                let actions = Action::parse_list(e.rest())?;
                Ok(FlowStats {
                    table_id,
                    match_,
                    duration_sec,
                    duration_nsec,
                    priority,
                    idle_timeout,
                    hard_timeout,
                    cookie,
                    packet_count,
                    byte_count,
                    actions,
                })
            })?;
            StatsReply::Flow(v)
        }
        stats_type::AGGREGATE => {
            let packet_count = r.u64("aggregate.packet_count")?;
            let byte_count = r.u64("aggregate.byte_count")?;
            let flow_count = r.u32("aggregate.flow_count")?;
            r.zero_pad(4, "aggregate pad")?;
            StatsReply::Aggregate(AggregateStats {
                packet_count,
                byte_count,
                flow_count,
            })
        }
        stats_type::TABLE => StatsReply::Table(entries(r, 64, "table stats", |r| {
            let table_id = r.u8("table_stats.table_id")?;
            r.zero_pad(3, "table_stats pad")?;
            Ok(TableStats {
                table_id,
                name: r.array("table_stats.name")?,
                wildcards: r.u32("table_stats.wildcards")?,
                max_entries: r.u32("table_stats.max_entries")?,
                active_count: r.u32("table_stats.active_count")?,
                lookup_count: r.u64("table_stats.lookup_count")?,
                matched_count: r.u64("table_stats.matched_count")?,
            })
        })?),
        stats_type::PORT => StatsReply::Port(entries(r, 104, "port stats", |r| {
            let port_no = r.u16("port_stats.port_no")?;
            r.zero_pad(6, "port_stats pad")?;
            let mut counters = [0u64; 12];
            for c in &mut counters {
                *c = r.u64("port_stats counter")?;
            }
            Ok(PortStats { port_no, counters })
        })?),
        stats_type::QUEUE => StatsReply::Queue(entries(r, 32, "queue stats", |r| {
            let port_no = r.u16("queue_stats.port_no")?;
            r.zero_pad(2, "queue_stats pad")?;
            Ok(QueueStats {
                port_no,
                queue_id: r.u32("queue_stats.queue_id")?,
                tx_bytes: r.u64("queue_stats.tx_bytes")?,
                tx_packets: r.u64("queue_stats.tx_packets")?,
                tx_errors: r.u64("queue_stats.tx_errors")?,
            })
        })?),
        t => StatsReply::Other {
            type_: t,
            body: r.rest().to_vec(),
        },
    };
    end(r, "stats reply body", len)?;
    Ok(body)
}

impl Message {
    /// The wire message type (`OFPT_*`).
    pub fn type_(&self) -> u8 {
        use msg_type::*;
        match &self.body {
            Body::Hello(_) => HELLO,
            Body::Error { .. } => ERROR,
            Body::EchoRequest(_) => ECHO_REQUEST,
            Body::EchoReply(_) => ECHO_REPLY,
            Body::Vendor { .. } => VENDOR,
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
            Body::PortMod(_) => PORT_MOD,
            Body::StatsRequest { .. } => STATS_REQUEST,
            Body::StatsReply { .. } => STATS_REPLY,
            Body::BarrierRequest => BARRIER_REQUEST,
            Body::BarrierReply => BARRIER_REPLY,
        }
    }

    /// Parses one whole message: `b.len()` must equal the header's length.
    pub fn parse(b: &[u8]) -> Result<Message, OfError> {
        use msg_type::*;
        let h = Header::parse(b)?;
        if h.version != OFP10 {
            return Err(OfError::BadVersion(h.version));
        }
        let len = h.length as usize;
        if b.len() < len {
            return Err(OfError::Truncated {
                what: "message",
                need: len,
                have: b.len(),
            });
        }
        if b.len() > len {
            return Err(OfError::BadLength {
                what: "message (bytes beyond its length field)",
                length: b.len(),
            });
        }
        let mut r = Reader::new(&b[HEADER_LEN..]);
        let r = &mut r;
        let body = match h.type_ {
            HELLO => Body::Hello(r.rest().to_vec()),
            ERROR => Body::Error {
                type_: r.u16("error.type")?,
                code: r.u16("error.code")?,
                data: r.rest().to_vec(),
            },
            ECHO_REQUEST => Body::EchoRequest(r.rest().to_vec()),
            ECHO_REPLY => Body::EchoReply(r.rest().to_vec()),
            VENDOR => Body::Vendor {
                vendor: r.u32("vendor.vendor")?,
                data: r.rest().to_vec(),
            },
            FEATURES_REQUEST => Body::FeaturesRequest,
            FEATURES_REPLY => {
                let datapath_id = r.u64("features.datapath_id")?;
                let n_buffers = r.u32("features.n_buffers")?;
                let n_tables = r.u8("features.n_tables")?;
                r.zero_pad(3, "features pad")?;
                let capabilities = r.u32("features.capabilities")?;
                let actions = r.u32("features.actions")?;
                let ports = entries(r, PHY_PORT_LEN, "features ports", parse_phy_port)?;
                Body::FeaturesReply(SwitchFeatures {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    capabilities,
                    actions,
                    ports,
                })
            }
            GET_CONFIG_REQUEST => Body::GetConfigRequest,
            GET_CONFIG_REPLY | SET_CONFIG => {
                let c = SwitchConfig {
                    flags: r.u16("config.flags")?,
                    miss_send_len: r.u16("config.miss_send_len")?,
                };
                if h.type_ == SET_CONFIG {
                    Body::SetConfig(c)
                } else {
                    Body::GetConfigReply(c)
                }
            }
            PACKET_IN => {
                let buffer_id = r.u32("packet_in.buffer_id")?;
                let total_len = r.u16("packet_in.total_len")?;
                let in_port = r.u16("packet_in.in_port")?;
                let reason = r.u8("packet_in.reason")?;
                r.zero_pad(1, "packet_in pad")?;
                Body::PacketIn(PacketIn {
                    buffer_id,
                    total_len,
                    in_port,
                    reason,
                    data: r.rest().to_vec(),
                })
            }
            FLOW_REMOVED => {
                let match_ = Match::parse(r)?;
                let cookie = r.u64("flow_removed.cookie")?;
                let priority = r.u16("flow_removed.priority")?;
                let reason = r.u8("flow_removed.reason")?;
                r.zero_pad(1, "flow_removed pad")?;
                let duration_sec = r.u32("flow_removed.duration_sec")?;
                let duration_nsec = r.u32("flow_removed.duration_nsec")?;
                let idle_timeout = r.u16("flow_removed.idle_timeout")?;
                r.zero_pad(2, "flow_removed pad2")?;
                let packet_count = r.u64("flow_removed.packet_count")?;
                let byte_count = r.u64("flow_removed.byte_count")?;
                Body::FlowRemoved(FlowRemoved {
                    match_,
                    cookie,
                    priority,
                    reason,
                    duration_sec,
                    duration_nsec,
                    idle_timeout,
                    packet_count,
                    byte_count,
                })
            }
            PORT_STATUS => {
                let reason = r.u8("port_status.reason")?;
                r.zero_pad(7, "port_status pad")?;
                Body::PortStatus {
                    reason,
                    desc: parse_phy_port(r)?,
                }
            }
            PACKET_OUT => {
                let buffer_id = r.u32("packet_out.buffer_id")?;
                let in_port = r.u16("packet_out.in_port")?;
                let actions_len = r.u16("packet_out.actions_len")? as usize;
                let actions = Action::parse_list(r.bytes(actions_len, "packet_out actions")?)?;
                Body::PacketOut(PacketOut {
                    buffer_id,
                    in_port,
                    actions,
                    data: r.rest().to_vec(),
                })
            }
            FLOW_MOD => {
                let match_ = Match::parse(r)?;
                let cookie = r.u64("flow_mod.cookie")?;
                let command = FlowModCommand::from_wire(r.u16("flow_mod.command")?)?;
                let idle_timeout = r.u16("flow_mod.idle_timeout")?;
                let hard_timeout = r.u16("flow_mod.hard_timeout")?;
                let priority = r.u16("flow_mod.priority")?;
                let buffer_id = r.u32("flow_mod.buffer_id")?;
                let out_port = r.u16("flow_mod.out_port")?;
                let flags = r.u16("flow_mod.flags")?;
                let actions = Action::parse_list(r.rest())?;
                Body::FlowMod(FlowMod {
                    match_,
                    cookie,
                    command,
                    idle_timeout,
                    hard_timeout,
                    priority,
                    buffer_id,
                    out_port,
                    flags,
                    actions,
                })
            }
            PORT_MOD => {
                let port_no = r.u16("port_mod.port_no")?;
                let hw_addr = r.array("port_mod.hw_addr")?;
                let config = r.u32("port_mod.config")?;
                let mask = r.u32("port_mod.mask")?;
                let advertise = r.u32("port_mod.advertise")?;
                r.zero_pad(4, "port_mod pad")?;
                Body::PortMod(PortMod {
                    port_no,
                    hw_addr,
                    config,
                    mask,
                    advertise,
                })
            }
            STATS_REQUEST => {
                let type_ = r.u16("stats_request.type")?;
                let flags = r.u16("stats_request.flags")?;
                Body::StatsRequest {
                    flags,
                    body: parse_stats_request(type_, r)?,
                }
            }
            STATS_REPLY => {
                let type_ = r.u16("stats_reply.type")?;
                let flags = r.u16("stats_reply.flags")?;
                Body::StatsReply {
                    flags,
                    body: parse_stats_reply(type_, r)?,
                }
            }
            BARRIER_REQUEST => Body::BarrierRequest,
            BARRIER_REPLY => Body::BarrierReply,
            t => return Err(OfError::BadType(t)),
        };
        end(r, "message body", len)?;
        Ok(Message { xid: h.xid, body })
    }

    /// Emits the message; the header length is computed from the body.
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        Header {
            version: OFP10,
            type_: self.type_(),
            length: 0,
            xid: self.xid,
        }
        .emit(&mut out);
        match &self.body {
            Body::Hello(d) | Body::EchoRequest(d) | Body::EchoReply(d) => out.extend_from_slice(d),
            Body::Error { type_, code, data } => {
                out.extend_from_slice(&type_.to_be_bytes());
                out.extend_from_slice(&code.to_be_bytes());
                out.extend_from_slice(data);
            }
            Body::Vendor { vendor, data } => {
                out.extend_from_slice(&vendor.to_be_bytes());
                out.extend_from_slice(data);
            }
            Body::FeaturesRequest
            | Body::GetConfigRequest
            | Body::BarrierRequest
            | Body::BarrierReply => {}
            Body::FeaturesReply(f) => {
                out.extend_from_slice(&f.datapath_id.to_be_bytes());
                out.extend_from_slice(&f.n_buffers.to_be_bytes());
                out.push(f.n_tables);
                out.extend_from_slice(&[0; 3]);
                out.extend_from_slice(&f.capabilities.to_be_bytes());
                out.extend_from_slice(&f.actions.to_be_bytes());
                for p in &f.ports {
                    emit_phy_port(p, &mut out);
                }
            }
            Body::GetConfigReply(c) | Body::SetConfig(c) => {
                out.extend_from_slice(&c.flags.to_be_bytes());
                out.extend_from_slice(&c.miss_send_len.to_be_bytes());
            }
            Body::PacketIn(p) => {
                out.extend_from_slice(&p.buffer_id.to_be_bytes());
                out.extend_from_slice(&p.total_len.to_be_bytes());
                out.extend_from_slice(&p.in_port.to_be_bytes());
                out.push(p.reason);
                out.push(0);
                out.extend_from_slice(&p.data);
            }
            Body::FlowRemoved(f) => {
                f.match_.emit(&mut out);
                out.extend_from_slice(&f.cookie.to_be_bytes());
                out.extend_from_slice(&f.priority.to_be_bytes());
                out.push(f.reason);
                out.push(0);
                out.extend_from_slice(&f.duration_sec.to_be_bytes());
                out.extend_from_slice(&f.duration_nsec.to_be_bytes());
                out.extend_from_slice(&f.idle_timeout.to_be_bytes());
                out.extend_from_slice(&[0; 2]);
                out.extend_from_slice(&f.packet_count.to_be_bytes());
                out.extend_from_slice(&f.byte_count.to_be_bytes());
            }
            Body::PortStatus { reason, desc } => {
                out.push(*reason);
                out.extend_from_slice(&[0; 7]);
                emit_phy_port(desc, &mut out);
            }
            Body::PacketOut(p) => {
                out.extend_from_slice(&p.buffer_id.to_be_bytes());
                out.extend_from_slice(&p.in_port.to_be_bytes());
                let at = out.len();
                out.extend_from_slice(&[0; 2]);
                for a in &p.actions {
                    a.emit(&mut out);
                }
                let alen = out.len() - at - 2;
                put_len16(&mut out, at, alen);
                out.extend_from_slice(&p.data);
            }
            Body::FlowMod(f) => {
                f.match_.emit(&mut out);
                out.extend_from_slice(&f.cookie.to_be_bytes());
                out.extend_from_slice(&f.command.to_wire().to_be_bytes());
                out.extend_from_slice(&f.idle_timeout.to_be_bytes());
                out.extend_from_slice(&f.hard_timeout.to_be_bytes());
                out.extend_from_slice(&f.priority.to_be_bytes());
                out.extend_from_slice(&f.buffer_id.to_be_bytes());
                out.extend_from_slice(&f.out_port.to_be_bytes());
                out.extend_from_slice(&f.flags.to_be_bytes());
                for a in &f.actions {
                    a.emit(&mut out);
                }
            }
            Body::PortMod(p) => {
                out.extend_from_slice(&p.port_no.to_be_bytes());
                out.extend_from_slice(&p.hw_addr);
                out.extend_from_slice(&p.config.to_be_bytes());
                out.extend_from_slice(&p.mask.to_be_bytes());
                out.extend_from_slice(&p.advertise.to_be_bytes());
                out.extend_from_slice(&[0; 4]);
            }
            Body::StatsRequest { flags, body } => {
                let type_ = match body {
                    StatsRequest::Desc => stats_type::DESC,
                    StatsRequest::Flow(_) => stats_type::FLOW,
                    StatsRequest::Aggregate(_) => stats_type::AGGREGATE,
                    StatsRequest::Table => stats_type::TABLE,
                    StatsRequest::Port { .. } => stats_type::PORT,
                    StatsRequest::Queue { .. } => stats_type::QUEUE,
                    StatsRequest::Other { type_, .. } => *type_,
                };
                out.extend_from_slice(&type_.to_be_bytes());
                out.extend_from_slice(&flags.to_be_bytes());
                match body {
                    StatsRequest::Desc | StatsRequest::Table => {}
                    StatsRequest::Flow(f) | StatsRequest::Aggregate(f) => {
                        emit_flow_stats_request(f, &mut out)
                    }
                    StatsRequest::Port { port_no } => {
                        out.extend_from_slice(&port_no.to_be_bytes());
                        out.extend_from_slice(&[0; 6]);
                    }
                    StatsRequest::Queue { port_no, queue_id } => {
                        out.extend_from_slice(&port_no.to_be_bytes());
                        out.extend_from_slice(&[0; 2]);
                        out.extend_from_slice(&queue_id.to_be_bytes());
                    }
                    StatsRequest::Other { body, .. } => out.extend_from_slice(body),
                }
            }
            Body::StatsReply { flags, body } => {
                let type_ = match body {
                    StatsReply::Desc(_) => stats_type::DESC,
                    StatsReply::Flow(_) => stats_type::FLOW,
                    StatsReply::Aggregate(_) => stats_type::AGGREGATE,
                    StatsReply::Table(_) => stats_type::TABLE,
                    StatsReply::Port(_) => stats_type::PORT,
                    StatsReply::Queue(_) => stats_type::QUEUE,
                    StatsReply::Other { type_, .. } => *type_,
                };
                out.extend_from_slice(&type_.to_be_bytes());
                out.extend_from_slice(&flags.to_be_bytes());
                emit_stats_reply(body, &mut out);
            }
        }
        let len = out.len();
        put_len16(&mut out, 2, len);
        out
    }
}

fn emit_stats_reply(body: &StatsReply, out: &mut Vec<u8>) {
    match body {
        StatsReply::Desc(d) => {
            out.extend_from_slice(&d.mfr_desc);
            out.extend_from_slice(&d.hw_desc);
            out.extend_from_slice(&d.sw_desc);
            out.extend_from_slice(&d.serial_num);
            out.extend_from_slice(&d.dp_desc);
        }
        StatsReply::Flow(v) => {
            let mut w = TlvWriter::new(out, FLOW_STATS);
            for f in v {
                w.record(|o| {
                    o.push(f.table_id);
                    o.push(0);
                    f.match_.emit(o);
                    o.extend_from_slice(&f.duration_sec.to_be_bytes());
                    o.extend_from_slice(&f.duration_nsec.to_be_bytes());
                    o.extend_from_slice(&f.priority.to_be_bytes());
                    o.extend_from_slice(&f.idle_timeout.to_be_bytes());
                    o.extend_from_slice(&f.hard_timeout.to_be_bytes());
                    o.extend_from_slice(&[0; 6]);
                    o.extend_from_slice(&f.cookie.to_be_bytes());
                    o.extend_from_slice(&f.packet_count.to_be_bytes());
                    o.extend_from_slice(&f.byte_count.to_be_bytes());
                    for a in &f.actions {
                        a.emit(o);
                    }
                });
            }
        }
        StatsReply::Aggregate(a) => {
            out.extend_from_slice(&a.packet_count.to_be_bytes());
            out.extend_from_slice(&a.byte_count.to_be_bytes());
            out.extend_from_slice(&a.flow_count.to_be_bytes());
            out.extend_from_slice(&[0; 4]);
        }
        StatsReply::Table(v) => {
            for t in v {
                out.push(t.table_id);
                out.extend_from_slice(&[0; 3]);
                out.extend_from_slice(&t.name);
                out.extend_from_slice(&t.wildcards.to_be_bytes());
                out.extend_from_slice(&t.max_entries.to_be_bytes());
                out.extend_from_slice(&t.active_count.to_be_bytes());
                out.extend_from_slice(&t.lookup_count.to_be_bytes());
                out.extend_from_slice(&t.matched_count.to_be_bytes());
            }
        }
        StatsReply::Port(v) => {
            for p in v {
                out.extend_from_slice(&p.port_no.to_be_bytes());
                out.extend_from_slice(&[0; 6]);
                for c in p.counters {
                    out.extend_from_slice(&c.to_be_bytes());
                }
            }
        }
        StatsReply::Queue(v) => {
            for q in v {
                out.extend_from_slice(&q.port_no.to_be_bytes());
                out.extend_from_slice(&[0; 2]);
                out.extend_from_slice(&q.queue_id.to_be_bytes());
                out.extend_from_slice(&q.tx_bytes.to_be_bytes());
                out.extend_from_slice(&q.tx_packets.to_be_bytes());
                out.extend_from_slice(&q.tx_errors.to_be_bytes());
            }
        }
        StatsReply::Other { body, .. } => out.extend_from_slice(body),
    }
}

// ---- Ryu's JSON shape ---------------------------------------------------------------------------

use serde_json::{json, Map, Value};

fn ip_str(a: u32) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

fn class(name: &str, body: Value) -> Value {
    let mut m = Map::new();
    m.insert(name.to_string(), body);
    Value::Object(m)
}

impl Match {
    /// Ryu's `{"OFPMatch": {...}}`.
    pub fn to_ryu_json(&self) -> Value {
        class(
            "OFPMatch",
            json!({
                "wildcards": self.wildcards, "in_port": self.in_port,
                "dl_src": mac_str(&self.dl_src), "dl_dst": mac_str(&self.dl_dst),
                "dl_vlan": self.dl_vlan, "dl_vlan_pcp": self.dl_vlan_pcp, "dl_type": self.dl_type,
                "nw_tos": self.nw_tos, "nw_proto": self.nw_proto,
                "nw_src": ip_str(self.nw_src), "nw_dst": ip_str(self.nw_dst),
                "tp_src": self.tp_src, "tp_dst": self.tp_dst,
            }),
        )
    }
}

impl PhyPort {
    /// Ryu's `{"OFPPhyPort": {...}}`.
    pub fn to_ryu_json(&self) -> Value {
        class(
            "OFPPhyPort",
            json!({
                "port_no": self.port_no, "hw_addr": mac_str(&self.hw_addr), "name": self.name_str(),
                "config": self.config, "state": self.state, "curr": self.curr,
                "advertised": self.advertised, "supported": self.supported, "peer": self.peer,
            }),
        )
    }
}

impl Action {
    /// Ryu's `{"OFPAction...": {...}}`. Vendor and unknown actions (raw here) show their `type`,
    /// `len`, `vendor` and base64 `data`, where Ryu would decode Nicira actions as `NXAction...`.
    pub fn to_ryu_json(&self) -> Value {
        match self {
            Action::Output { port, max_len } => {
                class("OFPActionOutput", json!({"port": port, "max_len": max_len}))
            }
            Action::SetVlanVid(v) => class("OFPActionVlanVid", json!({ "vlan_vid": v })),
            Action::SetVlanPcp(v) => class("OFPActionVlanPcp", json!({ "vlan_pcp": v })),
            Action::StripVlan => class("OFPActionStripVlan", json!({})),
            Action::SetDlSrc(a) => class("OFPActionSetDlSrc", json!({ "dl_addr": mac_str(a) })),
            Action::SetDlDst(a) => class("OFPActionSetDlDst", json!({ "dl_addr": mac_str(a) })),
            Action::SetNwSrc(a) => class("OFPActionSetNwSrc", json!({ "nw_addr": a })),
            Action::SetNwDst(a) => class("OFPActionSetNwDst", json!({ "nw_addr": a })),
            Action::SetNwTos(t) => class("OFPActionSetNwTos", json!({ "tos": t })),
            Action::SetTpSrc(p) => class("OFPActionSetTpSrc", json!({ "tp": p })),
            Action::SetTpDst(p) => class("OFPActionSetTpDst", json!({ "tp": p })),
            Action::Enqueue { port, queue_id } => class(
                "OFPActionEnqueue",
                json!({"port": port, "queue_id": queue_id}),
            ),
            Action::Vendor { vendor, body } => class(
                "OFPActionVendor",
                json!({"type": self.type_(), "len": self.len(), "vendor": vendor, "data": base64(body)}),
            ),
            Action::Unknown { type_, body } => class(
                "OFPActionUnknown",
                json!({"type": type_, "len": self.len(), "data": base64(body)}),
            ),
        }
    }
}

fn actions_json(a: &[Action]) -> Value {
    Value::Array(a.iter().map(Action::to_ryu_json).collect())
}

fn flow_stats_request_json(f: &FlowStatsRequest, flags: u16) -> Value {
    json!({"flags": flags, "match": f.match_.to_ryu_json(), "table_id": f.table_id, "out_port": f.out_port})
}

impl Message {
    /// The message in Ryu's JSON shape (`{"OFPClassName": {field: value}}`, MACs as strings,
    /// IPv4 match fields dotted, `data` base64), as in Ryu's `to_jsondict()`.
    pub fn to_ryu_json(&self) -> Value {
        match &self.body {
            Body::Hello(_) => class("OFPHello", json!({})),
            Body::Error { type_, code, data } => class(
                "OFPErrorMsg",
                json!({"type": type_, "code": code, "data": base64(data)}),
            ),
            Body::EchoRequest(d) => class("OFPEchoRequest", json!({ "data": base64(d) })),
            Body::EchoReply(d) => class("OFPEchoReply", json!({ "data": base64(d) })),
            Body::Vendor { vendor, data } => {
                class("OFPVendor", json!({"vendor": vendor, "data": base64(data)}))
            }
            Body::FeaturesRequest => class("OFPFeaturesRequest", json!({})),
            Body::FeaturesReply(f) => {
                let ports: Map<String, Value> = f
                    .ports
                    .iter()
                    .map(|p| (p.port_no.to_string(), p.to_ryu_json()))
                    .collect();
                class(
                    "OFPSwitchFeatures",
                    json!({
                        "datapath_id": f.datapath_id, "n_buffers": f.n_buffers, "n_tables": f.n_tables,
                        "capabilities": f.capabilities, "actions": f.actions, "ports": ports,
                    }),
                )
            }
            Body::GetConfigRequest => class("OFPGetConfigRequest", json!({})),
            Body::GetConfigReply(c) => class(
                "OFPGetConfigReply",
                json!({"flags": c.flags, "miss_send_len": c.miss_send_len}),
            ),
            Body::SetConfig(c) => class(
                "OFPSetConfig",
                json!({"flags": c.flags, "miss_send_len": c.miss_send_len}),
            ),
            Body::PacketIn(p) => class(
                "OFPPacketIn",
                json!({
                    "buffer_id": p.buffer_id, "total_len": p.total_len, "in_port": p.in_port,
                    "reason": p.reason, "data": base64(&p.data),
                }),
            ),
            Body::FlowRemoved(f) => class(
                "OFPFlowRemoved",
                json!({
                    "match": f.match_.to_ryu_json(), "cookie": f.cookie, "priority": f.priority,
                    "reason": f.reason, "duration_sec": f.duration_sec, "duration_nsec": f.duration_nsec,
                    "idle_timeout": f.idle_timeout, "packet_count": f.packet_count, "byte_count": f.byte_count,
                }),
            ),
            Body::PortStatus { reason, desc } => class(
                "OFPPortStatus",
                json!({"reason": reason, "desc": desc.to_ryu_json()}),
            ),
            Body::PacketOut(p) => class(
                "OFPPacketOut",
                json!({
                    "buffer_id": p.buffer_id, "in_port": p.in_port,
                    "actions": actions_json(&p.actions), "data": base64(&p.data),
                }),
            ),
            Body::FlowMod(f) => class(
                "OFPFlowMod",
                json!({
                    "match": f.match_.to_ryu_json(), "cookie": f.cookie, "command": f.command.to_wire(),
                    "idle_timeout": f.idle_timeout, "hard_timeout": f.hard_timeout, "priority": f.priority,
                    "buffer_id": f.buffer_id, "out_port": f.out_port, "flags": f.flags,
                    "actions": actions_json(&f.actions),
                }),
            ),
            Body::PortMod(p) => class(
                "OFPPortMod",
                json!({
                    "port_no": p.port_no, "hw_addr": mac_str(&p.hw_addr), "config": p.config,
                    "mask": p.mask, "advertise": p.advertise,
                }),
            ),
            Body::StatsRequest { flags, body } => match body {
                StatsRequest::Desc => class("OFPDescStatsRequest", json!({ "flags": flags })),
                StatsRequest::Flow(f) => {
                    class("OFPFlowStatsRequest", flow_stats_request_json(f, *flags))
                }
                StatsRequest::Aggregate(f) => class(
                    "OFPAggregateStatsRequest",
                    flow_stats_request_json(f, *flags),
                ),
                StatsRequest::Table => class("OFPTableStatsRequest", json!({ "flags": flags })),
                StatsRequest::Port { port_no } => class(
                    "OFPPortStatsRequest",
                    json!({"flags": flags, "port_no": port_no}),
                ),
                StatsRequest::Queue { port_no, queue_id } => class(
                    "OFPQueueStatsRequest",
                    json!({"flags": flags, "port_no": port_no, "queue_id": queue_id}),
                ),
                StatsRequest::Other { type_, body } => class(
                    "OFPStatsRequest",
                    json!({"type": type_, "flags": flags, "data": base64(body)}),
                ),
            },
            Body::StatsReply { flags, body } => {
                let (name, body) = stats_reply_json(body);
                class(name, json!({"flags": flags, "body": body}))
            }
            Body::BarrierRequest => class("OFPBarrierRequest", json!({})),
            Body::BarrierReply => class("OFPBarrierReply", json!({})),
        }
    }
}

fn stats_reply_json(body: &StatsReply) -> (&'static str, Value) {
    match body {
        StatsReply::Desc(d) => (
            "OFPDescStatsReply",
            class(
                "OFPDescStats",
                json!({
                    "mfr_desc": c_str(&d.mfr_desc), "hw_desc": c_str(&d.hw_desc), "sw_desc": c_str(&d.sw_desc),
                    "serial_num": c_str(&d.serial_num), "dp_desc": c_str(&d.dp_desc),
                }),
            ),
        ),
        StatsReply::Flow(v) => (
            "OFPFlowStatsReply",
            v.iter()
                .map(|f| {
                    class(
                        "OFPFlowStats",
                        json!({
                            "length": 88 + f.actions.iter().map(Action::len).sum::<usize>(),
                            "table_id": f.table_id, "match": f.match_.to_ryu_json(),
                            "duration_sec": f.duration_sec, "duration_nsec": f.duration_nsec,
                            "priority": f.priority, "idle_timeout": f.idle_timeout,
                            "hard_timeout": f.hard_timeout, "cookie": f.cookie,
                            "packet_count": f.packet_count, "byte_count": f.byte_count,
                            "actions": actions_json(&f.actions),
                        }),
                    )
                })
                .collect(),
        ),
        StatsReply::Aggregate(a) => (
            "OFPAggregateStatsReply",
            json!([class(
                "OFPAggregateStats",
                json!({"packet_count": a.packet_count, "byte_count": a.byte_count, "flow_count": a.flow_count}),
            )]),
        ),
        StatsReply::Table(v) => (
            "OFPTableStatsReply",
            v.iter()
                .map(|t| {
                    class(
                        "OFPTableStats",
                        json!({
                            "table_id": t.table_id, "name": c_str(&t.name), "wildcards": t.wildcards,
                            "max_entries": t.max_entries, "active_count": t.active_count,
                            "lookup_count": t.lookup_count, "matched_count": t.matched_count,
                        }),
                    )
                })
                .collect(),
        ),
        StatsReply::Port(v) => (
            "OFPPortStatsReply",
            v.iter()
                .map(|p| {
                    let mut m = Map::new();
                    m.insert("port_no".into(), json!(p.port_no));
                    for (k, c) in PORT_STATS_FIELDS.iter().zip(p.counters) {
                        m.insert((*k).into(), json!(c));
                    }
                    class("OFPPortStats", Value::Object(m))
                })
                .collect(),
        ),
        StatsReply::Queue(v) => (
            "OFPQueueStatsReply",
            v.iter()
                .map(|q| {
                    class(
                        "OFPQueueStats",
                        json!({
                            "port_no": q.port_no, "queue_id": q.queue_id, "tx_bytes": q.tx_bytes,
                            "tx_packets": q.tx_packets, "tx_errors": q.tx_errors,
                        }),
                    )
                })
                .collect(),
        ),
        StatsReply::Other { body, .. } => ("OFPStatsReply", json!(base64(body))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: Message) -> Vec<u8> {
        let b = m.emit();
        assert_eq!(u16::from_be_bytes([b[2], b[3]]) as usize, b.len());
        let back = Message::parse(&b).unwrap_or_else(|e| panic!("{m:?}: {e}"));
        assert_eq!(back, m);
        assert_eq!(back.emit(), b);
        // Every strict prefix is an error, never a panic (and never a different message).
        for n in 0..b.len() {
            assert!(
                Message::parse(&b[..n]).is_err(),
                "prefix {n} of {m:?} parsed"
            );
        }
        b
    }

    fn m(xid: u32, body: Body) -> Message {
        Message { xid, body }
    }

    fn sample_match() -> Match {
        let mut mt = Match {
            wildcards: wildcards::DL_VLAN | wildcards::TP_SRC,
            in_port: 3,
            dl_src: [2, 0, 0, 0, 0, 1],
            dl_dst: [2, 0, 0, 0, 0, 2],
            dl_type: 0x0800,
            nw_proto: 6,
            nw_src: 0x0a00_0001,
            nw_dst: 0xc0a8_0100,
            tp_dst: 80,
            ..Match::default()
        };
        mt.set_nw_dst_wild_bits(8);
        mt
    }

    fn all_actions() -> Vec<Action> {
        vec![
            Action::Output {
                port: 1,
                max_len: 0,
            },
            Action::SetVlanVid(100),
            Action::SetVlanPcp(5),
            Action::StripVlan,
            Action::SetDlSrc([1, 2, 3, 4, 5, 6]),
            Action::SetDlDst([6, 5, 4, 3, 2, 1]),
            Action::SetNwSrc(0x0102_0304),
            Action::SetNwDst(0x0506_0708),
            Action::SetNwTos(0x20),
            Action::SetTpSrc(1234),
            Action::SetTpDst(80),
            Action::Enqueue {
                port: 2,
                queue_id: 7,
            },
            Action::Vendor {
                vendor: NX_VENDOR_ID,
                body: vec![0, 0x12, 0, 0, 0, 0, 0, 0],
            },
            Action::Unknown {
                type_: 99,
                body: vec![0; 4],
            },
        ]
    }

    fn phy(port_no: u16) -> PhyPort {
        let mut name = [0u8; 16];
        name[..3].copy_from_slice(b"p01");
        PhyPort {
            port_no,
            hw_addr: [2, 0, 0, 0, 0, 9],
            name,
            config: 1,
            state: 2,
            curr: 3,
            advertised: 4,
            supported: 5,
            peer: 6,
        }
    }

    #[test]
    fn every_message_round_trips() {
        let fm = FlowMod {
            match_: sample_match(),
            cookie: 0x1122_3344_5566_7788,
            command: FlowModCommand::ModifyStrict,
            idle_timeout: 10,
            hard_timeout: 20,
            priority: 0x8000,
            buffer_id: NO_BUFFER,
            out_port: port::NONE,
            flags: flow_mod_flags::SEND_FLOW_REM | flow_mod_flags::CHECK_OVERLAP,
            actions: all_actions(),
        };
        let fsr = FlowStatsRequest {
            match_: sample_match(),
            table_id: 0xff,
            out_port: port::NONE,
        };
        let bodies = vec![
            Body::Hello(vec![]),
            Body::Error {
                type_: 1,
                code: 2,
                data: vec![1, 0, 0, 8, 0, 0, 0, 1],
            },
            Body::EchoRequest(b"ping".to_vec()),
            Body::EchoReply(vec![]),
            Body::Vendor {
                vendor: NX_VENDOR_ID,
                data: vec![0, 0, 0, 10],
            },
            Body::FeaturesRequest,
            Body::FeaturesReply(SwitchFeatures {
                datapath_id: 42,
                n_buffers: 256,
                n_tables: 1,
                capabilities: 0x87,
                actions: 0xfff,
                ports: vec![phy(1), phy(port::LOCAL)],
            }),
            Body::GetConfigRequest,
            Body::GetConfigReply(SwitchConfig {
                flags: 0,
                miss_send_len: 128,
            }),
            Body::SetConfig(SwitchConfig {
                flags: 1,
                miss_send_len: 0xffff,
            }),
            Body::PacketIn(PacketIn {
                buffer_id: NO_BUFFER,
                total_len: 3,
                in_port: 1,
                reason: 0,
                data: vec![1, 2, 3],
            }),
            Body::FlowRemoved(FlowRemoved {
                match_: sample_match(),
                cookie: 9,
                priority: 7,
                reason: 2,
                duration_sec: 1,
                duration_nsec: 2,
                idle_timeout: 3,
                packet_count: 4,
                byte_count: 5,
            }),
            Body::PortStatus {
                reason: 2,
                desc: phy(4),
            },
            Body::PacketOut(PacketOut {
                buffer_id: NO_BUFFER,
                in_port: port::CONTROLLER,
                actions: all_actions(),
                data: vec![0xaa; 60],
            }),
            Body::FlowMod(fm.clone()),
            Body::FlowMod(FlowMod {
                command: FlowModCommand::DeleteStrict,
                actions: vec![],
                ..fm
            }),
            Body::PortMod(PortMod {
                port_no: 1,
                hw_addr: [2, 0, 0, 0, 0, 9],
                config: 1,
                mask: 1,
                advertise: 0,
            }),
            Body::StatsRequest {
                flags: 0,
                body: StatsRequest::Desc,
            },
            Body::StatsRequest {
                flags: 0,
                body: StatsRequest::Flow(fsr),
            },
            Body::StatsRequest {
                flags: 0,
                body: StatsRequest::Aggregate(fsr),
            },
            Body::StatsRequest {
                flags: 0,
                body: StatsRequest::Table,
            },
            Body::StatsRequest {
                flags: 0,
                body: StatsRequest::Port {
                    port_no: port::NONE,
                },
            },
            Body::StatsRequest {
                flags: 0,
                body: StatsRequest::Queue {
                    port_no: port::ALL,
                    queue_id: 0xffff_ffff,
                },
            },
            Body::StatsRequest {
                flags: 0,
                body: StatsRequest::Other {
                    type_: 0xffff,
                    body: vec![0, 0, 0x23, 0x20],
                },
            },
            Body::StatsReply {
                flags: 0,
                body: StatsReply::Desc(Box::new(DescStats {
                    mfr_desc: [b'm'; DESC_STR_LEN],
                    hw_desc: [0; DESC_STR_LEN],
                    sw_desc: [b's'; DESC_STR_LEN],
                    serial_num: [b'1'; SERIAL_NUM_LEN],
                    dp_desc: [0; DESC_STR_LEN],
                })),
            },
            Body::StatsReply {
                flags: 1,
                body: StatsReply::Flow(vec![
                    FlowStats {
                        table_id: 0,
                        match_: sample_match(),
                        duration_sec: 1,
                        duration_nsec: 2,
                        priority: 3,
                        idle_timeout: 4,
                        hard_timeout: 5,
                        cookie: 6,
                        packet_count: 7,
                        byte_count: 8,
                        actions: all_actions(),
                    },
                    FlowStats {
                        table_id: 1,
                        match_: Match {
                            wildcards: wildcards::ALL,
                            ..Match::default()
                        },
                        duration_sec: 0,
                        duration_nsec: 0,
                        priority: 0,
                        idle_timeout: 0,
                        hard_timeout: 0,
                        cookie: 0,
                        packet_count: 0,
                        byte_count: 0,
                        actions: vec![],
                    },
                ]),
            },
            Body::StatsReply {
                flags: 0,
                body: StatsReply::Aggregate(AggregateStats {
                    packet_count: 1,
                    byte_count: 2,
                    flow_count: 3,
                }),
            },
            Body::StatsReply {
                flags: 0,
                body: StatsReply::Table(vec![TableStats {
                    table_id: 0,
                    name: [b't'; TABLE_NAME_LEN],
                    wildcards: wildcards::ALL,
                    max_entries: 1 << 20,
                    active_count: 5,
                    lookup_count: 6,
                    matched_count: 7,
                }]),
            },
            Body::StatsReply {
                flags: 0,
                body: StatsReply::Port(vec![
                    PortStats {
                        port_no: 1,
                        counters: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
                    },
                    PortStats {
                        port_no: 2,
                        counters: [0; 12],
                    },
                ]),
            },
            Body::StatsReply {
                flags: 0,
                body: StatsReply::Queue(vec![QueueStats {
                    port_no: 1,
                    queue_id: 2,
                    tx_bytes: 3,
                    tx_packets: 4,
                    tx_errors: 5,
                }]),
            },
            Body::StatsReply {
                flags: 0,
                body: StatsReply::Other {
                    type_: 7,
                    body: vec![1, 2, 3],
                },
            },
            Body::BarrierRequest,
            Body::BarrierReply,
        ];
        let mut types = std::collections::BTreeSet::new();
        for (i, b) in bodies.into_iter().enumerate() {
            let msg = m(i as u32, b);
            types.insert(msg.type_());
            let bytes = round_trip(msg.clone());
            assert_eq!(bytes[0], OFP10);
            assert_eq!(
                u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
                i as u32
            );
            // The JSON form names a Ryu class.
            let j = msg.to_ryu_json();
            let name = j
                .as_object()
                .and_then(|o| o.keys().next())
                .cloned()
                .unwrap_or_default();
            assert!(name.starts_with("OFP"), "{name}");
        }
        assert_eq!(
            types.len(),
            20,
            "every OpenFlow 1.0 message type 0..=19 is covered"
        );
    }

    #[test]
    fn known_wire_layouts() {
        // An output action to port 6, max_len 0xffff: type 0, len 8.
        let mut out = Vec::new();
        Action::Output {
            port: 6,
            max_len: 0xffff,
        }
        .emit(&mut out);
        assert_eq!(out, [0, 0, 0, 8, 0, 6, 0xff, 0xff]);
        // Echo request: header + payload.
        let b = m(7, Body::EchoRequest(vec![0xab])).emit();
        assert_eq!(b, [1, 2, 0, 9, 0, 0, 0, 7, 0xab]);
        // Sizes fixed by the spec.
        assert_eq!(
            m(
                0,
                Body::FlowMod(FlowMod {
                    match_: Match::default(),
                    cookie: 0,
                    command: FlowModCommand::Add,
                    idle_timeout: 0,
                    hard_timeout: 0,
                    priority: 0,
                    buffer_id: 0,
                    out_port: 0,
                    flags: 0,
                    actions: vec![],
                })
            )
            .emit()
            .len(),
            72
        );
        assert_eq!(
            m(
                0,
                Body::PortStatus {
                    reason: 0,
                    desc: phy(1)
                }
            )
            .emit()
            .len(),
            64
        );
        assert_eq!(
            m(
                0,
                Body::PortMod(PortMod {
                    port_no: 0,
                    hw_addr: [0; 6],
                    config: 0,
                    mask: 0,
                    advertise: 0
                })
            )
            .emit()
            .len(),
            32
        );
        assert_eq!(
            m(
                0,
                Body::FlowRemoved(FlowRemoved {
                    match_: Match::default(),
                    cookie: 0,
                    priority: 0,
                    reason: 0,
                    duration_sec: 0,
                    duration_nsec: 0,
                    idle_timeout: 0,
                    packet_count: 0,
                    byte_count: 0,
                })
            )
            .emit()
            .len(),
            88
        );
    }

    #[test]
    fn nw_prefix_wildcards() {
        let mut mt = Match::default();
        mt.set_nw_src_wild_bits(8);
        mt.set_nw_dst_wild_bits(32);
        assert_eq!(mt.wildcards, (8 << 8) | (32 << 14));
        assert_eq!(mt.nw_src_prefix_len(), 24);
        assert_eq!(mt.nw_src_mask(), 0xffff_ff00);
        assert_eq!(mt.nw_dst_prefix_len(), 0);
        assert_eq!(mt.nw_dst_mask(), 0);
        // Wire values 33..=63 mean "all wildcarded", as in the spec.
        mt.wildcards = 63 << 8;
        assert_eq!(mt.nw_src_prefix_len(), 0);
        mt.wildcards = 0;
        assert_eq!(mt.nw_src_mask(), u32::MAX);
        // Ryu's vector 1-2: wildcards 0x3ffff7 = everything but dl_dst.
        mt.wildcards = 0x003f_fff7;
        assert_eq!(mt.wildcards & wildcards::DL_DST, 0);
        assert_eq!(mt.nw_src_prefix_len(), 0);
    }

    #[test]
    fn bad_input_is_an_error() {
        let good = m(
            1,
            Body::FlowMod(FlowMod {
                match_: Match::default(),
                cookie: 0,
                command: FlowModCommand::Add,
                idle_timeout: 0,
                hard_timeout: 0,
                priority: 0,
                buffer_id: 0,
                out_port: 0,
                flags: 0,
                actions: vec![Action::Output {
                    port: 1,
                    max_len: 0,
                }],
            }),
        )
        .emit();
        assert!(Message::parse(&good).is_ok());
        // Non-zero padding in the match.
        let mut b = good.clone();
        b[8 + 21] = 1;
        assert!(matches!(
            Message::parse(&b),
            Err(OfError::NonZeroPadding { .. })
        ));
        // Action length not a multiple of 8, zero, and longer than the message.
        for bad_len in [0u16, 4, 12, 16] {
            let mut b = good.clone();
            b[72 + 2..72 + 4].copy_from_slice(&bad_len.to_be_bytes());
            assert!(Message::parse(&b).is_err(), "action len {bad_len}");
        }
        // Unknown flow_mod command.
        let mut b = good.clone();
        b[56..58].copy_from_slice(&5u16.to_be_bytes());
        assert!(matches!(
            Message::parse(&b),
            Err(OfError::Unknown { value: 5, .. })
        ));
        // Wrong version, unknown type, trailing bytes beyond the length field.
        let mut b = good.clone();
        b[0] = 4;
        assert!(matches!(Message::parse(&b), Err(OfError::BadVersion(4))));
        assert!(matches!(
            Message::parse(&[1, 20, 0, 8, 0, 0, 0, 0]),
            Err(OfError::BadType(20))
        ));
        let mut b = good.clone();
        b.push(0);
        assert!(Message::parse(&b).is_err());
        // Packet-out whose actions_len runs past the end.
        let mut po = m(
            0,
            Body::PacketOut(PacketOut {
                buffer_id: 0,
                in_port: 0,
                actions: vec![],
                data: vec![],
            }),
        )
        .emit();
        po[14..16].copy_from_slice(&8u16.to_be_bytes());
        assert!(matches!(
            Message::parse(&po),
            Err(OfError::Truncated { .. })
        ));
        // A features reply whose ports are not whole ofp_phy_ports.
        let mut fr = m(
            0,
            Body::FeaturesReply(SwitchFeatures {
                datapath_id: 0,
                n_buffers: 0,
                n_tables: 0,
                capabilities: 0,
                actions: 0,
                ports: vec![phy(1)],
            }),
        )
        .emit();
        fr.pop();
        let n = fr.len() as u16;
        fr[2..4].copy_from_slice(&n.to_be_bytes());
        assert!(matches!(
            Message::parse(&fr),
            Err(OfError::BadLength { .. })
        ));
        // Barrier request with a body.
        assert!(Message::parse(&[1, 18, 0, 9, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }
}
