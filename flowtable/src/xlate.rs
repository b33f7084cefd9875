//! xlate: runs the OpenFlow [`Pipeline`] for one packet key and compiles what it did into a
//! megaflow (a [`Match`] whose mask is exactly what was consulted) and a list of
//! [`DpAction`]s that the datapath can apply to every packet the megaflow matches; and
//! [`xlate_actions`], the same for a packet-out action list.
//!
//! Contract (checked against [`crate::semantics`] by `tests/xlate_props.rs`): for every key
//! `k2` with `x.megaflow.matches(k2)`, `apply_dp(k2, &x.actions) == execute(p, env, k2)`
//! (for a packet-out, `== execute_actions(p, env, k2, actions)`).
//!
//! How:
//! - The megaflow key is the ORIGINAL key masked; the mask ("wildcards", `wc`) starts with
//!   `in_port` exact and gains: the mask of every subtable each table lookup visited; the
//!   fields a decision read (eth_type etc. for set-field prerequisites and dec_ttl, the VLAN
//!   present bit for push/pop, the TCI when push_vlan copies it, tun_id / tun_dst for a
//!   flow-based tunnel, the fields of the underlay-termination test, the fields a SELECT
//!   group hashed). Actions run on a working copy of the key; fields written by actions are
//!   constants for the whole megaflow, so consulting them un-wildcards (harmlessly) the
//!   original bits. The TTL after dec_ttl is the one value derived non-bitwise from the
//!   packet: once decremented, consulting any TTL bit un-wildcards the whole TTL. Metadata and
//!   registers start at zero, so they are never in the megaflow mask.
//! - Wire fields written by set-field are "dirty"; before each packet-visible action (output,
//!   tunnel push, userspace, push/pop VLAN, dec_ttl) dirty fields are committed as
//!   `DpAction::Set`, skipped when an earlier `Set` already gave the packet the same value, so
//!   plain forwarding compiles to bare outputs. No `Set` value ever depends on unconsulted
//!   packet bits (VLAN VID and PCP, and TOS, DSCP and ECN are committed as separate fields).
//! - VLAN tags: the key shows the outer tag; a push over a tag remembers the covered tag (on
//!   the pipeline's side and on the datapath packet's side), so a pop uncovers it as the wire
//!   does. At most [`MAX_COVERED_TAGS`] covered tags; more truncates the translation.
//! - dec_ttl emits `DpAction::DecTtl` on IP packets and translation goes on: the datapath stops
//!   the list when TTL <= 1 (the reference interpreter stops the same way), so TTL itself is
//!   not consulted. Inside a copy (a group bucket, an output:TABLE) an expiry must drop only the
//!   copy, so there dec_ttl consults the TTL, ends the copy when it is <= 1 and otherwise
//!   writes the decremented value like a set-field.
//! - Groups ([`crate::group`]): each bucket runs on a copy of the pipeline's view of the packet;
//!   the emitted actions change the one datapath packet, so after a bucket every field the
//!   bucket changed on it (and the VLAN tags, if it pushed or popped) is marked dirty and put
//!   back by the next commit (un-wildcarding the field when its value comes from the packet),
//!   with pops and pushes (TPID 0x8100: the key has no TPID) for the tags. SELECT liveness and
//!   weights decide without reading the packet; the hash reads (and un-wildcards) the fields
//!   listed in [`crate::group`], except those a set-field made constant; a single candidate
//!   needs no hash. [`Xlation::groups`] lists every group gone through, for
//!   [`Pipeline::credit_group`].
//! - Output to a port equal to in_port is dropped (use `InPort`); flood/all list up ports
//!   (flood: flood-enabled) ascending, except in_port; controller becomes `Userspace`; a tunnel
//!   port becomes `TunnelPush` when VNI, remote and next hop resolve, else nothing.
//! - A packet to a tunnel's local VTEP on its underlay port gets `TunnelPop` alone.
//! - At most [`MAX_ACTIONS`] actions are emitted; a translation that would need more is cut
//!   to an empty list (drop) with [`Xlation::truncated`] set, for the caller to count or log.
//!
//! Cost: no allocation besides the output vectors (reuse them with [`xlate_into`]); a group
//! bucket costs a copy of the working state on the stack, nothing on the heap.

use crate::dpaction::{DpAction, UserspaceReason};
use crate::flow_match::Match;
use crate::group::{Bucket, Group, GroupType, SelectHash, MAX_GROUP_DEPTH};
use crate::key::{Field, FlowKey, FRAG_LATER, VLAN_PRESENT};
use crate::pipeline::{
    Action, OfPort, Pipeline, PortEnv, RuleId, TableMiss, TunnelPortCfg, IN_PORT_CONTROLLER,
};
use crate::port::PortNo;
use crate::semantics::{MISS_COOKIE, MISS_MAX_LEN, PACKET_OUT_COOKIE, PACKET_OUT_TABLE};
use crate::tunnel::{TunnelParams, TunnelPush};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most datapath actions one translation may emit.
pub const MAX_ACTIONS: usize = 256;

/// Most VLAN tags one translation may keep covered by pushes at once.
pub const MAX_COVERED_TAGS: usize = 8;

/// The result of translating one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Xlation {
    /// The megaflow: the original key under exactly the consulted mask.
    pub megaflow: Match,
    /// Datapath actions (empty: drop).
    pub actions: Vec<DpAction>,
    /// Every rule matched, in order (for crediting megaflow stats back).
    pub rules: Vec<RuleId>,
    /// Every group gone through, in order, once per visit (for crediting group stats).
    pub groups: Vec<u32>,
    /// The action list overflowed [`MAX_ACTIONS`] (or [`MAX_COVERED_TAGS`]) and was replaced
    /// by drop.
    pub truncated: bool,
    /// [`Pipeline::version`] the translation was made against.
    pub version: u64,
}

/// Translates `key` through the pipeline (see the module docs).
pub fn xlate(p: &Pipeline, env: &PortEnv, key: &FlowKey) -> Xlation {
    let mut x = Xlation::default();
    xlate_into(p, env, key, &mut x);
    x
}

/// [`xlate`] into an existing [`Xlation`], reusing its vectors' capacity.
pub fn xlate_into(p: &Pipeline, env: &PortEnv, key: &FlowKey, out: &mut Xlation) {
    translate(p, env, key, out, false, |cx| {
        match cx.underlay_termination() {
            Some(port) => cx.emit(DpAction::TunnelPop { port }),
            None => cx.run(),
        }
    });
}

/// Translates a packet-out: the action list `actions` run on a packet of key `key`.
///
/// The in_port is the key's; a packet-out naming no port (OFPP_CONTROLLER, OFPP_ANY) uses
/// [`IN_PORT_CONTROLLER`], whose `output:IN_PORT` is dropped and which flood/all do not
/// exclude. `output:TABLE` submits a copy of the packet (as the actions before it left it) to
/// the pipeline from table 0, metadata and registers zeroed, like a received packet but
/// without underlay termination; the rules it matches are in [`Xlation::rules`]. Controller
/// outputs of the list itself carry [`PACKET_OUT_COOKIE`] and [`PACKET_OUT_TABLE`]. The
/// megaflow is meaningful (the same contract as [`xlate`]) but a packet-out is executed once,
/// not cached.
pub fn xlate_actions(p: &Pipeline, env: &PortEnv, key: &FlowKey, actions: &[Action]) -> Xlation {
    let mut x = Xlation::default();
    xlate_actions_into(p, env, key, actions, &mut x);
    x
}

/// [`xlate_actions`] into an existing [`Xlation`].
pub fn xlate_actions_into(
    p: &Pipeline,
    env: &PortEnv,
    key: &FlowKey,
    actions: &[Action],
    out: &mut Xlation,
) {
    translate(p, env, key, out, true, |cx| {
        for a in actions {
            cx.action(a, PACKET_OUT_COOKIE, PACKET_OUT_TABLE, 0);
            if cx.full || cx.stopped {
                return;
            }
        }
    });
}

