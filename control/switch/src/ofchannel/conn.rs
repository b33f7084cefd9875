//! One OpenFlow connection: buffered non-blocking I/O, HELLO negotiation, keepalive, barrier
//! ordering, and dispatch of whole messages to the version's handler.

use super::{of10, of13, Ctx, OfStats};
use crate::controller::{PacketIn, PortRecord};
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{ErrorKind, Read, Write};
use std::time::Instant;
use strato_flowtable::pipeline::{RemovalReason, Rule};
use strato_flowtable::PortNo;
use strato_openflow::{Header, Reader, HEADER_LEN, OFP10, OFP13};

/// Messages handled per connection per loop pass (the rest wait for the next pass).
const MSGS_PER_PASS: usize = 2048;
/// Input buffered per connection before reading pauses.
const MAX_IN: usize = 4 << 20;
/// Output buffered per connection before reading pauses (the peer is not reading) and
/// packet-ins are dropped.
pub(crate) const MAX_OUT: usize = 8 << 20;

/// A connected socket.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub(crate) fn register(&mut self, r: &Registry, t: Token) -> std::io::Result<()> {
        let i = Interest::READABLE | Interest::WRITABLE;
        match self {
            Stream::Tcp(s) => r.register(s, t, i),
            Stream::Unix(s) => r.register(s, t, i),
        }
    }
    pub(crate) fn deregister(&mut self, r: &Registry) {
        let _ = match self {
            Stream::Tcp(s) => r.deregister(s),
            Stream::Unix(s) => r.deregister(s),
        };
    }
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(b),
            Stream::Unix(s) => s.read(b),
        }
    }
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(b),
            Stream::Unix(s) => s.write(b),
        }
    }
    /// For a connect in progress: Ok(true) connected, Ok(false) still connecting.
    fn connect_done(&mut self) -> std::io::Result<bool> {
        match self {
            Stream::Tcp(s) => {
                if let Some(e) = s.take_error()? {
                    return Err(e);
                }
                match s.peer_addr() {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == ErrorKind::NotConnected => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Stream::Unix(_) => Ok(true),
        }
    }
}

/// Where a connection came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Accepted by the listener with this id.
    Listener(u64),
    /// Our connection to configured controller `i`.
    Remote(usize),
}

/// OpenFlow controller role of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Equal,
    Master,
    Slave,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Equal => "equal",
            Role::Master => "master",
            Role::Slave => "slave",
        }
    }
}

/// What a pass over a connection left.
pub(crate) enum Outcome {
    Open { busy: bool },
    Close { bad: bool },
}

/// What handling one message asks for.
pub(crate) enum Flow {
    Continue,
    /// Close (after flushing what is queued); `bad`: counted as a protocol failure.
    Close {
        bad: bool,
    },
}

pub(crate) struct Conn {
    pub stream: Stream,
    pub token: Token,
    pub peer: String,
    pub origin: Origin,
    /// TCP connect finished (always true for accepted connections).
    pub connected: bool,
    pub readable: bool,
    pub writable: bool,
    inbuf: Vec<u8>,
    inpos: usize,
    out: Vec<u8>,
    outpos: usize,
    /// Negotiated version (None until the peer's HELLO).
    pub version: Option<u8>,
    pub role: Role,
    last_rx: Instant,
    echo_sent: bool,
    /// A barrier waiting for the workers: (xid, sync sequence).
    barrier: Option<(u32, u64)>,
    /// SET_CONFIG flags and miss_send_len.
    pub config_flags: u16,
    pub miss_send_len: u16,
    /// Last failure (for controller status).
    pub error: Option<String>,
}

impl Conn {
    pub(crate) fn new(stream: Stream, token: Token, peer: String, origin: Origin) -> Conn {
        Conn {
            stream,
            token,
            peer,
            origin,
            connected: true,
            readable: true,
            writable: true,
            inbuf: Vec::new(),
            inpos: 0,
            out: Vec::new(),
            outpos: 0,
            version: None,
            role: Role::Equal,
            last_rx: Instant::now(),
            echo_sent: false,
            barrier: None,
            config_flags: 0,
            miss_send_len: 128,
            error: None,
        }
    }

