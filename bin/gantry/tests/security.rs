//! The `security` suite (issue 10): process agents, secret bindings,
//! drive-by requests, NUL bytes, huge numbers, slow bodies, 4xx instead of
//! 500, failed logins and session revocation, each against real processes,
//! Postgres, Redis and Docker. Run it with `cargo test -p gantry --test security`;
//! `docs/security.md` describes the threat model it checks.

mod common;
#[path = "security/process.rs"]
mod process;
#[path = "security/secrets.rs"]
mod secrets;
