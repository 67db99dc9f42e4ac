//! The product service's integration tests: the store conformance suite (SQLite and DynamoDB) and
//! the search adapters.

mod conformance;
mod opensearch;