    /// Queues bytes for the peer.
    pub(crate) fn queue(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    /// Output waiting (the peer may not be reading).
    pub(crate) fn backlog(&self) -> usize {
        self.out.len() - self.outpos
    }

    /// Our HELLO: version 1.3 with a bitmap of 1.0 and 1.3.
    pub(crate) fn send_hello(&mut self) {
        let bitmap: u32 = (1 << OFP10) | (1 << OFP13);
        let mut m = Vec::with_capacity(16);
        Header {
            version: OFP13,
            type_: 0,
            length: 16,
            xid: 0,
        }
        .emit(&mut m);
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&8u16.to_be_bytes());
        m.extend_from_slice(&bitmap.to_be_bytes());
        self.queue(&m);
    }

    /// Sends an error in the negotiated version (1.3 before negotiation).
    pub(crate) fn send_error(&mut self, xid: u32, (t, code): (u16, u16), raw: &[u8]) {
        let v = self.version.unwrap_or(OFP13);
        // The whole offending request, as Open vSwitch sends it (tshark dissects it).
        let data = &raw[..raw.len().min(usize::from(u16::MAX) - 12)];
        let mut m = Vec::with_capacity(12 + data.len());
        Header {
            version: v,
            type_: 1,
            length: (12 + data.len()) as u16,
            xid,
        }
        .emit(&mut m);
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&code.to_be_bytes());
        m.extend_from_slice(data);
        self.queue(&m);
    }

    /// Writes what it can without blocking; false on a fatal error.
    pub(crate) fn flush(&mut self) -> bool {
        while self.outpos < self.out.len() {
            match self.stream.write(&self.out[self.outpos..]) {
                Ok(0) => return false,
                Ok(n) => self.outpos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.writable = false;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error = Some(e.to_string());
                    return false;
                }
            }
        }
        if self.outpos == self.out.len() {
            self.out.clear();
            self.outpos = 0;
        } else if self.outpos > (1 << 20) {
            self.out.drain(..self.outpos);
            self.outpos = 0;
        }
        true
    }

    /// True when the connection gets packet_in and flow_removed (negotiated, not a slave).
    pub(crate) fn wants_async(&self) -> bool {
        self.version.is_some() && self.role != Role::Slave
    }

    /// One pass: connect completion, reading, handling, keepalive, writing.
    pub(crate) fn service(&mut self, ctx: &mut Ctx<'_>, stats: &mut OfStats) -> Outcome {
        if !self.connected {
            if !self.writable && !self.readable {
                return Outcome::Open { busy: false };
            }
            match self.stream.connect_done() {
                Ok(true) => {
                    self.connected = true;
                    self.last_rx = Instant::now();
                    self.send_hello();
                    tracing::info!(peer = %self.peer, "connected to OpenFlow controller");
                }
                Ok(false) => return Outcome::Open { busy: false },
                Err(e) => {
                    self.error = Some(e.to_string());
                    return Outcome::Close { bad: false };
                }
            }
        }
        // Barrier first: replies once the workers caught up; later messages waited for it.
        if let Some((xid, seq)) = self.barrier {
            if !ctx.c.synced_all(seq) {
                if !self.flush() {
                    return Outcome::Close { bad: true };
                }
                return Outcome::Open { busy: true };
            }
            self.barrier = None;
            let v = self.version.unwrap_or(OFP13);
            self.queue(&reply_header(v, if v == OFP10 { 19 } else { 21 }, xid));
        }
        let mut eof = false;
        if self.readable && self.backlog() < MAX_OUT && self.inbuf.len() - self.inpos < MAX_IN {
            let mut chunk = [0u8; 65536];
            loop {
                match self.stream.read(&mut chunk) {
                    Ok(0) => {
                        eof = true;
                        self.readable = false;
                        break;
                    }
                    Ok(n) => {
                        self.inbuf.extend_from_slice(&chunk[..n]);
                        self.last_rx = Instant::now();
                        self.echo_sent = false;
                        if self.inbuf.len() - self.inpos >= MAX_IN {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        self.readable = false;
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.error = Some(e.to_string());
                        return Outcome::Close { bad: false };
                    }
                }
            }
        }
        let mut handled = 0;
        while self.barrier.is_none() && handled < MSGS_PER_PASS {
            let avail = &self.inbuf[self.inpos..];
            if avail.len() < HEADER_LEN {
                break;
            }
            let Ok(h) = Header::parse(avail) else {
                // A length below the header size: the stream cannot be resynchronised.
                let quoted = avail[..avail.len().min(64)].to_vec();
                self.send_error(0, (1, 6), &quoted);
                self.flush();
                return Outcome::Close { bad: true };
            };
            let len = h.length as usize;
            if avail.len() < len {
                break;
            }
            let msg = avail[..len].to_vec();
            self.inpos += len;
            handled += 1;
            stats.messages += 1;
            match self.dispatch(ctx, h, &msg, stats) {
                Flow::Continue => {}
                Flow::Close { bad } => {
                    self.flush();
                    return Outcome::Close { bad };
                }
            }
        }
        if self.inpos == self.inbuf.len() {
            self.inbuf.clear();
            self.inpos = 0;
        } else if self.inpos > (1 << 20) {
            self.inbuf.drain(..self.inpos);
            self.inpos = 0;
        }
        // Keepalive.
        let idle = self.last_rx.elapsed();
        if idle >= ctx.cfg.probe_interval * 2 && self.echo_sent {
            self.error = Some(format!("no message for {idle:?}: dead peer"));
            tracing::warn!(peer = %self.peer, "OpenFlow peer silent for {idle:?}: closing");
            return Outcome::Close { bad: true };
        }
        if idle >= ctx.cfg.probe_interval && !self.echo_sent && self.version.is_some() {
            let v = self.version.unwrap_or(OFP13);
            self.queue(&reply_header(v, 2, 0));
            self.echo_sent = true;
        }
        if !self.flush() {
            return Outcome::Close { bad: false };
        }
        if eof {
            return Outcome::Close { bad: false };
        }
        let more = self.inbuf.len() - self.inpos >= HEADER_LEN
            && self.barrier.is_none()
            && handled == MSGS_PER_PASS;
        Outcome::Open {
            busy: more || self.barrier.is_some() || (self.readable && self.backlog() < MAX_OUT),
        }
    }

    /// Version negotiation, then the version's handler.
    fn dispatch(&mut self, ctx: &mut Ctx<'_>, h: Header, msg: &[u8], stats: &mut OfStats) -> Flow {
        let Some(v) = self.version else {
            if h.type_ != 0 {
                // OFPET_HELLO_FAILED / OFPHFC_EPERM: the first message must be HELLO.
                self.send_error(h.xid, (0, 1), msg);
                stats.errors_sent += 1;
                return Flow::Close { bad: true };
            }
            match negotiate(h, msg) {
                Some(v) => {
                    self.version = Some(v);
                    tracing::info!(peer = %self.peer, version = v, "OpenFlow connection up");
                    return Flow::Continue;
                }
                None => {
                    self.send_error(h.xid, (0, 0), msg);
                    stats.errors_sent += 1;
                    return Flow::Close { bad: false };
                }
            }
        };
        if h.version != v && h.type_ != 0 {
            // BAD_REQUEST / BAD_VERSION (same codes in 1.0 and 1.3).
            self.send_error(h.xid, (1, 0), msg);
            stats.errors_sent += 1;
            return Flow::Continue;
        }
        let r = if v == OFP10 {
            of10::handle(ctx, self, h, msg)
        } else {
            of13::handle(ctx, self, h, msg)
        };
        if let Some(err) = r.error {
            self.send_error(h.xid, err, msg);
            stats.errors_sent += 1;
        }
        if let Some(seq) = r.barrier {
            self.barrier = Some((h.xid, seq));
        }
        match r.close {
            Some(bad) => Flow::Close { bad },
            None => Flow::Continue,
        }
    }

    /// PORT_STATUS for a port change.
    pub(crate) fn send_port_status(&mut self, reason: u8, rec: Option<&PortRecord>, no: PortNo) {
        match self.version {
            Some(OFP10) => {
                let m = of10::port_status(reason, rec, no);
                self.queue(&m);
            }
            Some(_) => {
                let m = of13::port_status(reason, rec, no);
                self.queue(&m);
            }
            None => {}
        }
    }

    /// FLOW_REMOVED for a rule that asked for it.
    pub(crate) fn send_flow_removed(&mut self, r: &Rule, why: RemovalReason, now_ms: u64) {
        let m = match self.version {
            Some(OFP10) => of10::flow_removed(r, why, now_ms),
            Some(_) => of13::flow_removed(r, why, now_ms),
            None => return,
        };
        if let Some(m) = m {
            self.queue(&m);
        }
    }

    /// PACKET_IN; false when dropped because the peer is not reading.
    pub(crate) fn send_packet_in(&mut self, p: &PacketIn) -> bool {
        if self.backlog() >= MAX_OUT {
            return false;
        }
        let m = match self.version {
            Some(OFP10) => of10::packet_in(p, self.miss_send_len),
            Some(_) => of13::packet_in(p, self.miss_send_len),
            None => return false,
        };
        self.queue(&m);
        true
    }
}

