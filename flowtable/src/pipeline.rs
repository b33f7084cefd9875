//! The OpenFlow-style multi-table pipeline: rules (match, priority, cookie, timeouts, flags,
//! instructions, counters), per-table miss behaviour, flow_mod operations, and the port
//! environment that translation ([`crate::xlate`]) needs.
//!
//! Contract:
//! - A [`Pipeline`] has `n` tables (1..=255, default [`DEFAULT_TABLES`]), numbered `0..n`.
//!   `version()` increases by one on every operation that changed anything (add, modify,
//!   delete, expire, table-miss change); crediting stats does not change it.
//! - Each table is a tuple-space classifier: one hash table per distinct mask ("subtable"),
//!   keyed by the masked key, whose entries list the rules with that exact match best first.
//!   Subtables are kept ordered by the highest priority they hold, so a lookup stops as soon
//!   as no remaining subtable can beat the best rule found. Insert and remove cost O(log n)
//!   (no shifting of big arrays); non-strict modify/delete and `check_overlap` scan the table.
//! - Which rule wins: the highest priority; among overlapping rules of equal priority (which
//!   OpenFlow leaves undefined) the one added first (lowest [`Rule::seq`]). The reference
//!   interpreter in [`crate::semantics`] uses the same rule.
//! - Rule ids are stable: a [`RuleId`] names one rule for its whole life and is never reused
//!   for another rule (slot + generation), so stale ids (e.g. in cached megaflows) are ignored
//!   by [`Pipeline::credit`] and [`Pipeline::get`].
//! - Adding a rule with the same match and priority as an existing one in the same table
//!   replaces it (a new rule with a new id; counters reset unless [`AddOptions::keep_counts`]).
//! - Instructions run in the order apply-actions, write-metadata, goto-table; goto must go
//!   forward to an existing table (checked when the rule is added or modified).
//! - Time is passed in (`now_ms`); nothing here reads a clock, does I/O or spawns threads.
//! - OpenFlow 1.3 groups live here too ([`Pipeline::group_add`], `group_modify`,
//!   `group_delete`, see [`crate::group`] for their rules). A rule's apply-actions may name
//!   groups ([`Action::Group`]) that must exist; deleting a group deletes the rules that
//!   forward to it. Every group change bumps the version like a rule change.
//! - `output:TABLE` ([`OfPort::Table`]) is valid only in packet-out action lists
//!   ([`crate::xlate::xlate_actions`]): rules and buckets using it are refused.

use crate::flow_match::{mask_words, Match};
use crate::group::{Group, GroupDeleteOutcome, GroupSpec, GroupTable};
use crate::key::{Field, FlowKey};
use crate::port::PortNo;
use hashbrown::{HashMap, HashTable};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Number of tables of [`Pipeline::default`] (OpenFlow 1.3 switches commonly offer more; 64
/// is plenty for strato's compiler and for Ryu apps).
pub const DEFAULT_TABLES: usize = 64;
/// The largest number of tables (ids 0..=254; 255 is OpenFlow's "all tables").
pub const MAX_TABLES: usize = 255;

/// The `in_port` of a packet the controller injects with packet-out when it names no port
/// (OFPP_CONTROLLER, and OFPP_ANY / OFPP_NONE, which the OpenFlow channel maps to it): OpenFlow's
/// OFPP_CONTROLLER number. Rules can match it; `output:IN_PORT` of such a packet is dropped
/// (there is no such port) and flood/all go to every port.
pub const IN_PORT_CONTROLLER: PortNo = 0xffff_fffd;

/// Errors of pipeline operations, named after the OpenFlow errors they map to.
///
/// The OpenFlow 1.3 error (type, code) of each variant (one code per variant; numbers from
/// the 1.3 spec):
///
/// | variant | type | code |
/// |---|---|---|
/// | `BadTableCount` | OFPET_BAD_REQUEST (1) | OFPBRC_BAD_TABLE_ID (9) |
/// | `BadTable` | OFPET_FLOW_MOD_FAILED (5) | OFPFMFC_BAD_TABLE_ID (2) |
/// | `BadGoto` | OFPET_BAD_INSTRUCTION (3) | OFPBIC_BAD_TABLE_ID (2) |
/// | `Overlap` | OFPET_FLOW_MOD_FAILED (5) | OFPFMFC_OVERLAP (3) |
/// | `BadSetField` | OFPET_BAD_ACTION (2) | OFPBAC_BAD_SET_TYPE (13) |
/// | `BadTpid` | OFPET_BAD_ACTION (2) | OFPBAC_BAD_ARGUMENT (5) |
/// | `BadOutPort` | OFPET_BAD_ACTION (2) | OFPBAC_BAD_OUT_PORT (4) |
/// | `BadOutGroup` | OFPET_BAD_ACTION (2) | OFPBAC_BAD_OUT_GROUP (9) |
/// | `GroupExists` | OFPET_GROUP_MOD_FAILED (6) | OFPGMFC_GROUP_EXISTS (0) |
/// | `InvalidGroup` | OFPET_GROUP_MOD_FAILED (6) | OFPGMFC_INVALID_GROUP (1) |
/// | `WeightUnsupported` | OFPET_GROUP_MOD_FAILED (6) | OFPGMFC_WEIGHT_UNSUPPORTED (2) |
/// | `OutOfGroups` | OFPET_GROUP_MOD_FAILED (6) | OFPGMFC_OUT_OF_GROUPS (3) |
/// | `OutOfBuckets` | OFPET_GROUP_MOD_FAILED (6) | OFPGMFC_OUT_OF_BUCKETS (4) |
/// | `ChainingUnsupported` | OFPET_GROUP_MOD_FAILED (6) | OFPGMFC_CHAINING_UNSUPPORTED (5) |
/// | `WatchUnsupported` | OFPET_GROUP_MOD_FAILED (6) | OFPGMFC_WATCH_UNSUPPORTED (6) |
/// | `Loop` | OFPET_GROUP_MOD_FAILED (6) | OFPGMFC_LOOP (7) |
/// | `UnknownGroup` | OFPET_GROUP_MOD_FAILED (6) | OFPGMFC_UNKNOWN_GROUP (8) |
/// | `ChainedGroup` | OFPET_GROUP_MOD_FAILED (6) | OFPGMFC_CHAINED_GROUP (9) |
/// | `BadBucket` | OFPET_GROUP_MOD_FAILED (6) | OFPGMFC_BAD_BUCKET (12) |
/// | `BadWatch` | OFPET_GROUP_MOD_FAILED (6) | OFPGMFC_BAD_WATCH (13) |
///
/// An action error inside a bucket (bad set-field, bad TPID, unknown group) is reported with
/// its action code, as Open vSwitch does; OFPGMFC_BAD_TYPE and OFPGMFC_BAD_COMMAND are decoding
/// errors of the channel ([`crate::group::GroupType`] has only the four valid types).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// a pipeline has 1 to 255 tables, not {0}
    #[error("a pipeline has 1 to 255 tables, not {0}")]
    BadTableCount(usize),
    /// table {table} does not exist (the pipeline has {n_tables} tables)
    #[error("table {table} does not exist (the pipeline has {n_tables} tables)")]
    BadTable {
        /// The requested table.
        table: u8,
        /// Number of tables.
        n_tables: usize,
    },
    /// goto_table {goto} from table {table}: goto must go forward to an existing table
    #[error("goto_table {goto} from table {table}: goto must go forward to an existing table")]
    BadGoto {
        /// The rule's table.
        table: u8,
        /// The goto target.
        goto: u8,
    },
    /// an overlapping rule with priority {priority} already exists in table {table}
    #[error("an overlapping rule with priority {priority} already exists in table {table}")]
    Overlap {
        /// The table.
        table: u8,
        /// The priority.
        priority: u16,
    },
    /// field {0} cannot be written by set-field
    #[error("field {0} cannot be written by set-field")]
    BadSetField(Field),
    /// push_vlan ethertype {0:#06x} is not 0x8100 or 0x88a8
    #[error("push_vlan ethertype {0:#06x} is not 0x8100 or 0x88a8")]
    BadTpid(u16),
    /// output to {0} is not valid here (output:TABLE only in packet-out)
    #[error("output to {0} is not valid here (output:TABLE only in packet-out)")]
    BadOutPort(OfPort),
    /// group {0} does not exist
    #[error("group {0} does not exist")]
    BadOutGroup(u32),
    /// group {0} already exists
    #[error("group {0} already exists")]
    GroupExists(u32),
    /// group {group}: {why}
    #[error("group {group}: {why}")]
    InvalidGroup {
        /// The group id.
        group: u32,
        /// What is wrong.
        why: &'static str,
    },
    /// group {group} bucket {bucket}: only select groups have weights
    #[error("group {group} bucket {bucket}: only select groups have weights")]
    WeightUnsupported {
        /// The group id.
        group: u32,
        /// Index of the bucket.
        bucket: usize,
    },
    /// the pipeline already holds {0} groups
    #[error("the pipeline already holds {0} groups")]
    OutOfGroups(usize),
    /// group {group} has more than {max} buckets
    #[error("group {group} has more than {max} buckets")]
    OutOfBuckets {
        /// The group id.
        group: u32,
        /// The limit.
        max: usize,
    },
    /// group {group}: a chain of {depth} groups is longer than {max}
    #[error("group {group}: a chain of {depth} groups is longer than {max}")]
    ChainingUnsupported {
        /// The group id.
        group: u32,
        /// The chain length it would make.
        depth: usize,
        /// [`crate::group::MAX_GROUP_DEPTH`].
        max: usize,
    },
    /// group {group} bucket {bucket}: only select and fast-failover buckets watch
    #[error("group {group} bucket {bucket}: only select and fast-failover buckets watch")]
    WatchUnsupported {
        /// The group id.
        group: u32,
        /// Index of the bucket.
        bucket: usize,
    },
    /// group {group} would reach itself
    #[error("group {group} would reach itself")]
    Loop {
        /// The group id.
        group: u32,
    },
    /// group {0} does not exist
    #[error("group {0} does not exist")]
    UnknownGroup(u32),
    /// group {group} is forwarded to or watched by group {by}
    #[error("group {group} is forwarded to or watched by group {by}")]
    ChainedGroup {
        /// The group that was to be deleted.
        group: u32,
        /// A group that references it.
        by: u32,
    },
    /// group {group} bucket {bucket}: {why}
    #[error("group {group} bucket {bucket}: {why}")]
    BadBucket {
        /// The group id.
        group: u32,
        /// Index of the bucket.
        bucket: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// group {group} bucket {bucket}: {why}
    #[error("group {group} bucket {bucket}: {why}")]
    BadWatch {
        /// The group id.
        group: u32,
        /// Index of the bucket.
        bucket: usize,
        /// What is wrong.
        why: &'static str,
    },
}

/// A stable rule identifier (slot and generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId {
    index: u32,
    gen: u32,
}

