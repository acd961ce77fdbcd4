//! Gantry agent `security-scanner`: finds hard-coded secrets and risky code patterns in a
//! workspace (inline files or a read-only mount) and reports them with secrets masked.

mod rules;
mod scan;

fn main() -> std::process::ExitCode {
    gantry_agent::run(|input: scan::Input, _ctx: &gantry_agent::Context| scan::scan(&input))
}
