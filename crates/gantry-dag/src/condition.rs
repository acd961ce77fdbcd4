//! `when` conditions (SPEC section 2.1): CEL expressions over `input`, `run`
//! and `nodes`, compiled and checked once at registration, then evaluated
//! by the pure state machine. Evaluation is bounded by what can be written:
//! CEL has no loops; the source, its nesting, its size and its `+` are
//! capped; comprehensions (`all`, `exists`, `map`, `filter`) may not nest
//! and their bodies read only their own variables. The work is then at most
//! the expression's size times the size of the data it reads.

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};
use cel::objects::{Key, Value as CelValue};
use cel::{Context, Env, Program};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

/// Longest `when` source, in bytes.
pub const MAX_CONDITION_BYTES: usize = 4096;
/// Deepest bracket nesting of a `when` (`(`, `[` and `{`, counted even
/// inside string literals). The generated CEL parser recurses through every
/// precedence level per bracket: a dozen nested brackets overflow a 2 MiB
/// thread stack in a debug build (cel-rust/cel-rust#212, still open), so
/// nesting is refused before parsing.
pub const MAX_CONDITION_NESTING: usize = 8;
/// Deepest parse nesting of a `when`, for what brackets do not show.
const MAX_DEPTH: u16 = 32;
/// Comprehensions one inside another: 1 allows `l.all(x, x > 0)` but not
/// `l.all(x, l.all(y, ...))`, which is quadratic in the list.
const MAX_COMPREHENSION_NESTING: usize = 1;

/// Expression nodes (after macro expansion) in a `when`.
const MAX_EXPR_NODES: usize = 512;
/// `+` operators outside comprehensions: a chain of `s + s + ...` copies
/// quadratically in its length.
const MAX_PLUS: usize = 16;

/// The variables a `when` may read.
const VARIABLES: [&str; 3] = ["input", "run", "nodes"];

/// A `when` that could not be compiled or reads what it may not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("when is {len} bytes; at most {MAX_CONDITION_BYTES}")]
    TooLong { len: usize },
    #[error("when nests brackets more than {MAX_CONDITION_NESTING} deep")]
    TooDeep,
    #[error("when does not parse: {0}")]
    Parse(String),
    #[error("when reads {0:?}, which is not one of its variables")]
    UnknownVariable(String),
    #[error("when reads nodes with a computed key; name the node, as nodes.ID or nodes[\"ID\"]")]
    ComputedNode,
    #[error("when nests comprehensions (all, exists, map, filter) inside one another")]
    NestedComprehension,
    #[error("when reads {0:?} inside a comprehension; its body may read only its own variable")]
    FreeInComprehension(String),
    #[error("when is too large: at most {MAX_EXPR_NODES} terms and {MAX_PLUS} uses of +")]
    TooLarge,
}

/// Why a `when` could not decide: the node then fails permanently with
/// this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("when evaluated to {0}, not a bool")]
    NotBool(String),
    #[error("when failed: {0}")]
    Failed(String),
}

/// What a `when` sees of one ancestor: `nodes.ID.status`, `.output`, `.error`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFacts {
    pub status: String,
    /// `null` unless the node succeeded.
    pub output: Value,
    /// `null` unless the node failed.
    pub error: Option<String>,
}

/// A compiled `when`.
#[derive(Debug)]
pub struct Condition {
    program: Program,
    /// Ids of the nodes it reads, in order.
    nodes: BTreeSet<String>,
}

fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    Arc::clone(ENV.get_or_init(|| Arc::new(Env::stdlib())))
}

/// The variable a trigger's `filter` reads (SPEC section 9).
const FILTER_VARIABLES: [&str; 1] = ["event"];

impl Condition {
    /// Compile and check the `when` `source` (variables `input`, `run` and
    /// `nodes`).
    pub fn compile(source: &str) -> Result<Self, ConditionError> {
        Self::compile_for(source, &VARIABLES)
    }

    /// Compile and check an event trigger's `filter` (variable `event`),
    /// bounded like a `when`. Its errors read "when ..." like a `when`'s;
    /// the caller names the field.
    pub fn compile_filter(source: &str) -> Result<Self, ConditionError> {
        Self::compile_for(source, &FILTER_VARIABLES)
    }

    /// Evaluate a filter compiled by [`Condition::compile_filter`] against
    /// `event` (`{"name", "key", "data"}`).
    pub fn eval_filter(&self, event: &Value) -> Result<bool, EvalError> {
        self.eval_vars([("event", event.clone())])
    }

    fn compile_for(source: &str, variables: &[&str]) -> Result<Self, ConditionError> {
        if source.len() > MAX_CONDITION_BYTES {
            return Err(ConditionError::TooLong { len: source.len() });
        }
        if nesting(source) > MAX_CONDITION_NESTING {
            return Err(ConditionError::TooDeep);
        }
        // Parsed once with the depth cap, so a deeply nested source is an
        // error here rather than a deep recursion later.
        cel::parser::Parser::new()
            .max_recursion_depth(MAX_DEPTH)
            .parse(source)
            .map_err(|e| ConditionError::Parse(one_line(&e.to_string())))?;
        let program = Program::compile(source)
            .map_err(|e| ConditionError::Parse(one_line(&e.to_string())))?;
        let mut check = Check::default();
        check.walk(program.expression(), 0)?;
        for var in program.references().variables() {
            if !variables.contains(&var) && !check.bound.contains(var) {
                return Err(ConditionError::UnknownVariable(var.to_owned()));
            }
        }
        Ok(Self {
            program,
            nodes: check.nodes,
        })
    }

