//! `strato gen`: a packet generator and sink over AF_XDP, for benchmarks and labs.
//!
//! - `strato gen --iface IF [--rate PPS] [--size 64] [--flows N] [--duration S | --count N]`
//!   sends UDP frames from one AF_XDP socket; `--flows N` varies the UDP source port over N
//!   values (N distinct 5-tuples), so a switch sees N flows.
//! - `strato gen --sink --iface IF [--duration S]` counts what arrives.
//!
//! Both print packets per second once a second and a summary at the end (`--json`: the summary
//! as JSON). Run them inside a lab namespace (`strato lab exec HOST -- strato gen ...`). They
//! stop on SIGINT/SIGTERM, closing the socket (which removes the XDP program).

use clap::Args;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strato_datapath::buf::BufPool;
use strato_datapath::port::afxdp::{AfXdpConfig, AfXdpPort, XdpMode};
use strato_datapath::port::BURST;

/// `strato gen` options.
#[derive(Args, Debug, Clone)]
pub struct GenArgs {
    /// Interface to send on (or, with --sink, to receive on).
    #[arg(long, value_name = "IF")]
    pub iface: String,
    /// Count received packets instead of sending.
    #[arg(long)]
    pub sink: bool,
    /// Packets per second to send (default: as fast as the socket takes them).
    #[arg(long, value_name = "PPS", value_parser = parse_rate)]
    pub rate: Option<u64>,
    /// Frame size in bytes, without FCS (60..=1514; 64 is the usual benchmark size).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(60..=1514))]
    pub size: u16,
    /// Distinct flows (UDP source ports) to cycle through.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub flows: u32,
    /// Stop after this many seconds.
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Stop after this many packets (sender only).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Destination MAC (default: broadcast, so any switch floods or learns it).
    #[arg(long, default_value = "ff:ff:ff:ff:ff:ff")]
    pub dst_mac: String,
    /// Source MAC.
    #[arg(long, default_value = "02:00:00:00:00:01")]
    pub src_mac: String,
    /// Source and destination IPv4 addresses.
    #[arg(long, default_value = "10.0.0.1")]
    pub src_ip: std::net::Ipv4Addr,
    /// Destination IPv4 address.
    #[arg(long, default_value = "10.0.0.2")]
    pub dst_ip: std::net::Ipv4Addr,
    /// XDP mode: auto, native or skb.
    #[arg(long, default_value = "auto", value_parser = ["auto", "native", "skb"])]
    pub xdp_mode: String,
    /// Print the summary as JSON (per-second lines still go to stderr).
    #[arg(long)]
    pub json: bool,
}

fn parse_rate(s: &str) -> Result<u64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of packets per second"))?;
    if v.is_nan() || v < 1.0 || !v.is_finite() {
        return Err(format!("rate must be at least 1 packet per second (got {s}); leave --rate out to send as fast as possible"));
    }
    Ok(v as u64)
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<_> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!(
            "{s:?} is not a MAC address (use xx:xx:xx:xx:xx:xx)"
        ));
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        m[i] = u8::from_str_radix(p, 16).map_err(|_| format!("{s:?} is not a MAC address"))?;
    }
    Ok(m)
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GenSummary {
    /// "send" or "sink".
    pub role: &'static str,
    /// Interface.
    pub iface: String,
    /// Packets sent or received.
    pub packets: u64,
    /// Seconds measured.
    pub seconds: f64,
    /// Average packets per second.
    pub pps: f64,
    /// Frames the socket refused (send ring full), retried.
    pub tx_busy: u64,
}

/// Builds the frames of `flows` distinct flows.
pub fn frames(a: &GenArgs) -> Result<Vec<Vec<u8>>, String> {
    let (src, dst) = (parse_mac(&a.src_mac)?, parse_mac(&a.dst_mac)?);
    let payload = a.size as usize - 14 - 20 - 8;
    Ok((0..a.flows)
        .map(|i| {
            let b = etherparse::PacketBuilder::ethernet2(src, dst)
                .ipv4(a.src_ip.octets(), a.dst_ip.octets(), 64)
                .udp(10_000u16.wrapping_add(i as u16), 9);
            let mut v = Vec::with_capacity(a.size as usize);
            // Cannot fail: writing into a Vec.
            let _ = b.write(&mut v, &vec![0u8; payload]);
            v
        })
        .collect())
}

