//! `${VAR}` expansion in config string values.
//!
//! Syntax (deliberately small, so there are no surprises in secrets and paths):
//!
//! - `${NAME}` — the variable's value; an unset variable is an error (a set-but-empty one
//!   expands to the empty string).
//! - `${NAME:-default}` — the value if set and non-empty, else `default` (taken literally, up to
//!   the first `}`; no nested expansion).
//! - `$$` — a literal `$`.
//! - any other `$` (e.g. `price$` or `$HOME`) is kept literally: only the braced form expands,
//!   so a stray `$` in an argument never changes meaning.
//!
//! `NAME` must match `[A-Za-z_][A-Za-z0-9_]*`. The environment is injected so tests never touch
//! the process environment.

/// Expands `input`. On failure returns every problem in it (e.g. two unset variables), each a
/// message naming the variable; the caller prefixes the key path.
pub(super) fn expand(
    input: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(input.len());
    let mut problems = Vec::new();
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(body_and_tail) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(close) = body_and_tail.find('}') else {
            problems.push("unterminated `${` (write `$$` for a literal `$`)".to_owned());
            rest = "";
            break;
        };
        let body = &body_and_tail[..close];
        rest = &body_and_tail[close + 1..];
        match substitute(body, env) {
            Ok(value) => out.push_str(&value),
            Err(problem) => problems.push(problem),
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Resolves the inside of one `${...}`.
fn substitute(body: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (body, None),
    };
    if !is_var_name(name) {
        return Err(format!(
            "invalid variable reference `${{{body}}}`: names match [A-Za-z_][A-Za-z0-9_]*"
        ));
    }
    match (env(name), default) {
        (Some(value), None) => Ok(value),
        (Some(value), Some(_)) if !value.is_empty() => Ok(value),
        (_, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(format!(
            "environment variable `{name}` is not set (use `${{{name}:-default}}` for a fallback)"
        )),
    }
}

fn is_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
