//! The `strato` command: the daemon (`run`), its control client (`ctl`), the netns lab (`lab`),
//! the benchmarks (`bench`) and the demo (`demo`).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// strato: a userspace virtual switch for hypervisor hosts, with its SDN controller inside.
#[derive(Parser)]
#[command(name = "strato", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the switch daemon in the foreground (until SIGINT/SIGTERM).
    Run {
        /// The config file (TOML: `[daemon]`, `[bridge]`, `[[port]]`; see the README).
        #[arg(long, value_name = "FILE")]
        config: std::path::PathBuf,
        /// Check the config file and exit.
        #[arg(long)]
        check: bool,
    },
    /// Talk to a running daemon (show, add-port, del-port, dump-flows, dump-dpflows, stats).
    Ctl(strato_ctl::CtlArgs),
    /// Generate packets over AF_XDP (or count them with --sink), reporting pps each second.
    Gen(strato_labs::traffic::GenArgs),
    /// Build, use and tear down netns/veth labs from a topology file.
    #[command(subcommand)]
    Lab(strato_labs::lab::LabCmd),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// The demo: two hypervisor hosts, two tenants on the same CIDR, VXLAN between them.
    ///
    /// As root: a real lab of namespaces (two hosts each running `strato run` with a `[tenant]`
    /// section, four VMs on taps and veths, DHCP, pings inside and across tenants, counters),
    /// torn down at the end. Not root, or with --memory: the same topology in memory.
    Demo {
        /// Packets (pings, or frames in memory) each check sends.
        #[arg(long, default_value_t = 5)]
        packets: u32,
        /// Run the in-memory demo (no namespaces, no root needed).
        #[arg(long)]
        memory: bool,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// The side-by-side benchmark on real veths: the same generator through strato (AF_XDP),
    /// the Linux bridge, Open vSwitch's userspace datapath and a raw AF_XDP forward, in one run.
    Lab(strato_bench::lab::BenchLabArgs),
    /// flow_mods/s through one OpenFlow 1.3 channel, and the time from a flow_mod to new
    /// behaviour on cached traffic (targets: >= 200,000 flow_mods/s; <= 10 ms).
    ///
    /// Both run against an in-process controller with memory ports, over TCP on loopback.
    /// flow_mods/s: --flows distinct ADDs written back to back (no waiting per message), then
    /// one barrier; timed from the first flow_mod byte to the barrier reply, after which the
    /// pipeline must hold exactly those rules. revalidate_ms: with --megaflows UDP flows cached
    /// as one megaflow each and the traffic still flowing, the time from writing ONE flow_mod
    /// that sends all of it to another port until every flow of a probe set (--probes, spread
    /// over all the flows) has come out of the new port; median and max of --rounds. Any
    /// OpenFlow ERROR fails the run.
    Openflow(strato_bench::openflow::BenchOfArgs),
    /// Port creates/s and latency over the tenant API, a mixed read/write load, and the time
    /// from a bound port's create answer to its first delivered frame (targets: >= 2,000
    /// creates/s; first packet <= 10 ms p99).
    ///
    /// All in-process on loopback: the tenant API on SQLite in a temporary directory, one
    /// controller with memory ports and a tenant agent (host hv1) following it. Progress and
    /// the summary go to stderr; --json prints the numbers on stdout.
    Api(strato_bench::api::BenchApiArgs),
    /// (internal) Raw AF_XDP forward between two interfaces, no lookup: the wires' limit.
    #[command(hide = true)]
    RawForward {
        /// First interface.
        #[arg(long)]
        a: String,
        /// Second interface.
        #[arg(long)]
        b: String,
    },
    /// Drive the full worker pipeline on one pinned core over memory ports with prebuilt
    /// 64-byte frames; report Mpps and ns per packet beside a plain rx->tx copy loop over the
    /// same ports (the harness's own limit), measured in the same run.
    ///
    /// Instruction counts: run twice under `valgrind --tool=callgrind` with different
    /// `--packets` and divide the difference of the totals by the difference of the packets.
    Pipeline {
        /// Run only this scenario (repeatable). Default: all five.
        #[arg(long = "scenario", value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(strato_bench::pipeline::SCENARIOS))]
        scenarios: Vec<String>,
        /// Packets processed per measured run, after warm-up.
        #[arg(long, default_value_t = 20_000_000)]
        packets: u64,
        /// Core to pin the worker to (default: the last core).
        #[arg(long)]
        core: Option<usize>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Skip the baseline copy loop (for instruction counts of the pipeline alone).
        #[arg(long)]
        no_baseline: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Run { config, check } => run_daemon(&config, check),
        Cmd::Ctl(args) => return strato_ctl::main(args),
        Cmd::Lab(cmd) => return strato_labs::lab::main(cmd),
        Cmd::Gen(args) => return strato_labs::traffic::main(args),
        Cmd::Bench(BenchCmd::Pipeline {
            scenarios,
            packets,
            core,
            json,
            no_baseline,
        }) => bench_pipeline(scenarios, packets, core, json, no_baseline),
        Cmd::Bench(BenchCmd::Lab(args)) => bench_lab(&args),
        Cmd::Bench(BenchCmd::Openflow(args)) => bench_openflow(&args),
        Cmd::Bench(BenchCmd::Api(args)) => bench_api(&args),
        Cmd::Bench(BenchCmd::RawForward { a, b }) => {
            strato_bench::lab::raw_forward(&a, &b).map_err(MainError::from)
        }
        Cmd::Demo { packets, memory } => demo(packets, memory),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strato: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why a `strato` command failed; `main` prints it as `strato: MESSAGE`.
#[derive(Debug, displaydoc::Display, thiserror::Error)]
enum MainError {
    /// --packets must be at least 1
    NoPackets,
    /// {name}: {source}
    Scenario {
        /// The scenario.
        name: String,
        /// Why it failed.
        source: strato_bench::pipeline::BenchError,
    },
    /// cannot print the result as JSON: {0}
    Json(#[from] serde_json::Error),
    /// `bench lab` failed.
    #[displaydoc("{0}")]
    BenchLab(#[from] strato_bench::lab::BenchLabError),
    /// `bench openflow` failed.
    #[displaydoc("{0}")]
    BenchOpenflow(#[from] strato_bench::openflow::BenchOfError),
    /// `bench api` failed.
    #[displaydoc("{0}")]
    BenchApi(#[from] strato_bench::api::BenchApiError),
    /// `bench raw-forward` failed.
    #[displaydoc("{0}")]
    RawForward(#[from] strato_bench::lab::RawForwardError),
    /// The in-memory demo failed.
    #[displaydoc("{0}")]
    Demo(#[from] strato_switch::controller::ControlError),
    /// The demo on real hosts failed.
    #[displaydoc("{0}")]
    TenantDemo(#[from] strato_labs::demo::DemoError),
    /// finding the strato binary: {0}
    CurrentExe(#[source] std::io::Error),
    /// The daemon could not start, or its config is refused.
    #[displaydoc("{0}")]
    Daemon(#[from] strato_control::daemon::DaemonError),
}

fn bench_pipeline(
    scenarios: Vec<String>,
    packets: u64,
    core: Option<usize>,
    json: bool,
    no_baseline: bool,
) -> Result<(), MainError> {
    if packets == 0 {
        return Err(MainError::NoPackets);
    }
    let names: Vec<&str> = if scenarios.is_empty() {
        strato_bench::pipeline::SCENARIOS.to_vec()
    } else {
        scenarios.iter().map(String::as_str).collect()
    };
    let core = core.unwrap_or_else(|| core_count().saturating_sub(1));
    let opts = strato_bench::pipeline::Options {
        packets,
        core: Some(core),
        baseline: !no_baseline,
    };
    let mut results = Vec::new();
    for name in names {
        if !json {
            eprintln!("bench: {name}: building and warming up ...");
        }
        let r = strato_bench::pipeline::run_scenario(name, &opts).map_err(|source| {
            MainError::Scenario {
                name: name.to_string(),
                source,
            }
        })?;
        if !json {
            eprintln!("bench: {name}: {:.2} Mpps", r.mpps);
        }
        results.push(r);
    }
    if json {
        let out = serde_json::json!({ "scenarios": results });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", strato_bench::pipeline::table(&results, packets, core));
    }
    Ok(())
}

fn bench_lab(args: &strato_bench::lab::BenchLabArgs) -> Result<(), MainError> {
    let r = strato_bench::lab::run(args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", strato_bench::lab::table(&r));
    }
    Ok(())
}

fn bench_openflow(args: &strato_bench::openflow::BenchOfArgs) -> Result<(), MainError> {
    let quiet = args.json;
    let r = strato_bench::openflow::run(args, &mut |line: &str| {
        if !quiet {
            eprintln!("bench openflow: {line}");
        }
    })?;
    if args.json {
        println!("{}", r.json());
    } else {
        print!("{}", strato_bench::openflow::table(&r));
    }
    Ok(())
}

fn bench_api(args: &strato_bench::api::BenchApiArgs) -> Result<(), MainError> {
    let r = strato_bench::api::run(args, &mut |line: &str| {
        eprintln!("bench api: {line}");
    })?;
    eprint!("{}", strato_bench::api::summary(&r));
    if args.json {
        println!("{}", r.json());
    }
    Ok(())
}

fn demo(packets: u32, memory: bool) -> Result<(), MainError> {
    if packets == 0 {
        return Err(MainError::NoPackets);
    }
    if !memory && !strato_control::daemon::is_root() {
        println!(
            "strato demo: not root, so no namespaces, taps or AF_XDP: running the in-memory demo \
             (as root it runs on real hosts; `--memory` chooses this one)\n"
        );
    }
    if memory || !strato_control::daemon::is_root() {
        return Ok(strato_labs::demo::run(packets)?);
    }
    let exe = std::env::current_exe().map_err(MainError::CurrentExe)?;
    Ok(strato_labs::demo::run_tenant(&exe, packets)?)
}

fn run_daemon(path: &std::path::Path, check: bool) -> Result<(), MainError> {
    let cfg = strato_control::daemon::load(path)?;
    if check {
        println!("{}: ok ({} ports)", path.display(), cfg.ports.len());
        return Ok(());
    }
    Ok(strato_control::daemon::run(cfg)?)
}

fn core_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
