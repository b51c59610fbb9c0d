//! `${NAME}` interpolation: every string value of a config may take
//! environment variables; `$${` stands for a literal `${`. It runs on the
//! parsed values, never on the raw text, so a value can neither break the
//! file's quoting nor show in a syntax error's snippet.

/// Replaces `${NAME}` with the variable's value and `$${` with `${`. The
/// error never contains a variable's value.
pub(super) fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err("`${` is not closed by `}`; write `$${` for a literal `${`".to_owned());
            };
            let name = &after[..end];
            let valid = name.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!(
                    "`${{{name}}}` is not a valid environment variable reference; names are letters, digits and `_`; write `$${{` for a literal `${{`"
                ));
            }
            match env(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(format!(
                        "environment variable `{name}` is not set; set it, or write `$${{` for a literal `${{`"
                    ));
                }
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_variables_and_keeps_escapes() {
        let env = |n: &str| (n == "A").then(|| "x".to_owned());
        assert_eq!(
            interpolate("${A}-$${A}-$$-${A}$", &env).unwrap(),
            "x-${A}-$$-x$"
        );
        assert!(
            interpolate("${B}", &env)
                .unwrap_err()
                .contains("`B` is not set")
        );
        assert!(
            interpolate("${A", &env)
                .unwrap_err()
                .contains("is not closed")
        );
        assert!(
            interpolate("${1A}", &env)
                .unwrap_err()
                .contains("not a valid")
        );
    }
}
