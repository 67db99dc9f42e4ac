//! The problem responses many operations share, documented once: an operation lists the type
//! among its `#[utoipa::path]` responses (`responses((status = 200, ..), Unauthenticated,
//! NotAdmin)`) instead of repeating the tuple. An answer whose meaning is the operation's own (a
//! 404 "No such order of the caller's") stays a tuple there.
//!
//! What the platform's extractors and layers answer for every operation of a kind (a body that is
//! not JSON, a query that does not parse, a request over the rate limit) is added to each service's
//! document by [`complete`], so no operation can leave it out.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{Content, OpenApi, RefOr};

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

/// Adds to every operation of `document` the answers the platform gives whatever the operation:
/// for a JSON body, 400 (malformed), 413 (too large), 415 (not `application/json`) and 422 (the
/// wrong shape); for query or path parameters, 400 (one that does not parse), and for a query 422
/// (a value the operation does not take); for an operation
/// that needs a token, 401; for an admin operation (`/admin/…`), 403; and 429 (the rate limit) for
/// all. A status the operation already documents keeps its own description, extended with the
/// platform's meaning.
pub fn complete(mut document: OpenApi) -> OpenApi {
    for (path, item) in &mut document.paths.paths {
        let admin = path.starts_with("/admin/");
        let path_parameters = item.parameters.as_ref().is_some_and(|p| !p.is_empty());
        for operation in
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
        {
            complete_operation(operation, admin, path_parameters);
        }
    }
    document
}

fn complete_operation(operation: &mut Operation, admin: bool, path_parameters: bool) {
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|body| matches!(body, RefOr::T(body) if body.content.contains_key("application/json")));
    let parameters = path_parameters || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let query =
        operation.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query));
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut add = |status: &str, description: &str| {
        let responses = &mut operation.responses.responses;
        match responses.get_mut(status) {
            Some(RefOr::T(response)) if !response.description.contains(description) => {
                response.description = format!("{}; or: {description}", response.description);
            }
            Some(_) => {}
            None => {
                let response = ResponseBuilder::new()
                    .description(description)
                    .content("application/problem+json", Content::new(None::<RefOr<utoipa::openapi::Schema>>))
                    .build();
                responses.insert(status.to_owned(), RefOr::T(response));
            }
        }
    };
    if json_body {
        add("400", "A body that is not well-formed JSON");
        add("413", "A body over the size limit");
        add("415", "A body without Content-Type: application/json");
        add("422", "A body of the wrong shape (the problem names the field)");
    }
    if parameters {
        add("400", "A parameter that does not parse (the problem names it)");
    }
    if query {
        add("422", "A query parameter with a value the operation does not take (the problem names it)");
    }
    if secured {
        add("401", &shared_description::<Unauthenticated>("401"));
    }
    if admin {
        add("403", &shared_description::<NotAdmin>("403"));
    }
    add("429", "Over the rate limit (Retry-After says when to try again)");
}

/// The description of `status` in one of the shared responses above.
fn shared_description<R: utoipa::IntoResponses>(status: &str) -> String {
    match R::responses().remove(status) {
        Some(RefOr::T(response)) => response.description,
        _ => String::new(),
    }
}

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

    #[utoipa::path(post, path = "/admin/v1/things/{id}", security(("bearer" = [])),
        params(("id" = String, Path, description = "The thing")),
        request_body = Thing,
        responses((status = 201, description = "Made"), (status = 422, description = "A thing that cannot be")))]
    #[allow(dead_code)]
    fn make_thing() {}

    #[utoipa::path(get, path = "/v1/things", params(("limit" = Option<u32>, Query, description = "How many")),
        responses((status = 200, description = "Things")))]
    #[allow(dead_code)]
    fn list_things() {}

    #[derive(utoipa::ToSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Thing {
        name: String,
    }

    #[derive(utoipa::OpenApi)]
    #[openapi(paths(make_thing, list_things))]
    struct Doc;

    #[test]
    fn every_operation_documents_what_the_platform_answers_for_its_kind() {
        let document = serde_json::to_value(complete(<Doc as utoipa::OpenApi>::openapi())).unwrap();
        let statuses = |path: &str, method: &str| {
            let responses = document["paths"][path][method]["responses"].as_object().unwrap();
            responses.keys().cloned().collect::<Vec<_>>()
        };
        assert_eq!(statuses("/admin/v1/things/{id}", "post"), ["201", "400", "401", "403", "413", "415", "422", "429"]);
        assert_eq!(statuses("/v1/things", "get"), ["200", "400", "422", "429"]);
        let made = &document["paths"]["/admin/v1/things/{id}"]["post"]["responses"];
        // The operation's own meaning of a status is kept, and the platform's added.
        assert_eq!(
            made["422"]["description"],
            "A thing that cannot be; or: A body of the wrong shape (the problem names the field)"
        );
        assert_eq!(made["415"]["content"], json!({"application/problem+json": {}}));
        assert_eq!(made["401"]["description"], "Not signed in: no access token, or one that is not valid");
        assert_eq!(made["403"]["description"], "Not an admin signed in with a second factor");
        // Completing twice changes nothing more.
        let twice = serde_json::to_value(complete(complete(<Doc as utoipa::OpenApi>::openapi()))).unwrap();
        assert_eq!(twice, document);
    }
}
