//! Keeping card data out (PCI DSS): the platform holds provider tokens only. [`find_card_data`]
//! spots what looks like a primary account number (15–19 digits, optionally grouped by spaces or
//! dashes, in a card network's number range, passing the Luhn check; also with a security code
//! or an expiry written right after or before it) or a field named like a card's security code,
//! number or expiry, so a request carrying them is refused before anything stores or logs it.
//! Every JSON body the platform's [`Json`](crate::http::Json) extractor reads is checked.
//!
//! Ordinary numbers stay welcome: 15-digit numbers count only in American Express's range (so
//! IMEIs, also Luhn-checked, pass), and runs of more than 23 digits are not card data.

/// What card data a body carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardData {
    /// A card number.
    Number,
    /// A field of a card (`cvc`, `card_number`, `exp_month`…).
    Field(&'static str),
}

impl std::fmt::Display for CardData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number => f.write_str("a card number"),
            Self::Field(name) => write!(f, "a card field ({name})"),
        }
    }
}

/// JSON keys that only card data uses (compared without case, `-` and `_`).
const CARD_FIELDS: &[&str] = &[
    "cvc",
    "cvv",
    "cvc2",
    "cvv2",
    "securitycode",
    "cardnumber",
    "cardno",
    "primaryaccountnumber",
    "expmonth",
    "expyear",
    "expirymonth",
    "expiryyear",
    "expirationdate",
    "cardexpiry",
    "cardexpiration",
];

/// The first card data in `body`, if any.
pub fn find_card_data(body: &[u8]) -> Option<CardData> {
    find_number(body).or_else(|| {
        if body.contains(&b'\\') {
            // Escapes could spell a key in disguise: read the keys as JSON reads them.
            serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|value| find_key(&value))
        } else {
            find_field(body)
        }
    })
}

fn find_key(value: &serde_json::Value) -> Option<CardData> {
    match value {
        serde_json::Value::Object(map) => {
            map.iter().find_map(|(key, value)| card_field(key.as_bytes()).or_else(|| find_key(value)))
        }
        serde_json::Value::Array(items) => items.iter().find_map(find_key),
        _ => None,
    }
}

fn card_field(key: &[u8]) -> Option<CardData> {
    if key.len() > 40 {
        return None;
    }
    let normalized: Vec<u8> = key.iter().filter(|b| !matches!(b, b'_' | b'-')).map(u8::to_ascii_lowercase).collect();
    CARD_FIELDS.iter().find(|f| f.as_bytes() == normalized.as_slice()).map(|field| CardData::Field(field))
}

/// Whether `digits` (15–19 of them) are in a card network's number range.
fn plausible_pan(digits: &[u8]) -> bool {
    let prefix = |n: usize| digits[..n].iter().fold(0u32, |acc, &d| acc * 10 + u32::from(d));
    match digits.len() {
        15 => matches!(prefix(2), 34 | 37),
        16..=19 => {
            digits[0] == 4
                || matches!(prefix(2), 51..=55 | 62 | 65 | 30 | 36 | 38 | 39)
                || matches!(prefix(4), 2221..=2720 | 6011 | 3528..=3589)
                || matches!(prefix(3), 644..=649)
        }
        _ => false,
    }
}

/// Whether a run of digits holds a card number: the whole run, or a card number at its start or
/// end with a security code or an expiry (up to 4 digits) written next to it.
fn holds_pan(run: &[u8]) -> bool {
    if run.len() < 15 || run.len() > 23 {
        return false;
    }
    (15..=19.min(run.len())).any(|n| {
        let (head, tail) = (&run[..n], &run[run.len() - n..]);
        (plausible_pan(head) && luhn(head)) || (plausible_pan(tail) && luhn(tail))
    })
}

