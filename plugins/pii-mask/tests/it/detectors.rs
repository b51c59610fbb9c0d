//! Each detector under the default configuration (`{}`): what it masks,
//! and what it must leave alone.

use super::*;

fn default_mask(value: &str) -> Value {
    let after = mask_after("{}", &[("id", Value::Int(1)), ("v", text(value))]);
    assert_eq!(
        after[0],
        Column::new("id", Value::Int(1)),
        "non-text untouched"
    );
    get(&after, "v").clone()
}

#[test]
fn email_keeps_first_character_and_domain() {
    assert_eq!(default_mask("ada@example.com"), text("a***@example.com"));
    assert_eq!(
        default_mask(" Bob.Smith+cdc@mail.example.org\n"),
        text("B***@mail.example.org")
    );
    for not_email in [
        "ada@example",
        "ada at example.com",
        "<ada@example.com>",
        "@example.com",
    ] {
        assert_eq!(default_mask(not_email), text(not_email));
    }
}

#[test]
fn phone_keeps_last_four_digits_and_separators() {
    assert_eq!(default_mask("555-123-4567"), text("***-***-4567"));
    assert_eq!(default_mask("(555) 123-4567"), text("(***) ***-4567"));
    assert_eq!(default_mask("+44 20 7946 0958"), text("+** ** **** 0958"));
    assert_eq!(default_mask("+15551234567"), text("+*******4567"));
    // Bare digits, short numbers, dates and IPv4 addresses are not phones.
    for not_phone in [
        "5551234567",
        "555-1234",
        "2024-01-15",
        "10.20.30.40",
        "192.168.100.200",
    ] {
        assert_eq!(default_mask(not_phone), text(not_phone));
    }
}

#[test]
fn ssn_keeps_last_four_digits() {
    assert_eq!(default_mask("123-45-6789"), text("***-**-6789"));
    assert_eq!(default_mask("123 45 6789"), text("*** ** 6789"));
    for not_ssn in [
        "000-12-3456",
        "666-12-3456",
        "923-45-6789",
        "123-00-6789",
        "123456789",
    ] {
        assert_eq!(default_mask(not_ssn), text(not_ssn));
    }
}

#[test]
fn card_keeps_last_four_digits_and_separators() {
    assert_eq!(default_mask("4111111111111111"), text("************1111"));
    assert_eq!(
        default_mask("4111-1111-1111-1111"),
        text("****-****-****-1111")
    );
    assert_eq!(
        default_mask("4111 1111 1111 1111"),
        text("**** **** **** 1111")
    );
    assert_eq!(default_mask("378282246310005"), text("***********0005"));
    assert_eq!(default_mask("6011000990139424"), text("************9424"));
}

#[test]
fn card_failing_luhn_is_not_masked() {
    for not_card in [
        "4111111111111112",
        "4111-1111-1111-1112",
        "378282246310006",
        "411111111111",         // 12 digits
        "41111111111111111111", // 20 digits
        "4111--1111-1111-1111", // doubled separator
        "4111.1111.1111.1111",  // dots are not card separators
    ] {
        assert_eq!(default_mask(not_card), text(not_card), "{not_card}");
    }
}

#[test]
fn only_whole_values_are_detected() {
    for prose in [
        "write to ada@example.com",
        "card 4111111111111111",
        "ssn: 123-45-6789",
        "Ada Lovelace",
        "",
        "   ",
    ] {
        assert_eq!(default_mask(prose), text(prose));
    }
}

#[test]
fn detectors_examine_text_values_only() {
    let values = [
        ("int", Value::Int(4_111_111_111_111_111)),
        ("decimal", Value::Decimal("4111111111111111".into())),
        ("json", Value::Json(r#""ada@example.com""#.into())),
        ("bytes", Value::Bytes(b"ada@example.com".to_vec())),
        ("null", Value::Null),
        ("unchanged", Value::Unchanged),
    ];
    let after = mask_after("{}", &values);
    assert_eq!(after, row(&values));
}

#[test]
fn detector_rules_pick_their_kind_only() {
    let config = r#"{"rules":[{"detector":"email","action":"redact"},{"detector":"ssn","action":"hash"}],"hash_key":"k"}"#;
    let after = mask_after(
        config,
        &[
            ("a", text("ada@example.com")),
            ("b", text("4111111111111111")),
            ("c", text("555-123-4567")),
        ],
    );
    assert_eq!(get(&after, "a"), &Value::Null);
    assert_eq!(get(&after, "b"), &text("4111111111111111"));
    assert_eq!(get(&after, "c"), &text("555-123-4567"));
}