impl RuleId {
    /// The id as one integer (generation in the high half), e.g. to carry in a cache entry.
    pub const fn to_u64(self) -> u64 {
        ((self.gen as u64) << 32) | self.index as u64
    }
    /// Inverse of [`RuleId::to_u64`].
    pub const fn from_u64(v: u64) -> RuleId {
        RuleId {
            index: v as u32,
            gen: (v >> 32) as u32,
        }
    }
}

/// An OpenFlow output port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OfPort {
    /// A bridge port (a tunnel port outputs through its tunnel).
    Port(PortNo),
    /// The port the packet came in on (OFPP_IN_PORT).
    InPort,
    /// Every up, flood-enabled port except the input port (OFPP_FLOOD).
    Flood,
    /// Every up port except the input port (OFPP_ALL).
    All,
    /// Packet-in to the controller with up to `max_len` bytes (OFPP_CONTROLLER).
    Controller {
        /// Bytes to send (0xffff: the whole packet).
        max_len: u16,
    },
    /// Submit a copy of the packet to the pipeline from table 0 (OFPP_TABLE): valid only in a
    /// packet-out action list.
    Table,
}

/// An OpenFlow action (apply-actions list). Drop is the empty list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Output a copy of the packet as it is now.
    Output(OfPort),
    /// Write a field (wire fields only when the packet has the header, see
    /// [`crate::semantics::set_field_applies`]; metadata, registers and tunnel fields always).
    SetField {
        /// The field.
        field: Field,
        /// The value.
        value: u128,
    },
    /// Push a VLAN tag (VID/PCP copied from an existing tag, else 0).
    PushVlan {
        /// 0x8100 or 0x88a8.
        tpid: u16,
    },
    /// Pop the outer VLAN tag (nothing when untagged).
    PopVlan,
    /// Decrement IP TTL / hop limit; the packet is dropped when it was <= 1.
    DecTtl,
    /// Shorthand for `SetField { field: TunId, value: vni }`.
    SetTunnel {
        /// The tunnel id.
        vni: u64,
    },
    /// Process a copy of the packet through this group (see [`crate::group`]); the group
    /// must exist when the rule or bucket naming it is added.
    Group(u32),
}

impl Action {
    /// Checks arguments an OpenFlow switch would reject, out of context: whether an output
    /// port or group is allowed where the action appears is checked by the pipeline (rules,
    /// buckets) or is the packet-out's business.
    pub fn validate(&self) -> Result<(), PipelineError> {
        match *self {
            Action::SetField { field, .. } if !settable(field) => {
                Err(PipelineError::BadSetField(field))
            }
            Action::PushVlan { tpid } if tpid != 0x8100 && tpid != 0x88a8 => {
                Err(PipelineError::BadTpid(tpid))
            }
            _ => Ok(()),
        }
    }
}

/// True for fields set-field may write. Match-only fields (in_port, eth_type, ip_proto,
/// ip_frag, tcp_flags) and the VLAN TCI/present bit (use push/pop and vlan_vid/vlan_pcp) are
/// excluded.
pub const fn settable(f: Field) -> bool {
    !matches!(
        f,
        Field::InPort
            | Field::EthType
            | Field::IpProto
            | Field::IpFrag
            | Field::TcpFlags
            | Field::VlanTci
            | Field::VlanPresent
    )
}

/// A rule's instructions, executed in this order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Instructions {
    /// Apply-actions.
    pub apply_actions: Vec<Action>,
    /// Write-metadata `(value, mask)`.
    pub write_metadata: Option<(u64, u64)>,
    /// Goto-table (must be greater than the rule's table).
    pub goto_table: Option<u8>,
}

impl Instructions {
    /// Apply-actions only.
    pub fn apply(actions: Vec<Action>) -> Self {
        Instructions {
            apply_actions: actions,
            ..Default::default()
        }
    }
    /// Builder: adds a goto-table.
    pub fn goto(mut self, table: u8) -> Self {
        self.goto_table = Some(table);
        self
    }
    /// Builder: adds write-metadata.
    pub fn metadata(mut self, value: u64, mask: u64) -> Self {
        self.write_metadata = Some((value, mask));
        self
    }
    /// True when apply-actions output to `port` (the flow_mod `out_port` filter).
    pub fn outputs_to(&self, port: OfPort) -> bool {
        self.apply_actions
            .iter()
            .any(|a| matches!(a, Action::Output(p) if *p == port))
    }
    /// True when apply-actions forward to `group` (the flow_mod `out_group` filter).
    pub fn forwards_to_group(&self, group: u32) -> bool {
        self.apply_actions.contains(&Action::Group(group))
    }
    /// True when apply-actions forward to any group.
    pub fn uses_groups(&self) -> bool {
        self.apply_actions
            .iter()
            .any(|a| matches!(a, Action::Group(_)))
    }
    fn validate(&self, table: u8, n_tables: usize) -> Result<(), PipelineError> {
        if let Some(goto) = self.goto_table {
            if goto <= table || goto as usize >= n_tables {
                return Err(PipelineError::BadGoto { table, goto });
            }
        }
        self.apply_actions.iter().try_for_each(Action::validate)
    }
}