/// A header-only message.
pub(crate) fn reply_header(version: u8, type_: u8, xid: u32) -> [u8; 8] {
    let mut m = Vec::with_capacity(8);
    Header {
        version,
        type_,
        length: 8,
        xid,
    }
    .emit(&mut m);
    let mut a = [0u8; 8];
    a.copy_from_slice(&m);
    a
}

/// The version both sides speak, from the peer's HELLO (OpenFlow 1.3 §6.3.1).
pub(crate) fn negotiate(h: Header, msg: &[u8]) -> Option<u8> {
    const OURS: u32 = (1 << OFP10) | (1 << OFP13);
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
        if t == 1 && body.len() >= 4 {
            // First bitmap word covers versions 0..=31.
            let peer = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
            let common = peer & OURS;
            return (common != 0).then(|| 31 - common.leading_zeros() as u8);
        }
    }
    // No bitmap: the lower of the two versions, if we speak it.
    let v = h.version.min(OFP13);
    (OURS & (1 << v) != 0).then_some(v)
}

/// What a handler did with one message.
#[derive(Default)]
pub(crate) struct Handled {
    /// Error to send, as (type, code) in the connection's version.
    pub error: Option<(u16, u16)>,
    /// A barrier to answer once the workers reached this sync sequence.
    pub barrier: Option<u64>,
    /// Close the connection (`Some(bad)`).
    pub close: Option<bool>,
}

