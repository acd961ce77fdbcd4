//! Finds function definitions and their length: braces for Rust and JavaScript, indentation
//! for Python. A heuristic, good enough for review hints, not a parser.

use regex::Regex;

/// A function found in a file, with 1-based inclusive line numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Function {
    pub(crate) name: String,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Function {
    pub(crate) fn len(&self) -> usize {
        self.end + 1 - self.start
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Rust,
    Js,
    Python,
}

fn lang(path: &str) -> Option<Lang> {
    let ext = path.rsplit_once('.')?.1;
    match ext {
        "rs" => Some(Lang::Rust),
        "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" => Some(Lang::Js),
        "py" => Some(Lang::Python),
        _ => None,
    }
}

pub(crate) struct Finder {
    rust: Regex,
    js: Regex,
    python: Regex,
}

impl Finder {
    pub(crate) fn new() -> Result<Self, regex::Error> {
        Ok(Self {
            rust: Regex::new(
                r#"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:(?:const|async|unsafe|extern\s+"[^"]*")\s+)*fn\s+([A-Za-z_][A-Za-z0-9_]*)"#,
            )?,
            js: Regex::new(
                r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*([A-Za-z_$][A-Za-z0-9_$]*)\s*\(",
            )?,
            python: Regex::new(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(")?,
        })
    }

    /// Every function in `content`, for the languages this finder knows; none otherwise.
    pub(crate) fn find(&self, path: &str, content: &str) -> Vec<Function> {
        let lines: Vec<&str> = content.lines().collect();
        let mut out = Vec::new();
        match lang(path) {
            None => {}
            Some(Lang::Python) => {
                for (i, line) in lines.iter().enumerate() {
                    if let Some(c) = self.python.captures(line) {
                        let indent = c.get(1).map_or(0, |m| m.as_str().len());
                        let end = python_end(&lines, i, indent);
                        out.push(Function {
                            name: c[2].to_owned(),
                            start: i + 1,
                            end: end + 1,
                        });
                    }
                }
            }
            Some(l) => {
                let re = if l == Lang::Rust {
                    &self.rust
                } else {
                    &self.js
                };
                for (i, line) in lines.iter().enumerate() {
                    if let Some(c) = re.captures(line) {
                        if let Some(end) = brace_end(&lines, i, l) {
                            out.push(Function {
                                name: c[1].to_owned(),
                                start: i + 1,
                                end: end + 1,
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

/// The last line of a Python function: the last non-blank line indented deeper than `def`.
fn python_end(lines: &[&str], start: usize, indent: usize) -> usize {
    let mut end = start;
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        if line.trim().is_empty() {
            continue;
        }
        let this = line.len() - line.trim_start().len();
        if this <= indent {
            break;
        }
        end = i;
    }
    end
}

/// The line where the body opened at or after `start` closes; `None` for a declaration
/// without a body (a trait method, a forward declaration) or an unbalanced file.
fn brace_end(lines: &[&str], start: usize, lang: Lang) -> Option<usize> {
    let mut depth: i64 = 0;
    let mut opened = false;
    for (i, line) in lines.iter().enumerate().skip(start) {
        for ch in code_chars(line, lang) {
            match ch {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => {
                    depth -= 1;
                    if opened && depth == 0 {
                        return Some(i);
                    }
                }
                ';' if !opened => return None,
                _ => {}
            }
        }
    }
    None
}

/// The characters of `line` outside string and char literals and `//` comments.
fn code_chars(line: &str, lang: Lang) -> Vec<char> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            break;
        }
        let quote = match (c, lang) {
            ('"', _) => true,
            ('\'' | '`', Lang::Js) => true,
            // A Rust char literal ('x' or '\n'); a lone ' is a lifetime and stays code.
            ('\'', Lang::Rust) => {
                chars.get(i + 2) == Some(&'\'') || chars.get(i + 1) == Some(&'\\')
            }
            _ => false,
        };
        if quote {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(path: &str, src: &str) -> Vec<(String, usize, usize)> {
        Finder::new()
            .unwrap()
            .find(path, src)
            .into_iter()
            .map(|f| (f.name, f.start, f.end))
            .collect()
    }

    #[test]
    fn rust_functions_by_braces() {
        let src = "pub fn a() {\n    let s = \"}\";\n    let c = '{';\n}\n\ntrait T {\n    fn decl(&self);\n}\npub(crate) async fn b<'a>(x: &'a str)\n    -> usize\n{\n    if x.is_empty() { 0 } else { 1 } // }\n}\n";
        assert_eq!(find("x.rs", src), [("a".into(), 1, 4), ("b".into(), 9, 13)]);
    }

    #[test]
    fn js_functions_by_braces() {
        let src = "export async function load(a) {\n  const s = `}`;\n  return '{';\n}\nfunction* gen() { yield 1; }\n";
        assert_eq!(
            find("x.js", src),
            [("load".into(), 1, 4), ("gen".into(), 5, 5)]
        );
    }

    #[test]
    fn python_functions_by_indent() {
        let src = "def a(x):\n    y = x\n\n    return y\n\nclass C:\n    def m(self):\n        pass\n    def n(self):\n        return 1\nprint(a(1))\n";
        assert_eq!(
            find("x.py", src),
            [("a".into(), 1, 4), ("m".into(), 7, 8), ("n".into(), 9, 10)]
        );
    }

    #[test]
    fn unknown_languages_have_no_functions() {
        assert!(find("x.txt", "fn a() {\n}\n").is_empty());
    }
}
