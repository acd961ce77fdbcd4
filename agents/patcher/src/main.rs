//! Gantry agent `patcher`: applies a unified (or git) diff to the workspace files and outputs
//! the patched files; a hunk that does not apply is a permanent failure.

mod patch;

fn main() -> std::process::ExitCode {
    gantry_agent::run(|input: patch::Input, _ctx: &gantry_agent::Context| patch::patch(&input))
}
