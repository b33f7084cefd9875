//! Actions (`ofp_action_*`) and the lists that hold them: an instruction's or a packet-out's
//! action list and a group's buckets, all read and written through [`super::super::tlv`].
//!
//! Contract: a list must be a whole number of items whose lengths are at least their header and
//! fit the bytes (else [`OfError::BadLength`] / [`OfError::Truncated`], `what` "action" or
//! "bucket"). Inside a well-formed list an action is typed only if its typed form re-emits
//! exactly its bytes; any other action (unknown type, odd length, non-zero padding) is kept as
//! [`Action::Unknown`], so emit reproduces the list. Bucket padding must be zero.

use super::super::tlv::{Align, Tlv, TlvFormat, TlvWriter};
use super::super::wire::{p16, p32, p8, pad, pad8};
use super::super::{OfError, Reader};
use super::{base64, Oxm};
use serde_json::{json, Value};

/// An action: type, length (header included), body.
pub(crate) const ACTION: TlvFormat = TlvFormat::type_len("action", 4, Align::Any);
/// A bucket: length, weight, watch port and group, padding, actions.
pub(crate) const BUCKET: TlvFormat = TlvFormat::len_first("bucket", 16);

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

    /// The typed action for `item`, or [`Action::Unknown`] when it does not re-emit exactly.
    fn from_tlv(item: Tlv<'_>) -> Action {
        match Action::typed(item.type_, item.body) {
            Ok(a) if a.emitted() == item.bytes => a,
            _ => Action::Unknown {
                type_: item.type_,
                body: item.body.to_vec(),
            },
        }
    }

    /// Parses an action list filling `b`.
    pub(crate) fn parse_list(b: &[u8]) -> Result<Vec<Action>, OfError> {
        ACTION.parse_list(b, |item| Ok(Action::from_tlv(item)))
    }

    fn emitted(&self) -> Vec<u8> {
        let mut o = Vec::new();
        self.emit(&mut o);
        o
    }

    /// Appends the action.
    pub(crate) fn emit(&self, o: &mut Vec<u8>) {
        self.write(&mut TlvWriter::new(o, ACTION));
    }

    /// Appends the action to a writer of [`ACTION`] items.
    pub(crate) fn write(&self, w: &mut TlvWriter<'_>) {
        w.item(self.type_(), |o| {
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
                Action::PushVlan(e)
                | Action::PushMpls(e)
                | Action::PopMpls(e)
                | Action::PushPbb(e) => {
                    p16(o, *e);
                    pad(o, 2);
                }
                Action::SetQueue(x) | Action::Group(x) => p32(o, *x),
                Action::SetField(f) => {
                    // The OXM and zero padding to 8, all counted in the action's length.
                    let s = o.len();
                    f.emit(o);
                    pad(o, pad8(4 + o.len() - s));
                }
                Action::Experimenter { experimenter, data } => {
                    p32(o, *experimenter);
                    o.extend_from_slice(data);
                }
                Action::Unknown { body, .. } => o.extend_from_slice(body),
                _ => pad(o, 4),
            }
        });
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

/// Appends an action list; returns its length in bytes.
pub(crate) fn emit_actions(o: &mut Vec<u8>, a: &[Action]) -> usize {
    let mut w = TlvWriter::new(o, ACTION);
    for x in a {
        x.write(&mut w);
    }
    w.written()
}

/// Ryu's JSON for an action list.
pub(crate) fn actions_json(a: &[Action]) -> Value {
    Value::Array(a.iter().map(Action::to_ryu_json).collect())
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
    /// Parses a bucket list filling `b`.
    pub(crate) fn parse_list(b: &[u8]) -> Result<Vec<Bucket>, OfError> {
        BUCKET.parse_list(b, |item| {
            let mut br = Reader::new(item.body);
            let weight = br.u16("bucket weight")?;
            let watch_port = br.u32("watch port")?;
            let watch_group = br.u32("watch group")?;
            br.zero_pad(4, "bucket padding")?;
            Ok(Bucket {
                weight,
                watch_port,
                watch_group,
                actions: Action::parse_list(br.rest())?,
            })
        })
    }

    /// Appends the bucket.
    pub(crate) fn emit(&self, o: &mut Vec<u8>) {
        TlvWriter::new(o, BUCKET).record(|o| {
            p16(o, self.weight);
            p32(o, self.watch_port);
            p32(o, self.watch_group);
            pad(o, 4);
            emit_actions(o, &self.actions);
        });
    }

    /// Ryu's `{"OFPBucket": {...}}`.
    pub fn to_ryu_json(&self) -> Value {
        let mut v = Vec::new();
        self.emit(&mut v);
        json!({"OFPBucket": {"actions": actions_json(&self.actions), "len": v.len(), "watch_group": self.watch_group,
            "watch_port": self.watch_port, "weight": self.weight}})
    }
}
