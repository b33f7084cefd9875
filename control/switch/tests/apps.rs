//! The App seam on a real controller thread with a real worker over memory ports: punts go to
//! the app owning their rule's cookie (and only to it), frames nobody owns stay packet-in
//! material, every event reaches every app once and in order (an app that causes one while it
//! runs hears it when its call returns), and apps are found, replaced and removed by type.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strato_datapath::port::{FrameRing, MemPort, Port, PortKind};
use strato_datapath::worker::WorkerConfig;
use strato_flowtable::pipeline::{
    Action, AddOptions, Instructions, OfPort, Pipeline, PortEnv, RemovalReason, RuleFilter,
    RuleSpec,
};
use strato_flowtable::{Match, PortNo};
use strato_switch::app::{App, AppEvent, PortChange, Punt, Readiness};
use strato_switch::controller::{start, Controller, Running};

const WAIT: Duration = Duration::from_secs(5);
const OWNED: u64 = 0xa11c_e000_0000_0001;
const UNOWNED: u64 = 0xb0b0_0000_0000_0002;

/// What a recording app saw, shared with the test.
#[derive(Default, Debug)]
struct Seen {
    punts: Vec<(PortNo, Vec<u8>)>,
    events: Vec<String>,
    runs: u64,
}

/// Records everything; owns `OWNED`; when `remove_on_run` is set, its next run deletes every
/// rule with cookie `UNOWNED` and reports them with `note_removed`.
struct Recorder {
    seen: Arc<Mutex<Seen>>,
    remove_on_run: Arc<Mutex<bool>>,
}

impl App for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn owns_cookie(&self, cookie: u64) -> bool {
        cookie == OWNED
    }
    fn packet_in(&mut self, _c: &mut Controller, punt: Punt<'_>) {
        self.seen
            .lock()
            .unwrap()
            .punts
            .push((punt.in_port, punt.frame.to_vec()));
    }
    fn event(&mut self, _c: &mut Controller, ev: &AppEvent) {
        let s = match ev {
            AppEvent::Port { no, change } => format!("port {no} {change:?}"),
            AppEvent::RulesRemoved(r) => format!(
                "removed {} {:?}",
                r.len(),
                r.iter().map(|(_, why)| *why).collect::<Vec<_>>()
            ),
        };
        self.seen.lock().unwrap().events.push(s);
    }
    fn run(&mut self, c: &mut Controller, _ready: &[Readiness]) -> bool {
        self.seen.lock().unwrap().runs += 1;
        if std::mem::take(&mut *self.remove_on_run.lock().unwrap()) {
            let f = RuleFilter::loose(None, Match::default()).cookie(UNOWNED, u64::MAX);
            let gone = c.change(|p, _| p.delete(&f)).unwrap();
            c.note_removed(gone, RemovalReason::Delete);
        }
        false
    }
}

/// A second app type that only counts events.
#[derive(Default)]
struct Counter {
    events: usize,
}

impl App for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }
    fn event(&mut self, _c: &mut Controller, _ev: &AppEvent) {
        self.events += 1;
    }
}

fn frame(src: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0xee, 0x02, 0, 0, 0, 0, src, 0x88, 0xb5];
    f.extend_from_slice(&[src; 46]);
    f
}

/// Rules: frames from port 1 punt with `OWNED`, frames from port 2 punt with `UNOWNED`.
fn pipeline() -> Pipeline {
    let mut p = Pipeline::default();
    for (port, cookie) in [(1u32, OWNED), (2, UNOWNED)] {
        let m = Match::default().with(strato_flowtable::Field::InPort, port as u128);
        let mut spec = RuleSpec::new(
            0,
            m,
            10,
            Instructions::apply(vec![Action::Output(OfPort::Controller { max_len: 128 })]),
        );
        spec.cookie = cookie;
        p.add(spec, AddOptions::default(), 0).unwrap();
    }
    p
}

struct Rig {
    run: Running,
    rx: Vec<Arc<FrameRing>>,
    seen: Arc<Mutex<Seen>>,
    remove_on_run: Arc<Mutex<bool>>,
}

