//! Stock-keeping units: the ids of sellable variants, shared by the catalog, carts, orders and
//! inventory, so every service accepts and refuses the same strings.

/// Whether `sku` is 1–64 characters of ASCII letters, digits, `-`, `_` and `.`.
pub fn is_valid(sku: &str) -> bool {
    !sku.is_empty()
        && sku.len() <= 64
        && sku.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_short_safe_tokens() {
        assert!(is_valid("TSHIRT-RED_M.2"));
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
