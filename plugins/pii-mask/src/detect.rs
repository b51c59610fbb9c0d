//! The value detectors: hand-written scanners that decide whether a whole
//! (already trimmed) text value is an email address, a phone number, a US
//! Social Security or taxpayer identification number, a payment-card
//! number, an IBAN or an IP address.
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
    /// A US SSN or ITIN.
    Ssn,
    Card,
    Iban,
    Ip,
}

/// The kind of `text`, trying email, SSN, IBAN, card, IP address and
/// phone in that order (an SSN also has the shape of a short phone number,
/// and a 13 to 15 digit card number the shape of a long one).
pub fn classify(text: &str) -> Option<Kind> {
    if is_email(text) {
        Some(Kind::Email)
    } else if is_ssn(text) {
        Some(Kind::Ssn)
    } else if is_iban(text) {
        Some(Kind::Iban)
    } else if is_card(text) {
        Some(Kind::Card)
    } else if is_ip(text) {
        Some(Kind::Ip)
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

/// `AAA-GG-SSSS` (or with single spaces): area not 000 or 666, group not
/// 00, serial not 0000. Areas 900 to 999, which the SSA never issues, are
/// the IRS's taxpayer numbers (ITINs, ATINs): as sensitive, so taken too.
/// Nine bare digits are not taken for an SSN: too many other identifiers
/// look like that (a column named like one is masked by name instead).
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
    area != 0 && area != 666 && group != 0 && serial != 0
}

/// An IBAN: two letters (the country), two check digits, then 11 to 30
/// letters and digits, in groups of four separated by single spaces or
/// not at all, whose ISO 7064 mod-97 check gives 1. Lower case is taken
/// too. The length is not checked per country: the checksum already
/// rejects all but one in 97 strings of the shape.
pub fn is_iban(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < 15 || b.len() > 42 {
        return false;
    }
    let spaced = b.get(4) == Some(&b' ');
    // On the stack: this runs on every text value of an IBAN's length.
    let mut buf = [0u8; 34];
    let mut n = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b' ' {
            // A space after every four characters, and only there.
            if !spaced || i % 5 != 4 || i + 1 == b.len() {
                return false;
            }
            continue;
        }
        if spaced && i % 5 == 4 {
            return false;
        }
        if !c.is_ascii_alphanumeric() || n == buf.len() {
            return false;
        }
        buf[n] = c.to_ascii_uppercase();
        n += 1;
    }
    let chars = &buf[..n];
    if chars.len() < 15
        || !chars[..2].iter().all(u8::is_ascii_alphabetic)
        || !chars[2..4].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    // Move the first four to the end; letters count as 10 to 35.
    let mut rest = 0u32;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rest = if v >= 10 {
            (rest * 100 + v) % 97
        } else {
            (rest * 10 + v) % 97
        };
    }
    rest == 1
}

/// An IPv4 address (four decimal numbers from 0 to 255, no leading zeros)
/// or an IPv6 address in any of its text forms (`::1`, `2001:db8::8a2e:370:7334`,
/// `::ffff:192.0.2.1`), without a zone or brackets.
pub fn is_ip(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < 2 || b.len() > 45 {
        return false;
    }
    if b.contains(&b':') {
        return text.parse::<std::net::Ipv6Addr>().is_ok();
    }
    // `parse` accepts exactly the dotted-quad form, leading zeros refused.
    b.len() >= 7 && text.parse::<std::net::Ipv4Addr>().is_ok()
}

