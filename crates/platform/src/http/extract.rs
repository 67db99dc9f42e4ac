//! Extractors that answer bad input with problem+json: `Json`, `Path` and `Query` wrap axum's and turn
//! every rejection into an [`ApiError`] (axum's own answer is plain text).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{ApiError, FieldError};

/// A JSON request or response body. Malformed JSON is a 400, a body of the wrong shape a 422 naming
/// the field, a missing `Content-Type: application/json` a 415, and a body over the limit a 413. A
/// body carrying card data ([`crate::pci`]) is a 422 and goes no further.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::unsupported_media_type("expected a body with Content-Type: application/json"));
        }
        let bytes = axum::body::Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::from_status(rejection.status()).with_detail("the request body is too large")
            } else {
                ApiError::bad_request("the request body could not be read")
            }
        })?;
        if let Some(found) = crate::pci::find_card_data(&bytes) {
            return Err(ApiError::unprocessable(
                "card-data",
                format!("the request carries {found}: card data is never accepted; send the payment provider's token"),
            ));
        }
        if let Some(field) = unsendable_field(&bytes) {
            return Err(ApiError::validation(vec![FieldError {
                field,
                message: "contains U+FFFE or U+FFFF, which are not characters and cannot be stored or sent".into(),
            }]));
        }
        // A malformed body is always a 400, whatever its fields: the typed pass reports syntax errors
        // itself, and only when it fails on a field is the whole body checked for syntax (a syntax
        // error later in the body still wins).
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut deserializer) {
            Ok(value) => {
                deserializer.end().map_err(|error| ApiError::malformed_json(error.to_string()))?;
                Ok(Json(value))
            }
            Err(error) if error.inner().classify() != serde_json::error::Category::Data => {
                Err(ApiError::malformed_json(error.into_inner().to_string()))
            }
            Err(error) => {
                if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                    return Err(ApiError::malformed_json(syntax.to_string()));
                }
                let field = error.path().to_string();
                let field = if field.is_empty() || field == "." { ".".to_owned() } else { field };
                Err(ApiError::validation(vec![FieldError { field, message: error.inner().to_string() }]))
            }
        }
    }
}

/// Where a JSON body holds U+FFFE or U+FFFF (raw or escaped), which no queue carries (SQS refuses
/// them) and no text field needs: the path of the first string holding one (`.` for the body
/// itself), or `None`. Only a body that holds their bytes or escapes at all is parsed for the path.
pub fn unsendable_field(body: &[u8]) -> Option<String> {
    let raw = body.windows(3).any(|w| w[0] == 0xEF && w[1] == 0xBF && (w[2] == 0xBE || w[2] == 0xBF));
    let escaped = body.windows(6).any(|w| {
        w[0] == b'\\'
            && w[1] == b'u'
            && w[2..5].eq_ignore_ascii_case(b"fff")
            && matches!(w[5], b'e' | b'E' | b'f' | b'F')
    });
    if !raw && !escaped {
        return None;
    }
    fn bad(text: &str) -> bool {
        text.contains(['\u{FFFE}', '\u{FFFF}'])
    }
    fn walk(value: &serde_json::Value, path: &str) -> Option<String> {
        let here = |name: &str| if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
        match value {
            serde_json::Value::String(text) => {
                bad(text).then(|| if path.is_empty() { ".".to_owned() } else { path.to_owned() })
            }
            serde_json::Value::Array(items) => {
                items.iter().enumerate().find_map(|(i, item)| walk(item, &format!("{path}[{i}]")))
            }
            serde_json::Value::Object(fields) => fields
                .iter()
                .find_map(|(name, item)| if bad(name) { Some(here(name)) } else { walk(item, &here(name)) }),
            _ => None,
        }
    }
    // A body that does not parse is answered by the typed pass.
    serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|value| walk(&value, ""))
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(content_type) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn source_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = error;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    deepest.to_string()
}

/// Path parameters; a value that does not parse is a 400 naming the parameter.
#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                Err(ApiError::bad_request(format!("invalid path parameter: {}", error.body_text())))
            }
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

/// Query parameters; bad ones are a 400 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(error)) => {
                Err(ApiError::bad_request(format!("invalid query: {}", source_text(&error))))
            }
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::post;
    use http_body_util::BodyExt;
    use serde::Deserialize;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    #[derive(Deserialize, Serialize)]
    struct Body_ {
        name: String,
        quantity: u32,
    }

    async fn call(content_type: Option<&str>, body: &'static str) -> (u16, String, Value) {
        let app = Router::new().route("/", post(|Json(b): Json<Body_>| async move { Json(b) }));
        let mut request = axum::http::Request::post("/");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = app.oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn malformed_json_is_a_400_problem() {
        let (status, content_type, json) = call(Some("application/json"), "{\"name\": ").await;
        assert_eq!(status, 400);
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(json["type"], "/problems/malformed-json");
    }

    #[tokio::test]
    async fn a_wrong_field_type_is_a_422_naming_the_field() {
        let (status, _, json) = call(Some("application/json"), r#"{"name":"a","quantity":-1}"#).await;
        assert_eq!(status, 422);
        assert_eq!(json["errors"][0]["field"], "quantity");
        let (status, _, json) = call(Some("application/json"), r#"{"quantity":1}"#).await;
        assert_eq!(status, 422);
        assert!(json["detail"].as_str().unwrap().contains("name"), "{json}");
    }

    #[tokio::test]
    async fn a_malformed_body_is_a_400_even_when_a_field_is_wrong_before_the_break() {
        let (status, _, json) = call(Some("application/json"), r#"{"name": 1, "quantity": "#).await;
        assert_eq!(status, 400);
        assert_eq!(json["type"], "/problems/malformed-json");
        let (status, _, json) = call(Some("application/json"), r#"{"name":"a","quantity":1} trailing"#).await;
        assert_eq!(status, 400, "trailing characters after a good body");
        assert_eq!(json["type"], "/problems/malformed-json");
    }

    #[tokio::test]
    async fn a_non_character_in_any_string_is_a_422_naming_the_field() {
        for body in [r#"{"name":"a\uFFFE","quantity":1}"#, "{\"name\":\"a\u{FFFF}b\",\"quantity\":1}"] {
            let (status, _, json) = call(Some("application/json"), body).await;
            assert_eq!(status, 422, "{body}");
            assert_eq!(json["errors"][0]["field"], "name", "{json}");
        }
        assert_eq!(unsendable_field(br#"{"a":[{"b":"x"},{"c":"\ufffe"}]}"#).as_deref(), Some("a[1].c"));
        assert_eq!(unsendable_field("{\"caf\u{e9}\":\"\u{1F600} \u{FFFD}\"}".as_bytes()), None);
    }

    #[tokio::test]
    async fn a_missing_content_type_is_a_415() {
        let (status, content_type, _) = call(None, r#"{"name":"a","quantity":1}"#).await;
        assert_eq!(status, 415);
        assert_eq!(content_type, "application/problem+json");
    }

    #[tokio::test]
    async fn a_good_body_passes() {
        let (status, content_type, json) = call(Some("application/json"), r#"{"name":"a","quantity":2}"#).await;
        assert_eq!(status, 200);
        assert_eq!(content_type, "application/json");
        assert_eq!(json["quantity"], 2);
    }
}