impl core::fmt::Display for OfPort {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OfPort::Port(p) => write!(f, "output:{p}"),
            OfPort::InPort => f.write_str("IN_PORT"),
            OfPort::Flood => f.write_str("FLOOD"),
            OfPort::All => f.write_str("ALL"),
            OfPort::Controller { max_len } => write!(f, "CONTROLLER:{max_len}"),
            OfPort::Table => f.write_str("TABLE"),
        }
    }
}

impl core::fmt::Display for Action {
    /// `ovs-ofctl dump-flows` spelling.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Action::Output(p) => write!(f, "{p}"),
            Action::SetField { field, value } => {
                write!(
                    f,
                    "set_field:{}->{}",
                    crate::fmt::FieldValue(*field, *value),
                    field.name()
                )
            }
            Action::PushVlan { tpid } => write!(f, "push_vlan:{tpid:#06x}"),
            Action::PopVlan => f.write_str("pop_vlan"),
            Action::DecTtl => f.write_str("dec_ttl"),
            Action::SetTunnel { vni } => write!(f, "set_tunnel:{vni:#x}"),
            Action::Group(g) => write!(f, "group:{g}"),
        }
    }
}

impl core::fmt::Display for Instructions {
    /// `ovs-ofctl dump-flows` spelling of the instructions (`drop` when there are none).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut parts: Vec<String> = self.apply_actions.iter().map(ToString::to_string).collect();
        if let Some((v, m)) = self.write_metadata {
            parts.push(if m == u64::MAX {
                format!("write_metadata:{v:#x}")
            } else {
                format!("write_metadata:{v:#x}/{m:#x}")
            });
        }
        if let Some(t) = self.goto_table {
            parts.push(format!("goto_table:{t}"));
        }
        if parts.is_empty() {
            f.write_str("drop")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

/// Per-rule flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RuleFlags {
    /// Send flow_removed when the rule expires or is deleted (OFPFF_SEND_FLOW_REM).
    pub send_flow_rem: bool,
}

/// What a table does with a packet no rule matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TableMiss {
    /// Drop (OpenFlow 1.3 default).
    #[default]
    Drop,
    /// Packet-in with reason no-match.
    Controller,
    /// Go on to the next table (drop after the last).
    Continue,
}

/// Why a rule left the pipeline (OpenFlow flow_removed reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RemovalReason {
    /// Idle timeout.
    IdleTimeout,
    /// Hard timeout.
    HardTimeout,
    /// Deleted by a flow_mod.
    Delete,
    /// Deleted because a group it forwards to was deleted (OFPRR_GROUP_DELETE).
    GroupDelete,
}

/// A rule in the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable id.
    pub id: RuleId,
    /// Table it lives in.
    pub table: u8,
    /// Its match.
    pub matching: Match,
    /// Priority (higher wins).
    pub priority: u16,
    /// Controller cookie.
    pub cookie: u64,
    /// Idle timeout in seconds (0: none).
    pub idle_timeout: u16,
    /// Hard timeout in seconds (0: none).
    pub hard_timeout: u16,
    /// Flags.
    pub flags: RuleFlags,
    /// Instructions.
    pub instructions: Instructions,
    /// Packets credited.
    pub packets: u64,
    /// Bytes credited.
    pub bytes: u64,
    /// When it was added.
    pub created_ms: u64,
    /// Last time it was added or credited with packets.
    pub last_used_ms: u64,
    /// Insertion sequence number: the tie-breaker among equal priorities (lower wins).
    pub seq: u64,
}

/// A rule to add (the flow_mod fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSpec {
    /// Table.
    pub table: u8,
    /// Match.
    pub matching: Match,
    /// Priority.
    pub priority: u16,
    /// Cookie.
    pub cookie: u64,
    /// Idle timeout, seconds (0: none).
    pub idle_timeout: u16,
    /// Hard timeout, seconds (0: none).
    pub hard_timeout: u16,
    /// Flags.
    pub flags: RuleFlags,
    /// Instructions.
    pub instructions: Instructions,
}

impl RuleSpec {
    /// A rule with no cookie, timeouts or flags.
    pub fn new(table: u8, matching: Match, priority: u16, instructions: Instructions) -> Self {
        RuleSpec {
            table,
            matching,
            priority,
            instructions,
            ..Default::default()
        }
    }
}

/// Options of [`Pipeline::add`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddOptions {
    /// Refuse the add if a rule of the same priority overlaps it (OFPFF_CHECK_OVERLAP).
    pub check_overlap: bool,
    /// When replacing an identical rule, carry its counters over (default: reset).
    pub keep_counts: bool,
}

/// Result of [`Pipeline::add`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddOutcome {
    /// The new rule's id.
    pub id: RuleId,
    /// The rule it replaced (same table, match and priority), if any.
    pub replaced: Option<Rule>,
}

/// Which rules a modify or delete applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFilter {
    /// One table, or every table (OFPTT_ALL).
    pub table: Option<u8>,
    /// Strict: this exact match; non-strict: every rule whose match it covers.
    pub matching: Match,
    /// Strict only: the priority.
    pub priority: u16,
    /// Strict or non-strict.
    pub strict: bool,
    /// Cookie value, compared under `cookie_mask`.
    pub cookie: u64,
    /// Cookie mask (0: any cookie).
    pub cookie_mask: u64,
    /// Only rules that output to this port (None: OFPP_ANY).
    pub out_port: Option<OfPort>,
    /// Only rules that forward to this group (None: OFPG_ANY).
    pub out_group: Option<u32>,
}

impl RuleFilter {
    /// Non-strict: every rule (of `table`, or all tables) whose match `matching` covers.
    pub fn loose(table: Option<u8>, matching: Match) -> Self {
        RuleFilter {
            table,
            matching,
            priority: 0,
            strict: false,
            cookie: 0,
            cookie_mask: 0,
            out_port: None,
            out_group: None,
        }
    }
    /// Strict: the rule with exactly this match and priority.
    pub fn strict(table: u8, matching: Match, priority: u16) -> Self {
        RuleFilter {
            priority,
            strict: true,
            ..RuleFilter::loose(Some(table), matching)
        }
    }
    /// Builder: cookie filter.
    pub fn cookie(mut self, cookie: u64, mask: u64) -> Self {
        self.cookie = cookie;
        self.cookie_mask = mask;
        self
    }
    /// Builder: out_port filter.
    pub fn out_port(mut self, port: OfPort) -> Self {
        self.out_port = Some(port);
        self
    }
    /// Builder: out_group filter.
    pub fn out_group(mut self, group: u32) -> Self {
        self.out_group = Some(group);
        self
    }
    /// True when the filter selects rule `r` (what modify, delete and flow stats act on).
    pub fn accepts(&self, r: &Rule) -> bool {
        self.table.is_none_or(|t| t == r.table)
            && (r.cookie ^ self.cookie) & self.cookie_mask == 0
            && self.out_port.is_none_or(|p| r.instructions.outputs_to(p))
            && self
                .out_group
                .is_none_or(|g| r.instructions.forwards_to_group(g))
            && if self.strict {
                r.priority == self.priority && r.matching == self.matching
            } else {
                self.matching.covers(&r.matching)
            }
    }
}