fn translate(
    p: &Pipeline,
    env: &PortEnv,
    key: &FlowKey,
    out: &mut Xlation,
    packet_out: bool,
    body: impl FnOnce(&mut Ctx<'_>),
) {
    out.actions.clear();
    out.rules.clear();
    out.groups.clear();
    out.truncated = false;
    out.version = p.version();
    let (mut wc, full) = {
        let mut cx = Ctx {
            p,
            env,
            in_port: key.get(Field::InPort) as PortNo,
            packet_out,
            work: *key,
            wconst: FlowKey::ZERO,
            wtags: Tags::EMPTY,
            dirty: FlowKey::ZERO,
            any_dirty: false,
            vlan_dirty: false,
            ttl_derived: false,
            wc: FlowKey::ZERO.with_field(Field::InPort),
            dp: *key,
            known: FlowKey::ZERO,
            dtags: Tags::EMPTY,
            touched: FlowKey::ZERO,
            clone_depth: 0,
            stopped: false,
            full: false,
            actions: &mut out.actions,
            rules: &mut out.rules,
            groups: &mut out.groups,
        };
        body(&mut cx);
        (cx.wc, cx.full)
    };
    // Metadata and registers start at zero in every translation, so reading them never
    // depends on the packet: keep them out of the megaflow.
    for f in PIPELINE_REGS {
        field_clear(&mut wc, f);
    }
    if full {
        out.actions.clear();
        out.truncated = true;
    }
    out.megaflow = Match::new(*key, wc);
}

const PIPELINE_REGS: [Field; 5] = [
    Field::Metadata,
    Field::Reg0,
    Field::Reg1,
    Field::Reg2,
    Field::Reg3,
];

/// Fields committed as `Set`, in commit order. A field is committed only when all its bits
/// are dirty, so IpTos (whole) goes before its parts and VLAN TCI is never set whole.
const COMMIT_FIELDS: [Field; 23] = [
    Field::EthSrc,
    Field::EthDst,
    Field::VlanVid,
    Field::VlanPcp,
    Field::IpTos,
    Field::IpDscp,
    Field::IpEcn,
    Field::IpTtl,
    Field::Ipv4Src,
    Field::Ipv4Dst,
    Field::Ipv6Src,
    Field::Ipv6Dst,
    Field::Ipv6Label,
    Field::TpSrc,
    Field::TpDst,
    Field::IcmpType,
    Field::IcmpCode,
    Field::ArpOp,
    Field::ArpSpa,
    Field::ArpTpa,
    Field::ArpSha,
    Field::ArpTha,
    Field::NdTarget,
];

/// Where a field's bits are, as word masks: `(word, mask)` and, for 128-bit fields, the low
/// word `(word + 1, u64::MAX)` (else `(word, 0)`), so the commit loop tests fields with two
/// ANDs instead of a field read.
#[derive(Clone, Copy)]
struct FieldBits {
    field: Field,
    hi: (usize, u64),
    lo: (usize, u64),
}

impl FieldBits {
    const fn of(field: Field) -> FieldBits {
        let (w, shift, bits) = field.loc();
        if bits == 128 {
            FieldBits {
                field,
                hi: (w, u64::MAX),
                lo: (w + 1, u64::MAX),
            }
        } else {
            let m = if bits == 64 {
                u64::MAX
            } else {
                ((1u64 << bits) - 1) << shift
            };
            FieldBits {
                field,
                hi: (w, m),
                lo: (w, 0),
            }
        }
    }
    /// Every bit of the field is set in `k`.
    #[inline(always)]
    fn all(&self, k: &FlowKey) -> bool {
        k.w[self.hi.0] & self.hi.1 == self.hi.1 && k.w[self.lo.0] & self.lo.1 == self.lo.1
    }
    /// Some bit of the field is set in `k`.
    #[inline(always)]
    fn any(&self, k: &FlowKey) -> bool {
        k.w[self.hi.0] & self.hi.1 != 0 || k.w[self.lo.0] & self.lo.1 != 0
    }
}

const COMMIT_BITS: [FieldBits; 23] = {
    let mut out = [FieldBits::of(Field::EthSrc); 23];
    let mut i = 0;
    while i < COMMIT_FIELDS.len() {
        out[i] = FieldBits::of(COMMIT_FIELDS[i]);
        i += 1;
    }
    out
};

/// VLAN tags covered by pushes (TCI with the present bit), innermost first.
#[derive(Clone, Copy)]
struct Tags {
    tci: [u16; MAX_COVERED_TAGS],
    n: usize,
}

impl Tags {
    const EMPTY: Tags = Tags {
        tci: [0; MAX_COVERED_TAGS],
        n: 0,
    };
    /// False when full.
    fn push(&mut self, tci: u16) -> bool {
        if self.n == MAX_COVERED_TAGS {
            return false;
        }
        self.tci[self.n] = tci;
        self.n += 1;
        true
    }
    fn pop(&mut self) -> Option<u16> {
        self.n = self.n.checked_sub(1)?;
        Some(self.tci[self.n])
    }
    /// The covered tags then `outer` (when it has the present bit): the whole stack.
    fn with_outer(&self, outer: u16) -> ([u16; MAX_COVERED_TAGS + 1], usize) {
        let mut all = [0; MAX_COVERED_TAGS + 1];
        all[..self.n].copy_from_slice(&self.tci[..self.n]);
        let mut n = self.n;
        if outer & VLAN_PRESENT != 0 {
            all[n] = outer;
            n += 1;
        }
        (all, n)
    }
}

/// The pipeline's view of the packet: what a group bucket copies and gets back.
#[derive(Clone, Copy)]
struct View {
    work: FlowKey,
    wconst: FlowKey,
    wtags: Tags,
    dirty: FlowKey,
    any_dirty: bool,
    vlan_dirty: bool,
    ttl_derived: bool,
}

struct Ctx<'a> {
    p: &'a Pipeline,
    env: &'a PortEnv,
    in_port: PortNo,
    /// Translating a packet-out: output:TABLE is honoured at the top level.
    packet_out: bool,
    /// The key as the pipeline sees it now.
    work: FlowKey,
    /// Bits of `work` that are constants for the whole megaflow (written by actions).
    wconst: FlowKey,
    /// Tags covered by pushes, as the pipeline sees them.
    wtags: Tags,
    /// Bits written by set-field (or changed on the datapath packet by a group bucket) and
    /// not yet committed.
    dirty: FlowKey,
    /// `dirty` may be non-zero (saves scanning it at every output).
    any_dirty: bool,
    /// The datapath packet's VLAN tags may differ from the pipeline's (after a bucket).
    vlan_dirty: bool,
    /// The working TTL is the packet's TTL minus something.
    ttl_derived: bool,
    /// Consulted bits of the original key.
    wc: FlowKey,
    /// The packet as the emitted actions leave it; meaningful on `known` bits.
    dp: FlowKey,
    /// Bits of `dp` that are constants set by emitted actions.
    known: FlowKey,
    /// Tags covered by pushes on the datapath packet.
    dtags: Tags,
    /// Bits of the datapath packet changed by emitted actions since the innermost copy began.
    touched: FlowKey,
    /// Nesting of copies (group buckets, output:TABLE); 0: the packet itself.
    clone_depth: u32,
    /// The current copy was dropped (dec_ttl expiry): stop until its end.
    stopped: bool,
    /// MAX_ACTIONS (or MAX_COVERED_TAGS) reached: translation stops.
    full: bool,
    actions: &'a mut Vec<DpAction>,
    rules: &'a mut Vec<RuleId>,
    groups: &'a mut Vec<u32>,
}

#[inline(always)]
fn field_set(k: &mut FlowKey, f: Field) {
    k.set(f, f.full_mask());
}

#[inline(always)]
fn field_clear(k: &mut FlowKey, f: Field) {
    k.set(f, 0);
}

impl<'a> Ctx<'a> {
    #[inline(always)]
    fn consult(&mut self, f: Field) -> u128 {
        field_set(&mut self.wc, f);
        self.work.get(f)
    }

    #[inline(always)]
    fn consult_bits(&mut self, f: Field, bits: u128) -> u128 {
        let cur = self.wc.get(f);
        self.wc.set(f, cur | bits);
        self.work.get(f) & bits
    }

    /// True when the working value of `f` is the same for every key of the megaflow: written
    /// by an action, or read from fully consulted bits.
    #[inline(always)]
    fn determined(&self, f: Field) -> bool {
        (self.wconst.get(f) | self.wc.get(f)) == f.full_mask()
    }

    fn emit(&mut self, a: DpAction) {
        if self.actions.len() >= MAX_ACTIONS {
            self.full = true;
            return;
        }
        self.actions.push(a);
    }