fn rig() -> Rig {
    let mut env = PortEnv::default();
    for i in 1..=2 {
        env.add_port(i, true, true);
    }
    let run = start(pipeline(), env, vec![WorkerConfig::default()]).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let remove_on_run = Arc::new(Mutex::new(false));
    let app = Recorder {
        seen: seen.clone(),
        remove_on_run: remove_on_run.clone(),
    };
    run.handle
        .call(move |c| {
            assert!(c.set_app(app).is_none());
        })
        .unwrap();
    let mut rx = Vec::new();
    let mut ports = Vec::new();
    for i in 1..=2u32 {
        let (r, t) = (FrameRing::new(256), FrameRing::new(256));
        ports.push(Port::new(
            i,
            format!("p{i}"),
            PortKind::Memory(MemPort::rings(r.clone(), t)),
        ));
        rx.push(r);
    }
    run.handle
        .call(move |c| {
            for p in ports {
                c.add_port(0, p);
            }
        })
        .unwrap();
    run.handle.sync().unwrap();
    Rig {
        run,
        rx,
        seen,
        remove_on_run,
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn punts_go_to_the_owner_of_the_cookie_and_only_to_it() {
    let r = rig();
    r.rx[0].push(&frame(1)).unwrap();
    r.rx[1].push(&frame(2)).unwrap();
    wait_for("the owned punt", || {
        !r.seen.lock().unwrap().punts.is_empty()
    });
    let h = r.run.handle.clone();
    let mut pins = Vec::new();
    wait_for("the unowned packet-in", || {
        pins.extend(h.call(|c| c.take_packet_ins()).unwrap());
        !pins.is_empty()
    });
    let seen = r.seen.lock().unwrap();
    assert_eq!(
        seen.punts,
        vec![(1, frame(1))],
        "only port 1's frame is the app's"
    );
    assert_eq!(pins.len(), 1);
    assert_eq!((pins[0].in_port, pins[0].frame.clone()), (2, frame(2)));
    drop(seen);
    let stats = h.call(|c| c.stats()).unwrap();
    assert_eq!(stats.app_punts, 1);
    assert_eq!(stats.packet_ins, 1);
}

#[test]
fn events_reach_every_app_once_and_in_order() {
    let r = rig();
    let h = r.run.handle.clone();
    h.call(|c| c.set_app(Counter::default())).unwrap();
    h.call(|c| c.forget_port(2)).unwrap();
    h.call(|c| {
        assert!(c.del_port(2));
    })
    .unwrap();
    let counted = h.call(|c| c.app::<Counter>().map(|a| a.events)).unwrap();
    assert_eq!(
        counted,
        Some(2),
        "the counter was installed after the ports were added"
    );
    let events = r.seen.lock().unwrap().events.clone();
    assert_eq!(
        events,
        [
            "port 1 Added",
            "port 2 Added",
            "port 2 Forgotten",
            "port 2 Deleted"
        ]
    );
    let _ = PortChange::Down; // (a port going down by itself is covered by the tap tests)
}

#[test]
fn an_app_hears_the_events_it_caused_when_its_run_returns() {
    let r = rig();
    let h = r.run.handle.clone();
    let runs_before = r.seen.lock().unwrap().runs;
    *r.remove_on_run.lock().unwrap() = true;
    h.wake();
    wait_for("the app's run to delete the rule", || {
        r.seen
            .lock()
            .unwrap()
            .events
            .iter()
            .any(|e| e.starts_with("removed"))
    });
    let seen = r.seen.lock().unwrap();
    assert!(seen.runs > runs_before);
    let removed: Vec<&String> = seen
        .events
        .iter()
        .filter(|e| e.starts_with("removed"))
        .collect();
    assert_eq!(removed, ["removed 1 [Delete]"], "heard exactly once");
}

#[test]
fn apps_are_found_replaced_and_removed_by_type() {
    let r = rig();
    let h = r.run.handle.clone();
    h.call(|c| {
        assert!(c.app::<Counter>().is_none());
        assert!(c.set_app(Counter { events: 7 }).is_none());
        let old = c.set_app(Counter::default()).expect("replaced");
        assert_eq!(old.events, 7);
        assert_eq!(c.app::<Counter>().map(|a| a.events), Some(0));
        c.app_mut::<Counter>().unwrap().events = 3;
        assert_eq!(c.remove_app::<Counter>().map(|a| a.events), Some(3));
        assert!(c.app::<Counter>().is_none());
        assert!(c.app::<Recorder>().is_some(), "other apps stay");
    })
    .unwrap();
}
