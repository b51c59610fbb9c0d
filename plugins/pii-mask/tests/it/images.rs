//! Which images are masked, and what is recorded as changes.

use super::*;
use weir_core::wire::{decode_batch, encode_batch};
use weir_plugin_sdk::{Event, Image, Outcome, Transformer};

fn update(before: &[(&str, Value)], after: &[(&str, Value)]) -> ChangeEvent {
    ChangeEvent {
        op: Op::Update,
        source: source("public", "customers"),
        key: row(&[("id", Value::Int(1))]),
        before: Some(row(before)),
        after: Some(row(after)),
    }
}

#[test]
fn before_and_after_images_are_both_masked() {
    let event = update(
        &[("id", Value::Int(1)), ("email", text("ada@example.com"))],
        &[("id", Value::Int(1)), ("email", text("ada@example.org"))],
    );
    let out = run("{}", &[event]).remove(0);
    assert_eq!(
        out.before,
        Some(row(&[
            ("id", Value::Int(1)),
            ("email", text("a***@example.com"))
        ]))
    );
    assert_eq!(
        out.after,
        Some(row(&[
            ("id", Value::Int(1)),
            ("email", text("a***@example.org"))
        ]))
    );
}

#[test]
fn delete_before_image_is_masked_and_dropped_columns_go_from_both() {
    let config =
        r#"{"rules":[{"columns":["ssn"],"action":"drop"},{"detector":"any","action":"mask"}]}"#;
    let delete = ChangeEvent {
        op: Op::Delete,
        source: source("public", "customers"),
        key: row(&[("id", Value::Int(1))]),
        before: Some(row(&[
            ("id", Value::Int(1)),
            ("ssn", text("123-45-6789")),
            ("card", text("4111111111111111")),
        ])),
        after: None,
    };
    let out = run(config, &[delete]).remove(0);
    assert_eq!(out.op, Op::Delete);
    assert_eq!(
        out.before,
        Some(row(&[
            ("id", Value::Int(1)),
            ("card", text("************1111"))
        ]))
    );
    assert_eq!(out.after, None);
}

#[test]
fn key_image_is_masked_only_by_rules_naming_the_column() {
    let keyed = |config: &str| {
        let mut event = insert(&[
            ("email", text("ada@example.com")),
            ("phone", text("555-123-4567")),
        ]);
        event.key = row(&[
            ("email", text("ada@example.com")),
            ("phone", text("555-123-4567")),
        ]);
        run(config, &[event]).remove(0)
    };
    // Detectors alone never rewrite a row's identity.
    let out = keyed("{}");
    assert_eq!(
        out.key,
        row(&[
            ("email", text("ada@example.com")),
            ("phone", text("555-123-4567"))
        ])
    );
    assert_eq!(
        out.after,
        Some(row(&[
            ("email", text("a***@example.com")),
            ("phone", text("***-***-4567"))
        ]))
    );
    // A name rule does, so that the key and the row still agree.
    let out = keyed(
        r#"{"rules":[{"columns":["email"],"action":"hash"},{"detector":"phone","action":"mask"}],"hash_key":"k"}"#,
    );
    let hashed = get(out.after.as_ref().unwrap(), "email").clone();
    assert_ne!(hashed, text("ada@example.com"));
    assert_eq!(
        out.key,
        row(&[("email", hashed), ("phone", text("555-123-4567"))])
    );
}

#[test]
fn truncate_and_events_without_images_pass_unchanged() {
    let truncate = ChangeEvent {
        op: Op::Truncate,
        source: source("public", "customers"),
        key: vec![],
        before: None,
        after: None,
    };
    let out = run(
        r#"{"rules":[{"columns":["*"],"action":"drop"}]}"#,
        std::slice::from_ref(&truncate),
    );
    assert_eq!(out, [truncate]);
}

#[test]
fn a_changed_layout_is_planned_afresh() {
    // The same table before and after DDL, and a same-named table in
    // another schema: name rules must follow each layout.
    let config = r#"{"rules":[{"columns":["email"],"action":"redact"}]}"#;
    let mut p = plugin(config);
    let v1 = insert(&[("id", Value::Int(1)), ("email", text("a@example.com"))]);
    let v2 = insert(&[("email", text("a@example.com")), ("id", Value::Int(1))]);
    let v3 = insert(&[("id", Value::Int(1)), ("mail", text("a@example.com"))]);
    let mut other_schema = insert(&[("email", text("a@example.com")), ("x", Value::Int(0))]);
    other_schema.source = source("crm", "customers");
    for _ in 0..2 {
        let out = run_with(
            &mut p,
            &[v1.clone(), v2.clone(), v3.clone(), other_schema.clone()],
        );
        assert_eq!(get(out[0].after.as_ref().unwrap(), "email"), &Value::Null);
        assert_eq!(get(out[1].after.as_ref().unwrap(), "email"), &Value::Null);
        assert_eq!(
            get(out[2].after.as_ref().unwrap(), "mail"),
            &text("a@example.com")
        );
        assert_eq!(get(out[3].after.as_ref().unwrap(), "email"), &Value::Null);
    }
    // More layouts than the cache keeps per table still mask correctly.
    let events: Vec<ChangeEvent> = (0..20)
        .map(|n| {
            let mut cols: Vec<(String, Value)> =
                (0..n).map(|c| (format!("c{c}"), Value::Int(c))).collect();
            cols.push(("email".into(), text("a@example.com")));
            let cols: Vec<(&str, Value)> =
                cols.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            insert(&cols)
        })
        .collect();
    for out in run_with(&mut p, &events)
        .into_iter()
        .chain(run_with(&mut p, &events))
    {
        assert_eq!(get(out.after.as_ref().unwrap(), "email"), &Value::Null);
    }
}

/// The patches the plugin records for one event.
fn patches(config: &str, event: &ChangeEvent) -> Vec<(Image, u32, Option<Value>)> {
    let mut p = plugin(config);
    let batch = encode_batch(std::slice::from_ref(event));
    let view = decode_batch(&batch).unwrap().remove(0);
    let mut event = Event::new(view);
    assert_eq!(p.transform(&mut event), Outcome::Keep);
    event
        .patches()
        .iter()
        .map(|p| (p.image, p.index, p.value.clone()))
        .collect()
}

#[test]
fn only_changed_columns_are_patched() {
    let clean = update(
        &[
            ("id", Value::Int(1)),
            ("name", text("Ada")),
            ("ssn", Value::Null),
        ],
        &[
            ("id", Value::Int(1)),
            ("name", text("Ada")),
            ("ssn", Value::Null),
        ],
    );
    assert_eq!(patches("{}", &clean), []);
    let config =
        r#"{"rules":[{"columns":["ssn"],"action":"redact"},{"columns":["name"],"action":"mask"}]}"#;
    assert_eq!(
        patches(config, &clean),
        [
            (Image::Before, 1, Some(text("***"))),
            (Image::After, 1, Some(text("***"))),
        ]
    );
    let dirty = update(
        &[("id", Value::Int(1)), ("email", text("ada@example.com"))],
        &[
            ("id", Value::Int(1)),
            ("email", text("ada@example.com")),
            ("x", text("y")),
        ],
    );
    assert_eq!(
        patches(
            r#"{"rules":[{"columns":["email"],"action":"drop"}]}"#,
            &dirty
        ),
        [(Image::Before, 1, None), (Image::After, 1, None)]
    );
}
