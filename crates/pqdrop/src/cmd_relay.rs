//! `pqdrop relay`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use pqdrop_relay::{FleetConfig, Relay, RelayConfig};

/// Run a relay that pairs senders and receivers by code number and copies
/// their (end-to-end encrypted) bytes. It never sees the secret words.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pqdrop relay                          # listens on 0.0.0.0:4733\n  \
    pqdrop relay --listen 127.0.0.1:9000\n  \
    PQDROP_RELAY=relay.example.org:4733 pqdrop send file   # use it\n  \
    pqdrop relay --redis redis://10.0.0.5:6379 --advertise relay1.example.org:4733   # one instance of a fleet\n  \
    pqdrop relay --web 127.0.0.1:8080 --public-url https://drop.example.org/   # the browser page, behind a TLS proxy\n  \
    pqdrop relay --web 0.0.0.0:443 --tls-cert fullchain.pem --tls-key key.pem --public-url https://drop.example.org/\n\n\
Logs go to stderr (RUST_LOG=debug for more). SIGTERM or Ctrl-C stops accepting,\n\
tells waiting peers, and lets running transfers finish for up to the grace period.")]
pub struct RelayArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:4733", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Codes that may wait at once per client address.
    #[arg(long, default_value_t = RelayConfig::default().max_pending_per_ip, value_name = "N")]
    pub max_pending_per_ip: usize,
    /// Codes that may wait at once per client network (IPv4 /24, IPv6 /48).
    #[arg(long, default_value_t = RelayConfig::default().max_pending_per_net, value_name = "N")]
    pub max_pending_per_net: usize,
    /// Codes that may wait at once in total.
    #[arg(long, default_value_t = RelayConfig::default().max_pending_total, value_name = "N")]
    pub max_pending: usize,
    /// Seconds a code waits for its second peer.
    #[arg(long, default_value_t = RelayConfig::default().waiting_timeout.as_secs(), value_name = "SECS")]
    pub waiting_timeout: u64,
    /// Seconds a paired transfer may stay idle.
    #[arg(long, default_value_t = RelayConfig::default().idle_timeout.as_secs(), value_name = "SECS")]
    pub idle_timeout: u64,
    /// Move bytes with Linux splice(2) instead of a user-space copy.
    #[arg(long)]
    pub splice: bool,
    /// Seconds running transfers get to finish after SIGTERM.
    #[arg(long, default_value_t = RelayConfig::default().shutdown_grace.as_secs(), value_name = "SECS")]
    pub shutdown_grace: u64,
    /// New connections per second per client address (token bucket rate).
    #[arg(long, default_value_t = RelayConfig::default().join_rate_per_sec, value_name = "N")]
    pub join_rate: f64,
    /// Burst of new connections per client address (token bucket size).
    #[arg(long, default_value_t = RelayConfig::default().join_burst, value_name = "N")]
    pub join_burst: u32,
    /// Connections still sending their hello, in total.
    #[arg(long, default_value_t = RelayConfig::default().max_handshakes, value_name = "N")]
    pub max_handshakes: usize,
    /// Connections still sending their hello, per client address.
    #[arg(long, default_value_t = RelayConfig::default().max_handshakes_per_ip, value_name = "N")]
    pub max_handshakes_per_ip: usize,
    /// Connections still sending their hello, per client network (IPv4 /24, IPv6 /48).
    #[arg(long, default_value_t = RelayConfig::default().max_handshakes_per_net, value_name = "N")]
    pub max_handshakes_per_net: usize,
    /// Seconds a new connection has to send its hello.
    #[arg(long, default_value_t = RelayConfig::default().hello_timeout.as_secs_f64(), value_name = "SECS")]
    pub hello_timeout: f64,
    /// Milliseconds after which a connection without a hello gives its slot to
    /// a new one when all slots are taken.
    #[arg(long, default_value_t = RelayConfig::default().hello_evict_after.as_millis() as u64, value_name = "MS")]
    pub hello_evict_after: u64,
    /// Paired transfers at once, in total.
    #[arg(long, default_value_t = RelayConfig::default().max_sessions, value_name = "N")]
    pub max_sessions: usize,
    /// Paired transfers at once per client address (a NAT shares one).
    #[arg(long, default_value_t = RelayConfig::default().max_sessions_per_ip, value_name = "N")]
    pub max_sessions_per_ip: usize,
    /// Join a relay fleet that shares its rooms through this Redis
    /// (redis://HOST:PORT[/DB]). Put a password in $PQDROP_RELAY_REDIS
    /// rather than here: other local users can read argv.
    #[arg(long, env = "PQDROP_RELAY_REDIS", hide_env_values = true, value_name = "URL", requires = "advertise")]
    pub redis: Option<String>,
    /// With --redis: the HOST:PORT at which clients reach this instance
    /// (peers waiting here are sent there by the other instances).
    #[arg(long, value_name = "HOST:PORT", requires = "redis")]
    pub advertise: Option<String>,
    /// With --redis: seconds a dead instance's rooms stay taken (the lease).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub fleet_lease: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics and a health check at /healthz.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Also serve the browser page (receive and send with no install) and its WebSocket on ADDR. Browsers need HTTPS for it anywhere but on 127.0.0.1/localhost: use --tls-cert/--tls-key, or a reverse proxy and --public-url.
    #[arg(long, value_name = "ADDR")]
    pub web: Option<SocketAddr>,
    /// With --web: the URL at which users reach the page (behind a proxy or TLS), told to `pqdrop send --web` for its links. Default: http(s)://ADDR/.
    #[arg(long, value_name = "URL", requires = "web")]
    pub public_url: Option<String>,
    /// With --web: serve HTTPS with this PEM certificate chain.
    #[arg(long, value_name = "FILE", requires_all = ["web", "tls_key"])]
    pub tls_cert: Option<std::path::PathBuf>,
    /// With --web: the PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires_all = ["web", "tls_cert"])]
    pub tls_key: Option<std::path::PathBuf>,
    /// With --web: a reverse proxy in front (its address as the relay sees it, e.g. 127.0.0.1; repeatable). A browser's WebSocket from it is counted under the last address of its X-Forwarded-For, so that per-address limits apply to each browser rather than to the proxy. Only for a proxy that sets that header itself.
    #[arg(long, value_name = "IP", requires = "web")]
    pub trusted_proxy: Vec<std::net::IpAddr>,
    /// With --web: serve the page's files from this folder instead of the copy built into pqdrop (to try a changed page).
    #[arg(long, value_name = "DIR", requires = "web")]
    pub web_root: Option<std::path::PathBuf>,
}

