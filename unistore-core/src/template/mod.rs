//! Benchmark templates: what to run against which table, how hard, for how long, and what counts
//! as a pass. Loaded from TOML or JSON files and stored in `TEST_TEMPLATES`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{QueryKind, TableRef, TableType};

pub mod limits;
mod load;
mod overrides;
mod sqltext;
mod validate;

pub use load::{LoadMode, DEFAULT_CONNECTIONS};
pub use overrides::Overrides;
pub use sqltext::{count_placeholders, count_statements};

/// A complete benchmark description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Human-readable name, used to find runs of the same template.
    #[serde(default = "default_name")]
    pub name: String,
    /// Target URL (`sqlite://`, `postgres://`, `snowflake://`). `None`: given at run time.
    /// Must not contain a password: pass secrets through the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The table under test, `[database.][schema.]name`.
    pub table: String,
    /// Declared table type; `None`: detected from the target. A declared type that does not
    /// match the real table is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_type: Option<TableType>,
    /// Percentage of operations per query kind; must sum to 100.
    pub mix: BTreeMap<QueryKind, u32>,
    /// The statements for `CUSTOM_SQL`: one table (`[custom_sql]`), or several named and
    /// weighted ones (`[[custom_sql]]`, like several `pgbench -f` scripts), which share the
    /// mix's `CUSTOM_SQL` percentage by weight and are reported each on its own row.
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub custom_sql: Vec<CustomSql>,
    /// How keys and values are generated.
    #[serde(default)]
    pub values: ValueGeneration,
    /// Closed loop, open loop or a search for the maximum.
    #[serde(default)]
    pub load: LoadMode,
    /// Worker and connection bounds.
    #[serde(default)]
    pub scaling: Scaling,
    /// Phase durations.
    #[serde(default)]
    pub phases: Phases,
    /// Thresholds per query kind, and for all kinds together (`TOTAL`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub slo: BTreeMap<SloScope, Slo>,
    /// Write kinds (INSERT, UPDATE) are refused unless this is true.
    #[serde(default)]
    pub allow_writes: bool,
    /// Seed for reproducible key sequences; `None`: random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Fraction of operations recorded individually in `QUERY_EXECUTIONS` (0 to 1).
    #[serde(default = "default_sample_rate")]
    pub sample_rate: f64,
    /// Connect and statement timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// When a run that finished is still a failure (too many errors, open-loop shortfall).
    #[serde(default)]
    pub guardrails: Guardrails,
    /// Load stages (as k6 `stages`): the measurement runs each in turn, with its own
    /// connections (closed loop) or rate (open loop), and each is reported on its own. The
    /// measurement lasts the sum of the stages; warmup runs at the first stage's load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Stage>,
    /// A regression gate for CI: the finished run is compared with a baseline run and fails
    /// (exit 1, verdict `REGRESSED`) when a chosen figure is worse by more than the allowance
    /// and the difference is significant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
}

/// `[gate]`: compare the run with a baseline when it finishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// The baseline run's id.
    pub baseline: crate::model::RunId,
    /// Largest allowed regression, in percent (5.0: throughput may drop by 5 %, a percentile
    /// may grow by 5 %).
    #[serde(default = "default_max_regression")]
    pub max_regression_pct: f64,
    /// The figures judged (default throughput and p99).
    #[serde(default = "default_gate_metrics")]
    pub metrics: Vec<crate::analysis::Metric>,
    /// Confidence of the comparison (default 0.95).
    #[serde(default = "default_gate_confidence")]
    pub confidence: f64,
}

fn default_max_regression() -> f64 {
    5.0
}

fn default_gate_metrics() -> Vec<crate::analysis::Metric> {
    vec![crate::analysis::Metric::Throughput, crate::analysis::Metric::P99]
}

fn default_gate_confidence() -> f64 {
    0.95
}

impl Gate {
    /// A gate against `baseline` with the defaults (5 %, throughput and p99, 95 %).
    pub fn new(baseline: crate::model::RunId) -> Self {
        Gate {
            baseline,
            max_regression_pct: default_max_regression(),
            metrics: default_gate_metrics(),
            confidence: default_gate_confidence(),
        }
    }

