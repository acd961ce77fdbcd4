//! The engine every role shares: [`Engine`] starts, cancels, retries and
//! approves runs, applies recorded results to them through the pure state
//! machine, starts child runs, and carries out what a committed transition
//! leaves to do (`after.rs`). The api, the workers and the coordinator loop
//! depend on this crate, not on each other.

mod after;
mod apply;
mod bulk;
mod cache;
mod catalog;
mod children;
mod claim;
mod delivery;
mod drain;
mod engine;
mod error;
mod events;
mod gates;
mod health;
mod inspect;
mod load;
mod observe;
mod rerun;
mod triggers;

pub use after::Applied;
pub use bulk::{Bulk, BulkOutcome, MAX_BULK};
pub use drain::Wakeups;
pub use engine::{Engine, Started};
pub use error::{Error, Result};
pub use health::WriteHealth;
pub use triggers::ScheduleView;
