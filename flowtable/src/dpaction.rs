//! Datapath actions: what a cached megaflow does to a packet. This is the whole vocabulary of
//! the fast path (the "dpif" seam): it knows ports, header rewrites and tunnels, never OpenFlow
//! tables, groups or tenants. xlate compiles pipeline behaviour into a list of these.
//!
//! Semantics (shared by the datapath executor and by [`crate::semantics`], the key-level model
//! that the xlate property test checks against):
//! - actions run in order on one packet; `Output` emits a copy of the packet as it is *now*;
//! - an empty list means drop (counted as a policy drop);
//! - `DecTtl` on an IP packet with TTL/hop limit <= 1 stops the list (the packet is dropped,
//!   counted as TTL expired); on non-IP packets it does nothing;
//! - `Set` writes a wire field and fixes every checksum it affects; tunnel fields are never
//!   `Set` (they are folded into `TunnelPush` by xlate) and pipeline-only fields never appear;
//! - `PushVlan` inserts a tag after the MACs (the key's `vlan_tci` gains [`crate::key::VLAN_PRESENT`]);
//!   `PopVlan` removes the outer tag if there is one;
//! - `TunnelPush` prepends the prebuilt outer headers and emits on the underlay port;
//! - `TunnelPop` validates and strips outer headers, records tunnel metadata in the key and
//!   looks the inner packet up again as arriving on the tunnel port (recirculation);
//! - `Userspace` sends a copy (up to `max_len` bytes) to the controller.

use crate::key::Field;
use crate::tunnel::TunnelPush;
use core::fmt;

/// Re-exported from [`crate::port`], where it lives (so [`crate::tunnel`] need not import this
/// module for it).
pub use crate::port::PortNo;

/// Why a packet is sent to the controller by a `Userspace` action (OpenFlow packet-in reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserspaceReason {
    /// Table miss.
    NoMatch,
    /// An explicit output:controller action.
    Action,
    /// TTL expired.
    InvalidTtl,
}

/// One datapath action; see the module docs for semantics.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum DpAction {
    /// Emit the packet on a port.
    Output(PortNo),
    /// Push an 802.1Q tag with this TCI (wire format: pcp|dei|vid).
    PushVlan {
        /// TPID, 0x8100 or 0x88a8.
        tpid: u16,
        /// Tag control information as on the wire.
        tci: u16,
    },
    /// Pop the outermost VLAN tag.
    PopVlan,
    /// Write a wire field (with checksum updates).
    Set {
        /// The field.
        field: Field,
        /// The new value.
        value: u128,
    },
    /// Decrement TTL / hop limit, or stop when it would expire.
    DecTtl,
    /// Encapsulate and emit.
    TunnelPush(Box<TunnelPush>),
    /// Decapsulate and recirculate as arriving on `port`.
    TunnelPop {
        /// The tunnel (virtual) port the inner packet arrives on.
        port: PortNo,
    },
    /// Copy to the controller.
    Userspace {
        /// Packet-in reason.
        reason: UserspaceReason,
        /// Bytes of packet to send (0xffff: all).
        max_len: u16,
        /// Cookie of the rule that decided it.
        cookie: u64,
        /// Table of that rule.
        table: u8,
        /// Pipeline metadata at that point (OpenFlow packet-in OXM metadata).
        metadata: u64,
    },
}

impl fmt::Debug for DpAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DpAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpAction::Output(p) => write!(f, "{p}"),
            DpAction::PushVlan { tpid, tci } => {
                write!(
                    f,
                    "push_vlan(tpid={tpid:#06x},vid={},pcp={})",
                    tci & 0xfff,
                    tci >> 13
                )
            }
            DpAction::PopVlan => f.write_str("pop_vlan"),
            DpAction::Set { field, value } => {
                write!(
                    f,
                    "set({}={})",
                    field.name(),
                    crate::fmt::FieldValue(*field, *value)
                )
            }
            DpAction::DecTtl => f.write_str("dec_ttl"),
            DpAction::TunnelPush(t) => write!(f, "{t}"),
            DpAction::TunnelPop { port } => write!(f, "tnl_pop({port})"),
            DpAction::Userspace {
                reason,
                max_len,
                cookie,
                table,
                metadata,
            } => {
                write!(
                    f,
                    "userspace(reason={reason:?},max_len={max_len},cookie={cookie:#x},table={table}"
                )?;
                if *metadata != 0 {
                    write!(f, ",metadata={metadata:#x}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Formats an action list as `dump-dpflows` prints it (`drop` when empty).
pub struct ActionList<'a>(pub &'a [DpAction]);

impl fmt::Display for ActionList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("drop");
        }
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}
