//! AF_XDP ports: one XDP socket (xsk-rs / libxdp) per port queue, in copy mode, on a kernel
//! interface (veths, NICs).
//!
//! Contract (besides the [`super`] port-kind contract):
//! - [`AfXdpPort::open`] checks the interface by name first (its ifindex), then binds one socket
//!   to `(ifname, queue)` with `XDP_COPY | XDP_USE_NEED_WAKEUP`. [`XdpMode::Auto`] tries native
//!   (driver) XDP and falls back to generic (SKB) XDP; [`AfXdpPort::mode`] says which is in use.
//!   libxdp attaches its default redirect program (through its dispatcher when bpffs is mounted,
//!   otherwise as a single program); the program is removed when the port is dropped.
//! - Failures are typed ([`AfXdpError`]) and say what to do: missing interface, not root,
//!   AF_XDP unsupported, interface/queue busy, native XDP unsupported. A busy queue is retried
//!   for [`BUSY_RETRY`] first (the kernel releases a just-closed socket's queue asynchronously).
//! - The port owns every UMEM frame. Half are receive frames: always either on the fill ring or
//!   on the rx ring (each received frame is copied into a pool buffer and put straight back on
//!   the fill ring), so the fill ring stays full. The other half are transmit frames: free in the
//!   port, or in flight (tx ring / kernel / completion ring) until reclaimed from the completion
//!   ring, which every call does first. Ring sizes are chosen so no ring can overflow, so no
//!   frame is ever parked in the kernel's free list or lost. [`AfXdpPort::accounting`] and
//!   [`AfXdpPort::balanced`] prove it (exact when the port is quiescent).
//! - Syscalls: at most one per call, and only when a ring asks for it (need_wakeup): `poll` when
//!   the fill ring needs a wakeup, `sendto` when the tx ring holds frames and needs a wakeup.
//!   An idle port checks the socket's error (`getsockopt(SO_ERROR)`) once every
//!   [`IDLE_CHECK`] empty bursts, which is how a deleted interface is noticed: it is reported
//!   once as `RxBurst.error` (never a panic, never a spin), and the port stays dead.
//! - Transmit copies each frame into a free UMEM frame; a frame larger than
//!   [`AfXdpPort::tx_room`] (frame size minus the 256-byte XDP headroom) ends the accepted prefix
//!   and is counted in [`AfXdpPort::tx_too_big`].
//! - [`AfXdpPort::open_in_netns`] opens (and later drops) the socket from inside a named network
//!   namespace, on a short-lived helper thread, because libxdp resolves and detaches the program
//!   by ifindex in the calling thread's namespace.

use super::{PortError, RxBurst, BURST};
use crate::buf::{BufPool, MAX_FRAME};
use std::io::{self, Write};
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, QueueSize, SocketConfig, UmemConfig, XdpFlags,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, TxQueue, Umem};

/// Empty receive bursts between two checks of the socket's error state.
pub const IDLE_CHECK: u32 = 1024;

/// How long [`AfXdpPort::open`] retries a busy queue (a socket closed just before is released
/// by the kernel asynchronously).
pub const BUSY_RETRY: std::time::Duration = std::time::Duration::from_millis(3000);

/// XDP attach mode requested.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode if the driver has it, else generic (SKB) mode.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode only.
    Skb,
}

/// XDP attach mode in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpModeUsed {
    /// Native (driver) XDP.
    Native,
    /// Generic (SKB) XDP.
    Skb,
}

impl XdpModeUsed {
    /// Short name (`native` / `skb`), as `strato ctl show` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            XdpModeUsed::Native => "native",
            XdpModeUsed::Skb => "skb",
        }
    }
}

impl std::fmt::Display for XdpModeUsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to open an AF_XDP port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// Interface name.
    pub ifname: String,
    /// Queue id to bind (default 0).
    pub queue: u32,
    /// Attach mode (default [`XdpMode::Auto`]).
    pub mode: XdpMode,
    /// UMEM frames, half for receive and half for transmit (default 4096).
    pub frames: u32,
    /// UMEM frame size, a power of two >= 2048 (default 2048).
    pub frame_size: u32,
}

