//! The use-cases: what a request, an event or a tool asks of the catalog, callable without HTTP —
//! a bulk import, the demo catalog, keeping the search index and the rendered pages following the
//! store, and a rebuild of the index.

pub mod drawn;
pub mod images;
pub mod import;
pub mod indexer;
pub mod pages;
pub mod seed;
