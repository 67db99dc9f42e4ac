//! The conventions every list and every retried mutation of the public API share (API.md):
//! `?limit=` (default 20, at most 100) and the `Idempotency-Key` header.

use axum::http::HeaderMap;

use super::error::ApiError;

/// Page size when a list request names none.
pub const DEFAULT_LIMIT: usize = 20;

/// Largest page a list request may ask for.
pub const MAX_LIMIT: usize = 100;

/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// A list request's page size: `limit`, or the default; a 422 naming `limit` outside 1 to 100.
pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field("limit", format!("must be 1 to {MAX_LIMIT}")));
    }
    Ok(limit)
}

/// The request's `Idempotency-Key` (trimmed); a 400 when it is missing, empty or too long.
pub fn idempotency_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::bad_request("the Idempotency-Key header is required"))?;
    if key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::bad_request(format!(
            "the Idempotency-Key header is at most {MAX_IDEMPOTENCY_KEY} characters"
        )));
    }
    Ok(key)
}

/// The 422 of an `Idempotency-Key` used before with another request.
pub fn idempotency_key_reused() -> ApiError {
    ApiError::unprocessable("idempotency-key-reused", "this Idempotency-Key was used with another request")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn limits_default_and_stay_in_range() {
        assert_eq!(page_limit(None).unwrap(), 20);
        assert_eq!(page_limit(Some(100)).unwrap(), 100);
        assert!(page_limit(Some(0)).is_err() && page_limit(Some(101)).is_err());
    }

    #[test]
    fn an_idempotency_key_is_required_and_bounded() {
        let mut headers = HeaderMap::new();
        assert!(idempotency_key(&headers).is_err());
        headers.insert("idempotency-key", HeaderValue::from_static("  k1 "));
        assert_eq!(idempotency_key(&headers).unwrap(), "k1");
        headers.insert("idempotency-key", HeaderValue::from_str(&"k".repeat(256)).unwrap());
        assert!(idempotency_key(&headers).is_err());
    }
}
