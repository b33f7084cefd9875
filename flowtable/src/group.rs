//! OpenFlow 1.3 groups: types, validation, the group table the [`crate::pipeline::Pipeline`]
//! owns, and the SELECT hash.
//!
//! Contract:
//! - A group has an id in `0..=`[`OFPG_MAX`], a [`GroupType`] and a list of [`Bucket`]s, each
//!   an action list (run in order, like apply-actions; OpenFlow calls a bucket an action set, and
//!   controllers write them in set order anyway), a weight (SELECT only) and an optional watch
//!   port and watch group (SELECT and FAST_FAILOVER only).
//! - Execution (implemented by [`crate::xlate`], modelled by [`crate::semantics`]): a group
//!   action runs the chosen buckets, each on its own copy of the packet as it is at the group
//!   action; after the group the packet is as it was before it (Open vSwitch does the same), and
//!   a bucket whose dec_ttl expires ends only that copy. ALL runs every bucket in order;
//!   INDIRECT its one bucket; FAST_FAILOVER the first live bucket; SELECT one live bucket of
//!   non-zero weight chosen by [`SelectHash`] and the weights: with `total` the sum of the
//!   live weights and `h` the hash, the bucket whose cumulative weight range (in bucket order)
//!   contains `h % total`. No live bucket (or total weight 0): the group does nothing; a single
//!   candidate is taken without hashing. The hash reads, in this order and as the packet is at
//!   the group action: eth_src, eth_dst, eth_type; for IPv4 ipv4_src, ipv4_dst, ip_proto, for
//!   IPv6 ipv6_src, ipv6_dst, ip_proto; then tp_src, tp_dst when the packet has L4 ports
//!   (TCP, UDP or SCTP, not a later fragment). xlate un-wildcards exactly the fields it read
//!   whose value came from the packet (not from a set-field).
//! - Liveness (as Open vSwitch): a bucket is live when it watches nothing, or its watch port
//!   is up in the [`crate::pipeline::PortEnv`], or its watch group is live; a group is live
//!   when one of its buckets is. Liveness depends on the port environment, so a port going up
//!   or down must be followed by revalidation, like any change xlate depends on.
//! - Group references: a rule's apply-actions and a bucket's actions may name groups
//!   ([`crate::pipeline::Action::Group`]); a bucket may watch a group. Every referenced group
//!   must exist when the rule or group is added or modified. The graph of references
//!   (forwarding and watching) never has a cycle (refused as [`PipelineError::Loop`]) and no
//!   chain is longer than [`MAX_GROUP_DEPTH`] groups (refused as
//!   [`PipelineError::ChainingUnsupported`]), so translation recursion is bounded.
//! - `ref_count` counts the rules and groups that directly forward to a group (each referrer
//!   once), as OpenFlow's group stats report it.
//! - Deleting a group deletes every rule that forwards to it (returned, for flow_removed with
//!   reason [`crate::pipeline::RemovalReason::GroupDelete`]); deleting a group another group
//!   forwards to or watches is refused ([`PipelineError::ChainedGroup`]); deleting a group that
//!   does not exist is not an error (OpenFlow 1.3).
//!
//! Validation order of [`crate::pipeline::Pipeline::group_add`] / `group_modify` (the first
//! failing check is reported): id range; exists (add) / unknown (modify); table full; bucket
//! count; INDIRECT bucket count; then per bucket in order: weight, watch allowed, watch present
//! (FAST_FAILOVER), watch port range, watch group (self: loop; unknown: bad watch), actions
//! (output:TABLE, argument checks, group self-reference, unknown group); then loops through
//! other groups; then chain depth.

use crate::pipeline::{Action, OfPort, PipelineError, Rule};
use crate::port::PortNo;
use core::fmt;
use hashbrown::HashMap;
use std::collections::BTreeMap;

/// Largest group id (OFPG_MAX); larger values are OpenFlow's reserved ids.
pub const OFPG_MAX: u32 = 0xffff_ff00;
/// OpenFlow's "all groups" id (group_mod DELETE of every group).
pub const OFPG_ALL: u32 = 0xffff_fffc;
/// OpenFlow's "any group" id (no out_group filter, no watch group).
pub const OFPG_ANY: u32 = 0xffff_ffff;
/// Largest port number a bucket may watch (OFPP_MAX).
pub const OFPP_MAX: PortNo = 0xffff_ff00;
/// Longest chain of groups (a group forwarding to or watching another counts one level).
pub const MAX_GROUP_DEPTH: usize = 16;
/// Most groups a pipeline holds (OFPGMFC_OUT_OF_GROUPS beyond).
pub const MAX_GROUPS: usize = 65_536;
/// Most buckets in one group (OFPGMFC_OUT_OF_BUCKETS beyond).
pub const MAX_BUCKETS: usize = 1_024;

