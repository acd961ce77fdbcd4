//! Gantry agent `notifier`: formats a message and, when a plain-http webhook secret is
//! mounted, posts it; otherwise returns the notification as output.

mod http;
mod notify;

fn main() -> std::process::ExitCode {
    gantry_agent::run(notify::notify)
}
