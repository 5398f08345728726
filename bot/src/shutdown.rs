//! Graceful shutdown: SIGTERM (what systemd, Docker and Kubernetes send) and SIGINT (Ctrl-C) both
//! cancel one token; the dispatcher stops taking updates, the painters stop taking jobs, and the
//! process drains what runs (see [`crate::worker::drain`]) before it exits 0.
use tokio_util::sync::CancellationToken;

/// A token cancelled by the first SIGTERM or SIGINT this process receives.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let signal = wait_for_signal().await;
        tracing::info!("{signal}: stopping gracefully");
        cancel.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM and SIGINT; stopping only when killed");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
