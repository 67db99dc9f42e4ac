//! Request authentication shared by every service. Access tokens are bearer JWTs issued by the user
//! service; this module reads them off requests.

use axum::http::{HeaderMap, header};

use crate::http::ApiError;

/// The bearer token of a request, or a 401 problem when there is none.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("this endpoint needs an access token (Authorization: Bearer …)"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized("the Authorization header must be `Bearer <access token>`"));
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_is_read_and_anything_else_is_a_401() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers).unwrap_err().status(), 401);
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers).unwrap_err().status(), 401);
        headers.insert(header::AUTHORIZATION, "Bearer  abc.def ".parse().unwrap());
        assert_eq!(bearer_token(&headers).unwrap(), "abc.def");
    }
}
