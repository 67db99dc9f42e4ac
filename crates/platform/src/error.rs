//! What every layer shares about failures: the kind a port's error falls into (so that one
//! conversion answers it over HTTP, and a new variant cannot silently become a 500), and the
//! whole cause chain of an error on one line, for logs written by stores, loops and handlers alike.

use std::error::Error as StdError;

/// The kind of a failure, as a caller would act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// What was asked for does not exist (404).
    NotFound,
    /// The request conflicts with the current state: a taken name, a stale version (409).
    Conflict,
    /// A condition the caller set no longer holds (412).
    PreconditionFailed,
    /// A field of the request is wrong in a way only the state can tell (422, naming the field).
    Invalid {
        /// The request field at fault.
        field: &'static str,
    },
    /// A dependency is not answering; the same request may succeed later (503).
    Unavailable,
    /// A fault of ours (500): logged with its cause chain, never shown.
    Internal,
}

/// An error that knows its [`ErrorKind`]. Every port error implements it with an exhaustive
/// `match`, so a new variant has to choose its kind; `platform::http::ApiError` converts any of
/// them with `?`.
pub trait Kinded: StdError + Send + Sync + 'static {
    /// What kind of failure this is.
    fn kind(&self) -> ErrorKind;
}

/// The kind of a store's backend failure: [`ErrorKind::Unavailable`] (503, `Retry-After`) when the
/// backend throttled it, else [`ErrorKind::Internal`].
pub fn backend_kind(error: &(dyn StdError + 'static)) -> ErrorKind {
    if crate::dynamodb::is_throttled(error) { ErrorKind::Unavailable } else { ErrorKind::Internal }
}

/// Writes an error and all its causes on one line: `a: b: c`.
pub fn cause_chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

impl Kinded for crate::objects::ObjectError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidKey(_) | Self::Store(_) | Self::Config(_) => ErrorKind::Internal,
        }
    }
}

impl Kinded for crate::cache::CacheError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Redis(_) => ErrorKind::Internal,
        }
    }
}

impl Kinded for crate::sqlite::DbError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Sqlite(_)
            | Self::Io { .. }
            | Self::Task(_)
            | Self::WriterGone
            | Self::Reentered
            | Self::Commit(_)
            | Self::Migration { .. } => ErrorKind::Internal,
        }
    }
}

impl Kinded for crate::dynamodb::DynamoError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Sdk(_)
            | Self::Malformed { .. }
            | Self::Json { .. }
            | Self::Contention(_)
            | Self::Cancelled { .. }
            | Self::TooManyItems(_)
            | Self::Unprocessed(_) => ErrorKind::Internal,
            Self::Throttled => ErrorKind::Unavailable,
        }
    }
}

impl Kinded for crate::events::BusError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Db(_)
            | Self::Sqs { .. }
            | Self::Outbox(_)
            | Self::UnknownQueue(_)
            | Self::StaleReceipt(_)
            | Self::Refused(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_chain_names_every_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(cause_chain(&Outer(std::io::Error::other("root"))), "outer: root");
    }
}
