//! Network namespaces and veth pairs for labs and tests, driven through iproute2 (`ip`).
//!
//! Contract:
//! - Everything is created under a caller-chosen prefix (labs use the lab's name; tests use
//!   [`run_prefix`], unique per process and run), so nothing outside what we made is touched.
//! - [`Netns`] deletes its namespace when dropped (also when a test panics), which also
//!   deletes the veth ends inside it. `Lab` groups them and removes leftovers of the same prefix.
//! - Traffic is only ever sent inside namespaces made here: helpers take a namespace.
//! - Errors carry the command and its stderr, so a failed lab says what failed and why.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// A failed `ip` (or other) command.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// `{cmd}` failed: {stderr}
    #[error("`{cmd}` failed: {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// could not run `{cmd}`: {source} (is iproute2 installed? scripts/bootstrap.sh installs it)
    #[error(
        "could not run `{cmd}`: {source} (is iproute2 installed? scripts/bootstrap.sh installs it)"
    )]
    Spawn {
        /// The command line.
        cmd: String,
        /// The error.
        source: std::io::Error,
    },
    /// namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN); run as root
    #[error("namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN); run as root")]
    NotRoot,
}

/// Runs a command, returning its output or an error with its stderr.
pub fn run(cmd: &str, args: &[&str]) -> Result<Output, NetnsError> {
    let line = format!("{cmd} {}", args.join(" "));
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|source| NetnsError::Spawn {
            cmd: line.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(NetnsError::Command {
            cmd: line,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out)
}

/// `ip ARGS`.
pub fn ip(args: &[&str]) -> Result<Output, NetnsError> {
    run("ip", args)
}

/// True when running as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A prefix unique to this process and call: `st<pid-base36><n>`, short enough for interface
/// names (15 bytes) with a few characters to spare.
pub fn run_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("st{}{}", base36(std::process::id()), base36(n))
}

fn base36(mut v: u32) -> String {
    const D: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    loop {
        s.push(D[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// An interface made in the current (root) namespace, deleted on drop (a no-op when it is
/// already gone), so a failing test leaves nothing behind.
#[derive(Debug)]
pub struct RootLink(pub String);

impl Drop for RootLink {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.0]);
    }
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    keep: bool,
}

impl Netns {
    /// Creates namespace `name` with its loopback up.
    pub fn new(name: &str) -> Result<Netns, NetnsError> {
        if !is_root() {
            return Err(NetnsError::NotRoot);
        }
        ip(&["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
            keep: false,
        };
        ns.exec("ip", &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Adopts an existing namespace (it is still deleted on drop unless [`Netns::keep`]).
    pub fn adopt(name: &str) -> Netns {
        Netns {
            name: name.to_string(),
            keep: false,
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Do not delete on drop (a lab that outlives the command that built it).
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, cmd: &str, args: &[&str]) -> Result<Output, NetnsError> {
        let mut a = vec!["netns", "exec", self.name.as_str(), cmd];
        a.extend_from_slice(args);
        ip(&a)
    }

    /// A `Command` that runs inside the namespace (for long-running processes).
    pub fn command(&self, cmd: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.name.as_str(), cmd]);
        c
    }

    /// `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<Output, NetnsError> {
        self.exec("ip", args)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.keep {
            let _ = ip(&["netns", "del", &self.name]);
        }
    }
}

/// Creates a veth pair `a` (in namespace `ns_a`, or the current one) <-> `b` (in `ns_b`), both up,
/// with TX checksum/TSO/GSO offloads off (frames a userspace switch forwards must carry full
/// checksums).
pub fn veth_pair(
    a: &str,
    ns_a: Option<&Netns>,
    b: &str,
    ns_b: Option<&Netns>,
) -> Result<(), NetnsError> {
    // Each end is created directly in its namespace, so a name like eth0 inside a host
    // namespace never meets the machine's own interfaces.
    let mut args: Vec<&str> = Vec::new();
    if let Some(ns) = ns_a {
        args.extend(["-n", ns.name()]);
    }
    args.extend(["link", "add", a, "type", "veth", "peer", "name", b]);
    if let Some(ns) = ns_b {
        args.extend(["netns", ns.name()]);
    }
    ip(&args)?;
    for (dev, ns) in [(a, ns_a), (b, ns_b)] {
        let up = ["link", "set", dev, "up"];
        match ns {
            Some(ns) => ns.ip(&up)?,
            None => ip(&up)?,
        };
        // ethtool may be missing on a bare machine; offloads only matter for TCP, so say so.
        let r = match ns {
            Some(ns) => ns.exec(
                "ethtool",
                &["-K", dev, "tx", "off", "tso", "off", "gso", "off"],
            ),
            None => run(
                "ethtool",
                &["-K", dev, "tx", "off", "tso", "off", "gso", "off"],
            ),
        };
        if let Err(e) = r {
            eprintln!("netns: could not turn offloads off on {dev} ({e}); TCP through the switch may stall");
        }
    }
    Ok(())
}

/// Runs `f` on a scoped thread that has entered network namespace `ns` (a name under
/// `/run/netns`; setns(2) changes only that thread, so sockets `f` opens live in `ns` and the
/// caller's namespace is untouched). A panic in `f` is passed on to the caller.
pub fn in_netns<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> std::io::Result<R> {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path)?;
    std::thread::scope(|s| {
        let h = s.spawn(move || {
            // SAFETY: setns(2) with a namespace fd held open for the call; it switches only
            // this fresh scoped thread, which ends when `f` returns.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(f())
        });
        match h.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

/// An AF_PACKET socket (every EtherType, both directions) bound to `ifname` inside namespace
/// `ns`, with a 100 ms receive timeout: for tests and labs that watch a wire.
pub fn packet_socket(ns: &str, ifname: &str) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let ifname = std::ffi::CString::new(ifname)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in name"))?;
    in_netns(ns, move || -> std::io::Result<OwnedFd> {
        let err = std::io::Error::last_os_error;
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
        if fd < 0 {
            return Err(err());
        }
        // SAFETY: fd is a freshly created, valid socket owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ifname is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(ifname.as_ptr()) };
        if ifindex == 0 {
            return Err(err());
        }
        // SAFETY: an all-zero sockaddr_ll is a valid value; the fields are set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: sll is a valid sockaddr_ll and the length passed is its size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r != 0 {
            return Err(err());
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // SAFETY: SO_RCVTIMEO takes a timeval; pointer and length describe `tv`.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        if r != 0 {
            return Err(err());
        }
        Ok(fd)
    })?
}

/// Namespaces whose name starts with `prefix` (leftovers of an earlier run).
pub fn list_with_prefix(prefix: &str) -> Result<Vec<String>, NetnsError> {
    let out = ip(&["netns", "list"])?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect())
}

/// Deletes every namespace whose name starts with `prefix`, and interfaces in the current
/// namespace with that prefix. Returns what was removed.
pub fn cleanup_prefix(prefix: &str) -> Result<Vec<String>, NetnsError> {
    let mut gone = Vec::new();
    for n in list_with_prefix(prefix)? {
        if ip(&["netns", "del", &n]).is_ok() {
            gone.push(n);
        }
    }
    let out = ip(&["-o", "link", "show"])?;
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        // "12: name@peer: <...>"
        if let Some(name) = l
            .split(':')
            .nth(1)
            .map(|s| s.trim().split('@').next().unwrap_or(""))
        {
            if name.starts_with(prefix) && ip(&["link", "del", name]).is_ok() {
                gone.push(name.to_string());
            }
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_short_and_distinct() {
        let (a, b) = (run_prefix(), run_prefix());
        assert_ne!(a, b);
        assert!(a.len() <= 9, "{a}");
        assert_eq!(base36(0), "0");
        assert_eq!(base36(36 * 36 - 1), "zz");
    }

    #[test]
    fn command_errors_carry_stderr() {
        let e = run("ip", &["link", "show", "dev", "no-such-interface-xyz"]).unwrap_err();
        assert!(e.to_string().contains("no-such-interface-xyz"), "{e}");
    }

    /// Needs root; never skips silently: says why when it cannot run.
    #[test]
    fn namespace_and_veth_lifecycle() {
        if !is_root() {
            eprintln!("SKIPPED namespace_and_veth_lifecycle: needs root (CI runs as root)");
            return;
        }
        let p = run_prefix();
        let name = format!("{p}-a");
        {
            let ns = Netns::new(&name).unwrap();
            veth_pair(&format!("{p}v0"), None, "eth0", Some(&ns)).unwrap();
            ns.ip(&["addr", "add", "10.99.0.1/24", "dev", "eth0"])
                .unwrap();
            let out = ns.ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap();
            assert!(String::from_utf8_lossy(&out.stdout).contains("10.99.0.1"));
            assert_eq!(list_with_prefix(&p).unwrap(), vec![name.clone()]);
        }
        assert!(
            list_with_prefix(&p).unwrap().is_empty(),
            "namespace removed on drop"
        );
        // Deleting the namespace deletes the peer inside it, and so the pair (the kernel
        // finishes this asynchronously).
        let t = std::time::Instant::now();
        while ip(&["link", "show", &format!("{p}v0")]).is_ok() {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(5),
                "veth outlived its namespace"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
