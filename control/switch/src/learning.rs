//! The built-in MAC-learning switch (fail mode `standalone`): a bridge with no controller rules
//! behaves as an Ethernet switch, with everything it learns installed as ordinary OpenFlow rules
//! (visible in `dump-flows`, cached as megaflows like any other rule).
//!
//! Tables:
//! - table 0 holds one rule per learned source, `in_port=P,dl_src=M -> goto_table:1`, with the
//!   aging time as idle timeout, and a catch-all `CONTROLLER, goto_table:1` at priority 0: a
//!   frame from an unknown source is forwarded as usual and a copy goes to the controller, which
//!   learns `M` on `P` ([`Learning::learn`]).
//! - table 1 holds one rule per learned destination, `dl_dst=M -> output:P`, and a catch-all
//!   `FLOOD` at priority 0 (flooding never sends a frame back where it came from: split
//!   horizon).
//! - A MAC seen on another port moves: both of its rules are replaced. When a source rule ages
//!   out, the destination rule of the same MAC is removed with it.
//! - Multicast and broadcast source addresses are never learned.
//!
//! Rules carry [`LEARNED_COOKIE`] so they can be told from rules others add.
//!
//! On the controller it is an [`App`]: [`Learning::enable`] installs the fixed rules and the
//! app, which owns the frames punted by [`BASE_COOKIE`], forgets what it learned on a port
//! that goes down or is forgotten, and removes a destination when its source ages out.

use crate::app::{App, AppEvent, PortChange, Punt};
use crate::controller::Controller;
use strato_flowtable::key::{mac_to_u64, Field};
use strato_flowtable::pipeline::{
    Action, AddOptions, Instructions, OfPort, Pipeline, PipelineError, RemovalReason, Rule,
    RuleFilter, RuleSpec,
};
use strato_flowtable::{Match, PortNo};

/// Cookie of every rule the learning switch installs.
pub const LEARNED_COOKIE: u64 = 0x5354_5241_544f_4c31; // "STRATOL1"
/// Cookie of the learning switch's fixed rules (the flood catch-all).
pub const BASE_COOKIE: u64 = 0x5354_5241_544f_4c30; // "STRATOL0"
const SRC_TABLE: u8 = 0;
const DST_TABLE: u8 = 1;
const LEARNED_PRIORITY: u16 = 100;
/// Bytes of a frame the controller needs to learn from it (the Ethernet header).
pub const LEARN_BYTES: u16 = 64;

/// The learning switch's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learning {
    /// Seconds a source may stay silent before it is forgotten (0: never).
    pub aging_s: u16,
}

impl Default for Learning {
    fn default() -> Self {
        Learning { aging_s: 300 }
    }
}

/// What learning one frame did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// A new MAC address.
    New,
    /// A known MAC address seen on another port.
    Moved {
        /// Where it was before.
        from: PortNo,
    },
    /// Nothing to learn (already known there, multicast source, or not Ethernet).
    Nothing,
}

impl Learning {
    /// Installs the fixed rules: unknown sources are copied to the controller and go on to
    /// table 1, which floods what it does not know.
    pub fn install_base(&self, p: &mut Pipeline) -> Result<(), PipelineError> {
        let learn = Instructions::apply(vec![Action::Output(OfPort::Controller {
            max_len: LEARN_BYTES,
        })])
        .goto(DST_TABLE);
        let mut spec = RuleSpec::new(SRC_TABLE, Match::CATCH_ALL, 0, learn);
        spec.cookie = BASE_COOKIE;
        p.add(spec, AddOptions::default(), 0)?;
        let mut spec = RuleSpec::new(
            DST_TABLE,
            Match::CATCH_ALL,
            0,
            Instructions::apply(vec![Action::Output(OfPort::Flood)]),
        );
        spec.cookie = BASE_COOKIE;
        p.add(spec, AddOptions::default(), 0)?;
        Ok(())
    }

