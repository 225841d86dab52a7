//! Ceilings on every size, count and duration a template or flag can ask for.
//!
//! They exist so that a typo (`len = 100000000000`, `500000000y`) is refused with a message
//! naming the limit, instead of exhausting memory, overflowing a duration or hanging. Each is
//! far above what a benchmark needs; the README's "What happens when things go wrong" lists
//! them.

use std::time::Duration;

/// Longest phase, step, or whole run: 30 days.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest connect or statement timeout: one day.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Most connections in a template's load (all workers together).
pub const MAX_TOTAL_CONNECTIONS: u32 = 100_000;
/// Most connections one worker process opens. Each costs a task, its histograms and the
/// driver's buffers; past this, add workers.
pub const MAX_CONNECTIONS_PER_WORKER: u32 = 4_096;
/// Highest open-loop target rate, operations per second.
pub const MAX_TARGET_QPS: f64 = 10_000_000.0;
/// Longest generated text value, in characters.
pub const MAX_TEXT_LEN: usize = 1 << 20;
/// Most keys sampled into a pool.
pub const MAX_POOL_SIZE: usize = 10_000_000;
/// Widest range scan, in keys.
pub const MAX_RANGE_SCAN_WIDTH: u32 = 1_000_000;
/// Longest template name, in characters.
pub const MAX_NAME_LEN: usize = 200;
/// Longest custom SQL statement, in bytes.
pub const MAX_SQL_LEN: usize = 1 << 20;
/// Most load stages in one template.
pub const MAX_STAGES: usize = 1_000;
/// Most custom SQL statements in one template.
pub const MAX_CUSTOM_STATEMENTS: usize = 64;
/// Most parameters of a custom SQL statement.
pub const MAX_PARAMS: usize = 1_000;
/// Most candidates of a `choice` generator.
pub const MAX_CHOICE_VALUES: usize = 100_000;
/// Longest candidate of a `choice` generator, in characters.
pub const MAX_CHOICE_LEN: usize = 10_000;
/// Longest target URL, in bytes.
pub const MAX_URL_LEN: usize = 4_096;
/// Largest template file, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 4 << 20;
/// Client threads per CPU core (`--threads`).
pub const MAX_THREADS_PER_CORE: usize = 4;

/// Most client threads on this machine: [`MAX_THREADS_PER_CORE`] per available core.
pub fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) * MAX_THREADS_PER_CORE
}

/// Checks a duration against [`MAX_DURATION`]; `what` names the setting in the message.
pub fn check_duration(what: &str, d: Duration) -> crate::Result<()> {
    if d > MAX_DURATION {
        return Err(crate::Error::invalid(format!(
            "{what} is {}, longer than the limit of 30 days: use a shorter duration",
            humantime::format_duration(d)
        )));
    }
    Ok(())
}

/// Checks free text (names): length and no control characters.
pub fn check_name(what: &str, s: &str) -> crate::Result<()> {
    let len = s.chars().count();
    if len > MAX_NAME_LEN {
        return Err(crate::Error::invalid(format!(
            "{what} has {len} characters, more than the limit of {MAX_NAME_LEN}: use a shorter name"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(crate::Error::invalid(format!(
            "{what} contains a control character (such as a line break or NUL): use printable characters only"
        )));
    }
    Ok(())
}
