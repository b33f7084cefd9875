//! An OpenFlow 1.3 channel: a TCP listener (`ptcp:PORT[:IP]`) that OpenFlow 1.3 controllers and
//! tools such as `ovs-ofctl -O OpenFlow13` use to read and change the controller's pipeline.
//!
//! Contract:
//! - [`listen`] binds, then serves every connection on its own thread. Each connection starts
//!   with a HELLO carrying a version bitmap; a peer without 1.3 in common gets
//!   `OFPET_HELLO_FAILED` and is closed.
//! - Served: ECHO, FEATURES, GET_CONFIG / SET_CONFIG, BARRIER (after [`ControllerHandle::sync`]),
//!   MULTIPART desc / port_desc / flow / aggregate, FLOW_MOD add / modify / modify_strict /
//!   delete / delete_strict (applied on the controller thread, then synced to the workers).
//! - Anything else is answered with the OpenFlow error the spec names (bad request / bad type,
//!   bad multipart, bad match, bad action, bad instruction, flow_mod failed) and the connection
//!   keeps working. Input never panics; a message whose length cannot be trusted (length field
//!   below the header size) closes only that connection.
//! - Match fields map to [`Field`]s (masks kept); OXM fields strato has no key for, and
//!   actions other than output / set-field / push-pop vlan / dec_ttl, are refused. Flow stats
//!   show rules with OXM fields in wire-number order; pipeline-only fields that OXM cannot
//!   express (registers, nw_ttl, nw_frag, tcp_flags, tunnel endpoints) are not shown.
//! - Dropping [`OfChannel`] stops the listener and every connection (within ~100 ms).

use crate::controller::ControllerHandle;
use crate::openflow::v13::{
    self, Action as OfAction, Body, ErrorMsg, FlowMod, FlowStats, FlowStatsRequest, HelloElem,
    Instruction, Match as OfMatch, Message, MultipartReply, MultipartRequest, Oxm, OxmField,
    SwitchConfig, SwitchFeatures,
};
use crate::openflow::{Header, OfError, Reader, HEADER_LEN, OFP13};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use strato_flowtable::flow_match::Match;
use strato_flowtable::key::Field;
use strato_flowtable::pipeline::{
    Action, AddOptions, Instructions, OfPort, PipelineError, Rule, RuleFilter, RuleFlags, RuleSpec,
};

/// Channel configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfConfig {
    /// Datapath id reported in FEATURES_REPLY.
    pub datapath_id: u64,
}

impl Default for OfConfig {
    fn default() -> Self {
        OfConfig { datapath_id: 1 }
    }
}

