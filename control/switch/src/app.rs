//! The application seam: how the OpenFlow channel, the learning switch and the tenant agent
//! plug into the controller without the controller naming any of them.
//!
//! Contract:
//! - An application is an [`App`] installed with [`Controller::set_app`] (one per type: a second
//!   of the same type replaces the first) and removed with [`Controller::remove_app`]. The
//!   controller holds a list of them and calls them only through this trait, on its own thread.
//! - Cookie ownership: a frame punted to userspace by a rule whose cookie an app
//!   [owns](App::owns_cookie) goes to that app's [`App::packet_in`] at once, in upcall order,
//!   and to nobody else (the first owner in installation order wins). Frames nobody owns are
//!   OpenFlow packet-in material, kept for [`Controller::take_packet_ins`].
//! - Events ([`AppEvent`]: ports added, deleted, down or forgotten; rules removed from the
//!   pipeline, with the reason) reach every installed app exactly once, in the order they
//!   happened. An app that is running when an event happens (its own actions caused it) gets
//!   the event as soon as its call returns.
//! - Timers and sockets: every loop pass calls [`App::run`] with the socket readiness the
//!   loop's poll returned (an app ignores tokens it did not register; tokens come from
//!   [`Controller::tokens`]); the loop sleeps no longer than the earliest
//!   [`App::next_timer`], and does not sleep at all while an app says it has work left.
//! - Apps change the pipeline through [`Controller::change`] (revalidated once per pass) or
//!   [`Controller::update`]; they never block the controller thread.

use crate::controller::{Controller, PacketIn};
use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strato_datapath::dpif::UpcallKind;
use strato_flowtable::pipeline::{RemovalReason, Rule};
use strato_flowtable::PortNo;

/// Socket readiness from the controller's poll: (token, readable, writable).
pub type Readiness = (mio::Token, bool, bool);

/// Hands out socket tokens unique across every app of one controller (token 0 is the
/// controller's own waker).
#[derive(Clone, Debug, Default)]
pub struct Tokens(Arc<AtomicUsize>);

impl Tokens {
    /// A token nobody else has.
    pub fn next(&self) -> mio::Token {
        mio::Token(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// What happened to a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortChange {
    /// Added to a worker.
    Added,
    /// Deleted from its worker.
    Deleted,
    /// Went down by itself (the device vanished, the link failed).
    Down,
    /// Removed from the bridge's view (xlate no longer floods to it); learned state on it
    /// should be forgotten.
    Forgotten,
}

/// Something apps hear about.
#[derive(Clone, Debug)]
pub enum AppEvent {
    /// A port changed.
    Port {
        /// The port.
        no: PortNo,
        /// What happened.
        change: PortChange,
    },
    /// Rules left the pipeline (every rule, whatever its flags; each with why).
    RulesRemoved(Vec<(Rule, RemovalReason)>),
}

/// A frame punted to an app (borrowed from the upcall; copy what you keep).
#[derive(Clone, Copy, Debug)]
pub struct Punt<'a> {
    /// Worker it came from.
    pub worker: usize,
    /// Port it arrived on.
    pub in_port: PortNo,
    /// The upcall (its cookie is one the app owns).
    pub kind: UpcallKind,
    /// The frame.
    pub frame: &'a [u8],
}

impl Punt<'_> {
    /// An owned copy, as OpenFlow packet-in material.
    pub fn to_packet_in(&self) -> PacketIn {
        PacketIn {
            worker: self.worker,
            in_port: self.in_port,
            kind: self.kind,
            frame: self.frame.to_vec(),
        }
    }
}

/// An application on the controller thread. Every method but [`App::name`] has a default
/// that does nothing, so an app implements only what it uses. [`Controller::app`] finds an
/// installed app by its type (`Any` is a supertrait).
pub trait App: Any + Send {
    /// A short stable name, for logs.
    fn name(&self) -> &'static str;

    /// True when frames punted by rules with this cookie belong to this app.
    fn owns_cookie(&self, _cookie: u64) -> bool {
        false
    }

    /// A frame punted by one of this app's rules (see [`App::owns_cookie`]).
    fn packet_in(&mut self, _c: &mut Controller, _punt: Punt<'_>) {}

    /// A port or rule event (see [`AppEvent`]).
    fn event(&mut self, _c: &mut Controller, _ev: &AppEvent) {}

    /// One pass of the controller loop; `ready` is the socket readiness this pass's poll
    /// returned. Returns true when it has work left over (the loop then polls again soon).
    fn run(&mut self, _c: &mut Controller, _ready: &[Readiness]) -> bool {
        false
    }

    /// How long until this app needs [`App::run`] again without any socket or worker event.
    fn next_timer(&self) -> Option<Duration> {
        None
    }

    /// The controller is stopping: close sockets, say goodbye.
    fn shutdown(&mut self, _c: &mut Controller) {}
}
