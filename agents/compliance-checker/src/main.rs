//! Gantry agent `compliance-checker`: checks a workspace has a licence, the required files,
//! and the standard security headers in its web server configuration.

mod check;

fn main() -> std::process::ExitCode {
    gantry_agent::run(|input: check::Input, _ctx: &gantry_agent::Context| check::check(&input))
}
