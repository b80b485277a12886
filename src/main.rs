//! The hub server: read `HUB_*` configuration, set up tracing, run.

fn main() -> std::io::Result<()> {
    let config = hub::config::Config::from_env();
    hub::startup::init_tracing(config.log_json);
    actix_web::rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(hub::config::BLOCKING_THREADS)
            .build()
            // unwrap: building a runtime at start-up only fails when the OS is out of resources.
            .expect("build the main runtime")
    })
    .block_on(hub::startup::run(config))
}
