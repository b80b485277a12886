//! Builds the hub and its HTTP server, binds the listener (port 0 works) and runs until
//! stopped.

use crate::config::Config;
use crate::hub::Hub;
use crate::routes;
use actix_web::{middleware, web, App, HttpServer};
use std::net::TcpListener;
use std::sync::Arc;

/// Sets up `tracing` once: human format, or JSON lines with `HUB_LOG_FORMAT=json`;
/// filtered by `RUST_LOG` (default `info`).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in a file or a journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs the hub until SIGINT/SIGTERM. Prints `listening on http://HOST:PORT` when ready.
pub async fn run(config: Config) -> std::io::Result<()> {
    let listener = TcpListener::bind(&config.addr)?;
    let addr = listener.local_addr()?;
    let hub = Hub::build(config).map_err(std::io::Error::other)?;
    no_transparent_huge_pages();
    if let Some(token) = &hub.admin_token_created {
        println!("admin token: {token}");
    }
    let data = web::Data::new(hub.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(middleware::DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
            .wrap(middleware::from_fn(routes::cors::widget_cors))
            .configure(routes::configure)
            .configure(crate::ws::configure)
            .default_service(web::to(not_found))
    })
    .tcp_nodelay(true)
    .listen(listener)?
    .shutdown_timeout(5)
    .disable_signals()
    .run();
    let handle = server.handle();
    // Sockets whose clients stopped reading (see `Bus::sweep`).
    let (sweep_bus, silence) = (hub.bus.clone(), hub.config.socket_silence);
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(crate::ws::socket::Socket::heartbeat(silence));
        loop {
            tick.tick().await;
            if sweep_bus.is_shutting_down() {
                break;
            }
            sweep_bus.sweep(silence);
        }
    });
    let bus = hub.bus.clone();
    let signalled = shutdown_signal();
    actix_web::rt::spawn(async move {
        signalled.await;
        tracing::info!("Shutting down: closing sockets, finishing in-flight requests.");
        bus.shutdown();
        handle.stop(true).await;
    });
    println!("listening on http://{addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, "Hub listening.");
    server.await?;
    flush_on_exit(&hub).await;
    Ok(())
}

/// Transparent huge pages off from here on. Opening a big store builds sled's page
/// table (≈ 2.7 GiB for 10 M messages), which huge pages fill much faster (restart 2.9 s
/// instead of 4.0 s), so they stay on until the store is open; afterwards they only cost:
/// mimalloc asks for them on its arenas, and a 2 MiB page becomes resident for a few
/// touched bytes, ≈ 8 KiB of RSS per idle WebSocket (24 KiB instead of 16 KiB at 19,000
/// sockets), with no measurable gain in the commit benchmark.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// SIGTERM or SIGINT. The handlers are installed when this is called, not when the
/// future is first polled, so a signal that arrives right after `listening` still shuts
/// the hub down gracefully instead of killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
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
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn flush_on_exit(hub: &Arc<Hub>) {
    // Everything acknowledged is already durable; this only settles background writes.
    let _ = hub.store.commit(crate::store::Batch::default()).await;
    tracing::info!("Hub stopped.");
}

async fn not_found() -> Result<actix_web::HttpResponse, crate::error::ApiError> {
    Err(crate::error::ApiError::NotFound("no such route".into()))
}
