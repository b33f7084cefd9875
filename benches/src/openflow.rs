//! `strato bench openflow`: how fast the OpenFlow 1.3 channel changes the switch.
//!
//! Two measurements, each against a fresh in-process controller ([`strato_switch::controller::start`])
//! with memory ports 1..=3 and `--workers` worker threads, reached only through the real channel
//! ([`strato_switch::ofchannel::listen`] on `127.0.0.1`, an ephemeral port) by an OpenFlow 1.3 client
//! built on [`strato_openflow::v13`]:
//!
//! - **flow_mods_per_s**: HELLO, then `--flows` distinct FLOW_MOD ADDs (table 0, priority 100,
//!   `ip,nw_dst=10.x.y.z -> output:2`), encoded beforehand and written as fast as the socket
//!   takes them (256 KiB writes, no waiting per message), then one BARRIER_REQUEST. The time runs
//!   from the first flow_mod byte written to the BARRIER_REPLY read. Afterwards the pipeline must
//!   hold exactly those rules (checked rule by rule on the controller thread).
//! - **revalidate_ms**: the pipeline holds `--megaflows` rules `ip,nw_dst=D_i -> output:2`; a
//!   traffic thread sends one UDP flow per rule into port 1 until every flow is a cached megaflow
//!   of its own (checked in the workers' megaflow dump) and comes out of port 2, and keeps sending.
//!   Then ONE flow_mod (ADD priority 200 `ip -> output:3`, followed by a barrier) is written;
//!   revalidate_ms is the time from writing it to the first moment every flow of the probe set
//!   has come out of port 3. The probe set is `--probes` flows spread evenly over all of them,
//!   interleaved into the traffic (one probe frame after every [`PROBE_EVERY`] others) so each
//!   probe is re-sent every `probes * (PROBE_EVERY + 1)` frames; the time until every one of the
//!   flows moved is reported beside it. A DELETE_STRICT of the rule then moves the traffic back
//!   (not timed) before the next of `--rounds` rounds; the median and max are reported.
//!
//! Contract: any OpenFlow ERROR reply, an unparseable reply, a timeout, a rule count other than
//! expected, or a megaflow count other than expected makes the run fail with a [`BenchOfError`]
//! that says what happened. Frames of a flow that leave by its old port after the same flow was
//! already seen on its new port (one traffic-loop pass of grace for frames in flight) are counted
//! as `stale_frames`. Nothing here asserts speed targets; [`table`] shows them beside the values.

use crossbeam::channel::{self, Receiver, Sender};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use strato_datapath::port::{FrameRing, MemPort, Port, PortKind};
use strato_datapath::worker::{IdlePolicy, WorkerConfig};
use strato_flowtable::key::Field;
use strato_flowtable::pipeline::{Action, OfPort, Pipeline, PortEnv};
use strato_flowtable::Match;
use strato_openflow::v13::{
    Action as OfAction, Body, ErrorMsg, FlowMod, HelloElem, Instruction, Match as OfMatch, Message,
    Oxm, OxmField,
};
use strato_openflow::{Header, OfError, HEADER_LEN, OFP13};
use strato_switch::controller::{start, ControlError, ControllerHandle, Running};
use strato_switch::ofchannel::{self, OfChannelError};

/// Target: flow_mods applied per second through one channel.
pub const TARGET_FLOW_MODS_PER_S: f64 = 200_000.0;
/// Target: milliseconds from a flow_mod to new behaviour on cached traffic.
pub const TARGET_REVALIDATE_MS: f64 = 10.0;
/// In the traffic, one probe frame follows every `PROBE_EVERY` frames of the full flow set.
pub const PROBE_EVERY: usize = 4;
/// Bytes per socket write while sending the flow_mods.
const WRITE_CHUNK: usize = 256 * 1024;
/// First destination address: flow `i` goes to `BASE_DST + 1 + i` (10.0.0.1, 10.0.0.2, ...).
const BASE_DST: u32 = 0x0a00_0000;
/// Frames the injection ring of port 1 holds (small: a deep queue would add its own latency).
const INJECT_SLOTS: usize = 256;
/// Frames each output ring holds (drained continuously).
const OUT_SLOTS: usize = 8192;
const OFP_NO_BUFFER: u32 = 0xffff_ffff;
const OFPP_ANY: u32 = 0xffff_ffff;
const OFPG_ANY: u32 = 0xffff_ffff;
const OFPFC_ADD: u8 = 0;
const OFPFC_DELETE_STRICT: u8 = 4;
/// The port the cached traffic leaves by before the change, and after it.
const OLD_PORT: u32 = 2;
const NEW_PORT: u32 = 3;

/// `strato bench openflow` options.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchOfArgs {
    /// Distinct flow_mod ADDs sent through one channel before the barrier.
    #[arg(long, default_value_t = 100_000)]
    pub flows: u32,
    /// Megaflows cached (one UDP flow each) when the behaviour-changing flow_mod is sent.
    #[arg(long, default_value_t = 10_000)]
    pub megaflows: u32,
    /// Revalidation rounds (median and max are reported).
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    /// Flows in the probe set revalidate_ms waits for (spread evenly over the megaflows).
    #[arg(long, default_value_t = 100)]
    pub probes: u32,
    /// Worker threads (1 or 2; with 2, port 1 is on worker 0 and ports 2 and 3 on worker 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub workers: u8,
    /// Seconds any one wait (barrier reply, traffic moving, warm-up) may take before failing.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Print only `{"flow_mods_per_s": f64, "revalidate_ms": f64}` (median) on stdout.
    #[arg(long)]
    pub json: bool,
}

impl Default for BenchOfArgs {
    fn default() -> Self {
        BenchOfArgs {
            flows: 100_000,
            megaflows: 10_000,
            rounds: 5,
            probes: 100,
            workers: 1,
            timeout: 120,
            json: false,
        }
    }
}

