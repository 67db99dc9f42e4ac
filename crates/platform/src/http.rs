//! The HTTP conventions every service follows: problem+json errors ([`error`]), extractors that never
//! answer in plain text ([`extract`]), the middleware stack ([`layers`]), per-client rate limiting
//! ([`rate_limit`]), the operations endpoints ([`ops`]), serving with graceful shutdown ([`serve`]),
//! the page every list answers ([`Page`]) and the problem responses operations share in the OpenAPI
//! document ([`docs`]).

pub mod conventions;
pub mod docs;
pub mod error;
pub mod extract;
pub mod layers;
pub mod ops;
pub mod page;
pub mod rate_limit;
pub mod serve;

pub use conventions::{idempotency_key, idempotency_key_reused, page_limit};
pub use error::{ApiError, FieldError, Validator};
pub use extract::{Json, Path, Query};
pub use page::Page;
