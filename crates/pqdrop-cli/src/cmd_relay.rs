//! `pqdrop relay`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use pqdrop_relay::{Relay, RelayConfig};

/// Run a relay that pairs senders and receivers by code number and copies
/// their (end-to-end encrypted) bytes. It never sees the secret words.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pqdrop relay                          # listens on 0.0.0.0:4733\n  \
    pqdrop relay --listen 127.0.0.1:9000\n  \
    PQDROP_RELAY=relay.example.org:4733 pqdrop send file   # use it\n\n\
Logs go to stderr (RUST_LOG=debug for more). SIGTERM or Ctrl-C stops accepting,\n\
tells waiting peers, and lets running transfers finish for up to the grace period.")]
pub struct RelayArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:4733", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Codes that may wait at once per client address.
    #[arg(long, default_value_t = RelayConfig::default().max_pending_per_ip)]
    pub max_pending_per_ip: usize,
    /// Codes that may wait at once in total.
    #[arg(long, default_value_t = RelayConfig::default().max_pending_total)]
    pub max_pending: usize,
    /// Seconds a code waits for its second peer.
    #[arg(long, default_value_t = RelayConfig::default().waiting_timeout.as_secs())]
    pub waiting_timeout: u64,
    /// Seconds a paired transfer may stay idle.
    #[arg(long, default_value_t = RelayConfig::default().idle_timeout.as_secs())]
    pub idle_timeout: u64,
    /// Move bytes with Linux splice(2) instead of a user-space copy.
    #[arg(long)]
    pub splice: bool,
    /// Seconds running transfers get to finish after SIGTERM.
    #[arg(long, default_value_t = RelayConfig::default().shutdown_grace.as_secs())]
    pub shutdown_grace: u64,
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
        max_pending_total: args.max_pending,
        waiting_timeout: Duration::from_secs(args.waiting_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        use_splice: args.splice,
        ..RelayConfig::default()
    };
    let relay = Relay::bind(args.listen, config).await?;
    say!("pqdrop relay listening on {}", relay.local_addr());
    relay.run(shutdown_signal()).await?;
    say!("pqdrop relay stopped");
    Ok(())
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