impl Handled {
    /// A barrier: runs any deferred revalidation, then waits for the workers to catch up.
    pub(crate) fn barrier(c: &mut crate::controller::Controller) -> Handled {
        c.revalidate_if_pending();
        Handled {
            barrier: Some(c.request_sync()),
            ..Handled::default()
        }
    }

    /// An error reply.
    pub(crate) fn err(e: (u16, u16)) -> Handled {
        Handled {
            error: Some(e),
            ..Handled::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(version: u8, bitmap: Option<u32>) -> (Header, Vec<u8>) {
        let mut m = Vec::new();
        let len = if bitmap.is_some() { 16 } else { 8 };
        let h = Header {
            version,
            type_: 0,
            length: len,
            xid: 1,
        };
        h.emit(&mut m);
        if let Some(b) = bitmap {
            m.extend_from_slice(&[0, 1, 0, 8]);
            m.extend_from_slice(&b.to_be_bytes());
        }
        (h, m)
    }

    #[test]
    fn negotiation() {
        let (h, m) = hello(6, Some((1 << 1) | (1 << 4) | (1 << 6)));
        assert_eq!(negotiate(h, &m), Some(OFP13));
        let (h, m) = hello(6, Some((1 << 1) | (1 << 6)));
        assert_eq!(negotiate(h, &m), Some(OFP10));
        let (h, m) = hello(6, Some(1 << 6));
        assert_eq!(negotiate(h, &m), None);
        let (h, m) = hello(1, None);
        assert_eq!(negotiate(h, &m), Some(OFP10));
        let (h, m) = hello(5, None);
        assert_eq!(negotiate(h, &m), Some(OFP13));
        let (h, m) = hello(3, None);
        assert_eq!(negotiate(h, &m), None);
    }
}
