//! Tap ports: a VM's NIC as the switch sees it, through `/dev/net/tun` (`IFF_TAP | IFF_NO_PI`,
//! plain Ethernet frames, no packet-info header, no virtio-net header).
//!
//! Contract (on top of the port contract in [`super`]):
//! - [`TapPort::open`] creates the tap (`create: true`, when it does not exist) or attaches to an
//!   existing persistent one, opens the queue non-blocking and sets the link up (one socket
//!   ioctl, no external command). Errors say what to do: `/dev/net/tun` missing, not root,
//!   name too long, the name belongs to something that is not a tap, the tap is busy.
//! - [`TapPort::rx_burst`] makes at most [`BURST`] non-blocking reads (tap has no batch read: one
//!   syscall per frame is inherent) and stops at the first `EAGAIN`. Each frame is read straight
//!   into a pool buffer (no extra copy), through a two-part `readv` whose 1-byte tail detects
//!   frames larger than [`MAX_FRAME`] (the kernel truncates a frame to the buffer it is given):
//!   those are counted in `oversize` and dropped. An empty pool stops the burst with
//!   `no_buffer`, the frames stay queued in the kernel.
//! - [`TapPort::tx`] makes one `write` per frame and stops at the first refusal: the queue is full
//!   (`EAGAIN`/`ENOBUFS`), the link is down (`EIO`: the VM side set it down), or the kernel
//!   rejects that frame. It returns the accepted prefix length.
//! - A read or write error that means the device is gone (`EBADFD` once it is deleted, `EIO` on
//!   read, `ENODEV`, ...) is reported once, as `RxBurst::error` of the next receive burst; after
//!   it the port receives and transmits nothing, never panics and never spins on the error.
//! - Dropping a port closes its queue: a tap the port created (not persistent) is deleted by the
//!   kernel with it, wherever it was moved since; a persistent tap it attached to stays.
//! - The hot path (`rx_burst`, `tx`) does not allocate, except once to describe a fatal error.

use super::{PortError, RxBurst, BURST};
use crate::buf::{BufPool, MAX_FRAME};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Longest interface name the kernel takes (`IFNAMSIZ` - 1).
pub const MAX_IFNAME: usize = libc::IFNAMSIZ - 1;

/// What tap to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapConfig {
    /// Interface name (at most [`MAX_IFNAME`] bytes).
    pub name: String,
    /// Create the tap when it does not exist. Either way an existing persistent tap of that name
    /// is attached to.
    pub create: bool,
}