    /// Learns the source of `frame` (received on `in_port`) into the pipeline.
    pub fn learn(
        &self,
        p: &mut Pipeline,
        in_port: PortNo,
        frame: &[u8],
        now_ms: u64,
    ) -> Result<Learned, PipelineError> {
        let Some(src) = frame.get(6..12) else {
            return Ok(Learned::Nothing);
        };
        if src[0] & 1 != 0 {
            return Ok(Learned::Nothing);
        }
        let mac = mac_to_u64(&[src[0], src[1], src[2], src[3], src[4], src[5]]) as u128;
        let dst_match = Match::default().with(Field::EthDst, mac);
        let known = p
            .table_rules(DST_TABLE)
            .find(|r| r.cookie == LEARNED_COOKIE && r.matching == dst_match)
            .and_then(|r| match r.instructions.apply_actions.as_slice() {
                [Action::Output(OfPort::Port(port))] => Some(*port),
                _ => None,
            });
        let src_match = Match::default()
            .with(Field::InPort, in_port as u128)
            .with(Field::EthSrc, mac);
        let src_known = p
            .table_rules(SRC_TABLE)
            .any(|r| r.cookie == LEARNED_COOKIE && r.matching == src_match);
        let result = match known {
            Some(port) if port == in_port && src_known => return Ok(Learned::Nothing),
            Some(port) if port != in_port => Learned::Moved { from: port },
            _ => Learned::New,
        };
        if let Learned::Moved { from } = result {
            let old = Match::default()
                .with(Field::InPort, from as u128)
                .with(Field::EthSrc, mac);
            p.delete(
                &RuleFilter::strict(SRC_TABLE, old, LEARNED_PRIORITY)
                    .cookie(LEARNED_COOKIE, u64::MAX),
            )?;
        }
        let mut s = RuleSpec::new(
            SRC_TABLE,
            src_match,
            LEARNED_PRIORITY,
            Instructions::default().goto(DST_TABLE),
        );
        s.cookie = LEARNED_COOKIE;
        s.idle_timeout = self.aging_s;
        p.add(s, AddOptions::default(), now_ms)?;
        let mut d = RuleSpec::new(
            DST_TABLE,
            dst_match,
            LEARNED_PRIORITY,
            Instructions::apply(vec![Action::Output(OfPort::Port(in_port))]),
        );
        d.cookie = LEARNED_COOKIE;
        p.add(d, AddOptions::default(), now_ms)?;
        Ok(result)
    }

    /// After rules expired: a forgotten source takes its destination rule with it.
    pub fn on_expired(
        &self,
        p: &mut Pipeline,
        expired: &[(Rule, RemovalReason)],
    ) -> Result<usize, PipelineError> {
        let mut n = 0;
        for (r, _) in expired {
            if r.table != SRC_TABLE || r.cookie != LEARNED_COOKIE {
                continue;
            }
            let (mac, _) = r.matching.field(Field::EthSrc);
            let dst = Match::default().with(Field::EthDst, mac);
            n += p
                .delete(
                    &RuleFilter::strict(DST_TABLE, dst, LEARNED_PRIORITY)
                        .cookie(LEARNED_COOKIE, u64::MAX),
                )?
                .len();
        }
        Ok(n)
    }

    /// Forgets everything learned on `port` (the port went down or was removed).
    pub fn forget_port(&self, p: &mut Pipeline, port: PortNo) -> Result<usize, PipelineError> {
        let src = Match::default().with(Field::InPort, port as u128);
        let gone =
            p.delete(&RuleFilter::loose(Some(SRC_TABLE), src).cookie(LEARNED_COOKIE, u64::MAX))?;
        let mut n = gone.len();
        n += p
            .delete(
                &RuleFilter::loose(Some(DST_TABLE), Match::CATCH_ALL)
                    .cookie(LEARNED_COOKIE, u64::MAX)
                    .out_port(OfPort::Port(port)),
            )?
            .len();
        Ok(n)
    }
}

impl Learning {
    /// Turns the bridge into a MAC-learning switch (fail mode standalone) on controller `c`:
    /// installs the fixed rules and the app, which learns from their packet-ins from now on.
    pub fn enable(self, c: &mut Controller) -> Result<(), PipelineError> {
        c.change(|p, _| self.install_base(p))?;
        c.set_app(self);
        c.revalidate_if_pending();
        Ok(())
    }

    /// Stops the learning switch on `c` (its rules stay until someone removes them).
    pub fn disable(c: &mut Controller) {
        c.remove_app::<Learning>();
    }
}

