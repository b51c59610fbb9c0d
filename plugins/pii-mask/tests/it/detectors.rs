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
    // Other bare digits, short numbers and dates are not phones.
    // Ten bare digits as a North American number has them.
    assert_eq!(default_mask("5551234567"), text("******4567"));
    // Nine to eleven after a trunk prefix, and any eleven: an Italian
    // landline and mobile, a Chinese mobile.
    assert_eq!(default_mask("058874583"), text("*****4583"));
    assert_eq!(default_mask("38201944744"), text("*******4744"));
    assert_eq!(default_mask("13812345678"), text("*******5678"));
    for not_phone in [
        "1700000000",
        "337181013",
        "000012345",
        "00001234567",
        "555-1234",
        "2024-01-15",
    ] {
        assert_eq!(default_mask(not_phone), text(not_phone));
    }
    // IPv4 addresses are not phones either: they are IP addresses.
    assert_eq!(default_mask("10.20.30.40"), text("**.**.**.**"));
    assert_eq!(default_mask("192.168.100.200"), text("***.***.***.***"));
}

#[test]
fn ibans_keep_their_last_four_and_ips_nothing() {
    assert_eq!(
        default_mask("DE89 3704 0044 0532 0130 00"),
        text("**** **** **** **** **30 00")
    );
    assert_eq!(
        default_mask("GB29NWBK60161331926819"),
        text("******************6819")
    );
    assert_eq!(
        default_mask("2001:db8::8a2e:370:7334"),
        text("****:***::****:***:****")
    );
    // A failing checksum is not an IBAN.
    assert_eq!(
        default_mask("DE88370400440532013000"),
        text("DE88370400440532013000")
    );
}

#[test]
fn columns_named_like_personal_data_are_masked_whatever_their_values() {
    let after = mask_after(
        "{}",
        &[
            ("ssn", text("123456789")),
            ("passport_no", text("X1234567")),
            ("dob", Value::Date(-3650)),
            ("Tax_ID", text("12-3456789")),
            ("notes", text("123456789")),
        ],
    );
    assert_eq!(get(&after, "ssn"), &text("*********"));
    assert_eq!(get(&after, "passport_no"), &text("********"));
    // Masked text would not fit a date column: it is redacted.
    assert_eq!(get(&after, "dob"), &Value::Null);
    assert_eq!(get(&after, "Tax_ID"), &text("**********"));
    assert_eq!(get(&after, "notes"), &text("123456789"));
    // `[]` turns the hints off; a list of one's own replaces them.
    let after = mask_after(r#"{"name_hints": []}"#, &[("ssn", text("123456789"))]);
    assert_eq!(get(&after, "ssn"), &text("123456789"));
    let after = mask_after(
        r#"{"name_hints": ["*secret*"]}"#,
        &[("ssn", text("123456789")), ("my_secret", text("abc"))],
    );
    assert_eq!(get(&after, "ssn"), &text("123456789"));
    assert_eq!(get(&after, "my_secret"), &text("***"));
    // A rule naming the column decides before the hints.
    let after = mask_after(
        r#"{"rules": [{"columns": ["ssn"], "action": "redact"}]}"#,
        &[("ssn", text("123456789")), ("dob", text("1990-01-01"))],
    );
    assert_eq!(get(&after, "ssn"), &Value::Null);
    assert_eq!(get(&after, "dob"), &text("**********"));
}

#[test]
fn ssn_keeps_last_four_digits() {
    assert_eq!(default_mask("123-45-6789"), text("***-**-6789"));
    assert_eq!(default_mask("123 45 6789"), text("*** ** 6789"));
    // ITINs (areas 900 to 999) are as sensitive.
    assert_eq!(default_mask("923-45-6789"), text("***-**-6789"));
    assert_eq!(default_mask("912-70-1234"), text("***-**-1234"));
    for not_ssn in ["000-12-3456", "666-12-3456", "123-00-6789", "123456789"] {
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
