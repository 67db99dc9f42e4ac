//! The order service's integration tests: the order store conformance suite.

mod orders;