    fn underlay_termination(&mut self) -> Option<PortNo> {
        let env = self.env;
        for t in env.tunnels.values() {
            if t.underlay_port != self.in_port {
                continue;
            }
            let et = self.consult(Field::EthType);
            let to_local = match t.local_ip {
                IpAddr::V4(a) => {
                    et == 0x0800 && self.consult(Field::Ipv4Dst) == u32::from(a) as u128
                }
                IpAddr::V6(a) => et == 0x86dd && self.consult(Field::Ipv6Dst) == u128::from(a),
            };
            if to_local
                && self.consult(Field::IpProto) == 17
                && self.consult_bits(Field::IpFrag, FRAG_LATER as u128) == 0
                && self.consult(Field::TpDst) == t.dst_port as u128
            {
                return Some(t.port);
            }
        }
        None
    }

    /// The pipeline from table 0.
    fn run(&mut self) {
        // OpenFlow: metadata and registers start at zero.
        for f in PIPELINE_REGS {
            field_clear(&mut self.work, f);
        }
        let p = self.p;
        let mut table: u8 = 0;
        loop {
            let hit = p.lookup(table, &self.work, &mut self.wc);
            if self.ttl_derived && self.wc.get(Field::IpTtl) != 0 {
                field_set(&mut self.wc, Field::IpTtl);
            }
            let Some(rule) = hit else {
                match p.table_miss(table) {
                    Some(TableMiss::Continue) if (table as usize) + 1 < p.n_tables() => {
                        table += 1;
                        continue;
                    }
                    Some(TableMiss::Controller) => {
                        self.commit();
                        let metadata = self.work.get(Field::Metadata) as u64;
                        self.emit(DpAction::Userspace {
                            reason: UserspaceReason::NoMatch,
                            max_len: MISS_MAX_LEN,
                            cookie: MISS_COOKIE,
                            table,
                            metadata,
                        });
                    }
                    _ => {}
                }
                return;
            };
            self.rules.push(rule.id);
            for a in &rule.instructions.apply_actions {
                self.action(a, rule.cookie, rule.table, 0);
                if self.full || self.stopped {
                    return;
                }
            }
            if let Some((v, m)) = rule.instructions.write_metadata {
                let md = self.work.get(Field::Metadata) as u64;
                self.work
                    .set(Field::Metadata, ((md & !m) | (v & m)) as u128);
            }
            match rule.instructions.goto_table {
                Some(t) => table = t,
                None => return,
            }
        }
    }

    /// One action; `depth`: how many groups deep it is.
    #[inline(always)]
    fn action(&mut self, a: &Action, cookie: u64, table: u8, depth: usize) {
        match *a {
            Action::Output(op) => self.output(op, cookie, table),
            Action::SetField { field, value } => self.set_field(field, value),
            Action::SetTunnel { vni } => self.work.set(Field::TunId, vni as u128),
            Action::PushVlan { tpid } => self.push_vlan(tpid),
            Action::PopVlan => self.pop_vlan(),
            Action::DecTtl => self.dec_ttl(),
            Action::Group(g) => self.group(g, cookie, table, depth),
        }
    }

    fn push_vlan(&mut self, tpid: u16) {
        let present = self.consult(Field::VlanPresent) == 1;
        // The datapath packet gets the pipeline's tags and VID/PCP first, so the covered tag
        // is the same on both sides.
        self.commit();
        let tci = if present {
            // Copy VID/PCP from the current tag: reads the whole TCI.
            field_set(&mut self.wc, Field::VlanTci);
            let cur = self.work.get(Field::VlanTci) as u16;
            let dcur = self.dp.get(Field::VlanTci) as u16;
            if !self.wtags.push(cur) || !self.dtags.push(dcur) {
                self.full = true;
                return;
            }
            cur
        } else {
            VLAN_PRESENT
        };
        self.emit(DpAction::PushVlan {
            tpid,
            tci: tci & !VLAN_PRESENT,
        });
        self.set_tci((tci | VLAN_PRESENT) as u128, (tci | VLAN_PRESENT) as u128);
    }

    fn pop_vlan(&mut self) {
        if self.consult(Field::VlanPresent) == 1 {
            self.commit();
            self.emit(DpAction::PopVlan);
            let w = self.wtags.pop().unwrap_or(0);
            let d = self.dtags.pop().unwrap_or(0);
            self.set_tci(w as u128, d as u128);
        }
    }

    /// The outer TCI after a push or pop: a megaflow constant on both sides (a copied or
    /// uncovered TCI was fully consulted when it was pushed).
    fn set_tci(&mut self, work: u128, dp: u128) {
        self.work.set(Field::VlanTci, work);
        self.dp.set(Field::VlanTci, dp);
        self.dirty.set(Field::VlanTci, 0);
        field_set(&mut self.wconst, Field::VlanTci);
        field_set(&mut self.known, Field::VlanTci);
        field_set(&mut self.touched, Field::VlanTci);
    }

    fn dec_ttl(&mut self) {
        let et = self.consult(Field::EthType);
        if et != 0x0800 && et != 0x86dd {
            return;
        }
        if self.clone_depth == 0 {
            self.commit();
            self.emit(DpAction::DecTtl);
            let ttl = self.work.get(Field::IpTtl) as u8;
            self.work.set(Field::IpTtl, ttl.wrapping_sub(1) as u128);
            let dttl = self.dp.get(Field::IpTtl) as u8;
            self.dp.set(Field::IpTtl, dttl.wrapping_sub(1) as u128);
            field_set(&mut self.touched, Field::IpTtl);
            if self.known.get(Field::IpTtl) != Field::IpTtl.full_mask() {
                self.ttl_derived = true;
            }
        } else {
            // A copy: the datapath's DecTtl would end the whole list, so decide here.
            let ttl = self.consult(Field::IpTtl);
            if ttl <= 1 {
                self.stopped = true;
                return;
            }
            self.work.set(Field::IpTtl, ttl - 1);
            field_set(&mut self.wconst, Field::IpTtl);
            self.mark_dirty(Field::IpTtl);
        }
    }

    /// Set-field with OpenFlow prerequisites, un-wildcarding what decided them.
    fn set_field(&mut self, f: Field, v: u128) {
        use Field::*;
        if f.is_pipeline_only() || f.is_tunnel() {
            self.work.set(f, v);
            return;
        }
        let applies = match f {
            EthSrc | EthDst => true,
            VlanVid | VlanPcp => self.consult(VlanPresent) == 1,
            IpTos | IpDscp | IpEcn | IpTtl => self.ip(),
            Ipv4Src | Ipv4Dst => self.consult(EthType) == 0x0800,
            Ipv6Src | Ipv6Dst | Ipv6Label => self.consult(EthType) == 0x86dd,
            TpSrc | TpDst => {
                self.ip() && matches!(self.consult(IpProto), 6 | 17 | 132) && self.not_later_frag()
            }
            IcmpType | IcmpCode => self.icmp(),
            ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => self.consult(EthType) == 0x0806,
            NdTarget => {
                self.consult(EthType) == 0x86dd
                    && self.icmp()
                    && matches!(self.consult(IcmpType), 135 | 136)
            }
            _ => false,
        };
        if applies {
            self.work.set(f, v);
            self.mark_dirty(f);
            field_set(&mut self.wconst, f);
            if f == IpTtl {
                self.ttl_derived = false;
            }
        }
    }

    fn ip(&mut self) -> bool {
        let et = self.consult(Field::EthType);
        et == 0x0800 || et == 0x86dd
    }

    fn not_later_frag(&mut self) -> bool {
        self.consult_bits(Field::IpFrag, FRAG_LATER as u128) == 0
    }

    fn icmp(&mut self) -> bool {
        let et = self.consult(Field::EthType);
        let proto = self.consult(Field::IpProto);
        ((et == 0x0800 && proto == 1) || (et == 0x86dd && proto == 58)) && self.not_later_frag()
    }

