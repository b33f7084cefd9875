//! OpenFlow 1.3 messages: the [`Message`] (xid and typed [`Body`]) with parse / emit of every
//! body this codec types, hello elements, and Ryu-shaped JSON.
//!
//! Contract: [`Message::parse`] takes exactly one whole message (header length == bytes), never
//! panics, and leaves no byte unread ([`OfError::BadLength`] otherwise). Unknown message types
//! within the 1.3 type space, and unknown multipart types, come back as [`Body::Other`] with
//! their raw bytes; a type beyond that space is [`OfError::BadType`]. `emit(parse(b)) == b`.

use super::super::tlv::{Align, TlvFormat, TlvWriter};
use super::super::wire::{p16, p32, p64, p8, pad, put_len16};
use super::super::{Header, OfError, Reader, HEADER_LEN, OFP13};
use super::actions::{actions_json, emit_actions};
use super::instructions::emit_instructions;
use super::multipart::{self, MultipartReply, MultipartRequest};
use super::{base64, msg_type, Action, Bucket, Instruction, Match, Port};
use serde_json::{json, Value};

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

/// A hello element: type, length (header and body), body, zero padding to 8.
const HELLO_ELEM: TlvFormat = TlvFormat::type_len(
    "hello element",
    4,
    Align::Padded {
        to: 8,
        what: "hello element padding",
    },
);

/// `OFPHET_VERSIONBITMAP`.
const HELLO_VERSION_BITMAP: u16 = 1;

fn parse_hello(r: &mut Reader<'_>) -> Result<Vec<HelloElem>, OfError> {
    HELLO_ELEM.parse_list(r.rest(), |e| {
        Ok(
            if e.type_ == HELLO_VERSION_BITMAP && e.body.len().is_multiple_of(4) {
                HelloElem::VersionBitmap(
                    e.body
                        .chunks(4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                )
            } else {
                HelloElem::Unknown {
                    type_: e.type_,
                    body: e.body.to_vec(),
                }
            },
        )
    })
}

fn emit_hello(o: &mut Vec<u8>, els: &[HelloElem]) {
    let mut w = TlvWriter::new(o, HELLO_ELEM);
    for e in els {
        match e {
            HelloElem::VersionBitmap(b) => w.item(HELLO_VERSION_BITMAP, |o| {
                for x in b {
                    p32(o, *x);
                }
            }),
            HelloElem::Unknown { type_, body } => w.item(*type_, |o| o.extend_from_slice(body)),
        };
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
                    multipart::parse_mp_request(mt, r)?
                        .map(|body| Body::MultipartRequest { flags, body })
                } else {
                    multipart::parse_mp_reply(mt, r)?
                        .map(|body| Body::MultipartReply { flags, body })
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
                let alen = emit_actions(o, &p.actions);
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
                emit_instructions(o, &f.instructions);
            }
            Body::GroupMod(g) => {
                p16(o, g.command);
                p8(o, g.type_);
                pad(o, 1);
                p32(o, g.group_id);
                g.buckets.iter().for_each(|b| b.emit(o));
            }
            Body::MultipartRequest { flags, body } => {
                p16(o, multipart::mp_request_type(body));
                p16(o, *flags);
                pad(o, 4);
                multipart::emit_mp_request(o, body);
            }
            Body::MultipartReply { flags, body } => {
                p16(o, multipart::mp_reply_type(body));
                p16(o, *flags);
                pad(o, 4);
                multipart::emit_mp_reply(o, body);
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
                let actions_len = emit_actions(&mut Vec::new(), &p.actions);
                (
                    "OFPPacketOut",
                    json!({"actions": actions_json(&p.actions), "actions_len": actions_len, "buffer_id": p.buffer_id,
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
            Body::MultipartRequest { flags, body } => multipart::request_json(*flags, body),
            Body::MultipartReply { flags, body } => multipart::reply_json(*flags, body),
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
