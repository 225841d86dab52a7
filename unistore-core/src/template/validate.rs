//! Everything about a template that can be checked without a database. Every message names
//! the problem and the fix; every size, count and duration is checked against [`limits`].

use std::time::Duration;

use super::limits::{self, check_duration, check_name};
use super::{
    count_placeholders, count_statements, mix_to_string, url_carries_secret, Distribution, LoadMode,
    ParamGenerator, Scaling, SloScope, Template,
};
use crate::error::{Error, Result};
use crate::model::QueryKind;

impl Template {
    /// Checks everything that can be checked without a database.
    pub fn validate(&self) -> Result<()> {
        check_name("the template name", &self.name)?;
        if self.name.trim().is_empty() {
            return Err(Error::invalid("the template name is empty: give it a name, or leave `name` out"));
        }
        self.table_ref()?;
        if let Some(target) = &self.target {
            if target.len() > limits::MAX_URL_LEN {
                return Err(Error::invalid(format!(
                    "the template's target URL has {} bytes, more than the limit of {}",
                    target.len(),
                    limits::MAX_URL_LEN
                )));
            }
            if url_carries_secret(target) {
                // Templates are stored in the results store and shown in the UI: no secrets.
                return Err(Error::invalid(
                    "the template's target URL contains a password or key: remove it from the template \
                     and pass it through the environment (e.g. PGPASSWORD, SNOWFLAKE_PASSWORD) or the \
                     --target flag",
                ));
            }
        }
        self.validate_mix()?;
        self.validate_custom_sql()?;
        if let Some(gate) = &self.gate {
            gate.validate()?;
        }
        self.validate_phases()?;
        if !(0.0..=1.0).contains(&self.sample_rate) || self.sample_rate.is_nan() {
            return Err(Error::invalid(format!(
                "sample_rate {} is outside 0..1: use e.g. 0.01 to record 1% of operations",
                self.sample_rate
            )));
        }
        let v = &self.values;
        if v.pool_size == 0 || v.pool_size > limits::MAX_POOL_SIZE {
            return Err(Error::invalid(format!(
                "values.pool_size is {}: use a size between 1 and {} (e.g. 10000)",
                v.pool_size,
                limits::MAX_POOL_SIZE
            )));
        }
        if v.range_scan_width == 0 || v.range_scan_width > limits::MAX_RANGE_SCAN_WIDTH {
            return Err(Error::invalid(format!(
                "values.range_scan_width is {}: use a width between 1 and {} (e.g. 100)",
                v.range_scan_width,
                limits::MAX_RANGE_SCAN_WIDTH
            )));
        }
        for (what, column) in
            [("values.key_column", &v.key_column), ("values.update_column", &v.update_column)]
        {
            if let Some(c) = column {
                check_name(what, c)?;
            }
        }
        v.distribution.validate()?;
        self.validate_load()?;
        self.validate_scaling()?;
        self.validate_slo()?;
        self.validate_stages()?;
        self.validate_timeouts_and_guardrails()
    }