/// An OpenFlow 1.3 group type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// Every bucket (multicast, flooding).
    All,
    /// One live bucket chosen by a hash of the packet, weighted.
    Select,
    /// Its single bucket.
    Indirect,
    /// The first live bucket.
    FastFailover,
}

impl GroupType {
    /// The `ovs-ofctl` name (`all`, `select`, `indirect`, `ff`).
    pub const fn name(self) -> &'static str {
        match self {
            GroupType::All => "all",
            GroupType::Select => "select",
            GroupType::Indirect => "indirect",
            GroupType::FastFailover => "ff",
        }
    }

    /// True for the types whose buckets may have a liveness watch (SELECT, FAST_FAILOVER).
    pub const fn has_liveness(self) -> bool {
        matches!(self, GroupType::Select | GroupType::FastFailover)
    }
}

impl fmt::Display for GroupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One bucket of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bucket {
    /// Relative weight (SELECT only; 0 elsewhere; a SELECT bucket of weight 0 is never chosen).
    pub weight: u16,
    /// Port whose link state makes the bucket live (None: OFPP_ANY).
    pub watch_port: Option<PortNo>,
    /// Group whose liveness makes the bucket live (None: OFPG_ANY).
    pub watch_group: Option<u32>,
    /// The actions, run in order on the bucket's copy of the packet.
    pub actions: Vec<Action>,
}

impl Bucket {
    /// A bucket with weight 0 and no watch.
    pub fn new(actions: Vec<Action>) -> Self {
        Bucket {
            actions,
            ..Default::default()
        }
    }
    /// Builder: the weight.
    pub fn weight(mut self, weight: u16) -> Self {
        self.weight = weight;
        self
    }
    /// Builder: the watch port.
    pub fn watch_port(mut self, port: PortNo) -> Self {
        self.watch_port = Some(port);
        self
    }
    /// Builder: the watch group.
    pub fn watch_group(mut self, group: u32) -> Self {
        self.watch_group = Some(group);
        self
    }
    /// True when the bucket watches a port or a group.
    pub fn is_watched(&self) -> bool {
        self.watch_port.is_some() || self.watch_group.is_some()
    }
    /// Distinct groups this bucket forwards to, then its watch group, in order.
    fn references(&self) -> impl Iterator<Item = u32> + '_ {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Group(g) => Some(*g),
                _ => None,
            })
            .chain(self.watch_group)
    }
}

/// A group to add or to replace an existing one with (the group_mod fields).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupSpec {
    /// Group id (`0..=OFPG_MAX`).
    pub id: u32,
    /// Type.
    pub kind: GroupType,
    /// Buckets.
    pub buckets: Vec<Bucket>,
}

impl GroupSpec {
    /// A group spec.
    pub fn new(id: u32, kind: GroupType, buckets: Vec<Bucket>) -> Self {
        GroupSpec { id, kind, buckets }
    }
}

/// A group in the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Group id.
    pub id: u32,
    /// Type.
    pub kind: GroupType,
    /// Buckets.
    pub buckets: Vec<Bucket>,
    /// Packets credited ([`crate::pipeline::Pipeline::credit_group`]).
    pub packets: u64,
    /// Bytes credited.
    pub bytes: u64,
    /// When it was added (kept by modify).
    pub created_ms: u64,
    /// Rules and groups that directly forward to it (each referrer counted once).
    pub ref_count: u32,
}

impl fmt::Display for Group {
    /// `ovs-ofctl -O OpenFlow13 dump-groups` spelling, e.g.
    /// `group_id=1,type=select,bucket=weight:50,actions=output:1,bucket=actions=drop`
    /// (a SELECT weight is shown when it is not 1, as ovs-ofctl does).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group_id={},type={}", self.id, self.kind)?;
        for b in &self.buckets {
            f.write_str(",bucket=")?;
            if self.kind == GroupType::Select && b.weight != 1 {
                write!(f, "weight:{},", b.weight)?;
            }
            if let Some(p) = b.watch_port {
                write!(f, "watch_port:{p},")?;
            }
            if let Some(g) = b.watch_group {
                write!(f, "watch_group:{g},")?;
            }
            f.write_str("actions=")?;
            if b.actions.is_empty() {
                f.write_str("drop")?;
            }
            for (i, a) in b.actions.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

/// What [`crate::pipeline::Pipeline::group_delete`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupDeleteOutcome {
    /// The groups deleted, by ascending id.
    pub groups: Vec<Group>,
    /// The rules deleted because they forwarded to one of them (send flow_removed with reason
    /// [`crate::pipeline::RemovalReason::GroupDelete`] for those that asked).
    pub rules: Vec<Rule>,
}

/// The SELECT hash: a 64-bit mix (splitmix64 finaliser) folded over each value's two 64-bit
/// halves in order, reduced to 32 bits. Deterministic across runs and machines, so a flow
/// keeps its bucket while the group and its liveness do not change.
#[derive(Clone, Copy, Debug)]
pub struct SelectHash(u64);

impl Default for SelectHash {
    fn default() -> Self {
        SelectHash::new()
    }
}

impl SelectHash {
    /// The starting state.
    pub const fn new() -> Self {
        SelectHash(0x05ca_1ab1_e0dd_ba11)
    }

