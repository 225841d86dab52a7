//! What a run will do, said before it starts: the SQL of each kind, where keys come from, what
//! INSERT and UPDATE write, and warnings about setups that would make the figures mislead
//! (a lookup on an unindexed key, writes that fire triggers).

use crate::model::QueryKind;
use crate::table::{ColumnInfo, Generated, TableProfile};
use crate::target::{ParamRole, StatementSpec};
use crate::template::{Distribution, KeySource, Template};

/// Facts for the run header, and warnings that are also stored with the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunNotes {
    /// What will run, one line each.
    pub facts: Vec<String>,
    /// What may make the figures mislead, one line each.
    pub warnings: Vec<String>,
}

fn distribution(d: &Distribution) -> String {
    match d {
        Distribution::Uniform => "uniform".into(),
        Distribution::Zipfian { theta } => format!("zipfian, theta {theta}"),
        Distribution::Sequential => "sequential".into(),
        Distribution::Hotspot { hot_fraction, hot_probability } => {
            format!(
                "hotspot, {:.0}% of operations on {:.0}% of the keys",
                hot_probability * 100.0,
                hot_fraction * 100.0
            )
        }
    }
}

fn generated(c: &ColumnInfo) -> &'static str {
    match c.generated {
        Some(Generated::IdentityAlways) => "an identity (GENERATED ALWAYS)",
        Some(Generated::Sequence) => "a sequence, identity or autoincrement",
        Some(Generated::Expression) => "a default expression",
        None => "nothing",
    }
}

/// The notes of a run of `template` on `profile` with the rendered `statements`; `pool_len` is
/// the number of sampled keys when keys come from a pool.
pub fn run_notes(
    template: &Template,
    profile: &TableProfile,
    statements: &[StatementSpec],
    pool_len: Option<usize>,
) -> RunNotes {
    let mut notes = RunNotes::default();
    for st in statements {
        notes.facts.push(format!("{}: {}", st.kind, st.sql));
    }
    let uses_keys = statements.iter().any(|s| s.params.iter().any(|p| p.role == ParamRole::Key));
    let key = profile.key_column(template.values.key_column.as_deref()).ok();
    if let (true, Some(key)) = (uses_keys, key) {
        let source = match (template.values.source, pool_len, profile.key_range) {
            (KeySource::Pool, Some(n), _) => format!("a pool of {n} keys sampled from the table"),
            (KeySource::Range, _, Some((min, max))) => format!("the key range {min}..={max}"),
            _ => "the table".into(),
        };
        let ryw = if template.values.read_your_writes {
            ", plus keys the run inserts (read-your-writes)"
        } else {
            ""
        };
        notes.facts.push(format!(
            "keys: column `{}` from {source} ({}){ryw}",
            key.name,
            distribution(&template.values.distribution)
        ));
        if key.indexed == Some(false) {
            notes.warnings.push(format!(
                "key column `{}` of {} has no index: every lookup, scan and update reads the whole table, \
                 which measures a table scan; pick an indexed column with --key-column",
                key.name, profile.table
            ));
        }
    }
    for st in statements {
        match st.kind {
            QueryKind::RangeScan if key.is_some_and(|k| !k.column_type.is_integer()) => {
                notes.warnings.push(format!(
                    "range scans on the non-integer key `{}` read {} rows forward from a sampled key (ORDER BY ... \
                     LIMIT), not a range of key values",
                    key.map_or("", |k| k.name.as_str()),
                    template.values.range_scan_width
                ));
            }
            QueryKind::Insert => {
                if let Some(k) = key {
                    if k.generated.is_some() {
                        notes.facts.push(format!(
                            "INSERT leaves `{}` to the database ({}){}",
                            k.name,
                            generated(k),
                            if st.returning.is_some() { " and reads it back with RETURNING" } else { "" }
                        ));
                    } else {
                        let from = match profile.key_range {
                            Some((_, max)) if k.column_type.is_integer() => {
                                format!("from {} upward", max.saturating_add(1))
                            }
                            _ => "tagged with the run id".into(),
                        };
                        notes.facts.push(format!(
                            "INSERT supplies `{}` values {from}: the column has no sequence or identity, so keys \
                             above the current maximum cannot collide with the table's",
                            k.name
                        ));
                    }
                }
            }
            QueryKind::Update => {
                if let Some(p) = st.params.iter().find(|p| p.role == ParamRole::ColumnValue) {
                    let indexed = profile.column(&p.column).and_then(|c| c.indexed);
                    let what = match indexed {
                        Some(true) => "indexed: each update also rewrites the index",
                        Some(false) => "not indexed",
                        None => "index unknown",
                    };
                    notes.facts.push(format!("UPDATE writes `{}` ({what})", p.column));
                }
            }
            _ => {}
        }
    }
    let writes = statements.iter().any(|s| s.kind.is_write());
    if writes && !profile.triggers.is_empty() {
        notes.warnings.push(format!(
            "writes fire the trigger(s) {} on {}: the measured time includes them",
            profile.triggers.join(", "),
            profile.table
        ));
    }
    if writes && !profile.foreign_keys.is_empty() {
        notes.warnings.push(format!(
            "writes check the foreign key(s) {}: each write also reads the referenced table",
            profile.foreign_keys.join(", ")
        ));
    }
    notes
}