    /// Checks the gate's settings.
    pub fn validate(&self) -> Result<()> {
        if !(self.max_regression_pct > 0.0 && self.max_regression_pct < 100.0) {
            return Err(Error::invalid(format!(
                "gate max_regression_pct {} is outside (0, 100): write e.g. 5 for 5 %",
                self.max_regression_pct
            )));
        }
        if self.metrics.is_empty() {
            return Err(Error::invalid(
                "gate metrics is empty: name at least one of throughput, error_rate, p50, p95, p99, p999",
            ));
        }
        if self.metrics.contains(&crate::analysis::Metric::Max) {
            return Err(Error::invalid(
                "gate metric max cannot be judged (one value, no interval): use p999 or p99",
            ));
        }
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            return Err(Error::invalid(format!(
                "gate confidence {} is outside (0.5, 1): write e.g. 0.95",
                self.confidence
            )));
        }
        Ok(())
    }
}

/// Parses an allowance such as `5%` or `5` (percent).
pub fn parse_percent(text: &str) -> Result<f64> {
    let t = text.trim();
    let number = t.strip_suffix('%').unwrap_or(t).trim();
    number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| Error::invalid(format!("`{text}` is not a percentage: write e.g. 5% or 2.5%")))
}

/// One stage of a staged run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// How long the stage lasts.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Connections during the stage (closed loop; in open loop, those available for the rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// Target rate during the stage (open loop only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_qps: Option<f64>,
}

fn default_name() -> String {
    "unnamed".into()
}

fn default_sample_rate() -> f64 {
    0.01
}

/// `[custom_sql]` (one table) or `[[custom_sql]]` (a list).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<CustomSql>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(CustomSql),
        Many(Vec<CustomSql>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(c) => vec![c],
        OneOrMany::Many(v) => v,
    })
}

fn one() -> u32 {
    1
}

fn is_one(w: &u32) -> bool {
    *w == 1
}

/// User SQL for the `CUSTOM_SQL` kind, with `?` placeholders and one generator per placeholder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomSql {
    /// Name of the statement, shown on its own row (`CUSTOM_SQL:name`); needed when there are
    /// several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Share of the mix's `CUSTOM_SQL` percentage, relative to the other custom statements.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub weight: u32,
    /// The statement, with `?` for each parameter.
    pub sql: String,
    /// One generator per `?`, in order.
    #[serde(default)]
    pub params: Vec<ParamGenerator>,
}

impl CustomSql {
    /// An unnamed statement of weight 1.
    pub fn new(sql: impl Into<String>, params: Vec<ParamGenerator>) -> Self {
        CustomSql { name: None, weight: 1, sql: sql.into(), params }
    }
}

/// How one custom-SQL parameter is generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ParamGenerator {
    /// A key of the table, drawn like point-lookup keys.
    Key,
    /// Uniform integer in `min..=max`.
    Int {
        /// Lower bound.
        min: i64,
        /// Upper bound (inclusive).
        max: i64,
    },
    /// Uniform float in `min..max`.
    Float {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// Random alphanumeric text.
    Text {
        /// Length in characters.
        #[serde(default = "default_text_len")]
        len: usize,
    },
    /// One of the given strings, uniformly.
    Choice {
        /// The candidates.
        values: Vec<String>,
    },
    /// The current time.
    Now,
}

fn default_text_len() -> usize {
    16
}

/// Where keys come from and how they are distributed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValueGeneration {
    /// Key source.
    pub source: KeySource,
    /// Distribution over the source.
    pub distribution: Distribution,
    /// How many keys to sample into the pool (source `pool`).
    pub pool_size: usize,
    /// Keys per range scan.
    pub range_scan_width: u32,
    /// Key column override (default: the primary key, or the first column of it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_column: Option<String>,
    /// Column updated by `UPDATE` (default: a non-key, non-generated column that no index
    /// starts with, numbers first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_column: Option<String>,
    /// Keys of rows the run inserts join the lookup pool, so later lookups and updates also
    /// hit new rows (`INSERT ... RETURNING` for keys the database generates).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_your_writes: bool,
}

impl Default for ValueGeneration {
    fn default() -> Self {
        ValueGeneration {
            source: KeySource::Pool,
            distribution: Distribution::Uniform,
            pool_size: 10_000,
            range_scan_width: 100,
            key_column: None,
            update_column: None,
            read_your_writes: false,
        }
    }
}

/// Where keys are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// A pool of real keys sampled from the table before the run (every lookup hits a row).
    Pool,
    /// The profiled integer key range `min..=max` (sparse keys miss).
    Range,
}

