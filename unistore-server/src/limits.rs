//! How much a client may take from the controller: time, connections, bytes.
//!
//! Every limit has a default that suits one controller serving a UI and a few thousand workers, a
//! ceiling that rejects nonsense at start-up, and a flag in the binary. Tests and later issues build
//! a [`ServerLimits`] with small values directly.

use std::time::Duration;

use crate::error::ServerError;

/// Descriptors kept free for everything that is not a client connection: the listener, the results
/// store (SQLite files or database connections), logs, the runtime's own handles.
pub const RESERVED_DESCRIPTORS: u64 = 32;

/// Longest accepted value for any of the timeouts: a day is already far beyond any sane setting.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
const MAX_CONNECTIONS: usize = 1_000_000;
const MAX_BODY_BYTES: usize = 1 << 30;
/// hyper refuses read buffers smaller than 8 KiB.
const MIN_HEADER_BYTES: usize = 8 * 1024;
const MAX_HEADER_BYTES: usize = 1 << 20;
const MAX_LISTEN_BACKLOG: u32 = 65_535;

/// The controller's limits against slow, stalled or greedy clients.
///
/// ```
/// use std::time::Duration;
/// use unistore_server::ServerLimits;
///
/// let limits = ServerLimits {
///     header_timeout: Duration::from_millis(500),
///     max_connections: 8,
///     ..ServerLimits::default()
/// };
/// assert!(limits.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// A connection must deliver a complete request head within this time, counted from the
    /// moment the server starts waiting for one. It also bounds how long an idle keep-alive
    /// connection is kept, since that connection is waiting for its next head.
    pub header_timeout: Duration,
    /// Time for a handler to produce the response head, reading the request body included. A
    /// WebSocket upgrade answers at once, so an upgraded socket is not cut by it.
    pub request_timeout: Duration,
    /// A client that accepts no response bytes for this long is disconnected (a client that
    /// never reads would otherwise hold its connection for ever).
    pub write_timeout: Duration,
    /// Open client connections, upgraded WebSockets included. When all are taken, the connection
    /// quiet the longest (for at least 1 s, or half the header timeout) is closed to make room;
    /// if none is, further connections wait in the kernel's listen backlog, holding no task and
    /// no descriptor here.
    pub max_connections: usize,
    /// Largest request body; a larger one is answered `413 Payload Too Large`.
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers); a larger one is answered with `431`.
    pub max_header_bytes: usize,
    /// Connections the kernel queues while `max_connections` are open (capped by the kernel's
    /// `net.core.somaxconn`). Used by [`bind_listener`](crate::bind_listener).
    pub listen_backlog: u32,
    /// After a shutdown signal, requests in flight get this long to finish before their
    /// connections are cut.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 64 * 1024,
            listen_backlog: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ServerLimits {
    /// Checks every value against its ceiling, naming the flag to change.
    pub fn validate(&self) -> Result<(), ServerError> {
        let timeouts = [
            ("header timeout (--header-timeout)", self.header_timeout),
            ("request timeout (--request-timeout)", self.request_timeout),
            ("write timeout (--write-timeout)", self.write_timeout),
            ("shutdown grace (--shutdown-grace)", self.shutdown_grace),
        ];
        for (name, value) in timeouts {
            if value.is_zero() || value > MAX_TIMEOUT {
                return Err(ServerError::InvalidLimit {
                    name,
                    message: format!(
                        "{} is outside 1ms..=24h; give a duration such as 10s",
                        humantime::format_duration(value)
                    ),
                });
            }
        }
        check_range("connection limit (--max-connections)", self.max_connections, 1, MAX_CONNECTIONS)?;
        check_range("body limit (--max-body)", self.max_body_bytes, 1, MAX_BODY_BYTES)?;
        check_range(
            "header size limit (--max-header-size)",
            self.max_header_bytes,
            MIN_HEADER_BYTES,
            MAX_HEADER_BYTES,
        )?;
        check_range(
            "listen backlog (--listen-backlog)",
            self.listen_backlog as usize,
            1,
            MAX_LISTEN_BACKLOG as usize,
        )
    }

    /// Makes room for `max_connections` within the process's open-file limit: raises the soft
    /// limit towards the hard one if needed, and if that is not enough lowers `max_connections`
    /// so that a flood of clients meets the connection limit (and waits in the backlog) before
    /// `accept` fails with "too many open files". Returns a line to log when something changed.
    pub fn fit_to_descriptor_limit(&mut self) -> Option<String> {
        let wanted = self.max_connections as u64 + RESERVED_DESCRIPTORS;
        let available = match open_file_limit(wanted) {
            Ok(Some(limit)) => limit,
            Ok(None) => return None,
            Err(e) => return Some(format!("cannot read the open-file limit ({e}); not checked")),
        };
        if available >= wanted {
            return None;
        }
        let fitted = available.saturating_sub(RESERVED_DESCRIPTORS).max(1) as usize;
        let message = format!(
            "the open-file limit is {available}, too low for {} connections plus {RESERVED_DESCRIPTORS} \
             descriptors for the store and runtime: serving at most {fitted} connections \
             (raise `ulimit -n` or set --max-connections)",
            self.max_connections
        );
        self.max_connections = fitted;
        Some(message)
    }
}

