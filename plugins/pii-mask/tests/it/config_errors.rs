//! Invalid configurations are refused at init with a message naming the
//! field; every problem is reported at once.

use super::*;

fn error(config: &str) -> String {
    match new_plugin::<PiiMask>(config) {
        Ok(p) => panic!("{config} was accepted: {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn unknown_top_level_field() {
    assert_eq!(
        error(r#"{"hash_keys":"k"}"#),
        "invalid plugin config: unknown field `hash_keys`, expected one of `rules`, `hash_key`, `tables`, `name_hints`"
    );
}

#[test]
fn unknown_rule_field_names_the_rule() {
    assert_eq!(
        error(r#"{"rules":[{"column":["email"],"action":"mask"}]}"#),
        "invalid plugin config: rules[0]: unknown field `column`, expected one of `columns`, `detector`, `action`, `keep_last`"
    );
}

#[test]
fn unknown_detector() {
    assert_eq!(
        error(
            r#"{"rules":[{"detector":"email","action":"mask"},{"detector":"zip","action":"mask"}]}"#
        ),
        "invalid plugin config: rules[1]: unknown variant `zip`, expected one of `email`, `phone`, `ssn`, `card`, `iban`, `ip`, `any`"
    );
}

#[test]
fn unknown_action() {
    assert_eq!(
        error(r#"{"rules":[{"detector":"email","action":"encrypt"}]}"#),
        "invalid plugin config: rules[0]: unknown variant `encrypt`, expected one of `mask`, `hash`, `redact`, `drop`"
    );
}

#[test]
fn hash_without_key() {
    assert_eq!(
        error(r#"{"rules":[{"detector":"card","action":"hash"}]}"#),
        "invalid plugin config: rules[0].action: `hash` needs `hash_key` (the HMAC secret) at the top level of the config"
    );
    assert_eq!(
        error(r#"{"rules":[{"detector":"card","action":"hash"}],"hash_key":""}"#),
        "invalid plugin config: hash_key: must not be empty"
    );
}

#[test]
fn rule_needs_an_action_and_something_to_match() {
    assert_eq!(
        error(r#"{"rules":[{"columns":["ssn"]}]}"#),
        "invalid plugin config: rules[0]: missing field `action`"
    );
    assert_eq!(
        error(r#"{"rules":[{"action":"redact"}]}"#),
        "invalid plugin config: rules[0]: give `columns`, `detector` or both"
    );
    assert_eq!(
        error(r#"{"rules":[{"columns":[],"action":"redact"}]}"#),
        "invalid plugin config: rules[0].columns: an empty list matches no column"
    );
    assert_eq!(
        error(r#"{"rules":[{"columns":["ssn",""],"action":"redact"}]}"#),
        "invalid plugin config: rules[0].columns[1]: an empty pattern matches no column"
    );
}

#[test]
fn keep_last_belongs_to_mask() {
    assert_eq!(
        error(r#"{"rules":[{"columns":["ssn"],"action":"redact","keep_last":4}]}"#),
        "invalid plugin config: rules[0].keep_last: only the `mask` action takes `keep_last`"
    );
    assert_eq!(
        error(r#"{"rules":[{"columns":["ssn"],"action":"mask","keep_last":-1}]}"#),
        "invalid plugin config: rules[0]: invalid value: integer `-1`, expected usize"
    );
}

#[test]
fn empty_lists_are_refused_rather_than_silently_masking_nothing() {
    assert_eq!(
        error(r#"{"name_hints":["ssn", ""]}"#),
        "invalid plugin config: name_hints[1]: an empty pattern matches no column"
    );
    assert_eq!(
        error(r#"{"rules":[]}"#),
        "invalid plugin config: rules: an empty list masks nothing; leave `rules` out for the default detectors"
    );
    assert_eq!(
        error(r#"{"tables":[]}"#),
        "invalid plugin config: tables: an empty list matches no table; leave `tables` out to mask every table"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    assert_eq!(
        error(
            r#"{"rules":[
                {"columns":["email"],"action":"hash"},
                {"detector":"ssn","action":"mask"},
                {"detector":"zip","action":"mask"},
                {"action":"drop","keep_last":1}
            ]}"#
        ),
        "invalid plugin config: \
         rules[0].action: `hash` needs `hash_key` (the HMAC secret) at the top level of the config; \
         rules[2]: unknown variant `zip`, expected one of `email`, `phone`, `ssn`, `card`, `iban`, `ip`, `any`; \
         rules[3]: give `columns`, `detector` or both; \
         rules[3].keep_last: only the `mask` action takes `keep_last`"
    );
}

#[test]
fn wrong_types_and_bad_json() {
    assert_eq!(
        error(r#"{"rules":{"columns":["ssn"]}}"#),
        "invalid plugin config: invalid type: map, expected a sequence"
    );
    assert!(error("{rules").starts_with("plugin config is not JSON: "));
}

#[test]
fn valid_configs_are_accepted() {
    for config in [
        "",
        "{}",
        r#"{"tables":["public.*"]}"#,
        r#"{"hash_key":"unused but harmless"}"#,
        r#"{"rules":[{"columns":["*email*"],"action":"mask"},{"detector":"card","action":"hash"},{"columns":["ssn"],"action":"drop"}],"hash_key":"k","tables":["public.*"]}"#,
    ] {
        assert!(new_plugin::<PiiMask>(config).is_ok(), "{config}");
    }
}

#[test]
fn debug_output_does_not_reveal_the_hash_key() {
    let p =
        plugin(r#"{"rules":[{"detector":"card","action":"hash"}],"hash_key":"very-secret-key"}"#);
    let shown = format!("{p:?}");
    assert!(!shown.contains("very-secret-key"), "{shown}");
}