impl Default for AfXdpConfig {
    fn default() -> Self {
        AfXdpConfig {
            ifname: String::new(),
            queue: 0,
            mode: XdpMode::Auto,
            frames: 4096,
            frame_size: 2048,
        }
    }
}

impl AfXdpConfig {
    /// Defaults for interface `ifname`.
    pub fn new(ifname: impl Into<String>) -> Self {
        AfXdpConfig {
            ifname: ifname.into(),
            ..Default::default()
        }
    }
}

/// Why an AF_XDP port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AfXdpError {
    /// interface {0} does not exist (check `ip link show`; for an interface inside a network
    /// namespace, open it from that namespace)
    #[error("interface {0} does not exist (check `ip link show`; for an interface inside a network namespace, open it from that namespace)")]
    NoSuchInterface(String),
    /// AF_XDP needs root (CAP_NET_ADMIN, CAP_BPF) to open {0}: run strato as root
    #[error("AF_XDP needs root (CAP_NET_ADMIN, CAP_BPF) to open {0}: run strato as root")]
    NotRoot(String),
    /// AF_XDP is not supported by this kernel
    #[error("AF_XDP is not supported by this kernel ({0}): it needs Linux 5.4+ with CONFIG_XDP_SOCKETS and CONFIG_BPF_SYSCALL")]
    Unsupported(String),
    /// the interface or queue is busy
    #[error("interface {ifname} queue {queue} is busy: another XDP program or AF_XDP socket is attached ({detail}); see `ip -d link show dev {ifname}`, detach a stale program with `ip link set dev {ifname} xdp off` (and `xdpgeneric off`)")]
    Busy {
        /// Interface.
        ifname: String,
        /// Queue.
        queue: u32,
        /// The kernel's answer.
        detail: String,
    },
    /// native mode requested but the driver has none
    #[error("interface {ifname} has no native (driver) XDP support ({detail}): use mode `skb` or `auto`")]
    NativeUnsupported {
        /// Interface.
        ifname: String,
        /// The kernel's answer.
        detail: String,
    },
    /// invalid configuration
    #[error("invalid AF_XDP port config for {ifname}: {why}")]
    Config {
        /// Interface.
        ifname: String,
        /// What is wrong.
        why: String,
    },
    /// could not enter the network namespace
    #[error("cannot enter network namespace {name} to open the AF_XDP port: {source} (does `ip netns list` show it?)")]
    Netns {
        /// Namespace name.
        name: String,
        /// The error.
        source: io::Error,
    },
    /// any other failure
    #[error("AF_XDP {op} on {ifname} failed: {detail}")]
    Os {
        /// Interface.
        ifname: String,
        /// What was being done.
        op: &'static str,
        /// The error, with its cause.
        detail: String,
    },
}

/// Where the port's UMEM frames are. `total == fill + rx_pending + tx_free + tx_in_flight`
/// whenever the port is quiescent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameAccounting {
    /// Frames in the UMEM.
    pub total: u32,
    /// Receive frames on the fill ring (read from the ring at the end of the last receive
    /// burst) plus any the ring refused for a moment and that wait to go back on it.
    pub fill: u32,
    /// Received frames on the rx ring not yet consumed (same snapshot).
    pub rx_pending: u32,
    /// Transmit frames free in the port.
    pub tx_free: u32,
    /// Transmit frames submitted and not yet reclaimed from the completion ring.
    pub tx_in_flight: u32,
}

/// The xsk-rs objects (dropped together, in the right namespace).
struct Xsk {
    umem: Umem,
    fq: FillQueue,
    cq: CompQueue,
    rxq: RxQueue,
    txq: TxQueue,
}

