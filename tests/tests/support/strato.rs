//! The `strato` binary under test: running it, its daemon (`strato run`), its labs
//! (`strato lab`), `strato ctl`, and the tenant API the daemon serves.
//!
//! The binary is this package's `strato-e2e` (control/src/main.rs built here: see
//! tests/Cargo.toml), which cargo builds before these tests and names in
//! `CARGO_BIN_EXE_strato-e2e`.

use super::{text, Proc, TempDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use strato_labs::netns::{self, Netns};

/// The binary under test.
pub const STRATO: &str = env!("CARGO_BIN_EXE_strato-e2e");

/// Where `strato lab up` keeps a lab's daemon files (pid, log, control socket).
pub const LAB_RUN_DIR: &str = "/run/strato-lab";

/// `strato ARGS`, run to completion.
pub fn strato(args: &[&str]) -> Output {
    Command::new(STRATO)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the strato binary")
}

/// `strato ctl --socket SOCK --json ARGS`, which must succeed: its JSON.
pub fn ctl_json(sock: impl AsRef<Path>, args: &[&str]) -> Value {
    let o = Command::new(STRATO)
        .args(["ctl", "--socket"])
        .arg(sock.as_ref())
        .arg("--json")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the strato binary");
    assert!(o.status.success(), "strato ctl {args:?}: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("ctl JSON: {e}: {}", text(&o)))
}

// ---------------------------------------------------------------------------------------------
// the daemon

/// A daemon config file `strato.toml` in `dir`: the control socket (`strato.sock`) and the
/// state directory (`state/`) there too, fail_mode secure, the tenant API on `api_listen`
/// with one provider token, then `more` (further tables: `[tenant]`, `[[api.host]]`, ...).
pub struct DaemonConfig<'a> {
    pub dir: &'a Path,
    /// `[daemon] log_level`, when not the default.
    pub log_level: Option<&'a str>,
    pub api_listen: &'a str,
    pub provider_token: &'a str,
    pub more: &'a str,
}

impl DaemonConfig<'_> {
    /// Writes the file; its path.
    pub fn write(&self) -> PathBuf {
        let d = self.dir.display();
        let log = self
            .log_level
            .map(|l| format!("log_level = \"{l}\"\n"))
            .unwrap_or_default();
        let text = format!(
            "[daemon]\ncontrol_socket = \"{d}/strato.sock\"\nstate_dir = \"{d}/state\"\n{log}\
             [bridge]\nfail_mode = \"secure\"\n\
             [api]\nlisten = \"{}\"\n\
             [[api.token]]\ntoken = \"{}\"\nrole = \"provider\"\n{}",
            self.api_listen, self.provider_token, self.more
        );
        let path = self.dir.join("strato.toml");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// The control socket the config names.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("strato.sock")
    }
}

/// `strato run --config FILE` (inside a namespace, or here), its output appended to a log
/// file (or dropped); stopped with SIGTERM on drop (SIGKILL after 15 s).
pub struct Daemon {
    proc: Proc,
}

impl Daemon {
    pub fn start(config: &Path, ns: Option<&Netns>, log: Option<&Path>) -> Daemon {
        let mut c = match ns {
            // `ip netns exec` execs the command: the child is strato itself.
            Some(ns) => ns.command(STRATO),
            None => Command::new(STRATO),
        };
        c.arg("run")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null());
        match log {
            Some(log) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap_or_else(|e| panic!("daemon log {}: {e}", log.display()));
                let f2 = f.try_clone().expect("daemon log");
                c.stdout(f).stderr(f2);
            }
            None => {
                c.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = c.spawn().expect("start strato run");
        Daemon {
            proc: Proc::new(child, Duration::from_secs(15)),
        }
    }

    /// SIGTERM, then waits for the exit; how long that took.
    pub fn stop(mut self) -> Duration {
        self.proc.stop()
    }
}

// ---------------------------------------------------------------------------------------------
// the tenant API over HTTP

