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
        // A log line that cannot be written (stderr's reader gone: a collector or a
        // `| tee` that died) is dropped. Else tracing says so on stderr with
        // `eprintln!`, which panics when stderr fails: the handler or the writer thread
        // that logged died with it (a black-box probe: writes unanswered, SIGTERM ignored).
        .log_internal_errors(false)
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
    let listener = TcpListener::bind(&config.addr).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on HUB_ADDR={}: {e}", config.addr),
        )
    })?;
    let addr = listener.local_addr()?;
    no_transparent_huge_pages();
    let data_dir = config.data.display().to_string();
    let hub = Hub::build(config).map_err(|e| {
        // sled says only that it could not lock its file.
        let hint = if e.to_string().contains("could not acquire lock") {
            " (another hub is running on this directory)"
        } else {
            ""
        };
        std::io::Error::other(format!(
            "cannot open the store in HUB_DATA={data_dir}{hint}: {e}"
        ))
    })?;
    let data = web::Data::new(hub.clone());
    let silence = hub.config.socket_silence;
    let server = HttpServer::new(move || {
        // Runs once on each worker thread: its tick measures that thread's lag.
        actix_web::rt::spawn(watch_loop_lag());
        App::new()
            .app_data(data.clone())
            .wrap(middleware::DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
            .wrap(middleware::from_fn(routes::cors::widget_cors))
            .configure(routes::configure)
            .configure(crate::ws::configure)
            .default_service(web::to(not_found))
    })
    .tcp_nodelay(true)
    .on_connect(move |conn, _| {
        if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
            set_user_timeout(tcp, silence * 2);
        }
    })
    .worker_max_blocking_threads(crate::config::BLOCKING_THREADS)
    .listen(listener)?
    .shutdown_timeout(5)
    .disable_signals()
    .run();
    let handle = server.handle();
    // Sockets whose clients stopped reading (see `Bus::sweep`).
    let sweep_bus = hub.bus.clone();
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
    // The ready line comes first (PROTOCOL §2: one line); a generated admin token, the
    // only time it is shown, after it.
    // Written, not `println!`ed: a stdout nobody reads any more must not stop the hub.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{addr}");
    if let Some(token) = &hub.admin_token_created {
        let _ = writeln!(out, "admin token: {token}");
    }
    let _ = out.flush();
    drop(out);
    if let Err(e) = hub.admin_token_shown().await {
        tracing::warn!(error = %e, "Could not record that the admin token was shown; the next start shows a new one.");
    }
    tracing::info!(%addr, "Hub listening.");
    server.await?;
    flush_on_exit(&hub).await;
    Ok(())
}

/// Sets `TCP_USER_TIMEOUT` on an accepted connection (twice `HUB_SOCKET_SILENCE_MS`):
/// the kernel drops it once data waited that long unacknowledged or unsent behind a
/// closed window. A socket whose client stopped reading is cut off by the bus (1008)
/// after the silence, but its close frame then waits behind everything already queued,
/// and actix writes nothing more to it: without this its connection stayed open for
/// good (a black-box probe held 20 such sockets for 98 s; enough of them would use up
/// the hub's files). A client that reads again within the second silence still finds
/// its queue, then the 1008 (PROTOCOL §7). Idle connections are not affected (nothing
/// is waiting).
fn set_user_timeout(tcp: &actix_web::rt::net::TcpStream, after: std::time::Duration) {
    use std::os::fd::AsRawFd;
    let ms = after.as_millis().min(libc::c_uint::MAX as u128) as libc::c_uint;
    // SAFETY: `tcp` owns a valid socket, and the option takes a c_uint of this size.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&ms as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "TCP_USER_TIMEOUT not set.");
    }
}

/// How often a worker thread's lag is sampled.
const LAG_TICK: std::time::Duration = std::time::Duration::from_millis(50);

/// Measures how late a tick runs on this thread (`hub_loop_lag_seconds`): every socket
/// and conversation on the thread waits as long for its turn. Ends with the thread's
/// runtime.
async fn watch_loop_lag() {
    let mut next = tokio::time::Instant::now() + LAG_TICK;
    loop {
        tokio::time::sleep_until(next).await;
        let now = tokio::time::Instant::now();
        crate::metrics::record_loop_lag(now.saturating_duration_since(next));
        next = now + LAG_TICK;
    }
}

/// Transparent huge pages off for the whole process, before the store opens. mimalloc
/// asks for them on its arenas (`MADV_HUGEPAGE`), and with the kernel's usual
/// `defrag=madvise` every fault of a fresh 2 MiB region then compacts memory first: on
/// a machine whose page cache holds the store (a warm restart), opening 1 M
/// conversations took 2.1–2.6 s with them and 1.1–1.2 s without, and 4.8–5.0 s against
/// 1.8–1.9 s right after the cache was dropped and refilled (sled's page table is
/// ≈ 800 MB of small allocations built at once). Afterwards they only cost memory: a
/// 2 MiB page resident for a few touched bytes, ≈ 8 KiB of RSS per idle WebSocket.
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
