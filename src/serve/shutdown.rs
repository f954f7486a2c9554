//! Graceful shutdown: SIGINT or SIGTERM stop accepting connections; in-flight requests finish.

/// Resolves when SIGINT or SIGTERM arrives, saying which unless `quiet`.
pub async fn signal(quiet: bool) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let name = tokio::select! {
        () = ctrl_c => "SIGINT",
        () = term => "SIGTERM",
    };
    if !quiet {
        eprintln!("{name} received: finishing in-flight requests");
    }
}
