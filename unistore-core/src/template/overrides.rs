//! Settings given on a command line (or in an API request) over a template: one rule, shared by
//! `bench`, a worker's `join` and the server, so a flag means the same thing everywhere.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{parse_mix, LoadMode, Template};
use crate::error::{Error, Result};
use crate::model::{QueryKind, TableRef, TableType};

/// Values that replace the template's. `None` / `false`: keep the template's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--table`.
    pub table: Option<String>,
    /// `--table-type`.
    pub table_type: Option<TableType>,
    /// `--mix`, as written (`point_lookup=80,range_scan=20`).
    pub mix: Option<String>,
    /// `--connections`: closed-loop connections, or connections available to sustain `--qps`.
    pub connections: Option<u32>,
    /// `--qps`: open loop at this rate.
    pub qps: Option<f64>,
    /// `--duration`: the measurement window.
    pub duration: Option<Duration>,
    /// `--warmup`.
    pub warmup: Option<Duration>,
    /// `--cooldown`.
    pub cooldown: Option<Duration>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--key-column`.
    pub key_column: Option<String>,
    /// `--allow-writes` (can only add the permission).
    pub allow_writes: bool,
    /// `--connect-timeout`.
    pub connect_timeout: Option<Duration>,
    /// `--statement-timeout`.
    pub statement_timeout: Option<Duration>,
}

impl Overrides {
    /// Applies the overrides to `template` and validates the result. A template without a mix
    /// gets `point_lookup=100`; a flag-built template without a name is named after its table.
    pub fn apply(&self, mut template: Template) -> Result<Template> {
        if let Some(t) = &self.table {
            TableRef::parse(t)?;
            template.table = t.clone();
        }
        if template.table.is_empty() {
            return Err(Error::invalid("no table given: pass --table [database.][schema.]NAME"));
        }
        if template.name.is_empty() || template.name == super::default_name() {
            template.name = format!("bench-{}", template.table);
        }
        if self.table_type.is_some() {
            template.table_type = self.table_type;
        }
        if let Some(mix) = &self.mix {
            template.mix = parse_mix(mix)?;
        }
        if template.mix.is_empty() {
            template.mix = BTreeMap::from([(QueryKind::PointLookup, 100)]);
        }
        if let LoadMode::FindMaxConcurrency { .. } = template.load {
            if self.connections.is_some() || self.qps.is_some() {
                return Err(Error::invalid(
                    "the template searches for the maximum concurrency (FIND_MAX_CONCURRENCY), which sets \
                     the connections itself: --connections and --qps would turn it into a fixed run; \
                     remove the flag, or change the template's [load] section",
                ));
            }
        }
        if !template.stages.is_empty()
            && (self.connections.is_some() || self.qps.is_some() || self.duration.is_some())
        {
            return Err(Error::invalid(
                "the template runs in stages, which set the connections, rate and length of the measurement: \
                 --connections, --qps and --duration would override them; remove the flag, or change the stages",
            ));
        }
        let connections = self.connections.unwrap_or_else(|| template.load.initial_connections());
        if let Some(qps) = self.qps {
            template.load = LoadMode::Qps { target_qps: qps, connections };
        } else if let Some(c) = self.connections {
            template.load = match &template.load {
                LoadMode::Qps { target_qps, .. } => LoadMode::Qps { target_qps: *target_qps, connections: c },
                _ => LoadMode::Concurrency { connections: c },
            };
        }
        if let Some(d) = self.duration {
            template.phases.measurement = d;
        }
        if let Some(w) = self.warmup {
            template.phases.warmup = w;
        }
        if let Some(c) = self.cooldown {
            template.phases.cooldown = c;
        }
        if self.seed.is_some() {
            template.seed = self.seed;
        }
        if self.key_column.is_some() {
            template.values.key_column = self.key_column.clone();
        }
        if let Some(t) = self.connect_timeout {
            template.timeouts.connect = t;
        }
        if self.statement_timeout.is_some() {
            template.timeouts.statement = self.statement_timeout;
        }
        template.allow_writes |= self.allow_writes;
        template.validate()?;
        Ok(template)
    }
}