    #[inline(always)]
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Folds one field value in.
    #[inline]
    pub fn add(&mut self, v: u128) {
        self.0 = Self::mix(self.0.wrapping_add(0x9e37_79b9_7f4a_7c15) ^ v as u64);
        self.0 = Self::mix(self.0 ^ (v >> 64) as u64);
    }

    /// The hash.
    #[inline]
    pub fn finish(&self) -> u32 {
        (self.0 ^ (self.0 >> 32)) as u32
    }
}

/// The groups of a pipeline, by id, with the checks that keep the reference graph sound.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupTable {
    map: BTreeMap<u32, Group>,
}

/// Calls `f` once for each distinct group an action list forwards to.
fn for_each_distinct_group(actions: &[Action], mut f: impl FnMut(u32)) {
    for (i, a) in actions.iter().enumerate() {
        if let Action::Group(g) = *a {
            if !actions[..i].contains(&Action::Group(g)) {
                f(g);
            }
        }
    }
}

/// The distinct groups a bucket list forwards to (not the watched ones).
fn forward_targets(buckets: &[Bucket]) -> Vec<u32> {
    let mut out: Vec<u32> = buckets
        .iter()
        .flat_map(|b| b.actions.iter())
        .filter_map(|a| match a {
            Action::Group(g) => Some(*g),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

impl GroupTable {
    pub(crate) fn get(&self, id: u32) -> Option<&Group> {
        self.map.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut Group> {
        self.map.get_mut(&id)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Group> + '_ {
        self.map.values()
    }

    pub(crate) fn contains(&self, id: u32) -> bool {
        self.map.contains_key(&id)
    }

    /// Every check of a group_mod ADD (`modify == false`) or MODIFY; see the module docs.
    pub(crate) fn validate(&self, spec: &GroupSpec, modify: bool) -> Result<(), PipelineError> {
        let id = spec.id;
        if id > OFPG_MAX {
            return Err(PipelineError::InvalidGroup {
                group: id,
                why: "the id is reserved (above OFPG_MAX)",
            });
        }
        match (modify, self.map.contains_key(&id)) {
            (false, true) => return Err(PipelineError::GroupExists(id)),
            (true, false) => return Err(PipelineError::UnknownGroup(id)),
            (false, false) if self.map.len() >= MAX_GROUPS => {
                return Err(PipelineError::OutOfGroups(MAX_GROUPS))
            }
            _ => {}
        }
        if spec.buckets.len() > MAX_BUCKETS {
            return Err(PipelineError::OutOfBuckets {
                group: id,
                max: MAX_BUCKETS,
            });
        }
        if spec.kind == GroupType::Indirect && spec.buckets.len() != 1 {
            return Err(PipelineError::InvalidGroup {
                group: id,
                why: "an indirect group has exactly one bucket",
            });
        }
        for (i, b) in spec.buckets.iter().enumerate() {
            self.validate_bucket(spec, i, b)?;
        }
        if modify {
            // The graph was acyclic, so a new cycle goes through this group: look for it from
            // the groups it now references.
            let mut seen = Vec::new();
            for t in spec.buckets.iter().flat_map(Bucket::references) {
                if self.reaches(t, id, &mut seen) {
                    return Err(PipelineError::Loop { group: id });
                }
            }
        }
        // Chain depth: for an add only the new group's own chain can grow; a modify may
        // lengthen every chain through it.
        let mut memo = HashMap::new();
        let depth = if modify {
            self.map
                .keys()
                .map(|&g| self.height(g, spec, &mut memo))
                .max()
                .unwrap_or(0)
        } else {
            1 + spec
                .buckets
                .iter()
                .flat_map(Bucket::references)
                .map(|g| self.height(g, spec, &mut memo))
                .max()
                .unwrap_or(0)
        };
        if depth > MAX_GROUP_DEPTH {
            return Err(PipelineError::ChainingUnsupported {
                group: id,
                depth,
                max: MAX_GROUP_DEPTH,
            });
        }
        Ok(())
    }

    fn validate_bucket(&self, spec: &GroupSpec, i: usize, b: &Bucket) -> Result<(), PipelineError> {
        let (group, bucket) = (spec.id, i);
        if b.weight != 0 && spec.kind != GroupType::Select {
            return Err(PipelineError::WeightUnsupported { group, bucket });
        }
        if b.is_watched() && !spec.kind.has_liveness() {
            return Err(PipelineError::WatchUnsupported { group, bucket });
        }
        if spec.kind == GroupType::FastFailover && !b.is_watched() {
            return Err(PipelineError::BadWatch {
                group,
                bucket,
                why: "a fast-failover bucket must watch a port or a group",
            });
        }
        if b.watch_port.is_some_and(|p| p == 0 || p > OFPP_MAX) {
            return Err(PipelineError::BadWatch {
                group,
                bucket,
                why: "the watch port is not a port number",
            });
        }
        match b.watch_group {
            Some(g) if g == group => return Err(PipelineError::Loop { group }),
            Some(g) if !self.map.contains_key(&g) => {
                return Err(PipelineError::BadWatch {
                    group,
                    bucket,
                    why: "the watch group does not exist",
                })
            }
            _ => {}
        }
        for a in &b.actions {
            match *a {
                Action::Output(OfPort::Table) => {
                    return Err(PipelineError::BadBucket {
                        group,
                        bucket,
                        why: "output:TABLE is valid only in packet-out",
                    })
                }
                Action::Group(g) if g == group => return Err(PipelineError::Loop { group }),
                Action::Group(g) if !self.map.contains_key(&g) => {
                    return Err(PipelineError::BadOutGroup(g))
                }
                _ => a.validate()?,
            }
        }
        Ok(())
    }

    /// The references of group `g`, with `spec` standing in for the group it names.
    fn refs<'a>(&'a self, g: u32, spec: &'a GroupSpec) -> &'a [Bucket] {
        if g == spec.id {
            &spec.buckets
        } else {
            self.map.get(&g).map_or(&[], |x| &x.buckets)
        }
    }

    /// True when `target` is reachable from `from` over the existing graph (`from` itself
    /// included). Called only while the graph is acyclic, so the recursion is bounded by the
    /// depth limit.
    fn reaches(&self, from: u32, target: u32, seen: &mut Vec<u32>) -> bool {
        if from == target {
            return true;
        }
        if seen.contains(&from) {
            return false;
        }
        seen.push(from);
        let Some(g) = self.map.get(&from) else {
            return false;
        };
        g.buckets
            .iter()
            .flat_map(Bucket::references)
            .any(|t| self.reaches(t, target, seen))
    }

    /// Longest chain starting at `g` (1 for a group referencing nothing), with `spec` in place
    /// of its group. Only called on an acyclic graph.
    fn height(&self, g: u32, spec: &GroupSpec, memo: &mut HashMap<u32, usize>) -> usize {
        if let Some(&h) = memo.get(&g) {
            return h;
        }
        let h = 1 + self
            .refs(g, spec)
            .iter()
            .flat_map(Bucket::references)
            .map(|t| self.height(t, spec, memo))
            .max()
            .unwrap_or(0);
        memo.insert(g, h);
        h
    }

    /// Adds a validated group; counts its references.
    pub(crate) fn insert(&mut self, spec: GroupSpec, now_ms: u64) {
        self.add_refs(&forward_targets(&spec.buckets), 1);
        self.map.insert(
            spec.id,
            Group {
                id: spec.id,
                kind: spec.kind,
                buckets: spec.buckets,
                packets: 0,
                bytes: 0,
                created_ms: now_ms,
                ref_count: 0,
            },
        );
    }

    /// Replaces a validated group's type and buckets (counters, creation time and the
    /// group's own ref_count are kept); moves its references.
    pub(crate) fn replace(&mut self, spec: GroupSpec) {
        let old = self
            .map
            .get(&spec.id)
            .map(|g| forward_targets(&g.buckets))
            .unwrap_or_default();
        self.add_refs(&old, -1);
        self.add_refs(&forward_targets(&spec.buckets), 1);
        if let Some(g) = self.map.get_mut(&spec.id) {
            g.kind = spec.kind;
            g.buckets = spec.buckets;
        }
    }

    /// Removes a group; uncounts its references.
    pub(crate) fn remove(&mut self, id: u32) -> Option<Group> {
        let g = self.map.remove(&id)?;
        self.add_refs(&forward_targets(&g.buckets), -1);
        Some(g)
    }

    /// Removes every group.
    pub(crate) fn clear(&mut self) -> Vec<Group> {
        core::mem::take(&mut self.map).into_values().collect()
    }

    /// A group (other than `id`) that forwards to or watches `id`.
    pub(crate) fn referrer(&self, id: u32) -> Option<u32> {
        self.map
            .values()
            .find(|g| {
                g.id != id
                    && g.buckets
                        .iter()
                        .flat_map(Bucket::references)
                        .any(|t| t == id)
            })
            .map(|g| g.id)
    }

    fn add_refs(&mut self, targets: &[u32], delta: i32) {
        for t in targets {
            if let Some(g) = self.map.get_mut(t) {
                g.ref_count = g.ref_count.saturating_add_signed(delta);
            }
        }
    }

    /// Counts (`delta` 1) or uncounts (-1) one rule's references.
    pub(crate) fn rule_refs(&mut self, actions: &[Action], delta: i32) {
        for_each_distinct_group(actions, |g| {
            if let Some(x) = self.map.get_mut(&g) {
                x.ref_count = x.ref_count.saturating_add_signed(delta);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow_match::Match;
    use crate::key::Field;
    use crate::pipeline::{
        AddOptions, Instructions, Pipeline, RemovalReason, RuleFilter, RuleId, RuleSpec,
    };

    fn out(p: PortNo) -> Action {
        Action::Output(OfPort::Port(p))
    }

    fn spec(id: u32, kind: GroupType, buckets: Vec<Bucket>) -> GroupSpec {
        GroupSpec::new(id, kind, buckets)
    }

    fn all(id: u32, actions: Vec<Action>) -> GroupSpec {
        spec(id, GroupType::All, vec![Bucket::new(actions)])
    }

    fn rule(p: &mut Pipeline, mac: u128, actions: Vec<Action>) -> Result<RuleId, PipelineError> {
        p.add(
            RuleSpec::new(
                0,
                Match::default().with(Field::EthDst, mac),
                10,
                Instructions::apply(actions),
            ),
            AddOptions::default(),
            0,
        )
        .map(|o| o.id)
    }

    /// Asserts that `r` is `Err(want)` and that the pipeline did not change.
    fn refused(p: &mut Pipeline, r: Result<(), PipelineError>, want: PipelineError) {
        let before = (p.version(), p.groups().cloned().collect::<Vec<_>>());
        assert_eq!(r, Err(want));
        assert_eq!(
            before,
            (p.version(), p.groups().cloned().collect::<Vec<_>>())
        );
    }

    #[test]
    fn add_modify_delete_bump_the_version() {
        let mut p = Pipeline::default();
        p.group_add(all(1, vec![out(1)]), 100).unwrap();
        assert_eq!(p.version(), 1);
        let g = p.group(1).unwrap();
        assert_eq!(
            (g.kind, g.created_ms, g.ref_count),
            (GroupType::All, 100, 0)
        );
        assert!(p.credit_group(1, 2, 200));
        assert!(!p.credit_group(9, 1, 1));
        p.group_modify(spec(
            1,
            GroupType::Select,
            vec![Bucket::new(vec![out(2)]).weight(3)],
        ))
        .unwrap();
        assert_eq!(p.version(), 2);
        let g = p.group(1).unwrap();
        assert_eq!(
            (g.kind, g.packets, g.bytes, g.created_ms),
            (GroupType::Select, 2, 200, 100)
        );
        assert_eq!(g.buckets[0].weight, 3);
        assert_eq!(p.group_count(), 1);
        // Deleting a missing group is no error and no change.
        assert_eq!(
            p.group_delete(Some(7)).unwrap(),
            GroupDeleteOutcome::default()
        );
        assert_eq!(p.version(), 2);
        let gone = p.group_delete(Some(1)).unwrap();
        assert_eq!(gone.groups.len(), 1);
        assert!(gone.rules.is_empty());
        assert_eq!(p.version(), 3);
        assert!(p.group(1).is_none());
        assert_eq!(p.group_delete(None).unwrap(), GroupDeleteOutcome::default());
        assert_eq!(p.version(), 3);
    }

    #[test]
    fn group_mod_errors() {
        let mut p = Pipeline::default();
        p.group_add(all(1, vec![out(1)]), 0).unwrap();
        p.group_add(all(2, vec![Action::Group(1)]), 0).unwrap();
        let v = p.version();

        let r = p.group_add(all(1, vec![]), 0);
        refused(&mut p, r, PipelineError::GroupExists(1));
        let r = p.group_add(all(OFPG_ALL, vec![]), 0);
        let why = "the id is reserved (above OFPG_MAX)";
        refused(
            &mut p,
            r,
            PipelineError::InvalidGroup {
                group: OFPG_ALL,
                why,
            },
        );
        let why = "an indirect group has exactly one bucket";
        for n in [0, 2] {
            let r = p.group_add(spec(3, GroupType::Indirect, vec![Bucket::default(); n]), 0);
            refused(&mut p, r, PipelineError::InvalidGroup { group: 3, why });
        }
        for kind in [GroupType::All, GroupType::Indirect, GroupType::FastFailover] {
            let b = Bucket::new(vec![out(1)]).weight(1).watch_port(1);
            let r = p.group_add(spec(3, kind, vec![b]), 0);
            refused(
                &mut p,
                r,
                PipelineError::WeightUnsupported {
                    group: 3,
                    bucket: 0,
                },
            );
        }
        for kind in [GroupType::All, GroupType::Indirect] {
            let b = Bucket::new(vec![out(1)]).watch_port(1);
            let r = p.group_add(spec(3, kind, vec![b]), 0);
            refused(
                &mut p,
                r,
                PipelineError::WatchUnsupported {
                    group: 3,
                    bucket: 0,
                },
            );
        }
        let ff = |b: Bucket| {
            spec(
                3,
                GroupType::FastFailover,
                vec![Bucket::new(vec![]).watch_port(1), b],
            )
        };
        let why = "a fast-failover bucket must watch a port or a group";
        let r = p.group_add(ff(Bucket::new(vec![out(2)])), 0);
        refused(
            &mut p,
            r,
            PipelineError::BadWatch {
                group: 3,
                bucket: 1,
                why,
            },
        );
        let why = "the watch group does not exist";
        let r = p.group_add(ff(Bucket::default().watch_group(9)), 0);
        refused(
            &mut p,
            r,
            PipelineError::BadWatch {
                group: 3,
                bucket: 1,
                why,
            },
        );
        let why = "the watch port is not a port number";
        for port in [0, OFPP_MAX + 1] {
            let r = p.group_add(ff(Bucket::default().watch_port(port)), 0);
            refused(
                &mut p,
                r,
                PipelineError::BadWatch {
                    group: 3,
                    bucket: 1,
                    why,
                },
            );
        }
        let why = "output:TABLE is valid only in packet-out";
        let r = p.group_add(all(3, vec![Action::Output(OfPort::Table)]), 0);
        refused(
            &mut p,
            r,
            PipelineError::BadBucket {
                group: 3,
                bucket: 0,
                why,
            },
        );
        let r = p.group_add(all(3, vec![Action::Group(9)]), 0);
        refused(&mut p, r, PipelineError::BadOutGroup(9));
        let r = p.group_add(all(3, vec![Action::PushVlan { tpid: 1 }]), 0);
        refused(&mut p, r, PipelineError::BadTpid(1));
        let r = p.group_add(
            spec(3, GroupType::All, vec![Bucket::default(); MAX_BUCKETS + 1]),
            0,
        );
        refused(
            &mut p,
            r,
            PipelineError::OutOfBuckets {
                group: 3,
                max: MAX_BUCKETS,
            },
        );
        // Loops: to itself by action or by watch on add, through another group on modify.
        let r = p.group_add(all(3, vec![Action::Group(3)]), 0);
        refused(&mut p, r, PipelineError::Loop { group: 3 });
        let r = p.group_add(ff(Bucket::default().watch_group(3)), 0);
        refused(&mut p, r, PipelineError::Loop { group: 3 });
        let r = p.group_modify(all(1, vec![Action::Group(2)]));
        refused(&mut p, r, PipelineError::Loop { group: 1 });
        let r = p.group_modify(spec(
            1,
            GroupType::Select,
            vec![Bucket::new(vec![]).weight(1).watch_group(2)],
        ));
        refused(&mut p, r, PipelineError::Loop { group: 1 });
        let r = p.group_modify(all(5, vec![]));
        refused(&mut p, r, PipelineError::UnknownGroup(5));
        // 2 forwards to 1.
        let r = p.group_delete(Some(1)).map(|_| ());
        refused(&mut p, r, PipelineError::ChainedGroup { group: 1, by: 2 });
        assert_eq!(p.version(), v, "no refused group_mod changed anything");
    }

    #[test]
    fn chain_depth_is_bounded_on_add_and_modify() {
        let mut p = Pipeline::default();
        p.group_add(all(1, vec![out(1)]), 0).unwrap();
        for id in 2..=MAX_GROUP_DEPTH as u32 {
            p.group_add(all(id, vec![Action::Group(id - 1)]), 0)
                .unwrap();
        }
        let top = MAX_GROUP_DEPTH as u32;
        let r = p.group_add(all(top + 1, vec![Action::Group(top)]), 0);
        let err = PipelineError::ChainingUnsupported {
            group: top + 1,
            depth: MAX_GROUP_DEPTH + 1,
            max: MAX_GROUP_DEPTH,
        };
        refused(&mut p, r, err);
        // Lengthening the bottom of the chain makes the top too deep as well.
        p.group_add(all(100, vec![out(2)]), 0).unwrap();
        let r = p.group_modify(all(1, vec![Action::Group(100)]));
        let err = PipelineError::ChainingUnsupported {
            group: 1,
            depth: MAX_GROUP_DEPTH + 1,
            max: MAX_GROUP_DEPTH,
        };
        refused(&mut p, r, err);
        // A watch counts as a link of the chain.
        let r = p.group_modify(spec(
            1,
            GroupType::FastFailover,
            vec![Bucket::new(vec![out(1)]).watch_group(100)],
        ));
        assert!(matches!(r, Err(PipelineError::ChainingUnsupported { .. })));
    }

    #[test]
    fn out_of_groups() {
        let mut p = Pipeline::new(1).unwrap();
        for id in 0..MAX_GROUPS as u32 {
            p.group_add(spec(id, GroupType::All, vec![]), 0).unwrap();
        }
        let r = p.group_add(spec(OFPG_MAX, GroupType::All, vec![]), 0);
        refused(&mut p, r, PipelineError::OutOfGroups(MAX_GROUPS));
        // Modifying one of them is still fine.
        p.group_modify(all(5, vec![])).unwrap();
    }

    #[test]
    fn rules_referencing_groups() {
        let mut p = Pipeline::new(2).unwrap();
        assert_eq!(
            rule(&mut p, 1, vec![Action::Group(1)]),
            Err(PipelineError::BadOutGroup(1))
        );
        assert_eq!(
            rule(&mut p, 1, vec![Action::Output(OfPort::Table)]),
            Err(PipelineError::BadOutPort(OfPort::Table))
        );
        assert_eq!(p.version(), 0);
        p.group_add(all(1, vec![out(1)]), 0).unwrap();
        p.group_add(all(2, vec![Action::Group(1)]), 0).unwrap();
        assert_eq!(p.group(1).unwrap().ref_count, 1, "group 2");
        let a = rule(&mut p, 1, vec![Action::Group(1), out(3), Action::Group(1)]).unwrap();
        let b = rule(&mut p, 2, vec![Action::Group(2)]).unwrap();
        let c = rule(&mut p, 3, vec![out(4)]).unwrap();
        assert_eq!(p.group(1).unwrap().ref_count, 2, "group 2 and rule a, once");
        assert_eq!(p.group(2).unwrap().ref_count, 1);
        // Modify: refused for an unknown group or TABLE, counts move on success.
        let all_rules = RuleFilter::loose(Some(0), Match::CATCH_ALL);
        let v = p.version();
        assert_eq!(
            p.modify(
                &all_rules,
                Instructions::apply(vec![Action::Group(7)]),
                false
            ),
            Err(PipelineError::BadOutGroup(7))
        );
        assert_eq!(
            p.modify(
                &all_rules,
                Instructions::apply(vec![Action::Output(OfPort::Table)]),
                false
            ),
            Err(PipelineError::BadOutPort(OfPort::Table))
        );
        assert_eq!(p.version(), v);
        let only_c = RuleFilter::strict(0, Match::default().with(Field::EthDst, 3), 10);
        p.modify(&only_c, Instructions::apply(vec![Action::Group(2)]), false)
            .unwrap();
        assert_eq!(p.group(2).unwrap().ref_count, 2);
        // out_group filter.
        let by_group = |g| RuleFilter::loose(None, Match::CATCH_ALL).out_group(g);
        let sel = p.modify(
            &by_group(2),
            Instructions::apply(vec![Action::Group(2)]),
            false,
        );
        let mut sel = sel.unwrap();
        sel.sort();
        let mut want = vec![b, c];
        want.sort();
        assert_eq!(sel, want);
        // Replacing a rule moves its reference.
        rule(&mut p, 1, vec![out(1)]).unwrap();
        assert_eq!(p.group(1).unwrap().ref_count, 1);
        assert!(p.get(a).is_none());
        rule(&mut p, 1, vec![Action::Group(1)]).unwrap();
        // Deleting group 1 is refused while group 2 forwards to it; deleting 2 takes rules b
        // and c with it.
        assert!(p.group_delete(Some(1)).is_err());
        let v = p.version();
        let gone = p.group_delete(Some(2)).unwrap();
        assert_eq!(
            gone.groups.iter().map(|g| g.id).collect::<Vec<_>>(),
            vec![2]
        );
        let mut ids: Vec<_> = gone.rules.iter().map(|r| r.id).collect();
        ids.sort();
        assert_eq!(ids, want);
        assert_eq!(p.version(), v + 1);
        assert_eq!(p.len(), 1);
        assert_eq!(p.group(1).unwrap().ref_count, 1, "the re-added rule only");
        // Delete-all takes every group and every rule that forwards to one.
        rule(&mut p, 9, vec![out(2)]).unwrap();
        let gone = p.group_delete(None).unwrap();
        assert_eq!(gone.groups.len(), 1);
        assert_eq!(gone.rules.len(), 1);
        assert_eq!(p.len(), 1, "the rule without groups stays");
        assert_eq!(p.group_count(), 0);
        // The reason the channel reports for them.
        assert_ne!(RemovalReason::GroupDelete, RemovalReason::Delete);
    }

    #[test]
    fn expire_and_delete_uncount_references() {
        let mut p = Pipeline::default();
        p.group_add(all(1, vec![out(1)]), 0).unwrap();
        let mut s = RuleSpec::new(
            0,
            Match::CATCH_ALL,
            1,
            Instructions::apply(vec![Action::Group(1)]),
        );
        s.hard_timeout = 1;
        p.add(s, AddOptions::default(), 0).unwrap();
        rule(&mut p, 5, vec![Action::Group(1)]).unwrap();
        assert_eq!(p.group(1).unwrap().ref_count, 2);
        assert_eq!(p.expire(1_000).len(), 1);
        assert_eq!(p.group(1).unwrap().ref_count, 1);
        p.delete(&RuleFilter::loose(None, Match::CATCH_ALL))
            .unwrap();
        assert_eq!(p.group(1).unwrap().ref_count, 0);
        // Unreferenced: deleting the group deletes no rule.
        assert!(p.group_delete(Some(1)).unwrap().rules.is_empty());
    }

    #[test]
    fn actions_print_like_ovs_ofctl() {
        let i = Instructions::apply(vec![Action::Group(7), Action::Output(OfPort::Table)]);
        assert_eq!(i.to_string(), "group:7,TABLE");
    }

    #[test]
    fn select_hash_is_deterministic_and_spreads() {
        let h = |vals: &[u128]| {
            let mut s = SelectHash::new();
            for v in vals {
                s.add(*v);
            }
            s.finish()
        };
        assert_eq!(h(&[1, 2, 3]), h(&[1, 2, 3]));
        assert_ne!(h(&[1, 2, 3]), h(&[1, 3, 2]), "order matters");
        assert_ne!(h(&[1 << 64]), h(&[1]), "both halves are read");
        // 1,000 source ports over 4 equal buckets: every bucket gets a fair share.
        let mut counts = [0u32; 4];
        for port in 0..1_000u128 {
            counts[(h(&[0x0200_0000_0001, 0x0200_0000_0002, 0x800, port]) % 4) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 180), "{counts:?}");
    }

    #[test]
    fn display_like_ovs_ofctl() {
        let g = Group {
            id: 2,
            kind: GroupType::Select,
            buckets: vec![
                Bucket::new(vec![Action::Output(OfPort::Port(1))]).weight(50),
                Bucket::new(vec![Action::Output(OfPort::Port(2)), Action::Group(7)]).weight(1),
                Bucket::new(vec![]).weight(3).watch_port(4).watch_group(9),
            ],
            packets: 0,
            bytes: 0,
            created_ms: 0,
            ref_count: 0,
        };
        assert_eq!(
            g.to_string(),
            "group_id=2,type=select,bucket=weight:50,actions=output:1,\
             bucket=actions=output:2,group:7,\
             bucket=weight:3,watch_port:4,watch_group:9,actions=drop"
        );
        let ff = Group {
            id: 1,
            kind: GroupType::FastFailover,
            buckets: vec![Bucket::new(vec![Action::Output(OfPort::InPort)]).watch_port(1)],
            ..g.clone()
        };
        assert_eq!(
            ff.to_string(),
            "group_id=1,type=ff,bucket=watch_port:1,actions=IN_PORT"
        );
        let all = Group {
            id: 3,
            kind: GroupType::All,
            buckets: vec![],
            ..g
        };
        assert_eq!(all.to_string(), "group_id=3,type=all");
    }

    #[test]
    fn distinct_groups_of_an_action_list() {
        let mut seen = Vec::new();
        for_each_distinct_group(
            &[
                Action::Group(3),
                Action::PopVlan,
                Action::Group(1),
                Action::Group(3),
            ],
            |g| seen.push(g),
        );
        assert_eq!(seen, vec![3, 1]);
    }
}
