//! The catalog store conformance suite, run against every adapter.
