//! Gantry agent `code-reviewer`: static review findings (long functions, `unwrap` in Rust
//! library code, TODO markers, long lines), summarized together with upstream scanner findings.

mod functions;
mod review;

fn main() -> std::process::ExitCode {
    gantry_agent::run(|input: review::Input, _ctx: &gantry_agent::Context| review::review(&input))
}
