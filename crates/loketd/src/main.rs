//! `loketd`: see the library docs and the README.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// The Loket router daemon. With no arguments: loopback, ./loketd-data, one
/// demo tenant (token `demo-token`) with demo agents and catalog.
#[derive(Debug, Parser)]
#[command(name = "loketd", version, about)]
struct Args {
    /// A TOML configuration file (environment variables LOKETD_* override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// HTTP address (overrides the configuration).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Binary ingest address (overrides the configuration).
    #[arg(long)]
    binary_listen: Option<SocketAddr>,
    /// Data directory (overrides the configuration).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOKETD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in journald,
        // files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = loketd::Config::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(listen) = args.binary_listen {
        config.binary_listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if args.print_config {
        print!("{}", toml::to_string_pretty(&config).context("printing the configuration")?);
        return Ok(());
    }
    if !config.huge_pages {
        disable_transparent_huge_pages();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("loketd-io")
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listeners = loketd::Listeners::bind(&config)
            .await
            .with_context(|| format!("binding {} and {}", config.listen, config.binary_listen))?;
        let (reloader, reload) = loketd::tls::reloader();
        reload_on_hangup(reloader);
        let control = loketd::Control { reload: Some(reload), ready: None };
        loketd::run_with(config, listeners, shutdown_signal(), control).await?;
        anyhow::Ok(())
    })?;
    Ok(())
}

/// Asks the kernel not to back this process's memory with transparent huge
/// pages from now on (see `Config::huge_pages`); a failure is logged, and
/// the daemon runs on.
#[cfg(target_os = "linux")]
fn disable_transparent_huge_pages() {
    // The kernel reads every argument as an `unsigned long`.
    let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and reads or
    // writes no memory of this process.
    let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) };
    if result != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not turn transparent huge pages off");
    }
}

#[cfg(not(target_os = "linux"))]
fn disable_transparent_huge_pages() {}

/// On SIGHUP, reads the TLS certificate, key and client CA files again
/// (logged either way; a failure keeps the certificates in use).
fn reload_on_hangup(reloader: loketd::tls::Reloader) {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    // The outcome is logged by the daemon.
                    let _ = reloader.reload().await;
                }
            });
        }
        Err(error) => tracing::warn!(%error, "SIGHUP cannot reload certificates"),
    }
    #[cfg(not(unix))]
    drop(reloader);
}

/// SIGINT or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: a SIGTERM that comes right after
/// "loketd ready" (a service manager's stop) must shut down cleanly, not
/// kill the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let interrupt = tokio::signal::ctrl_c();
        async move {
            let _ = interrupt.await;
        }
    }
}
