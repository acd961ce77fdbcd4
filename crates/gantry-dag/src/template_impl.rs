//! Template parsing and rendering (the rules are documented in `template.rs`).
//!
//! Rendering is a single walk over the input: each string is split into
//! literal text and templates once, and substituted values are never scanned
//! again, so an upstream output that contains `{{...}}` stays literal data.

use crate::template::Scope;
use crate::{is_valid_name, NodeStatus, TemplateError, TemplateRef};
use serde_json::{Map, Value};

/// Deepest container nesting accepted in an input template. Deeper inputs are
/// a syntax error rather than a risk of overflowing the stack.
pub(crate) const MAX_DEPTH: usize = 128;

/// One step of a JSON path inside the input.
#[derive(Debug, Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// `input.a[0].b`, the form used in `field` of errors and problems.
fn field(path: &[Seg<'_>]) -> String {
    let mut out = String::from("input");
    for seg in path {
        match seg {
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// A piece of a string: literal text or a parsed template.
enum Piece<'a> {
    Lit(&'a str),
    Tpl { raw: &'a str, r: TemplateRef },
}

/// A template that does not parse: its raw text and why.
struct BadTemplate {
    raw: String,
    reason: String,
}

/// Split `s` into literal text and templates. Anything starting with `{{`
/// must be a well-formed template.
fn scan(s: &str) -> Result<Vec<Piece<'_>>, BadTemplate> {
    let mut pieces = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Lit(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(BadTemplate {
                raw: rest[start..].to_owned(),
                reason: "unclosed template, expected }}".to_owned(),
            });
        };
        let raw = &rest[start..start + 2 + end + 2];
        let r = parse(&after[..end]).map_err(|reason| BadTemplate {
            raw: raw.to_owned(),
            reason,
        })?;
        pieces.push(Piece::Tpl { raw, r });
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Lit(rest));
    }
    Ok(pieces)
}

/// Parse the text between `{{` and `}}`.
fn parse(inner: &str) -> Result<TemplateRef, String> {
    let expr = inner.trim_matches(' ');
    if expr.is_empty() {
        return Err("empty template".to_owned());
    }
    let segs: Vec<&str> = expr.split('.').collect();
    for seg in &segs {
        if seg.is_empty() {
            return Err(format!("empty path segment in {expr:?}"));
        }
        if let Some(c) = seg
            .chars()
            .find(|c| c.is_whitespace() || *c == '{' || *c == '}')
        {
            return Err(format!("unexpected character {c:?} in {expr:?}"));
        }
    }
    let path = || segs[2..].iter().map(|s| (*s).to_owned()).collect();
    let node = |node: &str| {
        if is_valid_name(node) {
            Ok(node.to_owned())
        } else {
            Err(format!("bad node id {node:?}"))
        }
    };
    match segs.as_slice() {
        ["run", "input", ..] => Ok(TemplateRef::RunInput { path: path() }),
        ["run", "id"] => Ok(TemplateRef::RunId),
        // Before node references: `item` and `index` are not node ids here.
        ["item", ..] => Ok(TemplateRef::Item {
            path: segs[1..].iter().map(|s| (*s).to_owned()).collect(),
        }),
        ["index"] => Ok(TemplateRef::Index),
        [n, "output", ..] => Ok(TemplateRef::NodeOutput {
            node: node(n)?,
            path: path(),
        }),
        [n, "status"] => Ok(TemplateRef::NodeStatus { node: node(n)? }),
        [n, "error"] => Ok(TemplateRef::NodeError { node: node(n)? }),
        _ => Err(format!(
            "expected run.input.PATH, run.id, NODE.output.PATH, NODE.status, NODE.error, item.PATH or index, got {expr:?}"
        )),
    }
}

fn too_deep(path: &[Seg<'_>]) -> TemplateError {
    TemplateError::Syntax {
        field: field(path),
        template: String::new(),
        reason: format!("input nested deeper than {MAX_DEPTH} levels"),
    }
}

/// Every template reference in `input` with its field, and every syntax error
/// (at most one per string). Validation reports all of them.
pub(crate) fn collect(input: &Value) -> (Vec<(String, TemplateRef)>, Vec<TemplateError>) {
    let mut refs = Vec::new();
    let mut errors = Vec::new();
    let mut path = Vec::new();
    visit(input, &mut path, &mut refs, &mut errors);
    (refs, errors)
}

fn visit<'a>(
    v: &'a Value,
    path: &mut Vec<Seg<'a>>,
    refs: &mut Vec<(String, TemplateRef)>,
    errors: &mut Vec<TemplateError>,
) {
    let is_container = matches!(v, Value::Array(_) | Value::Object(_));
    if is_container && path.len() >= MAX_DEPTH {
        errors.push(too_deep(path));
        return;
    }
    match v {
        Value::String(s) => match scan(s) {
            Ok(pieces) => {
                for p in pieces {
                    if let Piece::Tpl { r, .. } = p {
                        refs.push((field(path), r));
                    }
                }
            }
            Err(bad) => errors.push(TemplateError::Syntax {
                field: field(path),
                template: bad.raw,
                reason: bad.reason,
            }),
        },
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                visit(item, path, refs, errors);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                path.push(Seg::Key(k));
                visit(item, path, refs, errors);
                path.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

pub(crate) fn refs(input: &Value) -> Result<Vec<(String, TemplateRef)>, TemplateError> {
    let (refs, mut errors) = collect(input);
    if errors.is_empty() {
        Ok(refs)
    } else {
        Err(errors.swap_remove(0))
    }
}

/// Follow `path` from `v`: object keys, and all-digit segments as array
/// indices (on an object an all-digit segment is a key).
fn lookup<'v>(mut v: &'v Value, path: &[String]) -> Option<&'v Value> {
    for seg in path {
        v = match v {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) if seg.bytes().all(|b| b.is_ascii_digit()) => {
                a.get(seg.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(v)
}

/// The dotted form of a reference, e.g. `run.input.a.0`.
fn dotted(r: &TemplateRef) -> String {
    let (head, path) = match r {
        TemplateRef::RunInput { path } => ("run.input".to_owned(), path.as_slice()),
        TemplateRef::NodeOutput { node, path } => (format!("{node}.output"), path.as_slice()),
        TemplateRef::RunId => ("run.id".to_owned(), &[][..]),
        TemplateRef::NodeStatus { node } => (format!("{node}.status"), &[][..]),
        TemplateRef::NodeError { node } => (format!("{node}.error"), &[][..]),
        TemplateRef::Item { path } => ("item".to_owned(), path.as_slice()),
        TemplateRef::Index => ("index".to_owned(), &[][..]),
    };
    let mut out = head;
    for seg in path {
        out.push('.');
        out.push_str(seg);
    }
    out
}

struct Renderer<'a> {
    scope: &'a Scope<'a>,
}

/// A resolved template: a value, or the null that stands for "nothing"
/// (an output of a node that did not succeed, an error of one that did not
/// fail), which reads as an empty string inside a longer string.
enum Resolved {
    Value(Value),
    Nothing,
}

impl Renderer<'_> {
    fn resolve(
        &self,
        raw: &str,
        r: &TemplateRef,
        path: &[Seg<'_>],
    ) -> Result<Resolved, TemplateError> {
        let missing = || TemplateError::MissingPath {
            field: field(path),
            template: raw.to_owned(),
            path: dotted(r),
        };
        let node = |n: &str| (self.scope.nodes)(n).ok_or_else(missing);
        Ok(match r {
            TemplateRef::RunInput { path } => Resolved::Value(
                lookup(self.scope.input, path)
                    .cloned()
                    .ok_or_else(missing)?,
            ),
            TemplateRef::RunId => Resolved::Value(Value::String(self.scope.run_id.to_owned())),
            TemplateRef::NodeOutput { node: n, path } => {
                let view = node(n)?;
                if view.status != NodeStatus::Succeeded {
                    Resolved::Nothing
                } else {
                    Resolved::Value(lookup(&view.output, path).cloned().ok_or_else(missing)?)
                }
            }
            TemplateRef::NodeStatus { node: n } => {
                Resolved::Value(Value::String(node(n)?.status.as_str().to_owned()))
            }
            TemplateRef::NodeError { node: n } => {
                let view = node(n)?;
                match (view.status, view.error) {
                    (NodeStatus::Failed, Some(e)) => Resolved::Value(Value::String(e)),
                    _ => Resolved::Nothing,
                }
            }
            TemplateRef::Item { path } => {
                let (item, _) = self.scope.item.ok_or_else(missing)?;
                Resolved::Value(lookup(item, path).cloned().ok_or_else(missing)?)
            }
            TemplateRef::Index => {
                let (_, index) = self.scope.item.ok_or_else(missing)?;
                Resolved::Value(Value::from(index))
            }
        })
    }

    fn render<'v>(&self, v: &'v Value, path: &mut Vec<Seg<'v>>) -> Result<Value, TemplateError> {
        let is_container = matches!(v, Value::Array(_) | Value::Object(_));
        if is_container && path.len() >= MAX_DEPTH {
            return Err(too_deep(path));
        }
        match v {
            Value::String(s) => self.render_str(s, path),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    let rendered = self.render(item, path);
                    path.pop();
                    out.push(rendered?);
                }
                Ok(Value::Array(out))
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, item) in map {
                    path.push(Seg::Key(k));
                    let rendered = self.render(item, path);
                    path.pop();
                    out.insert(k.clone(), rendered?);
                }
                Ok(Value::Object(out))
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(v.clone()),
        }
    }

    fn render_str(&self, s: &str, path: &[Seg<'_>]) -> Result<Value, TemplateError> {
        if !s.contains("{{") {
            return Ok(Value::String(s.to_owned()));
        }
        let pieces = scan(s).map_err(|bad| TemplateError::Syntax {
            field: field(path),
            template: bad.raw,
            reason: bad.reason,
        })?;
        if let [Piece::Tpl { raw, r }] = pieces.as_slice() {
            return Ok(match self.resolve(raw, r, path)? {
                Resolved::Value(v) => v,
                Resolved::Nothing => Value::Null,
            });
        }
        let mut out = String::with_capacity(s.len());
        for piece in &pieces {
            match piece {
                Piece::Lit(text) => out.push_str(text),
                Piece::Tpl { raw, r } => match self.resolve(raw, r, path)? {
                    Resolved::Value(Value::String(text)) => out.push_str(&text),
                    // Display of a Value is compact JSON.
                    Resolved::Value(other) => out.push_str(&other.to_string()),
                    Resolved::Nothing => {}
                },
            }
        }
        Ok(Value::String(out))
    }
}

pub(crate) fn render(input: &Value, scope: &Scope<'_>) -> Result<Value, TemplateError> {
    Renderer { scope }.render(input, &mut Vec::new())
}

/// The one template `s` consists of, `None` when it is not exactly one
/// template (literal text around it, several, or none); a syntax error as
/// its reason.
pub(crate) fn single(s: &str) -> Result<Option<TemplateRef>, String> {
    let mut pieces = scan(s).map_err(|bad| bad.reason)?;
    Ok(match (pieces.pop(), pieces.is_empty()) {
        (Some(Piece::Tpl { r, .. }), true) => Some(r),
        _ => None,
    })
}
