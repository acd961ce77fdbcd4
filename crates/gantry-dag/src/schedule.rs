//! Cron schedules of workflow triggers (SPEC section 9): an expression of
//! five fields, or six with a leading seconds field, in an IANA time zone,
//! parsed once and asked for ticks on a clock the caller passes in.
//! Daylight-saving changes follow Vixie cron (through `croner`, see
//! docs/decisions/0007-cron-with-croner.md): a fixed time that a spring
//! change skips runs at the first instant after the gap, a fixed time that
//! an autumn change repeats runs once, and interval patterns run in every
//! real instant they match.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// Why an expression or time zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("cron {expr:?}: {reason}")]
    BadCron { expr: String, reason: String },
    #[error("time zone {0:?} is not an IANA time zone name")]
    BadTimeZone(String),
    #[error("cron {0:?} never matches a date")]
    NeverMatches(String),
}

/// A parsed cron expression in its time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    tz: Tz,
}

/// How far ahead a next tick is looked for before an expression is called
/// one that never matches (`0 0 30 2 *`).
const HORIZON_YEARS: i64 = 5;

impl CronSchedule {
    /// Parse `expr` in `timezone` (UTC when `None`). Years, and more or
    /// fewer fields than five or six, are refused; so is an expression with
    /// no tick in the next five years, such as February 30th.
    pub fn parse(expr: &str, timezone: Option<&str>) -> Result<Self, ScheduleError> {
        let tz = match timezone {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| ScheduleError::BadTimeZone(name.to_owned()))?,
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| ScheduleError::BadCron {
                expr: expr.to_owned(),
                reason: e.to_string().to_lowercase(),
            })?;
        let s = Self { cron, tz };
        // A fixed, far-past start: whether the pattern can match at all
        // does not depend on today.
        let start = DateTime::<Utc>::from_timestamp(0, 0).expect("the epoch");
        match s.next_after(start) {
            Some(t) if t - start <= chrono::Duration::days(366 * HORIZON_YEARS) => Ok(s),
            _ => Err(ScheduleError::NeverMatches(expr.to_owned())),
        }
    }

    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|at| at.with_timezone(&Utc))
    }

    /// The latest tick in `(after, now]`, if any: the one a scheduler that
    /// last ticked at `after` runs now (the missed ticks before it are not
    /// run). It is found by jumping back from `now` to the previous tick
    /// and walking forward from a little before it, so that it is a tick
    /// [`CronSchedule::next_after`] gives, also next to a daylight-saving
    /// change.
    pub fn latest_due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if now <= after {
            return None;
        }
        let near = self
            .cron
            .find_previous_occurrence(&now.with_timezone(&self.tz), true)
            .ok()
            .map(|p| p.with_timezone(&Utc) - chrono::Duration::seconds(WALK_BACK_S));
        let mut t = near.map_or(after, |n| n.max(after));
        let mut latest = None;
        for _ in 0..MAX_WALK {
            match self.next_after(t) {
                Some(next) if next <= now => {
                    latest = Some(next);
                    t = next;
                }
                _ => break,
            }
        }
        latest
    }
}

/// How far before the previous tick the walk of
/// [`CronSchedule::latest_due`] starts: more than any daylight-saving shift.
const WALK_BACK_S: i64 = 3 * 3600;
/// Ticks walked at most: an every-second pattern over [`WALK_BACK_S`].
const MAX_WALK: usize = 4 * 3600;

/// The idempotency key of the run a tick starts:
/// `cron:WORKFLOW:INDEX:TICK`, the tick in RFC 3339 UTC.
pub fn tick_key(workflow: &str, trigger: usize, tick: DateTime<Utc>) -> String {
    format!(
        "cron:{workflow}:{trigger}:{}",
        tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}
