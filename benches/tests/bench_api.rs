//! `strato bench api` with tiny counts: the whole run (tenant API over loopback HTTP, SQLite in
//! a temporary directory, controller with memory ports and the tenant agent) completes, and its
//! `--json` object has exactly the five keys, each a number greater than zero.

use strato_bench::api::{run, summary, BenchApiArgs};

#[test]
fn bench_api_smoke() {
    let args = BenchApiArgs {
        ports: 24,
        clients: 2,
        first_packet: 4,
        requests: 40,
        timeout: 30,
        json: true,
    };
    let mut lines = Vec::new();
    let r = run(&args, &mut |l: &str| lines.push(l.to_string())).expect("bench api run");
    assert!(!lines.is_empty(), "no progress lines");
    eprint!("{}", summary(&r));

    let v = r.json();
    let obj = v.as_object().expect("a JSON object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "api_requests_per_s",
            "create_p50_ms",
            "create_p99_ms",
            "first_packet_p99_ms",
            "port_creates_per_s"
        ]
    );
    for (k, x) in obj {
        let n = x
            .as_f64()
            .unwrap_or_else(|| panic!("{k} is not a number: {x}"));
        assert!(n > 0.0 && n.is_finite(), "{k} = {n}");
    }

    assert_eq!(r.creates.ports, 24);
    assert_eq!(r.mixed.requests, 40);
    assert_eq!(r.mixed.writes, 10);
    assert_eq!(r.first_packet.samples, 4);
    assert!(r.creates.p50_ms <= r.creates.p99_ms);
    assert!(r.first_packet.p50_ms <= r.first_packet.p99_ms);
    assert!(r.first_packet.mean_frames_sent >= 1.0);
    assert_eq!(
        r.attach_requests, 0,
        "every interface was attached beforehand"
    );
}
