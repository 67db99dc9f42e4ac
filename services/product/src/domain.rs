//! Catalog types and rules, free of I/O.

pub mod category;
pub mod product;