fn check_range(name: &'static str, value: usize, min: usize, max: usize) -> Result<(), ServerError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ServerError::InvalidLimit { name, message: format!("{value} is outside {min}..={max}") })
    }
}

/// The soft open-file limit after trying to raise it to `wanted`; `None` where there is none.
#[cfg(unix)]
fn open_file_limit(wanted: u64) -> std::io::Result<Option<u64>> {
    rlimit::increase_nofile_limit(wanted).map(Some)
}

#[cfg(not(unix))]
fn open_file_limit(_wanted: u64) -> std::io::Result<Option<u64>> {
    Ok(None)
}

/// Parses a positive duration flag such as `10s`, `500ms` or `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}): write e.g. 10s, 500ms, 2m"))?;
    if value.is_zero() {
        return Err(format!("`{text}` is zero: give a positive duration such as 10s"));
    }
    Ok(value)
}

/// Parses a size such as `1MiB`, `512KiB`, `64kB`, `2MB` or `1048576` (bytes). Binary units
/// (`KiB`, `MiB`, `GiB`) are powers of 1024, decimal ones (`kB`, `MB`, `GB`) powers of 1000.
pub fn parse_byte_size(text: &str) -> Result<usize, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let hint = "write e.g. 1MiB, 512KiB, 64kB or a number of bytes";
    let number: usize = digits.parse().map_err(|_| format!("`{text}` is not a size: {hint}"))?;
    let multiplier: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        other => return Err(format!("`{text}`: unknown unit `{other}`; {hint}")),
    };
    number.checked_mul(multiplier).ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ServerLimits::default().validate().map_err(|e| e.to_string()), Ok(()));
    }

    #[test]
    fn out_of_range_values_name_the_flag() {
        let zero = ServerLimits { header_timeout: Duration::ZERO, ..ServerLimits::default() };
        let message = zero.validate().map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(message.contains("--header-timeout"), "{message}");

        let none = ServerLimits { max_connections: 0, ..ServerLimits::default() };
        let message = none.validate().map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(message.contains("--max-connections") && message.contains("0 is outside"), "{message}");

        let tiny_head = ServerLimits { max_header_bytes: 100, ..ServerLimits::default() };
        assert!(tiny_head.validate().is_err(), "hyper would panic on a read buffer under 8 KiB");

        let forever =
            ServerLimits { shutdown_grace: Duration::from_secs(365 * 86_400), ..ServerLimits::default() };
        assert!(forever.validate().is_err());
    }

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!(parse_byte_size("1MiB"), Ok(1_048_576));
        assert_eq!(parse_byte_size("512 KiB"), Ok(524_288));
        assert_eq!(parse_byte_size("64kB"), Ok(64_000));
        assert_eq!(parse_byte_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert_eq!(parse_byte_size("1gib"), Ok(1 << 30));
        assert!(parse_byte_size("1.5MiB").is_err());
        assert!(parse_byte_size("MiB").is_err());
        assert!(parse_byte_size("3 parsecs").unwrap_err().contains("unknown unit `parsecs`"));
        assert!(parse_byte_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn durations_must_be_positive() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration(" 500ms "), Ok(Duration::from_millis(500)));
        assert!(parse_duration("0s").unwrap_err().contains("zero"));
        assert!(parse_duration("soon").unwrap_err().contains("not a duration"));
    }

    #[cfg(unix)]
    #[test]
    fn a_connection_limit_above_the_open_file_limit_is_lowered() {
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((0, 0));
        if hard == rlimit::INFINITY || hard < RESERVED_DESCRIPTORS + 2 {
            return; // nothing to exceed on this machine
        }
        let mut limits = ServerLimits { max_connections: hard as usize + 10, ..ServerLimits::default() };
        let message = limits.fit_to_descriptor_limit().unwrap_or_default();
        let (soft_after, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((0, 0));
        assert!(soft_after >= soft, "the soft limit is only ever raised");
        assert_eq!(limits.max_connections as u64, soft_after - RESERVED_DESCRIPTORS, "{message}");
        assert!(message.contains("ulimit -n"), "{message}");

        let mut small = ServerLimits { max_connections: 4, ..ServerLimits::default() };
        assert_eq!(small.fit_to_descriptor_limit(), None);
        assert_eq!(small.max_connections, 4);
    }
}
