//! The `[load]` section: closed loop, open loop, or a step search for the maximum.
//!
//! Written by hand as a raw table and converted, so that `mode` may be left out (it is
//! inferred: `target_qps` means QPS, `start_connections` a search, otherwise CONCURRENCY), may
//! be written in any case, and so that a missing field is reported with the fix.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Load mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "SCREAMING_SNAKE_CASE", try_from = "RawLoad")]
pub enum LoadMode {
    /// Closed loop: a fixed number of connections, each issuing the next operation as soon as
    /// the previous one returns.
    Concurrency {
        /// Total connections.
        connections: u32,
    },
    /// Open loop at a target rate, with response time measured from the intended start.
    Qps {
        /// Operations per second, total.
        target_qps: f64,
        /// Connections available to sustain the rate.
        connections: u32,
    },
    /// Step load: add connections until throughput stops rising or latency/errors degrade.
    FindMaxConcurrency {
        /// Connections in the first step.
        start_connections: u32,
        /// Connections added per step.
        step_connections: u32,
        /// Length of a step.
        #[serde(with = "humantime_serde")]
        step_duration: Duration,
        /// Upper bound on connections.
        max_connections: u32,
        /// Stop when QPS drops by more than this percentage from the best step.
        qps_drop_pct: f64,
        /// Stop when p95 grows by more than this percentage over the first step.
        p95_growth_pct: f64,
        /// Stop when the error rate exceeds this fraction.
        max_error_rate: f64,
    },
}

/// Connections when the template does not say.
pub const DEFAULT_CONNECTIONS: u32 = 8;

impl Default for LoadMode {
    fn default() -> Self {
        LoadMode::Concurrency { connections: DEFAULT_CONNECTIONS }
    }
}

impl LoadMode {
    /// Stable name, as in the summary's `mode` field.
    pub fn name(&self) -> &'static str {
        match self {
            LoadMode::Concurrency { .. } => "CONCURRENCY",
            LoadMode::Qps { .. } => "QPS",
            LoadMode::FindMaxConcurrency { .. } => "FIND_MAX_CONCURRENCY",
        }
    }

    /// Connections at the start of the run.
    pub fn initial_connections(&self) -> u32 {
        match self {
            LoadMode::Concurrency { connections } | LoadMode::Qps { connections, .. } => *connections,
            LoadMode::FindMaxConcurrency { start_connections, .. } => *start_connections,
        }
    }

    /// The open-loop target rate, if any.
    pub fn target_qps(&self) -> Option<f64> {
        match self {
            LoadMode::Qps { target_qps, .. } => Some(*target_qps),
            _ => None,
        }
    }
}

/// The `[load]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    mode: Option<String>,
    connections: Option<u32>,
    target_qps: Option<f64>,
    start_connections: Option<u32>,
    step_connections: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    step_duration: Option<Duration>,
    max_connections: Option<u32>,
    qps_drop_pct: Option<f64>,
    p95_growth_pct: Option<f64>,
    max_error_rate: Option<f64>,
}

impl TryFrom<RawLoad> for LoadMode {
    type Error = Error;

    fn try_from(raw: RawLoad) -> Result<Self> {
        let mode = match raw.mode.as_deref().map(|m| m.trim().to_ascii_uppercase().replace('-', "_")) {
            Some(m) => m,
            None if raw.target_qps.is_some() => "QPS".into(),
            None if raw.start_connections.is_some() => "FIND_MAX_CONCURRENCY".into(),
            None => "CONCURRENCY".into(),
        };
        let search_fields = [
            ("start_connections", raw.start_connections.is_some()),
            ("step_connections", raw.step_connections.is_some()),
            ("step_duration", raw.step_duration.is_some()),
            ("max_connections", raw.max_connections.is_some()),
            ("qps_drop_pct", raw.qps_drop_pct.is_some()),
            ("p95_growth_pct", raw.p95_growth_pct.is_some()),
            ("max_error_rate", raw.max_error_rate.is_some()),
        ];
        let refuse = |present: &[(&str, bool)], mode: &str| -> Result<()> {
            match present.iter().find(|(_, set)| *set) {
                Some((field, _)) => Err(Error::invalid(format!(
                    "load.{field} does not apply to mode {mode}: remove it, or set the mode it belongs to"
                ))),
                None => Ok(()),
            }
        };
        match mode.as_str() {
            "CONCURRENCY" => {
                refuse(&search_fields, "CONCURRENCY")?;
                refuse(&[("target_qps", raw.target_qps.is_some())], "CONCURRENCY")?;
                Ok(LoadMode::Concurrency { connections: raw.connections.unwrap_or(DEFAULT_CONNECTIONS) })
            }
            "QPS" => {
                refuse(&search_fields, "QPS")?;
                let target_qps = raw.target_qps.ok_or_else(|| {
                    Error::invalid("load.mode = QPS needs target_qps: add e.g. target_qps = 500.0")
                })?;
                Ok(LoadMode::Qps { target_qps, connections: raw.connections.unwrap_or(DEFAULT_CONNECTIONS) })
            }
            "FIND_MAX_CONCURRENCY" => {
                if raw.connections.is_some() || raw.target_qps.is_some() {
                    return Err(Error::invalid(
                        "load.mode = FIND_MAX_CONCURRENCY searches for the connection count itself: \
                         remove connections / target_qps and use start_connections, step_connections \
                         and max_connections",
                    ));
                }
                let need = |v: Option<u32>, field: &str, example: &str| {
                    v.ok_or_else(|| {
                        Error::invalid(format!(
                            "load.mode = FIND_MAX_CONCURRENCY needs {field}: add e.g. {field} = {example}"
                        ))
                    })
                };
                Ok(LoadMode::FindMaxConcurrency {
                    start_connections: need(raw.start_connections, "start_connections", "4")?,
                    step_connections: need(raw.step_connections, "step_connections", "4")?,
                    step_duration: raw.step_duration.ok_or_else(|| {
                        Error::invalid(
                            "load.mode = FIND_MAX_CONCURRENCY needs step_duration: add e.g. step_duration = \"10s\"",
                        )
                    })?,
                    max_connections: need(raw.max_connections, "max_connections", "64")?,
                    qps_drop_pct: raw.qps_drop_pct.unwrap_or(5.0),
                    p95_growth_pct: raw.p95_growth_pct.unwrap_or(100.0),
                    max_error_rate: raw.max_error_rate.unwrap_or(0.01),
                })
            }
            other => Err(Error::invalid(format!(
                "unknown load mode `{other}`: use CONCURRENCY, QPS or FIND_MAX_CONCURRENCY"
            ))),
        }
    }
}
