//! Workflow triggers (SPEC section 9): cron schedules and event triggers,
//! checked at registration into [`Trigger`]s, and an event trigger's
//! decision on one event.

use crate::model::{TriggerDef, WorkflowDef};
use crate::validate::Problem;
use crate::validate_impl::problem;
use crate::{is_valid_event_name, Condition, CronSchedule};
use serde_json::Value;
use std::sync::Arc;

/// Most triggers one workflow may have.
pub const MAX_TRIGGERS: usize = 32;
/// Longest cron expression and time zone name, in bytes (a real one is a
/// few dozen): the parser never sees more.
pub const MAX_CRON_BYTES: usize = 256;

/// A checked trigger.
#[derive(Debug, Clone)]
pub enum Trigger {
    Cron {
        schedule: Box<CronSchedule>,
        expr: String,
        /// The IANA name as given; `None` is UTC.
        timezone: Option<String>,
        input: Value,
    },
    Event {
        name: String,
        filter: Option<Arc<Condition>>,
    },
}

/// Why an event trigger's filter could not decide: the event starts no
/// run for it, and the trigger's error is logged.
pub type FilterError = crate::EvalError;

impl Trigger {
    /// Whether this trigger starts a run for `event` (`{"name", "key",
    /// "data"}`): an event trigger of that name whose filter, if any, holds.
    pub fn matches(&self, event: &Value) -> Result<bool, FilterError> {
        match self {
            Trigger::Cron { .. } => Ok(false),
            Trigger::Event { name, filter } => {
                if event.get("name").and_then(Value::as_str) != Some(name) {
                    return Ok(false);
                }
                filter.as_ref().map_or(Ok(true), |f| f.eval_filter(event))
            }
        }
    }
}

/// Every problem of `def`'s triggers, and the checked triggers when there
/// is none. `input_problems` checks a cron trigger's input against the
/// workflow's `input_schema`.
pub(crate) fn triggers(
    def: &WorkflowDef,
    input_problems: &dyn Fn(&Value) -> Vec<Problem>,
    out: &mut Vec<Problem>,
) -> Vec<Trigger> {
    if def.triggers.len() > MAX_TRIGGERS {
        out.push(problem(
            "triggers".to_owned(),
            "bad_value",
            format!(
                "workflow has {} triggers, more than {MAX_TRIGGERS}",
                def.triggers.len()
            ),
        ));
        return Vec::new();
    }
    def.triggers
        .iter()
        .enumerate()
        .filter_map(|(i, t)| trigger(i, t, input_problems, out))
        .collect()
}

fn trigger(
    i: usize,
    t: &TriggerDef,
    input_problems: &dyn Fn(&Value) -> Vec<Problem>,
    out: &mut Vec<Problem>,
) -> Option<Trigger> {
    let at = |f: &str| format!("triggers[{i}].{f}");
    let before = out.len();
    let misplaced = |out: &mut Vec<Problem>, field: &str, set: bool, kind: &str| {
        if set {
            out.push(problem(
                at(field),
                "bad_value",
                format!("triggers[{i}].{field} belongs to a {kind} trigger"),
            ));
        }
    };
    match (&t.cron, &t.event) {
        (Some(expr), None) => {
            misplaced(out, "filter", t.filter.is_some(), "event");
            let input = t
                .input
                .clone()
                .unwrap_or_else(|| Value::Object(Default::default()));
            if !input.is_object() {
                out.push(problem(
                    at("input"),
                    "bad_value",
                    format!("triggers[{i}].input must be an object"),
                ));
            } else {
                for p in input_problems(&input) {
                    let field = match p.field.strip_prefix("input") {
                        Some(rest) => format!("triggers[{i}].input{rest}"),
                        None => at("input"),
                    };
                    out.push(Problem { field, ..p });
                }
            }
            let too_long = [("cron", Some(expr)), ("timezone", t.timezone.as_ref())]
                .into_iter()
                .find(|(_, v)| v.is_some_and(|v| v.len() > MAX_CRON_BYTES));
            if let Some((field, _)) = too_long {
                out.push(problem(
                    at(field),
                    "bad_schedule",
                    format!("triggers[{i}].{field} is longer than {MAX_CRON_BYTES} bytes"),
                ));
                return None;
            }
            let schedule = match CronSchedule::parse(expr, t.timezone.as_deref()) {
                Ok(s) => Some(s),
                Err(e) => {
                    let field = match e {
                        crate::ScheduleError::BadTimeZone(_) => "timezone",
                        _ => "cron",
                    };
                    out.push(problem(at(field), "bad_schedule", e.to_string()));
                    None
                }
            };
            let schedule = schedule.filter(|_| out.len() == before)?;
            Some(Trigger::Cron {
                schedule: Box::new(schedule),
                expr: expr.clone(),
                timezone: t.timezone.clone(),
                input,
            })
        }
        (None, Some(name)) => {
            misplaced(out, "timezone", t.timezone.is_some(), "cron");
            misplaced(out, "input", t.input.is_some(), "cron");
            if !is_valid_event_name(name) {
                out.push(problem(
                    at("event"),
                    "bad_name",
                    format!("event name {name:?} must match ^[a-z0-9][a-z0-9._-]{{0,127}}$"),
                ));
            }
            let filter = t.filter.as_deref().and_then(|src| {
                Condition::compile_filter(src)
                    .map_err(|e| {
                        let text = e.to_string().replacen("when", "filter", 1);
                        out.push(problem(at("filter"), "bad_condition", text));
                    })
                    .ok()
            });
            (out.len() == before).then(|| Trigger::Event {
                name: name.clone(),
                filter: filter.map(Arc::new),
            })
        }
        (cron, _) => {
            out.push(problem(
                format!("triggers[{i}]"),
                if cron.is_none() {
                    "missing_field"
                } else {
                    "bad_value"
                },
                format!("triggers[{i}] must have exactly one of cron and event"),
            ));
            None
        }
    }
}