/// A reference from a classifier entry to a rule slot.
#[derive(Clone, Copy, Debug)]
struct RuleRef {
    prio: u16,
    seq: u64,
    slot: u32,
}

impl RuleRef {
    /// Ordering key: smaller is better (higher priority, then older).
    #[inline(always)]
    fn rank(&self) -> (u16, u64) {
        (u16::MAX - self.prio, self.seq)
    }
}

/// All rules with one exact (masked) key, best first.
struct Entry {
    key: FlowKey,
    rules: Vec<RuleRef>,
}

/// One mask of a table.
struct Subtable {
    mask: FlowKey,
    words: Vec<u8>,
    entries: HashTable<Entry>,
    /// priority -> number of rules, to know the maximum after removals.
    prios: BTreeMap<u16, u32>,
}

impl Subtable {
    fn max_prio(&self) -> u16 {
        self.prios.last_key_value().map_or(0, |(p, _)| *p)
    }
    #[inline(always)]
    fn hash(&self, key: &FlowKey) -> u64 {
        key.hash_masked(&self.mask, &self.words) as u64
    }
}

/// One table: subtables ordered by max priority.
struct Table {
    subtables: Vec<Option<Subtable>>,
    free: Vec<u32>,
    by_mask: HashMap<FlowKey, u32>,
    /// `(max priority, subtable index)`, max priority descending.
    order: Vec<(u16, u32)>,
    miss: TableMiss,
    n_rules: usize,
}

impl Table {
    fn new() -> Self {
        Table {
            subtables: Vec::new(),
            free: Vec::new(),
            by_mask: HashMap::new(),
            order: Vec::new(),
            miss: TableMiss::Drop,
            n_rules: 0,
        }
    }

    fn reorder(&mut self, sid: u32) {
        let max = self.subtables[sid as usize]
            .as_ref()
            .map_or(0, Subtable::max_prio);
        if let Some(o) = self.order.iter_mut().find(|o| o.1 == sid) {
            if o.0 == max {
                return;
            }
            o.0 = max;
        }
        self.order.sort_by_key(|o| core::cmp::Reverse(o.0));
    }

    /// Finds the slot of the rule with exactly this match and priority.
    fn find_exact(&self, m: &Match, prio: u16) -> Option<u32> {
        let sid = *self.by_mask.get(m.mask())?;
        let st = self.subtables[sid as usize].as_ref()?;
        let e = st.entries.find(st.hash(m.key()), |e| e.key == *m.key())?;
        e.rules.iter().find(|r| r.prio == prio).map(|r| r.slot)
    }

    fn insert(&mut self, m: &Match, r: RuleRef) {
        let sid = match self.by_mask.get(m.mask()) {
            Some(&sid) => sid,
            None => {
                let st = Subtable {
                    mask: *m.mask(),
                    words: mask_words(m.mask()),
                    entries: HashTable::new(),
                    prios: BTreeMap::new(),
                };
                let sid = match self.free.pop() {
                    Some(s) => {
                        self.subtables[s as usize] = Some(st);
                        s
                    }
                    None => {
                        self.subtables.push(Some(st));
                        (self.subtables.len() - 1) as u32
                    }
                };
                self.by_mask.insert(*m.mask(), sid);
                self.order.push((0, sid));
                sid
            }
        };
        let st = self.subtables[sid as usize]
            .as_mut()
            .expect("by_mask names live subtables");
        let h = st.hash(m.key());
        let Subtable {
            mask,
            words,
            entries,
            prios,
        } = st;
        match entries.find_mut(h, |e| e.key == *m.key()) {
            Some(e) => {
                let pos = e.rules.partition_point(|x| x.rank() < r.rank());
                e.rules.insert(pos, r);
            }
            None => {
                entries.insert_unique(
                    h,
                    Entry {
                        key: *m.key(),
                        rules: vec![r],
                    },
                    |e| e.key.hash_masked(mask, words) as u64,
                );
            }
        }
        *prios.entry(r.prio).or_insert(0) += 1;
        self.n_rules += 1;
        // Always place a new subtable; otherwise only when its max priority changed.
        self.reorder(sid);
    }

    fn remove(&mut self, m: &Match, slot: u32, prio: u16) {
        let Some(&sid) = self.by_mask.get(m.mask()) else {
            return;
        };
        let Some(st) = self.subtables[sid as usize].as_mut() else {
            return;
        };
        let h = st.hash(m.key());
        let Ok(mut occ) = st.entries.find_entry(h, |e| e.key == *m.key()) else {
            return;
        };
        let e = occ.get_mut();
        let Some(pos) = e.rules.iter().position(|x| x.slot == slot) else {
            return;
        };
        e.rules.remove(pos);
        if e.rules.is_empty() {
            occ.remove();
        }
        if let Some(c) = st.prios.get_mut(&prio) {
            *c -= 1;
            if *c == 0 {
                st.prios.remove(&prio);
            }
        }
        self.n_rules -= 1;
        if st.entries.is_empty() {
            self.subtables[sid as usize] = None;
            self.free.push(sid);
            self.by_mask.remove(m.mask());
            self.order.retain(|o| o.1 != sid);
        } else {
            self.reorder(sid);
        }
    }

    /// Best rule slot for `key`; ORs every visited subtable's mask into `wc`.
    #[inline]
    fn lookup(&self, key: &FlowKey, wc: &mut FlowKey) -> Option<u32> {
        let mut best: Option<RuleRef> = None;
        for &(maxp, sid) in &self.order {
            if let Some(b) = best {
                if maxp < b.prio {
                    break;
                }
            }
            let Some(st) = self.subtables[sid as usize].as_ref() else {
                continue;
            };
            for &w in &st.words {
                wc.w[w as usize] |= st.mask.w[w as usize];
            }
            let h = st.hash(key);
            if let Some(e) = st
                .entries
                .find(h, |e| key.matches_masked(&e.key, &st.mask, &st.words))
            {
                let r = e.rules[0];
                if best.is_none_or(|b| r.rank() < b.rank()) {
                    best = Some(r);
                }
            }
        }
        best.map(|b| b.slot)
    }

    fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.subtables
            .iter()
            .flatten()
            .flat_map(|st| st.entries.iter())
            .flat_map(|e| e.rules.iter().map(|r| r.slot))
    }
}

struct Slot {
    gen: u32,
    rule: Option<Rule>,
}

/// The multi-table pipeline. See the module docs.
pub struct Pipeline {
    tables: Vec<Table>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    n_rules: usize,
    version: u64,
    next_seq: u64,
    groups: GroupTable,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline::new(DEFAULT_TABLES).expect("default table count is valid")
    }
}

impl core::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pipeline")
            .field("tables", &self.tables.len())
            .field("rules", &self.n_rules)
            .field("groups", &self.groups.len())
            .field("version", &self.version)
            .finish()
    }
}

impl Pipeline {
    /// A pipeline with `n_tables` empty tables (1..=255), all missing to Drop.
    pub fn new(n_tables: usize) -> Result<Self, PipelineError> {
        if n_tables == 0 || n_tables > MAX_TABLES {
            return Err(PipelineError::BadTableCount(n_tables));
        }
        Ok(Pipeline {
            tables: (0..n_tables).map(|_| Table::new()).collect(),
            slots: Vec::new(),
            free: Vec::new(),
            n_rules: 0,
            version: 0,
            next_seq: 0,
            groups: GroupTable::default(),
        })
    }

    /// Number of tables.
    pub fn n_tables(&self) -> usize {
        self.tables.len()
    }