    fn validate_mix(&self) -> Result<()> {
        if self.mix.is_empty() {
            return Err(Error::invalid(
                "the mix is empty: give at least one query kind, e.g. point_lookup=100",
            ));
        }
        let sum: u64 = self.mix.values().map(|p| u64::from(*p)).sum();
        if sum != 100 {
            return Err(Error::invalid(format!(
                "the mix sums to {sum}%, not 100%: adjust the percentages ({})",
                mix_to_string(&self.mix)
            )));
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
        Ok(())
    }

    fn validate_custom_sql(&self) -> Result<()> {
        // A [custom_sql] section is checked even when the mix does not use it: a stored
        // template must be valid as a whole.
        if self.custom_sql.is_empty() {
            if self.mix.get(&QueryKind::CustomSql).is_some_and(|p| *p > 0) {
                return Err(Error::invalid(
                    "the mix has CUSTOM_SQL but the template has no [custom_sql] section: add sql and params",
                ));
            }
            return Ok(());
        }
        let several = self.custom_sql.len() > 1;
        if self.custom_sql.len() > limits::MAX_CUSTOM_STATEMENTS {
            return Err(Error::invalid(format!(
                "{} custom_sql statements is more than the limit of {}",
                self.custom_sql.len(),
                limits::MAX_CUSTOM_STATEMENTS
            )));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, custom) in self.custom_sql.iter().enumerate() {
            let at = match (&custom.name, several) {
                (Some(n), _) => format!("custom_sql `{n}`"),
                (None, true) => format!("custom_sql[{i}]"),
                (None, false) => "custom_sql".to_string(),
            };
            if let Some(name) = &custom.name {
                check_name(&format!("{at} name"), name)?;
                if name.trim().is_empty() || name.contains(':') {
                    return Err(Error::invalid(format!(
                        "{at}: a name must be non-empty and without `:` (it is shown as CUSTOM_SQL:name)"
                    )));
                }
                if !names.insert(name.to_ascii_lowercase()) {
                    return Err(Error::invalid(format!(
                        "two custom_sql statements are named `{name}`: give each its own name"
                    )));
                }
            } else if several {
                return Err(Error::invalid(format!(
                    "{at} has no name: with several custom_sql statements each needs a name (it is reported on its own row)"
                )));
            }
            if custom.weight == 0 || custom.weight > 1_000_000 {
                return Err(Error::invalid(format!(
                    "{at}: weight {} must be between 1 and 1000000",
                    custom.weight
                )));
            }
            validate_statement(&at, custom)?;
        }
        Ok(())
    }

    fn validate_phases(&self) -> Result<()> {
        let p = &self.phases;
        if p.measurement.is_zero() {
            return Err(Error::invalid(
                "the measurement duration is zero: give a positive duration such as 30s",
            ));
        }
        check_duration("phases.warmup", p.warmup)?;
        check_duration("phases.measurement", p.measurement)?;
        check_duration("phases.cooldown", p.cooldown)?;
        let total = p.warmup.checked_add(p.measurement).and_then(|d| d.checked_add(p.cooldown));
        match total {
            Some(d) => check_duration("the whole run (warmup + measurement + cooldown)", d),
            None => check_duration("the whole run (warmup + measurement + cooldown)", Duration::MAX),
        }
    }

    fn validate_load(&self) -> Result<()> {
        let check_connections = |what: &str, n: u32| {
            if n == 0 {
                return Err(Error::invalid(format!("{what} is 0: use at least 1 connection")));
            }
            if n > limits::MAX_TOTAL_CONNECTIONS {
                return Err(Error::invalid(format!(
                    "{what} is {n}, more than the limit of {}: use fewer connections",
                    limits::MAX_TOTAL_CONNECTIONS
                )));
            }
            Ok(())
        };
        match &self.load {
            LoadMode::Concurrency { connections } => check_connections("connections", *connections),
            LoadMode::Qps { target_qps, connections } => {
                if !(target_qps.is_finite() && *target_qps > 0.0) {
                    return Err(Error::invalid(format!(
                        "target QPS {target_qps} is not a positive number: use e.g. --qps 500"
                    )));
                }
                if *target_qps > limits::MAX_TARGET_QPS {
                    return Err(Error::invalid(format!(
                        "target QPS {target_qps} is above the limit of {}",
                        limits::MAX_TARGET_QPS
                    )));
                }
                check_connections("connections", *connections)
            }
            LoadMode::FindMaxConcurrency {
                start_connections,
                step_connections,
                step_duration,
                max_connections,
                qps_drop_pct,
                p95_growth_pct,
                max_error_rate,
            } => {
                if *start_connections == 0 || *step_connections == 0 || step_duration.is_zero() {
                    return Err(Error::invalid(
                        "FIND_MAX_CONCURRENCY needs positive start_connections, step_connections and step_duration",
                    ));
                }
                check_connections("load.start_connections", *start_connections)?;
                check_connections("load.step_connections", *step_connections)?;
                check_connections("load.max_connections", *max_connections)?;
                if max_connections < start_connections {
                    return Err(Error::invalid(
                        "FIND_MAX_CONCURRENCY: max_connections is below start_connections",
                    ));
                }
                check_duration("load.step_duration", *step_duration)?;
                let steps = (max_connections - start_connections) / step_connections + 1;
                let search = step_duration.checked_mul(steps).unwrap_or(Duration::MAX);
                check_duration(
                    &format!("the search ({steps} steps of {})", humantime::format_duration(*step_duration)),
                    search,
                )?;
                if !(qps_drop_pct.is_finite() && *qps_drop_pct >= 0.0) {
                    return Err(Error::invalid(
                        "load.qps_drop_pct must be a percentage of 0 or more (e.g. 5.0)",
                    ));
                }
                if !(p95_growth_pct.is_finite() && *p95_growth_pct > 0.0) {
                    return Err(Error::invalid(
                        "load.p95_growth_pct must be a positive percentage (e.g. 100.0)",
                    ));
                }
                if !(0.0..=1.0).contains(max_error_rate) {
                    return Err(Error::invalid("load.max_error_rate must be between 0 and 1 (e.g. 0.01)"));
                }
                Ok(())
            }
        }
    }

    fn validate_scaling(&self) -> Result<()> {
        const MAX_WORKERS: u32 = 1_000;
        let workers = |what: &str, n: u32| {
            if n == 0 || n > MAX_WORKERS {
                return Err(Error::invalid(format!("scaling.{what} is {n}: use 1 to {MAX_WORKERS} workers")));
            }
            Ok(())
        };
        match &self.scaling {
            Scaling::Fixed { workers: n } => workers("workers", *n),
            Scaling::Auto { max_workers } => workers("max_workers", *max_workers),
            Scaling::Bounded { min_workers, max_workers, max_connections_per_worker } => {
                workers("min_workers", *min_workers)?;
                workers("max_workers", *max_workers)?;
                if min_workers > max_workers {
                    return Err(Error::invalid(format!(
                        "scaling: min_workers {min_workers} is above max_workers {max_workers}"
                    )));
                }
                if *max_connections_per_worker == 0
                    || *max_connections_per_worker > limits::MAX_CONNECTIONS_PER_WORKER
                {
                    return Err(Error::invalid(format!(
                        "scaling.max_connections_per_worker is {max_connections_per_worker}: use 1 to {}",
                        limits::MAX_CONNECTIONS_PER_WORKER
                    )));
                }
                Ok(())
            }
        }
    }

    fn validate_slo(&self) -> Result<()> {
        for (scope, slo) in &self.slo {
            if let SloScope::Kind(kind) = scope {
                if self.mix.get(kind).is_none_or(|p| *p == 0) {
                    return Err(Error::invalid(format!(
                        "there is an SLO for {kind}, which is not in the mix ({}): remove [slo.{kind}] or add {kind} to the mix",
                        mix_to_string(&self.mix)
                    )));
                }
            }
            for (name, v) in [("p95_ms", slo.p95_ms), ("p99_ms", slo.p99_ms)] {
                if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                    return Err(Error::invalid(format!(
                        "slo.{scope}.{name} must be a positive number of milliseconds"
                    )));
                }
            }
            if slo.min_qps.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                return Err(Error::invalid(format!("slo.{scope}.min_qps must be a positive rate (ops/s)")));
            }
            if slo.max_error_rate.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(Error::invalid(format!("slo.{scope}.max_error_rate must be between 0 and 1")));
            }
        }
        Ok(())
    }

    fn validate_stages(&self) -> Result<()> {
        if self.stages.is_empty() {
            return Ok(());
        }
        if self.stages.len() > limits::MAX_STAGES {
            return Err(Error::invalid(format!(
                "{} stages is more than the limit of {}",
                self.stages.len(),
                limits::MAX_STAGES
            )));
        }
        let open_loop = match self.load {
            LoadMode::Concurrency { .. } => false,
            LoadMode::Qps { .. } => true,
            LoadMode::FindMaxConcurrency { .. } => {
                return Err(Error::invalid(
                    "stages and FIND_MAX_CONCURRENCY both set the load over time: use one of them",
                ))
            }
        };
        for (i, stage) in self.stages.iter().enumerate() {
            let at = format!("stages[{i}]");
            if stage.duration.is_zero() {
                return Err(Error::invalid(format!(
                    "{at}.duration is zero: give each stage a positive duration"
                )));
            }
            check_duration(&format!("{at}.duration"), stage.duration)?;
            if let Some(c) = stage.connections {
                if c == 0 || c > limits::MAX_TOTAL_CONNECTIONS {
                    return Err(Error::invalid(format!(
                        "{at}.connections is {c}: use 1 to {}",
                        limits::MAX_TOTAL_CONNECTIONS
                    )));
                }
            }
            let problem = match (open_loop, stage.target_qps, stage.connections) {
                (false, Some(_), _) => {
                    Some("sets target_qps, but the load is closed loop: use connections, or load.mode = QPS")
                }
                (false, None, None) => Some("needs connections (closed loop)"),
                (true, None, _) => Some("needs target_qps (open loop)"),
                (true, Some(q), _) if !(q.is_finite() && q > 0.0 && q <= limits::MAX_TARGET_QPS) => {
                    Some("needs a positive target_qps of at most 10000000")
                }
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(Error::invalid(format!("{at} {problem}")));
            }
        }
        check_duration("the stages together", self.measurement())?;
        Ok(())
    }

    fn validate_timeouts_and_guardrails(&self) -> Result<()> {
        let t = &self.timeouts;
        for (what, d) in [("timeouts.connect", Some(t.connect)), ("timeouts.statement", t.statement)] {
            if let Some(d) = d {
                if d.is_zero() || d > limits::MAX_TIMEOUT {
                    return Err(Error::invalid(format!(
                        "{what} is {}: use a positive duration of at most one day (e.g. 10s)",
                        humantime::format_duration(d)
                    )));
                }
            }
        }
        let g = &self.guardrails;
        if !(0.0..=1.0).contains(&g.max_error_rate) {
            return Err(Error::invalid("guardrails.max_error_rate must be between 0 and 1 (default 0.5)"));
        }
        if !(g.target_tolerance > 0.0 && g.target_tolerance <= 1.0) {
            return Err(Error::invalid(
                "guardrails.target_tolerance must be above 0 and at most 1 (default 0.95: 95% of the target rate)",
            ));
        }
        Ok(())
    }
}