/// Why a tap could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// /dev/net/tun does not exist: load the tun module (`modprobe tun`) or create the node
    /// (`mknod /dev/net/tun c 10 200`)
    #[error(
        "/dev/net/tun does not exist: load the tun module (`modprobe tun`) or create the node \
         (`mknod /dev/net/tun c 10 200`)"
    )]
    NoTunDevice,
    /// cannot open /dev/net/tun: {0} (run as root, or give this user access to /dev/net/tun)
    #[error(
        "cannot open /dev/net/tun: {0} (run as root, or give this user access to /dev/net/tun)"
    )]
    OpenTun(io::Error),
    /// tap `{0}` needs root (CAP_NET_ADMIN): run as root, or attach to a persistent tap owned by
    /// this user (`ip tuntap add mode tap user USER name NAME`)
    #[error(
        "tap `{0}` needs root (CAP_NET_ADMIN): run as root, or attach to a persistent tap owned \
         by this user (`ip tuntap add mode tap user USER name {0}`)"
    )]
    NeedsRoot(String),
    /// interface name `{name}` is {len} bytes long; names have at most 15 bytes
    #[error("interface name `{name}` is {len} bytes long; names have at most {MAX_IFNAME} bytes")]
    NameTooLong {
        /// The name asked for.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// `{0}` is not a valid interface name (empty, or has '/', ':', '%', a NUL or whitespace)
    #[error(
        "{0:?} is not a valid interface name (empty, or has '/', ':', '%', a NUL or whitespace)"
    )]
    InvalidName(String),
    /// tap `{0}` does not exist: set `create` to make it, or make a persistent one
    /// (`ip tuntap add mode tap name NAME`)
    #[error(
        "tap `{0}` does not exist: set `create` to make it, or make a persistent one \
         (`ip tuntap add mode tap name {0}`)"
    )]
    NotFound(String),
    /// interface `{name}` exists but is {what}, not a tap: pick another name or delete it
    #[error("interface `{name}` exists but is {what}, not a tap: pick another name or delete it")]
    NotATap {
        /// The name asked for.
        name: String,
        /// What it is instead.
        what: &'static str,
    },
    /// tap `{0}` is multi-queue, which this port does not support: recreate it without
    /// `multi_queue`
    #[error(
        "tap `{0}` is multi-queue, which this port does not support: recreate it without \
         `multi_queue`"
    )]
    MultiQueue(String),
    /// tap `{0}` is busy: another process (a VM, another switch) holds its queue; stop it first
    #[error(
        "tap `{0}` is busy: another process (a VM, another switch) holds its queue; stop it first"
    )]
    Busy(String),
    /// {op} on tap `{name}` failed: {source}
    #[error("{op} on tap `{name}` failed: {source}")]
    Io {
        /// The tap's name.
        name: String,
        /// What was being done.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

/// A tap port (one queue of one tap device).
#[derive(Debug)]
pub struct TapPort {
    fd: OwnedFd,
    name: String,
    created: bool,
    /// A fatal error seen by `tx`, to report in the next `rx_burst`.
    pending: Option<PortError>,
    /// The device is gone: nothing more is read or written.
    dead: bool,
    /// Receives the part of a frame beyond `MAX_FRAME` (its only use: telling truncation).
    tail: [u8; 1],
}

impl TapPort {
    /// Opens (creating if `cfg.create` and missing) the tap `cfg.name`, non-blocking, link up.
    pub fn open(cfg: &TapConfig) -> Result<TapPort, TapError> {
        let name = cfg.name.as_str();
        check_name(name)?;
        if !cfg.create && !exists(name) {
            return Err(TapError::NotFound(name.to_string()));
        }
        let path = c"/dev/net/tun";
        // SAFETY: `path` is a NUL-terminated string; open has no other memory effects.
        let raw = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
                    TapError::NoTunDevice
                }
                _ => TapError::OpenTun(e),
            });
        }
        // SAFETY: `raw` is a file descriptor just opened and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let mut ifr = ifreq(name);
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `ifreq`, which `ifr` is and outlives the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut ifr) } < 0 {
            return Err(set_iff_error(name, io::Error::last_os_error()));
        }
        // SAFETY: TUNGETIFF writes one `ifreq`, which `ifr` is and outlives the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNGETIFF as _, &mut ifr) } < 0 {
            return Err(io_error(name, "TUNGETIFF", io::Error::last_os_error()));
        }
        // SAFETY: TUNGETIFF filled the flags member of the union.
        let flags = i32::from(unsafe { ifr.ifr_ifru.ifru_flags }) & 0xffff;
        let created = flags & libc::IFF_PERSIST == 0;
        if created && !cfg.create {
            // The tap vanished between the check and the attach, and we just made it: closing
            // `fd` deletes it again.
            return Err(TapError::NotFound(name.to_string()));
        }
        let port = TapPort {
            fd,
            name: name.to_string(),
            created,
            pending: None,
            dead: false,
            tail: [0],
        };
        set_up(name)?;
        Ok(port)
    }

    /// The tap's interface name.
    pub fn ifname(&self) -> &str {
        &self.name
    }

    /// True when this port created the tap (it is deleted when the port is dropped).
    pub fn created(&self) -> bool {
        self.created
    }

    /// The tap's MAC address (asked on the tap's own queue, so it works wherever the interface
    /// has been moved).
    pub fn mac(&self) -> Result<[u8; 6], TapError> {
        let mut ifr = ifreq("");
        // SAFETY: SIOCGIFHWADDR on a tun queue writes one `ifreq`, which `ifr` is.
        if unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SIOCGIFHWADDR as _, &mut ifr) } < 0 {
            return Err(io_error(
                &self.name,
                "SIOCGIFHWADDR",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
        let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
        Ok(std::array::from_fn(|i| sa.sa_data[i] as u8))
    }

    /// Receives up to `BURST` frames into pool buffers (the [`super::PortKind`] contract).
    #[inline]
    pub fn rx_burst(&mut self, pool: &mut BufPool, out: &mut [u32; BURST]) -> RxBurst {
        let mut r = RxBurst::default();
        if let Some(e) = self.pending.take() {
            r.error = Some(e);
            return r;
        }
        if self.dead {
            return r;
        }
        for _ in 0..BURST {
            let Some(b) = pool.alloc() else {
                r.no_buffer = true;
                break;
            };
            let area = pool.get_mut(b).rx_full();
            let iov = [
                libc::iovec {
                    iov_base: area.as_mut_ptr().cast(),
                    iov_len: area.len(),
                },
                libc::iovec {
                    iov_base: self.tail.as_mut_ptr().cast(),
                    iov_len: self.tail.len(),
                },
            ];
            // SAFETY: both iovecs point into memory borrowed mutably for the call (the buffer's
            // area after the headroom and `self.tail`), with their exact lengths.
            let n = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), iov.len() as _) };
            if n <= 0 {
                pool.free(b);
                if n < 0 {
                    let e = errno();
                    if e != libc::EAGAIN && e != libc::EINTR {
                        self.dead = true;
                        r.error = Some(self.fatal("read", e));
                    }
                }
                break;
            }
            let n = n as usize;
            if n > MAX_FRAME {
                pool.free(b);
                r.oversize += 1;
                continue;
            }
            // Cannot fail: n <= MAX_FRAME, the size of the area just read into.
            let _ = pool.get_mut(b).set_len(n);
            out[r.n] = b;
            r.n += 1;
        }
        r
    }

    /// Transmits a prefix of `bufs` and returns its length (the [`super::PortKind`] contract):
    /// one write per frame, stopping at the first refusal.
    #[inline]
    pub fn tx(&mut self, pool: &BufPool, bufs: &[u32]) -> usize {
        if self.dead {
            return 0;
        }
        for (i, &b) in bufs.iter().enumerate() {
            let d = pool.get(b).data();
            // SAFETY: `d` is a live slice of exactly `d.len()` bytes for the call.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), d.as_ptr().cast(), d.len()) };
            if n < 0 {
                match errno() {
                    // Queue full, link down (the VM side set it down), or this frame refused.
                    libc::EAGAIN
                    | libc::ENOBUFS
                    | libc::EINTR
                    | libc::EIO
                    | libc::EINVAL
                    | libc::EMSGSIZE
                    | libc::EFAULT => {}
                    e => {
                        self.dead = true;
                        self.pending = Some(self.fatal("write", e));
                    }
                }
                return i;
            }
        }
        bufs.len()
    }

    /// Describes a fatal error (allocates: happens once per port).
    #[cold]
    fn fatal(&self, op: &str, errno: i32) -> PortError {
        PortError(format!(
            "tap `{}`: {op} failed: {} (the device was deleted or its namespace destroyed; \
             re-add the port once the tap exists again)",
            self.name,
            io::Error::from_raw_os_error(errno)
        ))
    }
}

