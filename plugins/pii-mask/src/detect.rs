//! The value detectors: hand-written scanners that decide whether a whole
//! (already trimmed) text value is an email address, a phone number, a US
//! Social Security number or a payment-card number.
//!
//! Every scanner works on bytes, rejects on the first byte that cannot
//! belong to its kind (any non-ASCII byte included) and checks the length
//! bounds first, so long free text costs a few comparisons. They are
//! deliberately conservative: a detector runs over every text column under
//! the default configuration, and masking an order number because it looks
//! a little like a phone number is a bug users notice.

/// A kind of personal value a detector recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Email,
    Phone,
    Ssn,
    Card,
}

/// The kind of `text`, trying email, SSN, card and phone in that order
/// (an SSN also has the shape of a short phone number, and a 13 to 15 digit
/// card number the shape of a long one).
pub fn classify(text: &str) -> Option<Kind> {
    if is_email(text) {
        Some(Kind::Email)
    } else if is_ssn(text) {
        Some(Kind::Ssn)
    } else if is_card(text) {
        Some(Kind::Card)
    } else if is_phone(text) {
        Some(Kind::Phone)
    } else {
        None
    }
}

/// `local@domain.tld`: a dot-atom local part of at most 64 bytes, and a
/// domain of at least two labels whose last is alphabetic. Quoted local
/// parts, IP-literal domains and non-ASCII addresses are not recognised.
pub fn is_email(text: &str) -> bool {
    let b = text.as_bytes();
    // "a@b.co" is the shortest address; 254 bytes the longest (RFC 5321).
    if b.len() < 6 || b.len() > 254 {
        return false;
    }
    let mut at = None;
    let mut prev_dot = true; // a leading dot is as bad as a doubled one
    for (i, &c) in b.iter().enumerate() {
        if c == b'@' {
            at = Some(i);
            break;
        }
        if i >= 64 {
            return false;
        }
        if c == b'.' {
            if prev_dot {
                return false;
            }
            prev_dot = true;
        } else if is_atom_byte(c) {
            prev_dot = false;
        } else {
            return false;
        }
    }
    match at {
        Some(i) if i > 0 && !prev_dot => is_domain(&b[i + 1..]),
        _ => false,
    }
}

/// Bytes allowed in a dot-atom local part besides the dot (RFC 5322 atext).
fn is_atom_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&c)
}

/// `label.label...tld`: labels of 1 to 63 letters, digits and inner
/// hyphens, at least two of them, the last alphabetic and 2 or more long.
fn is_domain(d: &[u8]) -> bool {
    let mut labels = 0usize;
    let mut label_len = 0usize;
    let mut label_alpha = true;
    let mut prev = b'.';
    for &c in d {
        match c {
            b'.' => {
                if label_len == 0 || prev == b'-' {
                    return false;
                }
                labels += 1;
                label_len = 0;
                label_alpha = true;
            }
            b'-' => {
                if label_len == 0 {
                    return false;
                }
                label_len += 1;
                label_alpha = false;
            }
            c if c.is_ascii_alphabetic() => label_len += 1,
            c if c.is_ascii_digit() => {
                label_len += 1;
                label_alpha = false;
            }
            _ => return false,
        }
        if label_len > 63 {
            return false;
        }
        prev = c;
    }
    labels >= 1 && label_len >= 2 && label_alpha
}