fn validate_statement(at: &str, custom: &super::CustomSql) -> Result<()> {
    if custom.sql.len() > limits::MAX_SQL_LEN {
        return Err(Error::invalid(format!(
            "{at}.sql has {} bytes, more than the limit of {}",
            custom.sql.len(),
            limits::MAX_SQL_LEN
        )));
    }
    match count_statements(&custom.sql) {
        0 => {
            return Err(Error::invalid(format!(
                "{at}.sql is empty: give one SQL statement, e.g. sql = \"SELECT * FROM orders WHERE id = ?\""
            )))
        }
        1 => {}
        n => {
            return Err(Error::invalid(format!(
                "{at}.sql holds {n} statements separated by `;`: give exactly one statement \
                 (each operation is one statement, one round trip)"
            )))
        }
    }
    if custom.params.len() > limits::MAX_PARAMS {
        return Err(Error::invalid(format!(
            "{at} has {} params, more than the limit of {}",
            custom.params.len(),
            limits::MAX_PARAMS
        )));
    }
    let placeholders = count_placeholders(&custom.sql);
    if placeholders != custom.params.len() {
        return Err(Error::invalid(format!(
            "{at} has {placeholders} `?` placeholders but {} params: give one generator per `?`",
            custom.params.len()
        )));
    }
    for (i, p) in custom.params.iter().enumerate() {
        p.validate().map_err(|e| Error::invalid(format!("{at}.params[{i}]: {e}")))?;
    }
    Ok(())
}