/// Why the benchmark failed. Each variant's doc comment is its message.
#[derive(Debug, displaydoc::Display, thiserror::Error)]
pub enum BenchOfError {
    /// bad arguments: {0}
    Args(String),
    /// controller: {0}
    Control(#[from] ControlError),
    /// OpenFlow listener: {0}
    Listen(#[from] OfChannelError),
    /// OpenFlow connection ({what}): {source}
    Io {
        /// What was being done.
        what: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// the switch broke the OpenFlow protocol: {0}
    Protocol(String),
    /// the switch broke the OpenFlow protocol: {0}
    Unreadable(#[from] ReadError),
    /// {phase}: the switch answered {count} message(s) with OpenFlow ERRORs; first: {first}
    OfErrors {
        /// Phase of the benchmark.
        phase: &'static str,
        /// Number of ERROR replies.
        count: usize,
        /// The first one, described.
        first: String,
    },
    /// timed out after {secs} s: {what}
    Timeout {
        /// What did not happen in time.
        what: String,
        /// The limit.
        secs: u64,
    },
    /// check failed: {0}
    Verify(String),
    /// could not start a thread: {0}
    Thread(#[source] std::io::Error),
}

/// The flow_mod rate measurement.
#[derive(Debug, Clone, Serialize)]
pub struct FlowModResult {
    /// flow_mods sent (all ADDs of distinct rules).
    pub flows: u32,
    /// Bytes of flow_mods on the wire.
    pub bytes: usize,
    /// Milliseconds until the last flow_mod byte was handed to the socket.
    pub write_ms: f64,
    /// Milliseconds from the first flow_mod byte to the BARRIER_REPLY.
    pub total_ms: f64,
    /// flows / total.
    pub flow_mods_per_s: f64,
    /// Rules in the pipeline after the barrier (checked equal to `flows`).
    pub rules_after: usize,
}

/// One revalidation round, in milliseconds from writing the flow_mod.
#[derive(Debug, Clone, Serialize)]
pub struct RoundResult {
    /// First frame of any flow out of the new port.
    pub first_ms: f64,
    /// Every probe flow out of the new port (the measured value).
    pub probes_ms: f64,
    /// Every flow out of the new port.
    pub all_ms: f64,
    /// BARRIER_REPLY (sent right after the flow_mod) read.
    pub barrier_ms: f64,
    /// Frames that left by the old port after their flow was seen on the new one.
    pub stale_frames: u64,
}

/// The revalidation measurement.
#[derive(Debug, Clone, Serialize)]
pub struct RevalResult {
    /// Megaflows cached (checked in the workers' dump before every round).
    pub megaflows: u32,
    /// Flows in the probe set.
    pub probes: u32,
    /// Frames between two frames of the same probe flow.
    pub probe_period_frames: usize,
    /// Frames in one pass over every flow (probes included).
    pub cycle_frames: usize,
    /// Each round.
    pub rounds: Vec<RoundResult>,
    /// Median of `probes_ms` over the rounds.
    pub median_ms: f64,
    /// Max of `probes_ms` over the rounds.
    pub max_ms: f64,
    /// Frames per second the traffic thread got through the switch while measuring.
    pub traffic_pps: f64,
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct BenchOfResult {
    /// Worker threads.
    pub workers: u8,
    /// flow_mod rate.
    pub flow_mods: FlowModResult,
    /// Revalidation latency.
    pub revalidate: RevalResult,
}

impl BenchOfResult {
    /// The `--json` object: `{"flow_mods_per_s": f64, "revalidate_ms": f64}` (the median).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "flow_mods_per_s": self.flow_mods.flow_mods_per_s,
            "revalidate_ms": self.revalidate.median_ms,
        })
    }
}

/// Runs both measurements. `progress` receives one line per step of the long phases.
pub fn run(
    args: &BenchOfArgs,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchOfResult, BenchOfError> {
    check_args(args)?;
    let flow_mods = bench_flow_mods(args, progress)?;
    let revalidate = bench_revalidate(args, progress)?;
    Ok(BenchOfResult {
        workers: args.workers,
        flow_mods,
        revalidate,
    })
}

fn check_args(a: &BenchOfArgs) -> Result<(), BenchOfError> {
    let bad = |s: &str| Err(BenchOfError::Args(s.to_string()));
    if a.flows == 0 || a.flows > 10_000_000 {
        return bad("--flows must be 1..=10000000");
    }
    if a.megaflows == 0 || a.megaflows > 1_000_000 {
        return bad("--megaflows must be 1..=1000000");
    }
    if a.rounds == 0 {
        return bad("--rounds must be at least 1");
    }
    if a.probes == 0 || a.probes > a.megaflows {
        return bad("--probes must be 1..=--megaflows");
    }
    if a.timeout == 0 {
        return bad("--timeout must be at least 1 second");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The switch under test.

/// A controller with memory ports 1..=3 (port 1 on worker 0, ports 2 and 3 on the last worker).
struct Switch {
    run: Running,
    /// Frames into port 1.
    inject: Arc<FrameRing>,
    /// Frames out of ports 2 and 3.
    out: [Arc<FrameRing>; 2],
}

impl Switch {
    fn start(p: Pipeline, workers: u8, megaflows: u32) -> Result<Switch, BenchOfError> {
        let mut env = PortEnv::default();
        for i in 1..=3 {
            env.add_port(i, true, true);
        }
        let cfg = WorkerConfig {
            megaflow_capacity: WorkerConfig::default()
                .megaflow_capacity
                .max(2 * megaflows as usize),
            idle: IdlePolicy::Backoff { max_sleep_us: 100 },
            ..WorkerConfig::default()
        };
        let run = start(p, env, vec![cfg; workers as usize])?;
        let inject = FrameRing::new(INJECT_SLOTS);
        let out = [FrameRing::new(OUT_SLOTS), FrameRing::new(OUT_SLOTS)];
        let last = workers as usize - 1;
        let ports = vec![
            (
                0,
                Port::new(
                    1,
                    "p1",
                    PortKind::Memory(MemPort::rings(inject.clone(), FrameRing::new(64))),
                ),
            ),
            (
                last,
                Port::new(
                    OLD_PORT,
                    "p2",
                    PortKind::Memory(MemPort::rings(FrameRing::new(64), out[0].clone())),
                ),
            ),
            (
                last,
                Port::new(
                    NEW_PORT,
                    "p3",
                    PortKind::Memory(MemPort::rings(FrameRing::new(64), out[1].clone())),
                ),
            ),
        ];
        run.handle.call(move |c| {
            for (w, p) in ports {
                c.add_port(w, p);
            }
        })?;
        run.handle.sync()?;
        Ok(Switch { run, inject, out })
    }

    fn handle(&self) -> ControllerHandle {
        self.run.handle.clone()
    }
}

fn dst(i: u32) -> u32 {
    BASE_DST + 1 + i
}

fn rule_match(i: u32) -> Match {
    Match::default()
        .with(Field::EthType, 0x0800)
        .with(Field::Ipv4Dst, u128::from(dst(i)))
}

fn flow_mod(command: u8, priority: u16, fields: Vec<Oxm>, out_port: Option<u32>) -> FlowMod {
    FlowMod {
        cookie: 0,
        cookie_mask: 0,
        table_id: 0,
        command,
        idle_timeout: 0,
        hard_timeout: 0,
        priority,
        buffer_id: OFP_NO_BUFFER,
        out_port: OFPP_ANY,
        out_group: OFPG_ANY,
        flags: 0,
        match_: OfMatch { fields },
        instructions: out_port
            .map(|port| {
                vec![Instruction::ApplyActions(vec![OfAction::Output {
                    port,
                    max_len: 0,
                }])]
            })
            .unwrap_or_default(),
    }
}

fn ip_fields(dst: Option<u32>) -> Vec<Oxm> {
    let mut v = vec![Oxm::basic(OxmField::EthType, 0x0800)];
    if let Some(d) = dst {
        v.push(Oxm::basic(OxmField::Ipv4Dst, u128::from(d)));
    }
    v
}

// ---------------------------------------------------------------------------------------------
// The OpenFlow 1.3 client.

/// A message read from the switch, stamped when it was parsed.
struct Incoming {
    at: Instant,
    msg: Result<Message, ReadError>,
}

/// Bytes from the switch that are not an OpenFlow message.
#[derive(Debug, displaydoc::Display, thiserror::Error)]
pub enum ReadError {
    /// unreadable message header: {0}
    Header(#[source] OfError),
    /// unparseable message (type {type_}): {source}
    Message {
        /// The header's message type.
        type_: u8,
        /// What the codec found wrong.
        source: OfError,
    },
}

struct OfClient {
    s: TcpStream,
    rx: Receiver<Incoming>,
    reader: Option<JoinHandle<()>>,
    /// ERROR replies seen so far (xid, type, code).
    errors: Vec<(u32, u16, u16)>,
}

impl OfClient {
    fn connect(addr: SocketAddr) -> Result<OfClient, BenchOfError> {
        let io = |what| move |source| BenchOfError::Io { what, source };
        let s = TcpStream::connect(addr).map_err(io("connect"))?;
        s.set_nodelay(true).map_err(io("set TCP_NODELAY"))?;
        let r = s.try_clone().map_err(io("clone the socket"))?;
        let (tx, rx) = channel::unbounded();
        let reader = std::thread::Builder::new()
            .name("benchof-rx".into())
            .spawn(move || read_loop(r, tx))
            .map_err(BenchOfError::Thread)?;
        Ok(OfClient {
            s,
            rx,
            reader: Some(reader),
            errors: Vec::new(),
        })
    }

    fn write(&mut self, b: &[u8]) -> Result<(), BenchOfError> {
        self.s.write_all(b).map_err(|source| BenchOfError::Io {
            what: "write",
            source,
        })
    }

    /// Sends HELLO (1.3 only) and waits for the switch's HELLO.
    fn hello(&mut self, timeout: Duration) -> Result<(), BenchOfError> {
        let m = Message::new(
            0,
            Body::Hello(vec![HelloElem::VersionBitmap(vec![1 << OFP13])]),
        );
        self.write(&m.emit())?;
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.next(deadline, "the switch's HELLO")?;
            match m.body {
                Body::Hello(els) => {
                    let bitmap_ok = els.iter().all(|e| match e {
                        HelloElem::VersionBitmap(w) => {
                            w.first().is_some_and(|w| w & 1 << OFP13 != 0)
                        }
                        HelloElem::Unknown { .. } => true,
                    });
                    return if bitmap_ok {
                        Ok(())
                    } else {
                        Err(BenchOfError::Protocol(
                            "the switch's HELLO does not offer OpenFlow 1.3".into(),
                        ))
                    };
                }
                Body::Error(e) => {
                    return Err(BenchOfError::Protocol(format!(
                        "the switch answered HELLO with an ERROR: {}",
                        describe_error(m.xid, &e)
                    )))
                }
                _ => {}
            }
        }
    }

    /// The next message (answering ECHO_REQUESTs and recording ERRORs on the way).
    fn next(&mut self, deadline: Instant, waiting_for: &str) -> Result<Message, BenchOfError> {
        Ok(self.next_stamped(deadline, waiting_for)?.1)
    }

    fn next_stamped(
        &mut self,
        deadline: Instant,
        waiting_for: &str,
    ) -> Result<(Instant, Message), BenchOfError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let inc = match self.rx.recv_timeout(left) {
                Ok(i) => i,
                Err(channel::RecvTimeoutError::Timeout) => {
                    return Err(BenchOfError::Timeout {
                        what: format!("waiting for {waiting_for}"),
                        secs: left.as_secs().max(1),
                    })
                }
                Err(channel::RecvTimeoutError::Disconnected) => {
                    return Err(BenchOfError::Protocol(format!(
                        "the switch closed the connection while we waited for {waiting_for}"
                    )))
                }
            };
            let m = inc.msg?;
            match &m.body {
                Body::EchoRequest(d) => {
                    let r = Message::new(m.xid, Body::EchoReply(d.clone()));
                    self.write(&r.emit())?;
                }
                Body::Error(ErrorMsg::Standard { type_, code, .. }) => {
                    self.errors.push((m.xid, *type_, *code));
                }
                Body::Error(ErrorMsg::Experimenter { exp_type, .. }) => {
                    self.errors.push((m.xid, 0xffff, *exp_type));
                }
                _ => return Ok((inc.at, m)),
            }
        }
    }

    /// Waits for the BARRIER_REPLY with `xid`; returns when it was read. Asynchronous messages
    /// (port status, packet-in, flow removed) are skipped; any other reply is a protocol error
    /// (nothing else was asked).
    fn barrier_reply(&mut self, xid: u32, deadline: Instant) -> Result<Instant, BenchOfError> {
        loop {
            let (at, m) = self.next_stamped(deadline, "the BARRIER_REPLY")?;
            match m.body {
                Body::BarrierReply if m.xid == xid => return Ok(at),
                Body::PortStatus { .. } | Body::PacketIn(_) | Body::FlowRemoved(_) => {}
                other => {
                    return Err(BenchOfError::Protocol(format!(
                        "unexpected reply (xid {}) while waiting for BARRIER_REPLY {xid}: \
                         {other:?}",
                        m.xid
                    )))
                }
            }
        }
    }

    /// Fails if any ERROR arrived (and forgets them).
    fn check_errors(&mut self, phase: &'static str) -> Result<(), BenchOfError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let errs = std::mem::take(&mut self.errors);
        let (xid, t, c) = errs[0];
        Err(BenchOfError::OfErrors {
            phase,
            count: errs.len(),
            first: format!("xid {xid}: type {t} ({}) code {c}", error_type_name(t)),
        })
    }
}

impl Drop for OfClient {
    fn drop(&mut self) {
        let _ = self.s.shutdown(Shutdown::Both);
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

fn error_type_name(t: u16) -> &'static str {
    match t {
        0 => "hello_failed",
        1 => "bad_request",
        2 => "bad_action",
        3 => "bad_instruction",
        4 => "bad_match",
        5 => "flow_mod_failed",
        6 => "group_mod_failed",
        7 => "port_mod_failed",
        8 => "table_mod_failed",
        9 => "queue_op_failed",
        10 => "switch_config_failed",
        11 => "role_request_failed",
        12 => "meter_mod_failed",
        13 => "table_features_failed",
        0xffff => "experimenter",
        _ => "unknown",
    }
}

fn describe_error(xid: u32, e: &ErrorMsg) -> String {
    match e {
        ErrorMsg::Standard { type_, code, .. } => {
            format!(
                "xid {xid}: type {type_} ({}) code {code}",
                error_type_name(*type_)
            )
        }
        ErrorMsg::Experimenter {
            exp_type,
            experimenter,
            ..
        } => format!("xid {xid}: experimenter {experimenter:#x} type {exp_type}"),
    }
}

/// Reads messages until EOF or an error; frames by the header length, parses with the codec.
fn read_loop(mut s: TcpStream, tx: Sender<Incoming>) {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut off = 0;
        while buf.len() - off >= HEADER_LEN {
            let h = match Header::parse(&buf[off..]) {
                Ok(h) => h,
                Err(e) => {
                    let _ = tx.send(Incoming {
                        at: Instant::now(),
                        msg: Err(ReadError::Header(e)),
                    });
                    return;
                }
            };
            let len = h.length as usize;
            if buf.len() - off < len {
                break;
            }
            let msg = Message::parse(&buf[off..off + len]).map_err(|source| ReadError::Message {
                type_: h.type_,
                source,
            });
            off += len;
            if tx
                .send(Incoming {
                    at: Instant::now(),
                    msg,
                })
                .is_err()
            {
                return;
            }
        }
        buf.drain(..off);
    }
}

// ---------------------------------------------------------------------------------------------
// flow_mods per second.

fn bench_flow_mods(
    args: &BenchOfArgs,
    progress: &mut dyn FnMut(&str),
) -> Result<FlowModResult, BenchOfError> {
    let timeout = Duration::from_secs(args.timeout);
    let flows = args.flows;
    progress(&format!(
        "flow_mods: starting a controller ({} worker(s), memory ports) and its OpenFlow channel",
        args.workers
    ));
    let sw = Switch::start(Pipeline::default(), args.workers, 0)?;
    let ch = ofchannel::listen("ptcp:0:127.0.0.1", sw.handle())?;
    let mut c = OfClient::connect(ch.local_addr())?;
    c.hello(timeout)?;
    let mut wire = Vec::with_capacity(flows as usize * 96 + 16);
    for i in 0..flows {
        let fm = flow_mod(OFPFC_ADD, 100, ip_fields(Some(dst(i))), Some(OLD_PORT));
        wire.extend_from_slice(&Message::new(i + 1, Body::FlowMod(fm)).emit());
    }
    let bytes = wire.len();
    let bxid = flows + 1;
    wire.extend_from_slice(&Message::new(bxid, Body::BarrierRequest).emit());
    progress(&format!(
        "flow_mods: writing {flows} flow_mod ADDs ({bytes} bytes) and a barrier"
    ));

    let t0 = Instant::now();
    let mut last = t0;
    for (k, chunk) in wire.chunks(WRITE_CHUNK).enumerate() {
        c.write(chunk)?;
        if last.elapsed() >= Duration::from_secs(2) {
            last = Instant::now();
            progress(&format!(
                "flow_mods: {} of {} bytes written after {:.1} s",
                ((k + 1) * WRITE_CHUNK).min(wire.len()),
                wire.len(),
                t0.elapsed().as_secs_f64()
            ));
        }
        if t0.elapsed() > timeout {
            return Err(BenchOfError::Timeout {
                what: "writing the flow_mods (the switch stopped reading)".into(),
                secs: args.timeout,
            });
        }
    }
    let wrote = t0.elapsed();
    let t1 = c.barrier_reply(bxid, t0 + timeout)?;
    c.check_errors("flow_mods")?;
    let total = t1.duration_since(t0);

    // Exactly the expected rules: `flows` of them, each `ip,nw_dst=D_i -> output:2` at priority
    // 100 in table 0, all distinct.
    let (rules, good) = sw.handle().call(move |ctl| {
        let p = ctl.pipeline();
        let mut seen = vec![false; flows as usize];
        let want = vec![Action::Output(OfPort::Port(OLD_PORT))];
        let mut good = 0usize;
        for r in p.rules() {
            let (d, _) = r.matching.field(Field::Ipv4Dst);
            let Some(i) = u32::try_from(d)
                .ok()
                .and_then(|d| d.checked_sub(BASE_DST + 1))
                .filter(|&i| i < flows)
            else {
                continue;
            };
            if r.table == 0
                && r.priority == 100
                && r.matching == rule_match(i)
                && r.instructions.apply_actions == want
                && r.instructions.goto_table.is_none()
                && !std::mem::replace(&mut seen[i as usize], true)
            {
                good += 1;
            }
        }
        (p.len(), good)
    })?;
    if rules != flows as usize || good != flows as usize {
        return Err(BenchOfError::Verify(format!(
            "after the barrier the pipeline holds {rules} rules, {good} of them the expected \
             distinct ones; expected exactly {flows}"
        )));
    }
    let secs = total.as_secs_f64();
    let r = FlowModResult {
        flows,
        bytes,
        write_ms: wrote.as_secs_f64() * 1e3,
        total_ms: secs * 1e3,
        flow_mods_per_s: f64::from(flows) / secs,
        rules_after: rules,
    };
    progress(&format!(
        "flow_mods: {} applied in {:.1} ms (written in {:.1} ms): {:.0} flow_mods/s; pipeline holds \
         exactly them",
        flows, r.total_ms, r.write_ms, r.flow_mods_per_s
    ));
    drop(c);
    drop(ch);
    sw.run.stop();
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Revalidation latency.

enum TrafficCmd {
    /// Start recording when each flow first comes out of `port`; ack on `ready`.
    Watch {
        port: u32,
        ready: Sender<()>,
    },
    Stop,
}

/// When the traffic of a watch moved.
#[derive(Debug, Clone, Copy)]
struct Moved {
    first: Instant,
    probes: Instant,
    all: Instant,
    stale: u64,
    /// Frames received from ports 2 and 3 between the start of the watch and `all`.
    frames: u64,
    /// When the watch started.
    since: Instant,
}

struct Watch {
    port: u32,
    /// Loop pass in which each flow was first seen on `port` (0: not yet).
    seen: Vec<u64>,
    left_all: usize,
    left_probes: usize,
    first: Option<Instant>,
    probes: Option<Instant>,
    stale: u64,
    frames: u64,
    since: Instant,
}

struct Traffic {
    cmds: Sender<TrafficCmd>,
    moved: Receiver<Moved>,
    /// Flows moved in the current watch (for timeout messages).
    progress: Arc<AtomicU64>,
    thread: Option<JoinHandle<(u64, u64)>>,
}

/// Ethernet/IPv4/UDP frame of flow `i` (only the IPv4 destination differs between flows).
fn frame(i: u32) -> Vec<u8> {
    crate::pipeline::udp_frame(
        [0x02, 0, 0, 0, 0, 1],
        [0x02, 0, 0, 0, 0, 2],
        [10, 255, 0, 1],
        dst(i).to_be_bytes(),
        1000,
        9,
    )
}

/// The flow a frame belongs to (None: not one of ours).
fn flow_of(f: &[u8], n: u32) -> Option<u32> {
    let p = etherparse::SlicedPacket::from_ethernet(f).ok()?;
    let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
        return None;
    };
    let d = u32::from_be_bytes(ip.header().destination());
    d.checked_sub(BASE_DST + 1).filter(|&i| i < n)
}

/// Probe flows: `probes` flows spread evenly over `n`.
fn probe_set(n: u32, probes: u32) -> Vec<u32> {
    (0..probes)
        .map(|k| (u64::from(k) * u64::from(n) / u64::from(probes)) as u32)
        .collect()
}

/// The order frames are sent in: every flow once, one probe frame after every `PROBE_EVERY`.
fn send_order(n: u32, probes: &[u32]) -> Vec<u32> {
    let mut v = Vec::with_capacity(n as usize * (PROBE_EVERY + 1) / PROBE_EVERY + 1);
    let mut p = 0;
    for i in 0..n {
        v.push(i);
        if (i as usize + 1).is_multiple_of(PROBE_EVERY) {
            v.push(probes[p % probes.len()]);
            p += 1;
        }
    }
    v
}

impl Traffic {
    fn start(sw: &Switch, n: u32, probes: &[u32]) -> Result<Traffic, BenchOfError> {
        let (cmd_tx, cmd_rx) = channel::unbounded();
        let (moved_tx, moved_rx) = channel::unbounded();
        let progress = Arc::new(AtomicU64::new(0));
        let frames: Vec<Vec<u8>> = (0..n).map(frame).collect();
        let order = send_order(n, probes);
        let mut is_probe = vec![false; n as usize];
        for &p in probes {
            is_probe[p as usize] = true;
        }
        let n_probes = probes.len();
        let inject = sw.inject.clone();
        let out = sw.out.clone();
        let prog = progress.clone();
        let thread = std::thread::Builder::new()
            .name("benchof-traffic".into())
            .spawn(move || {
                traffic_loop(TrafficLoop {
                    frames,
                    order,
                    is_probe,
                    n_probes,
                    inject,
                    out,
                    cmds: cmd_rx,
                    moved: moved_tx,
                    progress: prog,
                })
            })
            .map_err(BenchOfError::Thread)?;
        Ok(Traffic {
            cmds: cmd_tx,
            moved: moved_rx,
            progress,
            thread: Some(thread),
        })
    }

    /// Starts watching `port`; returns once the traffic thread is watching.
    fn watch(&self, port: u32) -> Result<(), BenchOfError> {
        let (tx, rx) = channel::bounded(1);
        let dead = || BenchOfError::Verify("the traffic thread stopped".into());
        self.cmds
            .send(TrafficCmd::Watch { port, ready: tx })
            .map_err(|_| dead())?;
        rx.recv().map_err(|_| dead())
    }

    fn wait_moved(&self, port: u32, n: u32, timeout: Duration) -> Result<Moved, BenchOfError> {
        self.moved
            .recv_timeout(timeout)
            .map_err(|_| BenchOfError::Timeout {
                what: format!(
                    "only {} of {n} flows came out of port {port}",
                    self.progress.load(Ordering::Relaxed)
                ),
                secs: timeout.as_secs(),
            })
    }

    /// Stops the thread; returns (frames sent, frames received).
    fn stop(mut self) -> (u64, u64) {
        let _ = self.cmds.send(TrafficCmd::Stop);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or((0, 0))
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        let _ = self.cmds.send(TrafficCmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct TrafficLoop {
    frames: Vec<Vec<u8>>,
    order: Vec<u32>,
    is_probe: Vec<bool>,
    n_probes: usize,
    inject: Arc<FrameRing>,
    out: [Arc<FrameRing>; 2],
    cmds: Receiver<TrafficCmd>,
    moved: Sender<Moved>,
    progress: Arc<AtomicU64>,
}

/// Injects frames into port 1 as fast as it takes them and reads ports 2 and 3, recording for
/// the current watch when each flow first leaves by the watched port.
fn traffic_loop(t: TrafficLoop) -> (u64, u64) {
    let n = t.frames.len();
    let (mut sent, mut received) = (0u64, 0u64);
    let mut pos = 0usize;
    let mut pass = 0u64;
    let mut watch: Option<Watch> = None;
    loop {
        pass += 1;
        match t.cmds.try_recv() {
            Ok(TrafficCmd::Watch { port, ready }) => {
                t.progress.store(0, Ordering::Relaxed);
                watch = Some(Watch {
                    port,
                    seen: vec![0; n],
                    left_all: n,
                    left_probes: t.n_probes,
                    first: None,
                    probes: None,
                    stale: 0,
                    frames: 0,
                    since: Instant::now(),
                });
                let _ = ready.send(());
            }
            Ok(TrafficCmd::Stop) | Err(channel::TryRecvError::Disconnected) => break,
            Err(channel::TryRecvError::Empty) => {}
        }
        let mut full = false;
        for _ in 0..64 {
            if t.inject.push(&t.frames[t.order[pos] as usize]).is_err() {
                full = true;
                break;
            }
            sent += 1;
            pos = (pos + 1) % t.order.len();
        }
        let now = Instant::now();
        let mut got = 0;
        for (k, ring) in t.out.iter().enumerate() {
            let port = if k == 0 { OLD_PORT } else { NEW_PORT };
            while let Some(f) = ring.pop() {
                got += 1;
                let Some(w) = watch.as_mut() else { continue };
                let Some(i) = flow_of(&f, n as u32) else {
                    continue;
                };
                let i = i as usize;
                if port != w.port {
                    // Old port: stale if this flow already left by the new one two passes ago
                    // or earlier (frames of the pass before may have been in flight).
                    if w.seen[i] != 0 && pass >= w.seen[i] + 2 {
                        w.stale += 1;
                    }
                    continue;
                }
                if w.seen[i] != 0 {
                    continue;
                }
                w.seen[i] = pass;
                w.first.get_or_insert(now);
                w.left_all -= 1;
                t.progress.fetch_add(1, Ordering::Relaxed);
                if t.is_probe[i] {
                    w.left_probes -= 1;
                    if w.left_probes == 0 {
                        w.probes = Some(now);
                    }
                }
            }
        }
        received += got;
        if let Some(w) = watch.as_mut() {
            w.frames += got;
        }
        if watch.as_ref().is_some_and(|w| w.left_all == 0) {
            if let Some(w) = watch.take() {
                let first = w.first.unwrap_or(now);
                let _ = t.moved.send(Moved {
                    first,
                    probes: w.probes.unwrap_or(now),
                    all: now,
                    stale: w.stale,
                    frames: w.frames,
                    since: w.since,
                });
            }
        }
        if full && got == 0 {
            std::thread::yield_now();
        }
    }
    (sent, received)
}

/// Megaflows cached over all workers (from the workers' own dump).
fn cached_megaflows(h: &ControllerHandle) -> Result<usize, BenchOfError> {
    Ok(h.dump_flows()?.iter().map(|d| d.flows.len()).sum())
}

fn ms(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1e3
}

fn bench_revalidate(
    args: &BenchOfArgs,
    progress: &mut dyn FnMut(&str),
) -> Result<RevalResult, BenchOfError> {
    let timeout = Duration::from_secs(args.timeout);
    let n = args.megaflows;
    progress(&format!(
        "revalidate: {n} rules ip,nw_dst=D -> output:{OLD_PORT}, a controller with {} worker(s)",
        args.workers
    ));
    let mut p = Pipeline::default();
    for i in 0..n {
        p.add_apply(
            0,
            100,
            rule_match(i),
            vec![Action::Output(OfPort::Port(OLD_PORT))],
        )
        .map_err(|e| BenchOfError::Verify(format!("building the pipeline: {e}")))?;
    }
    let sw = Switch::start(p, args.workers, n)?;
    let h = sw.handle();
    let ch = ofchannel::listen("ptcp:0:127.0.0.1", h.clone())?;
    let mut c = OfClient::connect(ch.local_addr())?;
    c.hello(timeout)?;

    let probes = probe_set(n, args.probes);
    let order_len = send_order(n, &probes).len();
    let traffic = Traffic::start(&sw, n, &probes)?;
    progress(&format!(
        "revalidate: sending {n} UDP flows into port 1 until each is a cached megaflow"
    ));
    traffic.watch(OLD_PORT)?;
    traffic.wait_moved(OLD_PORT, n, timeout)?;
    let t = Instant::now();
    loop {
        let cached = cached_megaflows(&h)?;
        if cached == n as usize {
            break;
        }
        if cached > n as usize {
            return Err(BenchOfError::Verify(format!(
                "{cached} megaflows cached for {n} flows: the flows do not each get their own"
            )));
        }
        if t.elapsed() > timeout {
            return Err(BenchOfError::Timeout {
                what: format!("only {cached} of {n} megaflows cached"),
                secs: args.timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    progress(&format!(
        "revalidate: {n} megaflows cached, every flow out of port {OLD_PORT}"
    ));

    let change = Message::new(
        1,
        Body::FlowMod(flow_mod(OFPFC_ADD, 200, ip_fields(None), Some(NEW_PORT))),
    )
    .emit();
    let undo = Message::new(
        3,
        Body::FlowMod(flow_mod(OFPFC_DELETE_STRICT, 200, ip_fields(None), None)),
    )
    .emit();
    let barrier = |xid| Message::new(xid, Body::BarrierRequest).emit();
    let mut rounds = Vec::new();
    let (mut frames, mut frames_t) = (0u64, Duration::ZERO);
    for round in 1..=args.rounds {
        let cached = cached_megaflows(&h)?;
        if cached != n as usize {
            return Err(BenchOfError::Verify(format!(
                "round {round}: {cached} megaflows cached, expected {n}"
            )));
        }
        traffic.watch(NEW_PORT)?;
        let mut msg = change.clone();
        msg.extend_from_slice(&barrier(2));
        let t0 = Instant::now();
        c.write(&msg)?;
        let tb = c.barrier_reply(2, t0 + timeout)?;
        c.check_errors("revalidate: the changing flow_mod")?;
        let m = traffic.wait_moved(NEW_PORT, n, timeout)?;
        let r = RoundResult {
            first_ms: ms(t0, m.first),
            probes_ms: ms(t0, m.probes),
            all_ms: ms(t0, m.all),
            barrier_ms: ms(t0, tb),
            stale_frames: m.stale,
        };
        frames += m.frames;
        frames_t += m.all.saturating_duration_since(m.since);
        progress(&format!(
            "revalidate: round {round}/{}: first frame on port {NEW_PORT} after {:.2} ms, all \
             {} probes {:.2} ms, all {n} flows {:.2} ms, barrier reply {:.2} ms, stale frames {}",
            args.rounds,
            r.first_ms,
            args.probes,
            r.probes_ms,
            r.all_ms,
            r.barrier_ms,
            r.stale_frames
        ));
        rounds.push(r);

        // Back to port 2 (not timed), so the next round starts from the same state.
        traffic.watch(OLD_PORT)?;
        let mut msg = undo.clone();
        msg.extend_from_slice(&barrier(4));
        c.write(&msg)?;
        c.barrier_reply(4, Instant::now() + timeout)?;
        c.check_errors("revalidate: the undoing flow_mod")?;
        traffic.wait_moved(OLD_PORT, n, timeout)?;
    }
    let (sent, received) = traffic.stop();
    tracing::debug!(sent, received, "benchof traffic");
    let rules = h.call(|c| c.pipeline().len())?;
    if rules != n as usize {
        return Err(BenchOfError::Verify(format!(
            "after the rounds the pipeline holds {rules} rules, expected {n}"
        )));
    }
    let mut v: Vec<f64> = rounds.iter().map(|r| r.probes_ms).collect();
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    let max = v.last().copied().unwrap_or(0.0);
    drop(c);
    drop(ch);
    sw.run.stop();
    Ok(RevalResult {
        megaflows: n,
        probes: args.probes,
        probe_period_frames: args.probes as usize * (PROBE_EVERY + 1),
        cycle_frames: order_len,
        rounds,
        median_ms: median,
        max_ms: max,
        traffic_pps: if frames_t.is_zero() {
            0.0
        } else {
            frames as f64 / frames_t.as_secs_f64()
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Output.

fn fmt_int(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (k, ch) in s.chars().enumerate() {
        if k > 0 && (s.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The human summary: measured values beside the targets.
pub fn table(r: &BenchOfResult) -> String {
    use std::fmt::Write as _;
    let f = &r.flow_mods;
    let v = &r.revalidate;
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "strato bench openflow: OpenFlow 1.3 over TCP loopback to an in-process controller, \
         {} worker(s), memory ports",
        r.workers
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<46} {:>20} {:>14} {:>7}",
        "metric", "measured", "target", "status"
    );
    let _ = writeln!(
        s,
        "{:<46} {:>20} {:>14} {:>7}",
        format!(
            "flow_mods/s ({} ADDs + barrier)",
            fmt_int(f64::from(f.flows))
        ),
        fmt_int(f.flow_mods_per_s),
        format!(">= {}", fmt_int(TARGET_FLOW_MODS_PER_S)),
        met(f.flow_mods_per_s >= TARGET_FLOW_MODS_PER_S)
    );
    let _ = writeln!(
        s,
        "{:<46} {:>20} {:>14} {:>7}",
        format!(
            "revalidate ms ({} megaflows, median of {})",
            fmt_int(f64::from(v.megaflows)),
            v.rounds.len()
        ),
        format!("{:.2} (max {:.2})", v.median_ms, v.max_ms),
        format!("<= {TARGET_REVALIDATE_MS}"),
        met(v.median_ms <= TARGET_REVALIDATE_MS)
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "flow_mods: {} bytes written in {:.1} ms, barrier reply after {:.1} ms; the pipeline \
         then held exactly the {} rules",
        fmt_int(f.bytes as f64),
        f.write_ms,
        f.total_ms,
        fmt_int(f.rules_after as f64)
    );
    let _ = writeln!(
        s,
        "revalidate: ms from writing the flow_mod until every one of {} probe flows (spread \
         over the {}; each re-sent every {} frames) left by the new port:",
        v.probes,
        fmt_int(f64::from(v.megaflows)),
        v.probe_period_frames
    );
    let _ = writeln!(
        s,
        "  {:>5} {:>10} {:>10} {:>10} {:>10} {:>6}",
        "round", "first", "probes", "all flows", "barrier", "stale"
    );
    for (k, rr) in v.rounds.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {:>5} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>6}",
            k + 1,
            rr.first_ms,
            rr.probes_ms,
            rr.all_ms,
            rr.barrier_ms,
            rr.stale_frames
        );
    }
    let _ = writeln!(
        s,
        "  (\"all flows\" needs a whole pass of {} frames; traffic through the switch during the \
         rounds: {:.2} Mpps)",
        fmt_int(v.cycle_frames as f64),
        v.traffic_pps / 1e6
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_order_cover_every_flow() {
        let p = probe_set(10_000, 100);
        assert_eq!(p.len(), 100);
        assert_eq!((p[0], p[1], p[99]), (0, 100, 9900));
        let o = send_order(10_000, &p);
        assert_eq!(o.len(), 12_500);
        let mut seen = [false; 10_000];
        for &i in &o {
            seen[i as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        // Besides its own slot, each probe fills one of every `probes` probe slots (2,500 slots
        // for 100 probes: 25 times per pass, i.e. every 500 frames).
        assert_eq!(o.iter().filter(|&&i| i == 100).count(), 26);
        let slots: Vec<usize> = (0..o.len())
            .filter(|&k| k % (PROBE_EVERY + 1) == PROBE_EVERY && o[k] == 300)
            .collect();
        assert_eq!(slots.len(), 25);
        assert!(slots.windows(2).all(|w| w[1] - w[0] == 500), "{slots:?}");
        // The frames carry the flow they were built for.
        assert_eq!(flow_of(&frame(1234), 10_000), Some(1234));
        assert_eq!(flow_of(&frame(1234), 1000), None);
        assert_eq!(flow_of(&[0u8; 10], 10), None);
    }

    #[test]
    fn bad_arguments_are_refused() {
        for a in [
            BenchOfArgs {
                flows: 0,
                ..Default::default()
            },
            BenchOfArgs {
                probes: 20_000,
                ..Default::default()
            },
            BenchOfArgs {
                rounds: 0,
                ..Default::default()
            },
        ] {
            assert!(
                matches!(check_args(&a), Err(BenchOfError::Args(_))),
                "{a:?}"
            );
        }
        assert!(check_args(&BenchOfArgs::default()).is_ok());
    }

    #[test]
    fn error_replies_fail_the_run() {
        let sw = Switch::start(Pipeline::default(), 1, 0).unwrap();
        let ch = ofchannel::listen("ptcp:0:127.0.0.1", sw.handle()).unwrap();
        let mut c = OfClient::connect(ch.local_addr()).unwrap();
        c.hello(Duration::from_secs(10)).unwrap();
        // An ADD to OFPTT_ALL (table 0xff) must be refused with an ERROR.
        let mut fm = flow_mod(OFPFC_ADD, 100, ip_fields(Some(dst(0))), Some(OLD_PORT));
        fm.table_id = 0xff;
        let mut wire = Message::new(7, Body::FlowMod(fm)).emit();
        wire.extend_from_slice(&Message::new(8, Body::BarrierRequest).emit());
        c.write(&wire).unwrap();
        c.barrier_reply(8, Instant::now() + Duration::from_secs(10))
            .unwrap();
        match c.check_errors("test") {
            Err(BenchOfError::OfErrors { count, first, .. }) => {
                assert_eq!(count, 1);
                assert!(
                    first.starts_with("xid 7: type 5 (flow_mod_failed)"),
                    "{first}"
                );
            }
            other => panic!("expected the ERROR to be reported, got {other:?}"),
        }
        assert!(c.check_errors("test").is_ok());
    }

    #[test]
    fn whole_bench_with_tiny_counts() {
        let args = BenchOfArgs {
            flows: 2_000,
            megaflows: 500,
            rounds: 1,
            probes: 50,
            timeout: 60,
            ..Default::default()
        };
        let mut lines = Vec::new();
        let r = run(&args, &mut |l: &str| lines.push(l.to_string())).unwrap();
        // Every flow_mod applied (the run checks the pipeline rule by rule; this is its record).
        assert_eq!(r.flow_mods.flows, 2_000);
        assert_eq!(r.flow_mods.rules_after, 2_000);
        assert!(r.flow_mods.flow_mods_per_s > 0.0 && r.flow_mods.total_ms > 0.0);
        // The behaviour change was observed: every flow left by the new port, probes no later
        // than all flows, never a frame by the old port after its flow moved.
        let v = &r.revalidate;
        assert_eq!((v.megaflows, v.probes, v.rounds.len()), (500, 50, 1));
        let rr = &v.rounds[0];
        assert!(
            rr.first_ms <= rr.probes_ms && rr.probes_ms <= rr.all_ms,
            "{rr:?}"
        );
        assert_eq!(rr.stale_frames, 0);
        assert_eq!(v.median_ms, rr.probes_ms);
        // Output: exactly the two keys, and a table with both targets.
        let j = r.json();
        let o = j.as_object().unwrap();
        assert_eq!(o.len(), 2);
        assert!(o["flow_mods_per_s"].as_f64().unwrap() > 0.0);
        assert!(o["revalidate_ms"].as_f64().unwrap() > 0.0);
        let t = table(&r);
        assert!(t.contains(">= 200,000") && t.contains("<= 10"), "{t}");
        assert!(lines.iter().any(|l| l.contains("round 1/1")), "{lines:?}");
    }
}