/// `AAA-GG-SSSS` (or with single spaces): area not 000, 666 or 9xx, group
/// not 00, serial not 0000, as the SSA issues them. Nine bare digits are
/// not taken for an SSN: too many other identifiers look like that.
pub fn is_ssn(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 11 {
        return false;
    }
    let sep = b[3];
    if (sep != b'-' && sep != b' ') || b[6] != sep {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let (Some(area), Some(group), Some(serial)) = (digits(0..3), digits(4..6), digits(7..11))
    else {
        return false;
    };
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// 13 to 19 digits, optionally separated by single spaces or dashes, that
/// pass the Luhn check.
pub fn is_card(text: &str) -> bool {
    let b = text.as_bytes();
    // 19 digits with a separator between every two is the longest form.
    if b.len() < 13 || b.len() > 37 {
        return false;
    }
    let mut digits = 0u32;
    let mut sum = 0u32;
    let mut prev_sep = true; // a trailing separator is as bad as a doubled one
    // Luhn doubles every second digit counted from the right.
    for &c in b.iter().rev() {
        match c {
            b'0'..=b'9' => {
                let mut d = u32::from(c - b'0');
                if digits % 2 == 1 {
                    d *= 2;
                    if d > 9 {
                        d -= 9;
                    }
                }
                sum += d;
                digits += 1;
                if digits > 19 {
                    return false;
                }
                prev_sep = false;
            }
            b' ' | b'-' => {
                if prev_sep {
                    return false;
                }
                prev_sep = true;
            }
            _ => return false,
        }
    }
    !prev_sep && digits >= 13 && sum.is_multiple_of(10)
}

/// A phone number as people write it: an optional leading `+` and country
/// code, digits in groups separated by single spaces, dashes or dots, and
/// at most one parenthesised area code. 10 to 15 digits, or 7 to 15 after
/// a `+`. Bare digits without a `+` are not taken for a phone number (they
/// are far more often identifiers), nor are dotted quads (IPv4 addresses).
pub fn is_phone(text: &str) -> bool {
    #[derive(PartialEq)]
    enum Prev {
        Start,
        Digit,
        Sep,
        Open,
        Close,
    }
    let b = text.as_bytes();
    if b.len() < 8 || b.len() > 32 {
        return false;
    }
    let plus = b[0] == b'+';
    let mut prev = Prev::Start;
    let mut digits = 0u32;
    let mut seps = 0u32;
    let mut dots = 0u32;
    let mut group = 0u32;
    let mut longest_group = 0u32;
    let mut paren: Option<u32> = None; // digits inside an open parenthesis
    let mut paren_seen = false;
    for &c in &b[usize::from(plus)..] {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 15 {
                    return false;
                }
                group += 1;
                if let Some(n) = paren.as_mut() {
                    *n += 1;
                }
                prev = Prev::Digit;
            }
            b' ' | b'-' | b'.' => {
                if paren.is_some() || !(prev == Prev::Digit || prev == Prev::Close) {
                    return false;
                }
                seps += 1;
                dots += u32::from(c == b'.');
                longest_group = longest_group.max(group);
                group = 0;
                prev = Prev::Sep;
            }
            b'(' => {
                if paren_seen || !(prev == Prev::Start || prev == Prev::Sep) {
                    return false;
                }
                paren = Some(0);
                paren_seen = true;
                prev = Prev::Open;
            }
            b')' => {
                match paren {
                    Some(1..=4) => {}
                    _ => return false,
                }
                paren = None;
                longest_group = longest_group.max(group);
                group = 0;
                prev = Prev::Close;
            }
            _ => return false,
        }
    }
    longest_group = longest_group.max(group);
    if prev != Prev::Digit {
        return false;
    }
    if plus {
        return digits >= 7;
    }
    let separated = seps > 0 || paren_seen;
    let dotted_quad = !paren_seen && seps == 3 && dots == 3 && longest_group <= 3;
    separated && !dotted_quad && digits >= 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for yes in [
            "ada@example.com",
            "a@b.co",
            "first.last+tag@mail.example.co.uk",
            "o'brien@example.ie",
            "x_y-z@sub-domain.example.org",
            "UPPER@EXAMPLE.COM",
        ] {
            assert!(is_email(yes), "{yes} is an email");
        }
        for no in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@example.c",
            "ada@example.c0m",
            "ada@@example.com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "ada lovelace@example.com",
            "ada@-example.com",
            "ada@example-.com",
            "ada@example..com",
            "ada@example.com.",
            "ada@exämple.com",
            "mailto:ada@example.com",
            "Ada Lovelace <ada@example.com>",
        ] {
            assert!(!is_email(no), "{no:?} is not an email");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(!is_email(&long_local));
        let long_label = format!("ada@{}.com", "a".repeat(64));
        assert!(!is_email(&long_label));
    }

    #[test]
    fn ssns() {
        for yes in ["123-45-6789", "123 45 6789", "899-99-0001"] {
            assert!(is_ssn(yes), "{yes} is an SSN");
        }
        for no in [
            "123456789",
            "123-456-789",
            "123-45 6789",
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
            "12a-45-6789",
            "123-45-67890",
        ] {
            assert!(!is_ssn(no), "{no:?} is not an SSN");
        }
    }

    #[test]
    fn cards() {
        for yes in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555555555554444",
            "378282246310005",
            "3782 822463 10005",
            "4222222222222",
            "6011000990139424",
        ] {
            assert!(is_card(yes), "{yes} is a card number");
        }
        for no in [
            // Luhn fails.
            "4111111111111112",
            "4111 1111 1111 1112",
            // Too short, too long.
            "411111111111",
            "41111111111111111111",
            // Bad separators.
            "4111  1111 1111 1111",
            "-4111111111111111",
            "4111111111111111-",
            "4111/1111/1111/1111",
            "4111.1111.1111.1111",
            "card 4111111111111111",
        ] {
            assert!(!is_card(no), "{no:?} is not a card number");
        }
    }

    #[test]
    fn phones() {
        for yes in [
            "555-123-4567",
            "(555) 123-4567",
            "555.123.4567",
            "+1 555 123 4567",
            "+15551234567",
            "+44 20 7946 0958",
            "+1 (555) 123-4567",
            "01 23 45 67 89",
            "+690 1234",
        ] {
            assert!(is_phone(yes), "{yes} is a phone number");
        }
        for no in [
            // Bare digits are identifiers more often than phone numbers.
            "5551234567",
            // Too few digits without a country code.
            "555-1234",
            "2024-01-15",
            "12345-6789",
            // Too many digits.
            "+1 555 123 4567 8901 2",
            // An IPv4 address.
            "192.168.100.200",
            // Malformed.
            "555--123-4567",
            "555-123-4567-",
            "(555 123-4567",
            "555) 123-4567",
            "(55555) 123-4567",
            "555(123)4567 89",
            "+ 1 555 123 4567",
            "555-123-4567 ext 8",
            "tel:555-123-4567",
        ] {
            assert!(!is_phone(no), "{no:?} is not a phone number");
        }
    }

    #[test]
    fn classify_prefers_the_narrower_kind() {
        assert_eq!(classify("123-45-6789"), Some(Kind::Ssn));
        assert_eq!(classify("3782 822463 10005"), Some(Kind::Card));
        assert_eq!(classify("+1 555 123 4567"), Some(Kind::Phone));
        assert_eq!(classify("ada@example.com"), Some(Kind::Email));
        assert_eq!(classify("Ada Lovelace"), None);
        assert_eq!(classify(""), None);
    }
}