impl Distribution {
    fn validate(&self) -> Result<()> {
        match *self {
            Distribution::Zipfian { theta } if !(theta.is_finite() && theta > 0.0 && theta <= 10.0) => Err(
                Error::invalid(format!("zipfian theta {theta} must be above 0 and at most 10 (e.g. 0.99)")),
            ),
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
    /// Checks that values can be generated: ranges that can be sampled, lengths within limits.
    pub fn validate(&self) -> Result<()> {
        match self {
            ParamGenerator::Int { min, max } if min > max => {
                Err(Error::invalid(format!("int generator has min {min} > max {max}")))
            }
            ParamGenerator::Float { min, max } => {
                if !(min.is_finite() && max.is_finite()) {
                    return Err(Error::invalid(format!(
                        "float generator bounds must be finite numbers (got {min}, {max})"
                    )));
                }
                if min.partial_cmp(max) != Some(std::cmp::Ordering::Less) {
                    return Err(Error::invalid(format!(
                        "float generator needs min < max (got {min}, {max})"
                    )));
                }
                if !(max - min).is_finite() {
                    return Err(Error::invalid(format!(
                        "float generator range {min}..{max} is wider than a float can hold: narrow it \
                         (e.g. min = -1e300, max = 1e300)"
                    )));
                }
                Ok(())
            }
            ParamGenerator::Text { len } if *len > limits::MAX_TEXT_LEN => Err(Error::invalid(format!(
                "text generator len {len} is above the limit of {} characters",
                limits::MAX_TEXT_LEN
            ))),
            ParamGenerator::Choice { values } => {
                if values.is_empty() {
                    return Err(Error::invalid("choice generator has no values"));
                }
                if values.len() > limits::MAX_CHOICE_VALUES {
                    return Err(Error::invalid(format!(
                        "choice generator has {} values, more than the limit of {}",
                        values.len(),
                        limits::MAX_CHOICE_VALUES
                    )));
                }
                if let Some(v) = values.iter().find(|v| v.chars().count() > limits::MAX_CHOICE_LEN) {
                    return Err(Error::invalid(format!(
                        "a choice value has {} characters, more than the limit of {}",
                        v.chars().count(),
                        limits::MAX_CHOICE_LEN
                    )));
                }
                if values.iter().any(|v| v.contains('\0')) {
                    return Err(Error::invalid(
                        "a choice value contains NUL, which databases refuse in text",
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