    /// Makes the datapath packet what the pipeline sees: its VLAN tags (after a bucket), then
    /// a `Set` for every dirty field whose value the packet does not already have.
    fn commit(&mut self) {
        if self.vlan_dirty {
            self.commit_vlan();
        }
        if !self.any_dirty {
            return;
        }
        for fb in &COMMIT_BITS {
            if !fb.all(&self.dirty) {
                continue;
            }
            let (f, full) = (fb.field, fb.field.full_mask());
            field_clear(&mut self.dirty, f);
            if matches!(f, Field::VlanVid | Field::VlanPcp) && self.consult(Field::VlanPresent) == 0
            {
                // Put back after a bucket, but the pipeline's packet has no tag now.
                continue;
            }
            if !self.determined(f) {
                // A value put back after a bucket that comes from the packet.
                field_set(&mut self.wc, f);
            }
            let v = self.work.get(f);
            if self.known.get(f) == full && self.dp.get(f) == v {
                continue;
            }
            self.emit(DpAction::Set { field: f, value: v });
            self.dp.set(f, v);
            field_set(&mut self.known, f);
            field_set(&mut self.touched, f);
        }
        self.dirty = FlowKey::ZERO;
        self.any_dirty = false;
    }

    #[inline(always)]
    fn mark_dirty(&mut self, f: Field) {
        field_set(&mut self.dirty, f);
        self.any_dirty = true;
    }

    /// Pops and pushes until the datapath packet has the pipeline's tags (below the outer
    /// one exactly; the outer one's VID/PCP are then committed as `Set` if they differ).
    fn commit_vlan(&mut self) {
        self.vlan_dirty = false;
        // Every TCI on either side is then a megaflow constant.
        field_set(&mut self.wc, Field::VlanTci);
        let (w, wn) = self.wtags.with_outer(self.work.get(Field::VlanTci) as u16);
        let (d, dn) = self.dtags.with_outer(self.dp.get(Field::VlanTci) as u16);
        let mut c = 0;
        while c < wn.min(dn) && w[c] == d[c] {
            c += 1;
        }
        if wn == dn && c + 1 >= wn {
            if c < wn {
                self.mark_dirty(Field::VlanVid);
                self.mark_dirty(Field::VlanPcp);
            }
        } else {
            for _ in c..dn {
                self.emit(DpAction::PopVlan);
            }
            for &t in &w[c..wn] {
                self.emit(DpAction::PushVlan {
                    tpid: 0x8100,
                    tci: t & !VLAN_PRESENT,
                });
            }
            self.dtags = self.wtags;
            self.dp
                .set(Field::VlanTci, if wn > 0 { w[wn - 1] as u128 } else { 0 });
        }
        field_set(&mut self.known, Field::VlanTci);
        field_set(&mut self.touched, Field::VlanTci);
    }

    fn output(&mut self, op: OfPort, cookie: u64, table: u8) {
        match op {
            OfPort::Port(port) => {
                if port != self.in_port {
                    self.output_port(port);
                }
            }
            OfPort::InPort => {
                if self.in_port != IN_PORT_CONTROLLER {
                    self.output_port(self.in_port);
                }
            }
            OfPort::Flood | OfPort::All => {
                let env = self.env;
                for (&port, cfg) in &env.ports {
                    if port != self.in_port && cfg.up && (cfg.flood || op == OfPort::All) {
                        self.output_port(port);
                    }
                }
            }
            OfPort::Controller { max_len } => {
                self.commit();
                let metadata = self.work.get(Field::Metadata) as u64;
                self.emit(DpAction::Userspace {
                    reason: UserspaceReason::Action,
                    max_len,
                    cookie,
                    table,
                    metadata,
                });
            }
            OfPort::Table => {
                // Only a packet-out's own list submits to the pipeline (rules and buckets
                // cannot hold it).
                if self.packet_out && self.clone_depth == 0 {
                    let saved = self.begin_copy();
                    self.run();
                    self.end_copy(saved);
                }
            }
        }
    }

    fn output_port(&mut self, port: PortNo) {
        let env = self.env;
        match env.tunnels.get(&port) {
            Some(t) => {
                if let Some(push) = self.resolve_tunnel(t) {
                    self.commit();
                    self.emit(DpAction::TunnelPush(Box::new(push)));
                }
            }
            None => {
                self.commit();
                self.emit(DpAction::Output(port));
            }
        }
    }

    /// Resolves VNI, remote and next hop, un-wildcarding flow-based inputs.
    fn resolve_tunnel(&mut self, t: &TunnelPortCfg) -> Option<TunnelPush> {
        let vni = match t.vni {
            Some(v) => v as u64,
            None => self.consult(Field::TunId) as u64,
        };
        if vni > 0x00ff_ffff {
            return None;
        }
        let remote = match t.remote_ip {
            Some(ip) => ip,
            None => {
                let v4 = self.consult(Field::TunIpv4Dst) as u32;
                if v4 != 0 {
                    IpAddr::V4(Ipv4Addr::from(v4))
                } else {
                    let v6 = self.consult(Field::TunIpv6Dst);
                    if v6 == 0 {
                        return None;
                    }
                    IpAddr::V6(Ipv6Addr::from(v6))
                }
            }
        };
        let dst_mac = *t.neighbors.get(&remote)?;
        TunnelPush::new(
            t.port,
            t.underlay_port,
            TunnelParams {
                vni: vni as u32,
                src_mac: t.local_mac,
                dst_mac,
                src_ip: t.local_ip,
                dst_ip: remote,
                ttl: t.ttl,
                tos: 0,
                dst_port: t.dst_port,
                udp_csum: t.udp_csum,
            },
        )
        .ok()
    }

    /// A group action (`depth`: groups already entered).
    #[inline(never)]
    fn group(&mut self, id: u32, cookie: u64, table: u8, depth: usize) {
        let p = self.p;
        // Chains are bounded and acyclic when groups are added, so the depth test never
        // fires; it keeps the recursion bounded whatever the table holds.
        let Some(g) = p.group(id) else {
            return;
        };
        if depth >= MAX_GROUP_DEPTH {
            return;
        }
        self.groups.push(id);
        match g.kind {
            GroupType::All => {
                for b in &g.buckets {
                    self.bucket(b, cookie, table, depth);
                    if self.full {
                        return;
                    }
                }
            }
            GroupType::Indirect => {
                if let Some(b) = g.buckets.first() {
                    self.bucket(b, cookie, table, depth);
                }
            }
            GroupType::FastFailover => {
                if let Some(b) = g.buckets.iter().find(|b| self.bucket_live(b, depth)) {
                    self.bucket(b, cookie, table, depth);
                }
            }
            GroupType::Select => {
                if let Some(b) = self.select(g, depth) {
                    self.bucket(b, cookie, table, depth);
                }
            }
        }
    }

    /// Runs one bucket on a copy of the packet.
    fn bucket(&mut self, b: &Bucket, cookie: u64, table: u8, depth: usize) {
        let saved = self.begin_copy();
        for a in &b.actions {
            self.action(a, cookie, table, depth + 1);
            if self.stopped || self.full {
                break;
            }
        }
        self.end_copy(saved);
    }

    fn begin_copy(&mut self) -> (View, FlowKey) {
        self.clone_depth += 1;
        let view = View {
            work: self.work,
            wconst: self.wconst,
            wtags: self.wtags,
            dirty: self.dirty,
            any_dirty: self.any_dirty,
            vlan_dirty: self.vlan_dirty,
            ttl_derived: self.ttl_derived,
        };
        (view, core::mem::replace(&mut self.touched, FlowKey::ZERO))
    }

    /// Back to the packet as it was before the copy; what the copy changed on the datapath
    /// packet is marked to be put back.
    fn end_copy(&mut self, (v, outer_touched): (View, FlowKey)) {
        self.clone_depth -= 1;
        self.stopped = false;
        let t = self.touched;
        self.touched = outer_touched.or(&t);
        self.work = v.work;
        self.wconst = v.wconst;
        self.wtags = v.wtags;
        self.dirty = v.dirty;
        self.any_dirty = v.any_dirty;
        self.vlan_dirty = v.vlan_dirty || t.get(Field::VlanPresent) != 0;
        self.ttl_derived = v.ttl_derived;
        if !t.is_zero() {
            for fb in &COMMIT_BITS {
                if fb.any(&t) {
                    self.mark_dirty(fb.field);
                }
            }
        }
    }

    /// Bucket liveness: no watch, a watched port that is up, or a live watched group.
    fn bucket_live(&self, b: &Bucket, depth: usize) -> bool {
        if b.watch_port.is_none() && b.watch_group.is_none() {
            return true;
        }
        let env = self.env;
        b.watch_port
            .is_some_and(|port| env.ports.get(&port).is_some_and(|c| c.up))
            || b.watch_group.is_some_and(|id| {
                depth + 1 < MAX_GROUP_DEPTH
                    && self
                        .p
                        .group(id)
                        .is_some_and(|g| g.buckets.iter().any(|x| self.bucket_live(x, depth + 1)))
            })
    }