impl AsFd for TapPort {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for TapPort {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn io_error(name: &str, op: &'static str, source: io::Error) -> TapError {
    TapError::Io {
        name: name.to_string(),
        op,
        source,
    }
}

/// Checks an interface name the way the kernel does (`dev_valid_name`), plus '%' (a kernel
/// name template would make it pick the name).
fn check_name(name: &str) -> Result<(), TapError> {
    if name.len() > MAX_IFNAME {
        return Err(TapError::NameTooLong {
            name: name.to_string(),
            len: name.len(),
        });
    }
    if name.is_empty()
        || name == "."
        || name == ".."
        || name
            .bytes()
            .any(|c| c == b'/' || c == b':' || c == b'%' || c == 0 || c.is_ascii_whitespace())
    {
        return Err(TapError::InvalidName(name.to_string()));
    }
    Ok(())
}

/// An `ifreq` with `name` (checked by [`check_name`], so it fits with its NUL).
fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is plain data (bytes and integers) for which all zeroes is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes().take(MAX_IFNAME)) {
        *d = s as libc::c_char;
    }
    ifr
}

/// True when an interface `name` exists in this network namespace.
fn exists(name: &str) -> bool {
    let Ok(c) = CString::new(name) else {
        return false;
    };
    // SAFETY: `c` is a NUL-terminated string living across the call.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

/// Turns a TUNSETIFF failure into an error that says what to do.
fn set_iff_error(name: &str, e: io::Error) -> TapError {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => TapError::NeedsRoot(name.to_string()),
        Some(libc::EBUSY) => TapError::Busy(name.to_string()),
        Some(libc::EINVAL) => {
            // The name exists but the kernel refused to attach: say what it is instead.
            match std::fs::read_to_string(format!("/sys/class/net/{name}/tun_flags")) {
                Ok(s) => {
                    let f = i32::from_str_radix(s.trim().trim_start_matches("0x"), 16).unwrap_or(0);
                    if f & libc::IFF_TUN != 0 {
                        TapError::NotATap {
                            name: name.to_string(),
                            what: "a tun (layer-3) device",
                        }
                    } else if f & libc::IFF_MULTI_QUEUE != 0 {
                        TapError::MultiQueue(name.to_string())
                    } else {
                        io_error(name, "TUNSETIFF", e)
                    }
                }
                Err(_) if exists(name) => TapError::NotATap {
                    name: name.to_string(),
                    what: "not a tun/tap device",
                },
                Err(_) => io_error(name, "TUNSETIFF", e),
            }
        }
        _ => io_error(name, "TUNSETIFF", e),
    }
}

