//! `strato run` with an `[api]` section serves the tenant API from its state directory, and a
//! restart of the daemon restores what was created (root: `strato run` needs it).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM for a clean stop, then make sure.
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &Path) -> Daemon {
    let child = Command::new(env!("CARGO_BIN_EXE_strato-e2e"))
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start strato run");
    Daemon(child)
}

fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> Option<(u16, serde_json::Value)> {
    let b = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("X-Auth-Token", "admin-token");
    let resp = match body {
        Some(s) => agent.run(
            b.header("Content-Type", "application/json")
                .body(s.to_string())
                .unwrap(),
        ),
        None => agent.run(b.body(()).unwrap()),
    };
    let mut resp = resp.ok()?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().ok()?;
    Some((status, serde_json::from_str(&text).unwrap_or_default()))
}

fn wait_up(agent: &ureq::Agent, base: &str) {
    let t = Instant::now();
    while call(agent, "GET", &format!("{base}/v2.0/networks"), None).is_none() {
        assert!(t.elapsed() < Duration::from_secs(20), "API never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn daemon_serves_the_api_and_restores_it_after_a_restart() {
    strato_labs::skip_unless_root!("daemon_serves_the_api_and_restores_it_after_a_restart");
    let dir = std::env::temp_dir().join(format!("strato-daemon-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("strato.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ncontrol_socket = \"{d}/strato.sock\"\nstate_dir = \"{d}/state\"\n\
             [bridge]\nfail_mode = \"secure\"\n\
             [api]\nlisten = \"127.0.0.1:{port}\"\n\
             [[api.token]]\ntoken = \"admin-token\"\nrole = \"provider\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let base = format!("http://127.0.0.1:{port}");

    let d = start(&config);
    wait_up(&agent, &base);
    let (st, v) = call(
        &agent,
        "POST",
        &format!("{base}/v2.0/networks"),
        Some(r#"{"network": {"name": "blue", "tenant_id": "t1"}}"#),
    )
    .unwrap();
    assert_eq!(st, 201, "{v}");
    let id = v["network"]["id"].as_str().unwrap().to_string();
    let vni = v["network"]["provider:segmentation_id"].clone();
    drop(d);

    assert!(
        dir.join("state/tenant.sqlite").exists(),
        "the store lives in the state directory"
    );
    let _d = start(&config);
    wait_up(&agent, &base);
    let (st, v) = call(&agent, "GET", &format!("{base}/v2.0/networks/{id}"), None).unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["network"]["name"], "blue");
    assert_eq!(v["network"]["provider:segmentation_id"], vni);
    drop(_d);
    let _ = std::fs::remove_dir_all(&dir);
}