/// Distribution of key choices.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Zipf's law with exponent `theta` (0.99 is YCSB's default): few keys are hot.
    Zipfian {
        /// Skew; larger is more skewed. Must be positive.
        #[serde(default = "default_theta")]
        theta: f64,
    },
    /// Keys in order, wrapping around.
    Sequential,
    /// `hot_probability` of operations go to the first `hot_fraction` of the keys.
    Hotspot {
        /// Fraction of keys that are hot (0 to 1).
        #[serde(default = "default_hot_fraction")]
        hot_fraction: f64,
        /// Fraction of operations that go to hot keys (0 to 1).
        #[serde(default = "default_hot_probability")]
        hot_probability: f64,
    },
}

fn default_theta() -> f64 {
    0.99
}
fn default_hot_fraction() -> f64 {
    0.2
}
fn default_hot_probability() -> f64 {
    0.8
}

/// How many workers and connections a run may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub enum Scaling {
    /// Exactly this many workers; connections split evenly.
    Fixed {
        /// Worker processes.
        #[serde(default = "one")]
        workers: u32,
    },
    /// Workers added as needed within host capacity.
    Auto {
        /// Upper bound on workers.
        #[serde(default = "default_max_workers")]
        max_workers: u32,
    },
    /// Bounded workers and connections per worker.
    Bounded {
        /// At least this many workers.
        min_workers: u32,
        /// At most this many workers.
        max_workers: u32,
        /// At most this many connections per worker.
        max_connections_per_worker: u32,
    },
}

fn default_max_workers() -> u32 {
    4
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling::Fixed { workers: 1 }
    }
}

/// Phase durations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Phases {
    /// Warmup: load runs, results excluded.
    #[serde(with = "humantime_serde")]
    pub warmup: Duration,
    /// Measurement window.
    #[serde(with = "humantime_serde")]
    pub measurement: Duration,
    /// Cooldown after measurement (not measured).
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

impl Default for Phases {
    fn default() -> Self {
        Phases {
            warmup: Duration::from_secs(5),
            measurement: Duration::from_secs(30),
            cooldown: Duration::ZERO,
        }
    }
}

/// How long connecting and single statements may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Opening one session: TCP, TLS, login, session set-up. Also bounds profiling the table.
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    /// Longest a statement of the load may run before the server cancels it (counted as a
    /// `TIMEOUT` error). `None`: no limit beyond the server's own.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub statement: Option<Duration>,
}

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: DEFAULT_CONNECT_TIMEOUT, statement: None }
    }
}

/// When a run that ran to its end still failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Guardrails {
    /// A run whose measured error rate (failed over all completed operations) exceeds this
    /// share ends FAILED: its latencies describe failures, not the table.
    pub max_error_rate: f64,
    /// Open loop: a run that achieves less than this share of its target rate has not
    /// reached its target (verdict `TARGET_NOT_REACHED`, exit 1).
    pub target_tolerance: f64,
    /// The shortfall is expected (a search for the limit): reported, not a failure.
    pub expect_shortfall: bool,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails { max_error_rate: 0.5, target_tolerance: 0.95, expect_shortfall: false }
    }
}

/// What an SLO applies to: one query kind, or the whole run (`TOTAL`), as k6 thresholds on a
/// metric and on a tagged sub-metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SloScope {
    /// Every kind together: the run's `TOTAL` row.
    Total,
    /// One query kind.
    Kind(QueryKind),
}

impl SloScope {
    /// `TOTAL` or the kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SloScope::Total => "TOTAL",
            SloScope::Kind(k) => k.as_str(),
        }
    }
}

impl std::fmt::Display for SloScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SloScope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.trim().eq_ignore_ascii_case("total") {
            return Ok(SloScope::Total);
        }
        s.parse::<QueryKind>().map(SloScope::Kind).map_err(|_| {
            Error::invalid(format!(
                "unknown SLO scope `{s}`: use TOTAL or a query kind (point_lookup, range_scan, insert, update, custom_sql)"
            ))
        })
    }
}

impl Serialize for SloScope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SloScope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Thresholds for one query kind, or for the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Slo {
    /// Minimum throughput: successful operations per second in the measurement window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_qps: Option<f64>,
    /// Maximum p95 response time in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    /// Maximum p99 response time in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// Maximum fraction of failed operations (0 to 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
}

impl Template {
    /// A template for `table` with the given mix and defaults for everything else.
    pub fn new(table: impl Into<String>, mix: BTreeMap<QueryKind, u32>) -> Self {
        Template {
            name: default_name(),
            target: None,
            table: table.into(),
            table_type: None,
            mix,
            custom_sql: Vec::new(),
            values: ValueGeneration::default(),
            load: LoadMode::default(),
            scaling: Scaling::default(),
            phases: Phases::default(),
            slo: BTreeMap::new(),
            allow_writes: false,
            seed: None,
            sample_rate: default_sample_rate(),
            timeouts: Timeouts::default(),
            guardrails: Guardrails::default(),
            stages: Vec::new(),
            gate: None,
        }
    }

