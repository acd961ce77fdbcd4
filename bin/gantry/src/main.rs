//! The gantry binary: parse the command line, start logging, run a role, a
//! client command or a benchmark.

mod bench;
mod bench_docker;
mod bench_event;
mod bench_map;
mod bench_scale;
mod bench_ui;
mod cli;
mod cli_client;
mod client;
mod metrics_server;
mod probe;
mod roles;
mod wait;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    // Before the runtime starts: the OTLP exporter's blocking HTTP client
    // must not be built on a runtime thread. Dropped last, flushing spans.
    let _tracing = match roles::init_logging(&cli.telemetry, cli.role()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = match runtime.block_on(cli.run()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    };
    drop(runtime);
    code
}
