//! Table features (`ofp_table_features`, OFPMP_TABLE_FEATURES request and reply bodies): one
//! length-first record per table, each ending in a list of type/length properties padded to 8.
//!
//! Contract: records (every record's length checked before the first is parsed) and properties
//! are read through [`super::super::tlv`] (bad lengths are
//! [`OfError::BadLength`] / [`OfError::Truncated`], non-zero padding
//! [`OfError::NonZeroPadding`]). A property is typed only if its typed form re-emits exactly its
//! body; others are [`TableFeatureProp::Raw`].

use super::super::tlv::{Align, TlvFormat, TlvWriter};
use super::super::wire::{p16, p32, p64, p8, pad};
use super::super::{OfError, Reader};
use super::{base64, c_str, OxmField, OXM_CLASS_BASIC};
use serde_json::{json, Value};

/// One table's record: length, table id, name, metadata masks, config, max entries, properties.
const TABLE_FEATURES: TlvFormat = TlvFormat::len_first("table features", 64);
/// A property: type, length (header and body), body, zero padding to 8.
const PROPERTY: TlvFormat = TlvFormat::type_len(
    "table feature property",
    4,
    Align::Padded {
        to: 8,
        what: "table feature property padding",
    },
);

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

/// Parses the table-features records filling `b`.
pub(crate) fn parse_table_features(b: &[u8]) -> Result<Vec<TableFeatures>, OfError> {
    TABLE_FEATURES.parse_framed(b, |rec| {
        let mut r = Reader::new(rec.body);
        let table_id = r.u8("table_id")?;
        r.zero_pad(5, "table features padding")?;
        let name = r.array("table name")?;
        let metadata_match = r.u64("metadata_match")?;
        let metadata_write = r.u64("metadata_write")?;
        let config = r.u32("table config")?;
        let max_entries = r.u32("max_entries")?;
        let properties = PROPERTY.parse_list(r.rest(), |p| {
            let typed = typed_prop(p.type_, p.body).filter(|t| prop_body(t) == p.body);
            Ok(typed.unwrap_or(TableFeatureProp::Raw {
                type_: p.type_,
                body: p.body.to_vec(),
            }))
        })?;
        Ok(TableFeatures {
            table_id,
            name,
            metadata_match,
            metadata_write,
            config,
            max_entries,
            properties,
        })
    })
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

/// Appends table-features records.
pub(crate) fn emit_table_features(o: &mut Vec<u8>, v: &[TableFeatures]) {
    let mut w = TlvWriter::new(o, TABLE_FEATURES);
    for t in v {
        w.record(|o| {
            p8(o, t.table_id);
            pad(o, 5);
            o.extend_from_slice(&t.name);
            p64(o, t.metadata_match);
            p64(o, t.metadata_write);
            p32(o, t.config);
            p32(o, t.max_entries);
            let mut props = TlvWriter::new(o, PROPERTY);
            for p in &t.properties {
                props.item(prop_type(p), |o| o.extend_from_slice(&prop_body(p)));
            }
        });
    }
}

/// Ryu's JSON for table-features records (`[{"OFPTableFeaturesStats": {...}}, ...]`).
pub(crate) fn table_features_json(v: &[TableFeatures]) -> Value {
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
