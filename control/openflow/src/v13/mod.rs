//! OpenFlow 1.3 messages on the wire: typed parse/emit for what a switch's controller channel
//! needs, and `Other` (raw, re-emitted exactly) for every other message type.
//!
//! Contract: [`Message::parse`] takes exactly one whole message (header length == bytes), never
//! panics, and checks every inner length (match, OXM, actions, instructions, buckets, multipart
//! bodies, table-feature properties) against the bytes and its enclosing length
//! ([`OfError::Truncated`](super::OfError::Truncated) /
//! [`OfError::BadLength`](super::OfError::BadLength)). `emit(parse(b)) == b` for every message it
//! accepts: padding is emitted as zeros, and any action / instruction / property / OXM field that
//! would not re-emit byte-for-byte from its typed form (unknown type, odd length, non-zero padding)
//! is kept raw. [`Message::to_ryu_json`] renders typed messages in the JSON shape of Ryu's
//! `ofproto_v1_3_parser` (`{"OFPClassName": {...}}`) for comparison with Ryu's test vectors.
//!
//! Layout: OXM fields and TLVs (`oxm`), the match (`matching`), actions and group buckets
//! (`actions`), instructions, ports, multipart bodies (`multipart`, with `table_features` on its
//! own) and the messages themselves (`messages`) each live in a private module; everything
//! public is re-exported here, so `v13::X` is the one path. Every length-prefixed list (actions,
//! instructions, buckets, hello elements, properties, stats records, the match) is read and
//! written through [`super::tlv`].

mod actions;
mod instructions;
mod matching;
mod messages;
mod multipart;
mod oxm;
mod ports;
mod table_features;

pub use super::{base64, c_str, mac_str};
pub use actions::{Action, Bucket};
pub use instructions::Instruction;
pub use matching::Match;
pub use messages::{
    Body, ErrorMsg, FlowMod, FlowRemoved, GroupMod, HelloElem, Message, PacketIn, PacketOut,
    SwitchConfig, SwitchFeatures,
};
pub use multipart::{
    FlowStats, FlowStatsRequest, GroupDesc, GroupStats, MultipartReply, MultipartRequest,
    PortStats, TableStats, PORT_STATS_COUNTERS,
};
pub use oxm::{Oxm, OxmField, OxmKind, OXM_CLASS_BASIC};
pub use ports::Port;
pub use table_features::{TableFeatureProp, TableFeatures};

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

#[cfg(test)]
mod tests;
