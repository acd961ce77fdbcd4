//! The `security` suite (issue 10): process agents, secret bindings,
//! drive-by requests, NUL bytes, huge numbers, slow bodies, 4xx instead of
//! 500, failed logins and session revocation, each against real processes,
//! Postgres, Redis and Docker. Run it with `cargo test -p gantry --test security`;
//! `docs/security.md` describes the threat model it checks.

// Not every part of the suite uses every re-export of the harness.
#[allow(unused_imports)]
mod common;
// The crate root is tests/security.rs, so modules under tests/security/
// need their path (a plain `mod x;` would look for tests/x.rs, which cargo
// would also build as a test of its own).
#[path = "security/driveby.rs"]
mod driveby;
#[path = "security/fuzz.rs"]
mod fuzz;
#[path = "security/isolate.rs"]
mod isolate;
#[path = "security/logins.rs"]
mod logins;
#[path = "security/nul.rs"]
mod nul;
#[path = "security/numbers.rs"]
mod numbers;
#[path = "security/pool.rs"]
mod pool;
#[path = "security/process.rs"]
mod process;
#[path = "security/ready.rs"]
mod ready;
#[path = "security/secrets.rs"]
mod secrets;
#[path = "security/sessions.rs"]
mod sessions;
#[path = "security/slow.rs"]
mod slow;
#[path = "security/status.rs"]
mod status;
