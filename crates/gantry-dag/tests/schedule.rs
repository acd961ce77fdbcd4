//! Cron ticks on a fixed clock (SPEC section 9), across the spring and
//! autumn daylight-saving changes of Europe/Berlin (2026-03-29 02:00 CET
//! to 03:00 CEST; 2026-10-25 03:00 CEST back to 02:00 CET).

use chrono::{DateTime, TimeZone, Utc};
use gantry_dag::{tick_key, CronSchedule, ScheduleError};

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
}

fn ticks(s: &CronSchedule, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from;
    for _ in 0..n {
        t = s.next_after(t).expect("a next tick");
        out.push(t);
    }
    out
}

fn berlin(expr: &str) -> CronSchedule {
    CronSchedule::parse(expr, Some("Europe/Berlin")).expect("a good schedule")
}

#[test]
fn a_daily_time_the_spring_change_skips_runs_right_after_the_gap() {
    // 02:30 does not exist on 2026-03-29 in Berlin: it runs at 03:00 CEST.
    let s = berlin("30 2 * * *");
    assert_eq!(
        ticks(&s, utc(2026, 3, 27, 23, 0, 0), 3),
        [
            utc(2026, 3, 28, 1, 30, 0), // 02:30 CET
            utc(2026, 3, 29, 1, 0, 0),  // 03:00 CEST, just after the gap
            utc(2026, 3, 30, 0, 30, 0), // 02:30 CEST
        ]
    );
}

#[test]
fn a_daily_time_the_autumn_change_repeats_runs_once() {
    // 02:30 happens twice on 2026-10-25 in Berlin: it runs at the first.
    let s = berlin("30 2 * * *");
    assert_eq!(
        ticks(&s, utc(2026, 10, 23, 22, 0, 0), 3),
        [
            utc(2026, 10, 24, 0, 30, 0), // 02:30 CEST
            utc(2026, 10, 25, 0, 30, 0), // 02:30 CEST, the first of two
            utc(2026, 10, 26, 1, 30, 0), // 02:30 CET
        ]
    );
}

#[test]
fn an_hourly_pattern_runs_every_real_hour_across_both_changes() {
    let s = berlin("0 * * * *");
    // Spring: 01:00 CET, then 03:00 CEST one real hour later.
    assert_eq!(
        ticks(&s, utc(2026, 3, 28, 23, 30, 0), 3),
        [
            utc(2026, 3, 29, 0, 0, 0),
            utc(2026, 3, 29, 1, 0, 0),
            utc(2026, 3, 29, 2, 0, 0)
        ]
    );
    // Autumn: 02:00 CEST, 02:00 CET and 03:00 CET are three real hours.
    assert_eq!(
        ticks(&s, utc(2026, 10, 24, 23, 30, 0), 3),
        [
            utc(2026, 10, 25, 0, 0, 0),
            utc(2026, 10, 25, 1, 0, 0),
            utc(2026, 10, 25, 2, 0, 0)
        ]
    );
}

#[test]
fn six_fields_lead_with_seconds_and_utc_is_the_default() {
    let s = CronSchedule::parse("*/15 * * * * *", None).unwrap();
    assert_eq!(
        ticks(&s, utc(2026, 1, 1, 0, 0, 7), 3),
        [
            utc(2026, 1, 1, 0, 0, 15),
            utc(2026, 1, 1, 0, 0, 30),
            utc(2026, 1, 1, 0, 0, 45)
        ]
    );
    let s = CronSchedule::parse("*/15 * * * *", None).unwrap();
    assert_eq!(
        s.next_after(utc(2026, 1, 1, 0, 7, 0)),
        Some(utc(2026, 1, 1, 0, 15, 0))
    );
}

#[test]
fn only_the_latest_missed_tick_is_due() {
    let s = CronSchedule::parse("* * * * * *", None).unwrap();
    let last = utc(2026, 5, 1, 12, 0, 0);
    // Ten seconds without a scheduler: one tick is due, the latest.
    assert_eq!(
        s.latest_due(last, utc(2026, 5, 1, 12, 0, 10)),
        Some(utc(2026, 5, 1, 12, 0, 10))
    );
    // A day down with a daily pattern: that day's tick only.
    let daily = berlin("30 2 * * *");
    assert_eq!(
        daily.latest_due(utc(2026, 3, 20, 0, 0, 0), utc(2026, 3, 29, 12, 0, 0)),
        Some(utc(2026, 3, 29, 1, 0, 0)),
        "the tick the spring change moved is the latest"
    );
    // Nothing due yet, and nothing when the clock has not moved.
    assert_eq!(
        daily.latest_due(utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 29, 12, 0, 0)),
        None
    );
    assert_eq!(s.latest_due(last, last), None);
}

#[test]
fn bad_expressions_and_time_zones_are_refused() {
    for bad in [
        "* * * *",
        "* * * * * * *",
        "61 * * * *",
        "*/0 * * * *",
        "",
        "a b c d e",
    ] {
        assert!(
            matches!(
                CronSchedule::parse(bad, None),
                Err(ScheduleError::BadCron { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        CronSchedule::parse("0 0 30 2 *", None),
        Err(ScheduleError::NeverMatches(_))
    ));
    assert_eq!(
        CronSchedule::parse("* * * * *", Some("Mars/Olympus")).unwrap_err(),
        ScheduleError::BadTimeZone("Mars/Olympus".into())
    );
}

#[test]
fn a_tick_names_its_run_by_workflow_trigger_and_utc_time() {
    assert_eq!(
        tick_key("nightly", 0, utc(2026, 3, 29, 1, 0, 0)),
        "cron:nightly:0:2026-03-29T01:00:00Z"
    );
}
