//! Gantry's functional core: workflow and agent definitions, validation into a
//! [`ValidatedDag`], template rendering, retry backoff, and the pure
//! [`advance`] state machine. This crate does no I/O and knows nothing of
//! tokio, sqlx, redis, bollard or axum.

mod advance;
mod advance_impl;
mod agent_check;
mod backoff;
mod backoff_impl;
mod claim;
mod condition;
mod decide;
mod gate_timeout;
mod graph;
mod instance;
mod kind_check;
pub mod limits;
mod map;
mod map_check;
mod map_gate;
mod model;
mod plan;
mod rerun;
mod schedule;
mod schema;
mod sent_event;
mod status;
mod tags;
mod template;
mod template_impl;
mod trigger;
mod validate;
mod validate_impl;
mod wait;

pub use advance::{
    advance, Action, Event, Expansion, Fact, Facts, NodeFailure, NodeState, Outcome, RunState,
    Transition, Wanted,
};
pub use backoff::Backoff;
pub use claim::{claim, Claim, ClaimView, Refusal, RETRY_SKEW_MS};
pub use condition::{
    Condition, ConditionError, EvalError, NodeFacts, MAX_CONDITION_BYTES, MAX_CONDITION_NESTING,
};
pub use gate_timeout::{approval_timed_out, Decider};
pub use instance::{
    instance_slot, is_instance, owner, ForEach, MapState, Slot, DEFAULT_MAX_ITEMS, FIRST_SLOT,
    MAX_ITEMS, MAX_NODES,
};
pub use model::{
    AgentDef, Approval, Limits, NodeDef, NodeKind, OnApprovalTimeout, OnTimeout, RateLimit,
    RetryPolicy, Runtime, TriggerDef, TriggerRule, WaitDef, WorkflowDef, BUILTINS,
};
pub use plan::{NodePlan, Plan};
pub use rerun::rerun_state;
pub use schedule::{tick_key, CronSchedule, ScheduleError};
pub use sent_event::{
    is_valid_event_name, NewEvent, MAX_EVENT_DATA_BYTES, MAX_EVENT_ID_LEN, MAX_EVENT_KEY_BYTES,
    MAX_EVENT_NAME_LEN,
};
pub use status::{NodeStatus, RunStatus, SkipReason, UnknownStatus};
pub use tags::{parse_tag_filter, parse_tags, Tags, MAX_TAGS, MAX_TAG_VALUE_BYTES};
pub use template::{refs, render, render_in, NodeView, Scope, TemplateError, TemplateRef};
pub use trigger::{FilterError, Trigger, MAX_CRON_BYTES, MAX_TRIGGERS};
pub use validate::{is_valid_name, Problem, ValidatedDag, DEFAULT_MAX_NODES};
pub use wait::{WaitSpec, WaitStart, DEFAULT_WAIT_TIMEOUT_S, MAX_WAIT_KEY_TEMPLATE_BYTES};

/// Index of a node inside a [`ValidatedDag`], stable for a workflow version
/// (the position of the node in the definition's `nodes` array).
pub type NodeIdx = u32;