/// An HTTP client that returns error statuses as responses, with a 30 s limit per request.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// One API request with `X-Auth-Token: token`: the status and the JSON body (`null` when it
/// is not JSON), or why there was no response.
pub fn api_call(
    agent: &ureq::Agent,
    token: &str,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let b = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("X-Auth-Token", token);
    let resp = match body {
        Some(v) => agent.run(
            b.header("Content-Type", "application/json")
                .body(v.to_string())
                .map_err(|e| e.to_string())?,
        ),
        None => agent.run(b.body(()).map_err(|e| e.to_string())?),
    };
    let mut resp = resp.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Waits until the API at `base` (`http://host:port`) answers `GET /v2.0/networks`, failing
/// the test after `limit`; how long that took.
pub fn wait_api(agent: &ureq::Agent, token: &str, base: &str, limit: Duration) -> Duration {
    let t = Instant::now();
    let url = format!("{base}/v2.0/networks");
    while api_call(agent, token, "GET", &url, None).is_err() {
        assert!(t.elapsed() < limit, "the API at {base} never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    t.elapsed()
}

// ---------------------------------------------------------------------------------------------
// labs

/// A lab name (at most 6 characters, letters and digits) unique to this run: the run prefix,
/// or `tag` and the prefix's last 5 characters when it is longer.
pub fn lab_name(tag: char) -> String {
    let p = netns::run_prefix();
    let n = if p.len() <= 6 {
        p
    } else {
        format!("{tag}{}", &p[p.len() - 5..])
    };
    assert!(
        n.len() <= 6 && n.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{n}"
    );
    n
}

/// A lab of topology file `file`, named `name`: `strato lab down FILE` on drop (which also
/// ends its daemon and every process left in its namespaces), so a failed assertion leaves
/// nothing behind.
pub struct StratoLab {
    pub file: PathBuf,
    pub name: String,
    /// The file's directory, when the lab owns it: removed after `down` (fields drop after
    /// `drop` has run).
    _dir: Option<TempDir>,
}

impl StratoLab {
    /// Writes `topology` to `file` and guards it; the lab is not up yet.
    pub fn new(file: PathBuf, name: &str, topology: &str) -> StratoLab {
        std::fs::write(&file, topology).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        StratoLab {
            file,
            name: name.to_string(),
            _dir: None,
        }
    }

    /// [`StratoLab::new`] with the file `lab.toml` in a temporary directory of its own.
    pub fn in_temp_dir(tag: &str, name: &str, topology: &str) -> StratoLab {
        let dir = TempDir::new(tag);
        let mut lab = StratoLab::new(dir.join("lab.toml"), name, topology);
        lab._dir = Some(dir);
        lab
    }

    /// `strato lab up FILE`.
    pub fn up(&self) -> Output {
        strato(&["lab", "up", self.path()])
    }

    /// `strato lab down FILE`.
    pub fn down(&self) -> Output {
        strato(&["lab", "down", self.path()])
    }

    /// The file's path, as text (for `strato lab` arguments).
    pub fn path(&self) -> &str {
        self.file.to_str().expect("a UTF-8 temporary path")
    }

    pub fn run_dir(&self) -> PathBuf {
        Path::new(LAB_RUN_DIR).join(&self.name)
    }

    /// The lab daemon's control socket.
    pub fn socket(&self) -> PathBuf {
        self.run_dir().join("strato.sock")
    }

    /// The lab daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.run_dir().join("strato.log")).unwrap_or_default()
    }

    /// The lab daemon's pid (from its pid file).
    pub fn pid(&self) -> u32 {
        let f = self.run_dir().join("strato.pid");
        std::fs::read_to_string(&f)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
    }
}

impl Drop for StratoLab {
    fn drop(&mut self) {
        // Not `down`: a panic here, while a failed test unwinds, would abort the run.
        let o = Command::new(STRATO)
            .args(["lab", "down"])
            .arg(&self.file)
            .stdin(Stdio::null())
            .output();
        match o {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("lab guard: `strato lab down` failed:\n{}", text(&o)),
            Err(e) => eprintln!("lab guard: cannot run strato: {e}"),
        }
    }
}
