//! Time-based one-time passwords (RFC 6238): HMAC-SHA1, 30-second steps, 6 digits, one step of
//! clock drift either way, and never the same step twice.

use aws_lc_rs::hmac;
use data_encoding::BASE32_NOPAD;

/// Seconds a code lives.
pub const STEP_SECS: i64 = 30;

/// A new secret: 160 random bits, base32 as authenticator apps take it.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    BASE32_NOPAD.encode(&bytes)
}

/// The code of time step `step` (RFC 4226 dynamic truncation).
pub fn code_at(secret: &str, step: i64) -> Option<String> {
    let key = BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let digest = tag.as_ref();
    let offset = usize::from(digest[19] & 0x0f);
    let binary =
        u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    Some(format!("{:06}", binary % 1_000_000))
}

/// The step `code` belongs to, if it is valid at `now` (Unix seconds) and later than `last_step`.
pub fn verify(secret: &str, code: &str, now: i64, last_step: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now.div_euclid(STEP_SECS);
    (current - 1..=current + 1).filter(|step| *step > last_step).find(|step| {
        code_at(secret, *step).is_some_and(|expected| {
            aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes()).is_ok()
        })
    })
}

/// The `otpauth://` URI an authenticator app scans.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &str) -> String {
    let mut uri = url::Url::parse("otpauth://totp/").expect("a valid base");
    uri.set_path(&format!("/{issuer}:{account}"));
    uri.query_pairs_mut()
        .append_pair("secret", secret)
        .append_pair("issuer", issuer)
        .append_pair("algorithm", "SHA1")
        .append_pair("digits", "6")
        .append_pair("period", "30");
    uri.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_6238_test_vectors_hold() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890", 8 digits truncated to our 6.
        let secret = BASE32_NOPAD.encode(b"12345678901234567890");
        for (time, code) in
            [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")]
        {
            assert_eq!(code_at(&secret, time / STEP_SECS).unwrap(), code, "t={time}");
        }
    }

    #[test]
    fn a_code_is_accepted_within_one_step_of_drift_and_only_once() {
        let secret = new_secret();
        let now = 1_700_000_000;
        let step = now / STEP_SECS;
        let code = code_at(&secret, step).unwrap();
        assert_eq!(verify(&secret, &code, now, 0), Some(step));
        assert_eq!(verify(&secret, &code, now + STEP_SECS, 0), Some(step), "one step late");
        assert_eq!(verify(&secret, &code, now + 3 * STEP_SECS, 0), None, "too late");
        assert_eq!(verify(&secret, &code, now, step), None, "replayed");
        assert_eq!(verify(&secret, "12345", now, 0), None);
        assert_eq!(verify(&secret, "abcdef", now, 0), None);
    }

    #[test]
    fn the_uri_names_the_issuer_and_account() {
        let uri = otpauth_uri("Shop", "ada@example.com", "JBSWY3DPEHPK3PXP");
        assert!(uri.starts_with("otpauth://totp/Shop:ada@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Shop"), "{uri}");
    }
}
