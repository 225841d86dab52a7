mod collect;
mod cursor;
mod model;
mod remote;
mod typed_cursor;

pub use collect::CollectOptions;
pub use cursor::ResultCursor;
pub use typed_cursor::TypedResultCursor;

pub(crate) use collect::CollectPolicy;
pub(crate) use model::{InlineRowset, PartitionSpec, ResultIdentity, ResultSnapshot};
pub(crate) use remote::{DownloadLocator, RemotePartitionSource, ResolvedLease};
