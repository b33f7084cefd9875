//! The set-ups the end-to-end tests share (each test file says `mod support;`).
//!
//! Contract:
//! - A test that cannot run here says why and returns: [`need!`] (and [`skip_unless_root!`])
//!   print `SKIPPED <test>: <why>` for the first unmet need ([`root`], [`tool`], [`venv`]).
//!   CI runs as root with scripts/bootstrap.sh's tools, so nothing skips there.
//! - Whatever a helper starts or makes is undone on drop, also when an assertion fails:
//!   processes ([`Proc`]: SIGTERM, then SIGKILL after a grace period), temporary directories
//!   ([`TempDir`]), labs ([`strato::StratoLab`]: `strato lab down`), Open vSwitch
//!   ([`ovs::OvsSwitch`]), captures ([`tshark::Capture`]).
//! - Every wait has a limit: [`wait_for`] and [`retry`] poll, then give up and say so.
//! - Namespaces and interfaces carry the caller's per-run prefix (`netns::run_prefix()`), so
//!   parallel runs never meet.
//!
//! Modules: [`strato`] (the binary, its daemon and labs, `strato ctl`, the tenant API over
//! HTTP), [`net`] (commands and pings inside namespaces, interface facts), [`ovs`] (Open
//! vSwitch as the reference switch, and `ovs-ofctl`), [`tshark`] (OpenFlow captures),
//! [`checks`] (a PASS/FAIL checklist), [`mem`] (a switch over memory ports).

// Each test file compiles this module for itself and uses only part of it.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod checks;
pub mod mem;
pub mod net;
pub mod ovs;
pub mod strato;
pub mod tshark;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The venvs of real peers live here (scripts/bootstrap.sh creates them).
pub const VENV_ROOT: &str = "/var/cache/strato";

// ---------------------------------------------------------------------------------------------
// skipping