    /// The version: bumped by every change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Total number of rules.
    pub fn len(&self) -> usize {
        self.n_rules
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.n_rules == 0
    }

    /// Number of rules in one table (0 for a table that does not exist).
    pub fn table_len(&self, table: u8) -> usize {
        self.tables.get(table as usize).map_or(0, |t| t.n_rules)
    }

    fn check_table(&self, table: u8) -> Result<(), PipelineError> {
        if (table as usize) < self.tables.len() {
            Ok(())
        } else {
            Err(PipelineError::BadTable {
                table,
                n_tables: self.tables.len(),
            })
        }
    }

    /// A table's miss behaviour (None: no such table).
    #[inline]
    pub fn table_miss(&self, table: u8) -> Option<TableMiss> {
        self.tables.get(table as usize).map(|t| t.miss)
    }

    /// Sets a table's miss behaviour.
    pub fn set_table_miss(&mut self, table: u8, miss: TableMiss) -> Result<(), PipelineError> {
        self.check_table(table)?;
        let t = &mut self.tables[table as usize];
        if t.miss != miss {
            t.miss = miss;
            self.version += 1;
        }
        Ok(())
    }

    /// A live rule by id.
    #[inline]
    pub fn get(&self, id: RuleId) -> Option<&Rule> {
        let s = self.slots.get(id.index as usize)?;
        if s.gen != id.gen {
            return None;
        }
        s.rule.as_ref()
    }

    #[inline(always)]
    fn slot_rule(&self, slot: u32) -> &Rule {
        self.slots[slot as usize]
            .rule
            .as_ref()
            .expect("classifier entries name live slots")
    }

    /// Every rule, in no particular order (slot order).
    pub fn rules(&self) -> impl Iterator<Item = &Rule> + '_ {
        self.slots.iter().filter_map(|s| s.rule.as_ref())
    }

    /// The rules of one table (for dump-flows), in no particular order.
    pub fn table_rules(&self, table: u8) -> impl Iterator<Item = &Rule> + '_ {
        self.tables
            .get(table as usize)
            .into_iter()
            .flat_map(|t| t.slots())
            .map(|s| self.slot_rule(s))
    }

    /// The classifier lookup: the winning rule of `table` for `key`, OR-ing into `wc` the mask
    /// of every subtable visited (what proves the result). None: miss, or no such table.
    #[inline]
    pub fn lookup(&self, table: u8, key: &FlowKey, wc: &mut FlowKey) -> Option<&Rule> {
        let t = self.tables.get(table as usize)?;
        t.lookup(key, wc).map(|s| self.slot_rule(s))
    }

    /// Adds an apply-actions rule with no cookie, timeouts or flags (a convenience over
    /// [`Pipeline::add`] for programs that write their own rules).
    pub fn add_apply(
        &mut self,
        table: u8,
        priority: u16,
        matching: Match,
        actions: Vec<Action>,
    ) -> Result<RuleId, PipelineError> {
        let spec = RuleSpec::new(table, matching, priority, Instructions::apply(actions));
        self.add(spec, AddOptions::default(), 0).map(|o| o.id)
    }

    /// Adds a rule (flow_mod ADD). A rule with the same table, match and priority is replaced.
    pub fn add(
        &mut self,
        spec: RuleSpec,
        opts: AddOptions,
        now_ms: u64,
    ) -> Result<AddOutcome, PipelineError> {
        self.check_table(spec.table)?;
        spec.instructions.validate(spec.table, self.tables.len())?;
        self.check_rule_actions(&spec.instructions.apply_actions)?;
        let table = &self.tables[spec.table as usize];
        if opts.check_overlap {
            let clash = table.slots().any(|s| {
                let r = self.slot_rule(s);
                r.priority == spec.priority && r.matching.overlaps(&spec.matching)
            });
            if clash {
                return Err(PipelineError::Overlap {
                    table: spec.table,
                    priority: spec.priority,
                });
            }
        }
        let replaced = table
            .find_exact(&spec.matching, spec.priority)
            .map(|slot| self.remove_slot(slot));
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot { gen: 0, rule: None });
                (self.slots.len() - 1) as u32
            }
        };
        let id = RuleId {
            index: slot,
            gen: self.slots[slot as usize].gen,
        };
        let (packets, bytes) = match (&replaced, opts.keep_counts) {
            (Some(old), true) => (old.packets, old.bytes),
            _ => (0, 0),
        };
        self.tables[spec.table as usize].insert(
            &spec.matching,
            RuleRef {
                prio: spec.priority,
                seq,
                slot,
            },
        );
        self.groups.rule_refs(&spec.instructions.apply_actions, 1);
        self.slots[slot as usize].rule = Some(Rule {
            id,
            table: spec.table,
            matching: spec.matching,
            priority: spec.priority,
            cookie: spec.cookie,
            idle_timeout: spec.idle_timeout,
            hard_timeout: spec.hard_timeout,
            flags: spec.flags,
            instructions: spec.instructions,
            packets,
            bytes,
            created_ms: now_ms,
            last_used_ms: now_ms,
            seq,
        });
        self.n_rules += 1;
        self.version += 1;
        Ok(AddOutcome { id, replaced })
    }

    /// Takes a rule out of its table and frees its slot (the generation changes, so its id goes
    /// stale). Does not bump the version.
    fn remove_slot(&mut self, slot: u32) -> Rule {
        let s = &mut self.slots[slot as usize];
        let rule = s.rule.take().expect("remove_slot on a live slot");
        s.gen = s.gen.wrapping_add(1);
        self.free.push(slot);
        self.n_rules -= 1;
        self.tables[rule.table as usize].remove(&rule.matching, slot, rule.priority);
        self.groups.rule_refs(&rule.instructions.apply_actions, -1);
        rule
    }

    /// What a rule's apply-actions may not do beyond [`Instructions::validate`]: output to
    /// TABLE, forward to a group that does not exist.
    fn check_rule_actions(&self, actions: &[Action]) -> Result<(), PipelineError> {
        for a in actions {
            match *a {
                Action::Output(OfPort::Table) => {
                    return Err(PipelineError::BadOutPort(OfPort::Table))
                }
                Action::Group(g) if !self.groups.contains(g) => {
                    return Err(PipelineError::BadOutGroup(g))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Slots selected by a filter.
    fn select(&self, f: &RuleFilter) -> Result<Vec<u32>, PipelineError> {
        if let Some(t) = f.table {
            self.check_table(t)?;
        }
        let tables = match f.table {
            Some(t) => t as usize..t as usize + 1,
            None => 0..self.tables.len(),
        };
        let mut out = Vec::new();
        for t in tables {
            if f.strict {
                if let Some(s) = self.tables[t].find_exact(&f.matching, f.priority) {
                    if f.accepts(self.slot_rule(s)) {
                        out.push(s);
                    }
                }
            } else {
                out.extend(
                    self.tables[t]
                        .slots()
                        .filter(|&s| f.accepts(self.slot_rule(s))),
                );
            }
        }
        Ok(out)
    }

    /// flow_mod MODIFY / MODIFY_STRICT: replaces the instructions of every selected rule
    /// (counters kept unless `reset_counts`). Returns the ids modified; an empty list means
    /// nothing matched (OpenFlow 1.0 then adds the rule; that is the caller's choice). Errors
    /// (bad goto or action for some selected rule's table) change nothing.
    pub fn modify(
        &mut self,
        filter: &RuleFilter,
        instructions: Instructions,
        reset_counts: bool,
    ) -> Result<Vec<RuleId>, PipelineError> {
        let slots = self.select(filter)?;
        for &s in &slots {
            instructions.validate(self.slot_rule(s).table, self.tables.len())?;
        }
        if !slots.is_empty() {
            self.check_rule_actions(&instructions.apply_actions)?;
        }
        let mut ids = Vec::with_capacity(slots.len());
        for s in slots {
            let r = self.slots[s as usize]
                .rule
                .as_mut()
                .expect("selected slots are live");
            self.groups.rule_refs(&r.instructions.apply_actions, -1);
            self.groups.rule_refs(&instructions.apply_actions, 1);
            r.instructions = instructions.clone();
            if reset_counts {
                r.packets = 0;
                r.bytes = 0;
            }
            ids.push(r.id);
        }
        if !ids.is_empty() {
            self.version += 1;
        }
        Ok(ids)
    }

    /// flow_mod DELETE / DELETE_STRICT: removes every selected rule and returns them (for
    /// flow_removed with reason [`RemovalReason::Delete`]).
    pub fn delete(&mut self, filter: &RuleFilter) -> Result<Vec<Rule>, PipelineError> {
        let slots = self.select(filter)?;
        let out: Vec<Rule> = slots.into_iter().map(|s| self.remove_slot(s)).collect();
        if !out.is_empty() {
            self.version += 1;
        }
        Ok(out)
    }

    /// Removes rules whose hard timeout (since `created_ms`) or idle timeout (since
    /// `last_used_ms`) has passed at `now_ms`. Hard is checked first. Scans every rule.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(Rule, RemovalReason)> {
        let mut due = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            let Some(r) = &s.rule else { continue };
            let hard = r.hard_timeout != 0
                && now_ms.saturating_sub(r.created_ms) >= r.hard_timeout as u64 * 1000;
            let idle = r.idle_timeout != 0
                && now_ms.saturating_sub(r.last_used_ms) >= r.idle_timeout as u64 * 1000;
            if hard {
                due.push((i as u32, RemovalReason::HardTimeout));
            } else if idle {
                due.push((i as u32, RemovalReason::IdleTimeout));
            }
        }
        let out: Vec<_> = due
            .into_iter()
            .map(|(s, why)| (self.remove_slot(s), why))
            .collect();
        if !out.is_empty() {
            self.version += 1;
        }
        out
    }

    /// Credits packets and bytes to a rule (megaflow hits attributed back by the controller)
    /// and refreshes its idle timer when `packets > 0`. False when the id is stale.
    pub fn credit(&mut self, id: RuleId, packets: u64, bytes: u64, now_ms: u64) -> bool {
        let Some(s) = self.slots.get_mut(id.index as usize) else {
            return false;
        };
        if s.gen != id.gen {
            return false;
        }
        let Some(r) = s.rule.as_mut() else {
            return false;
        };
        r.packets += packets;
        r.bytes += bytes;
        if packets > 0 && now_ms > r.last_used_ms {
            r.last_used_ms = now_ms;
        }
        true
    }

    /// A group by id.
    #[inline]
    pub fn group(&self, id: u32) -> Option<&Group> {
        self.groups.get(id)
    }

    /// Every group, by ascending id.
    pub fn groups(&self) -> impl Iterator<Item = &Group> + '_ {
        self.groups.iter()
    }

    /// Number of groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// group_mod ADD (see [`crate::group`] for the checks and their order). Nothing changes
    /// on error.
    pub fn group_add(&mut self, spec: GroupSpec, now_ms: u64) -> Result<(), PipelineError> {
        self.groups.validate(&spec, false)?;
        self.groups.insert(spec, now_ms);
        self.version += 1;
        Ok(())
    }

    /// group_mod MODIFY: replaces the type and buckets of an existing group (its counters,
    /// creation time and the references to it are kept). Nothing changes on error.
    pub fn group_modify(&mut self, spec: GroupSpec) -> Result<(), PipelineError> {
        self.groups.validate(&spec, true)?;
        self.groups.replace(spec);
        self.version += 1;
        Ok(())
    }

    /// group_mod DELETE of one group (`Some(id)`) or of every group (`None`, OFPG_ALL).
    /// Rules forwarding to a deleted group are deleted too and returned. A group that does
    /// not exist is not an error (nothing happens); one that another group forwards to or
    /// watches is ([`PipelineError::ChainedGroup`], nothing changes). Deleting everything
    /// never fails.
    pub fn group_delete(&mut self, id: Option<u32>) -> Result<GroupDeleteOutcome, PipelineError> {
        let mut out = GroupDeleteOutcome::default();
        match id {
            Some(id) => {
                let Some(g) = self.groups.get(id) else {
                    return Ok(out);
                };
                if let Some(by) = self.groups.referrer(id) {
                    return Err(PipelineError::ChainedGroup { group: id, by });
                }
                // Other groups do not reference it, so every reference left is a rule's.
                if g.ref_count > 0 {
                    out.rules = self.remove_rules_where(|r| r.instructions.forwards_to_group(id));
                }
                out.groups.extend(self.groups.remove(id));
            }
            None => {
                out.rules = self.remove_rules_where(|r| r.instructions.uses_groups());
                out.groups = self.groups.clear();
            }
        }
        if !out.groups.is_empty() || !out.rules.is_empty() {
            self.version += 1;
        }
        Ok(out)
    }

    /// Removes (without bumping the version) every rule `pred` selects.
    fn remove_rules_where(&mut self, pred: impl Fn(&Rule) -> bool) -> Vec<Rule> {
        let slots: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&s| self.slots[s as usize].rule.as_ref().is_some_and(&pred))
            .collect();
        slots.into_iter().map(|s| self.remove_slot(s)).collect()
    }

    /// Credits packets and bytes to a group (for each group a translation went through, see
    /// [`crate::xlate::Xlation::groups`]). False when the group no longer exists.
    pub fn credit_group(&mut self, id: u32, packets: u64, bytes: u64) -> bool {
        match self.groups.get_mut(id) {
            Some(g) => {
                g.packets += packets;
                g.bytes += bytes;
                true
            }
            None => false,
        }
    }
}

