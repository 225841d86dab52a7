//! Benchmark templates: what to run against which table, how hard, for how long, and what counts
//! as a pass. Loaded from TOML or JSON files and stored in `TEST_TEMPLATES`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{QueryKind, TableRef, TableType};

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
    /// The statement for `CUSTOM_SQL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_sql: Option<CustomSql>,
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
    /// Thresholds per query kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub slo: BTreeMap<QueryKind, Slo>,
    /// Write kinds (INSERT, UPDATE) are refused unless this is true.
    #[serde(default)]
    pub allow_writes: bool,
    /// Seed for reproducible key sequences; `None`: random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Fraction of operations recorded individually in `QUERY_EXECUTIONS` (0 to 1).
    #[serde(default = "default_sample_rate")]
    pub sample_rate: f64,
}

fn default_name() -> String {
    "unnamed".into()
}

fn default_sample_rate() -> f64 {
    0.01
}

/// User SQL for the `CUSTOM_SQL` kind, with `?` placeholders and one generator per placeholder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomSql {
    /// The statement, with `?` for each parameter.
    pub sql: String,
    /// One generator per `?`, in order.
    #[serde(default)]
    pub params: Vec<ParamGenerator>,
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
    /// Column updated by `UPDATE` (default: the first non-key column of a generatable type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_column: Option<String>,
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

/// Load mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
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
        #[serde(default = "default_qps_drop_pct")]
        qps_drop_pct: f64,
        /// Stop when p95 grows by more than this percentage over the first step.
        #[serde(default = "default_p95_growth_pct")]
        p95_growth_pct: f64,
        /// Stop when the error rate exceeds this fraction.
        #[serde(default = "default_max_error_rate")]
        max_error_rate: f64,
    },
}

fn default_qps_drop_pct() -> f64 {
    5.0
}
fn default_p95_growth_pct() -> f64 {
    100.0
}
fn default_max_error_rate() -> f64 {
    0.01
}

impl Default for LoadMode {
    fn default() -> Self {
        LoadMode::Concurrency { connections: 8 }
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

fn one() -> u32 {
    1
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

/// Thresholds for one query kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Slo {
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
            custom_sql: None,
            values: ValueGeneration::default(),
            load: LoadMode::default(),
            scaling: Scaling::default(),
            phases: Phases::default(),
            slo: BTreeMap::new(),
            allow_writes: false,
            seed: None,
            sample_rate: default_sample_rate(),
        }
    }

