//! Keeping card data out (PCI DSS): the platform holds provider tokens only. [`find_card_data`]
//! spots what looks like a primary account number (15–19 digits, optionally grouped by spaces or
//! dashes, starting 2–6, passing the Luhn check) or a field named like a card's security code,
//! number or expiry, so a request carrying them is refused before anything stores or logs it.
//! Every JSON body the platform's [`Json`](crate::http::Json) extractor reads is checked.

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
    "cid",
    "securitycode",
    "cardnumber",
    "cardno",
    "pan",
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
    find_number(body).or_else(|| find_field(body))
}

fn find_number(body: &[u8]) -> Option<CardData> {
    let mut i = 0;
    while i < body.len() {
        if !body[i].is_ascii_digit() || (i > 0 && is_word(body[i - 1])) {
            i += 1;
            continue;
        }
        // A run of digits, single spaces or dashes allowed between them.
        let mut digits: Vec<u8> = Vec::with_capacity(19);
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
            if digits.len() > 19 {
                break;
            }
        }
        let bounded = j >= body.len() || !is_word(body[j]);
        if bounded && (15..=19).contains(&digits.len()) && (2..=6).contains(&digits[0]) && luhn(&digits) {
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
        if is_key && key.len() <= 40 {
            let normalized: Vec<u8> =
                key.iter().filter(|b| !matches!(b, b'_' | b'-')).map(u8::to_ascii_lowercase).collect();
            if let Some(field) = CARD_FIELDS.iter().find(|f| f.as_bytes() == normalized.as_slice()) {
                return Some(CardData::Field(field));
            }
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
    }
}
