mod gzip;
mod json_string;
pub(crate) mod parser;
mod workload;

pub(crate) use gzip::decode_gzip_chunk;
pub(crate) use workload::ParseWorkload;

#[cfg(test)]
pub(crate) use workload::BLOCKING_PARSE_CELLS;
