//! The hub server: read `HUB_*` configuration, set up tracing, run.

fn main() -> std::io::Result<()> {
    let config = hub::config::Config::from_env();
    hub::startup::init_tracing(config.log_json);
    actix_web::rt::System::new().block_on(hub::startup::run(config))
}