impl App for Learning {
    fn name(&self) -> &'static str {
        "learning"
    }

    fn owns_cookie(&self, cookie: u64) -> bool {
        cookie == BASE_COOKIE
    }

    /// A copy of a frame from an unknown source (the datapath forwarded the frame itself).
    fn packet_in(&mut self, c: &mut Controller, punt: Punt<'_>) {
        let now = c.now_ms();
        let l = *self;
        // One revalidation per batch of upcalls, and none when nothing was learned.
        let r = c.change_if(|p, _| {
            let r = l.learn(p, punt.in_port, punt.frame, now);
            let changed = matches!(r, Ok(Learned::New | Learned::Moved { .. }));
            (r, changed)
        });
        if let Err(e) = r {
            tracing::warn!(%e, "learning failed");
        }
    }

    fn event(&mut self, c: &mut Controller, ev: &AppEvent) {
        let l = *self;
        match ev {
            AppEvent::Port {
                no,
                change: PortChange::Down | PortChange::Forgotten,
            } => {
                let no = *no;
                let _ = c.change(|p, _| l.forget_port(p, no));
            }
            AppEvent::Port { .. } => {}
            AppEvent::RulesRemoved(rules) => {
                let expired: Vec<(Rule, RemovalReason)> = rules
                    .iter()
                    .filter(|(_, why)| {
                        matches!(why, RemovalReason::IdleTimeout | RemovalReason::HardTimeout)
                    })
                    .cloned()
                    .collect();
                if expired.is_empty() {
                    return;
                }
                if let Err(e) = c.change(|p, _| l.on_expired(p, &expired)) {
                    tracing::warn!(%e, "could not remove aged-out learned destinations");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_flowtable::pipeline::PortEnv;
    use strato_flowtable::xlate::xlate;
    use strato_flowtable::{DpAction, FlowKey};

    fn frame(src: u8, dst: u8) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, dst]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f
    }

    fn key(in_port: u32, src: u8, dst: u8) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, in_port as u128);
        k.set(Field::EthSrc, mac_to_u64(&[2, 0, 0, 0, 0, src]) as u128);
        k.set(Field::EthDst, mac_to_u64(&[2, 0, 0, 0, 0, dst]) as u128);
        k.set(Field::EthType, 0x0800);
        k
    }

    fn env() -> PortEnv {
        let mut e = PortEnv::default();
        for p in 1..=3 {
            e.add_port(p, true, true);
        }
        e
    }

    #[test]
    fn learns_floods_forwards_moves_and_ages() {
        let l = Learning { aging_s: 10 };
        let mut p = Pipeline::default();
        l.install_base(&mut p).unwrap();
        let env = env();
        // Unknown source: a copy to the controller, and flooded meanwhile.
        let x = xlate(&p, &env, &key(1, 0xa, 0xb));
        assert!(
            matches!(
                x.actions.as_slice(),
                [
                    DpAction::Userspace {
                        cookie: BASE_COOKIE,
                        ..
                    },
                    DpAction::Output(2),
                    DpAction::Output(3)
                ]
            ),
            "{:?}",
            x.actions
        );
        assert_eq!(
            l.learn(&mut p, 1, &frame(0xa, 0xb), 0).unwrap(),
            Learned::New
        );
        // Known source, unknown destination: flood, never back to port 1.
        let x = xlate(&p, &env, &key(1, 0xa, 0xb));
        assert_eq!(x.actions, vec![DpAction::Output(2), DpAction::Output(3)]);
        // b answers from port 2: learned; a -> b now goes to port 2 only, b -> a to port 1.
        assert_eq!(
            l.learn(&mut p, 2, &frame(0xb, 0xa), 0).unwrap(),
            Learned::New
        );
        assert_eq!(
            xlate(&p, &env, &key(1, 0xa, 0xb)).actions,
            vec![DpAction::Output(2)]
        );
        assert_eq!(
            xlate(&p, &env, &key(2, 0xb, 0xa)).actions,
            vec![DpAction::Output(1)]
        );
        assert_eq!(
            l.learn(&mut p, 2, &frame(0xb, 0xa), 0).unwrap(),
            Learned::Nothing
        );
        // b moves to port 3.
        assert_eq!(
            l.learn(&mut p, 3, &frame(0xb, 0xa), 0).unwrap(),
            Learned::Moved { from: 2 }
        );
        assert_eq!(
            xlate(&p, &env, &key(1, 0xa, 0xb)).actions,
            vec![DpAction::Output(3)]
        );
        assert_eq!(
            p.table_rules(0)
                .filter(|r| r.cookie == LEARNED_COOKIE)
                .count(),
            2
        );
        // Multicast sources are not learned.
        let mut m = frame(0xc, 0xa);
        m[6] = 0x01;
        assert_eq!(l.learn(&mut p, 1, &m, 0).unwrap(), Learned::Nothing);
        // Aging: after 10 s idle both of a's rules go.
        let expired = p.expire(11_000);
        assert_eq!(expired.len(), 2, "both sources aged out");
        assert_eq!(l.on_expired(&mut p, &expired).unwrap(), 2);
        assert_eq!(
            p.table_rules(1)
                .filter(|r| r.cookie == LEARNED_COOKIE)
                .count(),
            0
        );
        assert_eq!(p.table_rules(1).count(), 1, "the flood rule stays");
    }

    #[test]
    fn forgetting_a_port_removes_its_macs() {
        let l = Learning::default();
        let mut p = Pipeline::default();
        l.install_base(&mut p).unwrap();
        l.learn(&mut p, 1, &frame(0xa, 0xb), 0).unwrap();
        l.learn(&mut p, 2, &frame(0xb, 0xa), 0).unwrap();
        assert_eq!(l.forget_port(&mut p, 2).unwrap(), 2);
        let x = xlate(&p, &env(), &key(1, 0xa, 0xb));
        assert_eq!(
            x.actions,
            vec![DpAction::Output(2), DpAction::Output(3)],
            "b unknown again: flood"
        );
    }
}