    /// The SELECT bucket: live buckets of non-zero weight, the packet hash modulo their total
    /// weight located in the cumulative weights. Hashes (and un-wildcards) only when there is
    /// more than one candidate.
    fn select(&mut self, g: &'a Group, depth: usize) -> Option<&'a Bucket> {
        let mut total = 0u64;
        let mut n = 0usize;
        let mut only = None;
        for b in &g.buckets {
            if b.weight > 0 && self.bucket_live(b, depth) {
                total += b.weight as u64;
                n += 1;
                only = Some(b);
            }
        }
        if n <= 1 {
            return only;
        }
        let mut r = self.select_hash() as u64 % total;
        for b in &g.buckets {
            if b.weight > 0 && self.bucket_live(b, depth) {
                if r < b.weight as u64 {
                    return Some(b);
                }
                r -= b.weight as u64;
            }
        }
        None
    }

    /// Feeds one field to the SELECT hash, un-wildcarding it unless a set-field fixed it.
    #[inline]
    fn hash_field(&mut self, h: &mut SelectHash, f: Field) {
        if self.wconst.get(f) != f.full_mask() {
            field_set(&mut self.wc, f);
        }
        h.add(self.work.get(f));
    }

    /// The SELECT hash over the fields listed in [`crate::group`].
    fn select_hash(&mut self) -> u32 {
        let mut h = SelectHash::new();
        self.hash_field(&mut h, Field::EthSrc);
        self.hash_field(&mut h, Field::EthDst);
        self.hash_field(&mut h, Field::EthType);
        let (src, dst) = match self.work.get(Field::EthType) {
            0x0800 => (Field::Ipv4Src, Field::Ipv4Dst),
            0x86dd => (Field::Ipv6Src, Field::Ipv6Dst),
            _ => return h.finish(),
        };
        self.hash_field(&mut h, src);
        self.hash_field(&mut h, dst);
        self.hash_field(&mut h, Field::IpProto);
        if matches!(self.work.get(Field::IpProto), 6 | 17 | 132) && self.not_later_frag() {
            self.hash_field(&mut h, Field::TpSrc);
            self.hash_field(&mut h, Field::TpDst);
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{AddOptions, Instructions, RuleSpec};
    use crate::semantics::{apply_dp, execute};
    use std::collections::BTreeMap;

    fn out(p: PortNo) -> Action {
        Action::Output(OfPort::Port(p))
    }

    fn add(p: &mut Pipeline, table: u8, m: Match, prio: u16, ins: Instructions) -> RuleId {
        p.add(RuleSpec::new(table, m, prio, ins), AddOptions::default(), 0)
            .unwrap()
            .id
    }

    fn env() -> PortEnv {
        let mut e = PortEnv::default();
        e.add_port(1, true, true)
            .add_port(2, true, true)
            .add_port(3, true, false)
            .add_port(4, false, true)
            .add_port(5, true, true);
        let mut t = TunnelPortCfg::new(
            9,
            5,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            [2, 0, 0, 0, 0, 1],
        );
        t.neighbors =
            BTreeMap::from([(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), [2, 0, 0, 0, 0, 2])]);
        e.add_tunnel(t);
        e
    }

    fn pkt(in_port: PortNo) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, in_port as u128);
        k.set(Field::EthDst, 0x0200_0000_0002);
        k.set(Field::EthSrc, 0x0200_0000_0001);
        k.set(Field::EthType, 0x0800);
        k.set(Field::IpProto, 6);
        k.set(Field::Ipv4Dst, 0x0a00_0002);
        k.set(Field::IpTtl, 64);
        k.set(Field::TpDst, 80);
        k
    }

    fn mask_of(fields: &[Field]) -> FlowKey {
        fields.iter().fold(FlowKey::ZERO, |m, &f| m.with_field(f))
    }

    /// xlate agrees with the reference on the key itself.
    fn check(p: &Pipeline, e: &PortEnv, k: &FlowKey) -> Xlation {
        let x = xlate(p, e, k);
        assert!(x.megaflow.matches(k));
        assert_eq!(apply_dp(k, &x.actions), execute(p, e, k), "{}", x.megaflow);
        x
    }

    #[test]
    fn l2_forwarding_is_bare_output_with_exact_l2_mask() {
        let mut p = Pipeline::default();
        let id = add(
            &mut p,
            0,
            Match::default().with(Field::EthDst, 0x0200_0000_0002),
            10,
            Instructions::apply(vec![out(2)]),
        );
        let x = check(&p, &env(), &pkt(1));
        assert_eq!(x.actions, vec![DpAction::Output(2)]);
        assert_eq!(*x.megaflow.mask(), mask_of(&[Field::InPort, Field::EthDst]));
        assert_eq!(x.rules, vec![id]);
        assert_eq!(x.version, p.version());
        // Output to the input port is dropped; InPort is how to hairpin.
        let x = check(&p, &env(), &pkt(2));
        assert!(x.actions.is_empty());
        p.add(
            RuleSpec::new(
                0,
                Match::default().with(Field::EthDst, 0x0200_0000_0002),
                10,
                Instructions::apply(vec![Action::Output(OfPort::InPort)]),
            ),
            AddOptions::default(),
            0,
        )
        .unwrap();
        assert_eq!(
            check(&p, &env(), &pkt(2)).actions,
            vec![DpAction::Output(2)]
        );
    }

