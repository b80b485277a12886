//! Load simulator for the hub. See `loadtest --help` and loadtest/README.md.

mod compare;
mod config;
mod consoles;
mod driver;
mod http;
mod nats;
mod relay;
mod run;
mod stats;
mod wire;

use clap::{Args, Parser, Subcommand};
use config::Target;
use std::path::PathBuf;

/// mimalloc, as in the hub: the simulator shares the machine's two cores with the hub
/// it measures, so what it spends in glibc's allocator is taken from the hub.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "loadtest", about = "Load simulator for the hub")]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A peak hour against the hub: customers, agents, a supervisor, a bot.
    BusyHour(Common),
    /// A short run for CI (50 customers, 5 agents, 200 msg/s, 10 s); fails on loss or disorder.
    Smoke(Common),
    /// The same fan-out against the bare relay (started on a free port unless --url).
    Relay(Common),
    /// The same fan-out against nats-server's WebSocket listener (started unless --url).
    Nats(Common),
    /// The hub, the bare relay and nats-server on the same workload, in alternated
    /// rounds (a fresh hub on a fresh store each time unless --url), with the peer
    /// targets worked out from the medians.
    Compare {
        #[command(flatten)]
        common: Common,
        /// Rounds; each runs every target once, in a rotated order.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// The hub binary to start (default: `hub` beside this binary).
        #[arg(long)]
        hub_bin: Option<PathBuf>,
        /// Peers to run beside the hub: `relay`, `nats`, comma-separated (or `none`).
        #[arg(long, default_value = "relay,nats")]
        peers: String,
        /// The hub's workload: `busy-hour` (agents work, a bot, page reloads) or
        /// `fanout` (the peers' workload: consoles only watch, no bot, no reloads).
        #[arg(long, default_value = "busy-hour")]
        hub_workload: String,
    },
    /// A bare WebSocket relay: acks every customer frame and broadcasts it to consoles.
    RelayServer {
        #[arg(long, default_value = "127.0.0.1:9090")]
        addr: String,
    },
    /// Internal: one customer driver, spoken to over stdin/stdout.
    #[command(hide = true)]
    Worker,
}

#[derive(Args, Clone)]
struct Common {
    /// Hub base URL (http://HOST:PORT); relay/nats: leave out to start one.
    #[arg(long)]
    url: Option<String>,
    /// The hub's HUB_ADMIN_TOKEN (default: $HUB_ADMIN_TOKEN).
    #[arg(long)]
    admin_token: Option<String>,
    #[arg(long)]
    customers: Option<u32>,
    #[arg(long)]
    agents: Option<u32>,
    /// Peak customer messages per second (Poisson, open loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Load duration: 60s, 2m, 500ms, or seconds.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<f64>,
    /// Fraction of the duration spent ramping up, and again ramping down (0..0.5).
    #[arg(long)]
    ramp: Option<f64>,
    /// Percent of customers on the bot channel.
    #[arg(long)]
    bot_percent: Option<u32>,
    #[arg(long, default_value = "bot")]
    bot_channel: String,
    /// Loopback source addresses to spread customer sockets over (0: automatic).
    #[arg(long, default_value_t = 0)]
    source_ips: usize,
    /// Worker processes driving the customers (0: in this process).
    #[arg(long, default_value_t = 0)]
    workers: u32,
    /// Planned customer reconnects (page reloads) per second.
    #[arg(long)]
    churn: Option<f64>,
    /// Planned console reloads per second, over all consoles: a console drops its
    /// connection without a close frame and resumes with `since` (hub only).
    #[arg(long)]
    console_churn: Option<f64>,
    /// Write the JSON report here.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Consoles only watch: no agent actions (with --bot-percent 0 --churn 0, the hub
    /// gets the same fan-out workload as the relay and nats-server).
    #[arg(long)]
    watch_only: bool,
    /// Concurrent HTTP actions per agent.
    #[arg(long, default_value_t = 8)]
    agent_concurrency: usize,
    /// How long to wait for outstanding acks after the last send.
    #[arg(long, value_parser = parse_duration)]
    ack_wait: Option<f64>,
    /// How long to wait for agents to finish their work after the load.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    drain: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How often to print a progress line (whole seconds, at least 1s): each shows the
    /// worst second's send -> ack p99 since the line before, so `1s` shows every second's.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    progress: f64,
}