/// One bridge port as xlate sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortCfg {
    /// Link up (flood/all skip down ports; an explicit output does not).
    pub up: bool,
    /// Included in OFPP_FLOOD.
    pub flood: bool,
}

/// A VXLAN tunnel port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelPortCfg {
    /// The tunnel (virtual) port number.
    pub port: PortNo,
    /// The underlay port encapsulated frames leave by and arrive on.
    pub underlay_port: PortNo,
    /// Local VTEP address.
    pub local_ip: IpAddr,
    /// Local underlay MAC.
    pub local_mac: [u8; 6],
    /// Fixed remote VTEP, or None: flow-based (from tun_dst / tun_ipv6_dst).
    pub remote_ip: Option<IpAddr>,
    /// Fixed VNI, or None: flow-based (from tun_id).
    pub vni: Option<u32>,
    /// UDP destination port (4789).
    pub dst_port: u16,
    /// Outer TTL.
    pub ttl: u8,
    /// Compute the outer UDP checksum on IPv4.
    pub udp_csum: bool,
    /// Next-hop MAC per remote VTEP address.
    pub neighbors: BTreeMap<IpAddr, [u8; 6]>,
}

impl TunnelPortCfg {
    /// A flow-based tunnel (remote and VNI from the flow) with VXLAN defaults (port 4789,
    /// TTL 64, no IPv4 UDP checksum) and no neighbors.
    pub fn new(port: PortNo, underlay_port: PortNo, local_ip: IpAddr, local_mac: [u8; 6]) -> Self {
        TunnelPortCfg {
            port,
            underlay_port,
            local_ip,
            local_mac,
            remote_ip: None,
            vni: None,
            dst_port: crate::tunnel::VXLAN_PORT,
            ttl: 64,
            udp_csum: false,
            neighbors: BTreeMap::new(),
        }
    }
}

