mod api;
pub(crate) mod bind;
pub(crate) mod builder;
mod cancel;
mod executor;
mod handle;
mod manifest;
pub(crate) mod wire;

pub(crate) use builder::StatementParts;
pub(crate) use cancel::QueryControl;
pub(crate) use executor::StatementExecutor;
pub use handle::{QueryCancelStatus, QueryCanceller, QueryHandle};

#[cfg(feature = "bench-internals")]
pub(crate) use wire::response::parse_query_response;