    /// Loads a template from a `.toml` or `.json` file and validates it.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::ReadFile { path: path.to_path_buf(), source })?;
        let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let parsed = if is_json { Self::from_json(&text) } else { Self::from_toml(&text) };
        parsed.map_err(|e| Error::ParseTemplate { path: path.to_path_buf(), message: e.to_string() })
    }

    /// Parses and validates a TOML template.
    pub fn from_toml(text: &str) -> Result<Self> {
        let t: Template = toml::from_str(text).map_err(|e| Error::invalid(e.message().to_string()))?;
        t.validate()?;
        Ok(t)
    }

    /// Parses and validates a JSON template.
    pub fn from_json(text: &str) -> Result<Self> {
        let t: Template = serde_json::from_str(text).map_err(|e| Error::invalid(e.to_string()))?;
        t.validate()?;
        Ok(t)
    }

    /// Serializes to TOML (for export).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::invalid(format!("cannot write TOML: {e}")))
    }

    /// The parsed table reference.
    pub fn table_ref(&self) -> Result<TableRef> {
        TableRef::parse(&self.table)
    }

    /// Checks everything that can be checked without a database. Every message names the
    /// problem and the fix.
    pub fn validate(&self) -> Result<()> {
        self.table_ref()?;
        if self.target.as_deref().is_some_and(url_carries_secret) {
            // Templates are stored in the results store and shown in the UI: no secrets.
            return Err(Error::invalid(
                "the template's target URL contains a password or key: remove it from the template and                  pass it through the environment (e.g. SNOWFLAKE_PASSWORD) or the --target flag",
            ));
        }
        if self.mix.is_empty() {
            return Err(Error::invalid(
                "the mix is empty: give at least one query kind, e.g. point_lookup=100",
            ));
        }
        let sum: u32 = self.mix.values().sum();
        if sum != 100 {
            return Err(Error::invalid(format!(
                "the mix sums to {sum}%, not 100%: adjust the percentages ({})",
                mix_to_string(&self.mix)
            )));
        }
        if self.mix.get(&QueryKind::CustomSql).is_some_and(|p| *p > 0) {
            let Some(custom) = &self.custom_sql else {
                return Err(Error::invalid(
                    "the mix has CUSTOM_SQL but the template has no [custom_sql] section: add sql and params",
                ));
            };
            let placeholders = count_placeholders(&custom.sql);
            if placeholders != custom.params.len() {
                return Err(Error::invalid(format!(
                    "custom_sql has {placeholders} `?` placeholders but {} params: give one generator per `?`",
                    custom.params.len()
                )));
            }
            for p in &custom.params {
                p.validate()?;
            }
        }
        let writes: Vec<&str> =
            self.mix.iter().filter(|(k, p)| k.is_write() && **p > 0).map(|(k, _)| k.as_str()).collect();
        if !writes.is_empty() && !self.allow_writes {
            return Err(Error::invalid(format!(
                "the mix contains write operations ({}) that modify the table: pass --allow-writes \
                 (or set allow_writes = true in the template) if that is intended",
                writes.join(", ")
            )));
        }
        if self.phases.measurement.is_zero() {
            return Err(Error::invalid(
                "the measurement duration is zero: give a positive duration such as 30s",
            ));
        }
        if !(0.0..=1.0).contains(&self.sample_rate) || self.sample_rate.is_nan() {
            return Err(Error::invalid(format!(
                "sample_rate {} is outside 0..1: use e.g. 0.01 to record 1% of operations",
                self.sample_rate
            )));
        }
        if self.values.pool_size == 0 {
            return Err(Error::invalid("values.pool_size is 0: use a positive pool size such as 10000"));
        }
        if self.values.range_scan_width == 0 {
            return Err(Error::invalid("values.range_scan_width is 0: use a positive width such as 100"));
        }
        self.values.distribution.validate()?;
        match &self.load {
            LoadMode::Concurrency { connections } if *connections == 0 => {
                return Err(Error::invalid("connections is 0: use at least 1 connection"));
            }
            LoadMode::Qps { target_qps, connections } => {
                if !(target_qps.is_finite() && *target_qps > 0.0) {
                    return Err(Error::invalid(format!(
                        "target QPS {target_qps} is not a positive number: use e.g. --qps 500"
                    )));
                }
                if *connections == 0 {
                    return Err(Error::invalid("connections is 0: use at least 1 connection"));
                }
            }
            LoadMode::FindMaxConcurrency {
                start_connections,
                step_connections,
                step_duration,
                max_connections,
                ..
            } => {
                if *start_connections == 0 || *step_connections == 0 || step_duration.is_zero() {
                    return Err(Error::invalid(
                        "FIND_MAX_CONCURRENCY needs positive start_connections, step_connections and step_duration",
                    ));
                }
                if max_connections < start_connections {
                    return Err(Error::invalid(
                        "FIND_MAX_CONCURRENCY: max_connections is below start_connections",
                    ));
                }
            }
            LoadMode::Concurrency { .. } => {}
        }
        for (kind, slo) in &self.slo {
            for (name, v) in [("p95_ms", slo.p95_ms), ("p99_ms", slo.p99_ms)] {
                if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                    return Err(Error::invalid(format!(
                        "slo.{kind}.{name} must be a positive number of milliseconds"
                    )));
                }
            }
            if slo.max_error_rate.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(Error::invalid(format!("slo.{kind}.max_error_rate must be between 0 and 1")));
            }
        }
        Ok(())
    }
}

impl Distribution {
    fn validate(&self) -> Result<()> {
        match *self {
            Distribution::Zipfian { theta } if !(theta.is_finite() && theta > 0.0) => {
                Err(Error::invalid(format!("zipfian theta {theta} must be positive (e.g. 0.99)")))
            }
            Distribution::Hotspot { hot_fraction, hot_probability }
                if !(hot_fraction > 0.0 && hot_fraction < 1.0 && (0.0..=1.0).contains(&hot_probability)) =>
            {
                Err(Error::invalid("hotspot needs 0 < hot_fraction < 1 and 0 <= hot_probability <= 1"))
            }
            _ => Ok(()),
        }
    }
}

impl ParamGenerator {
    fn validate(&self) -> Result<()> {
        match self {
            ParamGenerator::Int { min, max } if min > max => {
                Err(Error::invalid(format!("custom_sql int generator has min {min} > max {max}")))
            }
            ParamGenerator::Float { min, max } if min.partial_cmp(max) != Some(std::cmp::Ordering::Less) => {
                Err(Error::invalid(format!("custom_sql float generator needs min < max (got {min}, {max})")))
            }
            ParamGenerator::Choice { values } if values.is_empty() => {
                Err(Error::invalid("custom_sql choice generator has no values"))
            }
            _ => Ok(()),
        }
    }
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

/// Counts `?` placeholders outside single-quoted string literals.
pub fn count_placeholders(sql: &str) -> usize {
    let mut in_string = false;
    sql.chars()
        .filter(|c| {
            if *c == '\'' {
                in_string = !in_string;
            }
            !in_string && *c == '?'
        })
        .count()
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