/// Runs the relay until SIGTERM or Ctrl-C.
pub async fn run(args: RelayArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let config = RelayConfig {
        max_pending_per_ip: args.max_pending_per_ip,
        max_pending_per_net: args.max_pending_per_net,
        max_handshakes_per_net: args.max_handshakes_per_net,
        max_pending_total: args.max_pending,
        waiting_timeout: Duration::from_secs(args.waiting_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        use_splice: args.splice,
        join_rate_per_sec: args.join_rate,
        join_burst: args.join_burst,
        max_handshakes: args.max_handshakes,
        max_handshakes_per_ip: args.max_handshakes_per_ip,
        hello_timeout: Duration::try_from_secs_f64(args.hello_timeout)
            .map_err(|_| crate::common::Usage("--hello-timeout must be a number of seconds".into()))?,
        hello_evict_after: Duration::from_millis(args.hello_evict_after),
        max_sessions: args.max_sessions,
        max_sessions_per_ip: args.max_sessions_per_ip,
        fleet: args.redis.as_ref().map(|url| {
            let mut f = FleetConfig::new(url.clone(), args.advertise.clone().unwrap_or_default());
            f.lease = Duration::from_secs(args.fleet_lease);
            f
        }),
        ..RelayConfig::default()
    };
    let mut relay = Relay::bind(args.listen, config).await?;
    match &args.advertise {
        Some(a) => say!("pqdrop relay listening on {} (fleet instance, advertised as {a})", relay.local_addr()),
        None => say!("pqdrop relay listening on {}", relay.local_addr()),
    }
    if let Some(addr) = args.web {
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(pqdrop_relay::TlsFiles { cert: cert.clone(), key: key.clone() }),
            _ => None,
        };
        let web = pqdrop_relay::WebConfig {
            public_url: args.public_url.clone(),
            root: args.web_root.clone(),
            tls,
            trusted_proxies: args.trusted_proxy.clone(),
        };
        let local = relay.serve_web(addr, web).await?;
        say!("browser page on {local}, reached at {}", relay.page_url().unwrap_or(""));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(addr) = args.metrics {
        let listener = pqdrop_relay::bind_metrics(addr).await?;
        let shown = listener.local_addr().unwrap_or(addr);
        let mut rx = stop_rx.clone();
        tokio::spawn(pqdrop_relay::serve_metrics(listener, relay.stats(), async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        say!("metrics on http://{shown}/metrics");
    }
    tokio::spawn(give_back_after_peaks(relay.stats()));
    relay.run(shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    say!("pqdrop relay stopped");
    Ok(())
}

/// After the rooms and sessions held drop to half a peak of at least 256,
/// returns the freed heap to the OS (see [`crate::heap`]), so that a relay's
/// memory comes back after a burst of load.
async fn give_back_after_peaks(stats: pqdrop_relay::StatsHandle) {
    let mut peak = 0usize;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s = stats.snapshot();
        let load = s.pending_rooms + s.active_sessions;
        peak = peak.max(load);
        if peak >= 256 && load * 2 <= peak {
            crate::heap::give_back();
            peak = load;
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
