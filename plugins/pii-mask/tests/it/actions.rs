//! The four actions, rule order, and what name rules do to non-text values.

use super::*;

const KEY: &str = "test-key-with-enough-entropy-0001";

fn hash_config(key: &str) -> String {
    format!(r#"{{"rules":[{{"columns":["email"],"action":"hash"}}],"hash_key":"{key}"}}"#)
}

fn hashed(key: &str, value: &str) -> Value {
    let after = mask_after(&hash_config(key), &[("email", text(value))]);
    get(&after, "email").clone()
}

#[test]
fn hash_is_keyed_hmac_sha256_in_lower_case_hex() {
    // RFC 4231, test case 2.
    assert_eq!(
        hashed("Jefe", "what do ya want for nothing?"),
        text("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    );
}

#[test]
fn hash_is_deterministic_per_key() {
    let first = hashed(KEY, "ada@example.com");
    let Value::Text(h) = &first else {
        panic!("a hash is text, got {first:?}")
    };
    assert_eq!(h.len(), 64);
    assert!(
        h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    // Same value, same key, separate instance: same hash, so columns join.
    assert_eq!(hashed(KEY, "ada@example.com"), first);
    // Another key or another value: another hash.
    assert_ne!(
        hashed("another-key-entirely-0002", "ada@example.com"),
        first
    );
    assert_ne!(hashed(KEY, "ada@example.net"), first);
    // The exact bytes are hashed: surrounding spaces count.
    assert_ne!(hashed(KEY, " ada@example.com"), first);
}

#[test]
fn hash_applies_to_every_matching_column_of_every_event() {
    let config = hash_config(KEY);
    let events = [
        insert(&[("email", text("ada@example.com"))]),
        insert(&[("email", text("ada@example.com"))]),
    ];
    let out = run(&config, &events);
    assert_eq!(out[0].after, out[1].after);
    assert_ne!(
        get(out[0].after.as_ref().unwrap(), "email"),
        &text("ada@example.com")
    );
}

#[test]
fn redact_makes_values_null() {
    let config = r#"{"rules":[{"columns":["secret*"],"action":"redact"}]}"#;
    let after = mask_after(
        config,
        &[
            ("secret_text", text("hunter2")),
            ("secret_int", Value::Int(42)),
            ("secret_null", Value::Null),
            ("other", text("hunter2")),
        ],
    );
    assert_eq!(
        after,
        row(&[
            ("secret_text", Value::Null),
            ("secret_int", Value::Null),
            ("secret_null", Value::Null),
            ("other", text("hunter2")),
        ])
    );
}

#[test]
fn drop_removes_the_column_whatever_its_value() {
    let config = r#"{"rules":[{"columns":["ssn","tax_*"],"action":"drop"}]}"#;
    let after = mask_after(
        config,
        &[
            ("id", Value::Int(1)),
            ("ssn", text("123-45-6789")),
            ("name", text("Ada")),
            ("tax_id", Value::Null),
            ("tax_doc", Value::Unchanged),
        ],
    );
    assert_eq!(after, row(&[("id", Value::Int(1)), ("name", text("Ada"))]));
}

#[test]
fn mask_picks_the_shape_by_detecting_the_value() {
    let config = r#"{"rules":[{"columns":["*"],"action":"mask"}]}"#;
    let after = mask_after(
        config,
        &[
            ("email", text("ada@example.com")),
            ("card", text("4111-1111-1111-1111")),
            ("ssn", text("123-45-6789")),
            ("phone", text("+1 555 123 4567")),
            ("name", text("Ada Lovelace")),
            ("accented", text("Zoë")),
            ("padded", text("  Ada  ")),
            ("empty", text("")),
        ],
    );
    assert_eq!(
        after,
        row(&[
            ("email", text("a***@example.com")),
            ("card", text("****-****-****-1111")),
            ("ssn", text("***-**-6789")),
            ("phone", text("+* *** *** 4567")),
            ("name", text("************")),
            ("accented", text("***")),
            ("padded", text("***")),
            ("empty", text("")),
        ])
    );
}

#[test]
fn mask_keep_last_counts_characters_or_digits() {
    let config = r#"{"rules":[{"columns":["*"],"action":"mask","keep_last":2}]}"#;
    let after = mask_after(
        config,
        &[
            ("name", text("Lovelace")),
            ("short", text("ab")),
            ("card", text("4111 1111 1111 1111")),
            ("email", text("ada@example.com")),
        ],
    );
    assert_eq!(
        after,
        row(&[
            ("name", text("******ce")),
            // Nothing is kept of a value no longer than keep_last.
            ("short", text("**")),
            ("card", text("**** **** **** **11")),
            // Emails keep their own shape.
            ("email", text("a***@example.com")),
        ])
    );
}

#[test]
fn mask_and_hash_redact_non_text_values() {
    let config = format!(
        r#"{{"rules":[{{"columns":["m_*"],"action":"mask"}},{{"columns":["h_*"],"action":"hash"}}],"hash_key":"{KEY}"}}"#
    );
    let after = mask_after(
        &config,
        &[
            ("m_int", Value::Int(7)),
            ("m_decimal", Value::Decimal("12.50".into())),
            (
                "m_uuid",
                Value::Uuid("6f1c2a4e-0000-4000-8000-000000000001".into()),
            ),
            ("m_null", Value::Null),
            ("m_unchanged", Value::Unchanged),
            ("h_bytes", Value::Bytes(vec![1, 2, 3])),
            ("h_date", Value::Date(19_000)),
            ("h_null", Value::Null),
            ("h_unchanged", Value::Unchanged),
        ],
    );
    assert_eq!(
        after,
        row(&[
            ("m_int", Value::Null),
            ("m_decimal", Value::Null),
            ("m_uuid", Value::Null),
            ("m_null", Value::Null),
            ("m_unchanged", Value::Unchanged),
            ("h_bytes", Value::Null),
            ("h_date", Value::Null),
            ("h_null", Value::Null),
            ("h_unchanged", Value::Unchanged),
        ])
    );
}

#[test]
fn first_matching_rule_wins() {
    let config = r#"{"rules":[
        {"columns":["contact_*"],"detector":"phone","action":"redact"},
        {"columns":["contact_*"],"action":"drop"},
        {"detector":"any","action":"mask"}
    ]}"#;
    let after = mask_after(
        config,
        &[
            ("contact_phone", text("555-123-4567")),
            ("contact_email", text("ada@example.com")),
            ("email", text("ada@example.com")),
        ],
    );
    assert_eq!(
        after,
        row(&[
            ("contact_phone", Value::Null),
            ("email", text("a***@example.com"))
        ])
    );
}

#[test]
fn columns_and_detector_must_both_match() {
    let config = r#"{"rules":[{"columns":["email"],"detector":"email","action":"redact"}]}"#;
    let after = mask_after(
        config,
        &[
            ("email", text("not an address")),
            ("other", text("ada@example.com")),
        ],
    );
    assert_eq!(
        after,
        row(&[
            ("email", text("not an address")),
            ("other", text("ada@example.com"))
        ])
    );
    let after = mask_after(config, &[("EMAIL", text("ada@example.com"))]);
    assert_eq!(after, row(&[("EMAIL", Value::Null)]));
}

#[test]
fn column_globs_are_case_insensitive() {
    let config = r#"{"rules":[{"columns":["*Email*","ss?"],"action":"redact"}]}"#;
    let after = mask_after(
        config,
        &[
            ("work_EMAIL_address", text("x")),
            ("SSN", text("x")),
            ("ssns", text("x")),
            ("mail", text("x")),
        ],
    );
    assert_eq!(
        after,
        row(&[
            ("work_EMAIL_address", Value::Null),
            ("SSN", Value::Null),
            ("ssns", text("x")),
            ("mail", text("x")),
        ])
    );
}

#[test]
fn tables_filter_selects_by_schema_and_table() {
    let config = r#"{"rules":[{"columns":["email"],"action":"redact"}],"tables":["public.cust*","CRM.Contacts"]}"#;
    let event = |schema: &str, table: &str| {
        let mut e = insert(&[("email", text("ada@example.com"))]);
        e.source = source(schema, table);
        e
    };
    let out = run(
        config,
        &[
            event("public", "customers"),
            event("audit", "customers"),
            event("crm", "contacts"),
            event("public", "orders"),
            event("public", "customers"),
        ],
    );
    let masked: Vec<bool> = out
        .iter()
        .map(|e| get(e.after.as_ref().unwrap(), "email") == &Value::Null)
        .collect();
    assert_eq!(masked, [true, false, true, false, true]);
}

#[test]
fn default_detectors_respect_the_tables_filter() {
    let config = r#"{"tables":["public.*"]}"#;
    let mut other = insert(&[("email", text("ada@example.com"))]);
    other.source = source("audit", "customers");
    let out = run(
        config,
        &[insert(&[("email", text("ada@example.com"))]), other],
    );
    assert_eq!(
        get(out[0].after.as_ref().unwrap(), "email"),
        &text("a***@example.com")
    );
    assert_eq!(
        get(out[1].after.as_ref().unwrap(), "email"),
        &text("ada@example.com")
    );
}
