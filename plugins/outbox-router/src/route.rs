//! The destination template of outbox events: `outbox.event.{aggregatetype}`.

/// A parsed `route_topic_template`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    AggregateType,
}

impl RouteTemplate {
    /// Parses a template. `{{` and `}}` stand for literal braces.
    pub fn parse(text: &str) -> Result<RouteTemplate, String> {
        if text.is_empty() {
            return Err("must not be empty".to_owned());
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            literal.push_str(&rest[..i]);
            let at = text.len() - rest.len() + i;
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("{{") {
                literal.push('{');
                rest = after;
            } else if let Some(after) = tail.strip_prefix("}}") {
                literal.push('}');
                rest = after;
            } else if let Some(after) = tail.strip_prefix("{aggregatetype}") {
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::AggregateType);
                rest = after;
            } else if tail.starts_with('}') {
                return Err(format!(
                    "unmatched `}}` at byte {at} of `{text}`; write `}}}}` for a literal brace"
                ));
            } else {
                let placeholder = match tail.find('}') {
                    Some(end) => &tail[..=end],
                    None => tail,
                };
                return Err(format!(
                    "unknown placeholder `{placeholder}` in `{text}`; the only placeholder is \
                     {{aggregatetype}} (write `{{{{` for a literal brace)"
                ));
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(RouteTemplate { parts })
    }

    /// Whether the template uses the aggregate type.
    pub fn needs_aggregate_type(&self) -> bool {
        self.parts.contains(&Part::AggregateType)
    }

    /// Renders the destination for an aggregate type (`""` when the
    /// template does not use it).
    pub fn render(&self, aggregate_type: &str) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::AggregateType => out.push_str(aggregate_type),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_aggregate_type() {
        let t = RouteTemplate::parse("outbox.event.{aggregatetype}").unwrap();
        assert!(t.needs_aggregate_type());
        assert_eq!(t.render("Order"), "outbox.event.Order");
        let t = RouteTemplate::parse("{{all}}").unwrap();
        assert!(!t.needs_aggregate_type());
        assert_eq!(t.render("Order"), "{all}");
    }

    #[test]
    fn parse_errors_say_what_and_where() {
        assert_eq!(
            RouteTemplate::parse("events.{type}").unwrap_err(),
            "unknown placeholder `{type}` in `events.{type}`; the only placeholder is \
             {aggregatetype} (write `{{` for a literal brace)"
        );
        assert_eq!(
            RouteTemplate::parse("a}").unwrap_err(),
            "unmatched `}` at byte 1 of `a}`; write `}}` for a literal brace"
        );
        assert_eq!(RouteTemplate::parse("").unwrap_err(), "must not be empty");
    }
}