fn parse_duration(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, mult) = if let Some(v) = s.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60.0)
    } else if let Some(v) = s.strip_suffix('h') {
        (v, 3600.0)
    } else {
        (s, 1.0)
    };
    num.trim()
        .parse::<f64>()
        .map(|v| v * mult)
        .map_err(|_| format!("not a duration: {s}"))
}

fn opts(mode: &str, target: Target, c: Common) -> run::Opts {
    let smoke = mode == "smoke";
    let (customers, agents, rate, duration, ramp, churn, console_churn) = if smoke {
        (50, 5, 200.0, 10.0, 0.1, 1.0, 0.5)
    } else {
        (5000, 100, 2000.0, 60.0, 0.2, 2.0, 0.05)
    };
    run::Opts {
        mode: mode.to_string(),
        target,
        url: c.url.unwrap_or_default(),
        admin_token: c
            .admin_token
            .or_else(|| std::env::var("HUB_ADMIN_TOKEN").ok()),
        customers: c.customers.unwrap_or(customers),
        agents: c.agents.unwrap_or(agents).max(1),
        rate: c.rate.unwrap_or(rate),
        duration_s: c.duration.unwrap_or(duration),
        ramp: c.ramp.unwrap_or(ramp).clamp(0.0, 0.5),
        bot_percent: if target == Target::Hub {
            c.bot_percent.unwrap_or(10).min(100)
        } else {
            0
        },
        bot_channel: c.bot_channel,
        source_ips: c.source_ips,
        workers: c.workers,
        churn: if target == Target::Hub {
            c.churn.unwrap_or(churn)
        } else {
            c.churn.unwrap_or(0.0)
        },
        // Only the hub replays on a resume; a peer's console would have to reset.
        console_churn: if target == Target::Hub {
            c.console_churn.unwrap_or(console_churn).max(0.0)
        } else {
            0.0
        },
        output: c.output,
        agent_concurrency: c.agent_concurrency,
        watch_only: c.watch_only,
        ack_wait_s: c.ack_wait.unwrap_or(if smoke { 10.0 } else { 30.0 }),
        drain_s: c.drain,
        seed: c.seed,
        progress_s: c.progress.round().max(1.0) as u64,
    }
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async move {
        match cli.cmd {
            Command::BusyHour(c) => run::run(opts("busy-hour", Target::Hub, c)).await,
            Command::Smoke(c) => run::run(opts("smoke", Target::Hub, c)).await,
            Command::Relay(c) => run::run(opts("relay", Target::Relay, c)).await,
            Command::Nats(c) => run::run(opts("nats", Target::Nats, c)).await,
            Command::Compare {
                common,
                rounds,
                hub_bin,
                peers,
                hub_workload,
            } => {
                let mut hub = common.clone();
                match hub_workload.as_str() {
                    "busy-hour" => {}
                    "fanout" => {
                        hub.watch_only = true;
                        hub.bot_percent = Some(0);
                        hub.churn = Some(0.0);
                        hub.console_churn = Some(0.0);
                    }
                    other => {
                        eprintln!(
                            "loadtest compare: unknown --hub-workload {other} (busy-hour, fanout)"
                        );
                        return 2;
                    }
                }
                let mut peer_opts = Vec::new();
                for p in peers.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let mut peer = common.clone();
                    // The peers start their own server.
                    peer.url = None;
                    match p {
                        "relay" => peer_opts.push(opts("relay", Target::Relay, peer)),
                        "nats" => peer_opts.push(opts("nats", Target::Nats, peer)),
                        "none" => {}
                        other => {
                            eprintln!("loadtest compare: unknown peer {other} (relay, nats, none)");
                            return 2;
                        }
                    }
                }
                let output = common.output.clone();
                compare::compare(compare::CompareOpts {
                    hub: opts("busy-hour", Target::Hub, hub),
                    peers: peer_opts,
                    rounds,
                    hub_bin,
                    output,
                })
                .await
            }
            Command::RelayServer { addr } => match relay::serve(&addr).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("relay-server: {e}");
                    2
                }
            },
            Command::Worker => run::worker_main().await,
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
