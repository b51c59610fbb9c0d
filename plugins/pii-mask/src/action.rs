//! What the actions make of a value: the mask shapes and the keyed hash.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::detect::Kind;

/// Trailing digits a card number, phone number or SSN keeps by default.
pub const fn default_keep_digits() -> usize {
    4
}

/// Masks trimmed text of kind `kind` (None: plain text).
pub fn mask(text: &str, kind: Option<Kind>, keep_last: Option<usize>) -> String {
    match kind {
        Some(Kind::Email) => mask_email(text),
        Some(Kind::Card | Kind::Phone | Kind::Ssn) => {
            mask_digits(text, keep_last.unwrap_or(default_keep_digits()))
        }
        Some(Kind::Iban) => mask_alphanumeric(text, keep_last.unwrap_or(default_keep_digits())),
        Some(Kind::Ip) => mask_alphanumeric(text, keep_last.unwrap_or(0)),
        None => mask_text(text, keep_last.unwrap_or(0)),
    }
}

/// Every ASCII letter and digit but the last `keep` becomes `*`; the
/// separators (spaces, dots, colons) stay: `DE89 3704 0044 0532 0130 00`
/// -> `**** **** **** **** **30 00`, `192.168.1.20` -> `***.***.*.**`.
pub fn mask_alphanumeric(text: &str, keep: usize) -> String {
    mask_where(text, keep, u8::is_ascii_alphanumeric)
}

/// `ada@example.com` -> `a***@example.com`. `text` must be an email as
/// [`crate::detect::is_email`] recognises it (ASCII, one `@`, non-empty
/// local part); anything else is masked as plain text.
pub fn mask_email(text: &str) -> String {
    match text.split_once('@') {
        Some((local, domain)) if local.is_ascii() && !local.is_empty() => {
            let mut out = String::with_capacity(text.len() + 3);
            out.push_str(&local[..1]);
            out.push_str("***@");
            out.push_str(domain);
            out
        }
        _ => mask_text(text, 0),
    }
}

/// Every ASCII digit but the last `keep` becomes `*`; everything else (the
/// separators) stays. When there are no more than `keep` digits, all go.
pub fn mask_digits(text: &str, keep: usize) -> String {
    mask_where(text, keep, u8::is_ascii_digit)
}

/// Every ASCII byte `hidden` picks but the last `keep` of them becomes
/// `*`; the rest stays. When `hidden` picks no more than `keep`, all go.
fn mask_where(text: &str, keep: usize, hidden: fn(&u8) -> bool) -> String {
    let picked = text.bytes().filter(hidden).count();
    let hide = if picked > keep { picked - keep } else { picked };
    let mut seen = 0;
    text.chars()
        .map(|c| {
            if c.is_ascii() && hidden(&(c as u8)) {
                seen += 1;
                if seen <= hide {
                    return '*';
                }
            }
            c
        })
        .collect()
}

/// Every character but the last `keep` becomes `*`, so the length in
/// characters stays. When there are no more than `keep`, all go.
pub fn mask_text(text: &str, keep: usize) -> String {
    let chars = text.chars().count();
    if chars <= keep {
        return "*".repeat(chars);
    }
    let hide = chars - keep;
    let tail = text.char_indices().nth(hide).map_or(text.len(), |(i, _)| i);
    let mut out = String::with_capacity(hide + text.len() - tail);
    out.extend(std::iter::repeat_n('*', hide));
    out.push_str(&text[tail..]);
    out
}

/// Keyed HMAC-SHA256: the same value and key always give the same hash, so
/// hashed columns still join; without the key the hash cannot be computed.
#[derive(Clone)]
pub struct Hasher {
    // Keyed once; each value continues from a clone of this state.
    mac: Hmac<Sha256>,
}

impl Hasher {
    pub fn new(key: &str) -> Hasher {
        Hasher {
            mac: Hmac::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length"),
        }
    }

    /// The lower-case hex HMAC of `text`'s UTF-8 bytes.
    pub fn hash(&self, text: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher { key: <secret> }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(mask_email("ada@example.com"), "a***@example.com");
        assert_eq!(mask_digits("4111111111111111", 4), "************1111");
        assert_eq!(mask_digits("4111-1111-1111-1111", 4), "****-****-****-1111");
        assert_eq!(mask_digits("123-45-6789", 4), "***-**-6789");
        assert_eq!(mask_digits("+1 (555) 123-4567", 4), "+* (***) ***-4567");
        assert_eq!(mask_digits("+1 (555) 123-4567", 2), "+* (***) ***-**67");
        assert_eq!(mask_digits("12-34", 4), "**-**");
        assert_eq!(
            mask_alphanumeric("DE89 3704 0044 0532 0130 00", 4),
            "**** **** **** **** **30 00"
        );
        assert_eq!(mask_alphanumeric("192.168.1.20", 0), "***.***.*.**");
        assert_eq!(mask_alphanumeric("2001:db8::1", 0), "****:***::*");
        assert_eq!(mask_text("Lovelace", 0), "********");
        assert_eq!(mask_text("Lovelace", 3), "*****ace");
        assert_eq!(mask_text("Zoë Ørsted", 2), "********ed");
        assert_eq!(mask_text("Zoë", 2), "*oë");
        assert_eq!(mask_text("ab", 2), "**");
        assert_eq!(mask_text("", 0), "");
    }

    #[test]
    fn hash_is_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        let h = Hasher::new("Jefe");
        assert_eq!(
            h.hash("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
