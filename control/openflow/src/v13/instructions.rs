//! Instructions (`ofp_instruction_*`): goto-table, write-metadata, write / apply / clear
//! actions, meter, and the instruction list of a flow_mod or flow stats entry.
//!
//! Contract: the list is read through [`super::super::tlv`] (bad lengths are
//! [`OfError::BadLength`] / [`OfError::Truncated`] with `what` "instruction"). An instruction is
//! typed only if its typed form re-emits exactly its bytes; others (unknown or experimenter
//! types, odd lengths) are kept as [`Instruction::Unknown`]. A bad length inside an
//! apply/write-actions list is an error, not something to keep raw.

use super::super::tlv::{Align, Tlv, TlvFormat, TlvWriter};
use super::super::wire::{p32, p64, p8, pad};
use super::super::{OfError, Reader};
use super::actions::{actions_json, emit_actions};
use super::{base64, Action};
use serde_json::{json, Value};

/// An instruction: type, length (header included), body.
pub(crate) const INSTRUCTION: TlvFormat = TlvFormat::type_len("instruction", 4, Align::Any);

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

    /// The typed instruction for `item`, [`Instruction::Unknown`] when it does not re-emit
    /// exactly, or the error of an action list with a bad length inside it.
    fn from_tlv(item: Tlv<'_>) -> Result<Instruction, OfError> {
        Ok(match Instruction::typed(item.type_, item.body) {
            Ok(i) if i.emitted() == item.bytes => i,
            // An action list with a bad inner length is an error, not something to keep raw.
            Err(e @ (OfError::BadLength { .. } | OfError::Truncated { .. }))
                if matches!(item.type_, 3 | 4) =>
            {
                return Err(e)
            }
            _ => Instruction::Unknown {
                type_: item.type_,
                body: item.body.to_vec(),
            },
        })
    }

    /// Parses an instruction list filling `b`.
    pub(crate) fn parse_list(b: &[u8]) -> Result<Vec<Instruction>, OfError> {
        INSTRUCTION.parse_list(b, Instruction::from_tlv)
    }

    fn emitted(&self) -> Vec<u8> {
        let mut o = Vec::new();
        self.emit(&mut o);
        o
    }

    /// Appends the instruction.
    pub(crate) fn emit(&self, o: &mut Vec<u8>) {
        TlvWriter::new(o, INSTRUCTION).item(self.type_(), |o| match self {
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
        });
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

/// Appends an instruction list.
pub(crate) fn emit_instructions(o: &mut Vec<u8>, v: &[Instruction]) {
    for i in v {
        i.emit(o);
    }
}