/// 12 to 19 digits (Maestro cards have 12), optionally separated by
/// single spaces or dashes, that pass the Luhn check.
pub fn is_card(text: &str) -> bool {
    let b = text.as_bytes();
    // 19 digits with a separator between every two is the longest form.
    if b.len() < 12 || b.len() > 37 {
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
    !prev_sep && digits >= 12 && sum.is_multiple_of(10) && !is_isbn13(text)
}

/// A phone number as people write it: an optional leading `+` and country
/// code, digits in groups separated by single spaces, dashes or dots, at
/// most one parenthesised area code (1 to 5 digits) or, after a country
/// code, a trunk prefix `(0)`, and an optional extension (`x123`,
/// ` ext. 123`). 10 to 15 digits, or 7 to 15 after a `+`. Bare digits
/// only in the shapes of [`is_bare_phone`]; never dotted quads (IPv4
/// addresses) or ISBNs.
pub fn is_phone(text: &str) -> bool {
    is_phone_number(strip_extension(text))
}

/// `text` without a trailing extension: `x`, `ext`, `ext.` or `extension`
/// (after a space, or `x` right after the number) and 1 to 6 digits.
fn strip_extension(text: &str) -> &str {
    let digits_from = text
        .bytes()
        .rposition(|c| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let tail = text.len() - digits_from;
    if tail == 0 || tail > 6 {
        return text;
    }
    let head = &text[..digits_from];
    for marker in [" extension ", " ext. ", " ext ", " x", "x"] {
        if let Some(number) = head.strip_suffix(marker)
            && number.ends_with(|c: char| c.is_ascii_digit())
        {
            return number;
        }
    }
    text
}

fn is_phone_number(text: &str) -> bool {
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
                // `+44(0)20 ...`: a trunk prefix right after the country code.
                let trunk = plus && prev == Prev::Digit;
                if paren_seen || !(prev == Prev::Start || prev == Prev::Sep || trunk) {
                    return false;
                }
                paren = Some(0);
                paren_seen = true;
                prev = Prev::Open;
            }
            b')' => {
                match paren {
                    Some(1..=5) => {}
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
    if !separated {
        return is_bare_phone(b);
    }
    let dotted_quad = !paren_seen && seps == 3 && dots == 3 && longest_group <= 3;
    !dotted_quad && digits >= 10 && !is_isbn13(text)
}

/// Bare digits taken for a phone number: ten starting 2 to 9 (a North
/// American number without its `1`), nine to eleven starting with a trunk
/// or international prefix `0` or `00` (an Italian `058874583`), or any
/// eleven (a mobile number without its `+`, an Italian `38201944744`, a
/// Chinese `13812345678`) — but never zero-padding (four or more leading
/// zeros). Other bare digits (nine without a `0`, a Unix time such as
/// `1700000000`, a 12-digit id) are left alone. For a masking plugin an
/// identifier masked by mistake costs less than a phone number let through.
fn is_bare_phone(b: &[u8]) -> bool {
    if b.starts_with(b"0000") {
        return false;
    }
    let north_american = b.len() == 10 && (b'2'..=b'9').contains(&b[0]);
    let prefixed = (9..=11).contains(&b.len()) && b[0] == b'0';
    north_american || prefixed || b.len() == 11
}

/// An ISBN-13 (`978-0-306-40615-7`): 13 digits, prefix 978 or 979, its
/// own check digit. Books are not phone or card numbers.
pub fn is_isbn13(text: &str) -> bool {
    // One pass, nothing allocated: it runs on every phone- or card-shaped
    // value. Weights 1 and 3 in turn; the sum, check digit included, ends
    // in 0.
    let (mut count, mut prefix, mut sum) = (0u32, 0u32, 0u32);
    for d in text
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|c| u32::from(c - b'0'))
    {
        if count < 3 {
            prefix = prefix * 10 + d;
        }
        sum += if count % 2 == 0 { d } else { d * 3 };
        count += 1;
    }
    count == 13 && (prefix == 978 || prefix == 979) && sum.is_multiple_of(10)
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
        // ITINs (9xx) too.
        for yes in ["900-70-1234", "912-93-4567", "999 88 0001"] {
            assert!(is_ssn(yes), "{yes} is an ITIN");
        }
        for no in [
            "123456789",
            "123-456-789",
            "123-45 6789",
            "000-12-3456",
            "666-12-3456",
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
            // Maestro, 12 digits.
            "584335182682",
        ] {
            assert!(is_card(yes), "{yes} is a card number");
        }
        for no in [
            // Luhn fails.
            "4111111111111112",
            "4111 1111 1111 1112",
            // Too short, too long.
            "41111111111",
            "41111111111111111111",
            // Bad separators.
            "4111  1111 1111 1111",
            "-4111111111111111",
            "4111111111111111-",
            "4111/1111/1111/1111",
            "4111.1111.1111.1111",
            "card 4111111111111111",
            // An ISBN-13 that happens to pass the Luhn check.
            "978-0-8089-0112-9",
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
            "907-820-2456x272",
            "(725)369-0959x110",
            "+1-832-615-6232x50783",
            "555-123-4567 ext. 89",
            "+44(0)1632 960 317",
            "+49(0)9772902519",
            "(05876) 68574",
            "(031)-8621482",
            // Bare, but only a phone number can look like this.
            "5232749840",
            "5551234567",
            "3970657700",
            "01214960434",
            "0383945561",
            "00796131057",
        ] {
            assert!(is_phone(yes), "{yes} is a phone number");
        }
        for no in [
            // Bare digits are identifiers more often than phone numbers,
            // unless shaped like one (below).
            "1700000000",
            "0000012345",
            "123456789012",
            "555123456",
            // A book.
            "978-0-306-40615-7",
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
            "(555555) 123-4567",
            "555(123)4567 89",
            "+ 1 555 123 4567",
            "555-123-4567 ext",
            "555-123-4567x1234567",
            "555-123-4567 x",
            "tel:555-123-4567",
        ] {
            assert!(!is_phone(no), "{no:?} is not a phone number");
        }
    }

    #[test]
    fn ibans() {
        for yes in [
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "GB29NWBK60161331926819",
            "GB29 NWBK 6016 1331 9268 19",
            "gb29nwbk60161331926819",
            "FR1420041010050500013M02606",
            "NO9386011117947",
            "MT84MALT011000012345MTLCAST001S",
        ] {
            assert!(is_iban(yes), "{yes} is an IBAN");
        }
        for no in [
            // Check digits wrong.
            "DE88370400440532013000",
            "GB28 NWBK 6016 1331 9268 19",
            // Spaces out of place.
            "DE89 370400440532013000",
            "DE8937 0400 4405 3201 3000",
            "DE89  3704 0044 0532 0130 00",
            // Too short, no country, not alphanumeric.
            "DE8937040044",
            "1289370400440532013000",
            "DE89-3704-0044-0532-0130-00",
            "hello world this is text",
        ] {
            assert!(!is_iban(no), "{no:?} is not an IBAN");
        }
    }

    #[test]
    fn ip_addresses() {
        for yes in [
            "192.168.100.200",
            "10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "2001:db8::8a2e:370:7334",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "fe80::1ff:fe23:4567:890a",
            "::ffff:192.0.2.1",
        ] {
            assert!(is_ip(yes), "{yes} is an IP address");
        }
        for no in [
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.4 ",
            "2024.01.15",
            "3.14",
            "12:30",
            "10:30:00",
            "2001:db8:::1",
            "[::1]",
            "fe80::1%eth0",
            "v1.2.3.4",
        ] {
            assert!(!is_ip(no), "{no:?} is not an IP address");
        }
    }

    #[test]
    fn classify_prefers_the_narrower_kind() {
        assert_eq!(classify("DE89 3704 0044 0532 0130 00"), Some(Kind::Iban));
        assert_eq!(classify("192.168.1.20"), Some(Kind::Ip));
        assert_eq!(classify("912-70-1234"), Some(Kind::Ssn));
        assert_eq!(classify("123-45-6789"), Some(Kind::Ssn));
        assert_eq!(classify("3782 822463 10005"), Some(Kind::Card));
        assert_eq!(classify("+1 555 123 4567"), Some(Kind::Phone));
        assert_eq!(classify("ada@example.com"), Some(Kind::Email));
        assert_eq!(classify("Ada Lovelace"), None);
        assert_eq!(classify(""), None);
    }
}
