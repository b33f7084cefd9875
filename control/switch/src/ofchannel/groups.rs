//! OpenFlow 1.3 groups on the channel: GROUP_MOD (add, modify, delete) and the group /
//! group_desc multipart replies, over the pipeline's group table
//! ([`strato_flowtable::group`]). Deleting a group deletes the rules that forward to it; those
//! that asked for it get flow_removed with reason GROUP_DELETE.

use super::of13::{of_to_action, pipeline_error, OfErr};
use crate::controller::Controller;
use strato_flowtable::group::{Bucket, GroupSpec, GroupType, OFPG_ALL, OFPG_ANY, OFPG_MAX};
use strato_flowtable::pipeline::{Action, OfPort, RemovalReason};
use strato_openflow::v13::{
    self, Action as OfAction, Bucket as OfBucket, GroupMod, MultipartReply,
};

const ET_GROUP_MOD_FAILED: u16 = 6;
const GMFC_INVALID_GROUP: u16 = 1;
const GMFC_BAD_TYPE: u16 = 10;
const GMFC_BAD_COMMAND: u16 = 11;
const OFPP_ANY: u32 = 0xffff_ffff;

fn kind(t: u8) -> Result<GroupType, OfErr> {
    Ok(match t {
        0 => GroupType::All,
        1 => GroupType::Select,
        2 => GroupType::Indirect,
        3 => GroupType::FastFailover,
        _ => return Err((ET_GROUP_MOD_FAILED, GMFC_BAD_TYPE)),
    })
}

fn kind_wire(k: GroupType) -> u8 {
    match k {
        GroupType::All => 0,
        GroupType::Select => 1,
        GroupType::Indirect => 2,
        GroupType::FastFailover => 3,
    }
}

fn bucket(b: &OfBucket) -> Result<Bucket, OfErr> {
    let actions = b
        .actions
        .iter()
        .map(of_to_action)
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Bucket::new(actions).weight(b.weight);
    if b.watch_port != OFPP_ANY {
        out = out.watch_port(b.watch_port);
    }
    if b.watch_group != OFPG_ANY {
        out = out.watch_group(b.watch_group);
    }
    Ok(out)
}

/// GROUP_MOD.
pub(crate) fn group_mod13(c: &mut Controller, gm: GroupMod) -> Result<(), OfErr> {
    const ADD: u16 = 0;
    const MODIFY: u16 = 1;
    const DELETE: u16 = 2;
    match gm.command {
        ADD | MODIFY => {
            if gm.group_id > OFPG_MAX {
                return Err((ET_GROUP_MOD_FAILED, GMFC_INVALID_GROUP));
            }
            let spec = GroupSpec::new(
                gm.group_id,
                kind(gm.type_)?,
                gm.buckets.iter().map(bucket).collect::<Result<_, _>>()?,
            );
            let now = c.now_ms();
            c.change(|p, _| {
                if gm.command == ADD {
                    p.group_add(spec, now)
                } else {
                    p.group_modify(spec)
                }
            })
            .map_err(pipeline_error)
        }
        DELETE => {
            let id = match gm.group_id {
                OFPG_ALL => None,
                g if g <= OFPG_MAX => Some(g),
                _ => return Err((ET_GROUP_MOD_FAILED, GMFC_INVALID_GROUP)),
            };
            let out = c
                .change(|p, _| p.group_delete(id))
                .map_err(pipeline_error)?;
            c.note_removed(out.rules, RemovalReason::GroupDelete);
            Ok(())
        }
        _ => Err((ET_GROUP_MOD_FAILED, GMFC_BAD_COMMAND)),
    }
}

fn of_bucket(b: &Bucket) -> OfBucket {
    OfBucket {
        weight: b.weight,
        watch_port: b.watch_port.unwrap_or(OFPP_ANY),
        watch_group: b.watch_group.unwrap_or(OFPG_ANY),
        actions: b
            .actions
            .iter()
            .filter_map(|a| match *a {
                Action::Output(OfPort::Table) => None,
                ref a => super::of13::action_to_of(a, &strato_flowtable::Match::default()),
            })
            .collect::<Vec<OfAction>>(),
    }
}

/// Group stats (one group, or all with OFPG_ALL).
pub(crate) fn stats13(c: &Controller, id: u32) -> Result<Vec<MultipartReply>, OfErr> {
    let now = c.now_ms();
    let stats = c
        .pipeline()
        .groups()
        .filter(|g| id == OFPG_ALL || g.id == id)
        .map(|g| {
            let (duration_sec, duration_nsec) = super::duration(now.saturating_sub(g.created_ms));
            v13::GroupStats {
                group_id: g.id,
                ref_count: g.ref_count,
                packet_count: g.packets,
                byte_count: g.bytes,
                duration_sec,
                duration_nsec,
                // strato counts per group, not per bucket.
                bucket_stats: g.buckets.iter().map(|_| (0, 0)).collect(),
            }
        })
        .collect();
    Ok(vec![MultipartReply::Group(stats)])
}

/// Group descriptions.
pub(crate) fn desc13(c: &Controller) -> Result<Vec<MultipartReply>, OfErr> {
    Ok(vec![MultipartReply::GroupDesc(
        c.pipeline()
            .groups()
            .map(|g| v13::GroupDesc {
                type_: kind_wire(g.kind),
                group_id: g.id,
                buckets: g.buckets.iter().map(of_bucket).collect(),
            })
            .collect(),
    )])
}
