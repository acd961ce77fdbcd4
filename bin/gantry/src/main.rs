//! The gantry binary: parse the command line, start logging, run a role, a
//! client command or a benchmark.

mod bench;
mod bench_docker;
mod bench_scale;
mod bench_ui;
mod cli;
mod client;
mod roles;
mod wait;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    roles::init_logging();
    match cli.run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