/// Sets the link of `name` (in this namespace) up: SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP.
fn set_up(name: &str) -> Result<(), TapError> {
    // SAFETY: socket takes no pointers.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io_error(name, "socket", io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a socket just opened and owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut ifr = ifreq(name);
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into `ifr`, an `ifreq`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) } < 0 {
        return Err(io_error(name, "SIOCGIFFLAGS", io::Error::last_os_error()));
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union; writing a c_short member of a
    // union of plain data is always valid.
    unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads one `ifreq`, which `ifr` is.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &ifr) } < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => TapError::NeedsRoot(name.to_string()),
            _ => io_error(name, "SIOCSIFFLAGS (link up)", e),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_checked_before_any_syscall() {
        let long = "a".repeat(MAX_IFNAME + 1);
        let e = TapPort::open(&TapConfig {
            name: long.clone(),
            create: true,
        })
        .unwrap_err();
        assert!(
            matches!(&e, TapError::NameTooLong { name, len } if *name == long && *len == 16),
            "{e:?}"
        );
        assert!(e.to_string().contains("at most 15 bytes"), "{e}");
        for bad in ["", ".", "..", "a/b", "a:b", "tap%d", "a b", "a\0b"] {
            let e = TapPort::open(&TapConfig {
                name: bad.into(),
                create: true,
            })
            .unwrap_err();
            assert!(matches!(e, TapError::InvalidName(_)), "{bad:?}: {e:?}");
        }
        assert!(check_name(&"a".repeat(MAX_IFNAME)).is_ok());
    }

    #[test]
    fn ifreq_name_is_nul_terminated() {
        let r = ifreq(&"x".repeat(MAX_IFNAME));
        assert_eq!(r.ifr_name[MAX_IFNAME], 0);
        assert_eq!(r.ifr_name[0] as u8, b'x');
    }

    #[test]
    fn missing_interface_without_create_is_not_found() {
        // No syscall beyond a name lookup: an unused name in this namespace.
        let name = format!("stnx{}", std::process::id() % 100_000);
        let e = TapPort::open(&TapConfig {
            name: name.clone(),
            create: false,
        })
        .unwrap_err();
        assert!(matches!(&e, TapError::NotFound(n) if *n == name), "{e:?}");
        assert!(e.to_string().contains("set `create`"), "{e}");
    }
}