/// Runs the generator or the sink.
pub fn run(a: &GenArgs) -> Result<GenSummary, String> {
    let mut cfg = AfXdpConfig::new(a.iface.clone());
    cfg.mode = match a.xdp_mode.as_str() {
        "native" => XdpMode::Native,
        "skb" => XdpMode::Skb,
        _ => XdpMode::Auto,
    };
    let mut port = AfXdpPort::open(&cfg).map_err(|e| format!("{}: {e}", a.iface))?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    let deadline = a.duration.map(Duration::from_secs_f64);
    let mut pool = BufPool::new(4 * BURST);
    let start = Instant::now();
    let mut last = start;
    let (mut total, mut at_last, mut busy) = (0u64, 0u64, 0u64);
    let role = if a.sink { "sink" } else { "send" };
    let frames = if a.sink { Vec::new() } else { frames(a)? };
    let mut next = 0usize;
    let mut bufs = [0u32; BURST];
    loop {
        if stop.load(Ordering::Relaxed)
            || deadline.is_some_and(|d| start.elapsed() >= d)
            || a.count.is_some_and(|c| total >= c)
        {
            break;
        }
        if a.sink {
            let r = port.rx_burst(&mut pool, &mut bufs);
            if let Some(e) = r.error {
                return Err(format!("{}: {e}", a.iface));
            }
            total += r.n as u64;
            for &b in &bufs[..r.n] {
                pool.free(b);
            }
            if r.n == 0 {
                std::thread::sleep(Duration::from_micros(50));
            }
        } else {
            // How many we may send now: the rate's budget, a burst at most.
            let mut want = BURST as u64;
            if let Some(rate) = a.rate {
                let allowed = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                want = want.min(allowed.saturating_sub(total));
            }
            if let Some(c) = a.count {
                want = want.min(c - total);
            }
            if want == 0 {
                std::thread::sleep(Duration::from_micros(20));
            } else {
                let mut n = 0;
                while n < want as usize {
                    let Some(b) = pool.alloc() else { break };
                    // Cannot fail: frames are at most 1514 bytes.
                    let _ = pool.get_mut(b).fill(&frames[next]);
                    next = (next + 1) % frames.len();
                    bufs[n] = b;
                    n += 1;
                }
                let sent = port.tx(&pool, &bufs[..n]);
                if sent < n {
                    busy += (n - sent) as u64;
                    // Unsent frames are sent again next round: rewind the flow cursor.
                    next = (next + frames.len() - (n - sent) % frames.len()) % frames.len();
                }
                for &b in &bufs[..n] {
                    pool.free(b);
                }
                total += sent as u64;
            }
            // Reclaim completions even when idle.
            let _ = port.tx(&pool, &[]);
        }
        if last.elapsed() >= Duration::from_secs(1) {
            let dt = last.elapsed().as_secs_f64();
            eprintln!(
                "gen: {role} {}: {:.0} pps, total {total}",
                a.iface,
                (total - at_last) as f64 / dt
            );
            last = Instant::now();
            at_last = total;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(GenSummary {
        role,
        iface: a.iface.clone(),
        packets: total,
        seconds,
        pps: total as f64 / seconds.max(1e-9),
        tx_busy: busy,
    })
}

/// `strato gen` entry point.
pub fn main(a: GenArgs) -> ExitCode {
    if a.sink && (a.rate.is_some() || a.count.is_some()) {
        eprintln!("strato gen: --rate and --count are for sending; a sink counts what arrives");
        return ExitCode::from(2);
    }
    match run(&a) {
        Ok(s) => {
            if a.json {
                println!("{}", serde_json::to_string(&s).unwrap_or_default());
            } else {
                println!(
                    "gen: {} {}: {} packets in {:.2} s = {:.0} pps",
                    s.role, s.iface, s.packets, s.seconds, s.pps
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("strato gen: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        g: GenArgs,
    }

    #[test]
    fn rates_must_be_positive() {
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-5").is_err());
        assert!(parse_rate("abc").is_err());
        assert_eq!(parse_rate("1000").unwrap(), 1000);
        assert!(T::try_parse_from(["t", "--iface", "x", "--rate", "0"]).is_err());
        assert!(T::try_parse_from(["t", "--iface", "x", "--size", "20"]).is_err());
    }

    #[test]
    fn frames_have_the_size_and_flows_asked_for() {
        let t = T::try_parse_from(["t", "--iface", "x", "--flows", "3", "--size", "64"]).unwrap();
        let f = frames(&t.g).unwrap();
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|x| x.len() == 64));
        let ports: std::collections::HashSet<_> = f
            .iter()
            .map(|x| u16::from_be_bytes([x[34], x[35]]))
            .collect();
        assert_eq!(ports.len(), 3);
        let bad = T::try_parse_from(["t", "--iface", "x", "--dst-mac", "zz"]).unwrap();
        assert!(frames(&bad.g).is_err());
    }
}
