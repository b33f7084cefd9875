//! `strato run` with an `[api]` section serves the tenant API from its state directory, and a
//! restart of the daemon restores what was created (root: `strato run` needs it).

mod support;

use serde_json::json;
use std::net::TcpListener;
use std::time::Duration;
use support::strato::{api_call, http_agent, wait_api, Daemon, DaemonConfig};
use support::TempDir;

const TOKEN: &str = "admin-token";

#[test]
fn daemon_serves_the_api_and_restores_it_after_a_restart() {
    support::skip_unless_root!("daemon_serves_the_api_and_restores_it_after_a_restart");
    let dir = TempDir::new(&format!("daemon-api-{}", std::process::id()));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let config = DaemonConfig {
        dir: dir.path(),
        log_level: None,
        api_listen: &listen,
        provider_token: TOKEN,
        more: "",
    }
    .write();
    let agent = http_agent();
    let base = format!("http://{listen}");
    let call = |method: &str, path: &str, body: Option<serde_json::Value>| {
        api_call(
            &agent,
            TOKEN,
            method,
            &format!("{base}{path}"),
            body.as_ref(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };

    let d = Daemon::start(&config, None, None);
    wait_api(&agent, TOKEN, &base, Duration::from_secs(20));
    let (st, v) = call(
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {"name": "blue", "tenant_id": "t1"}})),
    );
    assert_eq!(st, 201, "{v}");
    let id = v["network"]["id"].as_str().unwrap().to_string();
    let vni = v["network"]["provider:segmentation_id"].clone();
    d.stop();

    assert!(
        dir.join("state/tenant.sqlite").exists(),
        "the store lives in the state directory"
    );
    let d = Daemon::start(&config, None, None);
    wait_api(&agent, TOKEN, &base, Duration::from_secs(20));
    let (st, v) = call("GET", &format!("/v2.0/networks/{id}"), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["network"]["name"], "blue");
    assert_eq!(v["network"]["provider:segmentation_id"], vni);
    d.stop();
}
