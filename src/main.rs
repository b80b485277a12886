//! The hub server: read `HUB_*` configuration, set up tracing, run.

fn main() -> std::process::ExitCode {
    use std::io::Write;
    let config = match hub::config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "hub: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    hub::startup::init_tracing(config.log_json);
    let res = actix_web::rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(hub::config::BLOCKING_THREADS)
            .build()
            // unwrap: building a runtime at start-up only fails when the OS is out of resources.
            .expect("build the main runtime")
    })
    .block_on(hub::startup::run(config));
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One readable line for whoever started it (a port taken, a store locked by
            // another hub, a directory it may not write).
            let _ = writeln!(std::io::stderr(), "hub: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