/// An AF_XDP port (see the module docs).
pub struct AfXdpPort {
    xsk: Option<Xsk>,
    ifname: String,
    ifindex: u32,
    queue: u32,
    mode: XdpModeUsed,
    netns: Option<String>,
    total: u32,
    rx_frames: u32,
    fill_size: u32,
    tx_ring_size: u32,
    tx_room: usize,
    /// Free transmit frames (capacity: every frame, never reallocated).
    free: Vec<FrameDesc>,
    tx_in_flight: u32,
    fill_snap: u32,
    /// Receive frames the fill ring refused (the kernel publishes its consumer index lazily,
    /// so the ring can look full for a moment); put back on it by the next receive bursts.
    fill_backlog: Vec<FrameDesc>,
    rx_snap: u32,
    scratch: [FrameDesc; BURST],
    idle: u32,
    dead: Option<PortError>,
    tx_too_big: u64,
}

// The worker thread owns the port: it must move there.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<AfXdpPort>();
};

fn errno_of(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            return io.raw_os_error();
        }
        cur = c.source();
    }
    None
}

fn detail_of(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn ring_size(n: u32) -> Option<QueueSize> {
    QueueSize::new(n.max(1).checked_next_power_of_two()?).ok()
}

impl AfXdpPort {
    /// Opens an AF_XDP socket on `cfg.ifname` / `cfg.queue` in the current network namespace.
    pub fn open(cfg: &AfXdpConfig) -> Result<AfXdpPort, AfXdpError> {
        let ifname = cfg.ifname.clone();
        let bad = |why: String| AfXdpError::Config {
            ifname: ifname.clone(),
            why,
        };
        if ifname.is_empty() || ifname.len() > 15 || ifname.contains(['\0', '/']) {
            return Err(bad(format!("{ifname:?} is not an interface name")));
        }
        let cname = std::ffi::CString::new(ifname.as_str())
            .map_err(|_| bad("interface name contains NUL".into()))?;
        // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(AfXdpError::NoSuchInterface(ifname));
        }
        if cfg.frames < 4 * BURST as u32 || cfg.frames > 1 << 20 {
            return Err(bad(format!(
                "frames must be between {} and {}, got {}",
                4 * BURST,
                1 << 20,
                cfg.frames
            )));
        }
        let frame_size = FrameSize::new(cfg.frame_size)
            .ok()
            .filter(|_| cfg.frame_size.is_power_of_two() && cfg.frame_size <= 1 << 16)
            .ok_or_else(|| {
                bad(format!(
                    "frame_size must be a power of two in 2048..=65536, got {}",
                    cfg.frame_size
                ))
            })?;
        let rx_frames = cfg.frames / 2;
        let tx_frames = cfg.frames - rx_frames;
        let (Some(fill_q), Some(rx_q), Some(tx_q)) = (
            ring_size(rx_frames),
            ring_size(rx_frames),
            ring_size(tx_frames),
        ) else {
            return Err(bad("ring sizes overflow".into()));
        };
        let umem_cfg = UmemConfig::builder()
            .frame_size(frame_size)
            .fill_queue_size(fill_q)
            .comp_queue_size(tx_q)
            .frame_headroom(0)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let tx_room = umem_cfg.mtu() as usize;
        let os = |op: &'static str, e: &(dyn std::error::Error + 'static)| -> AfXdpError {
            match errno_of(e) {
                Some(libc::EPERM) | Some(libc::EACCES) => AfXdpError::NotRoot(ifname.clone()),
                Some(libc::EAFNOSUPPORT) => AfXdpError::Unsupported(detail_of(e)),
                Some(libc::ENODEV) | Some(libc::ENXIO) => {
                    AfXdpError::NoSuchInterface(ifname.clone())
                }
                Some(libc::EBUSY) | Some(libc::EEXIST) => AfXdpError::Busy {
                    ifname: ifname.clone(),
                    queue: cfg.queue,
                    detail: detail_of(e),
                },
                _ => AfXdpError::Os {
                    ifname: ifname.clone(),
                    op,
                    detail: detail_of(e),
                },
            }
        };
        let nz = NonZeroU32::new(cfg.frames).ok_or_else(|| bad("frames is 0".into()))?;
        let (umem, mut descs) = Umem::new(umem_cfg, nz, false).map_err(|e| os("UMEM setup", &e))?;
        let iface: Interface = ifname
            .parse()
            .map_err(|_| bad("interface name contains NUL".into()))?;
        let tries: &[(XdpFlags, XdpModeUsed)] = match cfg.mode {
            XdpMode::Auto => &[
                (XdpFlags::XDP_FLAGS_DRV_MODE, XdpModeUsed::Native),
                (XdpFlags::XDP_FLAGS_SKB_MODE, XdpModeUsed::Skb),
            ],
            XdpMode::Native => &[(XdpFlags::XDP_FLAGS_DRV_MODE, XdpModeUsed::Native)],
            XdpMode::Skb => &[(XdpFlags::XDP_FLAGS_SKB_MODE, XdpModeUsed::Skb)],
        };
        let mut last = None;
        let mut opened = None;
        // The kernel frees a closed socket's buffer pool from a work queue, so the queue of a
        // port dropped a moment ago can still be busy: retry EBUSY for a short while.
        let busy_until = std::time::Instant::now() + BUSY_RETRY;
        let mut i = 0;
        while let Some(&(flags, used)) = tries.get(i) {
            let sock_cfg = SocketConfig::builder()
                .rx_queue_size(rx_q)
                .tx_queue_size(tx_q)
                .xdp_flags(flags)
                .bind_flags(BindFlags::XDP_COPY | BindFlags::XDP_USE_NEED_WAKEUP)
                .build();
            // SAFETY: the UMEM is fresh and not shared with any other socket, so no other
            // socket of it is bound to this (ifname, queue) pair and libxdp loads its program
            // for this socket alone.
            match unsafe { xsk_rs::Socket::new(sock_cfg, &umem, &iface, cfg.queue) } {
                Ok(s) => {
                    opened = Some((s, used));
                    break;
                }
                Err(e) => {
                    let errno = errno_of(&e);
                    if errno == Some(libc::EBUSY) && std::time::Instant::now() < busy_until {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        continue;
                    }
                    let fatal = matches!(
                        errno,
                        Some(libc::EPERM)
                            | Some(libc::EACCES)
                            | Some(libc::EAFNOSUPPORT)
                            | Some(libc::EBUSY)
                            | Some(libc::EEXIST)
                            | Some(libc::ENODEV)
                    );
                    if fatal || i + 1 == tries.len() {
                        if used == XdpModeUsed::Native
                            && matches!(errno, Some(libc::EOPNOTSUPP) | Some(libc::EINVAL))
                        {
                            return Err(AfXdpError::NativeUnsupported {
                                ifname: ifname.clone(),
                                detail: detail_of(&e),
                            });
                        }
                        return Err(os("socket bind", &e));
                    }
                    last = Some(e);
                    i += 1;
                }
            }
        }
        let Some(((txq, rxq, fq_cq), mode)) = opened else {
            return Err(AfXdpError::Os {
                ifname: ifname.clone(),
                op: "socket bind",
                detail: last.map(|e| detail_of(&e)).unwrap_or_default(),
            });
        };
        let Some((mut fq, cq)) = fq_cq else {
            return Err(AfXdpError::Os {
                ifname,
                op: "socket bind",
                detail: "libxdp returned no fill/completion rings for a fresh UMEM".into(),
            });
        };
        // Receive frames go on the fill ring now; the rest are the free transmit frames.
        let tx_descs = descs.split_off(rx_frames as usize);
        // SAFETY: these frames belong to this UMEM and are owned by nobody else (fresh).
        let filled = unsafe { fq.produce(&descs) };
        if filled != descs.len() {
            return Err(AfXdpError::Os {
                ifname,
                op: "fill ring setup",
                detail: format!("fill ring took {filled} of {} frames", descs.len()),
            });
        }
        let mut free = Vec::with_capacity(cfg.frames as usize);
        free.extend_from_slice(&tx_descs);
        Ok(AfXdpPort {
            xsk: Some(Xsk {
                umem,
                fq,
                cq,
                rxq,
                txq,
            }),
            ifname,
            ifindex,
            queue: cfg.queue,
            mode,
            netns: None,
            total: cfg.frames,
            rx_frames,
            fill_size: fill_q.get(),
            tx_ring_size: tx_q.get(),
            tx_room,
            free,
            tx_in_flight: 0,
            fill_snap: rx_frames,
            fill_backlog: Vec::with_capacity(rx_frames as usize),
            rx_snap: 0,
            scratch: [FrameDesc::default(); BURST],
            idle: 0,
            dead: None,
            tx_too_big: 0,
        })
    }

    /// Opens the port from inside network namespace `netns` (a name under /var/run/netns, as
    /// `ip netns` makes them); the port is also dropped from inside it. The calling thread's
    /// namespace is not changed (a helper thread does the work).
    pub fn open_in_netns(cfg: &AfXdpConfig, netns: &str) -> Result<AfXdpPort, AfXdpError> {
        let cfg = cfg.clone();
        let name = netns.to_string();
        let r = in_netns(&name, move || AfXdpPort::open(&cfg))?;
        r.map(|mut p| {
            p.netns = Some(name);
            p
        })
    }

    /// Interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Interface index (in the port's namespace) at open time.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Queue id.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Namespace the port was opened in ([`AfXdpPort::open_in_netns`]), if any.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// XDP mode in use.
    pub fn mode(&self) -> XdpModeUsed {
        self.mode
    }

    /// Largest frame transmit accepts (UMEM frame size minus the XDP headroom).
    pub fn tx_room(&self) -> usize {
        self.tx_room
    }

    /// Frames refused by transmit because they were larger than [`AfXdpPort::tx_room`].
    pub fn tx_too_big(&self) -> u64 {
        self.tx_too_big
    }

    /// Where the UMEM frames are.
    pub fn accounting(&self) -> FrameAccounting {
        FrameAccounting {
            total: self.total,
            fill: self.fill_snap + self.fill_backlog.len() as u32,
            rx_pending: self.rx_snap,
            tx_free: self.free.len() as u32,
            tx_in_flight: self.tx_in_flight,
        }
    }

    /// True when every frame is accounted for (exact when quiescent: after traffic stopped and
    /// a receive burst and a transmit call have run).
    pub fn balanced(&self) -> bool {
        let a = self.accounting();
        a.fill as u64 + a.rx_pending as u64 + a.tx_free as u64 + a.tx_in_flight as u64
            == a.total as u64
    }

    /// Receive frames (the fill ring's target level).
    pub fn rx_frames(&self) -> u32 {
        self.rx_frames
    }

    /// Kernel socket statistics (drops by reason), a syscall: not for the hot path.
    pub fn kernel_stats(&self) -> Option<xsk_rs::socket::XdpStatistics> {
        self.xsk.as_ref()?.rxq.fd().xdp_statistics().ok()
    }

    /// Moves completed transmit frames back to the free list (no syscall).
    #[inline]
    fn reclaim(
        xsk: &mut Xsk,
        free: &mut Vec<FrameDesc>,
        scratch: &mut [FrameDesc; BURST],
        in_flight: &mut u32,
    ) {
        while *in_flight > 0 {
            // SAFETY: the descriptors are filled in from this UMEM's completion ring.
            let n = unsafe { xsk.cq.consume(&mut scratch[..]) };
            if n == 0 {
                break;
            }
            // Never exceeds capacity: free + in flight == transmit frames.
            free.extend_from_slice(&scratch[..n]);
            *in_flight = in_flight.saturating_sub(n as u32);
        }
    }

    fn went_away(&mut self, why: String) -> PortError {
        let e = PortError(format!(
            "AF_XDP port on {} (queue {}) is gone: {why}; the interface was deleted or moved to another namespace: re-add the port once it is back",
            self.ifname, self.queue
        ));
        self.dead = Some(e.clone());
        e
    }

    /// Receives up to `BURST` frames into pool buffers (the [`super::PortKind`] contract).
    #[inline]
    pub fn rx_burst(&mut self, pool: &mut BufPool, out: &mut [u32; BURST]) -> RxBurst {
        let mut r = RxBurst::default();
        if let Some(e) = &self.dead {
            r.error = Some(e.clone());
            return r;
        }
        let Some(x) = self.xsk.as_mut() else {
            return r;
        };
        Self::reclaim(x, &mut self.free, &mut self.scratch, &mut self.tx_in_flight);
        if !self.fill_backlog.is_empty() {
            // SAFETY: receive frames of this UMEM that are on no ring (refused earlier).
            let put = unsafe { x.fq.produce(&self.fill_backlog) };
            self.fill_backlog.drain(..put);
        }
        let want = BURST.min(pool.free_count());
        // SAFETY: the descriptors are filled in from this UMEM's rx ring.
        let n = unsafe { x.rxq.consume(&mut self.scratch[..want]) };
        for d in &self.scratch[..n] {
            let len = d.lengths().data();
            if len > MAX_FRAME {
                r.oversize += 1;
                continue;
            }
            // Cannot fail: at most `want <= free_count` buffers are taken.
            let Some(b) = pool.alloc() else {
                r.no_buffer = true;
                continue;
            };
            // SAFETY: `d` came from this UMEM's rx ring, so the kernel is done with the frame
            // and nothing else touches it until it is put back on the fill ring below.
            let data = unsafe { x.umem.data(d) };
            if let Ok(area) = pool.get_mut(b).rx_area(len) {
                area.copy_from_slice(data.contents());
            }
            out[r.n] = b;
            r.n += 1;
        }
        if n > 0 {
            // SAFETY: these frames came off this UMEM's rx ring and were copied out above.
            let put = unsafe { x.fq.produce(&self.scratch[..n]) };
            if put < n {
                // The ring has room for every receive frame, but the kernel may not have
                // published its consumer index yet: keep the frames and retry next burst.
                self.fill_backlog.extend_from_slice(&self.scratch[put..n]);
            }
        }
        if want < BURST && n == want && x.rxq.nb_avail(1) > 0 {
            r.no_buffer = true;
        }
        self.fill_snap = self.fill_size - x.fq.nb_free_exact();
        self.rx_snap = x.rxq.nb_avail_exact();

        // At most one syscall, only when a ring asks for it.
        let tx_pending = self.tx_ring_size - x.txq.nb_free_exact();
        let mut fail = None;
        if x.fq.needs_wakeup() {
            if let Err(e) = x.rxq.poll(0) {
                fail = Some(format!("poll: {e}"));
            }
        } else if tx_pending > 0 && x.txq.needs_wakeup() {
            if let Err(e) = x.txq.wakeup() {
                fail = Some(format!("sendto: {e}"));
            }
        } else if n == 0 {
            self.idle += 1;
            if self.idle >= IDLE_CHECK {
                self.idle = 0;
                if let Some(err) = socket_error(x.rxq.fd().as_raw_fd()) {
                    fail = Some(format!("socket error: {err}"));
                }
            }
        }
        if let Some(why) = fail {
            r.error = Some(self.went_away(why));
        }
        r
    }

    /// Transmits a prefix of `bufs` and returns its length (the [`super::PortKind`] contract).
    #[inline]
    pub fn tx(&mut self, pool: &BufPool, bufs: &[u32]) -> usize {
        if self.dead.is_some() {
            return 0;
        }
        let Some(x) = self.xsk.as_mut() else {
            return 0;
        };
        Self::reclaim(x, &mut self.free, &mut self.scratch, &mut self.tx_in_flight);
        let mut sent = 0;
        let mut stop = false;
        while sent < bufs.len() && !stop {
            let room = x.txq.nb_free(BURST as u32) as usize;
            let k = (bufs.len() - sent)
                .min(BURST)
                .min(self.free.len())
                .min(room);
            if k == 0 {
                break;
            }
            let mut m = 0;
            for &b in &bufs[sent..sent + k] {
                let frame = pool.get(b).data();
                if frame.len() > self.tx_room {
                    self.tx_too_big += 1;
                    stop = true;
                    break;
                }
                // Cannot fail: k <= free.len().
                let Some(mut d) = self.free.pop() else { break };
                // SAFETY: `d` is a free transmit frame of this UMEM: not on any ring, so
                // nothing else reads or writes it.
                let mut data = unsafe { x.umem.data_mut(&mut d) };
                let mut c = data.cursor();
                c.set_pos(0);
                // Cannot fail: the frame fits (checked against tx_room above).
                let _ = c.write_all(frame);
                self.scratch[m] = d;
                m += 1;
            }
            // SAFETY: the frames are this UMEM's, written above, and on no other ring; the tx
            // ring had room for all `m` (checked), so it takes all of them.
            let put = unsafe { x.txq.produce(&self.scratch[..m]) };
            self.free.extend_from_slice(&self.scratch[put..m]);
            self.tx_in_flight += put as u32;
            sent += put;
            if put < m {
                break;
            }
        }
        let pending = self.tx_ring_size - x.txq.nb_free_exact();
        if pending > 0 && x.txq.needs_wakeup() {
            if let Err(e) = x.txq.wakeup() {
                // Reported by the next receive burst.
                self.went_away(format!("sendto: {e}"));
            }
        }
        sent
    }
}