/// Prints `SKIPPED <test>: <why>` (on stderr, where the other skip lines go).
pub fn skipped(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

/// The value of a precondition (`Result<T, String>`, the error saying what is missing), or:
/// prints `SKIPPED <test>: <why>` and returns from the calling test.
macro_rules! need {
    ($test:expr, $cond:expr) => {
        match $cond {
            Ok(v) => v,
            Err(why) => {
                $crate::support::skipped($test, &why);
                return;
            }
        }
    };
}
pub(crate) use need;

/// Returns from the calling test, saying why, unless running as root (namespaces, AF_XDP,
/// taps, captures).
macro_rules! skip_unless_root {
    ($test:expr) => {
        $crate::support::need!($test, $crate::support::root())
    };
}
pub(crate) use skip_unless_root;

/// Root, or why not.
pub fn root() -> Result<(), String> {
    if strato_labs::netns::is_root() {
        Ok(())
    } else {
        Err("needs root (CI runs as root)".into())
    }
}

/// Whether `tool` is on the PATH (`command -v`).
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `tool` on the PATH, or what to install for it (Debian's `package`).
pub fn tool(tool: &str, package: &str) -> Result<(), String> {
    if have(tool) {
        Ok(())
    } else {
        Err(format!(
            "`{tool}` missing; install {package} (scripts/bootstrap.sh does)"
        ))
    }
}

/// `VENV_ROOT/<venv>/bin/<program>`, or why it is not there.
pub fn venv(venv: &str, program: &str) -> Result<PathBuf, String> {
    let dir = Path::new(VENV_ROOT).join(venv);
    let p = dir.join("bin").join(program);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "{} is missing (scripts/bootstrap.sh creates the venv {})",
            p.display(),
            dir.display()
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// commands and processes

/// A finished command's status, stdout and stderr, for an assertion message.
pub fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One command's result, with the command line it came from.
#[derive(Debug, Clone, Default)]
pub struct Out {
    /// The command line, for reports.
    pub cmd: String,
    /// It ran and exited 0.
    pub ok: bool,
    pub stdout: String,
    /// What it printed on stderr, or why it could not run.
    pub stderr: String,
}

impl Out {
    /// Runs `c` to completion (stdin from /dev/null).
    pub fn run(cmd: String, c: &mut Command) -> Out {
        Out::from(cmd, c.stdin(Stdio::null()).output())
    }

    pub fn from(cmd: String, o: std::io::Result<Output>) -> Out {
        match o {
            Ok(o) => Out {
                cmd,
                ok: o.status.success(),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Err(e) => Out {
                cmd,
                ok: false,
                stdout: String::new(),
                stderr: e.to_string(),
            },
        }
    }

    /// stdout, then stderr.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The command line, its outcome and its output, for a report.
    pub fn show(&self) -> String {
        format!(
            "$ {}\n(exit {})\n{}{}",
            self.cmd,
            if self.ok { "ok" } else { "FAILED" },
            self.stdout,
            if self.stderr.is_empty() {
                String::new()
            } else {
                format!("--- stderr ---\n{}", self.stderr)
            }
        )
    }
}

/// Sends `sig` to `pid` (errors ignored: it may be gone already).
pub fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Whether `pid` runs (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// SIGTERM to each pid that runs, then SIGKILL to those still running after `grace`.
pub fn terminate_pids(pids: &[u32], grace: Duration) {
    for &p in pids {
        signal(p, libc::SIGTERM);
    }
    if !wait_for(grace, Duration::from_millis(20), || {
        !pids.iter().any(|&p| alive(p))
    }) {
        for &p in pids.iter().filter(|&&p| alive(p)) {
            signal(p, libc::SIGKILL);
        }
    }
}

/// A child process, stopped on drop: SIGTERM, then SIGKILL when it has not exited after the
/// grace period. Started through `ip netns exec`, the child is the program itself (it execs).
pub struct Proc {
    pub child: Child,
    grace: Duration,
}

impl Proc {
    pub fn new(child: Child, grace: Duration) -> Proc {
        Proc { child, grace }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it (see the type) and reaps it; how long that took.
    pub fn stop(&mut self) -> Duration {
        let t = Instant::now();
        if self.running() {
            signal(self.child.id(), libc::SIGTERM);
            let exited = wait_for(self.grace, Duration::from_millis(20), || !self.running());
            if !exited {
                eprintln!(
                    "process {} did not stop within {:?} of SIGTERM: killing it",
                    self.child.id(),
                    self.grace
                );
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        t.elapsed()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// waiting

/// Calls `f` every `every` until it returns true or `limit` has passed; whether it did.
pub fn wait_for(limit: Duration, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    retry(limit, every, &mut f, |ok| *ok)
}

/// Calls `f` every `every` until `done` accepts its value or `limit` has passed: the value
/// accepted, or the last one.
pub fn retry<T>(
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> T,
    mut done: impl FnMut(&T) -> bool,
) -> T {
    let t = Instant::now();
    loop {
        let v = f();
        if done(&v) || t.elapsed() >= limit {
            return v;
        }
        std::thread::sleep(every);
    }
}

/// Waits until `file` holds `needle` (a log line a process prints once it is ready).
pub fn wait_for_text(file: &Path, needle: &str, limit: Duration) -> bool {
    wait_for(limit, Duration::from_millis(50), || {
        std::fs::read_to_string(file).is_ok_and(|s| s.contains(needle))
    })
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// files

/// `temp_dir()/strato-<tag>`, emptied and created; removed on drop (or, with
/// [`TempDir::keep_on_panic`], left for inspection when the test fails).
pub struct TempDir {
    path: PathBuf,
    keep_on_panic: bool,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("strato-{tag}"));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir {
            path,
            keep_on_panic: false,
        }
    }

    /// Leaves the directory (logs, configs) behind when the test panics.
    pub fn keep_on_panic(mut self) -> TempDir {
        self.keep_on_panic = true;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside it.
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep_on_panic && std::thread::panicking() {
            eprintln!("kept {} for inspection", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
