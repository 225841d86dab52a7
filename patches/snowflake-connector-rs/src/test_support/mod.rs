//! Crate-wide helpers shared by unit tests.

pub(crate) mod http;