/// `getsockopt(SO_ERROR)`: the socket's pending error, if any (the kernel sets ENETDOWN when
/// the bound interface is unregistered).
fn socket_error(fd: i32) -> Option<io::Error> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes of the sizes given, for the whole call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Some(io::Error::last_os_error());
    }
    (err != 0).then(|| io::Error::from_raw_os_error(err))
}

/// Runs `f` on a helper thread that first joins network namespace `name`.
fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AfXdpError> {
    let nerr = |source| AfXdpError::Netns {
        name: name.to_string(),
        source,
    };
    if name.is_empty() || name.contains('/') {
        return Err(nerr(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a namespace name",
        )));
    }
    let file = std::fs::File::open(format!("/var/run/netns/{name}")).map_err(nerr)?;
    let h = std::thread::Builder::new()
        .name("strato-netns".into())
        .spawn(move || {
            // SAFETY: `file` is an open namespace file descriptor for the whole call; setns
            // changes only this helper thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(f())
        })
        .map_err(nerr)?;
    match h.join() {
        Ok(r) => r.map_err(nerr),
        Err(_) => Err(nerr(io::Error::other("helper thread panicked"))),
    }
}

impl Drop for AfXdpPort {
    fn drop(&mut self) {
        let Some(x) = self.xsk.take() else { return };
        match self.netns.take() {
            // libxdp detaches the program by ifindex in the calling thread's namespace.
            Some(ns) => {
                if let Err(e) = in_netns(&ns, move || drop(x)) {
                    eprintln!(
                        "afxdp: could not drop the port on {} inside namespace {ns}: {e}",
                        self.ifname
                    );
                }
            }
            None => drop(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_interface_is_a_clear_error() {
        let e = AfXdpPort::open(&AfXdpConfig::new("stnoexist0q"))
            .err()
            .unwrap();
        assert!(matches!(e, AfXdpError::NoSuchInterface(_)), "{e:?}");
        assert!(e.to_string().contains("stnoexist0q does not exist"), "{e}");
    }

    #[test]
    fn bad_configs_are_refused_before_touching_the_kernel() {
        let cfg = AfXdpConfig {
            frame_size: 3000,
            ..AfXdpConfig::new("lo")
        };
        let e = AfXdpPort::open(&cfg).err().unwrap();
        assert!(e.to_string().contains("power of two"), "{e}");
        let cfg = AfXdpConfig {
            frames: 8,
            ..AfXdpConfig::new("lo")
        };
        assert!(matches!(
            AfXdpPort::open(&cfg),
            Err(AfXdpError::Config { .. })
        ));
        assert!(matches!(
            AfXdpPort::open(&AfXdpConfig::new("a/b")),
            Err(AfXdpError::Config { .. })
        ));
    }

    #[test]
    fn missing_namespace_is_a_clear_error() {
        let e = AfXdpPort::open_in_netns(&AfXdpConfig::new("lo"), "stnonsq0")
            .err()
            .unwrap();
        assert!(e.to_string().contains("stnonsq0"), "{e}");
    }

    #[test]
    fn mode_names() {
        assert_eq!(XdpModeUsed::Native.to_string(), "native");
        assert_eq!(XdpModeUsed::Skb.name(), "skb");
        assert_eq!(AfXdpConfig::default().frames, 4096);
        assert_eq!(AfXdpConfig::default().mode, XdpMode::Auto);
    }
}