    /// Loads a template from a `.toml` or `.json` file and validates it.
    pub fn from_file(path: &Path) -> Result<Self> {
        let meta =
            std::fs::metadata(path).map_err(|source| Error::ReadFile { path: path.to_path_buf(), source })?;
        if meta.len() > limits::MAX_TEMPLATE_BYTES as u64 {
            return Err(Error::ParseTemplate {
                path: path.to_path_buf(),
                message: format!(
                    "the file has {} bytes, more than the limit of {} for a template: is it the right file?",
                    meta.len(),
                    limits::MAX_TEMPLATE_BYTES
                ),
            });
        }
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::ReadFile { path: path.to_path_buf(), source })?;
        let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let parsed = if is_json { Self::from_json(&text) } else { Self::from_toml(&text) };
        parsed.map_err(|e| Error::ParseTemplate { path: path.to_path_buf(), message: e.to_string() })
    }

    /// Parses and validates a TOML template. Syntax errors name the line and column.
    pub fn from_toml(text: &str) -> Result<Self> {
        let t: Template = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|span| position(text, span.start)).unwrap_or_default();
            Error::invalid(format!("{at}{}", e.message().trim_end()))
        })?;
        t.validate()?;
        Ok(t)
    }

    /// Parses and validates a JSON template. Syntax errors name the line and column.
    pub fn from_json(text: &str) -> Result<Self> {
        let t: Template = serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            // serde_json appends " at line L column C"; put the position first, as for TOML.
            let message = match message.rsplit_once(" at line ") {
                Some((m, _)) if e.line() > 0 => m.to_string(),
                _ => message,
            };
            let at = if e.line() > 0 {
                format!("line {}, column {}: ", e.line(), e.column())
            } else {
                String::new()
            };
            Error::invalid(format!("{at}{message}"))
        })?;
        t.validate()?;
        Ok(t)
    }

    /// Serializes to TOML (for export).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::invalid(format!("cannot write TOML: {e}")))
    }

    /// The measurement window's length: the sum of the stages when there are stages.
    pub fn measurement(&self) -> Duration {
        if self.stages.is_empty() {
            self.phases.measurement
        } else {
            self.stages.iter().fold(Duration::ZERO, |a, s| a.saturating_add(s.duration))
        }
    }

    /// The parsed table reference.
    pub fn table_ref(&self) -> Result<TableRef> {
        TableRef::parse(&self.table)
    }
}

/// `line L, column C: ` for a byte offset into `text` (1-based, columns in characters).
fn position(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: ")
}

/// Whether a URL carries a secret: a password in its user info, or a password, key or token
/// query parameter.
pub fn url_carries_secret(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let password_in_userinfo = authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'));
    let secret_parameter = rest.split_once('?').is_some_and(|(_, query)| {
        query.split('&').any(|pair| {
            let key = pair.split('=').next().unwrap_or("").to_ascii_lowercase();
            ["password", "private_key", "token", "secret"].iter().any(|s| key.contains(s))
                && !key.ends_with("_path")
                && !key.ends_with("_file")
        })
    });
    password_in_userinfo || secret_parameter
}

/// Parses a mix such as `point_lookup=80,range_scan=10,update=10`.
pub fn parse_mix(s: &str) -> Result<BTreeMap<QueryKind, u32>> {
    let mut mix = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, pct) = part.split_once('=').ok_or_else(|| {
            Error::invalid(format!(
                "mix entry `{part}` is not KIND=PERCENT: write e.g. point_lookup=80,range_scan=20"
            ))
        })?;
        let kind: QueryKind = kind.parse()?;
        let pct: u32 = pct.trim().parse().map_err(|_| {
            Error::invalid(format!("mix percentage `{pct}` for {kind} is not a whole number"))
        })?;
        if mix.insert(kind, pct).is_some() {
            return Err(Error::invalid(format!("mix names {kind} twice: give each kind once")));
        }
    }
    Ok(mix)
}

/// Formats a mix as `POINT_LOOKUP=80,RANGE_SCAN=20`.
pub fn mix_to_string(mix: &BTreeMap<QueryKind, u32>) -> String {
    mix.iter().map(|(k, p)| format!("{k}={p}")).collect::<Vec<_>>().join(",")
}
