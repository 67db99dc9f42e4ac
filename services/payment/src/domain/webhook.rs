//! Verification of Stripe's `Stripe-Signature` header: `t=<unix time>,v1=<hex HMAC-SHA256 of
//! "<t>.<raw body>" keyed with the endpoint secret>` (several `v1` entries during a secret roll).
//! The timestamp must be within the tolerance (replay protection) and the comparison is
//! constant-time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Stripe's default tolerance.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is missing or has no timestamp or no `v1` signature.
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    /// The timestamp is outside the tolerance.
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    /// No `v1` signature matches.
    #[error("no signature matches the payload")]
    Mismatch,
}

/// Checks `header` against the raw `payload` at `now` (Unix seconds).
pub fn verify(header: &str, payload: &[u8], secret: &str, now: i64, tolerance_secs: i64) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    let mac = signed_mac(secret, timestamp, payload);
    if signatures.iter().any(|signature| mac.clone().verify_slice(signature).is_ok()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn signed_mac(secret: &str, timestamp: i64, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// The header Stripe would send for `payload` at `timestamp` (for tests and local tools).
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    format!("t={timestamp},v1={}", hex::encode(signed_mac(secret, timestamp, payload).finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    #[test]
    fn a_known_signature_verifies() {
        // HMAC-SHA256(key "whsec_test_secret", "1700000000.{}"), computed with Python's hmac module.
        let known = "ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3";
        assert_eq!(sign(b"{}", SECRET, 1_700_000_000), format!("t=1700000000,v1={known}"));
        assert_eq!(verify(&format!("t=1700000000,v1={known}"), b"{}", SECRET, 1_700_000_000, 300), Ok(()));
        // During a secret roll Stripe sends several v1 signatures; one matching is enough.
        let rolled = format!("t=1700000000,v1=00ff,v1={known},v0=deadbeef");
        assert_eq!(verify(&rolled, b"{}", SECRET, 1_700_000_100, 300), Ok(()));
        // A made-up v1 does not verify.
        let made_up = "t=1700000000,v1=ab1c85a3b7a0734f1c7e2a2fbd8a3c2f4f9a8b5d5d0e0f2e8b8c1e3c7e0a9b7f";
        assert_eq!(verify(made_up, b"{}", SECRET, 1_700_000_000, 300), Err(SignatureError::Mismatch));
    }

    #[test]
    fn tampering_staleness_and_garbage_are_refused() {
        let header = sign(br#"{"id":"evt_1"}"#, SECRET, 1_700_000_000);
        assert_eq!(verify(&header, br#"{"id":"evt_2"}"#, SECRET, 1_700_000_000, 300), Err(SignatureError::Mismatch));
        assert_eq!(
            verify(&header, br#"{"id":"evt_1"}"#, "whsec_other", 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(&header, br#"{"id":"evt_1"}"#, SECRET, 1_700_000_301, 300), Err(SignatureError::Stale));
        for garbage in ["", "t=abc,v1=00", "v1=00", "t=1700000000", "t=1700000000,v1=zz"] {
            assert_eq!(verify(garbage, b"{}", SECRET, 1_700_000_000, 300), Err(SignatureError::Malformed), "{garbage}");
        }
    }
}
