//! The problem responses many operations share, documented once: an operation lists the type
//! among its `#[utoipa::path]` responses (`responses((status = 200, ..), Unauthenticated,
//! NotAdmin)`) instead of repeating the tuple. An answer whose meaning is the operation's own (a
//! 404 "No such order of the caller's") stays a tuple there.

/// What [`AuthUser`](crate::auth::AuthUser) answers without a valid access token; list it on
/// every operation that needs a signed-in user.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 401,
    description = "Not signed in: no access token, or one that is not valid",
    content_type = "application/problem+json"
)]
pub struct Unauthenticated;

/// What [`AdminUser`](crate::auth::AdminUser) answers to a caller who is not an admin signed in
/// with a second factor; list it on every admin operation.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 403,
    description = "Not an admin signed in with a second factor",
    content_type = "application/problem+json"
)]
pub struct NotAdmin;

/// What [`idempotency_key`](super::idempotency_key) answers to a request without a usable
/// `Idempotency-Key`; list it on every operation that requires one.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 400,
    description = "No Idempotency-Key header, or an empty or over-long one",
    content_type = "application/problem+json"
)]
pub struct NoIdempotencyKey;

#[cfg(test)]
mod tests {
    use serde_json::json;
    use utoipa::IntoResponses;

    use super::*;

    #[test]
    fn each_is_one_problem_response() {
        for (responses, status) in [
            (Unauthenticated::responses(), "401"),
            (NotAdmin::responses(), "403"),
            (NoIdempotencyKey::responses(), "400"),
        ] {
            assert_eq!(responses.keys().collect::<Vec<_>>(), [status]);
            let response = serde_json::to_value(&responses[status]).unwrap();
            assert_eq!(response["content"], json!({"application/problem+json": {}}), "{response}");
            assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()), "{response}");
        }
    }
}