    #[test]
    fn flood_and_all_exclude_in_port_and_down_ports() {
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![Action::Output(OfPort::Flood)]),
        );
        let x = check(&p, &env(), &pkt(2));
        // 1, 5 and the tunnel 9 (flow-based remote: none in this key -> dropped); 3 has flood
        // off, 4 is down, 2 is in_port.
        assert_eq!(x.actions, vec![DpAction::Output(1), DpAction::Output(5)]);
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![Action::Output(OfPort::All)]),
        );
        let x = check(&p, &env(), &pkt(2));
        assert_eq!(
            x.actions,
            vec![
                DpAction::Output(1),
                DpAction::Output(3),
                DpAction::Output(5)
            ]
        );
    }

    #[test]
    fn tunnel_push_resolution() {
        let mut p = Pipeline::default();
        let set_dst = |ip: u32| Action::SetField {
            field: Field::TunIpv4Dst,
            value: ip as u128,
        };
        add(
            &mut p,
            0,
            Match::default().with(Field::InPort, 1),
            1,
            Instructions::apply(vec![
                Action::SetTunnel { vni: 77 },
                set_dst(0x0a00_0002),
                out(9),
            ]),
        );
        add(
            &mut p,
            0,
            Match::default().with(Field::InPort, 2),
            1,
            Instructions::apply(vec![
                Action::SetTunnel { vni: 77 },
                set_dst(0x0a00_0003),
                out(9),
            ]),
        );
        add(
            &mut p,
            0,
            Match::default().with(Field::InPort, 3),
            1,
            Instructions::apply(vec![
                Action::SetTunnel { vni: 1 << 24 },
                set_dst(0x0a00_0002),
                out(9),
            ]),
        );
        let e = env();
        let x = check(&p, &e, &pkt(1));
        let [DpAction::TunnelPush(t)] = x.actions.as_slice() else {
            panic!("{:?}", x.actions)
        };
        assert_eq!((t.tunnel_port, t.out_port, t.params.vni), (9, 5, 77));
        assert_eq!(t.params.dst_ip, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(t.params.dst_mac, [2, 0, 0, 0, 0, 2]);
        assert_eq!(t.params.src_ip, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(check(&p, &e, &pkt(2)).actions.is_empty(), "no neighbor");
        assert!(check(&p, &e, &pkt(3)).actions.is_empty(), "VNI too large");
        // Fixed IPv6 remote on an IPv4 tunnel: family mismatch, dropped.
        let mut e6 = e.clone();
        e6.tunnels.get_mut(&9).unwrap().remote_ip = Some("fd00::2".parse().unwrap());
        assert!(check(&p, &e6, &pkt(1)).actions.is_empty());
        // A packet that arrived through the tunnel keeps its tun fields for flow-based output,
        // and they are in the megaflow.
        let mut p2 = Pipeline::default();
        add(
            &mut p2,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(9)]),
        );
        let mut k = pkt(1);
        k.set(Field::TunId, 5);
        k.set(Field::TunIpv4Dst, 0x0a00_0002);
        let x = check(&p2, &e, &k);
        assert_eq!(x.actions.len(), 1);
        assert_eq!(x.megaflow.field(Field::TunId), (5, u64::MAX as u128));
        assert_eq!(x.megaflow.field(Field::TunIpv4Dst).1, 0xffff_ffff);
    }

    #[test]
    fn underlay_termination_pops_and_unwildcards_what_decided() {
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(1)]),
        );
        let e = env();
        let mut k = pkt(5);
        k.set(Field::Ipv4Dst, 0x0a00_0001);
        k.set(Field::IpProto, 17);
        k.set(Field::TpDst, 4789);
        let x = check(&p, &e, &k);
        assert_eq!(x.actions, vec![DpAction::TunnelPop { port: 9 }]);
        assert!(x.rules.is_empty(), "pipeline not run");
        let mut m = mask_of(&[
            Field::InPort,
            Field::EthType,
            Field::Ipv4Dst,
            Field::IpProto,
            Field::TpDst,
        ]);
        m.set(Field::IpFrag, FRAG_LATER as u128);
        assert_eq!(*x.megaflow.mask(), m);
        // Other UDP port, later fragment, or other in_port: the pipeline runs.
        let mut k2 = k;
        k2.set(Field::TpDst, 53);
        assert_eq!(check(&p, &e, &k2).actions, vec![DpAction::Output(1)]);
        let mut k3 = k;
        k3.set(Field::IpFrag, 3);
        assert_eq!(check(&p, &e, &k3).actions, vec![DpAction::Output(1)]);
        let mut k4 = k;
        k4.set(Field::InPort, 2);
        let x = check(&p, &e, &k4);
        assert_eq!(x.actions, vec![DpAction::Output(1)]);
        assert_eq!(
            *x.megaflow.mask(),
            mask_of(&[Field::InPort]),
            "no tunnel on port 2"
        );
    }

    #[test]
    fn table_miss_modes() {
        let mut p = Pipeline::new(3).unwrap();
        let e = env();
        assert!(check(&p, &e, &pkt(1)).actions.is_empty());
        p.set_table_miss(0, TableMiss::Controller).unwrap();
        assert_eq!(
            check(&p, &e, &pkt(1)).actions,
            vec![DpAction::Userspace {
                reason: UserspaceReason::NoMatch,
                max_len: MISS_MAX_LEN,
                cookie: MISS_COOKIE,
                table: 0,
                metadata: 0,
            }]
        );
        p.set_table_miss(0, TableMiss::Continue).unwrap();
        add(
            &mut p,
            1,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(3)]),
        );
        assert_eq!(check(&p, &e, &pkt(1)).actions, vec![DpAction::Output(3)]);
        // Continue on the last table drops.
        let mut p = Pipeline::new(1).unwrap();
        p.set_table_miss(0, TableMiss::Continue).unwrap();
        assert!(check(&p, &e, &pkt(1)).actions.is_empty());
    }

    #[test]
    fn goto_and_write_metadata_stay_out_of_the_megaflow() {
        let mut p = Pipeline::default();
        let a = add(
            &mut p,
            0,
            Match::default().with(Field::InPort, 1),
            1,
            Instructions::default().metadata(0x5, 0xff).goto(3),
        );
        let b = add(
            &mut p,
            3,
            Match::default().with(Field::Metadata, 5),
            1,
            Instructions::apply(vec![out(2)]),
        );
        let mut k = pkt(1);
        k.set(Field::Metadata, 0x77); // whatever the key says, the pipeline starts at 0
        let x = check(&p, &env(), &k);
        assert_eq!(x.actions, vec![DpAction::Output(2)]);
        assert_eq!(x.rules, vec![a, b]);
        assert_eq!(*x.megaflow.mask(), mask_of(&[Field::InPort]));
    }

    #[test]
    fn dec_ttl_and_derived_ttl() {
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![Action::DecTtl]).goto(1),
        );
        add(
            &mut p,
            1,
            Match::default().with_masked(Field::IpTtl, 0, 0x2),
            1,
            Instructions::apply(vec![out(2)]),
        );
        add(
            &mut p,
            1,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(3)]),
        );
        let e = env();
        let mut k = pkt(1);
        k.set(Field::IpTtl, 2); // becomes 1: bit 1 clear -> port 2
        let x = check(&p, &e, &k);
        assert_eq!(x.actions, vec![DpAction::DecTtl, DpAction::Output(2)]);
        // Bit 1 of the decremented TTL depends on more than bit 1 of the packet's TTL.
        assert_eq!(x.megaflow.field(Field::IpTtl), (2, 0xff));
        assert_eq!(x.megaflow.field(Field::EthType), (0x0800, 0xffff));
        // Not IP: nothing emitted.
        let mut arp = pkt(1);
        arp.set(Field::EthType, 0x0806);
        assert_eq!(check(&p, &e, &arp).actions, vec![DpAction::Output(2)]);
        // TTL 1: the datapath stops at dec_ttl, like the reference.
        let mut k1 = pkt(1);
        k1.set(Field::IpTtl, 1);
        assert!(apply_dp(&k1, &xlate(&p, &e, &k1).actions).is_empty());
        check(&p, &e, &k1);
    }

    #[test]
    fn set_field_commits_lazily_and_checks_prerequisites() {
        let mut p = Pipeline::default();
        let set = |f: Field, v: u128| Action::SetField { field: f, value: v };
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![
                set(Field::EthDst, 7),
                set(Field::Ipv4Dst, 9),
                set(Field::VlanVid, 5),
                set(Field::Reg0, 1),
                out(2),
                set(Field::EthDst, 7),
                out(3),
                set(Field::EthDst, 8),
                out(5),
            ]),
        );
        let x = check(&p, &env(), &pkt(1));
        assert_eq!(
            x.actions,
            vec![
                DpAction::Set {
                    field: Field::EthDst,
                    value: 7
                },
                DpAction::Set {
                    field: Field::Ipv4Dst,
                    value: 9
                },
                DpAction::Output(2),
                DpAction::Output(3),
                DpAction::Set {
                    field: Field::EthDst,
                    value: 8
                },
                DpAction::Output(5),
            ]
        );
        // VLAN VID skipped on an untagged packet: the present bit decided it.
        assert_eq!(x.megaflow.field(Field::VlanPresent), (0, 1));
        assert_eq!(
            x.megaflow.field(Field::EthDst).1,
            0,
            "eth_dst written, never read"
        );
        // ARP: the IPv4 set is skipped.
        let mut arp = pkt(1);
        arp.set(Field::EthType, 0x0806);
        let x = check(&p, &env(), &arp);
        assert_eq!(x.actions.len(), 5);
        // Push, set VID, output: one push with VID 0 then a Set of the VID.
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![
                Action::PushVlan { tpid: 0x8100 },
                set(Field::VlanVid, 5),
                out(2),
                Action::PopVlan,
                out(3),
            ]),
        );
        let x = check(&p, &env(), &pkt(1));
        assert_eq!(
            x.actions,
            vec![
                DpAction::PushVlan {
                    tpid: 0x8100,
                    tci: 0
                },
                DpAction::Set {
                    field: Field::VlanVid,
                    value: 5
                },
                DpAction::Output(2),
                DpAction::PopVlan,
                DpAction::Output(3),
            ]
        );
    }

    #[test]
    fn controller_action_and_truncation() {
        let mut p = Pipeline::default();
        let mut spec = RuleSpec::new(
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![Action::Output(OfPort::Controller { max_len: 128 })]),
        );
        spec.cookie = 0xc0ffee;
        p.add(spec, AddOptions::default(), 0).unwrap();
        let x = check(&p, &env(), &pkt(1));
        assert_eq!(
            x.actions,
            vec![DpAction::Userspace {
                reason: UserspaceReason::Action,
                max_len: 128,
                cookie: 0xc0ffee,
                table: 0,
                metadata: 0,
            }]
        );
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(2); MAX_ACTIONS + 1]),
        );
        let x = xlate(&p, &env(), &pkt(1));
        assert!(x.truncated);
        assert!(x.actions.is_empty());
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(2); MAX_ACTIONS]),
        );
        let x = xlate(&p, &env(), &pkt(1));
        assert!(!x.truncated);
        assert_eq!(x.actions.len(), MAX_ACTIONS);
    }

    #[test]
    fn xlate_into_reuses_buffers() {
        let mut p = Pipeline::default();
        add(
            &mut p,
            0,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![out(2), out(3)]),
        );
        let mut x = Xlation::default();
        xlate_into(&p, &env(), &pkt(1), &mut x);
        xlate_into(&p, &env(), &pkt(1), &mut x);
        assert_eq!(x.actions, vec![DpAction::Output(2), DpAction::Output(3)]);
        assert_eq!(x.rules.len(), 1);
    }

    fn group(p: &mut Pipeline, id: u32, kind: GroupType, buckets: Vec<Bucket>) {
        p.group_add(crate::group::GroupSpec::new(id, kind, buckets), 0)
            .unwrap();
    }

    fn set(f: Field, v: u128) -> Action {
        Action::SetField { field: f, value: v }
    }

    /// A catch-all rule in table 0 with these actions.
    fn only(p: &mut Pipeline, actions: Vec<Action>) -> RuleId {
        add(p, 0, Match::CATCH_ALL, 0, Instructions::apply(actions))
    }

    #[test]
    fn all_group_buckets_get_copies_and_changes_are_put_back() {
        let mut p = Pipeline::default();
        group(
            &mut p,
            1,
            GroupType::All,
            vec![
                Bucket::new(vec![set(Field::EthDst, 8), set(Field::Ipv4Src, 9), out(2)]),
                Bucket::new(vec![out(3)]),
            ],
        );
        let r = only(
            &mut p,
            vec![set(Field::EthDst, 7), Action::Group(1), out(5)],
        );
        let x = check(&p, &env(), &pkt(1));
        use DpAction::{Output, Set};
        assert_eq!(
            x.actions,
            vec![
                Set {
                    field: Field::EthDst,
                    value: 8
                },
                Set {
                    field: Field::Ipv4Src,
                    value: 9
                },
                Output(2),
                // Back to the rule's eth_dst (a constant) and the packet's own nw_src (which
                // is why nw_src is now in the megaflow).
                Set {
                    field: Field::EthDst,
                    value: 7
                },
                Set {
                    field: Field::Ipv4Src,
                    value: 0
                },
                Output(3),
                Output(5),
            ]
        );
        assert_eq!(x.groups, vec![1]);
        assert_eq!(x.rules, vec![r]);
        assert_eq!(x.megaflow.field(Field::Ipv4Src).1, 0xffff_ffff);
        assert_eq!(x.megaflow.field(Field::EthDst).1, 0, "only written");
    }

    #[test]
    fn vlan_changes_in_a_bucket_are_undone() {
        let mut p = Pipeline::default();
        group(
            &mut p,
            1,
            GroupType::All,
            vec![Bucket::new(vec![
                Action::PushVlan { tpid: 0x88a8 },
                set(Field::VlanVid, 10),
                out(2),
            ])],
        );
        group(
            &mut p,
            2,
            GroupType::All,
            vec![Bucket::new(vec![Action::PopVlan, out(2)])],
        );
        only(&mut p, vec![Action::Group(1), out(3)]);
        use DpAction::{Output, PopVlan, PushVlan, Set};
        let vid = |v| Set {
            field: Field::VlanVid,
            value: v,
        };
        // Untagged: push in the bucket, pop after it.
        let x = check(&p, &env(), &pkt(1));
        assert_eq!(
            x.actions,
            vec![
                PushVlan {
                    tpid: 0x88a8,
                    tci: 0
                },
                vid(10),
                Output(2),
                PopVlan,
                Output(3)
            ]
        );
        // Tagged: the push covers the tag, the pop uncovers it (as on the wire).
        let mut tagged = pkt(1);
        tagged.set(Field::VlanTci, (VLAN_PRESENT | 0x2005) as u128);
        let x = check(&p, &env(), &tagged);
        assert_eq!(
            x.actions,
            vec![
                PushVlan {
                    tpid: 0x88a8,
                    tci: 0x2005
                },
                vid(10),
                Output(2),
                PopVlan,
                Output(3)
            ]
        );
        let fx = apply_dp(&tagged, &x.actions);
        let crate::semantics::Effect::Output { port: 3, key } = fx[1] else {
            panic!("{fx:?}")
        };
        assert_eq!(key.get(Field::VlanTci), (VLAN_PRESENT | 0x2005) as u128);
        // A bucket that pops: the tag is pushed back (TPID 0x8100), from the whole TCI.
        let mut p = Pipeline::default();
        group(
            &mut p,
            2,
            GroupType::All,
            vec![Bucket::new(vec![Action::PopVlan, out(2)])],
        );
        only(&mut p, vec![Action::Group(2), out(3)]);
        let x = check(&p, &env(), &tagged);
        assert_eq!(
            x.actions,
            vec![
                PopVlan,
                Output(2),
                PushVlan {
                    tpid: 0x8100,
                    tci: 0x2005
                },
                Output(3)
            ]
        );
        assert_eq!(x.megaflow.field(Field::VlanTci).1, 0xffff);
        // Nothing after the group: nothing to put back.
        let mut p = Pipeline::default();
        group(
            &mut p,
            2,
            GroupType::All,
            vec![Bucket::new(vec![Action::PopVlan, out(2)])],
        );
        only(&mut p, vec![Action::Group(2)]);
        assert_eq!(check(&p, &env(), &tagged).actions, vec![PopVlan, Output(2)]);
    }

    #[test]
    fn ttl_expiry_in_a_bucket_drops_only_that_copy() {
        let mut p = Pipeline::default();
        group(
            &mut p,
            1,
            GroupType::All,
            vec![
                Bucket::new(vec![Action::DecTtl, out(2)]),
                Bucket::new(vec![out(3)]),
            ],
        );
        only(&mut p, vec![Action::Group(1), out(5)]);
        let ttl = |v| DpAction::Set {
            field: Field::IpTtl,
            value: v,
        };
        let x = check(&p, &env(), &pkt(1));
        assert_eq!(
            x.actions,
            vec![
                ttl(63),
                DpAction::Output(2),
                ttl(64),
                DpAction::Output(3),
                DpAction::Output(5)
            ]
        );
        assert_eq!(x.megaflow.field(Field::IpTtl), (64, 0xff));
        let mut k = pkt(1);
        k.set(Field::IpTtl, 1);
        let x = check(&p, &env(), &k);
        assert_eq!(x.actions, vec![DpAction::Output(3), DpAction::Output(5)]);
        // Outside groups dec_ttl still leaves the TTL to the datapath.
        let mut p = Pipeline::default();
        only(&mut p, vec![Action::DecTtl, out(2)]);
        assert_eq!(check(&p, &env(), &k).megaflow.field(Field::IpTtl).1, 0);
    }

    fn select_group(weights: &[u16]) -> Pipeline {
        let mut p = Pipeline::default();
        let buckets = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Bucket::new(vec![out(i as PortNo + 1)]).weight(w))
            .collect();
        group(&mut p, 1, GroupType::Select, buckets);
        only(&mut p, vec![Action::Group(1)]);
        p
    }

    #[test]
    fn select_hashes_exactly_the_l2_l4_fields() {
        let p = select_group(&[1, 1]);
        let e = env();
        let mut k = pkt(7);
        k.set(Field::Ipv4Src, 0x0a00_0009);
        k.set(Field::TpSrc, 1234);
        let x = check(&p, &e, &k);
        let mut m = mask_of(&[
            Field::InPort,
            Field::EthSrc,
            Field::EthDst,
            Field::EthType,
            Field::Ipv4Src,
            Field::Ipv4Dst,
            Field::IpProto,
            Field::TpSrc,
            Field::TpDst,
        ]);
        m.set(Field::IpFrag, FRAG_LATER as u128);
        assert_eq!(*x.megaflow.mask(), m);
        // A later fragment: no ports.
        let mut frag = k;
        frag.set(Field::IpFrag, 3);
        let x = check(&p, &e, &frag);
        assert_eq!(x.megaflow.field(Field::TpSrc).1, 0);
        assert_eq!(x.megaflow.field(Field::IpFrag).1, FRAG_LATER as u128);
        // ARP: L2 only.
        let mut arp = k;
        arp.set(Field::EthType, 0x0806);
        let x = check(&p, &e, &arp);
        assert_eq!(
            *x.megaflow.mask(),
            mask_of(&[Field::InPort, Field::EthSrc, Field::EthDst, Field::EthType])
        );
        // IPv6 reads the IPv6 addresses.
        let mut v6 = k;
        v6.set(Field::EthType, 0x86dd);
        let x = check(&p, &e, &v6);
        assert_eq!(x.megaflow.field(Field::Ipv6Src).1, u128::MAX);
        assert_eq!(x.megaflow.field(Field::Ipv4Src).1, 0);
        // A field a set-field fixed is hashed but not un-wildcarded.
        let mut p2 = Pipeline::default();
        group(
            &mut p2,
            1,
            GroupType::Select,
            vec![
                Bucket::new(vec![out(1)]).weight(1),
                Bucket::new(vec![out(2)]).weight(1),
            ],
        );
        only(&mut p2, vec![set(Field::EthSrc, 5), Action::Group(1)]);
        assert_eq!(check(&p2, &e, &k).megaflow.field(Field::EthSrc).1, 0);
    }

    #[test]
    fn select_follows_weights_and_liveness() {
        let e = env();
        let mut counts = [0usize; 3];
        let p = select_group(&[1, 3, 0]);
        for port in 0..4_000u128 {
            let mut k = pkt(7);
            k.set(Field::TpSrc, port);
            let x = check(&p, &e, &k);
            let [DpAction::Output(o)] = x.actions[..] else {
                panic!("{:?}", x.actions)
            };
            counts[o as usize - 1] += 1;
        }
        assert_eq!(counts[2], 0, "weight 0 is never chosen");
        assert!((800..1200).contains(&counts[0]), "{counts:?}");
        // One candidate (port 4 is down, weight 0 elsewhere): no hash, nothing un-wildcarded.
        let mut p = Pipeline::default();
        group(
            &mut p,
            1,
            GroupType::Select,
            vec![
                Bucket::new(vec![out(1)]).weight(5).watch_port(4),
                Bucket::new(vec![out(2)]).weight(2).watch_port(3),
                Bucket::new(vec![out(3)]),
            ],
        );
        only(&mut p, vec![Action::Group(1)]);
        let x = check(&p, &e, &pkt(7));
        assert_eq!(x.actions, vec![DpAction::Output(2)]);
        assert_eq!(*x.megaflow.mask(), mask_of(&[Field::InPort]));
        // Port 3 down too: nothing live, the group drops.
        let mut down = e.clone();
        down.add_port(3, false, false);
        let x = check(&p, &down, &pkt(7));
        assert!(x.actions.is_empty());
        assert_eq!(x.groups, vec![1]);
    }

    #[test]
    fn fast_failover_takes_the_first_live_bucket() {
        let mut p = Pipeline::default();
        group(
            &mut p,
            2,
            GroupType::FastFailover,
            vec![Bucket::new(vec![out(3)]).watch_port(4)],
        );
        group(
            &mut p,
            1,
            GroupType::FastFailover,
            vec![
                Bucket::new(vec![out(1)]).watch_port(4),
                Bucket::new(vec![Action::Group(2)]).watch_group(2),
                Bucket::new(vec![out(2)]).watch_port(99).watch_group(2),
                Bucket::new(vec![out(5)]).watch_port(5),
            ],
        );
        only(&mut p, vec![Action::Group(1)]);
        let e = env();
        // Port 4 down, group 2 dead (its only bucket watches 4), port 99 unknown: port 5.
        let x = check(&p, &e, &pkt(7));
        assert_eq!(x.actions, vec![DpAction::Output(5)]);
        assert_eq!(x.groups, vec![1]);
        // Port 4 up: the first bucket.
        let mut up = e.clone();
        up.add_port(4, true, true);
        assert_eq!(check(&p, &up, &pkt(7)).actions, vec![DpAction::Output(1)]);
        assert_eq!(
            *check(&p, &up, &pkt(7)).megaflow.mask(),
            mask_of(&[Field::InPort])
        );
    }

    #[test]
    fn indirect_and_chained_groups_are_credited() {
        let mut p = Pipeline::default();
        group(
            &mut p,
            3,
            GroupType::Indirect,
            vec![Bucket::new(vec![out(3)])],
        );
        group(
            &mut p,
            2,
            GroupType::All,
            vec![
                Bucket::new(vec![Action::Group(3)]),
                Bucket::new(vec![Action::Group(3), out(2)]),
            ],
        );
        only(&mut p, vec![Action::Group(2)]);
        let x = check(&p, &env(), &pkt(1));
        assert_eq!(
            x.actions,
            vec![
                DpAction::Output(3),
                DpAction::Output(3),
                DpAction::Output(2)
            ]
        );
        assert_eq!(x.groups, vec![2, 3, 3]);
        for g in &x.groups {
            p.credit_group(*g, 1, 64);
        }
        assert_eq!(p.group(3).unwrap().packets, 2);
        assert_eq!(p.group(2).unwrap().bytes, 64);
    }

    #[test]
    fn packet_out_translation() {
        use crate::semantics::{execute_actions, PACKET_OUT_COOKIE, PACKET_OUT_TABLE};
        let mut p = Pipeline::default();
        let r = add(
            &mut p,
            0,
            Match::default().with(Field::EthDst, 9),
            5,
            Instructions::apply(vec![out(2)]),
        );
        group(&mut p, 1, GroupType::All, vec![Bucket::new(vec![out(3)])]);
        let e = env();
        let po = |k: &FlowKey, actions: &[Action]| {
            let x = xlate_actions(&p, &e, k, actions);
            assert!(x.megaflow.matches(k));
            assert_eq!(
                apply_dp(k, &x.actions),
                execute_actions(&p, &e, k, actions),
                "{actions:?}"
            );
            x
        };
        let from_ctl = {
            let mut k = pkt(1);
            k.set(Field::InPort, IN_PORT_CONTROLLER as u128);
            k
        };
        // output:TABLE runs the pipeline on the packet as the list left it; later actions
        // see the packet as it was before.
        let x = po(
            &from_ctl,
            &[set(Field::EthDst, 9), Action::Output(OfPort::Table), out(5)],
        );
        use DpAction::{Output, Set, Userspace};
        assert_eq!(
            x.actions,
            vec![
                Set {
                    field: Field::EthDst,
                    value: 9
                },
                Output(2),
                Output(5)
            ]
        );
        assert_eq!(x.rules, vec![r]);
        // A packet-out is not a received packet: no underlay termination; TABLE of a packet
        // no rule takes follows table 0's miss (drop).
        let x = po(&pkt(1), &[Action::Output(OfPort::Table)]);
        assert!(x.actions.is_empty());
        // in_port CONTROLLER: IN_PORT drops, FLOOD goes everywhere, groups work.
        let x = po(
            &from_ctl,
            &[
                Action::Output(OfPort::InPort),
                Action::Output(OfPort::Flood),
                Action::Group(1),
            ],
        );
        assert_eq!(
            x.actions,
            vec![Output(1), Output(2), Output(5), Output(3)],
            "flood: 1, 2, 5 (3 not flooded, 4 down, tunnel 9 unresolved)"
        );
        assert_eq!(x.groups, vec![1]);
        // A real in_port: IN_PORT hairpins, output to it is dropped.
        let x = po(&pkt(2), &[Action::Output(OfPort::InPort), out(2)]);
        assert_eq!(x.actions, vec![Output(2)]);
        // Controller output of the list itself.
        let x = po(
            &pkt(2),
            &[Action::Output(OfPort::Controller { max_len: 64 })],
        );
        assert_eq!(
            x.actions,
            vec![Userspace {
                reason: UserspaceReason::Action,
                max_len: 64,
                cookie: PACKET_OUT_COOKIE,
                table: PACKET_OUT_TABLE,
                metadata: 0,
            }]
        );
        // dec_ttl expiry inside the TABLE copy drops only the copy.
        let mut p2 = Pipeline::default();
        only(&mut p2, vec![Action::DecTtl, out(2)]);
        let mut k = pkt(1);
        k.set(Field::IpTtl, 1);
        let x = xlate_actions(&p2, &e, &k, &[Action::Output(OfPort::Table), out(3)]);
        assert_eq!(x.actions, vec![Output(3)]);
        assert_eq!(
            apply_dp(&k, &x.actions),
            execute_actions(&p2, &e, &k, &[Action::Output(OfPort::Table), out(3)])
        );
    }
}