    /// The ids of the nodes the condition reads (`nodes.ID`, `nodes["ID"]`);
    /// registration checks that each is an ancestor.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(String::as_str)
    }

    /// Evaluate against the run input, the run id and the facts of the
    /// ancestors it reads.
    pub fn eval(
        &self,
        input: &Value,
        run_id: &str,
        nodes: &BTreeMap<String, NodeFacts>,
    ) -> Result<bool, EvalError> {
        let nodes: serde_json::Map<String, Value> = nodes
            .iter()
            .map(|(id, f)| {
                let facts = serde_json::json!({
                    "status": f.status, "output": f.output, "error": f.error,
                });
                (id.clone(), facts)
            })
            .collect();
        self.eval_vars([
            ("input", input.clone()),
            ("run", serde_json::json!({ "id": run_id })),
            ("nodes", Value::Object(nodes)),
        ])
    }

    fn eval_vars<const N: usize>(&self, vars: [(&str, Value); N]) -> Result<bool, EvalError> {
        let mut ctx = Context::with_env(env());
        for (name, value) in vars {
            ctx.add_variable_from_value(name, to_cel(&value));
        }
        match self.program.execute(&ctx) {
            Ok(CelValue::Bool(b)) => Ok(b),
            Ok(other) => Err(EvalError::NotBool(kind_of(&other).to_owned())),
            Err(e) => Err(EvalError::Failed(one_line(&e.to_string()))),
        }
    }
}

/// JSON as CEL values. Whole numbers become `int` where they fit (CEL does
/// not mix `int` and `uint` in arithmetic, and `input.n + 1` must work),
/// then `uint`, and other numbers `double`.
fn to_cel(v: &Value) -> CelValue {
    match v {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => CelValue::Int(i),
            (None, Some(u)) => CelValue::UInt(u),
            _ => CelValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(a) => CelValue::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(o) => {
            let map: HashMap<Key, CelValue> = o
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            CelValue::from(map)
        }
    }
}

fn kind_of(v: &CelValue) -> &'static str {
    match v {
        CelValue::List(_) => "a list",
        CelValue::Map(_) => "a map",
        CelValue::Int(_) | CelValue::UInt(_) | CelValue::Float(_) => "a number",
        CelValue::String(_) => "a string",
        CelValue::Bytes(_) => "bytes",
        CelValue::Null => "null",
        _ => "a value of another type",
    }
}

/// The deepest bracket nesting of `source`, strings included (an unclosed
/// bracket counts as open to the end).
fn nesting(source: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in source.bytes() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Walks the expression: collects the node ids read, the comprehension
/// variables bound, and refuses computed node keys and nested
/// comprehensions.
#[derive(Default)]
struct Check {
    nodes: BTreeSet<String>,
    bound: BTreeSet<String>,
    terms: usize,
    plus: usize,
}

impl Check {
    fn walk(&mut self, e: &IdedExpr, comprehensions: usize) -> Result<(), ConditionError> {
        self.terms += 1;
        if self.terms > MAX_EXPR_NODES || self.plus > MAX_PLUS {
            return Err(ConditionError::TooLarge);
        }
        match &e.expr {
            Expr::Ident(name) if comprehensions > 0 && VARIABLES.contains(&name.as_str()) => {
                Err(ConditionError::FreeInComprehension(name.clone()))
            }
            Expr::Select(s) => {
                if is_nodes(&s.operand) {
                    self.nodes.insert(s.field.clone());
                    return Ok(());
                }
                self.walk(&s.operand, comprehensions)
            }
            Expr::Call(c) => {
                if c.func_name == "_[_]" && c.args.first().is_some_and(is_nodes) {
                    return match c.args.get(1).map(|a| &a.expr) {
                        Some(Expr::Literal(LiteralValue::String(id))) => {
                            self.nodes.insert(id.inner().to_owned());
                            Ok(())
                        }
                        _ => Err(ConditionError::ComputedNode),
                    };
                }
                if c.func_name == "_+_" && comprehensions == 0 {
                    self.plus += 1;
                }
                if let Some(t) = &c.target {
                    self.walk(t, comprehensions)?;
                }
                c.args.iter().try_for_each(|a| self.walk(a, comprehensions))
            }
            Expr::Comprehension(c) => {
                if comprehensions >= MAX_COMPREHENSION_NESTING {
                    return Err(ConditionError::NestedComprehension);
                }
                self.bound.insert(c.iter_var.clone());
                self.bound.insert(c.accu_var.clone());
                self.walk(&c.iter_range, comprehensions)?;
                self.walk(&c.accu_init, comprehensions)?;
                for part in [&c.loop_cond, &c.loop_step, &c.result] {
                    self.walk(part, comprehensions + 1)?;
                }
                Ok(())
            }
            Expr::Ident(name) if name == "nodes" => Err(ConditionError::ComputedNode),
            Expr::List(l) => l
                .elements
                .iter()
                .try_for_each(|x| self.walk(x, comprehensions)),
            Expr::Map(m) => m.entries.iter().try_for_each(|en| match &en.expr {
                EntryExpr::MapEntry(me) => {
                    self.walk(&me.key, comprehensions)?;
                    self.walk(&me.value, comprehensions)
                }
                EntryExpr::StructField(f) => self.walk(&f.value, comprehensions),
            }),
            Expr::Struct(s) => s.entries.iter().try_for_each(|en| match &en.expr {
                EntryExpr::MapEntry(me) => {
                    self.walk(&me.key, comprehensions)?;
                    self.walk(&me.value, comprehensions)
                }
                EntryExpr::StructField(f) => self.walk(&f.value, comprehensions),
            }),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Ok(()),
        }
    }
}

fn is_nodes(e: &IdedExpr) -> bool {
    matches!(&e.expr, Expr::Ident(n) if n == "nodes")
}