/// The ports xlate needs to know (owned by the controller, passed to every xlate).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortEnv {
    /// Bridge ports, including tunnel ports (iterated in ascending order by flood/all).
    pub ports: BTreeMap<PortNo, PortCfg>,
    /// Tunnel ports by their port number.
    pub tunnels: BTreeMap<PortNo, TunnelPortCfg>,
}

impl PortEnv {
    /// Adds or updates a port.
    pub fn add_port(&mut self, port: PortNo, up: bool, flood: bool) -> &mut Self {
        self.ports.insert(port, PortCfg { up, flood });
        self
    }
    /// Adds or updates a tunnel port (also listed as an up, flood-enabled bridge port unless
    /// already present).
    pub fn add_tunnel(&mut self, cfg: TunnelPortCfg) -> &mut Self {
        self.ports.entry(cfg.port).or_insert(PortCfg {
            up: true,
            flood: true,
        });
        self.tunnels.insert(cfg.port, cfg);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_print_like_ovs_ofctl() {
        let i = Instructions::apply(vec![
            Action::Output(OfPort::Port(2)),
            Action::Output(OfPort::Controller { max_len: 64 }),
            Action::SetField {
                field: Field::Ipv4Dst,
                value: 0x0a00_0002,
            },
        ])
        .metadata(1, 0xff)
        .goto(3);
        assert_eq!(
            i.to_string(),
            "output:2,CONTROLLER:64,set_field:10.0.0.2->nw_dst,write_metadata:0x1/0xff,goto_table:3"
        );
        assert_eq!(Instructions::default().to_string(), "drop");
    }

    fn l2(mac: u64, out: PortNo) -> RuleSpec {
        RuleSpec::new(
            0,
            Match::default().with(Field::EthDst, mac as u128),
            100,
            Instructions::apply(vec![Action::Output(OfPort::Port(out))]),
        )
    }

    fn key_mac(mac: u64) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::EthDst, mac as u128);
        k
    }

    fn winner(p: &Pipeline, t: u8, k: &FlowKey) -> Option<RuleId> {
        let mut wc = FlowKey::ZERO;
        p.lookup(t, k, &mut wc).map(|r| r.id)
    }

    #[test]
    fn table_counts_and_errors() {
        assert!(matches!(
            Pipeline::new(0),
            Err(PipelineError::BadTableCount(0))
        ));
        assert!(Pipeline::new(256).is_err());
        assert_eq!(Pipeline::new(255).unwrap().n_tables(), 255);
        let mut p = Pipeline::new(2).unwrap();
        let mut s = l2(1, 1);
        s.table = 2;
        assert_eq!(
            p.add(s, AddOptions::default(), 0),
            Err(PipelineError::BadTable {
                table: 2,
                n_tables: 2
            })
        );
        let mut s = l2(1, 1);
        s.table = 1;
        s.instructions.goto_table = Some(1);
        assert_eq!(
            p.add(s.clone(), AddOptions::default(), 0),
            Err(PipelineError::BadGoto { table: 1, goto: 1 })
        );
        s.table = 0;
        s.instructions.goto_table = Some(2);
        assert!(matches!(
            p.add(s, AddOptions::default(), 0),
            Err(PipelineError::BadGoto { .. })
        ));
        let mut s = l2(1, 1);
        s.instructions.apply_actions.push(Action::SetField {
            field: Field::EthType,
            value: 0x800,
        });
        assert_eq!(
            p.add(s, AddOptions::default(), 0),
            Err(PipelineError::BadSetField(Field::EthType))
        );
        let mut s = l2(1, 1);
        s.instructions
            .apply_actions
            .push(Action::PushVlan { tpid: 0x0800 });
        assert_eq!(
            p.add(s, AddOptions::default(), 0),
            Err(PipelineError::BadTpid(0x0800))
        );
        assert_eq!(p.version(), 0, "failed adds change nothing");
        assert!(p.is_empty());
    }

    #[test]
    fn priorities_ties_and_early_stop() {
        let mut p = Pipeline::default();
        let lo = p
            .add(
                RuleSpec::new(0, Match::CATCH_ALL, 1, Instructions::default()),
                AddOptions::default(),
                0,
            )
            .unwrap()
            .id;
        let hi = p.add(l2(5, 2), AddOptions::default(), 0).unwrap().id;
        assert_eq!(winner(&p, 0, &key_mac(5)), Some(hi));
        assert_eq!(winner(&p, 0, &key_mac(6)), Some(lo));
        // A hit in the top subtable stops the lookup before the catch-all subtable: its mask
        // (empty) adds nothing, and a lower-priority wider subtable is not visited.
        let mut wc = FlowKey::ZERO;
        p.lookup(0, &key_mac(5), &mut wc);
        assert_eq!(wc, FlowKey::ZERO.with_field(Field::EthDst));
        let mut p2 = Pipeline::default();
        p2.add(l2(5, 2), AddOptions::default(), 0).unwrap();
        p2.add(
            RuleSpec::new(
                0,
                Match::default().with(Field::InPort, 1),
                50,
                Instructions::default(),
            ),
            AddOptions::default(),
            0,
        )
        .unwrap();
        let mut wc = FlowKey::ZERO;
        p2.lookup(0, &key_mac(5), &mut wc);
        assert_eq!(
            wc.get(Field::InPort),
            0,
            "subtable below the best was skipped"
        );
        let mut wc = FlowKey::ZERO;
        p2.lookup(0, &key_mac(6), &mut wc);
        assert_eq!(
            wc.get(Field::InPort),
            0xffff_ffff,
            "on a miss it is visited"
        );
        // Equal priority, overlapping: the older rule wins, in either subtable order.
        let mut p3 = Pipeline::default();
        let a = p3
            .add(
                RuleSpec::new(
                    0,
                    Match::default().with(Field::InPort, 1),
                    100,
                    Instructions::default(),
                ),
                AddOptions::default(),
                0,
            )
            .unwrap()
            .id;
        p3.add(l2(5, 2), AddOptions::default(), 0).unwrap();
        let mut k = key_mac(5);
        k.set(Field::InPort, 1);
        assert_eq!(winner(&p3, 0, &k), Some(a));
        // Older rule in a subtable ordered after one holding a newer equal-priority rule: the
        // lookup must not stop at the first hit of equal priority.
        let mut p4 = Pipeline::default();
        let ins = Instructions::default;
        let by_port = |port: u128| Match::default().with(Field::InPort, port);
        p4.add(
            RuleSpec::new(0, by_port(7), 100, ins()),
            AddOptions::default(),
            0,
        )
        .unwrap();
        let older = p4.add(l2(5, 2), AddOptions::default(), 0).unwrap().id;
        p4.add(
            RuleSpec::new(0, by_port(1), 100, ins()),
            AddOptions::default(),
            0,
        )
        .unwrap();
        assert_eq!(winner(&p4, 0, &k), Some(older));
    }

    #[test]
    fn replace_keeps_or_resets_counters_and_ids_go_stale() {
        let mut p = Pipeline::default();
        let a = p.add(l2(5, 2), AddOptions::default(), 10).unwrap().id;
        assert!(p.credit(a, 3, 300, 20));
        let v = p.version();
        let out = p.add(l2(5, 3), AddOptions::default(), 30).unwrap();
        assert_eq!(out.replaced.as_ref().map(|r| r.packets), Some(3));
        assert_ne!(out.id, a);
        assert!(p.get(a).is_none(), "replaced id is stale");
        assert!(!p.credit(a, 1, 1, 40), "stale credit ignored");
        assert_eq!(p.get(out.id).unwrap().packets, 0);
        assert_eq!(p.len(), 1);
        assert_eq!(p.version(), v + 1);
        p.credit(out.id, 7, 700, 40);
        let keep = AddOptions {
            keep_counts: true,
            ..Default::default()
        };
        let out2 = p.add(l2(5, 4), keep, 50).unwrap();
        assert_eq!(p.get(out2.id).unwrap().packets, 7);
        assert_eq!(p.get(out2.id).unwrap().bytes, 700);
        // Same id round trip through u64.
        assert_eq!(RuleId::from_u64(out2.id.to_u64()), out2.id);
    }

    #[test]
    fn check_overlap() {
        let mut p = Pipeline::default();
        p.add(l2(5, 2), AddOptions::default(), 0).unwrap();
        let ov = AddOptions {
            check_overlap: true,
            ..Default::default()
        };
        let s = RuleSpec::new(
            0,
            Match::default().with(Field::InPort, 1),
            100,
            Instructions::default(),
        );
        assert_eq!(
            p.add(s.clone(), ov, 0),
            Err(PipelineError::Overlap {
                table: 0,
                priority: 100
            })
        );
        let mut s2 = s.clone();
        s2.priority = 99;
        assert!(p.add(s2, ov, 0).is_ok(), "other priority: no overlap");
        assert!(p.add(l2(6, 2), ov, 0).is_ok(), "disjoint: no overlap");
    }

    #[test]
    fn modify_and_delete_with_filters() {
        let mut p = Pipeline::new(4).unwrap();
        let mut ids = Vec::new();
        for i in 0..6u64 {
            let mut s = l2(i, (i % 3) as PortNo + 1);
            s.cookie = i << 8 | (i % 2);
            s.matching.set(Field::EthType, 0x800);
            ids.push(p.add(s, AddOptions::default(), 0).unwrap().id);
        }
        p.credit(ids[0], 1, 1, 1);
        let v = p.version();
        // Non-strict on eth_type covers all six; cookie filter: odd low bit only.
        let f =
            RuleFilter::loose(Some(0), Match::default().with(Field::EthType, 0x800)).cookie(1, 1);
        let got = p
            .modify(&f, Instructions::apply(vec![Action::DecTtl]), false)
            .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(p.version(), v + 1);
        for id in &got {
            assert_eq!(
                p.get(*id).unwrap().instructions.apply_actions,
                vec![Action::DecTtl]
            );
        }
        // Non-strict with a narrower match covers nothing broader.
        let none = p
            .modify(
                &RuleFilter::loose(Some(0), Match::default().with(Field::IpProto, 6)),
                Instructions::default(),
                false,
            )
            .unwrap();
        assert!(none.is_empty());
        assert_eq!(p.version(), v + 1, "no change, no bump");
        // Bad goto for a selected rule: error, nothing changed.
        assert!(p
            .modify(
                &RuleFilter::loose(None, Match::CATCH_ALL),
                Instructions::default().goto(0),
                false
            )
            .is_err());
        // Strict modify with reset_counts.
        let m0 = Match::default()
            .with(Field::EthDst, 0)
            .with(Field::EthType, 0x800);
        let got = p
            .modify(
                &RuleFilter::strict(0, m0, 100),
                Instructions::default().goto(3),
                true,
            )
            .unwrap();
        assert_eq!(got, vec![ids[0]]);
        assert_eq!(p.get(ids[0]).unwrap().packets, 0);
        assert!(p
            .modify(
                &RuleFilter::strict(0, m0, 99),
                Instructions::default(),
                true
            )
            .unwrap()
            .is_empty());
        // Delete by out_port: i%3 == 1 -> port 2 -> i in {1, 4}; rule 1 was modified to
        // dec_ttl only, so just rule 4.
        let gone = p
            .delete(&RuleFilter::loose(None, Match::CATCH_ALL).out_port(OfPort::Port(2)))
            .unwrap();
        assert_eq!(gone.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[4]]);
        assert_eq!(p.len(), 5);
        // Delete strict.
        let gone = p.delete(&RuleFilter::strict(0, m0, 100)).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(winner(&p, 0, &key_mac(0)), None);
        // Delete all.
        let v = p.version();
        assert_eq!(
            p.delete(&RuleFilter::loose(None, Match::CATCH_ALL))
                .unwrap()
                .len(),
            4
        );
        assert!(p.is_empty());
        assert_eq!(p.table_rules(0).count(), 0);
        assert_eq!(p.version(), v + 1);
        assert!(p
            .delete(&RuleFilter::loose(Some(9), Match::CATCH_ALL))
            .is_err());
    }

    #[test]
    fn timeouts_and_credit() {
        let mut p = Pipeline::default();
        let mut idle = l2(1, 1);
        idle.idle_timeout = 10;
        let mut hard = l2(2, 1);
        hard.hard_timeout = 5;
        hard.idle_timeout = 1;
        let i = p.add(idle, AddOptions::default(), 1_000).unwrap().id;
        let h = p.add(hard, AddOptions::default(), 1_000).unwrap().id;
        let v = p.version();
        assert!(p.expire(1_999).is_empty());
        assert_eq!(p.version(), v);
        p.credit(h, 1, 64, 1_500);
        p.credit(i, 1, 64, 5_000);
        assert_eq!(p.get(i).unwrap().last_used_ms, 5_000);
        let out = p.expire(6_000);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.id, h);
        assert_eq!(out[0].1, RemovalReason::HardTimeout);
        assert_eq!(p.version(), v + 1);
        assert!(p.expire(14_999).is_empty());
        let out = p.expire(15_000);
        assert_eq!(out[0].1, RemovalReason::IdleTimeout);
        assert_eq!(out[0].0.packets, 1);
        assert!(p.is_empty());
    }

    #[test]
    fn table_miss_bumps_version() {
        let mut p = Pipeline::new(3).unwrap();
        assert_eq!(p.table_miss(0), Some(TableMiss::Drop));
        p.set_table_miss(1, TableMiss::Controller).unwrap();
        assert_eq!(p.version(), 1);
        p.set_table_miss(1, TableMiss::Controller).unwrap();
        assert_eq!(p.version(), 1);
        assert!(p.set_table_miss(3, TableMiss::Drop).is_err());
        assert_eq!(p.table_miss(3), None);
    }

    #[test]
    fn many_rules_many_masks_then_remove_all() {
        let mut p = Pipeline::new(2).unwrap();
        let mut ids = Vec::new();
        for i in 0..2_000u64 {
            let mut m = Match::default();
            m.set_prefix(Field::Ipv4Dst, (i as u128) << 8, 24 - (i % 8) as u32)
                .unwrap();
            m.set(Field::TpDst, i as u128 % 7);
            let s = RuleSpec::new(1, m, (i % 50) as u16, Instructions::default());
            ids.push(p.add(s, AddOptions::default(), 0).unwrap().id);
        }
        assert_eq!(p.table_len(1), 2_000);
        assert_eq!(p.table_rules(1).count(), 2_000);
        // Lookup agrees with a linear scan.
        for probe in 0..300u64 {
            let mut k = FlowKey::ZERO;
            k.set(Field::Ipv4Dst, (probe as u128) << 8 | 7);
            k.set(Field::TpDst, probe as u128 % 7);
            let lin = p
                .table_rules(1)
                .filter(|r| r.matching.matches(&k))
                .min_by_key(|r| (u16::MAX - r.priority, r.seq))
                .map(|r| r.id);
            assert_eq!(winner(&p, 1, &k), lin);
        }
        for id in ids {
            let r = p.get(id).unwrap().clone();
            assert_eq!(
                p.delete(&RuleFilter::strict(1, r.matching, r.priority))
                    .unwrap()
                    .len(),
                1
            );
        }
        assert!(p.is_empty());
        assert!(p.tables[1].order.is_empty());
    }
}