/// Errors starting the channel.
#[derive(Debug, thiserror::Error)]
pub enum OfChannelError {
    /// bad listen address `{0}`: use ptcp:PORT or ptcp:PORT:IP
    #[error("bad listen address `{0}`: use ptcp:PORT or ptcp:PORT:IP")]
    BadAddress(String),
    /// cannot listen on {addr}: {source} (is the port already in use?)
    #[error("cannot listen on {addr}: {source} (is the port already in use?)")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// A running channel; dropping it stops the listener and its connections.
pub struct OfChannel {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OfChannel {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for OfChannel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Parses `ptcp:PORT[:IP]` (IP defaults to 0.0.0.0; an IPv6 IP may be bracketed).
pub fn parse_addr(s: &str) -> Result<SocketAddr, OfChannelError> {
    let bad = || OfChannelError::BadAddress(s.to_string());
    let rest = s.strip_prefix("ptcp:").ok_or_else(bad)?;
    let (port, ip) = match rest.split_once(':') {
        Some((p, ip)) => (p, ip.trim_start_matches('[').trim_end_matches(']')),
        None => (rest, "0.0.0.0"),
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ip: std::net::IpAddr = ip.parse().map_err(|_| bad())?;
    Ok(SocketAddr::new(ip, port))
}

/// Listens on `addr` (`ptcp:PORT[:IP]`) with the default [`OfConfig`].
pub fn listen(addr: &str, handle: ControllerHandle) -> Result<OfChannel, OfChannelError> {
    listen_with(addr, handle, OfConfig::default())
}

/// Listens on `addr` (`ptcp:PORT[:IP]`) with `cfg`.
pub fn listen_with(
    addr: &str,
    handle: ControllerHandle,
    cfg: OfConfig,
) -> Result<OfChannel, OfChannelError> {
    let want = parse_addr(addr)?;
    let bind = |source| OfChannelError::Bind { addr: want, source };
    let l = TcpListener::bind(want).map_err(bind)?;
    l.set_nonblocking(true).map_err(bind)?;
    let local = l.local_addr().map_err(bind)?;
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ofchannel".into())
        .spawn(move || accept_loop(l, handle, cfg, st))
        .map_err(bind)?;
    Ok(OfChannel {
        addr: local,
        stop,
        thread: Some(thread),
    })
}

fn accept_loop(l: TcpListener, handle: ControllerHandle, cfg: OfConfig, stop: Arc<AtomicBool>) {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        match l.accept() {
            Ok((s, _)) => {
                let (h, st) = (handle.clone(), stop.clone());
                if let Ok(t) = std::thread::Builder::new()
                    .name("ofconn".into())
                    .spawn(move || {
                        let _ = Conn::new(s, h, cfg, st).map(|mut c| c.run());
                    })
                {
                    conns.push(t);
                }
                conns.retain(|t| !t.is_finished());
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    for t in conns {
        let _ = t.join();
    }
}

// OpenFlow 1.3 error types and codes.
const ET_HELLO_FAILED: u16 = 0;
const ET_BAD_REQUEST: u16 = 1;
const ET_BAD_ACTION: u16 = 2;
const ET_BAD_INSTRUCTION: u16 = 3;
const ET_BAD_MATCH: u16 = 4;
const ET_FLOW_MOD_FAILED: u16 = 5;
const HFC_INCOMPATIBLE: u16 = 0;
const HFC_EPERM: u16 = 1;
const BRC_BAD_VERSION: u16 = 0;
const BRC_BAD_TYPE: u16 = 1;
const BRC_BAD_MULTIPART: u16 = 2;
const BRC_BAD_LEN: u16 = 6;
const BRC_BAD_TABLE_ID: u16 = 9;
const BAC_BAD_TYPE: u16 = 0;
const BAC_BAD_OUT_PORT: u16 = 4;
const BAC_BAD_ARGUMENT: u16 = 5;
const BAC_BAD_SET_TYPE: u16 = 13;
const BAC_BAD_SET_ARGUMENT: u16 = 15;
const BIC_UNKNOWN_INST: u16 = 0;
const BIC_UNSUP_INST: u16 = 1;
const BIC_BAD_TABLE_ID: u16 = 2;
const BMC_BAD_TYPE: u16 = 0;
const BMC_BAD_FIELD: u16 = 6;
const BMC_BAD_PREREQ: u16 = 9;
const BMC_DUP_FIELD: u16 = 10;
const FMFC_UNKNOWN: u16 = 0;
const FMFC_BAD_TABLE_ID: u16 = 2;
const FMFC_OVERLAP: u16 = 3;
const FMFC_BAD_COMMAND: u16 = 6;

const OFPP_MAX: u32 = 0xffff_ff00;
const OFPP_IN_PORT: u32 = 0xffff_fff8;
const OFPP_FLOOD: u32 = 0xffff_fffb;
const OFPP_ALL: u32 = 0xffff_fffc;
const OFPP_CONTROLLER: u32 = 0xffff_fffd;
const OFPP_ANY: u32 = 0xffff_ffff;
const OFPTT_ALL: u8 = 0xff;
const OFPVID_PRESENT: u128 = 0x1000;

/// An OpenFlow error to send back: (type, code).
type OfErr = (u16, u16);

struct Conn {
    s: TcpStream,
    handle: ControllerHandle,
    cfg: OfConfig,
    stop: Arc<AtomicBool>,
    buf: Vec<u8>,
    hello_done: bool,
    switch_cfg: SwitchConfig,
}

impl Conn {
    fn new(
        s: TcpStream,
        handle: ControllerHandle,
        cfg: OfConfig,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Conn> {
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        // A peer that stops reading must not pin this thread (and Drop) forever.
        s.set_write_timeout(Some(Duration::from_secs(5)))?;
        s.set_nodelay(true)?;
        Ok(Conn {
            s,
            handle,
            cfg,
            stop,
            buf: Vec::new(),
            hello_done: false,
            switch_cfg: SwitchConfig {
                flags: 0,
                miss_send_len: 128,
            },
        })
    }

    fn send(&mut self, m: Message) -> std::io::Result<()> {
        self.s.write_all(&m.emit())
    }

    fn send_error(&mut self, xid: u32, (type_, code): OfErr, msg: &[u8]) -> std::io::Result<()> {
        let data = msg[..msg.len().min(64)].to_vec();
        self.send(Message::new(
            xid,
            Body::Error(ErrorMsg::Standard { type_, code, data }),
        ))
    }

    /// Serves until the peer closes, an I/O error, an untrustworthy length or stop.
    fn run(&mut self) -> std::io::Result<()> {
        self.send(Message::new(
            0,
            Body::Hello(vec![HelloElem::VersionBitmap(vec![1 << OFP13])]),
        ))?;
        let mut chunk = [0u8; 16384];
        while !self.stop.load(Ordering::Acquire) {
            match self.s.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            while self.buf.len() >= HEADER_LEN {
                let h = match Header::parse(&self.buf) {
                    Ok(h) => h,
                    // Length below the header size: the stream cannot be resynchronised.
                    Err(_) => return Ok(()),
                };
                let len = h.length as usize;
                if self.buf.len() < len {
                    break;
                }
                let msg: Vec<u8> = self.buf.drain(..len).collect();
                if !self.handle_raw(h, &msg)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Handles one whole message; false closes the connection.
    fn handle_raw(&mut self, h: Header, msg: &[u8]) -> std::io::Result<bool> {
        if !self.hello_done {
            if h.type_ != v13::msg_type::HELLO {
                self.send_error(h.xid, (ET_HELLO_FAILED, HFC_EPERM), msg)?;
                return Ok(false);
            }
            if !peer_speaks_13(h, msg) {
                self.send_error(h.xid, (ET_HELLO_FAILED, HFC_INCOMPATIBLE), msg)?;
                return Ok(false);
            }
            self.hello_done = true;
            return Ok(true);
        }
        if h.version != OFP13 {
            self.send_error(h.xid, (ET_BAD_REQUEST, BRC_BAD_VERSION), msg)?;
            return Ok(true);
        }
        let m = match Message::parse(msg) {
            Ok(m) => m,
            Err(e) => {
                self.send_error(h.xid, parse_error(h.type_, &e), msg)?;
                return Ok(true);
            }
        };
        self.handle(m, msg)?;
        Ok(true)
    }

    /// Handles a parsed message (`raw` is its bytes, quoted in errors).
    fn handle(&mut self, m: Message, raw: &[u8]) -> std::io::Result<()> {
        let xid = m.xid;
        let reply = |b| Message::new(xid, b);
        match m.body {
            Body::Hello(_) | Body::EchoReply(_) => {}
            Body::EchoRequest(d) => self.send(reply(Body::EchoReply(d)))?,
            Body::FeaturesRequest => self.send(reply(Body::FeaturesReply(SwitchFeatures {
                datapath_id: self.cfg.datapath_id,
                n_buffers: 0,
                n_tables: 64,
                auxiliary_id: 0,
                capabilities: 1 | 2 | 4,
                reserved: 0,
            })))?,
            Body::GetConfigRequest => self.send(reply(Body::GetConfigReply(self.switch_cfg)))?,
            Body::SetConfig(c) => self.switch_cfg = c,
            Body::BarrierRequest => {
                if self.handle.sync().is_err() {
                    return Err(io_stopped());
                }
                self.send(reply(Body::BarrierReply))?
            }
            Body::MultipartRequest { body, .. } => match self.multipart(body) {
                Ok(replies) => {
                    let n = replies.len();
                    for (i, body) in replies.into_iter().enumerate() {
                        let flags = u16::from(i + 1 < n);
                        self.send(reply(Body::MultipartReply { flags, body }))?;
                    }
                }
                Err(e) => return self.send_error(xid, e, raw),
            },
            Body::FlowMod(fm) => {
                if let Err(e) = self.flow_mod(fm) {
                    return self.send_error(xid, e, raw);
                }
            }
            Body::MultipartReply { .. }
            | Body::FeaturesReply(_)
            | Body::GetConfigReply(_)
            | Body::BarrierReply
            | Body::Error(_)
            | Body::PacketIn(_)
            | Body::FlowRemoved(_)
            | Body::PortStatus { .. }
            | Body::RoleReply { .. } => {
                self.send_error(xid, (ET_BAD_REQUEST, BRC_BAD_TYPE), raw)?
            }
            Body::Other { type_, .. } if type_ == v13::msg_type::MULTIPART_REQUEST => {
                self.send_error(xid, (ET_BAD_REQUEST, BRC_BAD_MULTIPART), raw)?
            }
            _ => self.send_error(xid, (ET_BAD_REQUEST, BRC_BAD_TYPE), raw)?,
        }
        Ok(())
    }

    fn multipart(&mut self, req: MultipartRequest) -> Result<Vec<MultipartReply>, OfErr> {
        match req {
            MultipartRequest::Desc => {
                let f = |s: &str, n: usize| {
                    let mut v = s.as_bytes()[..s.len().min(n - 1)].to_vec();
                    v.resize(n, 0);
                    v
                };
                Ok(vec![MultipartReply::Desc {
                    mfr_desc: f("strato", 256),
                    hw_desc: f("userspace virtual switch", 256),
                    sw_desc: f(env!("CARGO_PKG_VERSION"), 256),
                    serial_num: f("None", 32),
                    dp_desc: f("strato", 256),
                }])
            }
            MultipartRequest::PortDesc => {
                let ports = self
                    .handle
                    .call(|c| {
                        c.ports()
                            .into_iter()
                            .map(|p| (p.no, p.name.clone(), p.down_reason.is_some()))
                            .collect::<Vec<_>>()
                    })
                    .map_err(|_| (ET_BAD_REQUEST, BRC_BAD_MULTIPART))?;
                let ports = ports
                    .into_iter()
                    .map(|(no, name, down)| {
                        let mut n = [0u8; 16];
                        let b = name.as_bytes();
                        let l = b.len().min(15);
                        n[..l].copy_from_slice(&b[..l]);
                        v13::Port {
                            port_no: no,
                            hw_addr: [0; 6],
                            name: n,
                            config: 0,
                            state: u32::from(down),
                            curr: 0,
                            advertised: 0,
                            supported: 0,
                            peer: 0,
                            curr_speed: 0,
                            max_speed: 0,
                        }
                    })
                    .collect();
                Ok(vec![MultipartReply::PortDesc(ports)])
            }
            MultipartRequest::Flow(r) => {
                let stats = self.flow_stats(&r)?;
                Ok(split_flow_stats(stats))
            }
            MultipartRequest::Aggregate(r) => {
                let stats = self.flow_stats(&r)?;
                Ok(vec![MultipartReply::Aggregate {
                    packet_count: stats.iter().map(|s| s.packet_count).sum(),
                    byte_count: stats.iter().map(|s| s.byte_count).sum(),
                    flow_count: u32::try_from(stats.len()).unwrap_or(u32::MAX),
                }])
            }
            _ => Err((ET_BAD_REQUEST, BRC_BAD_MULTIPART)),
        }
    }

    fn flow_stats(&mut self, r: &FlowStatsRequest) -> Result<Vec<FlowStats>, OfErr> {
        let m = of_to_match(&r.match_)?;
        let table = (r.table_id != OFPTT_ALL).then_some(r.table_id);
        let out = if r.out_port == OFPP_ANY {
            None
        } else {
            Some(of_port_in(r.out_port, 0).map_err(|_| (ET_BAD_REQUEST, BRC_BAD_LEN))?)
        };
        let (cookie, cookie_mask) = (r.cookie, r.cookie_mask);
        self.handle
            .call(move |c| {
                let now = c.now_ms();
                c.pipeline()
                    .rules()
                    .filter(|rule| {
                        table.is_none_or(|t| t == rule.table)
                            && (rule.cookie ^ cookie) & cookie_mask == 0
                            && out.is_none_or(|p| rule.instructions.outputs_to(p))
                            && m.covers(&rule.matching)
                    })
                    .map(|rule| rule_to_stats(rule, now))
                    .collect()
            })
            .map_err(|_| (ET_BAD_REQUEST, BRC_BAD_MULTIPART))
    }

    fn flow_mod(&mut self, fm: FlowMod) -> Result<(), OfErr> {
        const ADD: u8 = 0;
        const MODIFY: u8 = 1;
        const MODIFY_STRICT: u8 = 2;
        const DELETE: u8 = 3;
        const DELETE_STRICT: u8 = 4;
        let matching = of_to_match(&fm.match_)?;
        let table = (fm.table_id != OFPTT_ALL).then_some(fm.table_id);
        let filter = |strict: bool| -> Result<RuleFilter, OfErr> {
            let mut f = RuleFilter::loose(table, matching);
            f.strict = strict;
            f.priority = fm.priority;
            f = f.cookie(fm.cookie, fm.cookie_mask);
            if fm.out_port != OFPP_ANY {
                f = f.out_port(of_port_in(fm.out_port, 0)?);
            }
            Ok(f)
        };
        let failed = |_| (ET_FLOW_MOD_FAILED, FMFC_UNKNOWN);
        match fm.command {
            ADD => {
                let table = table.ok_or((ET_FLOW_MOD_FAILED, FMFC_BAD_TABLE_ID))?;
                let spec = RuleSpec {
                    table,
                    matching,
                    priority: fm.priority,
                    cookie: fm.cookie,
                    idle_timeout: fm.idle_timeout,
                    hard_timeout: fm.hard_timeout,
                    flags: RuleFlags {
                        send_flow_rem: fm.flags & 1 != 0,
                    },
                    instructions: of_to_instructions(&fm.instructions)?,
                };
                let opts = AddOptions {
                    check_overlap: fm.flags & 2 != 0,
                    keep_counts: fm.flags & 4 == 0,
                };
                self.apply(move |c| {
                    let now = c.now_ms();
                    c.update(|p, _| p.add(spec, opts, now).map(|_| ()))
                })
                .map_err(failed)?
                .map_err(pipeline_error)
            }
            MODIFY | MODIFY_STRICT => {
                let f = filter(fm.command == MODIFY_STRICT)?;
                let ins = of_to_instructions(&fm.instructions)?;
                let reset = fm.flags & 4 != 0;
                self.apply(move |c| c.update(|p, _| p.modify(&f, ins, reset).map(|_| ())))
                    .map_err(failed)?
                    .map_err(pipeline_error)
            }
            DELETE | DELETE_STRICT => {
                let f = filter(fm.command == DELETE_STRICT)?;
                self.apply(move |c| c.update(|p, _| p.delete(&f).map(|_| ())))
                    .map_err(failed)?
                    .map_err(pipeline_error)
            }
            _ => Err((ET_FLOW_MOD_FAILED, FMFC_BAD_COMMAND)),
        }
    }

    /// Runs `f` on the controller thread, then waits until the workers applied the change.
    fn apply<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::controller::Controller) -> R + Send + 'static,
    ) -> Result<R, crate::controller::ControlError> {
        let r = self.handle.call(f)?;
        self.handle.sync()?;
        Ok(r)
    }
}

fn io_stopped() -> std::io::Error {
    std::io::Error::other("the controller thread has stopped")
}

/// True when a peer's HELLO (any version) leaves OpenFlow 1.3 in common with us.
fn peer_speaks_13(h: Header, msg: &[u8]) -> bool {
    let mut r = Reader::new(msg.get(HEADER_LEN..).unwrap_or(&[]));
    while r.remaining() >= 4 {
        let (Ok(t), Ok(l)) = (r.u16("type"), r.u16("length")) else {
            break;
        };
        let l = l as usize;
        if l < 4 {
            break;
        }
        let Ok(body) = r.bytes(l - 4, "hello element") else {
            break;
        };
        let _ = r.skip((8 - l % 8) % 8, "padding");
        if t == 1 {
            // Bit 4 of the first bitmap word is OpenFlow 1.3.
            return body.len() >= 4
                && u32::from_be_bytes([body[0], body[1], body[2], body[3]]) & (1 << OFP13) != 0;
        }
    }
    h.version >= OFP13
}

/// The OpenFlow error for a message that did not parse.
fn parse_error(type_: u8, e: &OfError) -> OfErr {
    match e {
        OfError::BadType(_) => (ET_BAD_REQUEST, BRC_BAD_TYPE),
        OfError::BadVersion(_) => (ET_BAD_REQUEST, BRC_BAD_VERSION),
        OfError::Unknown { what, .. } if what.contains("multipart") => {
            (ET_BAD_REQUEST, BRC_BAD_MULTIPART)
        }
        OfError::Unknown { what, .. } if what.contains("match") => (ET_BAD_MATCH, BMC_BAD_TYPE),
        OfError::Unknown { what, .. } if what.contains("instruction") => {
            (ET_BAD_INSTRUCTION, BIC_UNKNOWN_INST)
        }
        OfError::Unknown { what, .. } if what.contains("action") => (ET_BAD_ACTION, BAC_BAD_TYPE),
        OfError::Unknown { .. } if type_ == v13::msg_type::MULTIPART_REQUEST => {
            (ET_BAD_REQUEST, BRC_BAD_MULTIPART)
        }
        _ => (ET_BAD_REQUEST, BRC_BAD_LEN),
    }
}

fn pipeline_error(e: PipelineError) -> OfErr {
    match e {
        PipelineError::BadTable { .. } => (ET_FLOW_MOD_FAILED, FMFC_BAD_TABLE_ID),
        PipelineError::BadGoto { .. } => (ET_BAD_INSTRUCTION, BIC_BAD_TABLE_ID),
        PipelineError::Overlap { .. } => (ET_FLOW_MOD_FAILED, FMFC_OVERLAP),
        PipelineError::BadSetField(_) => (ET_BAD_ACTION, BAC_BAD_SET_TYPE),
        PipelineError::BadTpid(_) => (ET_BAD_ACTION, BAC_BAD_ARGUMENT),
        PipelineError::BadTableCount(_) => (ET_BAD_REQUEST, BRC_BAD_TABLE_ID),
    }
}

/// Maps an OXM basic field to strato's key field (VLAN VID goes to the TCI, whose bit 12 is
/// the same "present" bit as OFPVID_PRESENT).
fn oxm_field(f: OxmField) -> Option<Field> {
    use OxmField as O;
    Some(match f {
        O::InPort => Field::InPort,
        O::Metadata => Field::Metadata,
        O::EthDst => Field::EthDst,
        O::EthSrc => Field::EthSrc,
        O::EthType => Field::EthType,
        O::VlanVid => Field::VlanTci,
        O::VlanPcp => Field::VlanPcp,
        O::IpDscp => Field::IpDscp,
        O::IpEcn => Field::IpEcn,
        O::IpProto => Field::IpProto,
        O::Ipv4Src => Field::Ipv4Src,
        O::Ipv4Dst => Field::Ipv4Dst,
        O::TcpSrc | O::UdpSrc | O::SctpSrc => Field::TpSrc,
        O::TcpDst | O::UdpDst | O::SctpDst => Field::TpDst,
        O::Icmpv4Type | O::Icmpv6Type => Field::IcmpType,
        O::Icmpv4Code | O::Icmpv6Code => Field::IcmpCode,
        O::ArpOp => Field::ArpOp,
        O::ArpSpa => Field::ArpSpa,
        O::ArpTpa => Field::ArpTpa,
        O::ArpSha => Field::ArpSha,
        O::ArpTha => Field::ArpTha,
        O::Ipv6Src => Field::Ipv6Src,
        O::Ipv6Dst => Field::Ipv6Dst,
        O::Ipv6Flabel => Field::Ipv6Label,
        O::Ipv6NdTarget => Field::NdTarget,
        O::TunnelId => Field::TunId,
        _ => return None,
    })
}

/// Prerequisites (OpenFlow 1.3 §7.2.3.6): required eth_type set and ip_proto set.
fn prereq(f: OxmField) -> (&'static [u128], &'static [u128]) {
    use OxmField as O;
    const IP: &[u128] = &[0x0800, 0x86dd];
    match f {
        O::IpDscp | O::IpEcn | O::IpProto => (IP, &[]),
        O::Ipv4Src | O::Ipv4Dst => (&[0x0800], &[]),
        O::TcpSrc | O::TcpDst => (IP, &[6]),
        O::UdpSrc | O::UdpDst => (IP, &[17]),
        O::SctpSrc | O::SctpDst => (IP, &[132]),
        O::Icmpv4Type | O::Icmpv4Code => (&[0x0800], &[1]),
        O::Icmpv6Type | O::Icmpv6Code => (&[0x86dd], &[58]),
        O::ArpOp | O::ArpSpa | O::ArpTpa | O::ArpSha | O::ArpTha => (&[0x0806], &[]),
        O::Ipv6Src | O::Ipv6Dst | O::Ipv6Flabel => (&[0x86dd], &[]),
        O::Ipv6NdTarget => (&[0x86dd], &[58]),
        _ => (&[], &[]),
    }
}

/// An OXM match as a strato match (refusing unknown fields, duplicates, missing prerequisites).
pub fn of_to_match(m: &OfMatch) -> Result<Match, (u16, u16)> {
    let mut out = Match::default();
    let mut seen: Vec<OxmField> = Vec::new();
    let exact = |f: OxmField| {
        m.fields.iter().find_map(|o| match o {
            Oxm::Basic {
                field,
                value,
                mask: None,
            } if *field == f => Some(*value),
            _ => None,
        })
    };
    for o in &m.fields {
        let Oxm::Basic { field, value, mask } = o else {
            return Err((ET_BAD_MATCH, BMC_BAD_FIELD));
        };
        if seen.contains(field) {
            return Err((ET_BAD_MATCH, BMC_DUP_FIELD));
        }
        seen.push(*field);
        let f = oxm_field(*field).ok_or((ET_BAD_MATCH, BMC_BAD_FIELD))?;
        let (types, protos) = prereq(*field);
        if !types.is_empty() && !exact(OxmField::EthType).is_some_and(|t| types.contains(&t)) {
            return Err((ET_BAD_MATCH, BMC_BAD_PREREQ));
        }
        if !protos.is_empty() && !exact(OxmField::IpProto).is_some_and(|p| protos.contains(&p)) {
            return Err((ET_BAD_MATCH, BMC_BAD_PREREQ));
        }
        let full = if *field == OxmField::VlanVid {
            0x1fff
        } else {
            f.full_mask()
        };
        out.set_masked(f, *value, mask.unwrap_or(full) & full);
    }
    Ok(out)
}

/// A strato match as OXM fields, in wire-number order.
pub fn match_to_of(m: &Match) -> OfMatch {
    let mut fields = Vec::new();
    let (ty, _) = m.field(Field::EthType);
    let (proto, _) = m.field(Field::IpProto);
    for &of in OxmField::ALL {
        let Some(f) = oxm_field(of) else { continue };
        // Only one OXM per shared strato field: pick the one the match's protocol implies.
        let keep = match of {
            OxmField::TcpSrc | OxmField::TcpDst => !matches!(proto, 17 | 132),
            OxmField::UdpSrc | OxmField::UdpDst => proto == 17,
            OxmField::SctpSrc | OxmField::SctpDst => proto == 132,
            OxmField::Icmpv4Type | OxmField::Icmpv4Code => ty != 0x86dd,
            OxmField::Icmpv6Type | OxmField::Icmpv6Code => ty == 0x86dd,
            _ => true,
        };
        if !keep {
            continue;
        }
        let (v, mut mask) = m.field(f);
        let mut full = f.full_mask();
        if of == OxmField::VlanVid {
            full = 0x1fff;
            mask &= full;
        }
        if mask == 0 {
            continue;
        }
        fields.push(Oxm::Basic {
            field: of,
            value: v & mask,
            mask: (mask != full).then_some(mask),
        });
    }
    OfMatch { fields }
}

fn of_port_in(port: u32, max_len: u16) -> Result<OfPort, OfErr> {
    Ok(match port {
        1..=OFPP_MAX => OfPort::Port(port),
        OFPP_IN_PORT => OfPort::InPort,
        OFPP_FLOOD => OfPort::Flood,
        OFPP_ALL => OfPort::All,
        OFPP_CONTROLLER => OfPort::Controller { max_len },
        _ => return Err((ET_BAD_ACTION, BAC_BAD_OUT_PORT)),
    })
}

fn of_to_action(a: &OfAction) -> Result<Action, OfErr> {
    let act = match a {
        OfAction::Output { port, max_len } => Action::Output(of_port_in(*port, *max_len)?),
        OfAction::PushVlan(tpid) => Action::PushVlan { tpid: *tpid },
        OfAction::PopVlan => Action::PopVlan,
        OfAction::DecNwTtl => Action::DecTtl,
        OfAction::SetField(Oxm::Basic {
            field,
            value,
            mask: None,
        }) => {
            let (f, v) = match field {
                OxmField::VlanVid => (Field::VlanVid, value & 0xfff),
                OxmField::Metadata => return Err((ET_BAD_ACTION, BAC_BAD_SET_TYPE)),
                _ => (
                    oxm_field(*field).ok_or((ET_BAD_ACTION, BAC_BAD_SET_TYPE))?,
                    *value,
                ),
            };
            if v & !f.full_mask() != 0 {
                return Err((ET_BAD_ACTION, BAC_BAD_SET_ARGUMENT));
            }
            Action::SetField { field: f, value: v }
        }
        OfAction::SetField(_) => return Err((ET_BAD_ACTION, BAC_BAD_SET_TYPE)),
        _ => return Err((ET_BAD_ACTION, BAC_BAD_TYPE)),
    };
    act.validate().map_err(pipeline_error)?;
    Ok(act)
}

fn of_to_instructions(ins: &[Instruction]) -> Result<Instructions, OfErr> {
    let mut out = Instructions::default();
    for i in ins {
        match i {
            Instruction::ApplyActions(a) => {
                out.apply_actions = a.iter().map(of_to_action).collect::<Result<_, _>>()?;
            }
            Instruction::GotoTable(t) => out.goto_table = Some(*t),
            Instruction::WriteMetadata { metadata, mask } => {
                out.write_metadata = Some((*metadata, *mask))
            }
            Instruction::Unknown { .. } => return Err((ET_BAD_INSTRUCTION, BIC_UNKNOWN_INST)),
            _ => return Err((ET_BAD_INSTRUCTION, BIC_UNSUP_INST)),
        }
    }
    Ok(out)
}

fn action_to_of(a: &Action, m: &Match) -> Option<OfAction> {
    let out = |port| OfAction::Output { port, max_len: 0 };
    Some(match *a {
        Action::Output(OfPort::Port(p)) => out(p),
        Action::Output(OfPort::InPort) => out(OFPP_IN_PORT),
        Action::Output(OfPort::Flood) => out(OFPP_FLOOD),
        Action::Output(OfPort::All) => out(OFPP_ALL),
        Action::Output(OfPort::Controller { max_len }) => OfAction::Output {
            port: OFPP_CONTROLLER,
            max_len,
        },
        Action::PushVlan { tpid } => OfAction::PushVlan(tpid),
        Action::PopVlan => OfAction::PopVlan,
        Action::DecTtl => OfAction::DecNwTtl,
        Action::SetTunnel { vni } => {
            OfAction::SetField(Oxm::basic(OxmField::TunnelId, u128::from(vni)))
        }
        Action::SetField { field, value } => {
            let of = if field == Field::VlanVid {
                return Some(OfAction::SetField(Oxm::basic(
                    OxmField::VlanVid,
                    value | OFPVID_PRESENT,
                )));
            } else {
                // The OXM whose strato field this is, disambiguated by the match's protocol.
                OxmField::ALL.iter().copied().find(|&o| {
                    oxm_field(o) == Some(field)
                        && o != OxmField::VlanVid
                        && match o {
                            OxmField::UdpSrc | OxmField::UdpDst => m.field(Field::IpProto).0 == 17,
                            OxmField::SctpSrc | OxmField::SctpDst => {
                                m.field(Field::IpProto).0 == 132
                            }
                            OxmField::TcpSrc | OxmField::TcpDst => {
                                !matches!(m.field(Field::IpProto).0, 17 | 132)
                            }
                            OxmField::Icmpv6Type | OxmField::Icmpv6Code => {
                                m.field(Field::EthType).0 == 0x86dd
                            }
                            OxmField::Icmpv4Type | OxmField::Icmpv4Code => {
                                m.field(Field::EthType).0 != 0x86dd
                            }
                            _ => true,
                        }
                })?
            };
            OfAction::SetField(Oxm::basic(of, value))
        }
    })
}

fn rule_to_stats(r: &Rule, now_ms: u64) -> FlowStats {
    let mut instructions = Vec::new();
    if let Some((metadata, mask)) = r.instructions.write_metadata {
        instructions.push(Instruction::WriteMetadata { metadata, mask });
    }
    if !r.instructions.apply_actions.is_empty() {
        instructions.push(Instruction::ApplyActions(
            r.instructions
                .apply_actions
                .iter()
                .filter_map(|a| action_to_of(a, &r.matching))
                .collect(),
        ));
    }
    if let Some(t) = r.instructions.goto_table {
        instructions.push(Instruction::GotoTable(t));
    }
    let age = now_ms.saturating_sub(r.created_ms);
    FlowStats {
        table_id: r.table,
        duration_sec: u32::try_from(age / 1000).unwrap_or(u32::MAX),
        duration_nsec: (age % 1000) as u32 * 1_000_000,
        priority: r.priority,
        idle_timeout: r.idle_timeout,
        hard_timeout: r.hard_timeout,
        flags: u16::from(r.flags.send_flow_rem),
        cookie: r.cookie,
        packet_count: r.packets,
        byte_count: r.bytes,
        match_: match_to_of(&r.matching),
        instructions,
    }
}

/// Splits flow stats into replies that each fit a 64 KiB message.
fn split_flow_stats(stats: Vec<FlowStats>) -> Vec<MultipartReply> {
    const LIMIT: usize = 65535 - 16;
    let mut out = Vec::new();
    let mut cur: Vec<FlowStats> = Vec::new();
    let mut cur_len = 0;
    for s in stats {
        let len = Message::new(
            0,
            Body::MultipartReply {
                flags: 0,
                body: MultipartReply::Flow(vec![s.clone()]),
            },
        )
        .emit()
        .len()
            - 16;
        if cur_len + len > LIMIT && !cur.is_empty() {
            out.push(MultipartReply::Flow(std::mem::take(&mut cur)));
            cur_len = 0;
        }
        cur_len += len;
        cur.push(s);
    }
    out.push(MultipartReply::Flow(cur));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("ptcp:6653").unwrap(),
            "0.0.0.0:6653".parse().unwrap()
        );
        assert_eq!(
            parse_addr("ptcp:6653:127.0.0.1").unwrap(),
            "127.0.0.1:6653".parse().unwrap()
        );
        assert!(parse_addr("tcp:6653").is_err());
        assert!(parse_addr("ptcp:x").is_err());
    }

    #[test]
    fn match_round_trip() {
        let of = OfMatch {
            fields: vec![
                Oxm::basic(OxmField::InPort, 1),
                Oxm::basic(OxmField::EthType, 0x0800),
                Oxm::basic(OxmField::VlanVid, 0x1005),
                Oxm::basic(OxmField::IpProto, 17),
                Oxm::Basic {
                    field: OxmField::Ipv4Dst,
                    value: 0x0a00_0000,
                    mask: Some(0xffff_ff00),
                },
                Oxm::basic(OxmField::UdpDst, 4789),
            ],
        };
        let m = of_to_match(&of).unwrap();
        assert_eq!(m.field(Field::TpDst), (4789, 0xffff));
        assert_eq!(m.field(Field::VlanTci), (0x1005, 0x1fff));
        assert_eq!(match_to_of(&m), of);
        let no_prereq = OfMatch {
            fields: vec![Oxm::basic(OxmField::Ipv4Dst, 1)],
        };
        assert_eq!(of_to_match(&no_prereq), Err((ET_BAD_MATCH, BMC_BAD_PREREQ)));
        let dup = OfMatch {
            fields: vec![
                Oxm::basic(OxmField::InPort, 1),
                Oxm::basic(OxmField::InPort, 2),
            ],
        };
        assert_eq!(of_to_match(&dup), Err((ET_BAD_MATCH, BMC_DUP_FIELD)));
        let unknown = OfMatch {
            fields: vec![Oxm::basic(OxmField::MplsLabel, 1)],
        };
        assert_eq!(of_to_match(&unknown), Err((ET_BAD_MATCH, BMC_BAD_FIELD)));
    }
}