fn find_number(body: &[u8]) -> Option<CardData> {
    let mut i = 0;
    while i < body.len() {
        if !body[i].is_ascii_digit() || (i > 0 && is_word(body[i - 1])) {
            i += 1;
            continue;
        }
        // A run of digits, single spaces or dashes allowed between them.
        let mut digits: Vec<u8> = Vec::with_capacity(24);
        let mut j = i;
        while j < body.len() {
            match body[j] {
                b'0'..=b'9' => {
                    digits.push(body[j] - b'0');
                    j += 1;
                }
                b' ' | b'-' if j + 1 < body.len() && body[j + 1].is_ascii_digit() => j += 1,
                _ => break,
            }
        }
        let bounded = j >= body.len() || !is_word(body[j]);
        if bounded && holds_pan(&digits) {
            return Some(CardData::Number);
        }
        i = j.max(i + 1);
    }
    None
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'.'
}

/// The Luhn check of a card number's digits.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(n, &d)| {
            let d = u32::from(d);
            if n % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn find_field(body: &[u8]) -> Option<CardData> {
    let mut i = 0;
    while let Some(start) = body[i..].iter().position(|&b| b == b'"').map(|p| p + i) {
        let end = body[start + 1..].iter().position(|&b| b == b'"').map(|p| p + start + 1)?;
        let key = &body[start + 1..end];
        let rest = &body[end + 1..];
        let is_key = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':');
        if is_key && let Some(found) = card_field(key) {
            return Some(found);
        }
        i = end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_found_however_they_are_written() {
        for body in [
            r#"{"payment_method": "4242424242424242"}"#,
            r#"{"note": "my card is 4242 4242 4242 4242 thanks"}"#,
            r#"{"n": 4000-0566-5566-5556}"#,
            r#"{"amex": "378282246310005"}"#,
            r#"{"x": ["5555555555554444"]}"#,
            r#"{"card": "4242 4242 4242 4242 123"}"#,
            r#"{"card": "4242424242424242 12 26"}"#,
            r#"{"card": "1226 4242424242424242"}"#,
        ] {
            assert_eq!(find_card_data(body.as_bytes()), Some(CardData::Number), "{body}");
        }
    }

    #[test]
    fn ordinary_numbers_and_tokens_are_not_card_numbers() {
        for body in [
            r#"{"payment_method": "pm_card_visa", "amount": 1999}"#,
            r#"{"gtin": "4006381333931", "isbn": "978-3-16-148410-0"}"#,
            r#"{"phone": "+1 415 555 0100", "postal_code": "94107"}"#,
            r#"{"id": "01a2109d-9f1e-7096-a417-b66f42b2eb50"}"#,
            r#"{"n": "4242424242424241"}"#,
            r#"{"id": "ord_4242424242424242"}"#,
            r#"{"ts": 17640000000000000000}"#,
            r#"{"imei": "490154203237518"}"#,
            r#"{"micros": 1764000000000000, "nanos": 1764000000000000000}"#,
            r#"{"big": "123456789012345678901234567890"}"#,
            r#"{"cid": "c-1", "pan": "ABCDE1234F"}"#,
        ] {
            assert_eq!(find_card_data(body.as_bytes()), None, "{body}");
        }
    }

    #[test]
    fn card_fields_are_found_by_name() {
        assert_eq!(find_card_data(br#"{"card": {"cvc": "123"}}"#), Some(CardData::Field("cvc")));
        assert_eq!(find_card_data(br#"{"Exp_Month" : 12}"#), Some(CardData::Field("expmonth")));
        assert_eq!(find_card_data(br#"{"card-number": "x"}"#), Some(CardData::Field("cardnumber")));
        assert_eq!(find_card_data(br#"{"note": "cvc"}"#), None, "a value is not a key");
        assert_eq!(find_card_data(br#"{"description": "exp_month: soon"}"#), None);
        // A key spelled with escapes is still read as the key it is.
        assert_eq!(find_card_data(br#"{"a": "x\"", "c\u0076c": "123"}"#), Some(CardData::Field("cvc")));
    }
}
